// Package privacypass is the Go binding of libprivacypass: Privacy Pass (RFC 9576-9578) tokens of
// type 0x0002 (Blind RSA 2048, publicly verifiable) and of the privately verifiable types 0x0001
// (VOPRF P-384) and 0x0005 (VOPRF ristretto255) through cgo.
//
// The protocol in one paragraph: an origin sends a TokenChallenge ([Challenge.Encode],
// [WWWAuthenticate]); a [Client] of the issuer's key turns it into a [PendingToken] whose
// TokenRequest the [Issuer] blind-signs; the client finalizes the TokenResponse into a token and
// sends it in an Authorization header ([EncodeAuthorization]); the origin checks it with a
// [Verifier] and spends it exactly once with a [Redeemer].
//
// Tokens of types 1 and 5 are verified with the issuer's private key only: the issuer is
// [GenerateVoprfIssuer], [NewIssuerFromScalar] or [NewIssuerFromPEM] (a VOPRF key file), the
// client [NewVoprfClient], and the origin redeems with [NewRedeemerFromIssuer]. A [Verifier]
// (public keys) answers [ErrPrivateTokenType] for such a token.
//
// Every handle ([Issuer], [Client], [PendingToken], [PendingBatch], [PendingGenericBatch],
// [Verifier], [Redeemer]) wraps an immutable, reference-counted handle of the C library and is
// safe for concurrent use by any number of goroutines. Close releases it (and waits for calls in flight); a finalizer releases it when it
// is forgotten. After Close every method answers [ErrClosed] (a plain error, not an *[Error]).
// Byte slices are only lent to C for the duration of a call; nothing is retained by C.
//
// Failures are *[Error] values carrying the library's result [Code]; the protocol codes are the
// JSON-RPC codes of the project's error table (the README's "Errors"), and each has a sentinel for errors.Is:
// errors.Is(err, ErrAlreadySpent).
//
// Build: cgo needs the header (include/privacypass.h, found relative to this package) and
// libprivacypass: CGO_LDFLAGS="-L$LIBDIR -Wl,-rpath,$LIBDIR" (make test-go sets it).
package privacypass

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdlib.h>
#include "privacypass.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// The token types: what a [Challenge] names and [Issuer.TokenType] answers.
const (
	TokenTypeVoprfP384         = C.PP_TOKEN_TYPE_VOPRF_P384         // 0x0001: VOPRF (P-384, SHA-384), privately verifiable
	TokenTypeBlindRSA          = C.PP_TOKEN_TYPE_BLIND_RSA          // 0x0002: Blind RSA (2048-bit), publicly verifiable
	TokenTypeVoprfRistretto255 = C.PP_TOKEN_TYPE_VOPRF_RISTRETTO255 // 0x0005: VOPRF (ristretto255, SHA-512), privately verifiable
)

// Sizes of the type 1 (VOPRF P-384) wire objects and keys.
const (
	VoprfP384PublicKeyLen     = C.PP_VOPRF_P384_PUBLIC_KEY_LEN     // an issuer public key (a compressed P-384 element)
	VoprfP384ScalarLen        = C.PP_VOPRF_P384_SCALAR_LEN         // a private key or blind (SerializeScalar, big-endian)
	VoprfP384TokenRequestLen  = C.PP_VOPRF_P384_TOKEN_REQUEST_LEN  // an encoded TokenRequest
	VoprfP384TokenResponseLen = C.PP_VOPRF_P384_TOKEN_RESPONSE_LEN // an encoded TokenResponse (evaluated element and DLEQ proof)
	VoprfP384TokenLen         = C.PP_VOPRF_P384_TOKEN_LEN          // an encoded Token
)

// Sizes of the type 5 (VOPRF ristretto255) wire objects and keys.
const (
	VoprfRistretto255PublicKeyLen     = C.PP_VOPRF_RISTRETTO255_PUBLIC_KEY_LEN     // an issuer public key (a ristretto255 element)
	VoprfRistretto255ScalarLen        = C.PP_VOPRF_RISTRETTO255_SCALAR_LEN         // a private key or blind (SerializeScalar, little-endian)
	VoprfRistretto255TokenRequestLen  = C.PP_VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN  // an encoded TokenRequest
	VoprfRistretto255TokenResponseLen = C.PP_VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN // an encoded TokenResponse (evaluated element and DLEQ proof)
	VoprfRistretto255TokenLen         = C.PP_VOPRF_RISTRETTO255_TOKEN_LEN          // an encoded Token
)

// Sizes of the type 2 wire objects.
const (
	TokenLen             = C.PP_TOKEN_LEN              // an encoded Token
	TokenRequestLen      = C.PP_TOKEN_REQUEST_LEN      // an encoded TokenRequest
	TokenResponseLen     = C.PP_TOKEN_RESPONSE_LEN     // an encoded TokenResponse (the blind signature)
	BlindedMsgLen        = C.PP_BLINDED_MSG_LEN        // a bare blinded message (the JSON-RPC issue form)
	TokenKeyIDLen        = C.PP_TOKEN_KEY_ID_LEN       // a token_key_id (SHA-256 of the SPKI)
	PublicKeyLen         = C.PP_PUBLIC_KEY_LEN         // an issuer key as RSASSA-PSS SubjectPublicKeyInfo (DER)
	NonceLen             = C.PP_NONCE_LEN              // a token nonce
	SaltLen              = C.PP_SALT_LEN               // the PSS salt
	RedemptionContextLen = C.PP_REDEMPTION_CONTEXT_LEN // a TokenChallenge's redemption context, when present
)

// HeaderVersion is the version of include/privacypass.h this package was compiled against.
const HeaderVersion = C.PP_VERSION

// Version answers the version of the libprivacypass actually loaded, e.g. "0.1.0".
func Version() string { return C.GoString(C.pp_version()) }

// inBytes lends b to C for the duration of one call: (NULL, 0) when empty.
func inBytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// inChars is inBytes for the library's char inputs (not NUL-terminated).
func inChars(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// output runs a call with a caller-owned output buffer of size n; when the library answers
// that it is too small, it runs it again once with the size the library asked for.
func output(n int, call func(out unsafe.Pointer, capacity C.size_t, outLen *C.size_t) C.enum_pp_result) ([]byte, Code) {
	return outputOf[byte](n, call)
}

// outputOf is output for a buffer of n values of T (capacity and length counted in values).
func outputOf[T any](n int, call func(out unsafe.Pointer, capacity C.size_t, outLen *C.size_t) C.enum_pp_result) ([]T, Code) {
	for attempt := 0; attempt < 2; attempt++ {
		if n == 0 {
			n = 1
		}
		buf := make([]T, n)
		var outLen C.size_t
		rc := Code(call(unsafe.Pointer(&buf[0]), C.size_t(n), &outLen))
		if rc == CodeBufferTooSmall && attempt == 0 {
			n = int(outLen)
			continue
		}
		if rc != CodeOK {
			return nil, rc
		}
		return buf[:int(outLen)], CodeOK
	}
	return nil, CodeBufferTooSmall
}

// handle is what every wrapper shares: the C pointer, guarded so that Close waits for the calls
// in flight and no call starts after it.
type handle struct {
	mu  sync.RWMutex
	ptr unsafe.Pointer
}

// acquire read-locks the handle; it answers nil (and holds no lock) when the handle is closed.
func (h *handle) acquire() unsafe.Pointer {
	h.mu.RLock()
	if h.ptr == nil {
		h.mu.RUnlock()
		return nil
	}
	return h.ptr
}

func (h *handle) release() { h.mu.RUnlock() }

// close takes the pointer out and frees it, once, under the write lock: after the calls in
// flight, before any later one (which then finds the handle closed). freed counts the free.
func (h *handle) close(freed *atomic.Int64, free func(unsafe.Pointer)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ptr != nil {
		free(h.ptr)
		h.ptr = nil
		freed.Add(1)
	}
}

// freed counts the C handles released so far, by Close or by a finalizer, per kind of handle:
// the tests read it to prove that a forgotten handle is freed, and only once. It costs one
// atomic add per handle freed and nothing per call.
var freed struct {
	verifiers, redeemers, issuers, clients, pendingTokens atomic.Int64
	pendingBatches, pendingGenericBatches                 atomic.Int64
}
