//! `Idempotency-Key` on issuance: a retry with the same key and the same request gets the
//! first response; the same key while the first is in flight answers 409, with another request
//! 422. Records are per API key and live in the request-state store.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use privacypass_core::{crypto, ErrorCode};
use privacypass_stores::Claim;
use tracing::warn;

use crate::app::App;
use crate::error::ApiError;
use crate::http::{Handled, Resp};

/// How long an Idempotency-Key stays claimed by a request that neither completes nor fails
/// (its daemon died): longer than any request may run.
const IDEMPOTENCY_LEASE_SECS: u64 = 120;

/// The record a request's Idempotency-Key names, and what the request was.
#[derive(Debug)]
pub struct Record {
    scope: String,
    fingerprint: [u8; 32],
}

impl Record {
    /// The record of `idempotency_key` for the API key `key_id` (empty when anonymous); the
    /// fingerprint covers the route, the answer's casing and the body.
    pub fn new(key_id: &str, idempotency_key: &str, parts: &[&[u8]]) -> Record {
        // Records are per API key: two clients cannot see each other's responses.
        let scope = crypto::sha256_parts(&[key_id.as_bytes(), &[0], idempotency_key.as_bytes()]);
        let mut fingerprint_input: Vec<&[u8]> = Vec::with_capacity(2 * parts.len());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                fingerprint_input.push(&[0]);
            }
            fingerprint_input.push(part);
        }
        Record {
            scope: format!("idem:{}", hex::encode(scope)),
            fingerprint: crypto::sha256_parts(&fingerprint_input),
        }
    }
}

/// Runs `call` once for its record: replays a completed answer, refuses a key in flight or
/// reused with another request. `call` is the handler's answer (`Handled`); `error` gives an
/// error the route's form.
pub async fn run_once(
    app: &Arc<App>,
    record: Record,
    call: impl Future<Output = Result<Handled, ApiError>>,
    error: impl FnOnce(&ApiError) -> Resp,
) -> Result<Resp, ApiError> {
    let Record { scope, fingerprint } = record;
    let claim_scope = scope.clone();
    let claim = app
        .on_request_state(move |app| {
            app.idempotency
                .claim(&claim_scope, &fingerprint, IDEMPOTENCY_LEASE_SECS)
        })
        .await?;
    match claim {
        Claim::InFlight => Err(ApiError::new(
            ErrorCode::IdempotencyInFlight,
            "a request with this Idempotency-Key is still in progress; retry once it completes",
        )),
        Claim::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyMismatch,
            "this Idempotency-Key was used with a different request",
        )),
        Claim::Replay(bytes) => {
            let stored = StoredResponse::decode(&bytes).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Internal,
                    "the stored response of this Idempotency-Key is unreadable",
                )
            })?;
            let mut resp = Response::new(Full::new(Bytes::from(stored.body)));
            *resp.status_mut() = stored.status;
            if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(resp)
        }
        Claim::Claimed => {
            let Handled {
                resp,
                batch_call_failed,
            } = match call.await {
                Ok(handled) => handled,
                Err(e) => Handled::whole(error(&e)),
            };
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let ttl = app.settings.idempotency_ttl;
            let outcome = if batch_call_failed || parts.status.is_server_error() {
                // A server-side failure (store, internal) is not replayed: a retry may not meet
                // it, so the key is free again.
                app.on_request_state(move |app| app.idempotency.release(&scope))
                    .await
            } else {
                let stored = StoredResponse {
                    status: parts.status,
                    content_type: parts
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/json")
                        .to_owned(),
                    body: bytes.to_vec(),
                }
                .encode();
                app.on_request_state(move |app| {
                    app.idempotency.complete(&scope, &fingerprint, &stored, ttl)
                })
                .await
            };
            if let Err(e) = outcome {
                // The response stands: a retry signs again and gets the same signature.
                warn!(error = %e, "could not record the Idempotency-Key's response");
            }
            Ok(Response::from_parts(parts, Full::new(bytes)))
        }
    }
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
