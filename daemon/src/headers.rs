//! The request headers of the API routes that change how a request is answered:
//! `Key-Inflection`, `Persona-Version` and the form of an `Idempotency-Key`.

use privacypass_core::ErrorCode;
use privacypass_rpc::KeyCase;

use crate::error::ApiError;

/// `Key-Inflection`: the casing of keys in response bodies (kebab when absent).
pub fn key_inflection(header: Option<&[u8]>) -> Result<KeyCase, ApiError> {
    let Some(value) = header.map(<[u8]>::trim_ascii) else {
        return Ok(KeyCase::Kebab);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(KeyCase::from_name)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "Key-Inflection {:?} is not supported: use kebab, camel or snake",
                    String::from_utf8_lossy(value)
                ),
            )
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn headers_are_checked() {
        assert_eq!(key_inflection(None).unwrap(), KeyCase::Kebab);
        assert_eq!(key_inflection(Some(b" CAMEL")).unwrap(), KeyCase::Camel);
        assert_eq!(
            key_inflection(Some(b"pascal")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert!(check_persona_version(None).is_ok());
        assert!(check_persona_version(Some(b"2023-01-05")).is_ok());
        let err = check_persona_version(Some(b"2020-01-01")).unwrap_err();
        assert!(err.detail.contains("2023-01-05"));
        assert!(idempotency_key(b"order-42").is_ok());
        assert!(idempotency_key(b"").is_err());
        assert!(idempotency_key(b"has space").is_err());
        assert!(idempotency_key(&[b'a'; 256]).is_err());
    }
}
