//! What `pp_result` (generated from the project's table in `codes`) answers through the C API:
//! its description, JSON-RPC code and HTTP status, and how an undecodable token is classified.

use std::ffi::{c_char, c_int, CStr};

use privacypass_core::{DecodeError, ErrorCode, LibraryCode, VerifyError};

use crate::boundary::ffi_panic_boundary;
pub use crate::codes::pp_result;
use crate::codes::{library_meaning, meaning};

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

fn library_str(code: c_int) -> Option<&'static CStr> {
    LibraryCode::from_value(code).map(library_meaning)
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
        for library in LibraryCode::ALL {
            let r = pp_result::from_library(library);
            let code = r as c_int;
            assert_eq!(code, library.value());
            let text = library_meaning(library);
            assert!(code > 0);
            assert!(ErrorCode::from_code(code).is_none());
            assert_eq!(pp_result_jsonrpc_code(code), -32603);
            assert_eq!(pp_result_http_status(code), 500);
            // SAFETY: static NUL-terminated strings.
            assert_eq!(unsafe { CStr::from_ptr(pp_result_str(code)) }, text);
        }
        assert_eq!(pp_result_http_status(0), 200);
        assert_eq!(pp_result_jsonrpc_code(0), 0);
        // SAFETY: static NUL-terminated strings.
        assert_eq!(
            unsafe { CStr::from_ptr(pp_result_str(12345)) },
            c"unknown result code"
        );
    }
}
