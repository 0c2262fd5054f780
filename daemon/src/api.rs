//! The routes of SPEC §3: JSON-RPC `issue`/`redeem`, the REST and RFC 9578 native issuance
//! routes, the issuer directory, health and metrics. Errors become JSON-RPC errors or REST
//! error bodies here, from the one table in `privacypass::ErrorCode`.
//!
//! JSON-RPC envelopes are handled here rather than by a generic server so that a single call's
//! HTTP status follows its error, batches are bounded before any call runs, and the body limit
//! is enforced while the body is read.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use hyper::{Method, Request, Response, StatusCode};
use privacypass::b64;
use privacypass::{ErrorCode, Issuer, Redeemer, Verifier};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::metrics::Op;

pub type Resp = Response<Full<Bytes>>;

pub const TOKEN_REQUEST_TYPE: &str = "application/private-token-request";
pub const TOKEN_RESPONSE_TYPE: &str = "application/private-token-response";

/// An error with its row of the table and a detail for the caller.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
        }
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn to_jsonrpc(&self) -> Value {
        json!({"code": self.code.code(), "message": self.code.meaning(), "data": {"detail": self.detail}})
    }

    fn to_rest(&self) -> Value {
        json!({"errors": [{"code": self.code.code(), "title": self.code.meaning(), "detail": self.detail}]})
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Resp {
    respond(status, "application/json", body.to_string())
}

fn rpc_error_response(err: &ApiError, id: Value) -> Resp {
    json_response(
        err.status(),
        &json!({"jsonrpc": "2.0", "id": id, "error": err.to_jsonrpc()}),
    )
}

fn rest_error_response(err: &ApiError) -> Resp {
    json_response(err.status(), &err.to_rest())
}

fn method_not_allowed(allow: &'static str, body: Resp) -> Resp {
    let mut resp = body;
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

fn not_post(method: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed here; use POST"),
    )
}

/// Reads the body, refusing it as soon as it is known to exceed the limit.
async fn read_body(app: &App, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limit = app.settings.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("request body larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(app.settings.body_timeout, body.collect()).await {
        Err(_) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "request body not received in time",
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(_)) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "request body could not be read",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A parameter under any of its accepted spellings: kebab, camel or snake case.
fn param<'a>(params: &'a Map<String, Value>, kebab: &str) -> Option<&'a Value> {
    if let Some(v) = params.get(kebab) {
        return Some(v);
    }
    let snake = kebab.replace('-', "_");
    if let Some(v) = params.get(&snake) {
        return Some(v);
    }
    let mut camel = String::with_capacity(kebab.len());
    let mut upper = false;
    for c in kebab.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            camel.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    params.get(&camel)
}

fn string_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match param(params, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("{name} must be a string"),
        )),
    }
}

/// JSON-RPC `issue` and the REST route: blind-sign with the named key.
pub async fn issue(app: &App, params: &Map<String, Value>) -> Result<Value, ApiError> {
    measured(app, Op::Issue, issue_inner(app, params)).await
}

/// Runs an issue or redeem call, counting its outcome and its latency.
async fn measured<T>(
    app: &App,
    op: Op,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = call.await;
    app.metrics
        .record(op, result.as_ref().err().map(|e| e.code), started.elapsed());
    result
}

/// Runs an RSA private operation on the blocking pool, never on the async threads.
async fn sign_blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, privacypass::IssueError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "signing task failed"))?
        .map_err(|e| ApiError::new(e.code(), e.to_string()))
}

async fn issue_inner(app: &App, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let blinded = string_param(params, "blinded-token")?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParams, "blinded-token is required"))?;
    let blinded = b64::decode_any(blinded).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnprocessableBlindedToken,
            "blinded-token is not valid base64",
        )
    })?;
    let key_id = string_param(params, "key-id")?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParams, "key-id is required"))?;
    let key_id: [u8; 32] = hex::decode(key_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParams,
                "key-id must be 64 hex digits (the token_key_id)",
            )
        })?;
    let issuer = Issuer::new(app.keys());
    let signed =
        sign_blocking(move || issuer.issue(&key_id, &blinded, privacypass::unix_now())).await?;
    Ok(json!({"blind-sig": b64::encode_url(&signed)}))
}

/// JSON-RPC `redeem`: verify, then record the spend durably.
pub async fn redeem(app: &App, params: &Map<String, Value>) -> Result<Value, ApiError> {
    measured(app, Op::Redeem, redeem_inner(app, params)).await
}

fn decode_token_text(text: &str) -> Result<Vec<u8>, ApiError> {
    b64::decode_any(text)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParams, "token is not valid base64"))
}

async fn redeem_inner(app: &App, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let bad = |m: &str| ApiError::new(ErrorCode::InvalidParams, m);
    let (token, challenges) = if let Some(token) = string_param(params, "token")? {
        let challenges = match string_param(params, "challenge")? {
            None => Vec::new(),
            Some(c) => {
                vec![b64::decode_any(c).ok_or_else(|| bad("challenge is not valid base64"))?]
            }
        };
        (decode_token_text(token)?, challenges)
    } else if let Some(data) = param(params, "data") {
        let Some([Value::String(token)]) = data.as_array().map(Vec::as_slice) else {
            return Err(bad(
                "data must be an array holding exactly one base64 token",
            ));
        };
        if param(params, "compressed").is_some_and(|c| c != &Value::Bool(false)) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedToken,
                "compressed tokens are not supported",
            ));
        }
        let challenges = match param(params, "bindings") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|b| {
                    b.as_str()
                        .and_then(b64::decode_any)
                        .ok_or_else(|| bad("bindings must be base64 strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("bindings must be an array")),
        };
        (decode_token_text(token)?, challenges)
    } else {
        return Err(bad("token (or data) is required"));
    };
    let redeemer = Redeemer::new(Verifier::new(app.keys()), app.timed_store.clone());
    let failed = |e: privacypass::RedeemError| ApiError::new(e.code(), e.to_string());
    // Verification is a public-key operation and the spent check a read: both run here, so an
    // already-spent token is answered without a trip to the blocking pool. Recording the spend
    // waits for an fsync and runs on the blocking pool.
    let bindings: Vec<&[u8]> = challenges.iter().map(Vec::as_slice).collect();
    let verified = redeemer
        .verify_unspent(&token, &bindings, privacypass::unix_now())
        .map_err(failed)?;
    tokio::task::spawn_blocking(move || redeemer.record(&verified))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "redemption task failed"))?
        .map_err(failed)?;
    Ok(Value::String("success".into()))
}

/// One JSON-RPC call. `None` for a notification.
async fn call(app: &App, item: Value, redeem_only: bool) -> Option<(Value, Option<ErrorCode>)> {
    let envelope = |id: Value, outcome: Result<Value, ApiError>| match outcome {
        Ok(result) => (json!({"jsonrpc": "2.0", "id": id, "result": result}), None),
        Err(e) => (
            json!({"jsonrpc": "2.0", "id": id, "error": e.to_jsonrpc()}),
            Some(e.code),
        ),
    };
    let invalid = |id: Value, m: &str| {
        Some(envelope(
            id,
            Err(ApiError::new(ErrorCode::InvalidRequest, m)),
        ))
    };
    let Value::Object(mut obj) = item else {
        return invalid(Value::Null, "a request must be an object");
    };
    let id = obj.remove("id");
    let id_value = id.clone().unwrap_or(Value::Null);
    if !matches!(id_value, Value::Null | Value::String(_) | Value::Number(_)) {
        return invalid(Value::Null, "id must be a string, a number or null");
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(id_value, "jsonrpc must be \"2.0\"");
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return invalid(id_value, "method must be a string");
    };
    let outcome = match obj.remove("params") {
        Some(Value::Object(params)) => match method.as_str() {
            "issue" if redeem_only => Err(ApiError::new(
                ErrorCode::IssueAtRedemptionRoute,
                "issue is not served at the redemption route; use /rpc",
            )),
            "issue" => issue(app, &params).await,
            "redeem" => redeem(app, &params).await,
            other => Err(ApiError::new(
                ErrorCode::MethodNotFound,
                format!("no method {other:?}"),
            )),
        },
        _ if !matches!(method.as_str(), "issue" | "redeem") => Err(ApiError::new(
            ErrorCode::MethodNotFound,
            format!("no method {method:?}"),
        )),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParams,
            "params must be an object",
        )),
    };
    id.is_some().then(|| envelope(id_value, outcome))
}

/// `POST /rpc` and `POST /api/redeem`.
pub async fn jsonrpc(app: &App, req: Request<Incoming>, redeem_only: bool) -> Resp {
    if req.method() != Method::POST {
        let err = not_post(req.method());
        return method_not_allowed("POST", rpc_error_response(&err, Value::Null));
    }
    let body = match read_body(app, req).await {
        Ok(body) => body,
        Err(e) => return rpc_error_response(&e, Value::Null),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error_response(
                &ApiError::new(ErrorCode::ParseError, e.to_string()),
                Value::Null,
            )
        }
    };
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return rpc_error_response(
                    &ApiError::new(ErrorCode::InvalidRequest, "empty batch"),
                    Value::Null,
                );
            }
            if items.len() > app.settings.max_batch {
                let e = ApiError::new(
                    ErrorCode::TooLarge,
                    format!(
                        "batch of {} calls; at most {} are allowed",
                        items.len(),
                        app.settings.max_batch
                    ),
                );
                return rpc_error_response(&e, Value::Null);
            }
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                if let Some((answer, _)) = call(app, item, redeem_only).await {
                    answers.push(answer);
                }
            }
            if answers.is_empty() {
                return respond(StatusCode::NO_CONTENT, "application/json", Bytes::new());
            }
            json_response(StatusCode::OK, &Value::Array(answers))
        }
        single => match call(app, single, redeem_only).await {
            None => respond(StatusCode::NO_CONTENT, "application/json", Bytes::new()),
            Some((answer, code)) => {
                let status = code
                    .and_then(|c| StatusCode::from_u16(c.http_status()).ok())
                    .unwrap_or(StatusCode::OK);
                json_response(status, &answer)
            }
        },
    }
}

/// `POST /api/v1/privacy-passes`: REST issuance, the bodies of `issue`.
pub async fn rest_issue(app: &App, req: Request<Incoming>) -> Resp {
    if req.method() != Method::POST {
        return method_not_allowed("POST", rest_error_response(&not_post(req.method())));
    }
    let body = match read_body(app, req).await {
        Ok(body) => body,
        Err(e) => return rest_error_response(&e),
    };
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(params)) => params,
        Ok(_) => {
            return rest_error_response(&ApiError::new(
                ErrorCode::InvalidParams,
                "the body must be a JSON object",
            ))
        }
        Err(e) => return rest_error_response(&ApiError::new(ErrorCode::ParseError, e.to_string())),
    };
    match issue(app, &params).await {
        Ok(result) => json_response(StatusCode::CREATED, &result),
        Err(e) => rest_error_response(&e),
    }
}

/// `POST /token-request`: RFC 9578 §6 native issuance.
pub async fn token_request(app: &App, req: Request<Incoming>) -> Resp {
    let text =
        |status: StatusCode, m: String| respond(status, "text/plain; charset=utf-8", m + "\n");
    if req.method() != Method::POST {
        return method_not_allowed(
            "POST",
            text(StatusCode::METHOD_NOT_ALLOWED, "use POST".into()),
        );
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(TOKEN_REQUEST_TYPE))
    {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {TOKEN_REQUEST_TYPE}"),
        );
    }
    let body = match read_body(app, req).await {
        Ok(body) => body,
        Err(e) => return text(e.status(), e.detail),
    };
    let issuer = Issuer::new(app.keys());
    let signing = sign_blocking(move || issuer.issue_request(&body, privacypass::unix_now()));
    match measured(app, Op::Issue, signing).await {
        Ok(response) => respond(StatusCode::OK, TOKEN_RESPONSE_TYPE, response.encode()),
        // RFC 9578 §6.2: a wrong type, an unknown truncated key id or a wrong size is 422.
        Err(e) if e.code == ErrorCode::UnprocessableBlindedToken => {
            text(StatusCode::UNPROCESSABLE_ENTITY, e.detail)
        }
        Err(e) => text(e.status(), e.detail),
    }
}

/// `GET /.well-known/private-token-issuer-directory`.
pub fn directory(app: &App, req: &Request<Incoming>) -> Resp {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let keys = app.keys();
    let now = privacypass::unix_now();
    let token_keys: Vec<Value> = keys
        .issuing(now)
        .map(|e| {
            json!({
                "token-type": 2,
                "token-key": b64::encode_url(e.public.spki()),
                "not-before": e.validity.not_before,
            })
        })
        .collect();
    let body =
        json!({"issuer-request-uri": app.settings.issuer_request_uri, "token-keys": token_keys})
            .to_string();
    let etag = format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(body.as_bytes())[..16])
    );
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        respond(
            StatusCode::NOT_MODIFIED,
            "application/private-token-issuer-directory",
            Bytes::new(),
        )
    } else if req.method() == Method::HEAD {
        respond(
            StatusCode::OK,
            "application/private-token-issuer-directory",
            Bytes::new(),
        )
    } else {
        respond(
            StatusCode::OK,
            "application/private-token-issuer-directory",
            body,
        )
    };
    let headers = resp.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    resp
}

/// `GET /healthz`: ready when a key issues or redeems and the store answers.
pub async fn healthz(app: &Arc<App>) -> Resp {
    let keys = app.keys();
    let now = privacypass::unix_now();
    let issuing = keys.issuing(now).count();
    let app2 = app.clone();
    let store_ok =
        tokio::task::spawn_blocking(move || app2.store.is_spent(&[0; 32], &[0; 32]).is_ok())
            .await
            .unwrap_or(false);
    let ready = issuing > 0 && store_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({"status": if ready {"ok"} else {"unavailable"}, "issuing-keys": issuing, "store": if store_ok {"ok"} else {"unavailable"}}),
    )
}

pub fn metrics(app: &App) -> Resp {
    let text = app.metrics.render(&app.keys(), privacypass::unix_now());
    respond(StatusCode::OK, "text/plain; version=0.0.4", text)
}

pub fn not_found(path: &str) -> Resp {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errors": [{"code": 404, "title": "not found", "detail": format!("no route {path}")}]}),
    )
}
