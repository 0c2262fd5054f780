package privacypass

// #include <stdlib.h>
// #include "privacypass.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Batched issuance (draft-ietf-privacypass-batched-tokens): amortized batches (N token requests
// of one VOPRF key, types 1 and 5, answered with one DLEQ proof) and generic batches (token
// requests of any types and keys, in one message).

// maxBatch is the largest amortized batch a client makes (the C library's limit).
const maxBatch = 1024

// ---------------------------------------------------------------------------------------------
// PendingBatch (amortized)

// PendingBatch is an amortized batch on its way to a VOPRF issuer (token type 1 or 5): N token
// requests for one challenge and one key, with the secrets finalizing needs (wiped by Close).
// Safe for concurrent use; may be finalized more than once.
type PendingBatch struct {
	h       handle
	count   int
	request []byte
}

func newPendingBatch(op string, rc C.enum_pp_result, out *C.pp_pending_batch, count int) (*PendingBatch, error) {
	if err := check(op, rc); err != nil {
		return nil, err
	}
	b := &PendingBatch{h: handle{ptr: unsafe.Pointer(out)}, count: count}
	runtime.SetFinalizer(b, (*PendingBatch).Close)
	var code Code
	b.request, code = output(8+count*VoprfP384PublicKeyLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_batch_request(out, (*C.uint8_t)(o), n, l)
	})
	if code != CodeOK {
		b.Close()
		return nil, fail("pp_pending_batch_request", code)
	}
	return b, nil
}

// RequestAmortized starts an amortized batch of count token requests (1 to 1024) for an encoded
// TokenChallenge, each with a fresh nonce and blind from the OS. Send [PendingBatch.Request] to
// the issuer ([Issuer.IssueAmortized]) and finalize its answer with [PendingBatch.Finalize].
// It answers ErrUnsupportedToken for a client of a type 2 (RSA) key or a challenge of another
// token type than the client's key, ErrInvalidInput for a malformed challenge or a count out
// of range.
func (c *Client) RequestAmortized(challenge []byte, count int) (*PendingBatch, error) {
	const op = "pp_client_request_amortized"
	if count < 1 || count > maxBatch {
		return nil, fail(op, CodeInvalidInput)
	}
	ptr := c.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer c.h.release()
	ch, chn := inBytes(challenge)
	var out *C.pp_pending_batch
	rc := C.pp_client_request_amortized((*C.pp_client)(ptr), ch, chn, C.size_t(count), &out)
	return newPendingBatch(op, rc, out, count)
}

// RequestAmortizedWithRandomness is RequestAmortized with the randomness given instead of
// drawn: nonces is the N nonces one after the other (N × NonceLen bytes, which gives N), blinds
// the N blinds' SerializeScalar one after the other (N × VoprfP384ScalarLen bytes for type 1,
// N × VoprfRistretto255ScalarLen for type 5), as the batched vectors' nonces and blinds. A
// length that is not a whole number of entries, N of 0 or over 1024, or a blind that is not a
// canonical nonzero scalar answers ErrInvalidInput (and the errors of RequestAmortized). FOR
// KNOWN-ANSWER TESTS ONLY: reusing any of them links tokens to their issuance.
func (c *Client) RequestAmortizedWithRandomness(challenge, nonces, blinds []byte) (*PendingBatch, error) {
	ptr := c.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer c.h.release()
	ch, chn := inBytes(challenge)
	no, non := inBytes(nonces)
	bl, bln := inBytes(blinds)
	var out *C.pp_pending_batch
	rc := C.pp_client_request_amortized_with_randomness((*C.pp_client)(ptr), ch, chn, no, non, bl, bln, &out)
	return newPendingBatch("pp_client_request_amortized_with_randomness", rc, out, len(nonces)/NonceLen)
}

// Count is the number of token requests in the batch. It stays available after Close.
func (b *PendingBatch) Count() int { return b.count }

// Request is the encoded AmortizedBatchTokenRequest to send to the issuer
// (token_type || truncated_token_key_id || blinded_msgs). It stays available after Close.
func (b *PendingBatch) Request() []byte { return append([]byte(nil), b.request...) }

// Finalize turns the issuer's encoded AmortizedBatchTokenResponse into the batch's N encoded
// Tokens, in the request's order (VoprfP384TokenLen or VoprfRistretto255TokenLen bytes each).
// The one DLEQ proof is verified over every pair before anything is unblinded: every token
// comes out, or none. A malformed response, or one with another number of elements than the
// request, answers ErrInvalidInput; a proof that does not verify ErrVerificationFailed.
func (b *PendingBatch) Finalize(response []byte) ([][]byte, error) {
	ptr := b.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer b.h.release()
	r, rn := inBytes(response)
	out, code := output(b.count*VoprfRistretto255TokenLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_batch_finalize((*C.pp_pending_batch)(ptr), r, rn, (*C.uint8_t)(o), n, l)
	})
	if code != CodeOK {
		return nil, fail("pp_pending_batch_finalize", code)
	}
	if b.count == 0 || len(out)%b.count != 0 {
		return nil, fail("pp_pending_batch_finalize", CodeInternal)
	}
	size := len(out) / b.count
	tokens := make([][]byte, b.count)
	for i := range tokens {
		tokens[i] = out[i*size : (i+1)*size : (i+1)*size]
	}
	return tokens, nil
}

// Close releases the batch, wiping its blinds. Idempotent; waits for the calls in flight.
func (b *PendingBatch) Close() error {
	b.h.close(&freed.pendingBatches, func(p unsafe.Pointer) { C.pp_pending_batch_free((*C.pp_pending_batch)(p)) })
	runtime.SetFinalizer(b, nil)
	return nil
}

// ---------------------------------------------------------------------------------------------
// PendingGenericBatch

// PendingGenericBatch is a generic batch on its way to the issuer: pending tokens of any types
// and keys, in order. It keeps its own reference to each of them (they may be closed first).
// Safe for concurrent use; may be finalized more than once.
type PendingGenericBatch struct {
	h       handle
	count   int
	request []byte
}

// acquireAll read-locks each distinct handle of hs once (a handle listed twice is locked once:
// a second read lock could deadlock against a Close waiting between the two). It answers
// false, holding nothing, when one is nil or closed; otherwise the pointers, in the order of
// hs, and the release of every lock it took.
func acquireAll(hs []*handle) ([]unsafe.Pointer, func(), bool) {
	ptrs := make([]unsafe.Pointer, len(hs))
	held := make(map[*handle]unsafe.Pointer, len(hs))
	var order []*handle
	release := func() {
		for _, h := range order {
			h.release()
		}
	}
	for i, h := range hs {
		if p, ok := held[h]; ok {
			ptrs[i] = p
			continue
		}
		p := h.acquire()
		if p == nil {
			release()
			return nil, nil, false
		}
		held[h] = p
		order = append(order, h)
		ptrs[i] = p
	}
	return ptrs, release, true
}

// cArray copies ptrs into a C array of C pointers (C memory: C never sees a Go pointer to Go
// pointers); free it with C.free.
func cArray(ptrs []unsafe.Pointer) unsafe.Pointer {
	mem := C.malloc(C.size_t(len(ptrs)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	if mem == nil {
		panic("privacypass: out of memory")
	}
	arr := unsafe.Slice((*unsafe.Pointer)(mem), len(ptrs))
	copy(arr, ptrs)
	return mem
}

// NewPendingGenericBatch makes a generic batch of the pending tokens (of any types and keys,
// from [Client.Request] or [Client.RequestWithRandomness]; at least one), in that order. The
// batch keeps its own reference to each: they may be closed afterwards. An empty list or a nil
// entry answers ErrInvalidInput, a closed pending token ErrClosed.
func NewPendingGenericBatch(pending []*PendingToken) (*PendingGenericBatch, error) {
	const op = "pp_pending_generic_batch_new"
	if len(pending) == 0 {
		return nil, fail(op, CodeInvalidInput)
	}
	hs := make([]*handle, len(pending))
	size := 8
	for i, p := range pending {
		if p == nil {
			return nil, fail(op, CodeInvalidInput)
		}
		hs[i] = &p.h
		size += len(p.request)
	}
	ptrs, release, ok := acquireAll(hs)
	if !ok {
		return nil, ErrClosed
	}
	defer release()
	arr := cArray(ptrs)
	defer C.free(arr)
	var out *C.pp_pending_generic_batch
	if err := check(op, C.pp_pending_generic_batch_new((**C.pp_pending_token)(arr), C.size_t(len(pending)), &out)); err != nil {
		return nil, err
	}
	b := &PendingGenericBatch{h: handle{ptr: unsafe.Pointer(out)}, count: len(pending)}
	runtime.SetFinalizer(b, (*PendingGenericBatch).Close)
	var code Code
	b.request, code = output(size, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_generic_batch_request(out, (*C.uint8_t)(o), n, l)
	})
	if code != CodeOK {
		b.Close()
		return nil, fail("pp_pending_generic_batch_request", code)
	}
	return b, nil
}

// Count is the number of entries in the batch. It stays available after Close.
func (b *PendingGenericBatch) Count() int { return b.count }

// Request is the encoded GenericBatchTokenRequest to send to the issuer (each entry's
// TokenRequest, in order). It stays available after Close.
func (b *PendingGenericBatch) Request() []byte { return append([]byte(nil), b.request...) }

// Finalize turns the issuer's encoded GenericBatchTokenResponse into one encoded Token per
// entry, in the batch's order: nil for an entry the issuer refused (absent from its answer; a
// partial answer, even one refusing every entry, is no error). Each answered entry is
// finalized and verified as [PendingToken.Finalize] would; the call fails if any one does not.
// A malformed response (not one entry per request, an entry of another type than its request)
// answers ErrInvalidInput, an entry that does not finalize into a valid token
// ErrVerificationFailed.
func (b *PendingGenericBatch) Finalize(response []byte) ([][]byte, error) {
	const op = "pp_pending_generic_batch_finalize"
	ptr := b.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer b.h.release()
	r, rn := inBytes(response)
	lens := make([]C.size_t, b.count)
	out, code := output(b.count*TokenLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_pending_generic_batch_finalize((*C.pp_pending_generic_batch)(ptr), r, rn,
			(*C.uint8_t)(o), n, l, &lens[0], C.size_t(len(lens)))
	})
	if code != CodeOK {
		return nil, fail(op, code)
	}
	tokens := make([][]byte, b.count)
	at := 0
	for i, l := range lens {
		n := int(l)
		if n == 0 {
			continue
		}
		if at+n > len(out) {
			return nil, fail(op, CodeInternal)
		}
		tokens[i] = out[at : at+n : at+n]
		at += n
	}
	if at != len(out) {
		return nil, fail(op, CodeInternal)
	}
	return tokens, nil
}

// Close releases the batch and its references to its pending tokens. Idempotent; waits for the
// calls in flight.
func (b *PendingGenericBatch) Close() error {
	b.h.close(&freed.pendingGenericBatches, func(p unsafe.Pointer) {
		C.pp_pending_generic_batch_free((*C.pp_pending_generic_batch)(p))
	})
	runtime.SetFinalizer(b, nil)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Issuance

// IssueAmortized answers an amortized batch (types 1 and 5): an encoded
// AmortizedBatchTokenRequest of at most maxTokens blinded elements in, the encoded
// AmortizedBatchTokenResponse out (every element evaluated with the issuer's key, one DLEQ
// proof for all of them). A batch of more than maxTokens elements answers ErrTooLarge (-32042,
// HTTP 413; refused before any evaluation); a malformed batch (truncated, trailing bytes, no
// element), one of another token type than the key's (an RSA issuer serves none) or for
// another key, or an element not in the group answers ErrUnprocessableBlindedToken. A negative
// maxTokens answers ErrInvalidInput.
func (i *Issuer) IssueAmortized(request []byte, maxTokens int) ([]byte, error) {
	const op = "pp_issuer_issue_amortized"
	if maxTokens < 0 {
		return nil, fail(op, CodeInvalidInput)
	}
	ptr := i.h.acquire()
	if ptr == nil {
		return nil, ErrClosed
	}
	defer i.h.release()
	r, rn := inBytes(request)
	out, code := output(len(request)+2*VoprfP384ScalarLen+8, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_issuer_issue_amortized((*C.pp_issuer)(ptr), r, rn, C.size_t(maxTokens), (*C.uint8_t)(o), n, l)
	})
	return out, fail(op, code)
}

// IssueGeneric answers a generic batch: an encoded GenericBatchTokenRequest of at most
// maxTokens TokenRequests of any types in, the encoded GenericBatchTokenResponse out. The keys
// of issuers (at least one) together serve the batch: each entry is issued, as [Issuer.Issue]
// would issue it alone, by the issuer its type and truncated key id name, on up to threads
// threads (0: the machine's available parallelism; 1: none started). An entry no issuer can
// serve is absent from the answer, which is no error: [PendingGenericBatch.Finalize] answers
// nil for it. A batch of more than maxTokens entries answers ErrTooLarge (-32042, HTTP 413), a
// malformed batch (truncated, trailing bytes, an entry of an unknown type, none at all)
// ErrUnprocessableBlindedToken; no issuers, a nil issuer or a negative maxTokens or threads
// ErrInvalidInput, a closed issuer ErrClosed.
func IssueGeneric(issuers []*Issuer, request []byte, maxTokens, threads int) ([]byte, error) {
	const op = "pp_issuer_issue_generic"
	if len(issuers) == 0 || maxTokens < 0 || threads < 0 {
		return nil, fail(op, CodeInvalidInput)
	}
	hs := make([]*handle, len(issuers))
	for k, i := range issuers {
		if i == nil {
			return nil, fail(op, CodeInvalidInput)
		}
		hs[k] = &i.h
	}
	ptrs, release, ok := acquireAll(hs)
	if !ok {
		return nil, ErrClosed
	}
	defer release()
	arr := cArray(ptrs)
	defer C.free(arr)
	r, rn := inBytes(request)
	out, code := output(2*len(request)+256, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_issuer_issue_generic((**C.pp_issuer)(arr), C.size_t(len(issuers)), r, rn,
			C.size_t(maxTokens), C.size_t(threads), (*C.uint8_t)(o), n, l)
	})
	return out, fail(op, code)
}
