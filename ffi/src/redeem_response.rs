//! What privacypassd's answer to one JSON-RPC `redeem` call says, for a service that spends its
//! tokens through the daemon (the nginx module does, in a subrequest) rather than with a
//! `pp_redeemer` of its own.

use std::ffi::c_int;

use privacypass_core::ErrorCode;
use serde_json::Value;

use crate::boundary::{ffi_panic_boundary, input};
use crate::result::pp_result;

/// The longest answer read; privacypassd's answer to one redeem call takes under 200 bytes.
const MAX_ANSWER_LEN: usize = 64 * 1024;

/// What an answer that says nothing a caller can act on counts as: the daemon's own answer when
/// it could not record a spend.
const UNKNOWN_OUTCOME: pp_result = pp_result::PP_ERR_STORE_UNAVAILABLE;

/// The outcome an HTTP status and body say, as `pp_redeem_response_result` documents.
fn outcome(http_status: c_int, body: &[u8]) -> Result<(), pp_result> {
    if body.len() > MAX_ANSWER_LEN {
        return Err(UNKNOWN_OUTCOME);
    }
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(UNKNOWN_OUTCOME);
    };
    if answer.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !answer.contains_key("id") {
        return Err(UNKNOWN_OUTCOME);
    }
    match (answer.get("result"), answer.get("error")) {
        (Some(result), None) if http_status == 200 && result.as_str() == Some("success") => Ok(()),
        (None, Some(error)) => {
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .and_then(|code| i32::try_from(code).ok())
                .and_then(ErrorCode::from_code)
                .ok_or(UNKNOWN_OUTCOME)?;
            if http_status == 200 || http_status == c_int::from(code.http_status()) {
                Err(code.into())
            } else {
                Err(UNKNOWN_OUTCOME)
            }
        }
        _ => Err(UNKNOWN_OUTCOME),
    }
}

/// What privacypassd's answer to a single JSON-RPC `redeem` call (on `/rpc` or `/api/redeem`)
/// says about the token: `http_status` is the answer's HTTP status (0 when no answer came) and
/// `body` its body.
///
/// - `PP_OK`: the token was spent now. Only a 200 whose body is a JSON-RPC 2.0 response with
///   `"result": "success"` and no `error` says so.
/// - The code of the error table a JSON-RPC 2.0 error response carries (`PP_ERR_ALREADY_SPENT`,
///   `PP_ERR_VERIFICATION_FAILED`, `PP_ERR_INVALID_PARAMS`, ...), when its HTTP status is the
///   one the table gives that code, or 200.
/// - `PP_ERR_STORE_UNAVAILABLE` for everything else: no answer, a body that is not one JSON-RPC
///   2.0 response object (an error page, a batch, `result` and `error` together, no `id`),
///   another result, a code outside the table, a status that disagrees with the code, a body
///   over 64 KiB. Such an answer does not show the token spent, nor refused: treat it as the
///   daemon's own -32050 (fail closed, answer 503, the client may present the token again,
///   and a later redeem tells whether it was spent).
///
/// Returns `PP_ERR_NULL_ARGUMENT` for `(NULL, len > 0)`.
#[no_mangle]
pub unsafe extern "C" fn pp_redeem_response_result(
    http_status: c_int,
    body: *const u8,
    body_len: usize,
) -> pp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller passes a valid buffer.
        let body = unsafe { input(body, body_len) }?;
        outcome(http_status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(status: c_int, body: &str) -> pp_result {
        // SAFETY: a valid buffer.
        unsafe { pp_redeem_response_result(status, body.as_ptr(), body.len()) }
    }

    #[test]
    fn success_only_from_a_200_with_the_result_success() {
        let success = r#"{"jsonrpc":"2.0","id":1,"result":"success"}"#;
        assert_eq!(judge(200, success), pp_result::PP_OK);
        assert_eq!(
            judge(
                200,
                "{ \"id\": 7, \"result\": \"success\",\n \"jsonrpc\": \"2.0\" }\n"
            ),
            pp_result::PP_OK
        );
        for status in [0, 201, 204, 400, 403, 500, 502, 503] {
            assert_eq!(judge(status, success), UNKNOWN_OUTCOME, "{status}");
        }
        for body in [
            // an error member beside the result
            r#"{"jsonrpc":"2.0","id":1,"result":"success","error":{"code":-32021}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"failure"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"success":true}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#"{"jsonrpc":"1.0","id":1,"result":"success"}"#,
            r#"{"id":1,"result":"success"}"#,
            r#"{"jsonrpc":"2.0","result":"success"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":"success"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"success"} {}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"success""#,
            r#""success""#,
            "<html><body>\"success\"</body></html>",
            "",
        ] {
            assert_eq!(judge(200, body), UNKNOWN_OUTCOME, "{body}");
        }
        let mut long = success.to_owned();
        long.push_str(&" ".repeat(MAX_ANSWER_LEN));
        assert_eq!(judge(200, &long), UNKNOWN_OUTCOME);
    }

    #[test]
    fn an_error_of_the_table_with_its_status_or_200_is_that_error() {
        let error = |code: i64| {
            format!(r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":{code},"message":"m"}}}}"#)
        };
        for row in ErrorCode::ALL {
            let body = error(row.code().into());
            let status = c_int::from(row.http_status());
            assert_eq!(judge(status, &body), pp_result::from(row), "{row:?}");
            assert_eq!(judge(200, &body), pp_result::from(row), "{row:?}");
        }
        assert_eq!(judge(403, &error(-32021)), pp_result::PP_ERR_ALREADY_SPENT);
        assert_eq!(judge(400, &error(-32602)), pp_result::PP_ERR_INVALID_PARAMS);
        // the status of another code, or none
        for status in [0, 400, 500, 502, 503] {
            assert_eq!(judge(status, &error(-32021)), UNKNOWN_OUTCOME, "{status}");
        }
        for body in [
            error(-320210),
            error(-3202),
            error(1 << 40),
            error(0),
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":"-32021"}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32021.0}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"error":-32021}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"error":{"message":"-32021"}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"message":"-32021"}"#.to_owned(),
        ] {
            assert_eq!(judge(403, &body), UNKNOWN_OUTCOME, "{body}");
        }
        // the daemon's own store failure
        assert_eq!(
            judge(503, &error(-32050)),
            pp_result::PP_ERR_STORE_UNAVAILABLE
        );
    }

    #[test]
    fn null_and_deep_bodies() {
        // SAFETY: NULL with a length is what is tested; (NULL, 0) is the empty body.
        unsafe {
            assert_eq!(
                pp_redeem_response_result(200, std::ptr::null(), 1),
                pp_result::PP_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                pp_redeem_response_result(200, std::ptr::null(), 0),
                UNKNOWN_OUTCOME
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(judge(200, &deep), UNKNOWN_OUTCOME);
    }
}
