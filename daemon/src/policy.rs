//! Request policy of the API routes: rate limits, Key-Inflection, Persona-Version and the
//! stored form of idempotent responses.

use std::fmt;

use hyper::StatusCode;
use privacypass::ErrorCode;
use serde_json::{Map, Value};

use crate::api::ApiError;

/// `--rate-limit N/SECONDS`: at most N calls per API key in each window of SECONDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u64,
    pub window_secs: u64,
}

/// The default: 600 calls a minute per API key.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    calls: 600,
    window_secs: 60,
};

/// Issuance calls all clients together may make per window when no API keys are configured.
pub const DEFAULT_ANONYMOUS_ISSUE_LIMIT: RateLimit = RateLimit {
    calls: 6000,
    window_secs: 60,
};

impl RateLimit {
    /// `N/SECONDS`, or `off` for no limit.
    pub fn parse(text: &str) -> Result<Option<RateLimit>, String> {
        if text == "off" {
            return Ok(None);
        }
        let parsed = text.split_once('/').and_then(|(n, s)| {
            Some(RateLimit {
                calls: n.trim().parse().ok()?,
                window_secs: s.trim().parse().ok()?,
            })
        });
        match parsed {
            Some(limit) if limit.calls > 0 && limit.window_secs > 0 => Ok(Some(limit)),
            _ => Err(format!(
                "rate limit {text:?}: expected N/SECONDS with both positive (e.g. 600/60), or off"
            )),
        }
    }

    /// The window holding `now`: (its start, seconds until it ends).
    pub fn window(&self, now: u64) -> (u64, u64) {
        let start = now - now % self.window_secs;
        (start, start + self.window_secs - now)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.calls, self.window_secs)
    }
}

/// Where a key stands in its window after a request was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateState {
    pub limit: u64,
    pub used: u64,
    pub reset_secs: u64,
}

impl RateState {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }

    pub fn error(&self) -> ApiError {
        ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} calls in this window; retry in {} s",
                self.limit, self.reset_secs
            ),
        )
    }
}

/// `Key-Inflection`: the casing of keys in response bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Inflection {
    #[default]
    Kebab,
    Camel,
    Snake,
}

impl Inflection {
    pub fn parse(header: Option<&[u8]>) -> Result<Inflection, ApiError> {
        match header.map(<[u8]>::trim_ascii) {
            None => Ok(Inflection::Kebab),
            Some(v) if v.eq_ignore_ascii_case(b"kebab") => Ok(Inflection::Kebab),
            Some(v) if v.eq_ignore_ascii_case(b"camel") => Ok(Inflection::Camel),
            Some(v) if v.eq_ignore_ascii_case(b"snake") => Ok(Inflection::Snake),
            Some(v) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "Key-Inflection {:?} is not supported: use kebab, camel or snake",
                    String::from_utf8_lossy(v)
                ),
            )),
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Inflection::Kebab => "kebab",
            Inflection::Camel => "camel",
            Inflection::Snake => "snake",
        }
    }

    fn key(self, kebab: &str) -> String {
        match self {
            Inflection::Kebab => kebab.to_owned(),
            Inflection::Snake => kebab.replace('-', "_"),
            Inflection::Camel => {
                let mut out = String::with_capacity(kebab.len());
                let mut upper = false;
                for c in kebab.chars() {
                    if c == '-' {
                        upper = true;
                    } else if upper {
                        out.push(c.to_ascii_uppercase());
                        upper = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Renames the keys of every object in `value` from kebab case.
    pub fn apply(self, value: Value) -> Value {
        match (self, value) {
            (Inflection::Kebab, v) => v,
            (_, Value::Object(map)) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.key(&k), self.apply(v)))
                    .collect::<Map<_, _>>(),
            ),
            (_, Value::Array(items)) => {
                Value::Array(items.into_iter().map(|v| self.apply(v)).collect())
            }
            (_, v) => v,
        }
    }
}

/// A parameter under any of its accepted spellings: kebab, camel or snake case.
pub fn param<'a>(params: &'a Map<String, Value>, kebab: &str) -> Option<&'a Value> {
    [Inflection::Kebab, Inflection::Snake, Inflection::Camel]
        .into_iter()
        .find_map(|i| params.get(&i.key(kebab)))
}

/// `Persona-Version` values this API answers to; the first is the current one.
pub const PERSONA_VERSIONS: [&str; 1] = ["2023-01-05"];

/// Accepts a missing or documented `Persona-Version`.
pub fn check_persona_version(header: Option<&[u8]>) -> Result<(), ApiError> {
    match header {
        None => Ok(()),
        Some(v)
            if PERSONA_VERSIONS
                .iter()
                .any(|p| p.as_bytes() == v.trim_ascii()) =>
        {
            Ok(())
        }
        Some(v) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "Persona-Version {:?} is not supported; supported: {}",
                String::from_utf8_lossy(v),
                PERSONA_VERSIONS.join(", ")
            ),
        )),
    }
}

/// Longest accepted Idempotency-Key.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Checks an Idempotency-Key: 1 to 255 visible ASCII characters.
pub fn idempotency_key(header: &[u8]) -> Result<&str, ApiError> {
    let ok = !header.is_empty()
        && header.len() <= MAX_IDEMPOTENCY_KEY
        && header.iter().all(|b| b.is_ascii_graphic());
    std::str::from_utf8(header)
        .ok()
        .filter(|_| ok)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            )
        })
}

/// A response as an idempotency record keeps it: status, content type, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl StoredResponse {
    pub fn encode(&self) -> Vec<u8> {
        let ct = self.content_type.as_bytes();
        let mut out = Vec::with_capacity(3 + ct.len() + self.body.len());
        out.extend_from_slice(&self.status.as_u16().to_be_bytes());
        out.push(ct.len().min(255) as u8);
        out.extend_from_slice(&ct[..ct.len().min(255)]);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<StoredResponse> {
        let status =
            StatusCode::from_u16(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?)).ok()?;
        let ct_len = usize::from(*bytes.get(2)?);
        let content_type = std::str::from_utf8(bytes.get(3..3 + ct_len)?).ok()?;
        Some(StoredResponse {
            status,
            content_type: content_type.to_owned(),
            body: bytes[3 + ct_len..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limits_parse_and_windows_align() {
        assert_eq!(
            RateLimit::parse("10/60").unwrap(),
            Some(RateLimit {
                calls: 10,
                window_secs: 60
            })
        );
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        for bad in ["10", "0/60", "10/0", "x/1", "10/60s"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        let limit = RateLimit::parse("5/60").unwrap().unwrap();
        assert_eq!(limit.window(125), (120, 55));
        assert_eq!(limit.window(120), (120, 60));
    }

    #[test]
    fn inflection_renames_nested_keys() {
        let body = json!({"blind-sig": "x", "errors": [{"token-key-id": 1}]});
        assert_eq!(
            Inflection::Camel.apply(body.clone()),
            json!({"blindSig": "x", "errors": [{"tokenKeyId": 1}]})
        );
        assert_eq!(
            Inflection::Snake.apply(body.clone()),
            json!({"blind_sig": "x", "errors": [{"token_key_id": 1}]})
        );
        assert_eq!(Inflection::Kebab.apply(body.clone()), body);
        assert_eq!(
            Inflection::parse(Some(b"CAMEL")).unwrap(),
            Inflection::Camel
        );
        assert_eq!(
            Inflection::parse(Some(b"pascal")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let params = json!({"blindedToken": 1, "key_id": 2});
        let params = params.as_object().unwrap();
        assert_eq!(param(params, "blinded-token"), Some(&json!(1)));
        assert_eq!(param(params, "key-id"), Some(&json!(2)));
    }

    #[test]
    fn headers_are_checked() {
        assert!(check_persona_version(None).is_ok());
        assert!(check_persona_version(Some(b"2023-01-05")).is_ok());
        let err = check_persona_version(Some(b"2020-01-01")).unwrap_err();
        assert!(err.detail.contains("2023-01-05"));
        assert!(idempotency_key(b"order-42").is_ok());
        assert!(idempotency_key(b"").is_err());
        assert!(idempotency_key(b"has space").is_err());
        assert!(idempotency_key(&[b'a'; 256]).is_err());
    }

    #[test]
    fn stored_responses_round_trip() {
        let r = StoredResponse {
            status: StatusCode::CREATED,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
        };
        assert_eq!(StoredResponse::decode(&r.encode()).unwrap(), r);
        assert!(StoredResponse::decode(&[0, 200, 9, b'a']).is_none());
    }
}
