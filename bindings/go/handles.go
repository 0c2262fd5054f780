package privacypass

// #include <stdlib.h>
// #include "privacypass.h"
import "C"

import (
	"runtime"
	"strings"
	"unsafe"
)

// ---------------------------------------------------------------------------------------------
// Verifier

// Verifier checks tokens against the public keys of one or more issuers. It records nothing: a
// verified token verifies again (a [Redeemer] spends tokens once). Safe for concurrent use.
type Verifier struct{ h handle }

func newVerifier(op string, rc C.enum_pp_result, out *C.pp_verifier) (*Verifier, error) {
	if err := check(op, rc); err != nil {
		return nil, err
	}
	v := &Verifier{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(v, (*Verifier).Close)
	return v, nil
}

// NewVerifier makes a verifier for one issuer public key, a SubjectPublicKeyInfo in DER: the
// RSASSA-PSS form of RFC 9578 (a token-key, decoded; [Issuer.PublicKey]) or plain rsaEncryption.
// The key is valid from the epoch on, without end. A key that is not RSA-2048 with e = 65537
// answers ErrInvalidKey.
func NewVerifier(spki []byte) (*Verifier, error) {
	var out *C.pp_verifier
	p, n := inBytes(spki)
	return newVerifier("pp_verifier_new_from_spki", C.pp_verifier_new_from_spki(p, n, &out), out)
}

// NewVerifierFromPEM makes a verifier for every "PUBLIC KEY" block of a PEM text (at least one).
func NewVerifierFromPEM(pem []byte) (*Verifier, error) {
	var out *C.pp_verifier
	p, n := inChars(pem)
	return newVerifier("pp_verifier_new_from_pem", C.pp_verifier_new_from_pem(p, n, &out), out)
}

// NewVerifierFromDirectory makes a verifier for the token type 2 keys of an RFC 9578 issuer
// directory (the JSON of /.well-known/private-token-issuer-directory); each key is valid from its
// not-before on.
func NewVerifierFromDirectory(json []byte) (*Verifier, error) {
	var out *C.pp_verifier
	p, n := inChars(json)
	return newVerifier("pp_verifier_new_from_directory", C.pp_verifier_new_from_directory(p, n, &out), out)
}

// Verify checks an encoded Token at the current time. challenge is the encoded TokenChallenge
// the token must be bound to, or nil to accept a token bound to any challenge. It answers nil,
// ErrVerificationFailed (bad authenticator, other challenge, unknown or not yet valid key),
// ErrInvalidParams (bytes that are not a well-formed token: truncated, too long, trailing
// bytes), ErrPrivateTokenType (a token of type 1 or 5: only its issuer's private key verifies
// it, through a redeemer of [NewRedeemerFromIssuer]) or ErrUnsupportedToken (a token of another
// type).
func (v *Verifier) Verify(token, challenge []byte) error {
	ptr := v.h.acquire()
	if ptr == nil {
		return ErrClosed
	}
	defer v.h.release()
	t, tn := inBytes(token)
	c, cn := inBytes(challenge)
	return check("pp_verifier_verify", C.pp_verifier_verify((*C.pp_verifier)(ptr), t, tn, c, cn))
}

// VerifyAuthorization is Verify for the value of an Authorization header
// (PrivateToken token="..."); a malformed value answers ErrInvalidParams, as a malformed token
// in a well-formed value does.
func (v *Verifier) VerifyAuthorization(authorization string, challenge []byte) error {
	ptr := v.h.acquire()
	if ptr == nil {
		return ErrClosed
	}
	defer v.h.release()
	a, an := inChars([]byte(authorization))
	c, cn := inBytes(challenge)
	return check("pp_verifier_verify_authorization",
		C.pp_verifier_verify_authorization((*C.pp_verifier)(ptr), a, an, c, cn))
}

// Close releases the verifier; redeemers made from it stay valid. Close is idempotent and waits
// for the calls in flight; later calls answer ErrClosed.
func (v *Verifier) Close() error {
	v.h.close(&freed.verifiers, func(p unsafe.Pointer) { C.pp_verifier_free((*C.pp_verifier)(p)) })
	runtime.SetFinalizer(v, nil)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Redeemer

// Redeemer is a verifier plus a spend store: each token is accepted once. Safe for concurrent
// use: of concurrent redemptions of one token exactly one succeeds.
type Redeemer struct{ h handle }

// NewRedeemer makes a redeemer that verifies with v's keys (it keeps its own reference to them:
// v may be closed first) and records spends in the store storeURL names:
//
//   - "memory:" or "memory:CAPACITY": in this process only, bounded (default 1,000,000 spends;
//     when full, new spends answer ErrStoreUnavailable, old ones are never forgotten). Used from
//     another process than the one that made it, every redeem answers ErrStoreUnavailable.
//   - "rocksdb:PATH": embedded RocksDB, durable; one process at a time per PATH.
//   - "redis://[[USER]:PASSWORD@]HOST:PORT[/DB]" or "redis+cluster://H1:P1,H2:P2,...", both with
//     optional "?pool=N&timeout_ms=MS": Redis or Valkey, standalone or cluster, shared with every
//     other redeemer on the same store (daemons, other hosts): a token is spent once among all of
//     them. Run Redis with appendonly yes and appendfsync always for spends to survive its crash.
//     On a standalone primary "&wait=N&wait_timeout_ms=MS" acknowledges a spend only once WAIT
//     reports it on N replicas (else ErrStoreUnavailable).
//
// A URL of another form answers ErrInvalidStoreURL, a store that cannot be opened or reached
// ErrStoreUnavailable. Such a redeemer holds public keys only: a token of type 1 or 5 answers
// ErrPrivateTokenType (redeem those with [NewRedeemerFromIssuer]).
func NewRedeemer(v *Verifier, storeURL string) (*Redeemer, error) {
	const op = "pp_redeemer_new"
	if strings.IndexByte(storeURL, 0) >= 0 {
		return nil, fail(op, CodeInvalidStoreURL)
	}
	ptr := v.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer v.h.release()
	return openRedeemer(op, storeURL, func(url *C.char, out **C.pp_redeemer) C.enum_pp_result {
		return C.pp_redeemer_new((*C.pp_verifier)(ptr), url, out)
	})
}

// NewRedeemerFromIssuer makes a redeemer that verifies with the key of i and records spends in
// the store storeURL names (the URLs of [NewRedeemer]). For a VOPRF issuer (token type 1 or 5)
// this is how an origin redeems its tokens: only the private key verifies them. For an RSA
// issuer it verifies with the public key, as a redeemer of NewVerifier(i.PublicKey()) would. It
// keeps its own reference to the key: i may be closed first. A URL of another form answers
// ErrInvalidStoreURL, a store that cannot be opened or reached ErrStoreUnavailable.
func NewRedeemerFromIssuer(i *Issuer, storeURL string) (*Redeemer, error) {
	const op = "pp_redeemer_new_from_issuer"
	if strings.IndexByte(storeURL, 0) >= 0 {
		return nil, fail(op, CodeInvalidStoreURL)
	}
	ptr := i.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer i.h.release()
	return openRedeemer(op, storeURL, func(url *C.char, out **C.pp_redeemer) C.enum_pp_result {
		return C.pp_redeemer_new_from_issuer((*C.pp_issuer)(ptr), url, out)
	})
}

// openRedeemer runs open with storeURL as a C string and wraps the redeemer it makes.
func openRedeemer(op, storeURL string, open func(url *C.char, out **C.pp_redeemer) C.enum_pp_result) (*Redeemer, error) {
	url := C.CString(storeURL)
	defer C.free(unsafe.Pointer(url))
	var out *C.pp_redeemer
	if err := check(op, open(url, &out)); err != nil {
		return nil, err
	}
	r := &Redeemer{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(r, (*Redeemer).Close)
	return r, nil
}

// Redeem verifies an encoded Token as [Verifier.Verify] does (a redeemer of
// [NewRedeemerFromIssuer] with the issuer's key), then records its spend: nil only
// once the store has recorded it, ErrAlreadySpent for every later attempt (concurrent ones
// included), ErrStoreUnavailable when nothing could be recorded (the token may be redeemed
// again later).
func (r *Redeemer) Redeem(token, challenge []byte) error {
	ptr := r.h.acquire()
	if ptr == nil {
		return ErrClosed
	}
	defer r.h.release()
	t, tn := inBytes(token)
	c, cn := inBytes(challenge)
	return check("pp_redeemer_redeem", C.pp_redeemer_redeem((*C.pp_redeemer)(ptr), t, tn, c, cn))
}

// RedeemAuthorization is Redeem for the value of an Authorization header; a malformed value
// answers ErrInvalidParams.
func (r *Redeemer) RedeemAuthorization(authorization string, challenge []byte) error {
	ptr := r.h.acquire()
	if ptr == nil {
		return ErrClosed
	}
	defer r.h.release()
	a, an := inChars([]byte(authorization))
	c, cn := inBytes(challenge)
	return check("pp_redeemer_redeem_authorization",
		C.pp_redeemer_redeem_authorization((*C.pp_redeemer)(ptr), a, an, c, cn))
}

// SetKeys replaces the keys r verifies with by v's, all at once: a redemption that began before
// verifies with the old keys, every later one with the new, and none sees a mix of the two. The
// store and the spends it holds stay: a token spent before is still spent. This is how a
// long-lived redeemer follows its issuer's directory ([NewVerifierFromDirectory] on each new
// body, then SetKeys; [DirectoryVerifier.NewRedeemer] does it for you). r keeps its own
// reference to the keys: v may be closed after. A redeemer of [NewRedeemerFromIssuer] with a
// VOPRF issuer (type 1 or 5) answers ErrInvalidKey and keeps its private key (public keys
// cannot replace it); one with an RSA issuer takes v's keys. r or v closed answers ErrClosed.
func (r *Redeemer) SetKeys(v *Verifier) error {
	rp := r.h.acquire()
	if rp == nil {
		return ErrClosed
	}
	defer r.h.release()
	vp := v.h.acquire()
	if vp == nil {
		return ErrClosed
	}
	defer v.h.release()
	return check("pp_redeemer_set_keys", C.pp_redeemer_set_keys((*C.pp_redeemer)(rp), (*C.pp_verifier)(vp)))
}

// closed answers whether Close has run.
func (r *Redeemer) closed() bool {
	if r.h.acquire() == nil {
		return true
	}
	r.h.release()
	return false
}

// Close releases the redeemer, closing its store when it was the last user. Idempotent; waits
// for the calls in flight.
func (r *Redeemer) Close() error {
	r.h.close(&freed.redeemers, func(p unsafe.Pointer) { C.pp_redeemer_free((*C.pp_redeemer)(p)) })
	runtime.SetFinalizer(r, nil)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Issuer

// Issuer answers token requests with one private key: an RSA-2048 key (token type 2, blind
// signatures) or a VOPRF key (token type 1, P-384, or 5, ristretto255: evaluations with their
// DLEQ proof). Safe for concurrent use: one issuer signs on any number of goroutines at once.
type Issuer struct {
	h          handle
	tokenType  uint16
	publicKey  []byte
	tokenKeyID []byte
}

func newIssuer(op string, rc C.enum_pp_result, out *C.pp_issuer) (*Issuer, error) {
	if err := check(op, rc); err != nil {
		return nil, err
	}
	i := &Issuer{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(i, (*Issuer).Close)
	var tokenType C.uint16_t
	if err := check("pp_issuer_token_type", C.pp_issuer_token_type(out, &tokenType)); err != nil {
		i.Close()
		return nil, err
	}
	i.tokenType = uint16(tokenType)
	var code Code
	i.publicKey, code = output(PublicKeyLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_issuer_public_key(out, (*C.uint8_t)(o), n, l)
	})
	if code == CodeOK {
		i.tokenKeyID, code = output(TokenKeyIDLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
			return C.pp_issuer_token_key_id(out, (*C.uint8_t)(o), n, l)
		})
	}
	if code != CodeOK {
		i.Close()
		return nil, fail("pp_issuer_public_key", code)
	}
	return i, nil
}

// NewIssuerFromPEM makes an issuer for an RSA-2048 private key in PEM, PKCS#8 ("PRIVATE KEY") or
// PKCS#1 ("RSA PRIVATE KEY"), e = 65537 (token type 2), or for a VOPRF key file of privacypassd
// ("PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY", type 1, or "PRIVACYPASS VOPRF
// RISTRETTO255-SHA512 PRIVATE KEY", type 5: the label gives the type); anything else answers
// ErrInvalidKey.
func NewIssuerFromPEM(pem []byte) (*Issuer, error) {
	var out *C.pp_issuer
	p, n := inChars(pem)
	return newIssuer("pp_issuer_new_from_pem", C.pp_issuer_new_from_pem(p, n, &out), out)
}

// NewIssuerFromScalar makes an issuer for a raw VOPRF private key: tokenType
// TokenTypeVoprfP384 or TokenTypeVoprfRistretto255, and the RFC 9497 SerializeScalar of the key
// (VoprfP384ScalarLen bytes big-endian for P-384, VoprfRistretto255ScalarLen bytes
// little-endian for ristretto255: the skS of the RFC 9578 vectors). Another token type answers
// ErrUnsupportedToken, bytes that are not a canonical nonzero scalar of the group ErrInvalidKey.
func NewIssuerFromScalar(tokenType uint16, scalar []byte) (*Issuer, error) {
	var out *C.pp_issuer
	s, n := inBytes(scalar)
	return newIssuer("pp_issuer_new_from_scalar",
		C.pp_issuer_new_from_scalar(C.uint16_t(tokenType), s, n, &out), out)
}

// GenerateIssuer makes an issuer with a fresh RSA-2048 key (for tests and examples; a service
// loads its key with NewIssuerFromPEM). It takes a fraction of a second.
func GenerateIssuer() (*Issuer, error) {
	var out *C.pp_issuer
	return newIssuer("pp_issuer_generate", C.pp_issuer_generate(&out), out)
}

// GenerateVoprfIssuer makes an issuer with a fresh VOPRF key of tokenType, TokenTypeVoprfP384
// or TokenTypeVoprfRistretto255 (for tests and examples; a service loads its key with
// NewIssuerFromPEM or NewIssuerFromScalar). Another token type answers ErrUnsupportedToken.
func GenerateVoprfIssuer(tokenType uint16) (*Issuer, error) {
	var out *C.pp_issuer
	return newIssuer("pp_issuer_generate_voprf", C.pp_issuer_generate_voprf(C.uint16_t(tokenType), &out), out)
}

// TokenType is the token type the issuer's key issues: TokenTypeBlindRSA (2),
// TokenTypeVoprfP384 (1) or TokenTypeVoprfRistretto255 (5). It stays available after Close.
func (i *Issuer) TokenType() uint16 { return i.tokenType }

// PublicKey is the issuer's public key as the RFC 9578 SubjectPublicKeyInfo (RSASSA-PSS, DER,
// PublicKeyLen bytes): what clients, verifiers and WWW-Authenticate carry. For a VOPRF key it is
// the serialized public element (VoprfP384PublicKeyLen or VoprfRistretto255PublicKeyLen bytes):
// the token-key of its challenges and what [NewVoprfClient] takes. It stays available after
// Close.
func (i *Issuer) PublicKey() []byte { return append([]byte(nil), i.publicKey...) }

// TokenKeyID is the key's token_key_id (SHA-256 of PublicKey, TokenKeyIDLen bytes): the key-id
// of the JSON-RPC issue method. It stays available after Close.
func (i *Issuer) TokenKeyID() []byte { return append([]byte(nil), i.tokenKeyID...) }

// Issue is RFC 9578 native issuance: an encoded TokenRequest in, the encoded TokenResponse out
// (the blind signature for type 2; for types 1 and 5 the evaluated element and a fresh DLEQ
// proof). A malformed request, one of another token type than the key's or for another key, or
// one whose blinded element is not a group element, answers ErrUnprocessableBlindedToken.
func (i *Issuer) Issue(tokenRequest []byte) ([]byte, error) {
	ptr := i.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer i.h.release()
	r, rn := inBytes(tokenRequest)
	out, code := output(TokenResponseLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_issuer_issue((*C.pp_issuer)(ptr), r, rn, (*C.uint8_t)(o), n, l)
	})
	return out, fail("pp_issuer_issue", code)
}

// IssueBlinded is the JSON-RPC issue form: keyID is the full token_key_id and blindedToken the
// bare blinded message (BlindedMsgLen bytes for type 2; the blinded element for types 1 and 5)
// or a whole TokenRequest. It answers the TokenResponse, ErrUnknownIssuanceKey for another key
// id, ErrUnprocessableBlindedToken for a bad blinded token.
func (i *Issuer) IssueBlinded(keyID, blindedToken []byte) ([]byte, error) {
	ptr := i.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer i.h.release()
	k, kn := inBytes(keyID)
	b, bn := inBytes(blindedToken)
	out, code := output(TokenResponseLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_issuer_issue_blinded((*C.pp_issuer)(ptr), k, kn, b, bn, (*C.uint8_t)(o), n, l)
	})
	return out, fail("pp_issuer_issue_blinded", code)
}

// Close releases the issuer. Idempotent; waits for the calls in flight.
func (i *Issuer) Close() error {
	i.h.close(&freed.issuers, func(p unsafe.Pointer) { C.pp_issuer_free((*C.pp_issuer)(p)) })
	runtime.SetFinalizer(i, nil)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Client and PendingToken

// Client requests tokens from one issuer key. Safe for concurrent use.
type Client struct{ h handle }

func newClient(op string, rc C.enum_pp_result, out *C.pp_client) (*Client, error) {
	if err := check(op, rc); err != nil {
		return nil, err
	}
	c := &Client{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

// NewClient makes a client for the type 2 issuer public key issuerKey (SubjectPublicKeyInfo,
// DER: the token-key of a challenge or of the issuer directory, decoded). A key that is not a
// usable RSA-2048 key answers ErrInvalidKey.
func NewClient(issuerKey []byte) (*Client, error) {
	var out *C.pp_client
	p, n := inBytes(issuerKey)
	return newClient("pp_client_new", C.pp_client_new(p, n, &out), out)
}

// NewVoprfClient makes a client for a VOPRF issuer public key: tokenType TokenTypeVoprfP384 or
// TokenTypeVoprfRistretto255 and the serialized public element (VoprfP384PublicKeyLen bytes,
// compressed, for P-384; VoprfRistretto255PublicKeyLen for ristretto255): the token-key of a
// challenge or directory entry of that type, decoded, or [Issuer.PublicKey] of a VOPRF issuer.
// Another token type answers ErrUnsupportedToken, bytes that are not an element of the group
// ErrInvalidKey.
func NewVoprfClient(tokenType uint16, publicKey []byte) (*Client, error) {
	var out *C.pp_client
	p, n := inBytes(publicKey)
	return newClient("pp_client_new_voprf", C.pp_client_new_voprf(C.uint16_t(tokenType), p, n, &out), out)
}

// Request starts issuance for an encoded TokenChallenge, with a fresh nonce, salt and blinding
// factor from the OS (for a VOPRF client: a fresh nonce and blind). Send [PendingToken.Request]
// to the issuer and finalize its answer. A malformed challenge answers ErrInvalidInput, one of
// another token type than the client's key ErrUnsupportedToken.
func (c *Client) Request(challenge []byte) (*PendingToken, error) {
	ptr := c.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer c.h.release()
	ch, chn := inBytes(challenge)
	var out *C.pp_pending_token
	if err := check("pp_client_request", C.pp_client_request((*C.pp_client)(ptr), ch, chn, &out)); err != nil {
		return nil, err
	}
	return newPendingToken(out)
}

// RequestWithRandomness is Request with the nonce (NonceLen bytes), PSS salt (SaltLen bytes) and
// blinding factor (big-endian, 1 to 512 bytes) given instead of drawn. For a VOPRF client the
// salt must be empty (nil) and blind is the blind's SerializeScalar (VoprfP384ScalarLen or
// VoprfRistretto255ScalarLen bytes, the vectors' blind). A wrong length, a salt for a VOPRF
// client or a blind that is not invertible (not a canonical nonzero scalar) answers
// ErrInvalidInput. FOR KNOWN-ANSWER TESTS ONLY: reusing any of them links tokens to their
// issuance.
func (c *Client) RequestWithRandomness(challenge, nonce, salt, blind []byte) (*PendingToken, error) {
	ptr := c.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer c.h.release()
	ch, chn := inBytes(challenge)
	no, non := inBytes(nonce)
	sa, san := inBytes(salt)
	bl, bln := inBytes(blind)
	var out *C.pp_pending_token
	if err := check("pp_client_request_with_randomness",
		C.pp_client_request_with_randomness((*C.pp_client)(ptr), ch, chn, no, non, sa, san, bl, bln, &out)); err != nil {
		return nil, err
	}
	return newPendingToken(out)
}

// Close releases the client; its pending tokens stay valid. Idempotent.
func (c *Client) Close() error {
	c.h.close(&freed.clients, func(p unsafe.Pointer) { C.pp_client_free((*C.pp_client)(p)) })
	runtime.SetFinalizer(c, nil)
	return nil
}

// PendingToken is a token request on its way to the issuer, with the secrets finalizing needs
// (wiped by Close). Safe for concurrent use; may be finalized more than once.
type PendingToken struct {
	h       handle
	request []byte
}

func newPendingToken(out *C.pp_pending_token) (*PendingToken, error) {
	p := &PendingToken{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(p, (*PendingToken).Close)
	var code Code
	p.request, code = output(TokenRequestLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_token_request(out, (*C.uint8_t)(o), n, l)
	})
	if code != CodeOK {
		p.Close()
		return nil, fail("pp_pending_token_request", code)
	}
	return p, nil
}

// Request is the encoded TokenRequest to send to the issuer (TokenRequestLen bytes for type 2,
// VoprfP384TokenRequestLen or VoprfRistretto255TokenRequestLen for types 1 and 5): the body of
// POST /token-request, or base64url in the JSON-RPC issue method's blinded-token. It stays
// available after Close.
func (p *PendingToken) Request() []byte { return append([]byte(nil), p.request...) }

// Finalize turns the issuer's encoded TokenResponse into the encoded Token (TokenLen bytes for
// type 2, VoprfP384TokenLen or VoprfRistretto255TokenLen for types 1 and 5), verified against
// the issuer key (for types 1 and 5 the issuer's DLEQ proof is checked before anything is
// unblinded). A response of the wrong length answers ErrInvalidInput, one that does not
// finalize into a valid token ErrVerificationFailed.
func (p *PendingToken) Finalize(tokenResponse []byte) ([]byte, error) {
	ptr := p.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer p.h.release()
	r, rn := inBytes(tokenResponse)
	out, code := output(TokenLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_token_finalize((*C.pp_pending_token)(ptr), r, rn, (*C.uint8_t)(o), n, l)
	})
	return out, fail("pp_pending_token_finalize", code)
}

// Close releases the pending token, wiping its blinding secret. Idempotent.
func (p *PendingToken) Close() error {
	p.h.close(&freed.pendingTokens, func(ptr unsafe.Pointer) { C.pp_pending_token_free((*C.pp_pending_token)(ptr)) })
	runtime.SetFinalizer(p, nil)
	return nil
}
