//! Challenge helpers: encode a TokenChallenge, write the `WWW-Authenticate` value an origin
//! sends with it, and read or write the `Authorization` value a client answers with (RFC 9577).

use std::ffi::c_char;

use privacypass_core::header::{authorization, PrivateTokenChallenge};
use privacypass_core::{Token, TokenChallenge};

use crate::boundary::{ffi_panic_boundary, input, input_header, Output};
use crate::result::{pp_result, undecodable_token};

/// Encodes a TokenChallenge (RFC 9577 §2.1) into a caller-owned buffer.
///
/// - `token_type`: 2 (`PP_TOKEN_TYPE_BLIND_RSA`) for this library's tokens.
/// - `issuer_name`: the issuer's name, 1 to 65535 bytes (e.g. `"issuer.example"`).
/// - `redemption_context`: empty, or exactly 32 bytes (e.g. random, to make tokens for this
///   challenge only).
/// - `origin_info`: empty (any origin) or origin names separated by commas, up to 65535 bytes.
///
/// Returns `PP_ERR_INVALID_INPUT` when a length is out of range.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_challenge_encode(
    token_type: u16,
    issuer_name: *const c_char,
    issuer_name_len: usize,
    redemption_context: *const u8,
    redemption_context_len: usize,
    origin_info: *const c_char,
    origin_info_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let issuer_name = unsafe { input(issuer_name.cast(), issuer_name_len) }?;
        // SAFETY: as above.
        let context = unsafe { input(redemption_context, redemption_context_len) }?;
        // SAFETY: as above.
        let origin_info = unsafe { input(origin_info.cast(), origin_info_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let challenge = TokenChallenge::new(token_type, issuer_name, context, origin_info)
            .map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&challenge.encode()) }
    }
}

/// Writes one `PrivateToken` challenge as a `WWW-Authenticate` header value (not
/// NUL-terminated):
/// `PrivateToken challenge="<base64url>", token-key="<base64url>"[, max-age="<seconds>"]`.
///
/// `challenge` is an encoded TokenChallenge (`pp_challenge_encode`), `token_key` the issuer's
/// public key (`pp_issuer_public_key`, or the directory's `token-key` decoded), `max_age` the
/// number of seconds the challenge may be cached, or NULL to leave it out. Several challenges
/// share one header when their values are joined with `", "`.
///
/// Returns `PP_ERR_INVALID_INPUT` for a malformed challenge, an empty key, or a value longer
/// than 16 KiB, the longest header value this library's parsers accept.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pp_challenge_www_authenticate(
    challenge: *const u8,
    challenge_len: usize,
    token_key: *const u8,
    token_key_len: usize,
    max_age: *const u64,
    out: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let challenge_bytes = unsafe { input(challenge, challenge_len) }?;
        // SAFETY: as above.
        let token_key = unsafe { input(token_key, token_key_len) }?;
        // SAFETY: a non-NULL `max_age` points to a readable uint64_t.
        let max_age = unsafe { max_age.as_ref() }.copied();
        let output = Output::new(out.cast(), cap, out_len)?;
        let challenge =
            TokenChallenge::decode(challenge_bytes).map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        if token_key.is_empty() {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        let value = PrivateTokenChallenge {
            challenge_bytes: challenge_bytes.to_vec(),
            challenge,
            token_key: token_key.to_vec(),
            max_age,
        }
        .to_header_value();
        // A client parsing it (with this library or another) would refuse it.
        if value.len() > privacypass_core::header::MAX_HEADER_LEN {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(value.as_bytes()) }
    }
}

/// Writes the `Authorization` header value for an encoded Token (not NUL-terminated):
/// `PrivateToken token="<base64url>"`.
///
/// Returns `PP_ERR_INVALID_PARAMS` when `token` is not a well-formed Token of its type
/// (truncated, too long, trailing bytes) and `PP_ERR_UNSUPPORTED_TOKEN` for a type other than
/// 1, 2 and 5.
#[no_mangle]
pub unsafe extern "C" fn pp_authorization_encode(
    token: *const u8,
    token_len: usize,
    out: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let token = unsafe { input(token, token_len) }?;
        let output = Output::new(out.cast(), cap, out_len)?;
        let token = Token::decode(token).map_err(undecodable_token)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(authorization(&token).as_bytes()) }
    }
}

/// Reads the encoded Token out of an `Authorization` header value (`PrivateToken
/// token=...`, the parameter quoted or not, base64url padded or not) into a caller-owned
/// buffer. The token is not verified (see `pp_verifier_verify_authorization`).
///
/// Returns `PP_ERR_INVALID_PARAMS` unless the value is exactly one PrivateToken credential
/// with one base64url `token` parameter.
#[no_mangle]
pub unsafe extern "C" fn pp_authorization_parse(
    authorization: *const c_char,
    authorization_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let value = unsafe { input_header(authorization, authorization_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let token = privacypass_core::header::parse_authorization(value)
            .map_err(|_| pp_result::PP_ERR_INVALID_PARAMS)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&token) }
    }
}
