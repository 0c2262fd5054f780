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
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use privacypass::b64;
use privacypass::keys::TokenKeyId;
use privacypass::{ErrorCode, Issuer, Redeemer, Verifier};
use privacypass_stores::Claim;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use tracing::warn;

use crate::app::App;
use crate::auth::{ApiKey, ApiMethod};
use crate::metrics::Op;
use crate::policy::{self, param, Inflection, RateState, StoredResponse};

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
    /// An error for the client. A server-side failure's detail (a store's host or path, an
    /// internal reason) goes to the log, inside the request's span with its id; the client
    /// gets a generic detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        if code.http_status() < 500 {
            return ApiError { code, detail };
        }
        warn!(code = code.code(), error = %detail, "server-side failure");
        let generic = match code {
            ErrorCode::StoreUnavailable => {
                "the spend store cannot record now; retry shortly (the server log has the detail under this response's Request-Id)"
            }
            _ => "internal error (the server log has the detail under this response's Request-Id)",
        };
        ApiError {
            code,
            detail: generic.into(),
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

/// What a request may do, from its API key, and how its response keys are spelled.
#[derive(Debug, Default)]
pub struct Ctx<'a> {
    /// The API key that authenticated the request, when the route requires one.
    pub key: Option<&'a ApiKey>,
    pub inflection: Inflection,
}

impl Ctx<'_> {
    fn allow_method(&self, method: ApiMethod) -> Result<(), ApiError> {
        self.key.map_or(Ok(()), |k| k.allow_method(method))
    }

    fn allow_token_key(&self, key_id: &TokenKeyId) -> Result<(), ApiError> {
        self.key.map_or(Ok(()), |k| k.allow_token_key(key_id))
    }
}

/// The API routes, which share authentication, rate limits and idempotency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /rpc`: JSON-RPC `issue` and `redeem`.
    Rpc,
    /// `POST /api/redeem`: JSON-RPC `redeem` only.
    Redeem,
    /// `POST /api/v1/privacy-passes`: REST issuance.
    Rest,
    /// `POST /token-request`: RFC 9578 native issuance.
    Native,
}

impl Route {
    fn issuance(self) -> bool {
        self != Route::Redeem
    }

    fn tag(self) -> &'static [u8] {
        match self {
            Route::Rpc => b"rpc",
            Route::Redeem => b"redeem",
            Route::Rest => b"rest",
            Route::Native => b"native",
        }
    }

    /// An error in the form of this route: JSON-RPC, REST errors body, or text.
    fn error(self, e: &ApiError) -> Resp {
        match self {
            Route::Rpc | Route::Redeem => rpc_error_response(e, Value::Null),
            Route::Rest => rest_error_response(e),
            Route::Native => text_response(e.status(), &e.detail),
        }
    }
}

/// How long an Idempotency-Key stays claimed by a request that neither completes nor fails
/// (its daemon died): longer than any request may run.
const IDEMPOTENCY_LEASE_SECS: u64 = 120;

/// `Retry-After` of a 503: the spend store could not record, so the client may try again.
const RETRY_UNAVAILABLE_SECS: &str = "1";

fn store_unavailable(e: privacypass::StoreError) -> ApiError {
    ApiError::new(ErrorCode::StoreUnavailable, e.to_string())
}

/// An API route: the checks every call passes (method, headers, API key, rate limit, body
/// limits, Idempotency-Key), then the route itself, then the headers every response carries.
/// Any body will do: hyper's `Incoming` when served, one held in memory in-process (the fuzz
/// targets drive the routes without a socket).
pub async fn serve_api<B>(app: &Arc<App>, req: Request<B>, route: Route) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut rate = None;
    let mut resp = match guarded(app, req, route, &mut rate).await {
        Ok(resp) => resp,
        Err(e) => route.error(&e),
    };
    let status = resp.status();
    let unauthorized = status == StatusCode::UNAUTHORIZED;
    let headers = resp.headers_mut();
    if let Some(state) = rate {
        headers.insert("ratelimit-limit", state.limit.into());
        headers.insert("ratelimit-remaining", state.remaining().into());
        headers.insert("ratelimit-reset", state.reset_secs.into());
        if state.exceeded() {
            headers.insert(RETRY_AFTER, state.reset_secs.into());
        }
    }
    if unauthorized {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"privacypass\""),
        );
    }
    // A store that cannot record: nothing was done, the same call may be repeated shortly.
    if status == StatusCode::SERVICE_UNAVAILABLE && !headers.contains_key(RETRY_AFTER) {
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static(RETRY_UNAVAILABLE_SECS),
        );
    }
    for (name, value) in [
        ("persona-environment-id", &app.settings.environment_id),
        ("persona-organization-id", &app.settings.organization_id),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    resp
}

/// Counts `hits` calls against the API key's window; refuses them over the limit.
async fn count_calls(
    app: &Arc<App>,
    key: &ApiKey,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let Some(limit) = app.settings.rate_limit else {
        return Ok(());
    };
    count_in(app, limit, format!("rate:{}:{limit}", key.id()), hits, rate).await
}

/// Counts `hits` issuance calls made without an API key against the one window all such
/// clients share.
async fn count_anonymous_issuance(
    app: &Arc<App>,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let Some(limit) = app.settings.anonymous_issue_limit.filter(|_| hits > 0) else {
        return Ok(());
    };
    count_in(
        app,
        limit,
        format!("rate:anonymous-issue:{limit}"),
        hits,
        rate,
    )
    .await
}

async fn count_in(
    app: &Arc<App>,
    limit: policy::RateLimit,
    bucket: String,
    hits: u64,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    let (start, reset_secs) = limit.window(privacypass::unix_now());
    let used = app
        .state_call(move |app| app.rate_limits.add(&bucket, start, limit.window_secs, hits))
        .await
        .map_err(store_unavailable)?;
    let state = RateState {
        limit: limit.calls,
        used,
        reset_secs,
    };
    *rate = Some(state);
    if state.exceeded() {
        return Err(state.error());
    }
    Ok(())
}

/// A request body as its route takes it.
enum Body {
    JsonRpc { value: Value, redeem_only: bool },
    Rest(Bytes),
    Native(Bytes),
}

fn is_issue(call: &Value) -> bool {
    call.get("method").and_then(Value::as_str) == Some("issue")
}

impl Body {
    /// Whether every call the body holds is an issuance (what Idempotency-Key applies to).
    fn issuance_only(&self) -> bool {
        match self {
            Body::JsonRpc {
                value: Value::Array(calls),
                ..
            } => calls.iter().all(is_issue),
            Body::JsonRpc { value, .. } => is_issue(value),
            Body::Rest(_) | Body::Native(_) => true,
        }
    }

    /// How many issuance calls the body holds.
    fn issuance_calls(&self) -> u64 {
        match self {
            Body::JsonRpc {
                redeem_only: true, ..
            } => 0,
            Body::JsonRpc {
                value: Value::Array(calls),
                ..
            } => calls.iter().filter(|c| is_issue(c)).count() as u64,
            Body::JsonRpc { value, .. } => u64::from(is_issue(value)),
            Body::Rest(_) | Body::Native(_) => 1,
        }
    }
}

/// Headers a reverse proxy adds: a request carrying one did not come from this host alone.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

async fn guarded<B>(
    app: &Arc<App>,
    req: Request<B>,
    route: Route,
    rate: &mut Option<RateState>,
) -> Result<Resp, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if req.method() != Method::POST {
        return Ok(method_not_allowed(
            "POST",
            route.error(&not_post(req.method())),
        ));
    }
    if route == Route::Native {
        if let Some(resp) = refuse_token_request_type(&req) {
            return Ok(resp);
        }
    }
    let header = |name: &str| req.headers().get(name).map(HeaderValue::as_bytes);
    policy::check_persona_version(header("persona-version"))?;
    let inflection = Inflection::parse(header("key-inflection"))?;
    let idempotency_key = header("idempotency-key")
        .filter(|_| route.issuance())
        .map(|v| policy::idempotency_key(v).map(str::to_owned))
        .transpose()?;
    // Credentials are checked before a byte of the body is read.
    let api_keys = app.api_keys();
    let key = if !api_keys.is_empty() && (route.issuance() || app.settings.redeem_auth) {
        Some(api_keys.authenticate(header(AUTHORIZATION.as_str()))?)
    } else {
        None
    };
    if let Some(key) = key {
        count_calls(app, key, 1, rate).await?;
    }
    // A loopback bind protects nothing behind a local reverse proxy: without API keys,
    // issuance is for clients of this host only, unless the operator opted out.
    let proxied = PROXY_HEADERS.iter().any(|h| req.headers().contains_key(*h));
    let anonymous = key.is_none() && api_keys.is_empty();
    let raw = read_body(app, req).await?;
    let body = match route {
        Route::Rpc | Route::Redeem => {
            let (value, calls) = parse_jsonrpc(app, &raw)?;
            if let (Some(key), true) = (key, calls > 1) {
                // Each call of a batch counts.
                count_calls(app, key, calls - 1, rate).await?;
            }
            Body::JsonRpc {
                value,
                redeem_only: route == Route::Redeem,
            }
        }
        Route::Rest => Body::Rest(raw.clone()),
        Route::Native => Body::Native(raw.clone()),
    };
    let issuance_calls = body.issuance_calls();
    if anonymous && issuance_calls > 0 {
        if proxied && !app.settings.allow_unauthenticated {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "issuance without API keys is served to clients on this host only, and this request came through a proxy (Forwarded or X-Forwarded-For): configure --api-keys, or give --allow-unauthenticated",
            ));
        }
        count_anonymous_issuance(app, issuance_calls, rate).await?;
    }
    let ctx = Ctx { key, inflection };
    // Idempotency is for issuance: a body holding any other call (a redeem above all, whose
    // replay would be a second success for one token) is run for real, header or not.
    let idempotency_key = idempotency_key.filter(|_| body.issuance_only());
    let Some(idempotency_key) = idempotency_key else {
        return dispatch(app, &ctx, body).await.map(|(resp, _)| resp);
    };
    // Records are per API key: two clients cannot see each other's responses.
    let mut scope = Sha256::new();
    scope.update(key.map(ApiKey::id).unwrap_or_default());
    scope.update([0]);
    scope.update(idempotency_key.as_bytes());
    let scope = format!("idem:{}", hex::encode(scope.finalize()));
    let mut fingerprint = Sha256::new();
    fingerprint.update(route.tag());
    fingerprint.update([0]);
    fingerprint.update(inflection.tag());
    fingerprint.update([0]);
    fingerprint.update(&raw);
    let fingerprint: [u8; 32] = fingerprint.finalize().into();
    let claim_scope = scope.clone();
    let claim = app
        .state_call(move |app| {
            app.idempotency
                .claim(&claim_scope, &fingerprint, IDEMPOTENCY_LEASE_SECS)
        })
        .await
        .map_err(store_unavailable)?;
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
            let (resp, batch_item_failed) = match dispatch(app, &ctx, body).await {
                Ok(done) => done,
                Err(e) => (route.error(&e), false),
            };
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let ttl = app.settings.idempotency_ttl;
            let outcome = if batch_item_failed || parts.status.is_server_error() {
                // A server-side failure (store, internal) is not replayed: a retry may not meet
                // it, so the key is free again.
                app.state_call(move |app| app.idempotency.release(&scope))
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
                app.state_call(move |app| {
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

/// Runs a route on its body; the flag is `jsonrpc`'s.
async fn dispatch(app: &App, ctx: &Ctx<'_>, body: Body) -> Result<(Resp, bool), ApiError> {
    match body {
        Body::JsonRpc { value, redeem_only } => Ok(jsonrpc(app, ctx, value, redeem_only).await),
        Body::Rest(raw) => Ok((rest_issue(app, ctx, &raw).await?, false)),
        Body::Native(raw) => Ok((token_request(app, ctx, raw).await?, false)),
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
async fn read_body<B>(app: &App, req: Request<B>) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
pub async fn issue(
    app: &App,
    ctx: &Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, ApiError> {
    measured(app, Op::Issue, issue_inner(app, ctx, params)).await
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

async fn issue_inner(
    app: &App,
    ctx: &Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, ApiError> {
    ctx.allow_method(ApiMethod::Issue)?;
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
    ctx.allow_token_key(&key_id)?;
    let issuer = Issuer::new(app.keys());
    let signed =
        sign_blocking(move || issuer.issue(&key_id, &blinded, privacypass::unix_now())).await?;
    Ok(json!({"blind-sig": b64::encode_url(&signed)}))
}

/// JSON-RPC `redeem`: verify, then record the spend durably.
pub async fn redeem(
    app: &App,
    ctx: &Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, ApiError> {
    measured(app, Op::Redeem, redeem_inner(app, ctx, params)).await
}

fn decode_token_text(text: &str) -> Result<Vec<u8>, ApiError> {
    b64::decode_any(text)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParams, "token is not valid base64"))
}

async fn redeem_inner(
    app: &App,
    ctx: &Ctx<'_>,
    params: &Map<String, Value>,
) -> Result<Value, ApiError> {
    ctx.allow_method(ApiMethod::Redeem)?;
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
    if ctx.key.is_some() {
        // A token names its key at a fixed place; a token too short to hold one fails below.
        if let Some(key_id) = token.get(66..98).and_then(|k| <[u8; 32]>::try_from(k).ok()) {
            ctx.allow_token_key(&key_id)?;
        }
    }
    let redeemer = Redeemer::new(Verifier::new(app.keys()), app.timed_store.clone());
    // A replay of the very bytes of a token verified here before skips the RSA operation.
    let digest: [u8; 32] = Sha256::digest(&token).into();
    let seen = app.seen_tokens.contains(&digest);
    let now = privacypass::unix_now();
    let bindings: Vec<&[u8]> = challenges.iter().map(Vec::as_slice).collect();
    // Verification is a public-key operation (or none, for bytes seen before): it runs here.
    let verified = if seen {
        redeemer.verify_seen_before(&token, &bindings, now)
    } else {
        redeemer.verify(&token, &bindings, now)
    };
    let outcome = match verified {
        Err(e) => Err(e),
        Ok(verified) if redeemer.store().spend_with_blocks() => {
            // A store across the network (Redis): its spend (SET NX) tells an already-spent
            // token itself, so one round trip and no separate check, on the blocking pool.
            tokio::task::spawn_blocking(move || redeemer.record(&verified))
                .await
                .map_err(|_| ApiError::new(ErrorCode::Internal, "redemption task failed"))?
        }
        // A local store: the spent check is a local read, so an already-spent token is
        // answered without leaving this thread. The spend waits for an fsync: the store's
        // committer answers once it is durable.
        Ok(verified) => match redeemer.unspent(verified) {
            Err(e) => Err(e),
            Ok(verified) => {
                let (answer, answered) = tokio::sync::oneshot::channel();
                redeemer.record_with(
                    &verified,
                    Box::new(move |outcome| {
                        let _ = answer.send(outcome);
                    }),
                );
                answered
                    .await
                    .map_err(|_| ApiError::new(ErrorCode::Internal, "the store dropped a spend"))?
            }
        },
    };
    match outcome {
        Ok(()) => {
            app.seen_tokens.insert(digest);
            Ok(Value::String("success".into()))
        }
        Err(e) => {
            // Spent means the token verified: its replays may skip the RSA operation.
            if e == privacypass::RedeemError::AlreadySpent && !seen {
                app.seen_tokens.insert(digest);
            }
            Err(ApiError::new(e.code(), e.to_string()))
        }
    }
}

/// The longest JSON-RPC `id` (as JSON text) a call may carry.
pub const MAX_ID_BYTES: usize = 256;

/// One JSON-RPC call. `None` for a notification.
async fn call(
    app: &App,
    ctx: &Ctx<'_>,
    item: Value,
    redeem_only: bool,
) -> Option<(Value, Option<ErrorCode>)> {
    let envelope = |id: Value, outcome: Result<Value, ApiError>| match outcome {
        Ok(result) => (
            json!({"jsonrpc": "2.0", "id": id, "result": ctx.inflection.apply(result)}),
            None,
        ),
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
    // The id is echoed back: a large one would make every answer large.
    if id_value.to_string().len() > MAX_ID_BYTES {
        return invalid(Value::Null, &format!("id longer than {MAX_ID_BYTES} bytes"));
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
            "issue" => issue(app, ctx, &params).await,
            "redeem" => redeem(app, ctx, &params).await,
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

/// `POST /rpc` and `POST /api/redeem`, once the body is parsed. The flag says whether a call
/// of a batch (answered 200 as a whole) failed on the server's side (store, internal): a
/// single call's failure shows in the HTTP status.
async fn jsonrpc(app: &App, ctx: &Ctx<'_>, value: Value, redeem_only: bool) -> (Resp, bool) {
    match value {
        Value::Array(items) => {
            let mut answers = Vec::with_capacity(items.len());
            let mut item_failed = false;
            for item in items {
                if let Some((answer, code)) = call(app, ctx, item, redeem_only).await {
                    item_failed |= code.is_some_and(|c| c.http_status() >= 500);
                    answers.push(answer);
                }
            }
            if answers.is_empty() {
                return (
                    respond(StatusCode::NO_CONTENT, "application/json", Bytes::new()),
                    item_failed,
                );
            }
            (
                json_response(StatusCode::OK, &Value::Array(answers)),
                item_failed,
            )
        }
        single => match call(app, ctx, single, redeem_only).await {
            None => (
                respond(StatusCode::NO_CONTENT, "application/json", Bytes::new()),
                false,
            ),
            Some((answer, code)) => {
                let status = code
                    .and_then(|c| StatusCode::from_u16(c.http_status()).ok())
                    .unwrap_or(StatusCode::OK);
                (json_response(status, &answer), false)
            }
        },
    }
}

/// Parses a JSON-RPC body and bounds its batch; the number of calls it holds.
fn parse_jsonrpc(app: &App, body: &[u8]) -> Result<(Value, u64), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::ParseError, e.to_string()))?;
    let calls = match &value {
        Value::Array(items) if items.is_empty() => {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "empty batch"))
        }
        Value::Array(items) if items.len() > app.settings.max_batch => {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "batch of {} calls; at most {} are allowed",
                    items.len(),
                    app.settings.max_batch
                ),
            ))
        }
        Value::Array(items) => items.len() as u64,
        _ => 1,
    };
    Ok((value, calls))
}

/// `POST /api/v1/privacy-passes`: REST issuance, the bodies of `issue`.
async fn rest_issue(app: &App, ctx: &Ctx<'_>, body: &[u8]) -> Result<Resp, ApiError> {
    let params = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(params)) => params,
        Ok(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "the body must be a JSON object",
            ))
        }
        Err(e) => return Err(ApiError::new(ErrorCode::ParseError, e.to_string())),
    };
    let result = issue(app, ctx, &params).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &ctx.inflection.apply(result),
    ))
}

fn text_response(status: StatusCode, message: &str) -> Resp {
    respond(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// The content type `POST /token-request` requires, checked before the body is read: the
/// refusal when it is another.
fn refuse_token_request_type<B>(req: &Request<B>) -> Option<Resp> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(TOKEN_REQUEST_TYPE))
    {
        None
    } else {
        Some(text_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Type must be {TOKEN_REQUEST_TYPE}"),
        ))
    }
}

/// `POST /token-request`: RFC 9578 §6 native issuance.
async fn token_request(app: &App, ctx: &Ctx<'_>, body: Bytes) -> Result<Resp, ApiError> {
    ctx.allow_method(ApiMethod::Issue)?;
    let keys = app.keys();
    let now = privacypass::unix_now();
    if ctx.key.is_some() {
        // The truncated id names the key; a request too short to hold one fails below.
        if let Some(key) = body
            .get(2)
            .and_then(|&truncated| keys.issuance_key_by_truncated(truncated, now))
        {
            ctx.allow_token_key(key.public_key().token_key_id())?;
        }
    }
    let issuer = Issuer::new(keys);
    let signing = sign_blocking(move || issuer.issue_request(&body, now));
    let response = measured(app, Op::Issue, signing).await?;
    Ok(respond(
        StatusCode::OK,
        TOKEN_RESPONSE_TYPE,
        response.encode(),
    ))
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

/// `GET /healthz`, readiness: 200 when a key issues and a spend could be recorded now (the
/// store's write probe, at most one a second: a shared Redis is not asked on every hit).
pub async fn healthz(app: &Arc<App>) -> Resp {
    let keys = app.keys();
    let now = privacypass::unix_now();
    let issuing = keys.issuing(now).count();
    let store_ok = app.store_writable().await;
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

/// `GET /livez`, liveness: 200 while the process serves requests, whatever its store does.
pub fn livez() -> Resp {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /metrics`, with whether the store can record a spend now (the health probe's outcome).
pub async fn metrics(app: &Arc<App>) -> Resp {
    let writable = app.store_writable().await;
    let mut text = app.metrics.render(&app.keys(), privacypass::unix_now());
    text.push_str(
        "# HELP privacypass_store_writable 1 when a spend can be recorded now, else 0.
",
    );
    text.push_str(
        "# TYPE privacypass_store_writable gauge
",
    );
    text.push_str(&format!(
        "privacypass_store_writable {}
",
        u8::from(writable)
    ));
    respond(StatusCode::OK, "text/plain; version=0.0.4", text)
}

pub fn not_found(path: &str) -> Resp {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errors": [{"code": 404, "title": "not found", "detail": format!("no route {path}")}]}),
    )
}
