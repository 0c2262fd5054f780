//! The fields of an encoded Token a service reads before verifying it: the challenge digest it
//! is bound to (which of its challenges to verify against) and the key id it names (for logs).

use privacypass::{Token, TokenType};

use crate::boundary::{ffi_panic_boundary, input, Output};
use crate::result::{pp_result, undecodable_token};

/// The Token, when the bytes are a well-formed type 2 token.
fn type_2_token(token: &[u8]) -> Result<Token, pp_result> {
    let token = Token::decode(token).map_err(undecodable_token)?;
    if token.token_type != TokenType::BlindRsa2048 {
        return Err(pp_result::PP_ERR_UNSUPPORTED_TOKEN);
    }
    Ok(token)
}

/// Writes one field of the type 2 Token `(token, token_len)` into `(out, cap, out_len)`.
///
/// # Safety
/// As the exports that call it: valid buffers.
unsafe fn write_field(
    token: *const u8,
    token_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    field: fn(&Token) -> &[u8],
) -> Result<(), pp_result> {
    // SAFETY: forwarded from the caller.
    let token = unsafe { input(token, token_len) }?;
    let output = Output::new(out, cap, out_len)?;
    let token = type_2_token(token)?;
    // SAFETY: the caller passes a writable buffer of `cap` bytes.
    unsafe { output.write(field(&token)) }
}

/// Writes the `challenge_digest` of an encoded Token (RFC 9577 §2.2), 32 bytes: SHA-256 of the
/// TokenChallenge the token answers. Nothing is verified.
///
/// Returns `PP_ERR_INVALID_PARAMS` when the bytes are not a well-formed token of type 2
/// (truncated, too long) and `PP_ERR_UNSUPPORTED_TOKEN` for a token of another type.
#[no_mangle]
pub unsafe extern "C" fn pp_token_challenge_digest(
    token: *const u8,
    token_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        unsafe { write_field(token, token_len, out, cap, out_len, |t| &t.challenge_digest) }
    }
}

/// Writes the `token_key_id` of an encoded Token, `PP_TOKEN_KEY_ID_LEN` bytes: SHA-256 of the
/// issuer key's SubjectPublicKeyInfo. Nothing is verified. Returns what
/// `pp_token_challenge_digest` returns.
#[no_mangle]
pub unsafe extern "C" fn pp_token_key_id(
    token: *const u8,
    token_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        unsafe { write_field(token, token_len, out, cap, out_len, |t| &t.token_key_id) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PP_TOKEN_KEY_ID_LEN, PP_TOKEN_LEN};

    fn token(token_type: TokenType) -> Vec<u8> {
        Token {
            token_type,
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: vec![4; token_type.nk()],
        }
        .encode()
    }

    type Reader = unsafe extern "C" fn(*const u8, usize, *mut u8, usize, *mut usize) -> pp_result;

    fn read(f: Reader, token: &[u8], cap: usize) -> (pp_result, Vec<u8>, usize) {
        let mut out = vec![0u8; cap];
        let mut len = usize::MAX;
        // SAFETY: valid buffers of the lengths given.
        let rc = unsafe { f(token.as_ptr(), token.len(), out.as_mut_ptr(), cap, &mut len) };
        (rc, out, len)
    }

    #[test]
    fn each_field_of_a_type_2_token_and_nothing_else() {
        let good = token(TokenType::BlindRsa2048);
        assert_eq!(good.len(), PP_TOKEN_LEN);
        for (f, field) in [
            (pp_token_challenge_digest as Reader, [2u8; 32]),
            (pp_token_key_id as Reader, [3u8; PP_TOKEN_KEY_ID_LEN]),
        ] {
            let (rc, out, len) = read(f, &good, 32);
            assert_eq!((rc, len), (pp_result::PP_OK, 32));
            assert_eq!(out, field);
            let (rc, out, len) = read(f, &good, 31);
            assert_eq!((rc, len), (pp_result::PP_ERR_BUFFER_TOO_SMALL, 32));
            assert_eq!(out, [0u8; 31]);
            for (bad, expected) in [
                (&good[..PP_TOKEN_LEN - 1], pp_result::PP_ERR_INVALID_PARAMS),
                (
                    &[good.clone(), vec![0]].concat()[..],
                    pp_result::PP_ERR_INVALID_PARAMS,
                ),
                (&good[..1], pp_result::PP_ERR_INVALID_PARAMS),
                (&[0u8; 0][..], pp_result::PP_ERR_INVALID_PARAMS),
                (
                    &token(TokenType::VoprfP384)[..],
                    pp_result::PP_ERR_UNSUPPORTED_TOKEN,
                ),
                (
                    &[&[0u8, 7][..], &good[2..]].concat()[..],
                    pp_result::PP_ERR_UNSUPPORTED_TOKEN,
                ),
            ] {
                let (rc, out, len) = read(f, bad, 32);
                assert_eq!(rc, expected, "{} bytes", bad.len());
                assert_eq!((out, len), (vec![0u8; 32], usize::MAX));
            }
        }
    }
}
