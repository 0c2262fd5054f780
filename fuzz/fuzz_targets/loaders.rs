//! The daemon's file loaders on any bytes. An even first byte: the rest is an `--api-keys`
//! file (`ApiKeys::parse`, under `ApiKeys::load`). An odd one: the rest is a key directory,
//! its files' contents separated by NUL bytes, PEM and JSON sidecar in turn, parsed as
//! `keydir::load` parses them (`IssuerKey::from_pem`, `keydir::parse_validity`) and checked
//! together as `keydir::key_set` checks them (`keydir::key_set_of`). `$PEM1` to `$PEM4` stand
//! for the test keys of fuzz/keys (the last two share a truncated token key id), `$RSAPEM1` for
//! the first as PKCS#1: OpenSSL's check of an RSA-2048 key takes about 35 ms here, so the corpus
//! names real keys this way (each checked once per process) and spends its mutations on the
//! directory around them, not on key bytes that parse and then fail that check.
//!
//! Checks. API keys: a file that loads holds one key per key line, each plain key authenticates
//! as `Bearer <key>` with the methods its line allows; an error names a key line and never
//! holds that line's key. Key directory: a validity that parses re-serializes to itself and
//! starts before it ends; a key that loads re-encodes (PKCS#8) to the same token key id; a key
//! set takes the keys in order and refuses exactly the first that it already holds or whose
//! truncated token key id an earlier key with an overlapping issuance window has.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use openssl::pkey::PKey;
use privacypass_core::{IssuerKey, KeyError, KeyValidity, PublicKey};
use privacypassd::auth::{ApiKeys, ApiMethod};
use privacypassd::keydir::{self, KeyDirError, StoredKey};
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

/// What is known of the RSA keys PEMs held, by the key (its PKCS#1 DER): whether
/// `IssuerKey::from_pem` took it (with its public key), and checked instances to be handed to
/// `key_set_of` again. `from_pem` is OpenSSL's PEM parse, then a function of the RSA key alone
/// (size, exponent, consistency) whose RSA check takes about 35 ms here: repeated, it would
/// bound this target to a few dozen inputs a second. A key seen for the first time, and any PEM
/// OpenSSL does not parse into an RSA key, goes through `from_pem` itself (once per process).
#[derive(Default)]
struct Parsed {
    /// The RSA key of PEM bytes seen before (OpenSSL 3's decoder setup alone takes about
    /// 0.3 ms), or none.
    der: HashMap<Vec<u8>, Option<Vec<u8>>>,
    outcome: HashMap<Vec<u8>, Option<Arc<PublicKey>>>,
    instances: HashMap<Vec<u8>, Vec<IssuerKey>>,
}

static PARSED: Mutex<Option<Parsed>> = Mutex::new(None);
/// Instances kept per key.
const INSTANCES: usize = 8;
/// Keys remembered.
const OUTCOMES: usize = 4096;

fn parsed<T>(f: impl FnOnce(&mut Parsed) -> T) -> T {
    let mut guard = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Parsed::default))
}

/// The RSA key of a PEM, as `from_pem` first reads it (no check).
fn rsa_der(pem: &[u8]) -> Option<Vec<u8>> {
    let pkey = PKey::private_key_from_pem(pem).ok()?;
    pkey.rsa().ok()?.private_key_to_der().ok()
}

/// Whether `from_pem` takes these PEM bytes (the key's DER and public key when it does).
fn load_pem(pem: &[u8]) -> Option<(Vec<u8>, Arc<PublicKey>)> {
    let der = match parsed(|p| p.der.get(pem).cloned()) {
        Some(der) => der,
        None => {
            let der = rsa_der(pem);
            if der.is_none() {
                assert!(
                    IssuerKey::from_pem(pem).is_err(),
                    "from_pem loaded a PEM that holds no RSA key"
                );
            }
            parsed(|p| {
                if p.der.len() < OUTCOMES {
                    p.der.insert(pem.to_vec(), der.clone());
                }
            });
            der
        }
    };
    let der = der?;
    if let Some(outcome) = parsed(|p| p.outcome.get(&der).cloned()) {
        return outcome.map(|public| (der, public));
    }
    let key = IssuerKey::from_pem(pem).ok();
    if let Some(key) = &key {
        // A key seen for the first time: its own PKCS#8 (as `keys import` writes it) loads.
        let pkcs8 = key.to_pkcs8_pem().expect("a loaded key encodes");
        let again = IssuerKey::from_pem(&pkcs8).expect("a key's own PKCS#8 loads");
        assert_eq!(
            again.public_key().token_key_id(),
            key.public_key().token_key_id()
        );
    }
    let public = key.as_ref().map(|k| k.public_key().clone());
    parsed(|p| {
        if p.outcome.len() < OUTCOMES {
            p.outcome.insert(der.clone(), public.clone());
        }
        if let Some(key) = key {
            p.instances.entry(der.clone()).or_default().push(key);
        }
    });
    public.map(|public| (der, public))
}

/// A checked instance of a key `load_pem` took.
fn instance(der: &[u8]) -> IssuerKey {
    if let Some(key) = parsed(|p| p.instances.get_mut(der).and_then(Vec::pop)) {
        return key;
    }
    let pkey = openssl::rsa::Rsa::private_key_from_der(der).expect("a key's own DER");
    let pem = pkey.private_key_to_pem().expect("a key as PEM");
    IssuerKey::from_pem(&pem).expect("a key from_pem took before")
}

/// Keeps instances for the inputs to come.
fn keep(keys: impl IntoIterator<Item = (Vec<u8>, IssuerKey)>) {
    parsed(|p| {
        for (der, key) in keys {
            let kept = p.instances.entry(der).or_default();
            if kept.len() < INSTANCES {
                kept.push(key);
            }
        }
    });
}

/// Test keys made by `privacypassd keys generate` (PKCS#8), never used anywhere else, and the
/// first as PKCS#1 (`$RSAPEM1`).
fn test_keys() -> &'static [(Vec<u8>, Vec<u8>)] {
    static KEYS: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let one = include_bytes!("../keys/one.pem");
        let pkcs1 = PKey::private_key_from_pem(one)
            .and_then(|k| k.rsa())
            .and_then(|k| k.private_key_to_pem())
            .expect("a test key as PKCS#1");
        let mut keys: Vec<(Vec<u8>, Vec<u8>)> = [
            (&b"$PEM1"[..], &one[..]),
            (b"$PEM2", include_bytes!("../keys/two.pem")),
            (b"$PEM3", include_bytes!("../keys/collides-1.pem")),
            (b"$PEM4", include_bytes!("../keys/collides-2.pem")),
        ]
        .into_iter()
        .map(|(name, pem)| (name.to_vec(), pem.to_vec()))
        .collect();
        keys.push((b"$RSAPEM1".to_vec(), pkcs1));
        keys.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        keys
    })
}

/// How `KeySet::insert_issuer_key` must judge each key in turn: the index of the first key it
/// refuses, and whether for a duplicate (else a truncated id shared with an earlier key whose
/// issuance window overlaps).
fn first_refused(keys: &[(Arc<PublicKey>, KeyValidity)]) -> Option<(usize, bool)> {
    keys.iter().enumerate().find_map(|(i, (key, validity))| {
        let earlier = &keys[..i];
        if earlier
            .iter()
            .any(|(k, _)| k.token_key_id() == key.token_key_id())
        {
            return Some((i, true));
        }
        earlier
            .iter()
            .any(|(k, v)| {
                k.truncated_token_key_id() == key.truncated_token_key_id()
                    && v.not_before < validity.expires
                    && validity.not_before < v.expires
            })
            .then_some((i, false))
    })
}

fn key_dir(data: &[u8]) {
    let data = privacypass_fuzz::expand(data, test_keys());
    let mut files = data.split(|&b| b == 0);
    // What load reads: every PEM and its sidecar, the first failure failing it all.
    let mut loaded = Vec::new();
    while let Some(pem) = files.next() {
        let Some((der, public)) = load_pem(pem) else {
            return;
        };
        // A missing or unreadable sidecar is an error of load, as is one that does not parse.
        let Some(validity) = files
            .next()
            .and_then(|meta| std::str::from_utf8(meta).ok())
            .and_then(|text| keydir::parse_validity(text).ok())
        else {
            return;
        };
        assert!(validity.not_before < validity.expires);
        let written = serde_json::to_string(&validity).expect("a validity serializes");
        assert_eq!(keydir::parse_validity(&written), Ok(validity));
        loaded.push((der, public, validity));
    }
    let judged: Vec<_> = loaded.iter().map(|(_, k, v)| (k.clone(), *v)).collect();
    let refused = first_refused(&judged);
    // key_set_of stops at the first key it refuses: the keys after it are never looked at.
    let used = refused.map_or(loaded.len(), |(i, _)| i + 1);
    let keys: Vec<StoredKey> = loaded[..used]
        .iter()
        .map(|(der, _, validity)| StoredKey {
            key: instance(der),
            validity: *validity,
        })
        .collect();
    match (keydir::key_set_of(keys, 7 * 86_400), refused) {
        (Ok(set), None) => {
            let entries = set.entries();
            assert_eq!(entries.len(), loaded.len());
            for (entry, (_, public, validity)) in entries.iter().zip(&loaded) {
                assert_eq!(entry.public.token_key_id(), public.token_key_id());
                assert_eq!(entry.validity, *validity);
                assert!(
                    entry.secret.is_some(),
                    "a key of the directory without its private half"
                );
            }
            let secrets: Vec<_> = entries.iter().filter_map(|e| e.secret.clone()).collect();
            drop(set);
            keep(
                loaded
                    .into_iter()
                    .zip(secrets)
                    .filter_map(|((der, _, _), key)| {
                        Arc::try_unwrap(key).ok().map(|key| (der, key))
                    }),
            );
        }
        (Err(KeyDirError::Refused(e)), Some((_, duplicate))) => {
            assert_eq!(
                matches!(e, KeyError::Duplicate(_)),
                duplicate,
                "refused for {e:?}"
            );
            assert!(
                matches!(
                    e,
                    KeyError::Duplicate(_) | KeyError::TruncatedIdCollision { .. }
                ),
                "refused for {e:?}"
            );
        }
        (Ok(_), Some((i, duplicate))) => panic!(
            "a key set took key {i}, which {}",
            if duplicate {
                "it already held"
            } else {
                "shares a truncated id with an overlapping key"
            }
        ),
        (Err(e), _) => panic!("a key set refused keys it should take: {e}"),
    }
}
