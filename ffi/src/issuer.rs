//! `pp_issuer`: blind-signs token requests with one RSA-2048 issuer key, so that a service can
//! issue tokens in-process.

use std::ffi::c_char;
use std::sync::Arc;

use privacypass::{Issuer, IssuerKey, KeySet, KeyValidity};

use crate::boundary::{borrow, ffi_panic_boundary, free, give, handle_out, input, Output};
use crate::result::pp_result;

/// An issuer with one private key. Immutable; backed by an `Arc`, so one issuer may sign on
/// any number of threads at once.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_issuer {
    issuer: Issuer,
    key: Arc<IssuerKey>,
}

fn issuer_of(key: IssuerKey) -> Result<pp_issuer, pp_result> {
    let mut set = KeySet::new(0);
    let validity = KeyValidity::new(0, u64::MAX).map_err(|_| pp_result::PP_ERR_INTERNAL)?;
    let key = set
        .insert_issuer_key(key, validity)
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
    Ok(pp_issuer {
        issuer: Issuer::new(Arc::new(set)),
        key,
    })
}

/// An issuer for an RSA-2048 private key in PEM: PKCS#8 (`PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`), e = 65537. The key issues from the epoch on, without end.
///
/// Returns `PP_ERR_INVALID_KEY` for anything else. `*out` is written only on success; free it
/// with `pp_issuer_free`. The key material never appears in results or messages.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_new_from_pem(
    pem: *const c_char,
    pem_len: usize,
    out: *mut *mut pp_issuer,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let pem = unsafe { input(pem.cast(), pem_len) }?;
        let out = handle_out(out)?;
        let key = IssuerKey::from_pem(pem).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        let issuer = issuer_of(key)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, issuer) };
        Ok(())
    }
}

/// An issuer with a fresh RSA-2048 key from the OS random generator (for tests and examples;
/// a service loads its keys with `pp_issuer_new_from_pem`). Takes a fraction of a second.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_generate(out: *mut *mut pp_issuer) -> pp_result {
    ffi_panic_boundary! {
        let out = handle_out(out)?;
        let key = IssuerKey::generate().map_err(|_| pp_result::PP_ERR_INTERNAL)?;
        let issuer = issuer_of(key)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, issuer) };
        Ok(())
    }
}

/// Frees an issuer. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_free(issuer: *mut pp_issuer) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a handle from pp_issuer_new_from_pem or pp_issuer_generate
        // (or NULL), once.
        unsafe { free(issuer) }
    }
}

/// The issuer's public key as the RFC 9578 SubjectPublicKeyInfo (RSASSA-PSS, DER,
/// `PP_PUBLIC_KEY_LEN` bytes): what clients, verifiers and `WWW-Authenticate` carry.
///
/// Caller-owned buffer: `(out, cap, out_len)`; too small answers `PP_ERR_BUFFER_TOO_SMALL`
/// with the size needed in `*out_len`.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_public_key(
    issuer: *const pp_issuer,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let issuer = unsafe { borrow(issuer) }?;
        let output = Output::new(out, cap, out_len)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(issuer.key.public_key().spki()) }
    }
}

/// The key's `token_key_id` (SHA-256 of its SubjectPublicKeyInfo, `PP_TOKEN_KEY_ID_LEN`
/// bytes): the `key-id` of the JSON-RPC `issue` method.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_token_key_id(
    issuer: *const pp_issuer,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let issuer = unsafe { borrow(issuer) }?;
        let output = Output::new(out, cap, out_len)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(issuer.key.public_key().token_key_id()) }
    }
}

/// RFC 9578 native issuance: an encoded TokenRequest (`PP_TOKEN_REQUEST_LEN` bytes) in, the
/// encoded TokenResponse (`PP_TOKEN_RESPONSE_LEN` bytes) out.
///
/// Returns `PP_ERR_UNPROCESSABLE_BLINDED_TOKEN` when the request is malformed, of another token
/// type, names another key (truncated id) or its blinded message is not below the modulus.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_issue(
    issuer: *const pp_issuer,
    token_request: *const u8,
    token_request_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let issuer = unsafe { borrow(issuer) }?;
        // SAFETY: as above.
        let request = unsafe { input(token_request, token_request_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let response = issuer
            .issuer
            .issue_request(request, privacypass::unix_now())
            .map_err(|e| pp_result::from(e.code()))?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&response.encode()) }
    }
}

/// The JSON-RPC `issue` form: `key_id` is the full `token_key_id` (`PP_TOKEN_KEY_ID_LEN`
/// bytes) and `blinded_token` either the bare blinded message (`PP_BLINDED_MSG_LEN` bytes) or a
/// whole TokenRequest. Writes the blind signature (`PP_TOKEN_RESPONSE_LEN` bytes).
///
/// Returns `PP_ERR_UNKNOWN_ISSUANCE_KEY` when `key_id` is not this issuer's key (a `key_id` of
/// another length included) and `PP_ERR_UNPROCESSABLE_BLINDED_TOKEN` when the blinded token
/// is of the wrong length, of another token type, names another truncated id or is not below
/// the modulus.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_issue_blinded(
    issuer: *const pp_issuer,
    key_id: *const u8,
    key_id_len: usize,
    blinded_token: *const u8,
    blinded_token_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle and valid buffers.
        let issuer = unsafe { borrow(issuer) }?;
        // SAFETY: as above.
        let key_id = unsafe { input(key_id, key_id_len) }?;
        // SAFETY: as above.
        let blinded = unsafe { input(blinded_token, blinded_token_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let key_id: &[u8; 32] =
            key_id.try_into().map_err(|_| pp_result::PP_ERR_UNKNOWN_ISSUANCE_KEY)?;
        let sig = issuer
            .issuer
            .issue(key_id, blinded, privacypass::unix_now())
            .map_err(|e| pp_result::from(e.code()))?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&sig) }
    }
}
