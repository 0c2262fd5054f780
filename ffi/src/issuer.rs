//! `pp_issuer`: blind-signs token requests with one RSA-2048 issuer key (token type 2), or
//! evaluates them with one VOPRF key (token types 1 and 5), so that a service can issue tokens
//! in-process.

use std::ffi::c_char;
use std::sync::Arc;

use privacypass_core::{
    Issuer, IssuerKey, KeySet, KeyValidity, TokenType, VoprfIssuer, VoprfIssuerKey,
};

use crate::boundary::{borrow, ffi_panic_boundary, free, give, handle_out, input, Output};
use crate::result::pp_result;

/// An issuer with one private key. Immutable; backed by an `Arc`, so one issuer may sign on
/// any number of threads at once.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct pp_issuer {
    pub(crate) kind: IssuerKind,
}

#[derive(Debug)]
pub(crate) enum IssuerKind {
    Rsa {
        issuer: Issuer,
        key: Arc<IssuerKey>,
    },
    Voprf {
        issuer: VoprfIssuer,
        key: Arc<VoprfIssuerKey>,
    },
}

fn issuer_of(key: IssuerKey) -> Result<pp_issuer, pp_result> {
    let mut set = KeySet::new(0);
    let validity = KeyValidity::new(0, u64::MAX).map_err(|_| pp_result::PP_ERR_INTERNAL)?;
    let key = set
        .insert_issuer_key(key, validity)
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
    Ok(pp_issuer {
        kind: IssuerKind::Rsa {
            issuer: Issuer::new(Arc::new(set)),
            key,
        },
    })
}

fn voprf_issuer_of(key: VoprfIssuerKey) -> Result<pp_issuer, pp_result> {
    let mut set = KeySet::new(0);
    let validity = KeyValidity::new(0, u64::MAX).map_err(|_| pp_result::PP_ERR_INTERNAL)?;
    let key = set
        .insert_voprf_key(key, validity)
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
    Ok(pp_issuer {
        kind: IssuerKind::Voprf {
            issuer: VoprfIssuer::new(Arc::new(set)),
            key,
        },
    })
}

/// The VOPRF token type of a `token_type` argument (1 or 5).
pub(crate) fn voprf_type(token_type: u16) -> Result<TokenType, pp_result> {
    TokenType::from_value(token_type)
        .filter(|t| t.is_privately_verifiable())
        .ok_or(pp_result::PP_ERR_UNSUPPORTED_TOKEN)
}

impl pp_issuer {
    fn public_key_bytes(&self) -> &[u8] {
        match &self.kind {
            IssuerKind::Rsa { key, .. } => key.public_key().spki(),
            IssuerKind::Voprf { key, .. } => key.public_key().bytes(),
        }
    }

    fn token_key_id(&self) -> &[u8] {
        match &self.kind {
            IssuerKind::Rsa { key, .. } => key.public_key().token_key_id(),
            IssuerKind::Voprf { key, .. } => key.public_key().token_key_id(),
        }
    }

    fn token_type(&self) -> u16 {
        match &self.kind {
            IssuerKind::Rsa { .. } => TokenType::BlindRsa2048.value(),
            IssuerKind::Voprf { key, .. } => key.token_type().value(),
        }
    }
}

/// An issuer for a private key in PEM: an RSA-2048 key (token type 2) in PKCS#8
/// (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`), e = 65537; or a VOPRF key file of the core
/// (`PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY`, token type 1, or
/// `PRIVACYPASS VOPRF RISTRETTO255-SHA512 PRIVATE KEY`, token type 5: the label gives the type).
/// The key issues from the epoch on, without end.
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
        let issuer = match IssuerKey::from_pem(pem) {
            Ok(key) => issuer_of(key)?,
            Err(_) => voprf_issuer_of(
                VoprfIssuerKey::from_pem(pem).map_err(|_| pp_result::PP_ERR_INVALID_KEY)?,
            )?,
        };
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, issuer) };
        Ok(())
    }
}

/// An issuer for a raw VOPRF private key: `token_type` 1 (`PP_TOKEN_TYPE_VOPRF_P384`) or 5
/// (`PP_TOKEN_TYPE_VOPRF_RISTRETTO255`) and the RFC 9497 SerializeScalar of the key (48 bytes
/// big-endian for P-384, 32 bytes little-endian for ristretto255: the vectors' `skS`).
///
/// Returns `PP_ERR_UNSUPPORTED_TOKEN` for another token type and `PP_ERR_INVALID_KEY` when the
/// scalar is not a canonical nonzero scalar of that group. `*out` is written only on success.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_new_from_scalar(
    token_type: u16,
    scalar: *const u8,
    scalar_len: usize,
    out: *mut *mut pp_issuer,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer and out-pointer.
        let scalar = unsafe { input(scalar, scalar_len) }?;
        let out = handle_out(out)?;
        let token_type = voprf_type(token_type)?;
        let key = VoprfIssuerKey::from_scalar(token_type, scalar)
            .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        let issuer = voprf_issuer_of(key)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, issuer) };
        Ok(())
    }
}

/// An issuer with a fresh VOPRF key of `token_type` (1 or 5), for tests and examples.
///
/// Returns `PP_ERR_UNSUPPORTED_TOKEN` for another token type.
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_generate_voprf(
    token_type: u16,
    out: *mut *mut pp_issuer,
) -> pp_result {
    ffi_panic_boundary! {
        let out = handle_out(out)?;
        let token_type = voprf_type(token_type)?;
        let key = VoprfIssuerKey::generate(token_type).map_err(|_| pp_result::PP_ERR_INTERNAL)?;
        let issuer = voprf_issuer_of(key)?;
        // SAFETY: `out` was checked by `handle_out`.
        unsafe { give(out, issuer) };
        Ok(())
    }
}

/// The token type the issuer's key issues: 2 (RSA), 1 or 5 (VOPRF).
#[no_mangle]
pub unsafe extern "C" fn pp_issuer_token_type(
    issuer: *const pp_issuer,
    out: *mut u16,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a live handle.
        let issuer = unsafe { borrow(issuer) }?;
        if out.is_null() {
            return Err(pp_result::PP_ERR_NULL_ARGUMENT);
        }
        // SAFETY: `out` is non-NULL and the caller passes a writable u16.
        unsafe { out.write(issuer.token_type()) };
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
/// `PP_PUBLIC_KEY_LEN` bytes): what clients, verifiers and `WWW-Authenticate` carry. For a
/// VOPRF key, the serialized public element (49 bytes for type 1, 32 for type 5): what
/// `pp_client_new_voprf` takes.
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
        unsafe { output.write(issuer.public_key_bytes()) }
    }
}

/// The key's `token_key_id` (SHA-256 of its SubjectPublicKeyInfo, or of the serialized VOPRF
/// public element; `PP_TOKEN_KEY_ID_LEN` bytes): the `key-id` of the JSON-RPC `issue` method.
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
        unsafe { output.write(issuer.token_key_id()) }
    }
}

/// RFC 9578 native issuance: an encoded TokenRequest (`PP_TOKEN_REQUEST_LEN` bytes for type 2)
/// in, the encoded TokenResponse (`PP_TOKEN_RESPONSE_LEN` bytes for type 2) out. A VOPRF
/// issuer takes a type 1 or 5 TokenRequest (`PP_VOPRF_P384_TOKEN_REQUEST_LEN`,
/// `PP_VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN`) and answers the evaluated element with its DLEQ
/// proof (`PP_VOPRF_P384_TOKEN_RESPONSE_LEN`, `PP_VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN`).
///
/// Returns `PP_ERR_UNPROCESSABLE_BLINDED_TOKEN` when the request is malformed, of another token
/// type than the issuer's key, names another key (truncated id), or its blinded message is not
/// below the modulus (type 2) or not a group element (types 1, 5).
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
        let now = privacypass_core::unix_now();
        let response = match &issuer.kind {
            IssuerKind::Rsa { issuer, .. } => issuer
                .issue_request(request, now)
                .map_err(|e| pp_result::from(e.code()))?
                .encode(),
            IssuerKind::Voprf { issuer, .. } => issuer
                .issue_request(request, now)
                .map_err(|e| pp_result::from(e.code()))?
                .encode(),
        };
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&response) }
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
        let now = privacypass_core::unix_now();
        let sig = match &issuer.kind {
            IssuerKind::Rsa { issuer, .. } => issuer
                .issue(key_id, blinded, now)
                .map_err(|e| pp_result::from(e.code()))?,
            IssuerKind::Voprf { issuer, .. } => issuer
                .issue(key_id, blinded, now)
                .map_err(|e| pp_result::from(e.code()))?
                .encode(),
        };
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&sig) }
    }
}
