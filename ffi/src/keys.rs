//! Issuer public keys as a service offers them: the RFC 9578 RSASSA-PSS SubjectPublicKeyInfo of
//! one key given as DER or PEM, and of every token type 2 key of a key file (an issuer directory
//! or PEM), read exactly as the verifiers made from the same bytes read them.

use std::ffi::c_char;

use privacypass_core::{KeySet, PublicKey, TokenType, VoprfPublicKey};

use crate::boundary::{ffi_panic_boundary, input, Output};
use crate::result::pp_result;
use crate::verifier::{keys_from_directory, keys_from_pem, read_directory};

/// The RSASSA-PSS SubjectPublicKeyInfo of one RSA public key given as a DER
/// SubjectPublicKeyInfo (bytes starting with the SEQUENCE tag 0x30) or as PEM text (its first
/// `-----BEGIN PUBLIC KEY-----` block).
fn spki_of(key: &[u8]) -> Result<Vec<u8>, pp_result> {
    let public = if key.first() == Some(&0x30) {
        PublicKey::from_spki(key)
    } else {
        let pem = std::str::from_utf8(key).map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?;
        PublicKey::from_pem(pem)
    };
    public
        .map(|k| k.spki().to_vec())
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)
}

/// Writes the RFC 9578 form (RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48) of one issuer public
/// key, `PP_PUBLIC_KEY_LEN` bytes of DER: the `token-key` of a challenge, and what
/// `pp_verifier_new_from_spki` and `pp_client_new` take. `key` is a SubjectPublicKeyInfo in
/// DER (it begins with the byte 0x30), either that RSASSA-PSS form or a plain rsaEncryption
/// key, or PEM text whose first `-----BEGIN PUBLIC KEY-----` block holds one.
///
/// Returns `PP_ERR_INVALID_KEY` when it is not an RSA-2048 key with e = 65537 (or has other
/// RSASSA-PSS parameters), `PP_ERR_INVALID_INPUT` for text that is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn pp_public_key_spki(
    key: *const u8,
    key_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let key = unsafe { input(key, key_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let spki = spki_of(key)?;
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&spki) }
    }
}

/// Writes the SPKIs of the keys `read` finds in `(text, text_len)`, one after the other, in
/// their order, into `(out, cap, out_len)`.
///
/// # Safety
/// As the exports that call it: valid buffers.
unsafe fn write_keys(
    text: *const c_char,
    text_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    read: fn(&[u8]) -> Result<KeySet, pp_result>,
) -> Result<(), pp_result> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { input(text.cast(), text_len) }?;
    let output = Output::new(out, cap, out_len)?;
    let keys: Vec<u8> = read(text)?
        .entries()
        .iter()
        .flat_map(|entry| entry.public.spki().iter().copied())
        .collect();
    // SAFETY: the caller passes a writable buffer of `cap` bytes.
    unsafe { output.write(&keys) }
}

/// The keys of a PEM text, which must be UTF-8 (as `pp_verifier_new_from_pem` takes it).
fn keys_from_pem_text(pem: &[u8]) -> Result<KeySet, pp_result> {
    keys_from_pem(std::str::from_utf8(pem).map_err(|_| pp_result::PP_ERR_INVALID_INPUT)?)
}

/// Writes the token type 2 keys of an RFC 9578 issuer directory (JSON), in its order, each in
/// the RFC 9578 RSASSA-PSS form of `PP_PUBLIC_KEY_LEN` bytes, one after the other:
/// `*out_len / PP_PUBLIC_KEY_LEN` keys. A key listed twice is written once. These are exactly
/// the keys `pp_verifier_new_from_directory` verifies with, and the call fails where that one
/// fails, with the same codes.
#[no_mangle]
pub unsafe extern "C" fn pp_directory_public_keys(
    json: *const c_char,
    json_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        unsafe { write_keys(json, json_len, out, cap, out_len, keys_from_directory) }
    }
}

/// Writes the keys of the `-----BEGIN PUBLIC KEY-----` blocks of a PEM text, in its order, as
/// `pp_directory_public_keys` writes a directory's. These are exactly the keys
/// `pp_verifier_new_from_pem` verifies with, and the call fails where that one fails, with the
/// same codes.
#[no_mangle]
pub unsafe extern "C" fn pp_pem_public_keys(
    pem: *const c_char,
    pem_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        unsafe { write_keys(pem, pem_len, out, cap, out_len, keys_from_pem_text) }
    }
}

/// Writes the keys of `token_type` that an RFC 9578 issuer directory (JSON) lists, in its order,
/// each as its Token Key Encoding of `pp_token_key_len(token_type)` bytes, one after the other:
/// for type 2 the RSASSA-PSS SubjectPublicKeyInfo (the keys `pp_directory_public_keys` writes),
/// for types 1 and 5 the serialized public element, each checked to be an element of its group.
/// A key listed twice is written once. A directory without keys of that type writes nothing
/// (`*out_len` = 0) and succeeds: a service offering several types decides what it needs.
///
/// Returns `PP_ERR_UNSUPPORTED_TOKEN` for a token type other than 1, 2 and 5,
/// `PP_ERR_INVALID_INPUT` for a malformed directory and `PP_ERR_INVALID_KEY` for a key of that
/// type that is not a valid one.
#[no_mangle]
pub unsafe extern "C" fn pp_directory_token_keys(
    json: *const c_char,
    json_len: usize,
    token_type: u16,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let json = unsafe { input(json.cast(), json_len) }?;
        let output = Output::new(out, cap, out_len)?;
        let token_type =
            TokenType::from_value(token_type).ok_or(pp_result::PP_ERR_UNSUPPORTED_TOKEN)?;
        let keys: Vec<Vec<u8>> = directory_token_keys(json, token_type)?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&keys.concat()) }
    }
}

/// Writes the `not-before` of each key `pp_directory_token_keys` writes for `token_type`, in
/// the same order, as Unix seconds (0 for a key listed without one): `*out_len` values in
/// `out`, which holds `cap` of them. A host taking its keys from a directory offers in its
/// challenges the first key whose `not-before` has passed (RFC 9578 §4): the issuer lists the
/// key it will issue with next before the one issuing now, with its start.
///
/// Returns what `pp_directory_token_keys` returns for the same directory and type, and
/// `PP_ERR_BUFFER_TOO_SMALL` (with `*out_len` the number of values needed) when `cap` is short.
#[no_mangle]
pub unsafe extern "C" fn pp_directory_not_before(
    json: *const c_char,
    json_len: usize,
    token_type: u16,
    out: *mut u64,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let json = unsafe { input(json.cast(), json_len) }?;
        if out_len.is_null() || (out.is_null() && cap != 0) {
            return Err(pp_result::PP_ERR_NULL_ARGUMENT);
        }
        let token_type =
            TokenType::from_value(token_type).ok_or(pp_result::PP_ERR_UNSUPPORTED_TOKEN)?;
        let starts: Vec<u64> = directory_token_keys(json, token_type)?
            .into_iter()
            .map(|(_, not_before)| not_before)
            .collect();
        // SAFETY: checked non-NULL above; the caller promises it is writable.
        unsafe { out_len.write(starts.len()) };
        if starts.len() > cap {
            return Err(pp_result::PP_ERR_BUFFER_TOO_SMALL);
        }
        if !starts.is_empty() {
            // SAFETY: `out` is non-NULL because cap >= len > 0, and holds `cap` values.
            unsafe { std::ptr::copy_nonoverlapping(starts.as_ptr(), out, starts.len()) };
        }
        Ok(())
    }
}

/// The Token Key Encodings of the directory's keys of `token_type`, validated, each once (its
/// first listing), with their `not-before` (0 when absent).
fn directory_token_keys(
    json: &[u8],
    token_type: TokenType,
) -> Result<Vec<(Vec<u8>, u64)>, pp_result> {
    let directory = read_directory(json)?;
    let mut keys: Vec<(Vec<u8>, u64)> = Vec::new();
    for entry in directory.keys_of_type(token_type) {
        let key = if token_type == TokenType::BlindRsa2048 {
            PublicKey::from_spki(&entry.token_key).map(|k| k.spki().to_vec())
        } else {
            VoprfPublicKey::from_bytes(token_type, &entry.token_key).map(|k| k.bytes().to_vec())
        }
        .map_err(|_| pp_result::PP_ERR_INVALID_KEY)?;
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key, entry.not_before.unwrap_or(0)));
        }
    }
    Ok(keys)
}

/// Writes the `token_key_id` of one Token Key Encoding (as `pp_directory_token_keys` or
/// `pp_issuer_public_key` write it), `PP_TOKEN_KEY_ID_LEN` bytes: SHA-256 of the bytes, what a
/// token made with that key carries (RFC 9578 §5.1, §6.1). The key is not checked.
///
/// Returns `PP_ERR_INVALID_INPUT` for an empty key.
#[no_mangle]
pub unsafe extern "C" fn pp_token_key_id_of_key(
    key: *const u8,
    key_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes valid buffers.
        let key = unsafe { input(key, key_len) }?;
        let output = Output::new(out, cap, out_len)?;
        if key.is_empty() {
            return Err(pp_result::PP_ERR_INVALID_INPUT);
        }
        // SAFETY: the caller passes a writable buffer of `cap` bytes.
        unsafe { output.write(&privacypass_core::crypto::sha256(key)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::pp_token_key_len;
    use crate::PP_PUBLIC_KEY_LEN;
    use privacypass_core::{b64, IssuerKey, VoprfIssuerKey};

    /// rsaEncryption's SubjectPublicKeyInfo header for a 2048-bit key; the RSAPublicKey after it
    /// is the one that ends the RSASSA-PSS form.
    const RSA_ENCRYPTION_PREFIX: [u8; 24] = [
        0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00,
    ];
    const PSS_PREFIX_LEN: usize = 72;

    fn rsa_encryption(pss: &[u8]) -> Vec<u8> {
        [&RSA_ENCRYPTION_PREFIX[..], &pss[PSS_PREFIX_LEN..]].concat()
    }

    fn pem(der: &[u8]) -> String {
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            b64::encode_std(der)
        )
    }

    /// The shape of the three writers, the text ones taking bytes.
    type Writer = unsafe extern "C" fn(*const u8, usize, *mut u8, usize, *mut usize) -> pp_result;

    /// Calls one of the writers with a buffer of `cap` bytes: its result and what it wrote.
    fn call(f: Writer, input: &[u8], cap: usize) -> (pp_result, Vec<u8>, usize) {
        let mut out = vec![0u8; cap];
        let mut len = usize::MAX;
        // SAFETY: valid buffers of the lengths given.
        let rc = unsafe { f(input.as_ptr(), input.len(), out.as_mut_ptr(), cap, &mut len) };
        out.truncate(if rc == pp_result::PP_OK { len } else { 0 });
        (rc, out, len)
    }

    unsafe extern "C" fn directory_keys(
        json: *const u8,
        len: usize,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> pp_result {
        // SAFETY: forwarded.
        unsafe { pp_directory_public_keys(json.cast(), len, out, cap, out_len) }
    }

    unsafe extern "C" fn pem_keys(
        pem: *const u8,
        len: usize,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> pp_result {
        // SAFETY: forwarded.
        unsafe { pp_pem_public_keys(pem.cast(), len, out, cap, out_len) }
    }

    #[test]
    fn one_key_in_either_form_and_either_encoding_becomes_the_pss_form() {
        let key = IssuerKey::generate().unwrap();
        let pss = key.public_key().spki().to_vec();
        assert_eq!(pss.len(), PP_PUBLIC_KEY_LEN);
        let plain = rsa_encryption(&pss);
        for given in [
            pss.clone(),
            plain.clone(),
            pem(&pss).into_bytes(),
            pem(&plain).into_bytes(),
        ] {
            let (rc, out, _) = call(pp_public_key_spki, &given, PP_PUBLIC_KEY_LEN);
            assert_eq!(rc, pp_result::PP_OK);
            assert_eq!(out, pss);
        }
        let (rc, _, len) = call(pp_public_key_spki, &plain, PP_PUBLIC_KEY_LEN - 1);
        assert_eq!(
            (rc, len),
            (pp_result::PP_ERR_BUFFER_TOO_SMALL, PP_PUBLIC_KEY_LEN)
        );
        let mut other_salt = pss.clone();
        other_salt[PSS_PREFIX_LEN - 6] = 32;
        for bad in [&other_salt[..], &pss[..100], b"0", b"no key", b""] {
            assert_eq!(
                call(pp_public_key_spki, bad, 400).0,
                pp_result::PP_ERR_INVALID_KEY
            );
        }
        assert_eq!(
            call(pp_public_key_spki, b"\xff\xfe", 400).0,
            pp_result::PP_ERR_INVALID_INPUT
        );
    }

    #[test]
    fn a_key_file_lists_its_type_2_keys_in_order_once_each() {
        let [a, b] = [(); 2].map(|_| IssuerKey::generate().unwrap());
        let (a, b) = (a.public_key().spki(), b.public_key().spki());
        let directory = format!(
            r#"{{"issuer-request-uri": "/token-request", "token-keys": [
                {{"token-type": 1, "token-key": "AAAA"}},
                {{"token-type": 2, "token-key": "{}", "not-before": 5}},
                {{"token-type": 2, "token-key": "{}"}},
                {{"token-type": 2, "token-key": "{}"}}]}}"#,
            b64::encode_url(b),
            b64::encode_std(&rsa_encryption(a)),
            b64::encode_url_padded(b),
        );
        let pems = format!("{}{}{}", pem(b), pem(&rsa_encryption(a)), pem(b));
        let both = [b, a].concat();
        for (f, text) in [
            (directory_keys as Writer, &directory),
            (pem_keys as Writer, &pems),
        ] {
            let (rc, _, len) = call(f, text.as_bytes(), 0);
            assert_eq!((rc, len), (pp_result::PP_ERR_BUFFER_TOO_SMALL, both.len()));
            let (rc, out, _) = call(f, text.as_bytes(), both.len());
            assert_eq!(rc, pp_result::PP_OK);
            assert_eq!(out, both);
        }
    }

    #[test]
    fn a_key_file_fails_where_its_verifier_fails() {
        let key = IssuerKey::generate().unwrap();
        let spki = b64::encode_url(key.public_key().spki());
        for (f, text, expected) in [
            (
                directory_keys as Writer,
                "{".to_owned(),
                pp_result::PP_ERR_INVALID_INPUT,
            ),
            (
                directory_keys as Writer,
                r#"{"token-keys": []}"#.to_owned(),
                pp_result::PP_ERR_INVALID_KEY,
            ),
            (
                directory_keys as Writer,
                r#"{"token-keys": [{"token-type": 1, "token-key": "AAAA"}]}"#.to_owned(),
                pp_result::PP_ERR_INVALID_KEY,
            ),
            (
                directory_keys as Writer,
                format!(
                    r#"{{"token-keys": [{{"token-type": 2, "token-key": "{spki}"}}, {{"token-type": 2, "token-key": "AAAA"}}]}}"#
                ),
                pp_result::PP_ERR_INVALID_KEY,
            ),
            (
                pem_keys as Writer,
                "no key here".to_owned(),
                pp_result::PP_ERR_INVALID_KEY,
            ),
            (
                pem_keys as Writer,
                format!("{}{}", pem(key.public_key().spki()), pem(b"\x30\x00")),
                pp_result::PP_ERR_INVALID_KEY,
            ),
        ] {
            let (rc, out, _) = call(f, text.as_bytes(), 4096);
            assert_eq!(rc, expected, "{text}");
            assert!(out.is_empty());
        }
        assert_eq!(
            call(pem_keys, b"\xff", 4096).0,
            pp_result::PP_ERR_INVALID_INPUT
        );
        // NULL with a length, and no out_len.
        // SAFETY: the NULL arguments are what is tested.
        unsafe {
            let mut len = 0;
            assert_eq!(
                pp_directory_public_keys(std::ptr::null(), 1, std::ptr::null_mut(), 0, &mut len),
                pp_result::PP_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                pp_pem_public_keys(
                    c"x".as_ptr(),
                    1,
                    std::ptr::null_mut(),
                    0,
                    std::ptr::null_mut()
                ),
                pp_result::PP_ERR_NULL_ARGUMENT
            );
        }
    }

    /// `pp_directory_token_keys` with a buffer of `cap` bytes: its result and what it wrote.
    fn directory_keys_of(token_type: u16, json: &str, cap: usize) -> (pp_result, Vec<u8>, usize) {
        let mut out = vec![0u8; cap];
        let mut len = usize::MAX;
        // SAFETY: valid buffers of the lengths given.
        let rc = unsafe {
            pp_directory_token_keys(
                json.as_ptr().cast(),
                json.len(),
                token_type,
                out.as_mut_ptr(),
                cap,
                &mut len,
            )
        };
        out.truncate(if rc == pp_result::PP_OK { len } else { 0 });
        (rc, out, len)
    }

    #[test]
    fn a_directory_lists_the_keys_of_each_type_in_order_once_each() {
        let rsa = IssuerKey::generate().unwrap();
        let rsa = rsa.public_key().spki().to_vec();
        let [p1, p2] = [(); 2].map(|_| {
            VoprfIssuerKey::generate(TokenType::VoprfP384)
                .unwrap()
                .public_key()
                .bytes()
                .to_vec()
        });
        let r = VoprfIssuerKey::generate(TokenType::VoprfRistretto255)
            .unwrap()
            .public_key()
            .bytes()
            .to_vec();
        let directory = format!(
            r#"{{"issuer-request-uri": "/token-request", "token-keys": [
                {{"token-type": 1, "token-key": "{}"}},
                {{"token-type": 5, "token-key": "{}"}},
                {{"token-type": 2, "token-key": "{}"}},
                {{"token-type": 1, "token-key": "{}", "not-before": 9}},
                {{"token-type": 1, "token-key": "{}"}},
                {{"token-type": 7, "token-key": "AAAA"}}]}}"#,
            b64::encode_url(&p2),
            b64::encode_url(&r),
            b64::encode_url(&rsa),
            b64::encode_std(&p1),
            b64::encode_url_padded(&p2),
        );
        for (token_type, expected) in [
            (1u16, [p2.clone(), p1.clone()].concat()),
            (2, rsa.clone()),
            (5, r.clone()),
        ] {
            assert_eq!(expected.len() % pp_token_key_len(token_type), 0);
            let (rc, _, len) = directory_keys_of(token_type, &directory, 0);
            assert_eq!(
                (rc, len),
                (pp_result::PP_ERR_BUFFER_TOO_SMALL, expected.len())
            );
            let (rc, out, _) = directory_keys_of(token_type, &directory, 4096);
            assert_eq!(rc, pp_result::PP_OK);
            assert_eq!(out, expected, "type {token_type}");
        }
        // No key of the type: nothing, successfully. A type not known: refused.
        let only_rsa = format!(
            r#"{{"token-keys": [{{"token-type": 2, "token-key": "{}"}}]}}"#,
            b64::encode_url(&rsa)
        );
        let (rc, out, len) = directory_keys_of(5, &only_rsa, 64);
        assert_eq!((rc, out.len(), len), (pp_result::PP_OK, 0, 0));
        let (rc, _, _) = directory_keys_of(7, &directory, 4096);
        assert_eq!(rc, pp_result::PP_ERR_UNSUPPORTED_TOKEN);
        // A key of the type asked that is not an element of its group, or of the wrong length.
        for bad in [vec![0u8; 49], p1[..48].to_vec(), r.clone()] {
            let json = format!(
                r#"{{"token-keys": [{{"token-type": 1, "token-key": "{}"}}]}}"#,
                b64::encode_url(&bad)
            );
            let (rc, _, _) = directory_keys_of(1, &json, 4096);
            assert_eq!(rc, pp_result::PP_ERR_INVALID_KEY);
        }
        let (rc, _, _) = directory_keys_of(1, "{", 4096);
        assert_eq!(rc, pp_result::PP_ERR_INVALID_INPUT);
    }

    #[test]
    fn the_key_id_of_a_key_is_the_one_its_tokens_carry() {
        let voprf = VoprfIssuerKey::generate(TokenType::VoprfRistretto255).unwrap();
        let rsa = IssuerKey::generate().unwrap();
        for (key, id) in [
            (
                voprf.public_key().bytes(),
                voprf.public_key().token_key_id(),
            ),
            (rsa.public_key().spki(), rsa.public_key().token_key_id()),
        ] {
            let (rc, out, len) = call(pp_token_key_id_of_key, key, 32);
            assert_eq!((rc, len), (pp_result::PP_OK, 32));
            assert_eq!(&out[..], &id[..]);
        }
        assert_eq!(
            call(pp_token_key_id_of_key, b"", 32).0,
            pp_result::PP_ERR_INVALID_INPUT
        );
    }
}
