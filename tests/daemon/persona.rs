//! The issuance API as a paid, authenticated service: bearer API keys and their permissions,
//! rate limits and their headers, Idempotency-Key, Key-Inflection, Persona headers, Request-Id,
//! and clients that misbehave. The real binary on 127.0.0.1, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use privacypass_core::{b64, Client};
use serde_json::{json, Value};

/// A response: status, headers (lower-case names), JSON body (Null when not JSON).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> Option<i64> {
        self.body
            .pointer("/error/code")
            .or_else(|| self.body.pointer("/errors/0/code"))
            .and_then(Value::as_i64)
    }
}

fn send(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut resp = agent.run(req.body(body.to_owned()).unwrap()).unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A fresh blinded token request for the daemon's key: (base64url blinded message, key id hex).
fn blinded(daemon: &Daemon) -> (String, String) {
    let key = daemon.issuer_key();
    let client = Client::new(key.public_key().clone());
    let pending = client.request(&challenge()).unwrap();
    (
        b64::encode_url(&pending.request().blinded_msg),
        hex::encode(key.public_key().token_key_id()),
    )
}

fn issue_call(daemon: &Daemon) -> String {
    let (token, key_id) = blinded(daemon);
    json!({"jsonrpc": "2.0", "id": 1, "method": "issue",
           "params": {"blinded-token": token, "key-id": key_id}})
    .to_string()
}

/// The output of `privacypassd api-keys new ARGS`: (key, file line).
fn new_api_key(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["api-keys", "new"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("sha256:"))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("ppk_") && key.len() > 40, "{key}");
    assert!(!stderr.contains(&key), "the file line holds no secret");
    (key, line)
}

#[test]
fn api_keys_permissions_rate_limits_and_persona_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (full, full_line) = new_api_key(&["--name", "shop"]);
    let (redeemer, redeemer_line) = new_api_key(&["--methods", "redeem"]);
    let other_id = format!("00ff{}", "0".repeat(60));
    let (other_key, other_line) = new_api_key(&["--token-keys", &other_id]);
    let plain = "plain-text-api-key-0001";
    let keys_file = dir.path().join("api-keys");
    std::fs::write(
        &keys_file,
        format!("# API keys\n{full_line}\n{redeemer_line}\n{other_line}\n{plain}\n"),
    )
    .unwrap();
    let daemon = Daemon::start(
        &dir.path().join("data"),
        &[
            "--api-keys",
            keys_file.to_str().unwrap(),
            "--rate-limit",
            "6/3600",
            "--environment-id",
            "env_test",
            "--organization-id",
            "org_test",
            "--max-body-bytes",
            "4096",
        ],
    );
    let agent = agent();
    let rpc_url = format!("{}/rpc", daemon.url);
    let bearer = |k: &str| format!("Bearer {k}");
    clear_of_window_end(3600);

    // -32030: no key, a wrong key, another scheme; checked before the body is read or parsed.
    let huge = "x".repeat(10_000);
    for (auth, body) in [
        (None, issue_call(&daemon)),
        (Some("Bearer ppk_wrong".to_owned()), issue_call(&daemon)),
        (Some(format!("Basic {full}")), issue_call(&daemon)),
        (None, huge.clone()),
        (None, "{not json".to_owned()),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let a = send(&agent, &rpc_url, &headers, &body);
        assert_eq!((a.status, a.code()), (401, Some(-32030)), "{}", a.body);
        assert_eq!(
            a.header("www-authenticate"),
            Some("Bearer realm=\"privacypass\"")
        );
        assert!(a.header("request-id").unwrap().starts_with("req_"));
        assert!(a.header("ratelimit-limit").is_none(), "not authenticated");
    }
    // Every issuance route requires the key.
    let (token, key_id) = blinded(&daemon);
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let rest_body = json!({"blinded-token": token, "key-id": key_id}).to_string();
    let a = send(&agent, &rest_url, &[], &rest_body);
    assert_eq!((a.status, a.code()), (401, Some(-32030)), "{}", a.body);
    let resp = agent
        .post(format!("{}/token-request", daemon.url))
        .header("content-type", "application/private-token-request")
        .send(&[0u8, 2, 0][..])
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A good key: served, with the rate-limit and Persona headers.
    let a = send(
        &agent,
        &rest_url,
        &[("authorization", &bearer(&full))],
        &rest_body,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["blind-sig"].is_string());
    assert_eq!(a.header("ratelimit-limit"), Some("6"));
    assert_eq!(a.header("ratelimit-remaining"), Some("5"));
    let reset: u64 = a.header("ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&reset));
    assert_eq!(a.header("persona-environment-id"), Some("env_test"));
    assert_eq!(a.header("persona-organization-id"), Some("org_test"));
    // The key given in the file as plain text works too.
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(plain))],
        &issue_call(&daemon),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    // -32031: a key without the method; a key without the token key.
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(&redeemer))],
        &issue_call(&daemon),
    );
    assert_eq!((a.status, a.code()), (403, Some(-32031)), "{}", a.body);
    let a = send(
        &agent,
        &rest_url,
        &[("authorization", &bearer(&other_key))],
        &rest_body,
    );
    assert_eq!((a.status, a.code()), (403, Some(-32031)), "{}", a.body);
    let key = daemon.issuer_key();
    let pending = Client::new(key.public_key().clone())
        .request(&challenge())
        .unwrap();
    let resp = agent
        .post(format!("{}/token-request", daemon.url))
        .header("content-type", "application/private-token-request")
        .header("authorization", &bearer(&other_key))
        .send(&pending.request().encode()[..])
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Redemption needs no key without --redeem-auth; a key without `issue` may still redeem.
    let minter = Minter::new(daemon.issuer_key());
    let (status, body) = rpc(
        &agent,
        &format!("{}/api/redeem", daemon.url),
        "redeem",
        redeem_params(&minter.token()),
    );
    assert_eq!(status, 200, "{body}");
    let redeem_body = json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&minter.token())});
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(&redeemer))],
        &redeem_body.to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    // -32034: each call of a batch counts. `full` has used 1 of 6: a batch of 3 leaves 2,
    // a batch of 3 more goes over.
    let call: Value = serde_json::from_str(&issue_call(&daemon)).unwrap();
    let batch = json!([call, call, call]).to_string();
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(&full))],
        &batch,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("ratelimit-remaining"), Some("2"));
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(&full))],
        &batch,
    );
    assert_eq!((a.status, a.code()), (429, Some(-32034)), "{}", a.body);
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    let a = send(
        &agent,
        &rest_url,
        &[("authorization", &bearer(&full))],
        &rest_body,
    );
    assert_eq!((a.status, a.code()), (429, Some(-32034)), "{}", a.body);
    // Another key has its own budget.
    let a = send(
        &agent,
        &rest_url,
        &[("authorization", &bearer(plain))],
        &rest_body,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // A body over the limit from an authenticated client is refused while reading.
    let a = send(
        &agent,
        &rpc_url,
        &[("authorization", &bearer(plain))],
        &huge,
    );
    assert_eq!((a.status, a.code()), (413, Some(-32042)), "{}", a.body);
}

#[test]
fn redeem_auth_and_refusing_to_serve_the_world_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("api-keys");
    std::fs::write(
        &keys_file,
        "plain-text-api-key-0001 methods=redeem\nplain-text-api-key-0002\n",
    )
    .unwrap();
    let daemon = Daemon::start(
        &dir.path().join("data"),
        &["--api-keys", keys_file.to_str().unwrap(), "--redeem-auth"],
    );
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let redeem_url = format!("{}/api/redeem", daemon.url);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&minter.token())})
        .to_string();
    let a = send(&agent, &redeem_url, &[], &body);
    assert_eq!((a.status, a.code()), (401, Some(-32030)), "{}", a.body);
    let a = send(
        &agent,
        &redeem_url,
        &[("authorization", "Bearer plain-text-api-key-0001")],
        &body,
    );
    assert_eq!(
        (a.status, a.body["result"].as_str()),
        (200, Some("success"))
    );
    assert!(a.header("ratelimit-limit").is_some());

    // The demo client sends its key; without one it stops at the first issuance.
    let demo = |key: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"));
        cmd.args(["demo", "--url", &daemon.url]);
        if let Some(key) = key {
            cmd.args(["--api-key", key]);
        }
        cmd.output().unwrap()
    };
    let out = demo(None);
    assert!(!out.status.success());
    let out = demo(Some("plain-text-api-key-0001"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the key may not issue: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("-32031"), "{stderr}");
    let out = demo(Some("plain-text-api-key-0002"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("demo complete"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Not on loopback and no API keys: refused before binding anything.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["serve", "--listen", "0.0.0.0:0", "--store", "memory:"])
        .arg("--data-dir")
        .arg(dir.path().join("open"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );
    // A bad keys file names the line, not the key.
    std::fs::write(
        &keys_file,
        "ok-key-number-00001\nsecret-but-bad methods=mint\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory:"])
        .arg("--api-keys")
        .arg(&keys_file)
        .arg("--data-dir")
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-but-bad"), "{stderr}");
}

#[test]
fn idempotency_key_replays_conflicts_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start_logged(&dir.path().join("data"), &["--max-batch", "64"], &log);
    let agent = agent();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let (token, key_id) = blinded(&daemon);
    let body = json!({"blinded-token": token, "key-id": key_id}).to_string();
    let first = send(&agent, &rest_url, &[("idempotency-key", "order-1")], &body);
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    let again = send(&agent, &rest_url, &[("idempotency-key", "order-1")], &body);
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_ne!(again.header("request-id"), first.header("request-id"));

    // -32033: the same key with another request.
    let (other_token, _) = blinded(&daemon);
    let other = json!({"blinded-token": other_token, "key-id": key_id}).to_string();
    let a = send(&agent, &rest_url, &[("idempotency-key", "order-1")], &other);
    assert_eq!((a.status, a.code()), (422, Some(-32033)), "{}", a.body);
    // A request that failed is not replayed as a failure forever, but as itself (a client
    // error is an answer too): the same bad request gets the same 404.
    let missing = json!({"blinded-token": other_token, "key-id": "00".repeat(32)}).to_string();
    let a = send(
        &agent,
        &rest_url,
        &[("idempotency-key", "order-2")],
        &missing,
    );
    assert_eq!((a.status, a.code()), (404, Some(-32023)));
    let a = send(
        &agent,
        &rest_url,
        &[("idempotency-key", "order-2")],
        &missing,
    );
    assert_eq!(
        (a.status, a.header("idempotent-replayed")),
        (404, Some("true"))
    );
    // An unusable key is a clear 400.
    let a = send(
        &agent,
        &rest_url,
        &[("idempotency-key", "has space")],
        &body,
    );
    assert_eq!((a.status, a.code()), (400, Some(-32600)), "{}", a.body);

    // -32032: the same key while the first request is still in flight. A batch of 64
    // signatures keeps it busy; if it finished before the second arrived, try a new key.
    let calls: Vec<Value> = (0..64)
        .map(|_| serde_json::from_str(&issue_call(&daemon)).unwrap())
        .collect();
    let batch = Value::Array(calls).to_string();
    let rpc_url = format!("{}/rpc", daemon.url);
    let mut saw_conflict = false;
    for attempt in 0..10 {
        let key = format!("batch-{attempt}");
        let (url, b, k) = (rpc_url.clone(), batch.clone(), key.clone());
        let first = std::thread::spawn(move || {
            send(&common::agent(), &url, &[("idempotency-key", &k)], &b)
        });
        // The same call again and again while the first runs: whichever claims the key first
        // runs (200), the other meets it in flight (409); one that arrives after it completed
        // gets its replay. No fixed delay, so a loaded machine cannot make it miss.
        let mut seconds = Vec::new();
        loop {
            let done = first.is_finished();
            seconds.push(send(&agent, &rpc_url, &[("idempotency-key", &key)], &batch));
            if done || seconds.last().is_some_and(|a| a.status == 409) {
                break;
            }
        }
        let first = first.join().unwrap();
        let answers: Vec<&Answer> = std::iter::once(&first).chain(&seconds).collect();
        for a in &answers {
            assert!(a.status == 200 || a.status == 409, "{}", a.body);
            if a.status == 409 {
                assert_eq!(a.code(), Some(-32032), "{}", a.body);
                saw_conflict = true;
            }
        }
        let ran = answers
            .iter()
            .filter(|a| a.status == 200 && a.header("idempotent-replayed").is_none())
            .count();
        assert_eq!(
            ran, 1,
            "the batch ran once; every other answer is a replay or a 409"
        );
        if saw_conflict {
            break;
        }
    }
    assert!(saw_conflict, "never caught the first request in flight");

    // The record survives a restart.
    daemon.restart();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let after = send(&agent, &rest_url, &[("idempotency-key", "order-1")], &body);
    assert_eq!((after.status, &after.body), (201, &first.body));
    assert_eq!(after.header("idempotent-replayed"), Some("true"));

    // Request-Id: in the response and in that request's log line.
    let id = after.header("request-id").unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text
            .lines()
            .any(|l| l.contains(&id) && l.contains("status=201"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{id} not in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn key_inflection_and_persona_version() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let rpc_url = format!("{}/rpc", daemon.url);
    for (inflection, field) in [
        ("kebab", "blind-sig"),
        ("camel", "blindSig"),
        ("snake", "blind_sig"),
    ] {
        // Request keys in any casing.
        let (token, key_id) = blinded(&daemon);
        let body = match inflection {
            "camel" => json!({"blindedToken": token, "keyId": key_id}),
            "snake" => json!({"blinded_token": token, "key_id": key_id}),
            _ => json!({"blinded-token": token, "key-id": key_id}),
        };
        let a = send(
            &agent,
            &rest_url,
            &[
                ("key-inflection", inflection),
                ("persona-version", "2023-01-05"),
            ],
            &body.to_string(),
        );
        assert_eq!(a.status, 201, "{}", a.body);
        assert!(a.body[field].is_string(), "{inflection}: {}", a.body);
        let a = send(
            &agent,
            &rpc_url,
            &[("key-inflection", inflection)],
            &issue_call(&daemon),
        );
        assert!(
            a.body["result"][field].is_string(),
            "{inflection}: {}",
            a.body
        );
    }
    let a = send(
        &agent,
        &rest_url,
        &[("key-inflection", "pascal")],
        &json!({}).to_string(),
    );
    assert_eq!((a.status, a.code()), (400, Some(-32600)), "{}", a.body);
    assert!(a.body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("kebab, camel or snake"));
    let a = send(
        &agent,
        &rpc_url,
        &[("persona-version", "1999-01-01")],
        &issue_call(&daemon),
    );
    assert_eq!((a.status, a.code()), (400, Some(-32600)), "{}", a.body);
    let detail = a.body["error"]["data"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("1999-01-01") && detail.contains("2023-01-05"),
        "{detail}"
    );
}

/// Reads until the server closes the connection or `limit` passes; what it sent.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn slow_and_idle_clients_do_not_hold_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--max-connections",
            "2000",
        ],
    );
    let addr = daemon.url.trim_start_matches("http://").to_owned();

    // 1,000 idle connections, then a normal client is served within a second.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let agent = agent();
    let started = Instant::now();
    let resp = agent.get(format!("{}/healthz", daemon.url)).call().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(elapsed < Duration::from_secs(1), "served after {elapsed:?}");
    // The idle ones are closed after the header timeout.
    let mut first = idle.into_iter().next().unwrap();
    let (_, waited) = read_until_closed(&mut first, Duration::from_secs(10));
    assert!(
        waited < Duration::from_secs(5),
        "idle connection kept {waited:?}"
    );

    // Headers trickled a byte at a time (slowloris): cut off at the header timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let started = Instant::now();
    let request =
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = false;
    for byte in request {
        if slow.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !cut_off {
        let (_, _) = read_until_closed(&mut slow, Duration::from_secs(5));
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "a trickling client held its connection for {:?}",
        started.elapsed()
    );

    // A body that never arrives: answered at the body timeout, not waited for.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        .unwrap();
    let (answer, waited) = read_until_closed(&mut stalled, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not received in time"), "{answer}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // And the daemon still serves.
    let resp = agent.get(format!("{}/healthz", daemon.url)).call().unwrap();
    assert_eq!(resp.status(), 200);
}

/// -32603 from a real request: the stored response of an Idempotency-Key cannot be read (a
/// damaged record). The record is written where the daemon keeps it, under the scope and
/// fingerprint the daemon computes: SHA-256 of (API key id, 0, key) and of (route, 0, casing, 0,
/// body).
#[test]
fn an_unreadable_stored_response_is_an_internal_error() {
    use openssl::sha::{sha256, Sha256};
    use privacypass_stores::IdempotencyStore;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let (token, key_id) = blinded(&daemon);
    let body = json!({"blinded-token": token, "key-id": key_id}).to_string();
    daemon.stop();
    {
        let store = privacypass_stores::rocks::RocksStore::open(dir.path().join("spends")).unwrap();
        let scope = format!("idem:{}", hex::encode(sha256(b"\0order-9")));
        let mut fingerprint = Sha256::new();
        fingerprint.update(b"rest\0kebab\0");
        fingerprint.update(body.as_bytes());
        let fingerprint: [u8; 32] = fingerprint.finish();
        store.complete(&scope, &fingerprint, b"\x01", 3600).unwrap();
    }
    daemon.restart();
    let agent = agent();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let a = send(&agent, &rest_url, &[("idempotency-key", "order-9")], &body);
    assert_eq!((a.status, a.code()), (500, Some(-32603)), "{}", a.body);
    // Another key for the same request is served.
    let a = send(&agent, &rest_url, &[("idempotency-key", "order-10")], &body);
    assert_eq!(a.status, 201, "{}", a.body);
}

fn issued_total(agent: &ureq::Agent, url: &str) -> u64 {
    let text = agent
        .get(format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("privacypass_calls_total{op=\"issue\",code=\"0\"} "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_rate_limit_counts_down_to_429() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("api-keys");
    std::fs::write(&keys_file, "plain-text-api-key-0001\n").unwrap();
    let daemon = Daemon::start(
        &dir.path().join("data"),
        &[
            "--api-keys",
            keys_file.to_str().unwrap(),
            "--rate-limit",
            "5/3600",
        ],
    );
    let agent = agent();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let auth = [("authorization", "Bearer plain-text-api-key-0001")];
    clear_of_window_end(3600);
    let mut last_reset = u64::MAX;
    for remaining in (0..5).rev() {
        let (token, key_id) = blinded(&daemon);
        let a = send(
            &agent,
            &rest_url,
            &auth,
            &json!({"blinded-token": token, "key-id": key_id}).to_string(),
        );
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            a.header("ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        let reset: u64 = a.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset <= last_reset && reset <= 3600);
        last_reset = reset;
        assert!(a.header("retry-after").is_none());
    }
    for _ in 0..2 {
        let a = send(&agent, &rest_url, &auth, "{}");
        assert_eq!((a.status, a.code()), (429, Some(-32034)), "{}", a.body);
        assert_eq!(a.header("ratelimit-remaining"), Some("0"));
        let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
        assert!(retry >= 1 && retry <= last_reset, "{retry}");
    }
}

#[test]
fn concurrent_requests_with_one_idempotency_key_execute_once() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let rest_url = format!("{}/api/v1/privacy-passes", daemon.url);
    let (token, key_id) = blinded(&daemon);
    let body = json!({"blinded-token": token, "key-id": key_id}).to_string();
    let before = issued_total(&agent, &daemon.url);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let answers: Vec<Answer> = (0..16)
        .map(|_| {
            let (barrier, url, body) = (barrier.clone(), rest_url.clone(), body.clone());
            std::thread::spawn(move || {
                let agent = common::agent();
                barrier.wait();
                send(&agent, &url, &[("idempotency-key", "same-for-all")], &body)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let executed: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == 201 && a.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(executed.len(), 1, "exactly one request runs");
    for a in &answers {
        match a.status {
            201 => assert_eq!(a.body, executed[0].body),
            409 => assert_eq!(a.code(), Some(-32032)),
            other => panic!("{other}: {}", a.body),
        }
    }
    assert_eq!(
        issued_total(&agent, &daemon.url),
        before + 1,
        "one signature made"
    );
}
