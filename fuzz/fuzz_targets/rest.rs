//! The daemon's issuance routes other than JSON-RPC, in-process: `POST /api/v1/privacy-passes`
//! (the Persona-style REST body, the params of `issue`) and, with bit 0 of the first selector
//! byte, `POST /token-request` (an RFC 9578 TokenRequest). Selector bytes and placeholders
//! (`$KEY`, `$BLINDED`, `$RAWREQUEST`, ...) as in the rpc target.
//!
//! Checks: REST answers 201 with `{"blind-sig": ...}` (as the inflection spells it), the RSA
//! signature of the blinded message by the issuing key it named (for `blinded-tokens`,
//! `blind-sigs`, one per entry; for `batch`, an answer per entry, 206 exactly when one is an
//! error of the table), or one error
//! `{"errors":[{"code","title","detail"}]}` whose status and title are its code's in the
//! README's table. `/token-request` answers 200 with a 256-byte TokenResponse only for a
//! 259-byte type 2 request naming the issuing key, signing its blinded message, and otherwise
//! a text error with a status of the table (or 415 for another Content-Type).
#![no_main]

use hyper::header::CONTENT_TYPE;
use hyper::StatusCode;
use libfuzzer_sys::fuzz_target;
use privacypass_core::b64;
use privacypass_fuzz::daemon::{Answer, Daemon, Route, Selector};
use privacypass_fuzz::param;
use privacypassd::http::TOKEN_RESPONSE_TYPE;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = Selector::split(data) else {
        return;
    };
    let daemon = Daemon::get();
    let body = daemon.expand(body);
    let route = if selector.alternate_route {
        Route::TokenRequest
    } else {
        Route::PersonaRest
    };
    let answer = daemon.call(route, &selector, body.clone());
    daemon.check_common(&answer);
    match route {
        Route::TokenRequest => native(daemon, &body, &answer),
        _ => rest(daemon, &body, &answer),
    }
});

fn content_type(answer: &Answer) -> &str {
    answer
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn rest(daemon: &Daemon, body: &[u8], answer: &Answer) {
    assert_eq!(content_type(answer), "application/json");
    let response: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {:?}", answer.body));
    if [StatusCode::CREATED, StatusCode::PARTIAL_CONTENT].contains(&answer.status) {
        let params: Value = serde_json::from_slice(body).expect("201 for a body that is not JSON");
        let params = params
            .as_object()
            .expect("201 for a body that is not an object");
        let refused = daemon.check_issued(params, &response);
        // 206 exactly when an entry of a generic batch was refused.
        assert_eq!(
            answer.status == StatusCode::PARTIAL_CONTENT,
            refused,
            "{} for {response}",
            answer.status
        );
        return;
    }
    let errors = response
        .get("errors")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("an error answer without errors: {response}"));
    let [error] = errors.as_slice() else {
        panic!("an error answer with {} errors", errors.len());
    };
    let code = error
        .get("code")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("an error without an integer code: {response}"));
    let row = daemon
        .table
        .row(code)
        .unwrap_or_else(|| panic!("code {code} is not in the README's table"));
    assert_eq!(
        answer.status.as_u16(),
        row.status,
        "code {code} answered {}",
        answer.status
    );
    assert_eq!(
        error.get("title").and_then(Value::as_str),
        Some(row.meaning.as_str())
    );
    assert!(
        error.get("detail").is_some_and(Value::is_string),
        "{response}"
    );
}

fn native(daemon: &Daemon, body: &[u8], answer: &Answer) {
    if answer.status == StatusCode::OK {
        assert_eq!(content_type(answer), TOKEN_RESPONSE_TYPE);
        assert_eq!(
            body.len(),
            259,
            "signed a TokenRequest of {} bytes",
            body.len()
        );
        let request = daemon
            .signable_request(body)
            .expect("signed a request that is not a type 2 request for the issuing key");
        assert!(
            privacypass_fuzz::signs(
                daemon.active.public_key(),
                &request.blinded_msg,
                &answer.body
            ),
            "the TokenResponse is not the signature of the blinded message"
        );
        return;
    }
    assert!(
        content_type(answer).starts_with("text/plain"),
        "a /token-request error of type {:?}",
        content_type(answer)
    );
    let status = answer.status.as_u16();
    assert!(
        daemon.table.has_status(status) || status == 415,
        "/token-request answered {status}, a status of no code in the README's table"
    );
}
