//! The checks every call of an API route passes, in order, before its handler runs. The
//! admission (`admit`, run by the `Admission` layer before a byte of the body is read): the
//! HTTP method, the Content-Type, the headers (`Persona-Version`, `Key-Inflection`,
//! `Idempotency-Key`), the API key and its rate limit. Then (`serve`): the body limit, the
//! batch bound and each further call of a batch counted, anonymous issuance (its window, and
//! no issuance through a proxy), then the handler, once per Idempotency-Key.
//!
//! The guard knows no route: the route table gives it the route's form and its handler.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Body;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use privacypass_core::ErrorCode;
use privacypass_rpc::KeyCase;

use crate::app::App;
use crate::auth::{ApiKey, Caller};
use crate::error::ApiError;
use crate::headers;
use crate::http::{
    json_response, method_not_allowed, read_body, rest_error_response, text_response, Handled,
    Resp, TOKEN_REQUEST_TYPE,
};
use crate::idempotency::{self, Record};
use crate::jsonrpc::Calls;
use crate::ratelimit::{count_anonymous_issuance, count_calls, RateState};
use crate::routes::native::{NativeKind, NativeRequest};
use privacypass_core::batch::{AMORTIZED_REQUEST_MEDIA_TYPE, GENERIC_REQUEST_MEDIA_TYPE};

/// How an API route takes its body and answers its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// JSON-RPC; `redeem_only` for the redemption route (no issuance, no Idempotency-Key).
    JsonRpc { redeem_only: bool },
    /// A JSON body and a REST errors body.
    Rest,
    /// RFC 9578 bytes, errors as text.
    Native,
}

impl Form {
    /// Whether the route issues (API keys always apply, Idempotency-Key is honoured).
    pub fn issuance(self) -> bool {
        self != Form::JsonRpc { redeem_only: true }
    }

    /// What idempotency records of this route are told apart by.
    fn tag(self) -> &'static [u8] {
        match self {
            Form::JsonRpc { redeem_only: false } => b"rpc",
            Form::JsonRpc { redeem_only: true } => b"redeem",
            Form::Rest => b"rest",
            Form::Native => b"native",
        }
    }

    /// What a native body is by its Content-Type, checked before the body is read: RFC 9578
    /// issuance takes `application/private-token-request` and the two batch kinds; another
    /// Content-Type is refused (415). `None` on the other routes.
    fn native_kind(self, headers: &HeaderMap) -> Result<Option<NativeKind>, Box<Resp>> {
        if self != Form::Native {
            return Ok(None);
        }
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match NativeKind::of_content_type(content_type) {
            Some(kind) => Ok(Some(kind)),
            None => Err(Box::new(text_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Type must be {TOKEN_REQUEST_TYPE}, {AMORTIZED_REQUEST_MEDIA_TYPE} or {GENERIC_REQUEST_MEDIA_TYPE}"
                ),
            ))),
        }
    }

    /// An error in the form of this route: JSON-RPC, REST errors body, or text.
    pub fn error(self, e: &ApiError) -> Resp {
        match self {
            Form::JsonRpc { .. } => json_response(
                e.status(),
                &serde_json::json!({"jsonrpc": "2.0", "id": null, "error": e.to_jsonrpc()}),
            ),
            Form::Rest => rest_error_response(e),
            Form::Native => text_response(e.status(), &e.detail),
        }
    }
}

/// A request body as the handler takes it.
#[derive(Debug)]
pub enum Parsed {
    Calls(Calls),
    /// A REST body, and the tokens it asks for.
    Rest {
        raw: Bytes,
        tokens: u64,
    },
    Native(NativeRequest),
}

impl Parsed {
    /// How many calls count against a rate limit.
    fn calls(&self) -> u64 {
        match self {
            Parsed::Calls(calls) => calls.counted(),
            Parsed::Rest { tokens, .. } => *tokens,
            // Each token of a batch counts as a call.
            Parsed::Native(request) => request.tokens(),
        }
    }

    /// How many issuance calls the body holds, on a route of `form`.
    fn issuance_calls(&self, form: Form) -> u64 {
        match self {
            _ if !form.issuance() => 0,
            Parsed::Calls(calls) => calls.issue_calls(),
            Parsed::Rest { tokens, .. } => *tokens,
            Parsed::Native(request) => request.tokens(),
        }
    }

    /// Whether every call the body holds is an issuance (what Idempotency-Key applies to).
    fn issuance_only(&self) -> bool {
        match self {
            Parsed::Calls(calls) => calls.issue_only(),
            Parsed::Rest { .. } | Parsed::Native(_) => true,
        }
    }
}

/// Headers a reverse proxy adds: a request carrying one did not come from this host alone.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// What the admission of an API request established (the `Admission` layer puts it in the
/// request's extensions): who calls, how its answer is spelled, and the request's facts the
/// checks of its body need.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The API key that authenticated the request, when the route requires one (counted as
    /// one call of its rate limit).
    pub key: Option<Arc<ApiKey>>,
    pub case: KeyCase,
    /// A valid `Idempotency-Key` of an issuance route.
    pub idempotency_key: Option<String>,
    /// Whether the request came through a reverse proxy.
    pub proxied: bool,
    /// What the body of `/token-request` is, by its Content-Type.
    pub native: Option<NativeKind>,
}

/// The admission of an API request, before a byte of its body is read: the HTTP method
/// (`allow` lists the route's: any other answers 405 / -32041), the Content-Type of RFC 9578
/// issuance, the request headers (`Persona-Version`, `Key-Inflection`, `Idempotency-Key`), and
/// the API key with its first count. A WebSocket upgrade (`upgrade`) is a GET of a JSON-RPC
/// route, with no body and no Idempotency-Key. A refusal is the answer in the route's form.
pub async fn admit(
    app: &Arc<App>,
    method: &Method,
    headers: &HeaderMap,
    form: Form,
    allow: &'static str,
    upgrade: bool,
    rate: &mut Option<RateState>,
) -> Result<Admitted, Resp> {
    if !upgrade && !allow.split(", ").any(|m| m == method.as_str()) {
        let refused = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed here; use {allow}"),
        );
        return Err(method_not_allowed(allow, form.error(&refused)));
    }
    let native = if upgrade {
        None
    } else {
        form.native_kind(headers).map_err(|refused| *refused)?
    };
    let checked = async {
        let case = check_headers(headers)?;
        let idempotency_key = headers
            .get("idempotency-key")
            .filter(|_| form.issuance() && !upgrade)
            .map(|v| headers::idempotency_key(v.as_bytes()).map(str::to_owned))
            .transpose()?;
        let key = authenticate(app, headers, form, rate).await?;
        Ok(Admitted {
            key,
            case,
            idempotency_key,
            proxied: proxied(headers),
            native,
        })
    };
    checked.await.map_err(|e: ApiError| form.error(&e))
}

/// An admitted API request: its body read and checked, then `handler` with the caller and
/// the body. The handler answers a `Handled`. Where the caller stands in its rate limit after the body's calls goes in
/// the answer's extensions, for the `Admission` layer to write.
pub async fn serve<B, H, F>(app: &Arc<App>, mut req: Request<B>, form: Form, handler: H) -> Resp
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    H: FnOnce(Caller, Parsed) -> F,
    F: Future<Output = Result<Handled, ApiError>>,
{
    // A request that reached a handler without its admission is refused: nothing was checked.
    let Some(admitted) = req.extensions_mut().remove::<Admitted>() else {
        return form.error(&ApiError::new(
            ErrorCode::Internal,
            "an API request that was not admitted",
        ));
    };
    let mut rate = None;
    let mut resp = match checked(app, req, form, admitted, &mut rate, handler).await {
        Ok(resp) => resp,
        Err(e) => form.error(&e),
    };
    if let Some(state) = rate {
        resp.extensions_mut().insert(state);
    }
    resp
}

/// The headers of an API request every route checks: `Persona-Version`, and `Key-Inflection`
/// (the casing of the answer's keys).
pub fn check_headers(headers: &HeaderMap) -> Result<KeyCase, ApiError> {
    let header = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
    headers::check_persona_version(header("persona-version"))?;
    headers::key_inflection(header("key-inflection"))
}

/// The API key of a request, when the route requires one (issuance whenever API keys are
/// configured, redemption with `--redeem-auth`), counted as one call; checked before a byte
/// of the body is read.
pub async fn authenticate(
    app: &Arc<App>,
    headers: &HeaderMap,
    form: Form,
    rate: &mut Option<RateState>,
) -> Result<Option<Arc<ApiKey>>, ApiError> {
    let api_keys = app.api_keys();
    if api_keys.is_empty() || !(form.issuance() || app.settings.redeem_auth) {
        return Ok(None);
    }
    let key = api_keys
        .authenticate(headers.get(AUTHORIZATION).map(HeaderValue::as_bytes))?
        .clone();
    count_calls(app, &key, 1, rate).await?;
    Ok(Some(key))
}

/// Whether a request came through a reverse proxy (it carries a header one adds).
pub fn proxied(headers: &HeaderMap) -> bool {
    PROXY_HEADERS.iter().any(|h| headers.contains_key(*h))
}

/// Counts a body's calls against the caller's limits, `counted` of them counted already (at
/// authentication), and holds issuance without API keys to its rules: clients of this host
/// only (no proxy) unless the operator opted out, and the one window all such clients share.
pub async fn count_body(
    app: &Arc<App>,
    form: Form,
    key: Option<&ApiKey>,
    counted: u64,
    body: &Parsed,
    proxied: bool,
    rate: &mut Option<RateState>,
) -> Result<(), ApiError> {
    if let (Some(key), true) = (key, body.calls() > counted) {
        // Each call of a batch counts.
        count_calls(app, key, body.calls() - counted, rate).await?;
    }
    let issuance_calls = body.issuance_calls(form);
    // A loopback bind protects nothing behind a local reverse proxy: without API keys,
    // issuance is for clients of this host only, unless the operator opted out.
    if key.is_none() && app.api_keys().is_empty() && issuance_calls > 0 {
        if proxied && !app.settings.allow_unauthenticated {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "issuance without API keys is served to clients on this host only, and this request came through a proxy (Forwarded or X-Forwarded-For): configure --api-keys, or give --allow-unauthenticated",
            ));
        }
        count_anonymous_issuance(app, issuance_calls, rate).await?;
    }
    Ok(())
}

async fn checked<B, H, F>(
    app: &Arc<App>,
    req: Request<B>,
    form: Form,
    admitted: Admitted,
    rate: &mut Option<RateState>,
    handler: H,
) -> Result<Resp, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    H: FnOnce(Caller, Parsed) -> F,
    F: Future<Output = Result<Handled, ApiError>>,
{
    let Admitted {
        key,
        case,
        idempotency_key,
        proxied,
        native,
    } = admitted;
    let raw = read_body(app, req).await?;
    let body = match (form, native) {
        (Form::JsonRpc { .. }, _) => Parsed::Calls(Calls::parse(
            &raw,
            app.settings.max_batch,
            app.settings.max_batch_tokens,
        )?),
        (Form::Native, Some(kind)) => Parsed::Native(NativeRequest::parse(
            kind,
            raw.clone(),
            app.settings.max_batch_tokens,
        )?),
        (Form::Rest | Form::Native, _) => {
            let tokens = std::str::from_utf8(&raw).map_or(1, privacypass_rpc::issue_tokens);
            let max = app.settings.max_batch_tokens;
            if tokens > max {
                return Err(ApiError::new(
                    ErrorCode::TooLarge,
                    format!("the batch holds more than {max} tokens (--max-batch-tokens)"),
                ));
            }
            Parsed::Rest {
                raw: raw.clone(),
                tokens: tokens as u64,
            }
        }
    };
    count_body(app, form, key.as_deref(), 1, &body, proxied, rate).await?;
    // Idempotency is for issuance: a body holding any other call (a redeem above all, whose
    // replay would be a second success for one token) is run for real, header or not.
    let idempotency_key = idempotency_key.filter(|_| body.issuance_only());
    let key_id = key.as_ref().map(|k| k.id()).unwrap_or_default();
    let caller = Caller { key, case };
    let Some(idempotency_key) = idempotency_key else {
        return handler(caller, body).await.map(|handled| handled.resp);
    };
    let record = Record::new(
        &key_id,
        &idempotency_key,
        &[form.tag(), case.name().as_bytes(), &raw],
    );
    idempotency::run_once(app, record, handler(caller, body), |e| form.error(e)).await
}
