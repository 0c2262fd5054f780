//! `pp_client` and `pp_pending_token`: the client side of issuance. A client makes a
//! TokenRequest for a challenge and an issuer key, keeps what finalizing needs in a pending
//! token, and turns the issuer's TokenResponse into a Token (verified before it is returned).

use std::sync::Arc;

use privacypass_core::client::ClientError;
use privacypass_core::rsa_blind::SALT_LEN;
use privacypass_core::wire::{TokenRequest, NONCE_LEN};
use privacypass_core::{
    Client, PendingToken, PendingVoprfToken, PublicKey, Token, TokenChallenge, VoprfClient,
    VoprfClientError, VoprfPublicKey,
};

use crate::boundary::{borrow, ffi_panic_boundary, free, give, handle_out, input, Output};
use crate::issuer::voprf_type;
use crate::result::pp_result;

/// A client of one issuer key. Immutable; backed by an `Arc`, so it may be shared across
/// threads.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_client {
    pub(crate) client: ClientKind,
}

#[derive(Debug)]
pub(crate) enum ClientKind {
    Rsa(Client),
    Voprf(VoprfClient),
}

/// A token request on its way to the issuer, with the secrets finalizing needs (the blinding
/// inverse is wiped when the handle is freed). Immutable; may be finalized more than once and
/// from any thread.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_pending_token {
    pending: PendingKind,
}

#[derive(Debug)]
enum PendingKind {
    Rsa(PendingToken),
    Voprf(Box<PendingVoprfToken>),
}

impl pp_pending_token {
    /// The TokenRequest this pending token sends.
    pub(crate) fn token_request(&self) -> &TokenRequest {
        match &self.pending {
            PendingKind::Rsa(p) => p.request(),
            PendingKind::Voprf(p) => p.request(),
        }
    }

    /// The Token for the issuer's encoded TokenResponse, verified against the issuer key.
    pub(crate) fn finalize(&self, response: &[u8]) -> Result<Token, pp_result> {
        match &self.pending {
            PendingKind::Rsa(p) => p.finalize(response).map_err(client_error),
            PendingKind::Voprf(p) => p.finalize(response).map_err(voprf_client_error),
        }
    }
}

pub(crate) fn voprf_client_error(e: VoprfClientError) -> pp_result {
    match e {
        VoprfClientError::WrongTokenType(..) => pp_result::PP_ERR_UNSUPPORTED_TOKEN,
        VoprfClientError::Blinding => pp_result::PP_ERR_INVALID_INPUT,
        VoprfClientError::Response(_) => pp_result::PP_ERR_INVALID_INPUT,
        VoprfClientError::InvalidProof | VoprfClientError::InvalidResponse => {
            pp_result::PP_ERR_VERIFICATION_FAILED
        }
    }
}

pub(crate) fn client_error(e: ClientError) -> pp_result {
    match e {
        ClientError::UnsupportedTokenType(_) => pp_result::PP_ERR_UNSUPPORTED_TOKEN,
        ClientError::Rng => pp_result::PP_ERR_INTERNAL,
        ClientError::Blinding(_) | ClientError::Response(_) => pp_result::PP_ERR_INVALID_INPUT,
        ClientError::InvalidSignature => pp_result::PP_ERR_VERIFICATION_FAILED,
    }
}

pub(crate) fn challenge_of(bytes: &[u8]) -> Result<TokenChallenge, pp_result> {
    TokenChallenge::decode(bytes).map_err(|_| pp_result::PP_ERR_INVALID_INPUT)
}

/// A client for the issuer public key `issuer_spki` (SubjectPublicKeyInfo, DER: the
/// `token-key` of a challenge or of the issuer directory, decoded).
///
/// Returns `PP_ERR_INVALID_KEY` when it is not a usable RSA-2048 key. `*out` is written only on
/// success; free it with `pp_client_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_client_new(
    issuer_spki: *const u8,
    issuer_spki_len: usize,
    out: *mut *mut pp_client,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let spki = unsafe { input(issuer_spki, issuer_spki_len) }?;
        let out = handle_out(out)?;
        let key = PublicKey::from_spki(spki).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pp_client { client: ClientKind::Rsa(Client::new(Arc::new(key))) }) };
        Ok(())
    }
}

/// A client for a VOPRF issuer public key: `token_type` 1 (`PP_TOKEN_TYPE_VOPRF_P384`) or 5
/// (`PP_TOKEN_TYPE_VOPRF_RISTRETTO255`) and the serialized public element (SerializeElement:
/// 49 bytes, compressed, for P-384; 32 bytes for ristretto255), the `token-key` of a challenge
/// or directory of that type, decoded, or what `pp_issuer_public_key` writes for a VOPRF issuer.
///
/// Returns `PP_ERR_UNSUPPORTED_TOKEN` for another token type and `PP_ERR_INVALID_KEY` when the
/// bytes are not a valid element of the group. `*out` is written only on success; free it with
/// `pp_client_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_client_new_voprf(
    token_type: u16,
    public_key: *const u8,
    public_key_len: usize,
    out: *mut *mut pp_client,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let bytes = unsafe { input(public_key, public_key_len) }?;
        let out = handle_out(out)?;
        let token_type = voprf_type(token_type)?;
        let key = VoprfPublicKey::from_bytes(token_type, bytes)
            .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        let client = ClientKind::Voprf(VoprfClient::new(Arc::new(key)));
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pp_client { client }) };
        Ok(())
    }
}

/// Frees a client. NULL is a no-op. Pending tokens made by it stay valid.
#[no_mangle]
pub unsafe extern "C" fn pp_client_free(client: *mut pp_client) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_client_new (or NULL), once.
        unsafe { free(client) }
    }
}

/// Starts issuance for an encoded TokenChallenge: a fresh nonce, PSS salt and blinding factor
/// from the OS random generator (`getrandom`, safe after `fork()`). Read the TokenRequest to
/// send with `pp_pending_token_request`.
///
/// For a VOPRF client (`pp_client_new_voprf`): a fresh nonce and blind.
///
/// Returns `PP_ERR_INVALID_INPUT` for a malformed challenge and `PP_ERR_UNSUPPORTED_TOKEN` for
/// a challenge of another token type than the client's key. `*out` is written only on success; free it with
/// `pp_pending_token_free`.
#[no_mangle]
pub unsafe extern "C" fn pp_client_request(
    client: *const pp_client,
    challenge: *const u8,
    challenge_len: usize,
    out: *mut *mut pp_pending_token,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, a valid buffer and an out-pointer.
        let client = unsafe { borrow(client) }?;
        // SAFETY: as above.
        let challenge = challenge_of(unsafe { input(challenge, challenge_len) }?)?;
        let out = handle_out(out)?;
        let pending = match &client.client {
            ClientKind::Rsa(c) => PendingKind::Rsa(c.request(&challenge).map_err(client_error)?),
            ClientKind::Voprf(c) => {
                PendingKind::Voprf(Box::new(
                    c.request(&challenge).map_err(voprf_client_error)?,
                ))
            }
        };
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pp_pending_token { pending }) };
        Ok(())
    }
}

/// FOR KNOWN-ANSWER TESTS ONLY: as `pp_client_request`, with the nonce (`PP_NONCE_LEN` bytes),
/// PSS salt (`PP_SALT_LEN` bytes) and blinding factor r (big-endian, 1 to 512 bytes, reduced
/// modulo n) given instead of drawn. Reusing any of them links tokens to their issuance and
/// breaks the client's privacy; use `pp_client_request` otherwise.
///
/// For a VOPRF client the salt must be empty (`NULL, 0`) and `blind` is the blind's
/// SerializeScalar (48 bytes for type 1, 32 for type 5), as the vectors' `blind`.
///
/// Returns `PP_ERR_INVALID_INPUT` when a length is wrong or r is not invertible modulo n (a
/// VOPRF blind that is not a canonical nonzero scalar).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_client_request_with_randomness(
    client: *const pp_client,
    challenge: *const u8,
    challenge_len: usize,
    nonce: *const u8,
    nonce_len: usize,
    salt: *const u8,
    salt_len: usize,
    blind: *const u8,
    blind_len: usize,
    out: *mut *mut pp_pending_token,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle, valid buffers and an out-pointer.
        let client = unsafe { borrow(client) }?;
        // SAFETY: as above.
        let challenge = challenge_of(unsafe { input(challenge, challenge_len) }?)?;
        // SAFETY: as above.
        let nonce: &[u8; NONCE_LEN] = unsafe { input(nonce, nonce_len) }?
            .try_into()
            .map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        // SAFETY: as above.
        let salt = unsafe { input(salt, salt_len) }?;
        // SAFETY: as above.
        let blind = unsafe { input(blind, blind_len) }?;
        // r is reduced modulo n; longer inputs than 2n bytes make no sense.
        if blind.is_empty() || blind.len() > 2 * privacypass_core::rsa_blind::MODULUS_LEN {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let out = handle_out(out)?;
        let pending = match &client.client {
            ClientKind::Rsa(c) => {
                let salt: &[u8; SALT_LEN] =
                    salt.try_into().map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
                PendingKind::Rsa(c.request_with(&challenge, nonce, salt, blind).map_err(client_error)?)
            }
            ClientKind::Voprf(c) => {
                if !salt.is_empty() {
                    return Err(pp_result::PP_ERR_INVALID_INPUT);
                }
                PendingKind::Voprf(Box::new(c.request_with(&challenge, nonce, blind).map_err(voprf_client_error)?))
            }
        };
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, pp_pending_token { pending }) };
        Ok(())
    }
}

/// Frees a pending token (wiping its blinding secret). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_token_free(pending: *mut pp_pending_token) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_client_request* (or NULL), once.
        unsafe { free(pending) }
    }
}

/// The encoded TokenRequest to send to the issuer (`PP_TOKEN_REQUEST_LEN` bytes for type 2,
/// `PP_VOPRF_P384_TOKEN_REQUEST_LEN` or `PP_VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN`), into a
/// caller-owned buffer.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_token_request(
    pending: *const pp_pending_token,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let pending = unsafe { borrow(pending) }?;
        let output = Output::new(out, cap, out_len)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&pending.token_request().encode()) }
    }
}

/// Finalizes the issuer's encoded TokenResponse into the encoded Token (`PP_TOKEN_LEN` bytes
/// for type 2, `PP_VOPRF_P384_TOKEN_LEN` or `PP_VOPRF_RISTRETTO255_TOKEN_LEN`), verified
/// against the issuer key before it is written (for types 1 and 5: the issuer's DLEQ proof is
/// checked before anything is unblinded).
///
/// Returns `PP_ERR_INVALID_INPUT` for a response of the wrong length and
/// `PP_ERR_VERIFICATION_FAILED` when the response does not finalize into a valid token.
#[no_mangle]
pub unsafe extern "C" fn pp_pending_token_finalize(
    pending: *const pp_pending_token,
    token_response: *const u8,
    token_response_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let pending = unsafe { borrow(pending) }?;
        // SAFETY: as above.
        let response = unsafe { input(token_response, token_response_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let token = pending.finalize(response)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&token.encode()) }
    }
}
