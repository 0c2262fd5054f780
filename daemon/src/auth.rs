//! Bearer API keys for the issuance routes (and redemption with `--redeem-auth`).
//!
//! The `--api-keys` file holds one key a line, either the key itself or, so that the file holds
//! no secret, its SHA-256 digest as `sha256:<64 hex>`. Permissions may follow on the same line:
//!
//! ```text
//! # comment
//! sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 name=shop methods=issue
//! sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 token-keys=<64 hex>,<64 hex>
//! ```
//!
//! `methods=` lists `issue` and/or `redeem` (default both), `token-keys=` lists whole token key
//! ids, 64 hex digits each (default all; a prefix is refused, as it could match a key added
//! later), `name=` labels the key in logs. Keys are compared
//! by digest in constant time, every configured key being compared whatever the input.

use std::path::Path;
use std::sync::Arc;

use privacypass_core::keys::TokenKeyId;
use privacypass_core::{b64, crypto, ErrorCode};
use subtle::{Choice, ConstantTimeEq};

use privacypass_rpc::KeyCase;

use crate::error::ApiError;

/// A method an API key may be allowed to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiMethod {
    Issue,
    Redeem,
}

impl ApiMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMethod::Issue => "issue",
            ApiMethod::Redeem => "redeem",
        }
    }
}

/// One configured API key: its digest and what it may do.
#[derive(Clone, Debug)]
pub struct ApiKey {
    digest: [u8; 32],
    /// A public label: `name=`, or the first 8 hex digits of the digest.
    pub label: String,
    issue: bool,
    redeem: bool,
    /// Hex prefixes of the token keys this API key may use; empty for all.
    token_keys: Vec<String>,
}

impl ApiKey {
    /// A stable identifier for counters and idempotency records (not secret, not the key).
    pub fn id(&self) -> String {
        hex::encode(&self.digest[..16])
    }

    /// Refuses a method this key is not allowed.
    pub fn allow_method(&self, method: ApiMethod) -> Result<(), ApiError> {
        let allowed = match method {
            ApiMethod::Issue => self.issue,
            ApiMethod::Redeem => self.redeem,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("API key {} may not call {}", self.label, method.as_str()),
            ))
        }
    }

    /// Refuses a token key this API key is not allowed.
    pub fn allow_token_key(&self, key_id: &TokenKeyId) -> Result<(), ApiError> {
        let hex_id = hex::encode(key_id);
        if self.token_keys.is_empty() || self.token_keys.contains(&hex_id) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "API key {} may not use token key {}",
                    self.label,
                    &hex_id[..16]
                ),
            ))
        }
    }
}

/// Who makes a call and how its answer is spelled: what a route's handler is given.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The API key that authenticated the request, when the route requires one.
    pub key: Option<Arc<ApiKey>>,
    /// `Key-Inflection`: the casing of the keys of the answer.
    pub case: KeyCase,
}

impl Caller {
    pub fn allow_method(&self, method: ApiMethod) -> Result<(), ApiError> {
        self.key.as_ref().map_or(Ok(()), |k| k.allow_method(method))
    }

    pub fn allow_token_key(&self, key_id: &TokenKeyId) -> Result<(), ApiError> {
        self.key
            .as_ref()
            .map_or(Ok(()), |k| k.allow_token_key(key_id))
    }
}

/// The configured API keys.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    keys: Vec<Arc<ApiKey>>,
}

/// Prefix of keys made by `privacypassd api-keys new`.
const KEY_PREFIX: &str = "ppk_";

impl ApiKeys {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Loads an `--api-keys` file. Errors name the line, never its content.
    pub fn load(path: &Path) -> Result<ApiKeys, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = ApiKeys::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if keys.is_empty() {
            return Err(format!("{}: no API keys in the file", path.display()));
        }
        Ok(keys)
    }

    pub fn parse(text: &str) -> Result<ApiKeys, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = n + 1;
            let mut fields = line.split_whitespace();
            let secret_or_digest = fields.next().unwrap_or_default();
            let digest: [u8; 32] = match secret_or_digest.strip_prefix("sha256:") {
                Some(hex_digest) => hex::decode(hex_digest)
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| format!("line {lineno}: sha256: needs 64 hex digits"))?,
                None => {
                    if secret_or_digest.len() < 16 {
                        return Err(format!(
                            "line {lineno}: an API key must have at least 16 characters"
                        ));
                    }
                    crypto::sha256(secret_or_digest.as_bytes())
                }
            };
            let mut key = ApiKey {
                digest,
                label: hex::encode(&digest[..4]),
                issue: true,
                redeem: true,
                token_keys: Vec::new(),
            };
            for field in fields {
                let (name, value) = field
                    .split_once('=')
                    .ok_or_else(|| format!("line {lineno}: expected name=value after the key"))?;
                match name {
                    "name" => key.label = value.to_owned(),
                    "methods" => {
                        key.issue = false;
                        key.redeem = false;
                        for m in value.split(',') {
                            match m {
                                "issue" => key.issue = true,
                                "redeem" => key.redeem = true,
                                other => {
                                    return Err(format!(
                                        "line {lineno}: unknown method {other:?} (issue, redeem)"
                                    ))
                                }
                            }
                        }
                    }
                    "token-keys" => {
                        for id in value.split(',') {
                            let id = id.to_ascii_lowercase();
                            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return Err(format!(
                                    "line {lineno}: token-keys holds whole token key ids, 64 hex digits each (a prefix could match a key added later)"
                                ));
                            }
                            key.token_keys.push(id);
                        }
                    }
                    other => {
                        return Err(format!(
                            "line {lineno}: unknown setting {other:?} (name, methods, token-keys)"
                        ))
                    }
                }
            }
            if keys.iter().any(|k: &Arc<ApiKey>| k.digest == key.digest) {
                return Err(format!("line {lineno}: the same API key is listed twice"));
            }
            keys.push(Arc::new(key));
        }
        Ok(ApiKeys { keys })
    }

    /// The key an `Authorization: Bearer` header names. Every configured digest is compared, in
    /// constant time, whether or not an earlier one matched.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<&Arc<ApiKey>, ApiError> {
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let header = authorization.ok_or_else(|| {
            unauthenticated("an API key is required: Authorization: Bearer <key>")
        })?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("Authorization must be Bearer <api key>"))?;
        let digest = crypto::sha256(token);
        let mut found: Option<&Arc<ApiKey>> = None;
        for key in &self.keys {
            let same: Choice = key.digest.ct_eq(&digest);
            if bool::from(same) {
                found = Some(key);
            }
        }
        found.ok_or_else(|| unauthenticated("the API key is not valid"))
    }
}

/// A fresh API key (`ppk_` and 32 random bytes, base64url) and its file line.
pub fn new_key() -> Result<(String, String), String> {
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    crypto::random_bytes(secret.as_mut()).map_err(|e| format!("random: {e}"))?;
    let key = format!("{KEY_PREFIX}{}", b64::encode_url(secret.as_ref()));
    let line = format!("sha256:{}", hex::encode(crypto::sha256(key.as_bytes())));
    Ok((key, line))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_match_by_secret_or_digest_with_permissions() {
        let (secret, line) = new_key().unwrap();
        let text = format!(
            "# keys\n{line} name=shop methods=issue token-keys=AB12{}\n\nplain-secret-key-0001\n",
            "0".repeat(60)
        );
        let keys = ApiKeys::parse(&text).unwrap();
        assert_eq!(keys.len(), 2);
        let header = format!("Bearer {secret}");
        let shop = keys.authenticate(Some(header.as_bytes())).unwrap();
        assert_eq!(shop.label, "shop");
        assert!(shop.allow_method(ApiMethod::Issue).is_ok());
        let denied = shop.allow_method(ApiMethod::Redeem).unwrap_err();
        assert_eq!(denied.code, ErrorCode::Forbidden);
        let mut id = [0u8; 32];
        id[0] = 0xab;
        id[1] = 0x12;
        assert!(shop.allow_token_key(&id).is_ok());
        // Only the whole id: another key that shares its first bytes is refused.
        id[31] = 1;
        assert_eq!(
            shop.allow_token_key(&id).unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            shop.allow_token_key(&[0; 32]).unwrap_err().code,
            ErrorCode::Forbidden
        );
        let plain = keys
            .authenticate(Some(b"Bearer plain-secret-key-0001"))
            .unwrap();
        assert!(plain.allow_method(ApiMethod::Redeem).is_ok());
        assert!(plain.allow_token_key(&[7; 32]).is_ok());
        for bad in [
            None,
            Some(&b"Basic abc"[..]),
            Some(b"Bearer "),
            Some(b"Bearer plain-secret-key-0002"),
        ] {
            assert_eq!(
                keys.authenticate(bad).unwrap_err().code,
                ErrorCode::Unauthenticated
            );
        }
    }

    #[test]
    fn bad_lines_name_the_line_and_not_the_secret() {
        for (text, expect) in [
            ("short", "line 1: an API key must have at least"),
            ("sha256:zz", "line 1: sha256: needs 64 hex"),
            (
                "\nplain-secret-key-0001 methods=mint",
                "line 2: unknown method",
            ),
            ("plain-secret-key-0001 colour=red", "unknown setting"),
            (
                "plain-secret-key-0001 token-keys=xyz",
                "whole token key ids",
            ),
            (
                "plain-secret-key-0001 token-keys=ab12",
                "a prefix could match",
            ),
            (
                "plain-secret-key-0001\nplain-secret-key-0001",
                "listed twice",
            ),
        ] {
            let err = ApiKeys::parse(text).unwrap_err();
            assert!(err.contains(expect), "{err}");
            assert!(!err.contains("plain-secret"), "{err}");
        }
    }
}
