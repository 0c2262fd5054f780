//! `pp_result`, the result code of every call: one code per row of SPEC §4's table (whose value
//! *is* the row's JSON-RPC code), and a few codes of the library itself (small positive values).

use std::ffi::{c_char, c_int, CStr};

use privacypass::{DecodeError, ErrorCode, VerifyError};

use crate::boundary::ffi_panic_boundary;

/// The result of a libprivacypass call. `PP_OK` is zero; everything else is an error.
///
/// The protocol errors are the rows of the project's one error table (SPEC §4,
/// `privacypass::ErrorCode`), one to one, and each one's value is the row's JSON-RPC error code:
/// a service can answer `(int)result` as the JSON-RPC `error.code`, and
/// `pp_result_http_status(result)` as the HTTP status. Most rows concern the daemon's HTTP
/// surface and are never returned by this library; they are here so that the mapping is
/// total.
///
/// The library's own codes (positive values) report misuse of the C API and configuration
/// problems; for a peer they are internal errors (-32603, HTTP 500).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pp_result {
    /// Success.
    PP_OK = 0,

    /// -32020, HTTP 403: token verification failed (bad authenticator, challenge binding
    /// mismatch, unknown or expired key).
    PP_ERR_VERIFICATION_FAILED = -32020,
    /// -32021, HTTP 403: token already spent.
    PP_ERR_ALREADY_SPENT = -32021,
    /// -32022, HTTP 400: redeem: a token type or parameters not served here (a token or
    /// challenge of another type than 2). Bytes of type 2 that are not a token are
    /// `PP_ERR_INVALID_PARAMS`.
    PP_ERR_UNSUPPORTED_TOKEN = -32022,
    /// -32023, HTTP 404: issue: key-id unknown or not active for issuance.
    PP_ERR_UNKNOWN_ISSUANCE_KEY = -32023,
    /// -32024, HTTP 422: issue: blinded token unprocessable (bad base64, wrong length, wrong
    /// token type, value not below the modulus, truncated id mismatch).
    PP_ERR_UNPROCESSABLE_BLINDED_TOKEN = -32024,
    /// -32030, HTTP 401: missing or invalid credentials (daemon only).
    PP_ERR_UNAUTHENTICATED = -32030,
    /// -32031, HTTP 403: credentials not allowed for this method or key (daemon only).
    PP_ERR_FORBIDDEN = -32031,
    /// -32032, HTTP 409: Idempotency-Key in use by a request in flight (daemon only).
    PP_ERR_IDEMPOTENCY_IN_FLIGHT = -32032,
    /// -32033, HTTP 422: Idempotency-Key reused with a different request (daemon only).
    PP_ERR_IDEMPOTENCY_MISMATCH = -32033,
    /// -32034, HTTP 429: rate limit exceeded (daemon only).
    PP_ERR_RATE_LIMITED = -32034,
    /// -32040, HTTP 400: `issue` requested at a redemption-only route (daemon only).
    PP_ERR_ISSUE_AT_REDEMPTION_ROUTE = -32040,
    /// -32041, HTTP 405: HTTP method other than POST (daemon only).
    PP_ERR_METHOD_NOT_ALLOWED = -32041,
    /// -32042, HTTP 413: request body or batch too large (daemon only).
    PP_ERR_TOO_LARGE = -32042,
    /// -32050, HTTP 503: spend store unavailable: nothing was recorded, retry later.
    PP_ERR_STORE_UNAVAILABLE = -32050,
    /// -32600, HTTP 400: invalid JSON-RPC request (daemon only).
    PP_ERR_INVALID_REQUEST = -32600,
    /// -32601, HTTP 400: method not found (daemon only).
    PP_ERR_METHOD_NOT_FOUND = -32601,
    /// -32602, HTTP 400: invalid params; from this library: a malformed token of type 2
    /// (truncated, too long, trailing bytes) or a malformed `Authorization` value (not
    /// `PrivateToken token=...`, bad base64).
    PP_ERR_INVALID_PARAMS = -32602,
    /// -32603, HTTP 500: internal error (the OS random generator or the crypto backend
    /// failed).
    PP_ERR_INTERNAL = -32603,
    /// -32700, HTTP 400: parse error (daemon only).
    PP_ERR_PARSE_ERROR = -32700,

    /// A required pointer argument is NULL, or a buffer is `(NULL, n > 0)`.
    PP_ERR_NULL_ARGUMENT = 1,
    /// The output buffer is too small; `*out_len` holds the size needed and nothing else was
    /// written.
    PP_ERR_BUFFER_TOO_SMALL = 2,
    /// An argument is malformed: a fixed-size argument of the wrong length, text that is not
    /// UTF-8, a malformed TokenChallenge, TokenResponse or issuer directory.
    PP_ERR_INVALID_INPUT = 3,
    /// Not a usable key: not RSA-2048 with e = 65537, wrong RSASSA-PSS parameters, bad PEM,
    /// no token type 2 key in a directory.
    PP_ERR_INVALID_KEY = 4,
    /// The spend store URL is not one this library opens (`memory:`, `memory:CAPACITY`,
    /// `rocksdb:PATH`, `redis://HOST:PORT`, `redis+cluster://HOST:PORT,...`).
    PP_ERR_INVALID_STORE_URL = 5,
    /// A panic was caught at the boundary: a bug in libprivacypass. The handles involved stay
    /// usable.
    PP_ERR_PANIC = 6,
}

impl pp_result {
    /// The result code of a row of the table. Exhaustive: a new row fails to compile here.
    pub const fn from_code(code: ErrorCode) -> pp_result {
        match code {
            ErrorCode::VerificationFailed => pp_result::PP_ERR_VERIFICATION_FAILED,
            ErrorCode::AlreadySpent => pp_result::PP_ERR_ALREADY_SPENT,
            ErrorCode::UnsupportedToken => pp_result::PP_ERR_UNSUPPORTED_TOKEN,
            ErrorCode::UnknownIssuanceKey => pp_result::PP_ERR_UNKNOWN_ISSUANCE_KEY,
            ErrorCode::UnprocessableBlindedToken => pp_result::PP_ERR_UNPROCESSABLE_BLINDED_TOKEN,
            ErrorCode::Unauthenticated => pp_result::PP_ERR_UNAUTHENTICATED,
            ErrorCode::Forbidden => pp_result::PP_ERR_FORBIDDEN,
            ErrorCode::IdempotencyInFlight => pp_result::PP_ERR_IDEMPOTENCY_IN_FLIGHT,
            ErrorCode::IdempotencyMismatch => pp_result::PP_ERR_IDEMPOTENCY_MISMATCH,
            ErrorCode::RateLimited => pp_result::PP_ERR_RATE_LIMITED,
            ErrorCode::IssueAtRedemptionRoute => pp_result::PP_ERR_ISSUE_AT_REDEMPTION_ROUTE,
            ErrorCode::MethodNotAllowed => pp_result::PP_ERR_METHOD_NOT_ALLOWED,
            ErrorCode::TooLarge => pp_result::PP_ERR_TOO_LARGE,
            ErrorCode::StoreUnavailable => pp_result::PP_ERR_STORE_UNAVAILABLE,
            ErrorCode::InvalidRequest => pp_result::PP_ERR_INVALID_REQUEST,
            ErrorCode::MethodNotFound => pp_result::PP_ERR_METHOD_NOT_FOUND,
            ErrorCode::InvalidParams => pp_result::PP_ERR_INVALID_PARAMS,
            ErrorCode::Internal => pp_result::PP_ERR_INTERNAL,
            ErrorCode::ParseError => pp_result::PP_ERR_PARSE_ERROR,
        }
    }
}

/// The library's own codes, with their description (the table's rows describe
/// themselves).
fn library_codes() -> [(pp_result, &'static CStr); 6] {
    [
        (
            pp_result::PP_ERR_NULL_ARGUMENT,
            c"a required pointer argument is NULL",
        ),
        (
            pp_result::PP_ERR_BUFFER_TOO_SMALL,
            c"the output buffer is too small; *out_len holds the size needed",
        ),
        (
            pp_result::PP_ERR_INVALID_INPUT,
            c"an argument is malformed or has the wrong length",
        ),
        (
            pp_result::PP_ERR_INVALID_KEY,
            c"not an RSA-2048 issuer key (SPKI, PEM or issuer directory)",
        ),
        (
            pp_result::PP_ERR_INVALID_STORE_URL,
            c"unsupported or invalid spend store URL (memory:, rocksdb:PATH, redis://, redis+cluster://)",
        ),
        (
            pp_result::PP_ERR_PANIC,
            c"a panic was caught inside libprivacypass (a bug)",
        ),
    ]
}

/// What bytes that do not decode as a Token answer, as the verifier classifies them: a token of
/// another type `PP_ERR_UNSUPPORTED_TOKEN`, anything else (truncated, too long, trailing bytes)
/// `PP_ERR_INVALID_PARAMS`.
pub(crate) fn undecodable_token(e: DecodeError) -> pp_result {
    let e = match e {
        DecodeError::UnsupportedTokenType(t) => VerifyError::UnsupportedTokenType(t),
        other => VerifyError::Malformed(other),
    };
    e.code().into()
}

impl From<ErrorCode> for pp_result {
    fn from(code: ErrorCode) -> Self {
        pp_result::from_code(code)
    }
}

/// The meaning of each row as a static C string: the table's text, checked by a test.
const fn meaning(code: ErrorCode) -> &'static CStr {
    match code {
        ErrorCode::VerificationFailed => c"token verification failed (bad authenticator, challenge binding mismatch, unknown or expired key)",
        ErrorCode::AlreadySpent => c"token already spent",
        ErrorCode::UnsupportedToken => c"redeem: token type or parameters not served here (another token type, compressed tokens)",
        ErrorCode::UnknownIssuanceKey => c"issue: key-id unknown or not active for issuance",
        ErrorCode::UnprocessableBlindedToken => c"issue: blinded token unprocessable (bad base64, wrong length, wrong token type, value not below the modulus, truncated id mismatch)",
        ErrorCode::Unauthenticated => c"missing or invalid credentials",
        ErrorCode::Forbidden => c"credentials not allowed for this method or key",
        ErrorCode::IdempotencyInFlight => c"Idempotency-Key in use by a request in flight",
        ErrorCode::IdempotencyMismatch => c"Idempotency-Key reused with a different request",
        ErrorCode::RateLimited => c"rate limit exceeded",
        ErrorCode::IssueAtRedemptionRoute => c"`issue` requested at a redemption-only route",
        ErrorCode::MethodNotAllowed => c"HTTP method other than POST",
        ErrorCode::TooLarge => c"request body or batch too large",
        ErrorCode::StoreUnavailable => c"spend store unavailable: nothing was recorded, retry later",
        ErrorCode::InvalidRequest => c"invalid JSON-RPC request",
        ErrorCode::MethodNotFound => c"method not found",
        ErrorCode::InvalidParams => c"invalid params (also a malformed token of a served type: truncated, too long, trailing bytes)",
        ErrorCode::Internal => c"internal error",
        ErrorCode::ParseError => c"parse error",
    }
}

fn library_str(code: c_int) -> Option<&'static CStr> {
    library_codes()
        .iter()
        .find(|(r, _)| *r as c_int == code)
        .map(|(_, s)| *s)
}

/// A static, NUL-terminated description of a result code (never NULL, never to be freed).
/// For the protocol errors it is the meaning column of the error table. Unknown codes answer
/// "unknown result code".
#[no_mangle]
pub extern "C" fn pp_result_str(result: c_int) -> *const c_char {
    ffi_panic_boundary! {
        if result == pp_result::PP_OK as c_int {
            return c"success".as_ptr();
        }
        if let Some(code) = ErrorCode::from_code(result) {
            return meaning(code).as_ptr();
        }
        library_str(result).unwrap_or(c"unknown result code").as_ptr()
    }
}

/// The JSON-RPC error code a result answers: the code itself for the protocol errors, 0 for
/// `PP_OK`, -32603 (internal error) for the library's own codes and unknown values.
#[no_mangle]
pub extern "C" fn pp_result_jsonrpc_code(result: c_int) -> c_int {
    ffi_panic_boundary! {
        if result == pp_result::PP_OK as c_int {
            return 0;
        }
        ErrorCode::from_code(result).unwrap_or(ErrorCode::Internal).code()
    }
}

/// The HTTP status a result answers, from the error table: 200 for `PP_OK`, 500 for the
/// library's own codes and unknown values.
#[no_mangle]
pub extern "C" fn pp_result_http_status(result: c_int) -> c_int {
    ffi_panic_boundary! {
        if result == pp_result::PP_OK as c_int {
            return 200;
        }
        c_int::from(ErrorCode::from_code(result).unwrap_or(ErrorCode::Internal).http_status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_code_per_row_and_the_value_is_the_json_rpc_code() {
        for row in ErrorCode::ALL {
            let r = pp_result::from_code(row);
            assert_eq!(r as c_int, row.code(), "{row:?}");
            assert_eq!(pp_result_jsonrpc_code(r as c_int), row.code());
            assert_eq!(
                pp_result_http_status(r as c_int),
                c_int::from(row.http_status())
            );
            // SAFETY: pp_result_str returns static NUL-terminated strings.
            let text = unsafe { CStr::from_ptr(pp_result_str(r as c_int)) };
            assert_eq!(text.to_str().unwrap(), row.meaning(), "{row:?}");
        }
    }

    #[test]
    fn a_malformed_token_is_invalid_params_and_another_type_unsupported() {
        let truncated = DecodeError::Truncated {
            what: "Token",
            needed: 354,
            got: 100,
        };
        assert_eq!(
            undecodable_token(truncated),
            pp_result::PP_ERR_INVALID_PARAMS
        );
        assert_eq!(
            undecodable_token(DecodeError::TrailingBytes {
                what: "Token",
                extra: 1
            }),
            pp_result::PP_ERR_INVALID_PARAMS
        );
        assert_eq!(
            undecodable_token(DecodeError::UnsupportedTokenType(1)),
            pp_result::PP_ERR_UNSUPPORTED_TOKEN
        );
    }

    #[test]
    fn library_codes_are_distinct_from_the_table_and_described() {
        for (r, text) in library_codes() {
            let code = r as c_int;
            assert!(code > 0);
            assert!(ErrorCode::from_code(code).is_none());
            assert_eq!(pp_result_jsonrpc_code(code), -32603);
            assert_eq!(pp_result_http_status(code), 500);
            // SAFETY: static NUL-terminated strings.
            assert_eq!(unsafe { CStr::from_ptr(pp_result_str(code)) }, text);
        }
        let mut codes: Vec<c_int> = library_codes().iter().map(|(r, _)| *r as c_int).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), library_codes().len());
        assert_eq!(pp_result_http_status(0), 200);
        assert_eq!(pp_result_jsonrpc_code(0), 0);
        // SAFETY: static NUL-terminated strings.
        assert_eq!(
            unsafe { CStr::from_ptr(pp_result_str(12345)) },
            c"unknown result code"
        );
    }
}
