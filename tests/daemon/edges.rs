//! Exactly once at the edges, on the real daemon: key-life changes after a spend, redeem never
//! replayed through Idempotency-Key, what strangers are told and what the log keeps, health
//! that reflects writes, issuance without API keys, and clients that never read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/redis_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use privacypass_core::b64;
use redis_server::{free_port, RedisServer};
use serde_json::{json, Value};

use privacypass_core::unix_now;

/// Rewrites the sidecar of the daemon's one key with a new `expires`.
fn set_expires(daemon: &Daemon, expires: u64) {
    let sidecar = std::fs::read_dir(daemon.keys_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let mut validity: Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    validity["expires"] = json!(expires);
    std::fs::write(&sidecar, validity.to_string()).unwrap();
}

/// Waits until the daemon's log holds `needle` `count` times.
fn wait_for_log(log: &Path, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redeem(
    agent: &ureq::Agent,
    daemon: &Daemon,
    token: &privacypass_core::Token,
) -> (u16, Option<i64>) {
    let (status, body) = rpc(
        agent,
        &format!("{}/rpc", daemon.url),
        "redeem",
        redeem_params(token),
    );
    (status, error_code(&body))
}

#[test]
fn a_key_life_extended_after_a_spend_keeps_the_spend() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    // Purges every second, with no margin: only the recorded ends keep spends.
    let args = [
        "--redemption-grace",
        "1",
        "--purge-interval",
        "1",
        "--purge-margin",
        "0",
    ];
    let mut daemon = Daemon::start_logged(&dir.path().join("data"), &args, &log);
    daemon.stop();
    let end = unix_now() + 3;
    set_expires(&daemon, end);
    daemon.restart();
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let token = minter.token();
    assert_eq!(redeem(&agent, &daemon, &token), (200, None));
    // The operator moves the key's end a day later and reloads.
    set_expires(&daemon, end + 86_400);
    daemon.signal("HUP");
    wait_for_log(&log, "keys reloaded", 1);
    // Past the original end, its grace and several purges: the spend is still there.
    while unix_now() < end + 1 + 3 {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(redeem(&agent, &daemon, &token), (403, Some(-32021)));
    // And across a restart.
    daemon.restart();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(redeem(&agent, &daemon, &token), (403, Some(-32021)));
}

#[test]
fn redeem_is_never_replayed_through_an_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let url = format!("{}/rpc", daemon.url);
    let send = |key: &str, body: &Value| {
        let mut resp = agent
            .post(&url)
            .header("Idempotency-Key", key)
            .send_json(body)
            .unwrap();
        let replayed = resp.headers().contains_key("idempotent-replayed");
        let text = resp.body_mut().read_to_string().unwrap();
        (
            resp.status().as_u16(),
            replayed,
            serde_json::from_str::<Value>(&text).unwrap(),
        )
    };
    let token = minter.token();
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&token)});
    let (status, replayed, _) = send("redeem-once", &call);
    assert_eq!((status, replayed), (200, false));
    let (status, replayed, body) = send("redeem-once", &call);
    assert_eq!(
        (status, replayed, error_code(&body)),
        (403, false, Some(-32021))
    );

    // A batch that mixes issue and redeem: the redeem is run for real each time.
    let pending = privacypass_core::Client::new(daemon.issuer_key().public_key().clone())
        .request(&minter.challenge)
        .unwrap();
    let key_id = hex::encode(daemon.issuer_key().public_key().token_key_id());
    let token = minter.token();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "issue", "params": {
            "blinded-token": b64::encode_url(&pending.request().encode()), "key-id": key_id}},
        {"jsonrpc": "2.0", "id": 2, "method": "redeem", "params": redeem_params(&token)},
    ]);
    let (_, replayed, first) = send("mixed", &batch);
    assert!(!replayed);
    assert_eq!(first[1]["result"], "success", "{first}");
    let (_, replayed, second) = send("mixed", &batch);
    assert!(!replayed);
    assert_eq!(second[1]["error"]["code"], -32021, "{second}");
    assert!(second[0]["result"]["blind-sig"].is_string(), "{second}");

    // Issuance alone is still idempotent.
    let issue = json!({"jsonrpc": "2.0", "id": 3, "method": "issue", "params": {
        "blinded-token": b64::encode_url(&pending.request().encode()), "key-id": key_id}});
    let (_, replayed, _) = send("issue-only", &issue);
    assert!(!replayed);
    let (_, replayed, _) = send("issue-only", &issue);
    assert!(replayed);
}

#[test]
fn redis_passwords_and_store_details_stay_out_of_logs_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = RedisServer::start_with(
        &dir.path().join("redis"),
        port,
        &["--requirepass", "s3cret-pass-word"],
    );
    let log = dir.path().join("daemon.log");
    let store = format!("redis://:s3cret-pass-word@127.0.0.1:{port}/0");
    let daemon = Daemon::start_logged(&dir.path().join("data"), &["--store", &store], &log);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    assert_eq!(redeem(&agent, &daemon, &minter.token()), (200, None));
    // The store goes away: the client learns it may retry, not where the store lives.
    redis.kill_9();
    let mut resp = agent
        .post(&format!("{}/rpc", daemon.url))
        .send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "redeem",
            "params": redeem_params(&minter.token())}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.contains("-32050"), "{body}");
    for secret in ["127.0.0.1", &port.to_string(), "redis", "s3cret"] {
        assert!(!body.contains(secret), "{secret:?} in the answer: {body}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("redis://***@127.0.0.1"), "{text}");
    assert!(
        !text.contains("s3cret"),
        "the password is in the log:\n{text}"
    );
    // The log has the detail, under the request's id.
    let detail = text
        .lines()
        .find(|l| l.contains("server-side failure") && l.contains(&request_id))
        .unwrap_or_else(|| panic!("no logged detail for {request_id}:\n{text}"));
    assert!(detail.contains("redis"), "{detail}");

    // A wrong password: the daemon refuses to start and does not print the password.
    let wrong = format!("redis://:wrong-pass-word@127.0.0.1:{}/0", free_port());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &wrong,
            "--data-dir",
        ])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("wrong-pass-word"), "{stderr}");
}

#[test]
fn health_follows_whether_a_spend_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(&dir.path().join("redis"), free_port());
    let daemon = Daemon::start(&dir.path().join("data"), &["--store", &redis.url()]);
    let agent = agent();
    let health = || {
        let mut resp = agent
            .get(&format!("{}/healthz", daemon.url))
            .call()
            .unwrap();
        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        (
            resp.status().as_u16(),
            body["store"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(health(), (200, "ok".into()));
    // Many checks in a second cost at most a probe or two, not a round trip each.
    let sets = |r: &RedisServer| {
        let stats = r.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
            .map_or(0u64, |rest| {
                rest.split(',').next().unwrap().parse().unwrap()
            })
    };
    let before = sets(&redis);
    for _ in 0..50 {
        assert_eq!(health().0, 200);
    }
    assert!(
        sets(&redis) - before <= 2,
        "{} probes",
        sets(&redis) - before
    );
    // Reads still work, writes are refused: not ready, and redemption fails closed.
    redis.cli(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(health(), (503, "unavailable".into()));
    let minter = Minter::new(daemon.issuer_key());
    assert_eq!(
        redeem(&agent, &daemon, &minter.token()),
        (503, Some(-32050))
    );
    // Liveness does not depend on the store.
    let live = agent.get(&format!("{}/livez", daemon.url)).call().unwrap();
    assert_eq!(live.status().as_u16(), 200);
    redis.cli(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(health(), (200, "ok".into()));
}

#[test]
fn issuance_without_api_keys_is_bounded_and_not_served_through_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &["--anonymous-issue-limit", "3/3600"]);
    clear_of_window_end(3600);
    let agent = agent();
    let key = daemon.issuer_key();
    let key_id = hex::encode(key.public_key().token_key_id());
    let client = privacypass_core::Client::new(key.public_key().clone());
    let issue_call = |id: u64| {
        let pending = client.request(&challenge()).unwrap();
        json!({"jsonrpc": "2.0", "id": id, "method": "issue", "params": {
            "blinded-token": b64::encode_url(&pending.request().encode()), "key-id": key_id}})
    };
    let url = format!("{}/rpc", daemon.url);
    // Through a proxy: refused before it counts.
    let mut resp = agent
        .post(&url)
        .header("X-Forwarded-For", "203.0.113.7")
        .send_json(issue_call(1))
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        (resp.status().as_u16(), error_code(&body)),
        (403, Some(-32031)),
        "{body}"
    );
    // One call, then a batch of two: the limit of three is reached.
    assert_eq!(post_json(&agent, &url, &issue_call(2)).0, 200);
    let (status, body) = post_json(&agent, &url, &json!([issue_call(3), issue_call(4)]));
    assert_eq!(status, 200, "{body}");
    assert!(body[1]["result"]["blind-sig"].is_string(), "{body}");
    let (status, body) = post_json(&agent, &url, &issue_call(5));
    assert_eq!((status, error_code(&body)), (429, Some(-32034)), "{body}");
    // Redemption is not issuance: not counted, not refused.
    let minter = Minter::new(key);
    assert_eq!(redeem(&agent, &daemon, &minter.token()), (200, None));
}

#[test]
fn api_key_token_keys_must_be_whole_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    std::fs::write(&file, "plain-text-api-key-0001 token-keys=3f0c\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--api-keys"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a prefix could match a key added later"),
        "{stderr}"
    );
}

#[test]
fn clients_that_never_read_do_not_lock_out_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let address = daemon.url.trim_start_matches("http://").to_owned();
    // A huge id is refused, not echoed.
    let id = "i".repeat(60_000);
    let body = format!(r#"{{"jsonrpc":"2.0","id":"{id}","method":"redeem","params":{{}}}}"#);
    let (status, answer) = post_json(
        &agent(),
        &format!("{}/rpc", daemon.url),
        &serde_json::from_str(&body).unwrap(),
    );
    assert_eq!(
        (status, error_code(&answer)),
        (400, Some(-32600)),
        "{answer}"
    );
    assert!(answer.to_string().len() < 1000);
    // 4,096 clients (the connection cap) send that request and never read the answer.
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut idle = Vec::new();
    for _ in 0..4096 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        idle.push(stream);
    }
    std::thread::sleep(Duration::from_millis(500));
    // A fresh client is served within a second.
    let started = Instant::now();
    let mut fresh = TcpStream::connect(&address).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    fresh
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    fresh.read_to_string(&mut answer).unwrap();
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(1), "served after {took:?}");
    drop(idle);
}
