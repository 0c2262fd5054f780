//! The daemon's file loaders on any bytes. An even first byte: the rest is an `--api-keys`
//! file (`ApiKeys::parse`, under `ApiKeys::load`). An odd one: the rest is a key directory,
//! its files' contents separated by NUL bytes, PEM and JSON sidecar in turn, parsed as
//! `keydir::load` parses them (`IssuerKey::from_pem`, `keydir::parse_validity`) and checked
//! together as `keydir::key_set` checks them (`keydir::key_set_of`). `$PEM1` to `$PEM4` stand
//! for the test keys of fuzz/keys (the last two share a truncated token key id): a mutated
//! key's RSA check costs milliseconds, so the corpus names real keys this way and spends its
//! mutations on the directory around them.
//!
//! Checks. API keys: a file that loads holds one key per key line, each plain key authenticates
//! as `Bearer <key>` with the methods its line allows; an error names a key line and never
//! holds that line's key. Key directory: a validity that parses re-serializes to itself and
//! starts before it ends; a key that loads re-encodes (PKCS#8) to the same token key id; a key
//! set holds every key once, and no two keys whose issuance windows overlap share a truncated
//! token key id.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use openssl::pkey::PKey;
use privacypass::IssuerKey;
use privacypassd::auth::{ApiKeys, ApiMethod};
use privacypassd::keydir::{self, StoredKey};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((selector, rest)) if selector % 2 == 0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                api_keys(text);
            }
        }
        Some((_, rest)) => key_dir(rest),
        None => {}
    }
});

/// The key lines of a file: (line number, trimmed line).
fn key_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn api_keys(text: &str) {
    let lines = key_lines(text);
    match ApiKeys::parse(text) {
        Ok(keys) => {
            assert_eq!(
                keys.len(),
                lines.len(),
                "{} key lines, {} keys",
                lines.len(),
                keys.len()
            );
            for (_, line) in &lines {
                let mut fields = line.split_whitespace();
                let Some(secret) = fields.next().filter(|s| !s.starts_with("sha256:")) else {
                    continue;
                };
                let header = format!("Bearer {secret}");
                let key = keys
                    .authenticate(Some(header.as_bytes()))
                    .unwrap_or_else(|_| panic!("a key of the file does not authenticate"));
                assert_eq!(
                    key.id(),
                    hex::encode(&Sha256::digest(secret.as_bytes())[..16])
                );
                // The last methods= of the line holds; none allows both.
                let methods = fields
                    .filter_map(|f| f.strip_prefix("methods="))
                    .last()
                    .map(|m| m.split(',').collect::<Vec<_>>());
                for (method, name) in [(ApiMethod::Issue, "issue"), (ApiMethod::Redeem, "redeem")] {
                    let allowed = methods.as_ref().is_none_or(|m| m.contains(&name));
                    assert_eq!(
                        key.allow_method(method).is_ok(),
                        allowed,
                        "a key allowed {name}: {}",
                        !allowed
                    );
                }
            }
        }
        Err(e) => {
            let lineno: usize = e
                .strip_prefix("line ")
                .and_then(|r| r.split_once(':'))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("an error that names no line: {e:?}"));
            let (_, line) = lines
                .iter()
                .find(|(n, _)| *n == lineno)
                .unwrap_or_else(|| panic!("an error naming line {lineno}, not a key line"));
            let secret = line.split_whitespace().next().unwrap_or_default();
            // A key (16 characters or more) that the line repeats elsewhere, as a setting's
            // name, may be quoted there.
            if secret.len() >= 16
                && !secret.starts_with("sha256:")
                && line.matches(secret).count() == 1
            {
                assert!(
                    !e.contains(secret),
                    "an error holding the line's key: {e:?}"
                );
            }
        }
    }
}

/// Keys already checked, by the RSA key their PEM holds (its PKCS#1 DER), to be taken again by
/// an input holding the same key: `IssuerKey::from_pem` is OpenSSL's PEM parse, then a function
/// of the RSA key alone (size, exponent, consistency), whose RSA check costs milliseconds and
/// would bound this target to a few hundred inputs a second. A key seen for the first time,
/// and any PEM OpenSSL does not parse into an RSA key, goes through `from_pem` itself.
static PARSED: Mutex<Option<HashMap<Vec<u8>, Vec<IssuerKey>>>> = Mutex::new(None);
const PARSED_MAX: usize = 8;

fn parsed<T>(f: impl FnOnce(&mut HashMap<Vec<u8>, Vec<IssuerKey>>) -> T) -> T {
    let mut guard = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// The RSA key of a PEM, as `from_pem` first reads it (no check).
fn rsa_der(pem: &[u8]) -> Option<Vec<u8>> {
    let pkey = PKey::private_key_from_pem(pem).ok()?;
    pkey.rsa().ok()?.private_key_to_der().ok()
}

/// The key of these PEM bytes, as `keydir::load` reads it, and its RSA key's DER.
fn key_of_pem(pem: &[u8]) -> Option<(Vec<u8>, IssuerKey)> {
    let der = rsa_der(pem);
    if let Some(der) = der {
        if let Some(key) = parsed(|p| p.get_mut(&der).and_then(Vec::pop)) {
            return Some((der, key));
        }
        let key = IssuerKey::from_pem(pem).ok()?;
        if !parsed(|p| p.contains_key(&der)) {
            // A key seen for the first time: its own PKCS#8 (as `keys import` writes it) loads.
            let pkcs8 = key.to_pkcs8_pem().expect("a loaded key encodes");
            let again = IssuerKey::from_pem(&pkcs8).expect("a key's own PKCS#8 loads");
            assert_eq!(
                again.public_key().token_key_id(),
                key.public_key().token_key_id()
            );
        }
        return Some((der, key));
    }
    let key = IssuerKey::from_pem(pem).ok();
    assert!(key.is_none(), "from_pem loaded a PEM that holds no RSA key");
    None
}

/// Keeps keys for the inputs to come.
fn keep(keys: impl IntoIterator<Item = (Vec<u8>, IssuerKey)>) {
    parsed(|p| {
        for (der, key) in keys {
            let kept = p.entry(der).or_default();
            if kept.len() < PARSED_MAX {
                kept.push(key);
            }
        }
    });
}

/// Test keys made by `privacypassd keys generate`, never used anywhere else.
fn test_keys() -> &'static [(Vec<u8>, Vec<u8>)] {
    static KEYS: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            (&b"$PEM1"[..], &include_bytes!("../keys/one.pem")[..]),
            (b"$PEM2", include_bytes!("../keys/two.pem")),
            (b"$PEM3", include_bytes!("../keys/collides-1.pem")),
            (b"$PEM4", include_bytes!("../keys/collides-2.pem")),
        ]
        .into_iter()
        .map(|(name, pem)| (name.to_vec(), pem.to_vec()))
        .collect()
    })
}

fn key_dir(data: &[u8]) {
    let data = privacypass_fuzz::expand(data, test_keys());
    let mut files = data.split(|&b| b == 0);
    let mut keys = Vec::new();
    let mut ders = Vec::new();
    let complete = loop {
        let Some(pem) = files.next() else {
            break true;
        };
        let Some((der, key)) = key_of_pem(pem) else {
            break false;
        };
        let validity = files
            .next()
            .and_then(|meta| std::str::from_utf8(meta).ok())
            .and_then(|text| keydir::parse_validity(text).ok());
        // A missing or unreadable sidecar is an error of load, as is one that does not parse.
        let Some(validity) = validity else {
            keep([(der, key)]);
            break false;
        };
        assert!(validity.not_before < validity.expires);
        let written = serde_json::to_string(&validity).expect("a validity serializes");
        assert_eq!(keydir::parse_validity(&written), Ok(validity));
        keys.push(StoredKey { key, validity });
        ders.push(der);
    };
    if !complete {
        keep(ders.into_iter().zip(keys.into_iter().map(|k| k.key)));
        return;
    }
    let ids: Vec<_> = keys
        .iter()
        .map(|k| *k.key.public_key().token_key_id())
        .collect();
    let Ok(set) = keydir::key_set_of(keys, 7 * 86_400) else {
        return;
    };
    let entries = set.entries();
    assert_eq!(entries.len(), ids.len());
    for (i, a) in entries.iter().enumerate() {
        assert_eq!(a.public.token_key_id(), &ids[i]);
        assert!(
            a.secret.is_some(),
            "a key of the directory without its private half"
        );
        for b in &entries[i + 1..] {
            assert_ne!(
                a.public.token_key_id(),
                b.public.token_key_id(),
                "a key twice"
            );
            let overlap = a.validity.not_before < b.validity.expires
                && b.validity.not_before < a.validity.expires;
            assert!(
                !overlap || a.public.truncated_token_key_id() != b.public.truncated_token_key_id(),
                "two keys issuing at once share a truncated token key id"
            );
        }
    }
    let secrets: Vec<_> = entries.iter().filter_map(|e| e.secret.clone()).collect();
    drop(set);
    keep(
        ders.into_iter()
            .zip(secrets)
            .filter_map(|(pem, key)| Arc::try_unwrap(key).ok().map(|key| (pem, key))),
    );
}
