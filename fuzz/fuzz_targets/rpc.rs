//! The daemon's JSON-RPC routes (`POST /rpc`, `POST /api/redeem`) in-process, body bytes to
//! response: two selector bytes choose the route and the request headers (fuzz/src/daemon.rs),
//! the rest is the body, in which placeholders (`$KEY`, `$TOKEN`, `$CHALLENGE`, `$BLINDED`, ...)
//! stand for this process's keys and tokens.
//!
//! Checks: the answer is well-formed JSON-RPC 2.0 (one envelope, or a batch of them in the order
//! of the calls answered, each echoing its call's id) or empty for notifications only; the HTTP
//! status of a single answer is its code's in the README's error table (200 for a result); a
//! batch answers 200; an `issue` result is the RSA signature of the blinded message it was
//! asked for, by the key it named (each entry's, for `blinded-tokens` and `batch`, whose
//! refused entries are errors of the table); a `redeem` succeeds only for a token issued here, once.
#![no_main]

use hyper::StatusCode;
use libfuzzer_sys::fuzz_target;
use privacypass_core::b64;
use privacypass_fuzz::daemon::{Answer, Daemon, Route, Selector};
use privacypass_fuzz::param;
use privacypassd::jsonrpc::MAX_ID_BYTES;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = Selector::split(data) else {
        return;
    };
    let daemon = Daemon::get();
    let body = daemon.expand(body);
    let route = if selector.alternate_route {
        Route::Redeem
    } else {
        Route::Rpc
    };
    let answer = daemon.call(route, &selector, body.clone());
    daemon.check_common(&answer);
    check(daemon, route, &body, &answer);
});

/// Whether a call is a notification: a well-formed request without an id gets no answer.
fn notification(call: &Value) -> bool {
    call.as_object().is_some_and(|c| {
        !c.contains_key("id")
            && c.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && c.get("method").is_some_and(Value::is_string)
    })
}

/// The id the answer to a call must carry: the call's, unless the call is not an object or its
/// id is not a string, number or null, or is too long to be echoed.
fn expected_id(call: &Value) -> Value {
    match call.get("id") {
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_)))
            if id.to_string().len() <= MAX_ID_BYTES =>
        {
            id.clone()
        }
        _ => Value::Null,
    }
}

/// Ids are equal, floats within their last digits (serde_json's float parsing is not exact).
fn same_id(answer: &Value, call: &Value) -> bool {
    match (answer, call) {
        (Value::Number(a), Value::Number(c)) if a.is_f64() || c.is_f64() => {
            match (a.as_f64(), c.as_f64()) {
                (Some(a), Some(c)) => a == c || ((a - c) / c).abs() < 1e-12,
                _ => false,
            }
        }
        _ => answer == call,
    }
}

fn check(daemon: &Daemon, route: Route, body: &[u8], answer: &Answer) {
    let request: Option<Value> = match serde_json::from_slice(body) {
        Ok(request) => Some(request),
        Err(e) if beyond_value(&e) => return check_unread(daemon, answer),
        Err(_) => None,
    };
    if answer.status == StatusCode::NO_CONTENT {
        assert!(answer.body.is_empty(), "a 204 with a body");
        let calls = match &request {
            Some(Value::Array(calls)) => calls.iter().collect(),
            Some(call) => vec![call],
            None => panic!("204 for a body that is not JSON"),
        };
        assert!(
            calls.iter().all(|c| notification(c)),
            "204 for a body holding a call that is not a notification"
        );
        return;
    }
    let response: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {:?}", answer.body));
    match (&response, &request) {
        (Value::Array(answers), Some(Value::Array(calls))) => {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "a batch answered {}",
                answer.status
            );
            assert!(!calls.is_empty() && calls.len() <= daemon.max_batch);
            let answered: Vec<&Value> = calls.iter().filter(|c| !notification(c)).collect();
            assert_eq!(
                answers.len(),
                answered.len(),
                "a batch of {} calls, {} to answer, answered {}",
                calls.len(),
                answered.len(),
                answers.len()
            );
            assert!(!answers.is_empty(), "an empty batch answer");
            for (a, call) in answers.iter().zip(answered) {
                envelope(daemon, a, Some(call), route);
            }
        }
        (Value::Array(answers), None) => {
            // A batch nested deeper than serde_json's Value reads (128 levels) is still a
            // batch: its calls are refused one by one.
            assert!(
                body.trim_ascii_start().starts_with(b"["),
                "a batch answer to a body that is not a batch"
            );
            assert_eq!(answer.status, StatusCode::OK);
            assert!(!answers.is_empty() && answers.len() <= daemon.max_batch);
            for a in answers {
                envelope(daemon, a, None, route);
            }
        }
        (Value::Array(_), _) => panic!("a batch answer to a body that is not a batch"),
        (Value::Object(_), _) => {
            let single = match &request {
                Some(Value::Array(_)) | None => None,
                Some(call) => Some(call),
            };
            // An answer with an id, or with a result, is the one call's; an error with a null
            // id may also be the body's refusal (parse error, batch bounds, credentials, rate
            // limit, method, size), which answers no call.
            let id = response.get("id").unwrap_or(&Value::Null);
            assert!(
                id.is_null() || single.is_some(),
                "an answer with id {id} to a body that is not one call"
            );
            let call = single.filter(|_| !id.is_null() || response.get("result").is_some());
            let code = envelope(daemon, &response, call, route);
            let status = match code {
                None => 200,
                Some(code) => daemon.table.row(code).map_or(0, |r| r.status),
            };
            assert_eq!(
                answer.status.as_u16(),
                status,
                "a single answer with code {code:?} answered HTTP {}",
                answer.status
            );
        }
        _ => panic!("a JSON-RPC answer that is neither an object nor an array: {response}"),
    }
}

/// Whether a body is JSON that serde_json's `Value` does not hold: nested deeper than 128
/// levels, or with a number no double holds (`1e400`). The daemon reads a body as JSON text and
/// looks only at the members it uses, so such a body may still be a call or a batch.
fn beyond_value(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.starts_with("recursion limit exceeded") || m.starts_with("number out of range")
}

/// Checks an answer to a body the checks cannot read as a `Value`: nothing (a notification),
/// or well-formed answers with the statuses of their codes.
fn check_unread(daemon: &Daemon, answer: &Answer) {
    if answer.status == StatusCode::NO_CONTENT {
        assert!(answer.body.is_empty(), "a 204 with a body");
        return;
    }
    let response: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {:?}", answer.body));
    let answers = match &response {
        Value::Array(answers) => {
            assert_eq!(answer.status, StatusCode::OK);
            assert!(!answers.is_empty() && answers.len() <= daemon.max_batch);
            answers.iter().collect()
        }
        single => vec![single],
    };
    for a in answers {
        let code = a.pointer("/error/code").and_then(Value::as_i64);
        assert!(
            code.is_none_or(|c| daemon.table.row(c).is_some()),
            "an answer with a code not in the table: {a}"
        );
        if !response.is_array() {
            let status = code.map_or(200, |c| daemon.table.row(c).map_or(0, |r| r.status));
            assert_eq!(answer.status.as_u16(), status, "{a}");
        }
    }
}

/// Checks one answer (against its call when known); its error code, if it is an error.
fn envelope(daemon: &Daemon, answer: &Value, call: Option<&Value>, route: Route) -> Option<i64> {
    let obj = answer
        .as_object()
        .unwrap_or_else(|| panic!("an answer that is not an object: {answer}"));
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")), "{answer}");
    let id = obj
        .get("id")
        .unwrap_or_else(|| panic!("an answer without id: {answer}"));
    assert!(
        matches!(id, Value::Null | Value::String(_) | Value::Number(_)),
        "an answer whose id is {id}"
    );
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "an answer with keys {keys:?}");
    if let Some(call) = call {
        let expected = expected_id(call);
        assert!(
            same_id(id, &expected),
            "the answer's id {id} is not its call's {expected}"
        );
    }
    match (obj.get("result"), obj.get("error")) {
        (Some(result), None) => {
            let call = call.unwrap_or_else(|| panic!("a result for no call: {answer}"));
            result_of(daemon, call, result, route);
            None
        }
        (None, Some(error)) => {
            let error = error
                .as_object()
                .unwrap_or_else(|| panic!("an error that is not an object: {answer}"));
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_else(|| panic!("an error without an integer code: {answer}"));
            let row = daemon
                .table
                .row(code)
                .unwrap_or_else(|| panic!("code {code} is not in the README's table"));
            assert_eq!(
                error.get("message").and_then(Value::as_str),
                Some(row.meaning.as_str()),
                "{answer}"
            );
            assert!(
                error
                    .get("data")
                    .and_then(|d| d.get("detail"))
                    .is_some_and(Value::is_string),
                "an error without data.detail: {answer}"
            );
            Some(code)
        }
        _ => panic!("an answer with neither or both of result and error: {answer}"),
    }
}

/// A successful call's result: a signature of what was asked, or a first redemption.
fn result_of(daemon: &Daemon, call: &Value, result: &Value, route: Route) {
    let method = call.get("method").and_then(Value::as_str);
    let params = call
        .get("params")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("a result for a call without params: {call}"));
    match method {
        Some("issue") => {
            assert_eq!(route, Route::Rpc, "issue succeeded at /api/redeem");
            daemon.check_issued(params, result);
        }
        Some("redeem") => {
            assert_eq!(result, &Value::from("success"), "redeem result {result}");
            let token = param(params, "token")
                .and_then(Value::as_str)
                .or_else(|| {
                    param(params, "data")
                        .and_then(|d| d.get(0))
                        .and_then(Value::as_str)
                })
                .unwrap_or_else(|| panic!("redeem succeeded without a token: {call}"));
            daemon.redeemed(token);
        }
        other => panic!("a result for method {other:?}"),
    }
}
