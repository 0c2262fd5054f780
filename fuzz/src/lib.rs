//! What the fuzz targets share: the daemon's API routes driven in-process (no socket), the
//! README's error table as the oracle of statuses, placeholders that stand for this process's
//! keys and tokens in the committed corpora, and the check that a blind signature is the
//! issuer's RSA signature of the message it was asked to sign.

pub mod daemon;
pub mod table;

use openssl::bn::{BigNum, BigNumContext};
use privacypass_core::PublicKey;
use serde_json::{Map, Value};

/// A key in any casing the API writes, in kebab case (`blindSig`, `blind_sig`: `blind-sig`).
pub fn kebab(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    for c in key.chars() {
        match c {
            '_' => out.push('-'),
            c if c.is_ascii_uppercase() => {
                out.push('-');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

/// A param of a call or body in any casing the API takes (`key-id`, `key_id`, `keyId`), kebab
/// first, as the API reads it.
pub fn param<'a>(params: &'a Map<String, Value>, kebab: &str) -> Option<&'a Value> {
    let snake = kebab.replace('-', "_");
    let mut camel = String::new();
    let mut upper = false;
    for c in kebab.chars() {
        match c {
            '-' => upper = true,
            c if upper => {
                camel.extend(c.to_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    let found = [kebab, snake.as_str(), camel.as_str()]
        .into_iter()
        .find_map(|k| params.get(k));
    found
}

/// Whether `sig` is the raw RSA signature of `msg` under `key`: sig^e mod n == msg, with msg
/// below n (a signature of anything else is a signature the issuer should have refused).
pub fn signs(key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let len = key.modulus().len();
    if msg.len() != len || sig.len() != len {
        return false;
    }
    let (Ok(n), Ok(e), Ok(s), Ok(mut ctx), Ok(mut out)) = (
        BigNum::from_slice(key.modulus()),
        BigNum::from_slice(key.exponent()),
        BigNum::from_slice(sig),
        BigNumContext::new(),
        BigNum::new(),
    ) else {
        return false;
    };
    if s >= n || out.mod_exp(&s, &e, &n, &mut ctx).is_err() {
        return false;
    }
    out.to_vec_padded(len as i32).is_ok_and(|m| m == msg)
}

/// Replaces every `(name, value)` placeholder in `input`, longest names first so that none is
/// a prefix of another's expansion.
pub fn expand(input: &[u8], placeholders: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    if !input.contains(&b'$') {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    'scan: while i < input.len() {
        if input[i] == b'$' {
            for (name, value) in placeholders {
                if input[i..].starts_with(name) {
                    out.extend_from_slice(value);
                    i += name.len();
                    continue 'scan;
                }
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_longest_first() {
        let p = vec![
            (b"$GRACEKEY".to_vec(), b"G".to_vec()),
            (b"$KEY".to_vec(), b"K".to_vec()),
        ];
        assert_eq!(expand(b"a$KEY$GRACEKEY$K$", &p), b"aKG$K$");
    }
}
