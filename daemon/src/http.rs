//! HTTP building blocks every route shares: the response type and its constructors, and the
//! body read that refuses a body over `--max-body-bytes` while reading it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use privacypass_core::ErrorCode;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;

pub type Resp = Response<Full<Bytes>>;

/// A handler's answer: the response, and whether a call of a batch failed on the server's side
/// (store, internal), which the batch's 200 does not show. An Idempotency-Key does not keep
/// such an answer: a retry may not meet the failure.
#[derive(Debug)]
pub struct Handled {
    pub resp: Resp,
    pub batch_call_failed: bool,
}

impl Handled {
    /// The answer of a handler without batches.
    pub fn whole(resp: Resp) -> Handled {
        Handled {
            resp,
            batch_call_failed: false,
        }
    }
}

/// The body types of RFC 9578 issuance.
pub const TOKEN_REQUEST_TYPE: &str = "application/private-token-request";
pub const TOKEN_RESPONSE_TYPE: &str = "application/private-token-response";

pub fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn json_response(status: StatusCode, body: &Value) -> Resp {
    respond(status, "application/json", body.to_string())
}

pub fn text_response(status: StatusCode, message: &str) -> Resp {
    respond(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

pub fn rest_error_response(err: &ApiError) -> Resp {
    json_response(err.status(), &err.to_rest())
}

/// A 405 with the methods the route allows.
pub fn method_not_allowed(allow: &'static str, body: Resp) -> Resp {
    let mut resp = body;
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Reads the body, refusing it as soon as it is known to exceed the limit.
pub async fn read_body<B>(app: &App, req: Request<B>) -> Result<Bytes, ApiError>
where
    B: Body,
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
