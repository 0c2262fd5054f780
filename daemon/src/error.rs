//! The API error: a row of the one table (`privacypass_core::ErrorCode`) with a detail for the
//! caller, and its one conversion into each form an answer takes (a JSON-RPC error object, a
//! REST errors body, an HTTP status).

use hyper::StatusCode;
use privacypass_core::ErrorCode;
use privacypass_rpc::jsonrpsee::types::ErrorObjectOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tracing::warn;

/// An error with its row of the table and a detail for the caller.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
}

/// The `data` of a JSON-RPC error: `{"detail": "..."}`.
#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
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
        ApiError {
            code,
            detail: generic_detail(code).into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn to_jsonrpc(&self) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(
            self.code.code(),
            self.code.meaning(),
            Some(Detail {
                detail: &self.detail,
            }),
        )
    }

    pub fn to_rest(&self) -> Value {
        json!({"errors": [{"code": self.code.code(), "title": self.code.meaning(), "detail": self.detail}]})
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> Self {
        e.to_jsonrpc()
    }
}

/// What a client is told of a server-side failure: that it may retry, and where the detail is.
pub fn generic_detail(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::StoreUnavailable => {
            "the spend store cannot record now; retry shortly (the server log has the detail under this response's Request-Id)"
        }
        _ => "internal error (the server log has the detail under this response's Request-Id)",
    }
}

/// The HTTP status of a single request failing with `code`.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The HTTP status of a JSON-RPC error code: its row's, or 500 for a code outside the table.
pub fn status_of_jsonrpc(code: i32) -> StatusCode {
    ErrorCode::from_code(code).map_or(StatusCode::INTERNAL_SERVER_ERROR, status_of)
}

impl From<privacypass_core::StoreError> for ApiError {
    fn from(e: privacypass_core::StoreError) -> Self {
        ApiError::new(ErrorCode::StoreUnavailable, e.to_string())
    }
}

impl From<privacypass_core::IssueError> for ApiError {
    fn from(e: privacypass_core::IssueError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<privacypass_core::VoprfIssueError> for ApiError {
    fn from(e: privacypass_core::VoprfIssueError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<privacypass_core::RedeemError> for ApiError {
    fn from(e: privacypass_core::RedeemError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}
