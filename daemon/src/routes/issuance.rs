//! Issuance: JSON-RPC `issue` and `POST /api/v1/privacy-passes` (REST, the same params as the
//! body), which blind-sign with the key a `key-id` names. A VOPRF key (type 0x0001 or 0x0005)
//! evaluates instead, and `blind-sig` is then its whole TokenResponse (evaluated element and
//! DLEQ proof). Batches: `blinded-tokens` for one key (amortized for a VOPRF key) and `batch`,
//! entries of any keys, each answered on its own; both hold at most `--max-batch-tokens`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use hyper::StatusCode;
use privacypass_core::batch::parallel_map;
use privacypass_core::{b64, ErrorCode, Issuer, KeySet, TokenType, VoprfIssuer};
use privacypass_rpc::{
    BatchEntry, EntryError, IssueBody, IssueParams, IssueRequest, IssueResult, Issued,
};
use serde_json::Value;

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::http::{json_response, Resp};
use crate::metrics::{BatchKind, Op};

/// JSON-RPC `issue` and the REST route: one token, a one-key batch or a generic batch.
pub async fn issue(
    app: &App,
    caller: &Caller,
    request: IssueRequest,
) -> Result<IssueResult, ApiError> {
    measured(app, Op::Issue, issue_inner(app, caller, request)).await
}

async fn issue_inner(
    app: &App,
    caller: &Caller,
    request: IssueRequest,
) -> Result<IssueResult, ApiError> {
    caller.allow_method(ApiMethod::Issue)?;
    let max = app.settings.max_batch_tokens;
    if request.tokens() > max {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("the batch holds more than {max} tokens (--max-batch-tokens)"),
        ));
    }
    let issued = match request {
        IssueRequest::Single(params) => Issued::BlindSig(single(app, caller, &params).await?),
        IssueRequest::OneKey {
            blinded_tokens,
            key_id,
        } => one_key(app, caller, &blinded_tokens, &key_id).await?,
        IssueRequest::Generic(batch) => Issued::Batch(generic(app, caller, &batch).await?),
    };
    Ok(IssueResult {
        issued,
        case: caller.case,
    })
}

/// The key id of `key_id` (hex), when the caller may issue with it.
fn key_id_of(caller: &Caller, key_id: &str) -> Result<[u8; 32], ApiError> {
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
    Ok(key_id)
}

fn blinded_of(blinded_token: &str) -> Result<Vec<u8>, ApiError> {
    b64::decode_any(blinded_token).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnprocessableBlindedToken,
            "blinded-token is not valid base64",
        )
    })
}

/// The type of the key `key_id` names, when there is one.
fn type_of(keys: &KeySet, key_id: &[u8; 32]) -> Option<TokenType> {
    match keys.voprf_get(key_id) {
        Some(entry) => Some(entry.key.token_type()),
        None => keys.get(key_id).map(|_| TokenType::BlindRsa2048),
    }
}

/// One blinded token signed (type 2) or evaluated (types 1 and 5, the whole TokenResponse)
/// with the key `key_id` names: what each entry of any form gets. Blocks.
fn sign(keys: &Arc<KeySet>, key_id: &[u8; 32], blinded: &[u8]) -> Result<Vec<u8>, ApiError> {
    let now = privacypass_core::unix_now();
    if keys.voprf_get(key_id).is_some() {
        let response = VoprfIssuer::new(keys.clone()).issue(key_id, blinded, now)?;
        Ok(response.encode())
    } else {
        Ok(Issuer::new(keys.clone()).issue(key_id, blinded, now)?)
    }
}

async fn single(app: &App, caller: &Caller, params: &IssueParams) -> Result<String, ApiError> {
    let blinded = blinded_of(&params.blinded_token)?;
    let key_id = key_id_of(caller, &params.key_id)?;
    let keys = app.keys();
    let token_type = type_of(&keys, &key_id);
    let signed = sign_blocking(move || sign(&keys, &key_id, &blinded)).await;
    if let Some(token_type) = token_type {
        app.metrics
            .record_type(Op::Issue, token_type, signed.is_ok());
    }
    Ok(b64::encode_url(&signed?))
}

/// `error` with the entry it is about in front of its detail.
fn of_entry(list: &str, index: usize, mut error: ApiError) -> ApiError {
    error.detail = format!("{list}[{index}]: {}", error.detail);
    error
}

/// `blinded-tokens` for one key: amortized (one proof, `blind-sig` the whole
/// AmortizedBatchTokenResponse) for a VOPRF key; each signed, on every core, for a type-2
/// key (`blind-sigs`). Any entry refused refuses the call, naming the entry; nothing is
/// issued then.
async fn one_key(
    app: &App,
    caller: &Caller,
    blinded_tokens: &[String],
    key_id: &str,
) -> Result<Issued, ApiError> {
    let key_id = key_id_of(caller, key_id)?;
    if blinded_tokens.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            "blinded-tokens is empty",
        ));
    }
    let blinded = blinded_tokens
        .iter()
        .enumerate()
        .map(|(i, t)| blinded_of(t).map_err(|e| of_entry("blinded-tokens", i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = app.keys();
    let count = blinded.len() as u64;
    let max = app.settings.max_batch_tokens;
    let now = privacypass_core::unix_now();
    if let Some(entry) = keys.voprf_get(&key_id) {
        let token_type = entry.key.token_type();
        let issuer = VoprfIssuer::new(keys.clone());
        let evaluated = sign_blocking(move || {
            let blinded: Vec<&[u8]> = blinded.iter().map(Vec::as_slice).collect();
            issuer
                .issue_amortized_by_id(&key_id, &blinded, now, max)
                .map(|r| r.encode())
        })
        .await;
        app.metrics.record_batch(BatchKind::Amortized);
        let issued = if evaluated.is_ok() { count } else { 0 };
        app.metrics
            .record_batch_tokens(BatchKind::Amortized, token_type, count, issued);
        app.metrics
            .record_type(Op::Issue, token_type, evaluated.is_ok());
        return Ok(Issued::BlindSig(b64::encode_url(&evaluated?)));
    }
    // Refused before anything is signed when the key does not issue.
    Issuer::new(keys.clone()).key(&key_id, now)?;
    let signed = sign_blocking(move || {
        let results = parallel_map(&blinded, threads(), |b| sign(&keys, &key_id, b));
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| Err(ApiError::new(ErrorCode::Internal, "signing failed")))
                    .map(|sig| b64::encode_url(&sig))
                    .map_err(|e| of_entry("blinded-tokens", i, e))
            })
            .collect::<Result<Vec<String>, ApiError>>()
    })
    .await;
    app.metrics.record_batch(BatchKind::Generic);
    let issued = if signed.is_ok() { count } else { 0 };
    app.metrics
        .record_batch_tokens(BatchKind::Generic, TokenType::BlindRsa2048, count, issued);
    app.metrics
        .record_type(Op::Issue, TokenType::BlindRsa2048, signed.is_ok());
    Ok(Issued::BlindSigs(signed?))
}

/// The cores a batch's signing is spread over.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// An entry of a batch, decoded: its blinded token and key id.
type Entry = (Vec<u8>, [u8; 32]);

/// `batch`: each entry issued as a single `issue` of it would be, on every core; a refused
/// entry answers the code and detail that call would have.
async fn generic(
    app: &App,
    caller: &Caller,
    batch: &[IssueParams],
) -> Result<Vec<BatchEntry>, ApiError> {
    if batch.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "batch is empty"));
    }
    let keys = app.keys();
    let decoded: Vec<Result<Entry, ApiError>> = batch
        .iter()
        .map(|p| Ok((blinded_of(&p.blinded_token)?, key_id_of(caller, &p.key_id)?)))
        .collect();
    // An entry is counted under its key's type even when its blinded token is refused.
    let types: Vec<Option<TokenType>> = batch
        .iter()
        .map(|p| {
            let id: [u8; 32] = hex::decode(&p.key_id).ok()?.try_into().ok()?;
            type_of(&keys, &id)
        })
        .collect();
    let answers = sign_blocking(move || {
        let signed = parallel_map(&decoded, threads(), |entry| match entry {
            Ok((blinded, key_id)) => sign(&keys, key_id, blinded),
            Err(e) => Err(e.clone()),
        });
        Ok::<_, ApiError>(
            signed
                .into_iter()
                .map(|r| {
                    match r.unwrap_or_else(|| {
                        Err(ApiError::new(ErrorCode::Internal, "signing failed"))
                    }) {
                        Ok(sig) => BatchEntry::BlindSig(b64::encode_url(&sig)),
                        Err(e) => BatchEntry::Error(EntryError {
                            code: e.code.code(),
                            message: e.detail,
                        }),
                    }
                })
                .collect::<Vec<_>>(),
        )
    })
    .await?;
    app.metrics.record_batch(BatchKind::Generic);
    for token_type in [
        TokenType::VoprfP384,
        TokenType::BlindRsa2048,
        TokenType::VoprfRistretto255,
    ] {
        let of_type = || {
            answers
                .iter()
                .zip(&types)
                .filter(|(_, t)| **t == Some(token_type))
        };
        let asked = of_type().count() as u64;
        let issued = of_type()
            .filter(|(a, _)| matches!(a, BatchEntry::BlindSig(_)))
            .count() as u64;
        if asked > 0 {
            app.metrics
                .record_batch_tokens(BatchKind::Generic, token_type, asked, issued);
        }
    }
    Ok(answers)
}

/// `POST /api/v1/privacy-passes`: REST issuance, the params of `issue` as the body; 201, or
/// 206 when an entry of a generic batch was refused.
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
    let request = serde_json::from_value::<IssueBody>(params)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParams, e.to_string()))?
        .request()
        .map_err(|m| ApiError::new(ErrorCode::InvalidParams, m))?;
    let result = issue(app, caller, request).await?;
    let status = if result.partial() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::CREATED
    };
    let body = serde_json::to_value(&result)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(status, &body))
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
