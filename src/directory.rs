//! The RFC 9578 §4 issuer directory: the JSON an issuer serves at
//! `/.well-known/private-token-issuer-directory`, naming where TokenRequests go and the keys it
//! issues with. The daemon writes it from its key set; the C library (and through it the nginx
//! module) and `privacypassd demo` read it.
//!
//! ```json
//! {"issuer-request-uri": "/token-request",
//!  "token-keys": [{"token-type": 2, "token-key": "<base64url>", "not-before": 1700000000}]}
//! ```
//!
//! Keys of every token type are kept, whatever this library can verify; members it does not
//! know are ignored, as RFC 9578 asks of clients.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::keys::{KeySet, KeyValidity};
use crate::wire::TokenType;

/// The longest directory [`IssuerDirectory::from_json`] reads. A type 2 key takes about 520
/// bytes of JSON, so this holds several hundred keys; issuers publish a few.
pub const MAX_DIRECTORY_LEN: usize = 256 * 1024;

/// The most keys [`IssuerDirectory::from_json`] reads.
pub const MAX_TOKEN_KEYS: usize = 256;

/// An issuer directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireDirectory", into = "WireDirectory")]
pub struct IssuerDirectory {
    /// `issuer-request-uri`: where clients send TokenRequests. RFC 9578 requires it, but a
    /// verifier needs only the keys, so a directory without it is read (as `None`) and written
    /// without it.
    pub issuer_request_uri: Option<String>,
    /// `token-keys`, in the directory's order.
    pub token_keys: Vec<DirectoryKey>,
}

/// One entry of `token-keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryKey {
    /// `token-type`: 2 for Blind RSA; any other value is kept as it is.
    pub token_type: u16,
    /// `token-key`, decoded from base64: for type 2 the key's RSASSA-PSS SubjectPublicKeyInfo
    /// (DER).
    pub token_key: Vec<u8>,
    /// `not-before`: Unix seconds from which the key is in use, when the issuer says.
    pub not_before: Option<u64>,
}

/// Why bytes are not a directory this library reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory is {0} bytes long, more than {MAX_DIRECTORY_LEN}")]
    TooLong(usize),
    #[error("not an issuer directory: {0}")]
    Json(String),
    #[error("the directory lists {0} keys, more than {MAX_TOKEN_KEYS}")]
    TooManyKeys(usize),
    #[error("token-keys[{0}]: token-key is not base64 or base64url")]
    KeyEncoding(usize),
}

/// The directory as JSON carries it: keys in base64.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WireDirectory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer_request_uri: Option<String>,
    token_keys: Vec<WireKey>,
}

/// A key as JSON carries it. The members are written in alphabetical order, the order in which
/// the daemon has always written them, so that a directory's body and its ETag stay the same.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WireKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<u64>,
    token_key: String,
    token_type: u16,
}

impl TryFrom<WireDirectory> for IssuerDirectory {
    type Error = DirectoryError;

    fn try_from(wire: WireDirectory) -> Result<Self, DirectoryError> {
        if wire.token_keys.len() > MAX_TOKEN_KEYS {
            return Err(DirectoryError::TooManyKeys(wire.token_keys.len()));
        }
        let token_keys = wire
            .token_keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                Ok(DirectoryKey {
                    token_type: key.token_type,
                    token_key: b64::decode_any(&key.token_key)
                        .ok_or(DirectoryError::KeyEncoding(index))?,
                    not_before: key.not_before,
                })
            })
            .collect::<Result<_, DirectoryError>>()?;
        Ok(IssuerDirectory {
            issuer_request_uri: wire.issuer_request_uri,
            token_keys,
        })
    }
}

impl From<IssuerDirectory> for WireDirectory {
    fn from(directory: IssuerDirectory) -> Self {
        WireDirectory {
            issuer_request_uri: directory.issuer_request_uri,
            token_keys: directory
                .token_keys
                .into_iter()
                .map(|key| WireKey {
                    not_before: key.not_before,
                    token_key: b64::encode_url(&key.token_key),
                    token_type: key.token_type,
                })
                .collect(),
        }
    }
}

impl IssuerDirectory {
    /// The directory of the keys of `keys` that issue at `now`, each with its `not-before`:
    /// the type 2 keys in the key set's order (`token-key` the SubjectPublicKeyInfo), then the
    /// VOPRF keys of types 1 and 5 in theirs (`token-key` the serialized public key: compressed
    /// SEC1 for P-384, 32 bytes for ristretto255).
    pub fn of_issuing_keys(keys: &KeySet, issuer_request_uri: &str, now: u64) -> Self {
        let rsa = keys.issuing(now).map(|entry| DirectoryKey {
            token_type: TokenType::BlindRsa2048.value(),
            token_key: entry.public.spki().to_vec(),
            not_before: Some(entry.validity.not_before),
        });
        let voprf = keys.voprf_issuing(now).map(|entry| DirectoryKey {
            token_type: entry.key.token_type().value(),
            token_key: entry.key.public_key().bytes().to_vec(),
            not_before: Some(entry.validity.not_before),
        });
        IssuerDirectory {
            issuer_request_uri: Some(issuer_request_uri.to_owned()),
            token_keys: rsa.chain(voprf).collect(),
        }
    }

    /// The directory a rotating issuer publishes. For each token type, at most `listed` keys,
    /// chosen in this order: the keys issuing now, the keys that start issuing within
    /// `publish_ahead` seconds (the soonest first), then the keys past issuance whose tokens
    /// still redeem (the most recent first). They are listed pending first (the latest
    /// `not-before` first), then issuing (the newest first), then those in their grace, each
    /// with its `not-before`. So a client taking the first key whose `not-before` has passed,
    /// as RFC 9578 §4 asks, takes the key that issues at any time, even from a directory it
    /// cached before a pending key started; and an origin verifying with every listed key
    /// accepts each token until its key's end of redemption.
    pub fn of_published_keys(
        keys: &KeySet,
        issuer_request_uri: &str,
        now: u64,
        publish_ahead: u64,
        listed: usize,
    ) -> Self {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum State {
            Issuing,
            Pending,
            Grace,
        }
        let horizon = now.saturating_add(publish_ahead);
        let rsa = keys
            .entries()
            .iter()
            .filter(|e| e.secret.is_some())
            .map(|e| {
                (
                    TokenType::BlindRsa2048,
                    e.validity,
                    e.public.spki().to_vec(),
                )
            });
        let voprf = keys.voprf_entries().iter().map(|e| {
            (
                e.key.token_type(),
                e.validity,
                e.key.public_key().bytes().to_vec(),
            )
        });
        let mut candidates: Vec<(TokenType, State, KeyValidity, Vec<u8>)> = rsa
            .chain(voprf)
            .filter_map(|(token_type, v, key)| {
                let state = if v.issues_at(now) {
                    State::Issuing
                } else if now < v.not_before && v.not_before <= horizon {
                    State::Pending
                } else if v.expires <= now && now < keys.redeemable_until(&v) {
                    State::Grace
                } else {
                    return None;
                };
                Some((token_type, state, v, key))
            })
            .collect();
        // Which keys are kept under the cap: issuing, then pending soonest first, then grace
        // most recent first.
        candidates.sort_by_key(|(t, state, v, _)| {
            let order = match state {
                State::Pending => v.not_before,
                State::Issuing | State::Grace => u64::MAX - v.not_before,
            };
            (t.value(), *state, order)
        });
        let mut kept: Vec<(TokenType, State, KeyValidity, Vec<u8>)> = Vec::new();
        for candidate in candidates {
            if kept.iter().filter(|k| k.0 == candidate.0).count() < listed {
                kept.push(candidate);
            }
        }
        // How they are listed: pending, issuing, grace, each the latest not-before first.
        kept.sort_by_key(|(t, state, v, _)| {
            let rank = match state {
                State::Pending => 0,
                State::Issuing => 1,
                State::Grace => 2,
            };
            (t.value(), rank, u64::MAX - v.not_before)
        });
        IssuerDirectory {
            issuer_request_uri: Some(issuer_request_uri.to_owned()),
            token_keys: kept
                .into_iter()
                .map(|(token_type, _, validity, key)| DirectoryKey {
                    token_type: token_type.value(),
                    token_key: key,
                    not_before: Some(validity.not_before),
                })
                .collect(),
        }
    }

    /// Reads a directory of at most [`MAX_DIRECTORY_LEN`] bytes listing at most
    /// [`MAX_TOKEN_KEYS`] keys. Each `token-key` may be base64url or base64, padded or not.
    /// A member of the wrong JSON type, a `token-type` beyond 16 bits and a member given twice
    /// are refused; members this library does not know are ignored.
    pub fn from_json(json: &[u8]) -> Result<Self, DirectoryError> {
        if json.len() > MAX_DIRECTORY_LEN {
            return Err(DirectoryError::TooLong(json.len()));
        }
        let wire: WireDirectory =
            serde_json::from_slice(json).map_err(|e| DirectoryError::Json(e.to_string()))?;
        IssuerDirectory::try_from(wire)
    }

    /// The directory as compact JSON, keys in base64url without padding.
    pub fn to_json(&self) -> String {
        // Strings and integers always serialize: the fallback is never taken.
        serde_json::to_string(&WireDirectory::from(self.clone())).unwrap_or_default()
    }

    /// The keys of one token type, in the directory's order.
    pub fn keys_of_type(&self, token_type: TokenType) -> impl Iterator<Item = &DirectoryKey> {
        self.token_keys
            .iter()
            .filter(move |key| key.token_type == token_type.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token_type: u16, token_key: &[u8], not_before: Option<u64>) -> DirectoryKey {
        DirectoryKey {
            token_type,
            token_key: token_key.to_vec(),
            not_before,
        }
    }

    #[test]
    fn writes_the_members_as_the_daemon_always_did() {
        let directory = IssuerDirectory {
            issuer_request_uri: Some("/token-request".into()),
            token_keys: vec![key(2, &[0xfb, 0xff, 0x01], Some(1_700_000_000))],
        };
        let expected = serde_json::json!({
            "issuer-request-uri": "/token-request",
            "token-keys": [{"token-type": 2, "token-key": "-_8B", "not-before": 1_700_000_000u64}],
        })
        .to_string();
        assert_eq!(directory.to_json(), expected);
        assert_eq!(
            expected,
            r#"{"issuer-request-uri":"/token-request","token-keys":[{"not-before":1700000000,"token-key":"-_8B","token-type":2}]}"#
        );
        assert_eq!(
            IssuerDirectory::from_json(expected.as_bytes()).unwrap(),
            directory
        );
        let bare = IssuerDirectory {
            issuer_request_uri: None,
            token_keys: vec![key(1, b"k", None)],
        };
        assert_eq!(
            bare.to_json(),
            r#"{"token-keys":[{"token-key":"aw","token-type":1}]}"#
        );
    }

    #[test]
    fn reads_every_type_both_alphabets_and_ignores_unknown_members() {
        let json = br#"{"issuer-request-uri": "https://issuer.example/token-request",
            "note": {"nested": [1, 2]},
            "token-keys": [
                {"token-type": 1, "token-key": "+/8B", "extra": true},
                {"token-type": 2, "token-key": "-_8B", "not-before": 7},
                {"token-type": 5, "token-key": "-_8="}
            ]}"#;
        let directory = IssuerDirectory::from_json(json).unwrap();
        assert_eq!(
            directory.issuer_request_uri.as_deref(),
            Some("https://issuer.example/token-request")
        );
        assert_eq!(
            directory.token_keys,
            vec![
                key(1, &[0xfb, 0xff, 0x01], None),
                key(2, &[0xfb, 0xff, 0x01], Some(7)),
                key(5, &[0xfb, 0xff], None),
            ]
        );
        let type2: Vec<_> = directory.keys_of_type(TokenType::BlindRsa2048).collect();
        assert_eq!(type2, vec![&directory.token_keys[1]]);
        assert!(IssuerDirectory::from_json(br#"{"token-keys": []}"#)
            .unwrap()
            .issuer_request_uri
            .is_none());
    }

    #[test]
    fn refuses_what_is_not_a_directory() {
        let json = |text: &str| IssuerDirectory::from_json(text.as_bytes());
        for text in [
            "",
            "{",
            "{}",
            "[]",
            r#"{"token-keys": {}}"#,
            r#"{"token-keys": [{"token-type": "2", "token-key": "AA"}]}"#,
            r#"{"token-keys": [{"token-type": 2}]}"#,
            r#"{"token-keys": [{"token-key": "AA"}]}"#,
            r#"{"token-keys": [{"token-type": 65536, "token-key": "AA"}]}"#,
            r#"{"token-keys": [{"token-type": -1, "token-key": "AA"}]}"#,
            r#"{"token-keys": [{"token-type": 2.0, "token-key": "AA"}]}"#,
            r#"{"token-keys": [{"token-type": 2, "token-key": "AA", "not-before": "0"}]}"#,
            r#"{"token-keys": [{"token-type": 2, "token-key": "AA", "not-before": -1}]}"#,
            r#"{"token-keys": [{"token-type": 2, "token-key": "AA", "token-type": 2}]}"#,
            r#"{"token-keys": [], "issuer-request-uri": 1}"#,
            r#"{"token-keys": []} trailing"#,
        ] {
            assert!(
                matches!(json(text), Err(DirectoryError::Json(_))),
                "{text}: {:?}",
                json(text)
            );
        }
        assert_eq!(
            json(
                r#"{"token-keys": [{"token-type": 1, "token-key": "AA"}, {"token-type": 2, "token-key": "!!"}]}"#
            ),
            Err(DirectoryError::KeyEncoding(1))
        );
        assert_eq!(
            json(r#"{"token-keys": [{"token-type": 2, "token-key": "-_+/"}]}"#),
            Err(DirectoryError::KeyEncoding(0))
        );
    }

    #[test]
    fn refuses_too_long_and_too_many() {
        let entry = r#"{"token-type": 2, "token-key": "AA"}"#;
        let listing = |n: usize| format!(r#"{{"token-keys": [{}]}}"#, vec![entry; n].join(","));
        assert_eq!(
            IssuerDirectory::from_json(listing(MAX_TOKEN_KEYS).as_bytes())
                .unwrap()
                .token_keys
                .len(),
            MAX_TOKEN_KEYS
        );
        assert_eq!(
            IssuerDirectory::from_json(listing(MAX_TOKEN_KEYS + 1).as_bytes()),
            Err(DirectoryError::TooManyKeys(MAX_TOKEN_KEYS + 1))
        );
        let mut long = listing(1).into_bytes();
        long.resize(MAX_DIRECTORY_LEN + 1, b' ');
        assert_eq!(
            IssuerDirectory::from_json(&long),
            Err(DirectoryError::TooLong(MAX_DIRECTORY_LEN + 1))
        );
    }

    #[test]
    fn lists_the_keys_issuing_now_with_their_not_before() {
        let mut keys = KeySet::new(0);
        let now = 1000;
        let issuing = keys.generate(KeyValidity::new(900, 2000).unwrap()).unwrap();
        keys.generate(KeyValidity::new(2000, 3000).unwrap())
            .unwrap();
        let directory = IssuerDirectory::of_issuing_keys(&keys, "/token-request", now);
        assert_eq!(
            directory,
            IssuerDirectory {
                issuer_request_uri: Some("/token-request".into()),
                token_keys: vec![key(2, issuing.public_key().spki(), Some(900))],
            }
        );
        let read = IssuerDirectory::from_json(directory.to_json().as_bytes()).unwrap();
        assert_eq!(read, directory);
    }

    #[test]
    fn a_rotating_issuer_lists_the_next_key_ahead_of_its_start() {
        let mut keys = KeySet::new(0);
        let older = keys.generate(KeyValidity::new(100, 1500).unwrap()).unwrap();
        let current = keys.generate(KeyValidity::new(900, 2000).unwrap()).unwrap();
        let next = keys
            .generate(KeyValidity::new(2000, 3000).unwrap())
            .unwrap();
        let later = keys
            .generate(KeyValidity::new(3000, 4000).unwrap())
            .unwrap();
        let p384 = keys
            .generate_voprf(TokenType::VoprfP384, KeyValidity::new(1500, 2500).unwrap())
            .unwrap();
        let ids = |d: &IssuerDirectory| -> Vec<(u16, Vec<u8>, Option<u64>)> {
            d.token_keys
                .iter()
                .map(|k| (k.token_type, k.token_key.clone(), k.not_before))
                .collect()
        };
        let spki = |k: &crate::keys::IssuerKey| k.public_key().spki().to_vec();
        // At 1000, 400 s ahead: the issuing keys only, the newest first.
        let at = IssuerDirectory::of_published_keys(&keys, "/t", 1000, 400, 3);
        assert_eq!(
            ids(&at),
            vec![(2, spki(&current), Some(900)), (2, spki(&older), Some(100))]
        );
        // 1000 s ahead: the next RSA key after them, and the pending P-384 key; the cap of
        // three per type leaves `later` (and, at two, the older key) out.
        let ahead = IssuerDirectory::of_published_keys(&keys, "/t", 1000, 1000, 3);
        assert_eq!(
            ids(&ahead),
            vec![
                (1, p384.public_key().bytes().to_vec(), Some(1500)),
                (2, spki(&next), Some(2000)),
                (2, spki(&current), Some(900)),
                (2, spki(&older), Some(100)),
            ]
        );
        // The cap keeps the issuing key and the soonest pending one, listed pending first.
        let capped = IssuerDirectory::of_published_keys(&keys, "/t", 1600, 2000, 2);
        assert_eq!(
            ids(&capped)[1..],
            [(2, spki(&next), Some(2000)), (2, spki(&current), Some(900))]
        );
        assert!(!ids(&ahead).contains(&(2, spki(&later), Some(3000))));
    }

    #[test]
    fn keys_in_their_grace_are_listed_last_and_leave_first_under_the_cap() {
        let mut keys = KeySet::new(500);
        let older = keys.generate(KeyValidity::new(100, 1500).unwrap()).unwrap();
        let current = keys
            .generate(KeyValidity::new(1500, 2000).unwrap())
            .unwrap();
        let next = keys
            .generate(KeyValidity::new(2000, 3000).unwrap())
            .unwrap();
        let spki = |k: &crate::keys::IssuerKey| k.public_key().spki().to_vec();
        let listed = |now, cap| -> Vec<Vec<u8>> {
            IssuerDirectory::of_published_keys(&keys, "/t", now, 400, cap)
                .token_keys
                .into_iter()
                .map(|k| k.token_key)
                .collect()
        };
        // At 1550 the older key issues no more but redeems until 2000.
        assert_eq!(listed(1550, 3), vec![spki(&current), spki(&older)]);
        assert_eq!(
            listed(1700, 3),
            vec![spki(&next), spki(&current), spki(&older)]
        );
        assert_eq!(listed(1700, 2), vec![spki(&next), spki(&current)]);
        // Its end of redemption passed, it is gone.
        assert_eq!(listed(2000, 3), vec![spki(&next), spki(&current)]);
        // Whichever directory a client cached, the first key whose not-before passed is the one
        // issuing: before 2000 the current key, from 2000 the next.
        let cached = IssuerDirectory::of_published_keys(&keys, "/t", 1700, 400, 3);
        let first_started = |at: u64| {
            cached
                .token_keys
                .iter()
                .find(|k| k.not_before.is_none_or(|nb| nb <= at))
                .map(|k| k.token_key.clone())
        };
        assert_eq!(first_started(1999), Some(spki(&current)));
        assert_eq!(first_started(2000), Some(spki(&next)));
    }

    #[test]
    fn lists_voprf_keys_with_their_type_and_serialized_key() {
        let mut keys = KeySet::new(0);
        let validity = KeyValidity::new(900, 2000).unwrap();
        let rsa = keys.generate(validity).unwrap();
        let p384 = keys.generate_voprf(TokenType::VoprfP384, validity).unwrap();
        let r255 = keys
            .generate_voprf(TokenType::VoprfRistretto255, validity)
            .unwrap();
        keys.generate_voprf(TokenType::VoprfP384, KeyValidity::new(2000, 3000).unwrap())
            .unwrap();
        let directory = IssuerDirectory::of_issuing_keys(&keys, "/token-request", 1000);
        assert_eq!(
            directory.token_keys,
            vec![
                key(2, rsa.public_key().spki(), Some(900)),
                key(1, p384.public_key().bytes(), Some(900)),
                key(5, r255.public_key().bytes(), Some(900)),
            ]
        );
        assert_eq!(directory.token_keys[1].token_key.len(), 49);
        assert_eq!(directory.token_keys[2].token_key.len(), 32);
        let read = IssuerDirectory::from_json(directory.to_json().as_bytes()).unwrap();
        assert_eq!(read, directory);
        assert_eq!(read.keys_of_type(TokenType::BlindRsa2048).count(), 1);
    }
}
