//! privacypassd end to end: the real binary on 127.0.0.1, real HTTP, a real RocksDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use privacypass_core::{b64, Client, PublicKey, Token, TokenChallenge};
use serde_json::{json, Value};

fn directory_key(agent: &ureq::Agent, url: &str) -> Arc<PublicKey> {
    let mut resp = agent
        .get(format!("{url}/.well-known/private-token-issuer-directory"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let dir: Value = resp.body_mut().read_json().unwrap();
    assert_eq!(dir["issuer-request-uri"], "/token-request");
    assert_eq!(dir["token-keys"][0]["token-type"], 2);
    let spki = b64::decode_url(dir["token-keys"][0]["token-key"].as_str().unwrap()).unwrap();
    Arc::new(PublicKey::from_spki(&spki).unwrap())
}

#[test]
fn full_cycle_through_every_route_and_both_redeem_forms() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let key = directory_key(&agent, &daemon.url);
    let key_id = hex::encode(key.token_key_id());
    let client = Client::new(key);
    let challenge = challenge();
    let mut tokens: Vec<Token> = Vec::new();

    // JSON-RPC issue, with a whole TokenRequest and with the bare blinded message.
    for whole in [true, false] {
        let pending = client.request(&challenge).unwrap();
        let encoded = pending.request().encode();
        let blinded = if whole { &encoded[..] } else { &encoded[3..] };
        let (status, body) = rpc(
            &agent,
            &format!("{}/rpc", daemon.url),
            "issue",
            json!({"blinded-token": b64::encode_url(blinded), "key-id": key_id}),
        );
        assert_eq!(status, 200, "{body}");
        let sig = b64::decode_url(body["result"]["blind-sig"].as_str().unwrap()).unwrap();
        tokens.push(pending.finalize(&sig).unwrap());
    }
    // REST.
    let pending = client.request(&challenge).unwrap();
    let (status, body) = post_json(
        &agent,
        &format!("{}/api/v1/privacy-passes", daemon.url),
        &json!({"blinded_token": b64::encode_url(&pending.request().encode()), "keyId": key_id}),
    );
    assert_eq!(status, 201, "{body}");
    tokens.push(
        pending
            .finalize(&b64::decode_url(body["blind-sig"].as_str().unwrap()).unwrap())
            .unwrap(),
    );
    // RFC 9578 native.
    let pending = client.request(&challenge).unwrap();
    let mut resp = agent
        .post(format!("{}/token-request", daemon.url))
        .header("content-type", "application/private-token-request")
        .send(&pending.request().encode()[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/private-token-response"
    );
    tokens.push(
        pending
            .finalize(&resp.body_mut().read_to_vec().unwrap())
            .unwrap(),
    );

    let challenge_b64 = b64::encode_url(&challenge.encode());
    for (i, token) in tokens.iter().enumerate() {
        let encoded = token.encode();
        let (url, params) = if i % 2 == 0 {
            (
                format!("{}/rpc", daemon.url),
                json!({"token": b64::encode_url(&encoded), "challenge": challenge_b64}),
            )
        } else {
            (
                format!("{}/api/redeem", daemon.url),
                json!({"data": [b64::encode_std(&encoded)], "bindings": [challenge_b64], "compressed": false}),
            )
        };
        let (status, body) = rpc(&agent, &url, "redeem", params.clone());
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("success")),
            "token {i}: {body}"
        );
        let (status, body) = rpc(&agent, &url, "redeem", params);
        assert_eq!(
            (status, error_code(&body)),
            (403, Some(-32021)),
            "token {i} twice: {body}"
        );
    }
}

#[test]
fn demo_runs_the_whole_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["demo", "--url", &daemon.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("refused, error -32021"), "{stdout}");
}

fn raw(agent: &ureq::Agent, method: &str, url: &str, body: &str) -> (u16, Value, Option<String>) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    let mut resp = agent.run(req.body(body.to_owned()).unwrap()).unwrap();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        allow,
    )
}

#[test]
fn every_error_row_from_a_real_request() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &["--max-batch", "4", "--max-body-bytes", "4096"],
    );
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let key_id = hex::encode(minter.token().token_key_id);
    let rpc_url = format!("{}/rpc", daemon.url);
    let check = |(status, body): (u16, Value), want: (u16, i64)| {
        assert_eq!(
            (status, error_code(&body)),
            (want.0, Some(want.1)),
            "{body}"
        );
    };

    // -32020: bad authenticator; challenge binding mismatch.
    let mut bad = minter.token();
    bad.authenticator[9] ^= 1;
    check(
        rpc(&agent, &rpc_url, "redeem", redeem_params(&bad)),
        (403, -32020),
    );
    let other = b64::encode_url(
        &TokenChallenge::new(2, b"elsewhere", &[], b"")
            .unwrap()
            .encode(),
    );
    let token = minter.token();
    check(
        rpc(
            &agent,
            &rpc_url,
            "redeem",
            json!({"token": b64::encode_url(&token.encode()), "challenge": other}),
        ),
        (403, -32020),
    );
    // -32021: spent.
    assert_eq!(
        rpc(&agent, &rpc_url, "redeem", redeem_params(&token)).0,
        200
    );
    check(
        rpc(&agent, &rpc_url, "redeem", redeem_params(&token)),
        (403, -32021),
    );
    // -32602: the bytes of a served type, cut short or with a byte too many.
    let whole = minter.token().encode();
    for bytes in [
        &whole[..whole.len() - 1],
        &[whole.as_slice(), &[0]].concat()[..],
    ] {
        check(
            rpc(
                &agent,
                &rpc_url,
                "redeem",
                json!({"token": b64::encode_url(bytes)}),
            ),
            (400, -32602),
        );
    }
    // -32022: unsupported token type; compressed.
    let mut typed = minter.token().encode();
    typed[1] = 9;
    check(
        rpc(
            &agent,
            &rpc_url,
            "redeem",
            json!({"token": b64::encode_url(&typed)}),
        ),
        (400, -32022),
    );
    check(
        rpc(
            &agent,
            &rpc_url,
            "redeem",
            json!({"data": [b64::encode_std(&minter.token().encode())], "compressed": true}),
        ),
        (400, -32022),
    );
    // -32023: unknown key id.
    let blinded = b64::encode_url(&[1u8; 256]);
    check(
        rpc(
            &agent,
            &rpc_url,
            "issue",
            json!({"blinded-token": blinded, "key-id": "00".repeat(32)}),
        ),
        (404, -32023),
    );
    // -32024: bad base64, wrong length, not below the modulus.
    check(
        rpc(
            &agent,
            &rpc_url,
            "issue",
            json!({"blinded-token": "!!", "key-id": key_id}),
        ),
        (422, -32024),
    );
    check(
        rpc(
            &agent,
            &rpc_url,
            "issue",
            json!({"blinded-token": b64::encode_url(&[1; 100]), "key-id": key_id}),
        ),
        (422, -32024),
    );
    check(
        rpc(
            &agent,
            &rpc_url,
            "issue",
            json!({"blinded-token": b64::encode_url(&[0xff; 256]), "key-id": key_id}),
        ),
        (422, -32024),
    );
    // -32040: issue at the redemption route.
    check(
        rpc(
            &agent,
            &format!("{}/api/redeem", daemon.url),
            "issue",
            json!({"blinded-token": blinded, "key-id": key_id}),
        ),
        (400, -32040),
    );
    // -32041: not POST, with Allow.
    for method in ["GET", "PUT", "DELETE"] {
        let (status, body, allow) = raw(&agent, method, &rpc_url, "");
        assert_eq!(
            (status, error_code(&body), allow.as_deref()),
            (405, Some(-32041), Some("POST")),
            "{method}"
        );
    }
    // -32042: body too large (declared and streamed), batch too large.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(5000));
    let (status, body, _) = raw(&agent, "POST", &rpc_url, &big);
    assert_eq!((status, error_code(&body)), (413, Some(-32042)));
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": {}});
    check(
        post_json(&agent, &rpc_url, &json!([call, call, call, call, call])),
        (413, -32042),
    );
    // -32600, -32601, -32602, -32700.
    check(
        post_json(
            &agent,
            &rpc_url,
            &json!({"jsonrpc": "1.0", "id": 1, "method": "redeem"}),
        ),
        (400, -32600),
    );
    check(post_json(&agent, &rpc_url, &json!([])), (400, -32600));
    check(rpc(&agent, &rpc_url, "mint", json!({})), (400, -32601));
    check(
        rpc(&agent, &rpc_url, "issue", json!({"key-id": key_id})),
        (400, -32602),
    );
    check(
        rpc(&agent, &rpc_url, "redeem", json!({"token": 5})),
        (400, -32602),
    );
    let (status, body, _) = raw(&agent, "POST", &rpc_url, "{not json");
    assert_eq!((status, error_code(&body)), (400, Some(-32700)));

    // A batch answers 200 with per-item outcomes.
    let fresh = minter.token();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&fresh)},
        {"jsonrpc": "2.0", "id": 2, "method": "redeem", "params": redeem_params(&fresh)},
        {"jsonrpc": "2.0", "method": "redeem", "params": redeem_params(&minter.token())},
    ]);
    let (status, body) = post_json(&agent, &rpc_url, &batch);
    assert_eq!(status, 200);
    let answers = body.as_array().unwrap();
    assert_eq!(answers.len(), 2, "the notification gets no answer");
    assert_eq!(answers[0]["result"], "success");
    assert_eq!(error_code(&answers[1]), Some(-32021));

    // The REST route answers the same statuses with an errors body.
    let (status, body) = post_json(
        &agent,
        &format!("{}/api/v1/privacy-passes", daemon.url),
        &json!({"blinded-token": blinded, "key-id": "00".repeat(32)}),
    );
    assert_eq!(
        (status, body["errors"][0]["code"].as_i64()),
        (404, Some(-32023)),
        "{body}"
    );
    // The native route answers 422 for a wrong size and a wrong type.
    for bad in [vec![0u8, 2, 1, 2, 3], vec![0u8, 7, 0]] {
        let resp = agent
            .post(format!("{}/token-request", daemon.url))
            .header("content-type", "application/private-token-request")
            .send(&bad[..])
            .unwrap();
        assert_eq!(resp.status(), 422);
    }
    let resp = agent
        .post(format!("{}/token-request", daemon.url))
        .header("content-type", "text/plain")
        .send("x")
        .unwrap();
    assert_eq!(resp.status(), 415);
}

#[test]
fn store_that_cannot_record_answers_503_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A memory store with room for nothing: every spend fails to record.
    let daemon = Daemon::start(dir.path(), &["--store", "memory:0"]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let token = minter.token();
    for _ in 0..2 {
        let (status, body) = rpc(
            &agent,
            &format!("{}/rpc", daemon.url),
            "redeem",
            redeem_params(&token),
        );
        assert_eq!((status, error_code(&body)), (503, Some(-32050)), "{body}");
    }
    // Clients and load balancers are told when to try again.
    let resp = agent
        .post(&format!("{}/rpc", daemon.url))
        .send_json(
            json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&token)}),
        )
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
}

#[test]
fn concurrent_redeems_of_one_token_succeed_once() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let minter = Minter::new(daemon.issuer_key());
    let url = format!("{}/rpc", daemon.url);
    for round in 0..20 {
        let params = redeem_params(&minter.token());
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (url, params, barrier) = (url.clone(), params.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    barrier.wait();
                    rpc(&agent, &url, "redeem", params)
                })
            })
            .collect();
        let mut successes = 0;
        for h in handles {
            let (status, body) = h.join().unwrap();
            match status {
                200 => successes += 1,
                403 => assert_eq!(error_code(&body), Some(-32021)),
                other => panic!("round {round}: HTTP {other} {body}"),
            }
        }
        assert_eq!(successes, 1, "round {round}");
    }
}

#[test]
fn kill_9_during_redeem_load_loses_no_acknowledged_spend() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let minter = Arc::new(Minter::new(daemon.issuer_key()));
    let tokens: Vec<Token> = (0..1200).map(|_| minter.token()).collect();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = format!("{}/rpc", daemon.url);
    let chunks: Vec<Vec<Token>> = tokens.chunks(150).map(<[Token]>::to_vec).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (url, acked) = (url.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(std::time::Duration::from_secs(5)))
                    .build()
                    .into();
                for token in chunk {
                    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": redeem_params(&token)});
                    let Ok(mut resp) = agent.post(&url).send_json(&body) else { return };
                    if resp.status() == 200 && resp.body_mut().read_to_string().is_ok_and(|t| t.contains("success")) {
                        acked.lock().unwrap().push(token);
                    }
                }
            })
        })
        .collect();
    // Let some redemptions land, then kill the daemon mid-load.
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    daemon.kill9();
    for h in handles {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200 && acked.len() < tokens.len(),
        "{} acknowledged",
        acked.len()
    );
    daemon.restart();
    let agent = agent();
    for token in &acked {
        let (status, body) = rpc(&agent, &url_of(&daemon), "redeem", redeem_params(token));
        assert_eq!(
            (status, error_code(&body)),
            (403, Some(-32021)),
            "acknowledged spend lost: {body}"
        );
    }
}

fn url_of(daemon: &Daemon) -> String {
    format!("{}/rpc", daemon.url)
}

#[test]
fn restart_keeps_spends_and_sighup_loads_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let token = minter.token();
    assert_eq!(
        rpc(&agent, &url_of(&daemon), "redeem", redeem_params(&token)).0,
        200
    );
    assert!(daemon.stop().success(), "SIGTERM exits cleanly");
    daemon.restart();
    let (status, body) = rpc(&agent, &url_of(&daemon), "redeem", redeem_params(&token));
    assert_eq!((status, error_code(&body)), (403, Some(-32021)));

    let directory = |agent: &ureq::Agent| -> Value {
        let mut resp = agent
            .get(format!(
                "{}/.well-known/private-token-issuer-directory",
                daemon.url
            ))
            .call()
            .unwrap();
        resp.body_mut().read_json().unwrap()
    };
    assert_eq!(directory(&agent)["token-keys"].as_array().unwrap().len(), 1);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["keys", "generate", "--keys-dir"])
        .arg(daemon.keys_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.signal("HUP");
    let mut listed = 0;
    for _ in 0..100 {
        listed = directory(&agent)["token-keys"].as_array().unwrap().len();
        if listed == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(listed, 2, "the new key appears after SIGHUP");
}

#[test]
fn directory_etag_and_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    let url = format!("{}/.well-known/private-token-issuer-directory", daemon.url);
    let resp = agent.get(&url).call().unwrap();
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=300, must-revalidate"
    );
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert!(resp.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let resp = agent
        .get(&url)
        .header("if-none-match", &etag)
        .call()
        .unwrap();
    assert_eq!(resp.status(), 304);
    let resp = agent.get(format!("{}/healthz", daemon.url)).call().unwrap();
    assert_eq!(resp.status(), 200);
    let minter = Minter::new(daemon.issuer_key());
    rpc(
        &agent,
        &url_of(&daemon),
        "redeem",
        redeem_params(&minter.token()),
    );
    let mut resp = agent.get(format!("{}/metrics", daemon.url)).call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("privacypass_calls_total{op=\"redeem\",code=\"0\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("privacypass_store_duration_seconds_count 1"),
        "{text}"
    );
    // The one spend was one synced write of RocksDB.
    for line in [
        "privacypass_store_commit_spends_bucket{le=\"1\"} 1",
        "privacypass_store_commit_spends_bucket{le=\"+Inf\"} 1",
        "privacypass_store_commit_spends_sum 1",
        "privacypass_store_commit_spends_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert!(
        text.contains("privacypass_keys{state=\"active\"} 1"),
        "{text}"
    );
    // Request ids differ per response.
    let a = agent.get(format!("{}/healthz", daemon.url)).call().unwrap();
    let b = agent.get(format!("{}/healthz", daemon.url)).call().unwrap();
    assert_ne!(a.headers()["request-id"], b.headers()["request-id"]);
}

#[test]
fn keys_cli_generates_imports_lists_and_retires() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_privacypassd"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let keys_arg = keys.to_str().unwrap();
    let (ok, out) = run(&["keys", "generate", "--keys-dir", keys_arg]);
    assert!(ok, "{out}");
    // Import the RFC 9578 vector key (PKCS#8) and a PKCS#1 key.
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../tests/vectors/rfc9578-type2-blind-rsa.json",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        ))
        .unwrap(),
    )
    .unwrap();
    let pem = hex::decode(vectors[0]["skS"].as_str().unwrap()).unwrap();
    let pem_path = dir.path().join("vector.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    let (ok, out) = run(&[
        "keys",
        "import",
        pem_path.to_str().unwrap(),
        "--keys-dir",
        keys_arg,
    ]);
    assert!(ok, "{out}");
    let vector_id = hex::encode(openssl::sha::sha256(
        &hex::decode(vectors[0]["pkS"].as_str().unwrap()).unwrap(),
    ));
    assert!(out.contains(&vector_id), "{out}");
    let (ok, out) = run(&[
        "keys",
        "import",
        pem_path.to_str().unwrap(),
        "--keys-dir",
        keys_arg,
    ]);
    assert!(!ok && out.contains("already"), "{out}");
    let (ok, out) = run(&["keys", "import", "/etc/hostname", "--keys-dir", keys_arg]);
    assert!(!ok && out.contains("not an RSA key"), "{out}");
    // Key files are private.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem") {
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
    let (ok, out) = run(&["keys", "list", "--keys-dir", keys_arg]);
    assert!(ok && out.matches("active").count() == 2, "{out}");
    let (ok, out) = run(&["keys", "retire", &vector_id[..12], "--keys-dir", keys_arg]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["keys", "list", "--keys-dir", keys_arg]);
    assert!(
        ok && out.contains("grace") && out.matches("active").count() == 1,
        "{out}"
    );
    // Nothing in any output is key material.
    assert!(!out.contains("PRIVATE KEY"));
}

/// Replays of a token's exact bytes skip the RSA verification; a forgery of a spent token (its
/// nonce and key id with another authenticator) is still verified, and refused as such.
#[test]
fn a_forged_copy_of_a_spent_token_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &["--store", "memory:"]);
    let agent = agent();
    let minter = Minter::new(daemon.issuer_key());
    let rpc_url = format!("{}/rpc", daemon.url);
    let token = minter.token();
    assert_eq!(
        rpc(&agent, &rpc_url, "redeem", redeem_params(&token)).0,
        200
    );
    let mut forged = token.clone();
    forged.authenticator[17] ^= 0x40;
    for _ in 0..2 {
        let (status, body) = rpc(&agent, &rpc_url, "redeem", redeem_params(&token));
        assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
        let (status, body) = rpc(&agent, &rpc_url, "redeem", redeem_params(&forged));
        assert_eq!((status, error_code(&body)), (403, Some(-32020)), "{body}");
    }
    // The same token in standard base64 is the same bytes: still spent.
    let (status, body) = rpc(
        &agent,
        &rpc_url,
        "redeem",
        json!({"token": b64::encode_std(&token.encode())}),
    );
    assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
}

/// The public redemption API's documented request (privacypass.github.io/api-redeem), byte for
/// byte: a token of the earlier Privacy Pass protocol (preimage, HMAC tag, curve settings). It
/// gets that API's own answer for a token this server cannot redeem, -32022, with a message that
/// says what it asked for and what this server redeems, on both JSON-RPC routes.
#[test]
fn the_redemption_apis_documented_request_is_told_what_this_server_redeems() {
    const DOCUMENTED: &str = r#"{
  "jsonrpc": "2.0",
  "method": "redeem",
  "params": {
    "data": [
      "IE/CRo8sBGWRlDDwNJwWAzPryRJ7UlOTrHJdPh3GQxQ=",
      "dYErmr5VLa9A4XPlj1wz2wD31h20VHKIJgz2BKv2cow=",
      "eyJjdXJ2ZSI6InAyNTYiLCJoYXNoIjoic2hhMjU2IiwibWV0aG9kIjoiaW5jcmVtZW50In0="
    ],
    "bindings": [
      "q7r8rfqhodjkc4bcufs1s",
      "zo3zzmvq77m3qwch82dytj"
    ],
    "compressed": false
  },
  "id": 1
}"#;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let agent = agent();
    for route in ["/api/redeem", "/rpc"] {
        let (status, body, _) = raw(
            &agent,
            "POST",
            &format!("{}{route}", daemon.url),
            DOCUMENTED,
        );
        assert_eq!(
            (status, error_code(&body)),
            (400, Some(-32022)),
            "{route}: {body}"
        );
        assert_eq!(body["id"], 1, "{body}");
        // The message is the table's; the detail says what was asked and what is served.
        let detail = body["error"]["data"]["detail"].as_str().unwrap_or_default();
        for needle in [
            "p256",
            "sha256",
            "increment",
            "RFC 9578",
            "0x0002",
            "0x0001",
            "0x0005",
            "rfc9578",
        ] {
            assert!(detail.contains(needle), "{route}: {needle:?} not in {body}");
        }
    }
    // Settings that are not the earlier protocol's are the ordinary refusal of three tokens.
    let other = DOCUMENTED.replace(
        "eyJjdXJ2ZSI6InAyNTYiLCJoYXNoIjoic2hhMjU2IiwibWV0aG9kIjoiaW5jcmVtZW50In0=",
        &b64::encode_std(b"not json"),
    );
    let (status, body, _) = raw(
        &agent,
        "POST",
        &format!("{}/api/redeem", daemon.url),
        &other,
    );
    assert_eq!((status, error_code(&body)), (400, Some(-32602)), "{body}");
}

/// A file of the repository (the daemon's tests run from `daemon/`).
fn repository_file(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `privacypass_…` names a file of the repository uses, each once, in order of appearance.
fn metric_names_in(relative: &str) -> Vec<String> {
    let text = repository_file(relative);
    let mut names: Vec<String> = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("privacypass_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_the_alert_rules_query_is_one_the_daemon_exports() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let text = metrics_text(&daemon);
    let exported: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    // The dashboard is JSON Grafana imports, its panels querying what an operator watches.
    let dashboard: Value =
        serde_json::from_str(&repository_file("dist/grafana/privacypass.json")).unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
    let dashboard_names = metric_names_in("dist/grafana/privacypass.json");
    for wanted in [
        "privacypass_calls_total",
        "privacypass_call_duration_seconds_bucket",
        "privacypass_store_duration_seconds_bucket",
        "privacypass_keys_by_type",
        "privacypass_key_issuing_seconds_remaining",
    ] {
        assert!(
            dashboard_names.iter().any(|n| n == wanted),
            "the dashboard does not show {wanted}"
        );
    }
    for file in [
        "dist/grafana/privacypass.json",
        "dist/prometheus/alerts.yml",
    ] {
        let names = metric_names_in(file);
        assert!(names.len() >= 5, "{file}: {names:?}");
        for name in names {
            assert!(
                exported.contains(&name.as_str()),
                "{file} queries {name}, which /metrics does not export"
            );
        }
    }
}
