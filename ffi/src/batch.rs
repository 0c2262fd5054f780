//! Batched issuance (draft-ietf-privacypass-batched-tokens -07) through the C API:
//! `pp_pending_batch`, an amortized batch of one VOPRF key (types 1 and 5: N blinded elements,
//! one DLEQ proof for all of them); `pp_pending_generic_batch`, pending tokens of any types
//! gathered into one GenericBatchTokenRequest; and the issuer's side of both.

use std::sync::Arc;

use privacypass_core::batch::{
    issue_generic, AmortizedBatchTokenRequest, AmortizedBatchTokenResponse, BatchError,
    GenericBatchTokenRequest, GenericBatchTokenResponse, OptionalTokenResponse,
    PendingAmortizedBatch,
};
use privacypass_core::wire::{TokenRequest, NONCE_LEN};
use privacypass_core::{Token, TokenType, VoprfIssueError};

use crate::boundary::{
    borrow, ffi_panic_boundary, free, give, handle_out, handles, input, share, Output,
};
use crate::client::{challenge_of, pp_client, pp_pending_token, voprf_client_error, ClientKind};
use crate::issuer::{pp_issuer, IssuerKind};
use crate::result::pp_result;

/// The most tokens a client asks for in one amortized batch (`pp_client_request_amortized*`),
/// as their doc comments state.
const MAX_BATCH_TOKENS: usize = 1024;

/// An amortized batch on its way to a VOPRF issuer (token type 1 or 5): N token requests for one
/// challenge and one key, with the secrets finalizing needs (wiped when the handle is freed).
/// Immutable; may be finalized more than once and from any thread.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_pending_batch {
    batch: PendingAmortizedBatch,
}

/// A generic batch on its way to the issuer: pending tokens of any types and keys, in order.
/// It keeps its own reference to each of them (they may be freed before it). Immutable.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_pending_generic_batch {
    entries: Vec<Arc<pp_pending_token>>,
}

fn amortized_of(
    client: &pp_client,
    make: impl FnOnce(&privacypass_core::VoprfClient) -> Result<PendingAmortizedBatch, pp_result>,
) -> Result<pp_pending_batch, pp_result> {
    match &client.client {
        ClientKind::Voprf(c) => Ok(pp_pending_batch { batch: make(c)? }),
        ClientKind::Rsa(_) => Err(pp_result::PP_ERR_UNSUPPORTED_TOKEN),
    }
}

/// An amortized batch of `count` token requests (1 to 1024) for an encoded
/// TokenChallenge, from a VOPRF client (`pp_client_new_voprf`), each with a fresh nonce and
/// blind from the OS random generator. Read the request to send with `pp_pending_batch_request`.
///
/// Returns `PP_ERR_UNSUPPORTED_TOKEN` for an RSA client or a challenge of another token type
/// than the client's key, `PP_ERR_INVALID_INPUT` for a malformed challenge or a `count` out of
/// range. `*out` is written only on success; free it with `pp_pending_batch_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_client_request_amortized(
    client: *const pp_client,
    challenge: *const u8,
    challenge_len: usize,
    count: usize,
    out: *mut *mut pp_pending_batch,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, a valid buffer and an out-pointer.
        let client = unsafe { borrow(client) }?;
        // SAFETY: as above.
        let challenge = challenge_of(unsafe { input(challenge, challenge_len) }?)?;
        let out = handle_out(out)?;
        if count == 0 || count > MAX_BATCH_TOKENS {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let pending = amortized_of(client, |c| {
            c.request_amortized(&challenge, count).map_err(voprf_client_error)
        })?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pending) };
        Ok(())
    }
}

/// FOR KNOWN-ANSWER TESTS ONLY: as `pp_client_request_amortized`, with the randomness given
/// instead of drawn: `nonces` is the N nonces one after the other (N × `PP_NONCE_LEN` bytes,
/// which gives N), `blinds` the N blinds' SerializeScalar one after the other (N × 48 bytes for
/// type 1, N × 32 for type 5), as the batched vectors' `nonces` and `blinds`. Reusing any of
/// them links tokens to their issuance; use `pp_client_request_amortized` otherwise.
///
/// Returns `PP_ERR_INVALID_INPUT` when a length is not a whole number of entries, N is 0 or
/// over 1024, or a blind is not a canonical nonzero scalar.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_client_request_amortized_with_randomness(
    client: *const pp_client,
    challenge: *const u8,
    challenge_len: usize,
    nonces: *const u8,
    nonces_len: usize,
    blinds: *const u8,
    blinds_len: usize,
    out: *mut *mut pp_pending_batch,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, valid buffers and an out-pointer.
        let client = unsafe { borrow(client) }?;
        // SAFETY: as above.
        let challenge = challenge_of(unsafe { input(challenge, challenge_len) }?)?;
        // SAFETY: as above.
        let nonces = unsafe { input(nonces, nonces_len) }?;
        // SAFETY: as above.
        let blinds = unsafe { input(blinds, blinds_len) }?;
        let out = handle_out(out)?;
        let count = nonces.len() / NONCE_LEN;
        if count == 0
            || count > MAX_BATCH_TOKENS
            || nonces.len() % NONCE_LEN != 0
            || blinds.is_empty()
            || blinds.len() % count != 0
        {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let nonces: Vec<[u8; NONCE_LEN]> = nonces
            .chunks_exact(NONCE_LEN)
            .map(|n| n.try_into().map_err(|_| pp_result::PP_ERR_INVALID_INPUT))
            .collect::<Result<_, _>>()?;
        let blinds: Vec<&[u8]> = blinds.chunks_exact(blinds.len() / count).collect();
        let pending = amortized_of(client, |c| {
            c.request_amortized_with(&challenge, &nonces, &blinds)
                .map_err(voprf_client_error)
        })?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pending) };
        Ok(())
    }
}

/// Frees a pending amortized batch (wiping its blinds). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_batch_free(batch: *mut pp_pending_batch) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_client_request_amortized* (or NULL), once.
        unsafe { free(batch) }
    }
}

/// The encoded AmortizedBatchTokenRequest to send to the issuer
/// (`token_type || truncated_token_key_id || blinded_msgs<V>`), into a caller-owned buffer.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_batch_request(
    batch: *const pp_pending_batch,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let batch = unsafe { borrow(batch) }?;
        let output = Output::new(out, cap, out_len)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&batch.batch.request().encode()) }
    }
}

/// Finalizes the issuer's encoded AmortizedBatchTokenResponse into the batch's N Tokens, in the
/// request's order, one after the other, each the Token length of the batch's type
/// (`PP_VOPRF_P384_TOKEN_LEN` or `PP_VOPRF_RISTRETTO255_TOKEN_LEN`): `*out_len` is N times that,
/// and a short buffer answers `PP_ERR_BUFFER_TOO_SMALL` with it. The batch's one DLEQ proof is
/// verified over every pair before anything is unblinded: every token comes out, or none.
///
/// Returns `PP_ERR_INVALID_INPUT` for a malformed response or one with another number of
/// elements than the request, `PP_ERR_VERIFICATION_FAILED` when the proof does not verify.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_batch_finalize(
    batch: *const pp_pending_batch,
    response: *const u8,
    response_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let batch = unsafe { borrow(batch) }?;
        // SAFETY: as above.
        let response = unsafe { input(response, response_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let request = batch.batch.request();
        let count = request.blinded_msgs.len();
        // The core answers a malformed response as one that does not verify; here it is
        // malformed input, as for a single token.
        let decoded = AmortizedBatchTokenResponse::decode(request.token_type, response, count)
            .map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        if decoded.evaluated_msgs.len() != count {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let tokens = batch.batch.finalize(response).map_err(voprf_client_error)?;
        let bytes: Vec<u8> = tokens.iter().flat_map(Token::encode).collect();
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&bytes) }
    }
}

/// A generic batch of the `n` pending tokens `pending[0..n]` (from `pp_client_request*`, of any
/// types and keys, at least one), in that order. The batch keeps its own reference to each: the
/// caller may free them afterwards. Read the request to send with
/// `pp_pending_generic_batch_request`. The array is only read (it is not `const` in the header
/// only because the binding's prototype reader takes no `*const *`).
///
/// Returns `PP_ERR_INVALID_INPUT` for `n == 0` and `PP_ERR_NULL_ARGUMENT` when `pending` or one
/// of its entries is NULL. `*out` is written only on success; free it with
/// `pp_pending_generic_batch_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_generic_batch_new(
    pending: *mut *const pp_pending_token,
    n: usize,
    out: *mut *mut pp_pending_generic_batch,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes an array of `n` live handles.
        let pending = unsafe { handles(pending.cast_const(), n) }?;
        let out = handle_out(out)?;
        if pending.is_empty() {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let entries = pending
            .iter()
            // SAFETY: each is a live handle (or NULL, refused).
            .map(|&p| unsafe { share(p) })
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pp_pending_generic_batch { entries }) };
        Ok(())
    }
}

/// Frees a pending generic batch (and its references to its pending tokens). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_generic_batch_free(batch: *mut pp_pending_generic_batch) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_pending_generic_batch_new (or NULL), once.
        unsafe { free(batch) }
    }
}

impl pp_pending_generic_batch {
    fn request(&self) -> GenericBatchTokenRequest {
        GenericBatchTokenRequest {
            token_requests: self
                .entries
                .iter()
                .map(|e| e.token_request().clone())
                .collect(),
        }
    }

    /// Each entry's Token, or `None` where the issuer refused it.
    fn finalize(&self, response: &[u8]) -> Result<Vec<Option<Token>>, pp_result> {
        privacypass_core::batch::finalize_generic(
            &self.entries,
            response,
            |entry| entry.token_request().token_type,
            |_, entry, bytes| entry.finalize(bytes),
            |_| pp_result::PP_ERR_INVALID_INPUT,
        )
    }
}

/// The encoded GenericBatchTokenRequest to send to the issuer (`generic_token_requests<V>`:
/// each entry's TokenRequest, in order), into a caller-owned buffer.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_generic_batch_request(
    batch: *const pp_pending_generic_batch,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let batch = unsafe { borrow(batch) }?;
        let output = Output::new(out, cap, out_len)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&batch.request().encode()) }
    }
}

/// Finalizes the issuer's encoded GenericBatchTokenResponse. Writes the Token of every entry the
/// issuer answered, in the batch's order, one after the other into `out`, and each entry's
/// Token length into `token_lens[i]`: 0 for an entry the issuer refused (absent from its
/// answer), otherwise that entry's type's Token length (`PP_TOKEN_LEN`,
/// `PP_VOPRF_P384_TOKEN_LEN`, `PP_VOPRF_RISTRETTO255_TOKEN_LEN`). Entry i's token begins at the
/// sum of `token_lens[0..i]`. A partial answer (some entries refused, even all) is `PP_OK`.
/// `token_lens` must hold at least n entries (n as given to `pp_pending_generic_batch_new`);
/// the first n are written, and only on success.
///
/// Each answered entry is finalized and verified as a single response would be; the call fails
/// if any one does not. A short `out` answers `PP_ERR_BUFFER_TOO_SMALL` with the bytes needed
/// in `*out_len` and writes nothing else.
///
/// Returns `PP_ERR_NULL_ARGUMENT` for a NULL `token_lens`, `PP_ERR_INVALID_INPUT` when
/// `token_lens_count` is below n or the response is malformed (not one entry per request, or
/// an entry of another type than its request), `PP_ERR_VERIFICATION_FAILED` when an entry does
/// not finalize into a valid token.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_pending_generic_batch_finalize(
    batch: *const pp_pending_generic_batch,
    response: *const u8,
    response_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    token_lens: *mut usize,
    token_lens_count: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let batch = unsafe { borrow(batch) }?;
        // SAFETY: as above.
        let response = unsafe { input(response, response_len) }?;
        let output = Output::new(out, cap, out_len)?;
        if token_lens.is_null() {
            return Err(pp_result::PP_ERR_NULL_ARGUMENT);
        }
        let n = batch.entries.len();
        if token_lens_count < n {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let tokens = batch.finalize(response)?;
        let encoded: Vec<Option<Vec<u8>>> =
            tokens.iter().map(|t| t.as_ref().map(Token::encode)).collect();
        let bytes: Vec<u8> = encoded.iter().flatten().flatten().copied().collect();
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&bytes) }?;
        for (i, token) in encoded.iter().enumerate() {
            // SAFETY: non-NULL, and the caller promises `token_lens_count >= n` writable
            // entries.
            unsafe { token_lens.add(i).write(token.as_ref().map_or(0, Vec::len)) };
        }
        Ok(())
    }
}

/// An amortized batch (types 1 and 5): an encoded AmortizedBatchTokenRequest of at most
/// `max_tokens` blinded elements in, the encoded AmortizedBatchTokenResponse out
/// (`evaluated_msgs<V> || evaluated_proof`: every element evaluated with the key the request
/// names, one DLEQ proof for all of them).
///
/// Returns `PP_ERR_TOO_LARGE` (-32042, HTTP 413) for a batch of more than `max_tokens`
/// elements (refused before any evaluation), and `PP_ERR_UNPROCESSABLE_BLINDED_TOKEN` as `pp_issuer_issue` does
/// for a single request: a malformed batch (truncated, trailing bytes, a list that is not a
/// whole number of elements, a non-minimal length, none at all), another token type than the
/// issuer's key (an RSA issuer serves none), another key, or an element not in the group.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_issue_amortized(
    issuer: *const pp_issuer,
    request: *const u8,
    request_len: usize,
    max_tokens: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let issuer = unsafe { borrow(issuer) }?;
        // SAFETY: as above.
        let request = unsafe { input(request, request_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let response = match &issuer.kind {
            IssuerKind::Voprf { issuer, .. } => issuer
                .issue_amortized(request, privacypass_core::unix_now(), max_tokens)
                .map_err(|e| pp_result::from(e.code()))?
                .encode(),
            IssuerKind::Rsa { .. } => {
                return Err(match AmortizedBatchTokenRequest::decode(request, max_tokens) {
                    Err(BatchError::TooManyTokens { max }) => too_many(max),
                    _ => pp_result::PP_ERR_UNPROCESSABLE_BLINDED_TOKEN,
                })
            }
        };
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&response) }
    }
}

/// What a batch of more than `max` tokens answers: the core's code for it (as
/// `VoprfIssuer::issue_amortized` answers), whatever the kind of batch or issuer.
fn too_many(max: usize) -> pp_result {
    pp_result::from(VoprfIssueError::TooManyTokens { max }.code())
}

/// Whether an issuer's key is the one a TokenRequest names (its type and truncated key id).
fn serves(issuer: &pp_issuer, request: &TokenRequest) -> bool {
    let (token_type, truncated) = match &issuer.kind {
        IssuerKind::Rsa { key, .. } => (
            TokenType::BlindRsa2048,
            key.public_key().truncated_token_key_id(),
        ),
        IssuerKind::Voprf { key, .. } => {
            (key.token_type(), key.public_key().truncated_token_key_id())
        }
    };
    request.token_type == token_type && request.truncated_token_key_id == truncated
}

fn keys_of(issuer: &pp_issuer) -> &Arc<privacypass_core::KeySet> {
    match &issuer.kind {
        IssuerKind::Rsa { issuer, .. } => issuer.keys(),
        IssuerKind::Voprf { issuer, .. } => issuer.keys(),
    }
}

/// Issues a generic batch with the keys of several issuers: each entry goes to the first issuer
/// whose key it names, and each issuer's share through `batch::issue_generic`; an entry no
/// issuer's key serves is refused (`None`), as one its issuer refuses.
fn issue_with(
    issuers: &[&pp_issuer],
    request: &GenericBatchTokenRequest,
    now: u64,
    threads: usize,
) -> GenericBatchTokenResponse {
    let mut token_responses: Vec<OptionalTokenResponse> = vec![None; request.token_requests.len()];
    let owner: Vec<Option<usize>> = request
        .token_requests
        .iter()
        .map(|r| issuers.iter().position(|i| serves(i, r)))
        .collect();
    for (index, issuer) in issuers.iter().enumerate() {
        let share: Vec<usize> = (0..owner.len())
            .filter(|&i| owner[i] == Some(index))
            .collect();
        if share.is_empty() {
            continue;
        }
        let sub = GenericBatchTokenRequest {
            token_requests: share
                .iter()
                .map(|&i| request.token_requests[i].clone())
                .collect(),
        };
        let answer = issue_generic(keys_of(issuer), &sub, now, threads);
        for (&i, response) in share.iter().zip(answer.token_responses) {
            token_responses[i] = response;
        }
    }
    GenericBatchTokenResponse { token_responses }
}

/// A generic batch: an encoded GenericBatchTokenRequest of at most `max_tokens` TokenRequests
/// of any types in, the encoded GenericBatchTokenResponse out. The keys of
/// `issuers[0..n_issuers]` (an array only read) together serve the batch: each entry is issued, as `pp_issuer_issue`
/// would issue it alone, by the issuer whose key its type and truncated key id name, on up to
/// `threads` threads (0: the machine's available parallelism; 1 starts none; any started are
/// joined before the call returns). An entry no issuer can serve (another key, a blinded
/// message not below the modulus or not in the group) is absent from the answer: a partial
/// answer is `PP_OK`, and `pp_pending_generic_batch_finalize` reports which entries it holds.
///
/// Returns `PP_ERR_TOO_LARGE` (-32042, HTTP 413) for a batch of more than `max_tokens` entries,
/// `PP_ERR_UNPROCESSABLE_BLINDED_TOKEN` for a malformed batch (truncated, trailing bytes, a
/// non-minimal length, an entry of a type this library does not know, none at all),
/// `PP_ERR_INVALID_INPUT` for `n_issuers == 0` and `PP_ERR_NULL_ARGUMENT` for a NULL issuer.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_issuer_issue_generic(
    issuers: *mut *const pp_issuer,
    n_issuers: usize,
    request: *const u8,
    request_len: usize,
    max_tokens: usize,
    threads: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes an array of live handles and valid buffers.
        let issuers = unsafe { handles(issuers.cast_const(), n_issuers) }?
            .iter()
            // SAFETY: as above.
            .map(|&i| unsafe { borrow(i) })
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: as above.
        let request = unsafe { input(request, request_len) }?;
        let output = Output::new(out, cap, out_len)?;
        if issuers.is_empty() {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let request = GenericBatchTokenRequest::decode(request, max_tokens).map_err(|e| match e {
            BatchError::TooManyTokens { max } => too_many(max),
            _ => pp_result::PP_ERR_UNPROCESSABLE_BLINDED_TOKEN,
        })?;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let response = issue_with(&issuers, &request, privacypass_core::unix_now(), threads);
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&response.encode()) }
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::challenge::pp_challenge_encode;
    use crate::client::pp_pending_token_free;
    use crate::client::{pp_client_free, pp_client_new, pp_client_new_voprf, pp_client_request};
    use crate::issuer::{
        pp_issuer_free, pp_issuer_generate, pp_issuer_generate_voprf, pp_issuer_public_key,
    };
    use crate::{PP_TOKEN_LEN, PP_VOPRF_RISTRETTO255_TOKEN_LEN};

    /// `call(out, cap, out_len)` into a fresh buffer, asserting success.
    unsafe fn bytes(call: impl FnOnce(*mut u8, usize, *mut usize) -> pp_result) -> Vec<u8> {
        let mut out = vec![0u8; 1 << 16];
        let mut len = 0;
        assert_eq!(
            call(out.as_mut_ptr(), out.len(), &mut len),
            pp_result::PP_OK
        );
        out.truncate(len);
        out
    }

    unsafe fn challenge(token_type: u16) -> Vec<u8> {
        let name = b"issuer.example";
        // SAFETY: valid buffers.
        unsafe {
            bytes(|o, c, l| {
                pp_challenge_encode(
                    token_type,
                    name.as_ptr().cast(),
                    name.len(),
                    null(),
                    0,
                    null(),
                    0,
                    o,
                    c,
                    l,
                )
            })
        }
    }

    unsafe fn voprf_client(issuer: *const pp_issuer) -> *mut pp_client {
        // SAFETY: a live issuer and valid buffers.
        unsafe {
            let key = bytes(|o, c, l| pp_issuer_public_key(issuer, o, c, l));
            let mut client = null_mut();
            assert_eq!(
                pp_client_new_voprf(5, key.as_ptr(), key.len(), &mut client),
                pp_result::PP_OK
            );
            client
        }
    }

    #[test]
    fn an_amortized_batch_issues_finalizes_and_refuses_what_it_must() {
        // SAFETY: every pointer below is valid for its call.
        unsafe {
            let mut issuer = null_mut();
            assert_eq!(pp_issuer_generate_voprf(5, &mut issuer), pp_result::PP_OK);
            let client = voprf_client(issuer);
            let challenge = challenge(5);
            let mut batch = null_mut();
            assert_eq!(
                pp_client_request_amortized(
                    client,
                    challenge.as_ptr(),
                    challenge.len(),
                    3,
                    &mut batch
                ),
                pp_result::PP_OK
            );
            let request = bytes(|o, c, l| pp_pending_batch_request(batch, o, c, l));
            let response = bytes(|o, c, l| {
                pp_issuer_issue_amortized(issuer, request.as_ptr(), request.len(), 3, o, c, l)
            });
            // Too small: the length of three tokens, and nothing written.
            let mut len = 0;
            assert_eq!(
                pp_pending_batch_finalize(
                    batch,
                    response.as_ptr(),
                    response.len(),
                    null_mut(),
                    0,
                    &mut len
                ),
                pp_result::PP_ERR_BUFFER_TOO_SMALL
            );
            assert_eq!(len, 3 * PP_VOPRF_RISTRETTO255_TOKEN_LEN);
            let tokens = bytes(|o, c, l| {
                pp_pending_batch_finalize(batch, response.as_ptr(), response.len(), o, c, l)
            });
            assert_eq!(tokens.len(), 3 * PP_VOPRF_RISTRETTO255_TOKEN_LEN);
            // Over the limit: the core's code for it.
            let mut out = [0u8; 1024];
            assert_eq!(
                pp_issuer_issue_amortized(
                    issuer,
                    request.as_ptr(),
                    request.len(),
                    2,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len
                ),
                pp_result::from(VoprfIssueError::TooManyTokens { max: 2 }.code())
            );
            // An RSA client makes no amortized batch.
            let mut rsa = null_mut();
            assert_eq!(pp_issuer_generate(&mut rsa), pp_result::PP_OK);
            let spki = bytes(|o, c, l| pp_issuer_public_key(rsa, o, c, l));
            let mut rsa_client = null_mut();
            assert_eq!(
                pp_client_new(spki.as_ptr(), spki.len(), &mut rsa_client),
                pp_result::PP_OK
            );
            let mut none = null_mut();
            assert_eq!(
                pp_client_request_amortized(
                    rsa_client,
                    challenge.as_ptr(),
                    challenge.len(),
                    3,
                    &mut none
                ),
                pp_result::PP_ERR_UNSUPPORTED_TOKEN
            );
            assert!(none.is_null());
            assert_eq!(
                pp_issuer_issue_amortized(
                    rsa,
                    request.as_ptr(),
                    request.len(),
                    3,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len
                ),
                pp_result::PP_ERR_UNPROCESSABLE_BLINDED_TOKEN
            );
            pp_client_free(rsa_client);
            pp_issuer_free(rsa);
            pp_pending_batch_free(batch);
            pp_client_free(client);
            pp_issuer_free(issuer);
        }
    }

    #[test]
    fn a_generic_batch_over_two_issuers_marks_the_entry_none_serves() {
        // SAFETY: every pointer below is valid for its call.
        unsafe {
            let (mut rsa, mut voprf, mut absent) = (null_mut(), null_mut(), null_mut());
            assert_eq!(pp_issuer_generate(&mut rsa), pp_result::PP_OK);
            assert_eq!(pp_issuer_generate_voprf(5, &mut voprf), pp_result::PP_OK);
            assert_eq!(pp_issuer_generate_voprf(5, &mut absent), pp_result::PP_OK);
            let spki = bytes(|o, c, l| pp_issuer_public_key(rsa, o, c, l));
            let mut rsa_client = null_mut();
            assert_eq!(
                pp_client_new(spki.as_ptr(), spki.len(), &mut rsa_client),
                pp_result::PP_OK
            );
            let clients = [rsa_client, voprf_client(voprf), voprf_client(absent)];
            let mut pending = [null_mut(); 3];
            for (i, client) in clients.iter().enumerate() {
                let challenge = challenge(if i == 0 { 2 } else { 5 });
                assert_eq!(
                    pp_client_request(
                        *client,
                        challenge.as_ptr(),
                        challenge.len(),
                        &mut pending[i]
                    ),
                    pp_result::PP_OK
                );
            }
            let mut entries = pending.map(|p| p.cast_const());
            let mut batch = null_mut();
            assert_eq!(
                pp_pending_generic_batch_new(entries.as_mut_ptr(), 3, &mut batch),
                pp_result::PP_OK
            );
            // The batch holds its own references.
            for p in pending {
                pp_pending_token_free(p);
            }
            let request = bytes(|o, c, l| pp_pending_generic_batch_request(batch, o, c, l));
            let mut issuers = [rsa.cast_const(), voprf.cast_const()];
            let response = bytes(|o, c, l| {
                pp_issuer_issue_generic(
                    issuers.as_mut_ptr(),
                    2,
                    request.as_ptr(),
                    request.len(),
                    3,
                    0,
                    o,
                    c,
                    l,
                )
            });
            let mut lens = [usize::MAX; 3];
            let tokens = bytes(|o, c, l| {
                pp_pending_generic_batch_finalize(
                    batch,
                    response.as_ptr(),
                    response.len(),
                    o,
                    c,
                    l,
                    lens.as_mut_ptr(),
                    3,
                )
            });
            assert_eq!(lens, [PP_TOKEN_LEN, PP_VOPRF_RISTRETTO255_TOKEN_LEN, 0]);
            assert_eq!(tokens.len(), lens.iter().sum::<usize>());
            // A short length array, and over the limit.
            let mut out = [0u8; 4096];
            let mut len = 0;
            assert_eq!(
                pp_pending_generic_batch_finalize(
                    batch,
                    response.as_ptr(),
                    response.len(),
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len,
                    lens.as_mut_ptr(),
                    2
                ),
                pp_result::PP_ERR_INVALID_INPUT
            );
            assert_eq!(
                pp_issuer_issue_generic(
                    issuers.as_mut_ptr(),
                    2,
                    request.as_ptr(),
                    request.len(),
                    2,
                    1,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len
                ),
                pp_result::from(VoprfIssueError::TooManyTokens { max: 2 }.code())
            );
            pp_pending_generic_batch_free(batch);
            for client in clients {
                pp_client_free(client);
            }
            for issuer in [rsa, voprf, absent] {
                pp_issuer_free(issuer);
            }
        }
    }
}
