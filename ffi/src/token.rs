//! The fields of an encoded Token a service reads before verifying it: its type (which key
//! verifies it, and whether only the issuer can), the challenge digest it is bound to (which of
//! its challenges to verify against) and the key id it names (which key, and for logs).

use privacypass_core::{Token, TokenType};

use crate::boundary::{ffi_panic_boundary, input, Output};
use crate::result::{pp_result, undecodable_token};

/// The Token, when the bytes are a well-formed token of a type this library knows (1, 2, 5).
fn known_token(token: &[u8]) -> Result<Token, pp_result> {
    Token::decode(token).map_err(undecodable_token)
}

/// Writes one field of the Token `(token, token_len)` into `(out, cap, out_len)`.
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
    let token = known_token(token)?;
    // SAFETY: the caller passes a writable buffer of `cap` bytes.
    unsafe { output.write(field(&token)) }
}

/// Writes the `challenge_digest` of an encoded Token (RFC 9577 §2.2), 32 bytes: SHA-256 of the
/// TokenChallenge the token answers. Nothing is verified.
///
/// Returns `PP_ERR_INVALID_PARAMS` when the bytes are not a well-formed token (truncated, too
/// long for its type) and `PP_ERR_UNSUPPORTED_TOKEN` for a token of a type other than 1, 2
/// and 5.
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
/// issuer key's Token Key Encoding (the SubjectPublicKeyInfo for type 2, the serialized element
/// for types 1 and 5). Nothing is verified. Returns what
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

/// Writes the token type of an encoded Token into `*out`: 1 (`PP_TOKEN_TYPE_VOPRF_P384`), 2
/// (`PP_TOKEN_TYPE_BLIND_RSA`) or 5 (`PP_TOKEN_TYPE_VOPRF_RISTRETTO255`). Nothing is verified:
/// a service reads it to choose how the token is checked (types 1 and 5 only by their issuer).
///
/// Returns what `pp_token_challenge_digest` returns; `*out` is written only on success.
#[no_mangle]
pub unsafe extern "C" fn pp_token_type(
    token: *const u8,
    token_len: usize,
    out: *mut u16,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer.
        let token = unsafe { input(token, token_len) }?;
        if out.is_null() {
            return Err(pp_result::PP_ERR_NULL_ARGUMENT);
        }
        let token_type = known_token(token)?.token_type.value();
        // SAFETY: `out` is non-NULL and points to a writable uint16_t.
        unsafe { out.write(token_type) };
        Ok(())
    }
}

/// The length of a Token Key Encoding of `token_type` (the `token-key` of a directory or
/// challenge, decoded): `PP_PUBLIC_KEY_LEN` (342) for type 2, 49 for type 1, 32 for type 5, and
/// 0 for a type this library does not know.
#[no_mangle]
pub extern "C" fn pp_token_key_len(token_type: u16) -> usize {
    ffi_panic_boundary! {
        match TokenType::from_value(token_type) {
            Some(TokenType::BlindRsa2048) => crate::PP_PUBLIC_KEY_LEN,
            Some(other) => other.voprf_suite().map_or(0, |suite| suite.element_len()),
            None => 0,
        }
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
    fn each_field_of_a_token_of_each_known_type_and_nothing_else() {
        for token_type in [
            TokenType::BlindRsa2048,
            TokenType::VoprfP384,
            TokenType::VoprfRistretto255,
        ] {
            let good = token(token_type);
            assert_eq!(good.len(), 98 + token_type.nk());
            let mut read_type = 0u16;
            // SAFETY: a valid buffer and a writable u16.
            let rc = unsafe { pp_token_type(good.as_ptr(), good.len(), &mut read_type) };
            assert_eq!((rc, read_type), (pp_result::PP_OK, token_type.value()));
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
                    (&good[..good.len() - 1], pp_result::PP_ERR_INVALID_PARAMS),
                    (
                        &[good.clone(), vec![0]].concat()[..],
                        pp_result::PP_ERR_INVALID_PARAMS,
                    ),
                    (&good[..1], pp_result::PP_ERR_INVALID_PARAMS),
                    (&[0u8; 0][..], pp_result::PP_ERR_INVALID_PARAMS),
                    (
                        &[&[0u8, 7][..], &good[2..]].concat()[..],
                        pp_result::PP_ERR_UNSUPPORTED_TOKEN,
                    ),
                ] {
                    let (rc, out, len) = read(f, bad, 32);
                    assert_eq!(rc, expected, "{} bytes", bad.len());
                    assert_eq!((out, len), (vec![0u8; 32], usize::MAX));
                    let mut untouched = 0xabcdu16;
                    // SAFETY: as above.
                    let rc = unsafe { pp_token_type(bad.as_ptr(), bad.len(), &mut untouched) };
                    assert_eq!((rc, untouched), (expected, 0xabcd));
                }
            }
        }
        assert_eq!(PP_TOKEN_LEN, 98 + TokenType::BlindRsa2048.nk());
        let good = token(TokenType::VoprfP384);
        // SAFETY: a valid buffer, and NULL for the output.
        let rc = unsafe { pp_token_type(good.as_ptr(), good.len(), std::ptr::null_mut()) };
        assert_eq!(rc, pp_result::PP_ERR_NULL_ARGUMENT);
    }

    #[test]
    fn the_key_length_of_each_type() {
        assert_eq!(pp_token_key_len(2), crate::PP_PUBLIC_KEY_LEN);
        assert_eq!(pp_token_key_len(1), 49);
        assert_eq!(pp_token_key_len(5), 32);
        for unknown in [0, 3, 4, 6, 0xffff] {
            assert_eq!(pp_token_key_len(unknown), 0);
        }
    }
}
