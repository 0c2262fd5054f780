//! Issuance: JSON-RPC `issue` and `POST /api/v1/privacy-passes` (REST, the same params as the
//! body), which blind-sign with the key a `key-id` names. A VOPRF key (type 0x0001 or 0x0005)
//! evaluates instead, and `blind-sig` is then its whole TokenResponse (evaluated element and
//! DLEQ proof).

use std::future::Future;
use std::time::Instant;

use hyper::StatusCode;
use privacypass::{b64, ErrorCode, Issuer, TokenType, VoprfIssuer};
use privacypass_rpc::{IssueParams, IssueResult};
use serde_json::Value;

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::http::{json_response, Resp};
use crate::metrics::Op;

/// JSON-RPC `issue` and the REST route: blind-sign with the named key.
pub async fn issue(
    app: &App,
    caller: &Caller,
    blinded_token: &str,
    key_id: &str,
) -> Result<IssueResult, ApiError> {
    measured(
        app,
        Op::Issue,
        issue_inner(app, caller, blinded_token, key_id),
    )
    .await
}

async fn issue_inner(
    app: &App,
    caller: &Caller,
    blinded_token: &str,
    key_id: &str,
) -> Result<IssueResult, ApiError> {
    caller.allow_method(ApiMethod::Issue)?;
    let blinded = b64::decode_any(blinded_token).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnprocessableBlindedToken,
            "blinded-token is not valid base64",
        )
    })?;
    let key_id: [u8; 32] = hex::decode(key_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParams,
                "key-id must be 64 hex digits (the token_key_id)",
            )
        })?;
    caller.allow_token_key(&key_id)?;
    let keys = app.keys();
    let token_type = match keys.voprf_get(&key_id) {
        Some(entry) => Some(entry.key.token_type()),
        None => keys.get(&key_id).map(|_| TokenType::BlindRsa2048),
    };
    let signed = if keys.voprf_get(&key_id).is_some() {
        let issuer = VoprfIssuer::new(keys);
        sign_blocking(move || {
            issuer
                .issue(&key_id, &blinded, privacypass::unix_now())
                .map(|response| response.encode())
        })
        .await
    } else {
        let issuer = Issuer::new(keys);
        sign_blocking(move || issuer.issue(&key_id, &blinded, privacypass::unix_now())).await
    };
    if let Some(token_type) = token_type {
        app.metrics
            .record_type(Op::Issue, token_type, signed.is_ok());
    }
    let signed = signed?;
    Ok(IssueResult {
        blind_sig: b64::encode_url(&signed),
        case: caller.case,
    })
}

/// `POST /api/v1/privacy-passes`: REST issuance, the params of `issue` as the body.
pub async fn rest(app: &App, caller: &Caller, body: &[u8]) -> Result<Resp, ApiError> {
    let params = match serde_json::from_slice::<Value>(body) {
        Ok(params @ Value::Object(_)) => params,
        Ok(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "the body must be a JSON object",
            ))
        }
        Err(e) => return Err(ApiError::new(ErrorCode::ParseError, e.to_string())),
    };
    let params: IssueParams = serde_json::from_value(params)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParams, e.to_string()))?;
    let result = issue(app, caller, &params.blinded_token, &params.key_id).await?;
    let body = serde_json::to_value(&result)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(StatusCode::CREATED, &body))
}

/// Runs an issue or redeem call, counting its outcome and its latency.
pub async fn measured<T>(
    app: &App,
    op: Op,
    call: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = call.await;
    app.metrics
        .record(op, result.as_ref().err().map(|e| e.code), started.elapsed());
    result
}

/// Runs a private-key operation (an RSA signature, a VOPRF evaluation) on the blocking pool,
/// never on the async threads.
pub async fn sign_blocking<T: Send + 'static, E: Send + 'static>(
    job: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    ApiError: From<E>,
{
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "signing task failed"))?
        .map_err(ApiError::from)
}
