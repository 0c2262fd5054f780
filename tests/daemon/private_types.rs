//! Privately verifiable token types 0x0001 (VOPRF P-384) and 0x0005 (VOPRF ristretto255) in the
//! daemon: keys, the issuer directory, issuance and redemption.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../support/redis_server.rs"]
mod redis_server;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use privacypass_core::{b64, Token, TokenChallenge, TokenType, VoprfClient};
use serde_json::{json, Value};

#[test]
fn the_directory_lists_a_key_of_each_type_with_its_type_and_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let ids = three_keys(&keys_dir);
    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys_dir.to_str().unwrap()]);
    let listed = directory(&daemon);
    assert_eq!(listed.token_keys.len(), 3, "{listed:?}");
    let mut by_type: Vec<(u16, usize, String)> = listed
        .token_keys
        .iter()
        .map(|k| {
            (
                k.token_type,
                k.token_key.len(),
                hex::encode(privacypass_core::crypto::sha256(&k.token_key)),
            )
        })
        .collect();
    by_type.sort();
    assert_eq!(by_type[0].0, 1);
    assert_eq!(by_type[0].1, 49, "compressed SEC1 P-384");
    assert_eq!(by_type[0].2, ids[1]);
    assert_eq!(by_type[1].0, 2);
    assert_eq!(by_type[1].2, ids[0]);
    assert_eq!(by_type[2].0, 5);
    assert_eq!(by_type[2].1, 32, "ristretto255 element");
    assert_eq!(by_type[2].2, ids[2]);
    // The C library's reader takes only type-2 keys from it.
    assert_eq!(listed.keys_of_type(TokenType::BlindRsa2048).count(), 1);
}

#[test]
fn voprf_keys_generate_list_import_and_retire() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    // Import the vectors' keys from their raw scalar hex.
    let vectors = |name: &str| -> serde_json::Value {
        let path = format!("{}/../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut imported = Vec::new();
    for (name, key_type) in [
        ("rfc9578-type1-voprf-p384.json", "voprf-p384"),
        (
            "batched-tokens-draft-voprf-ristretto255.json",
            "voprf-ristretto255",
        ),
    ] {
        let v = vectors(name);
        let sk = dir.path().join(format!("{key_type}.hex"));
        std::fs::write(&sk, format!("{}\n", v[0]["skS"].as_str().unwrap())).unwrap();
        let out = privacypassd(
            &["keys", "import", sk.to_str().unwrap(), "--type", key_type],
            &keys_dir,
        );
        let pk = hex::decode(v[0]["pkS"].as_str().unwrap()).unwrap();
        let id = printed_id(&out);
        assert_eq!(
            id,
            hex::encode(privacypass_core::crypto::sha256(&pk)),
            "{out}"
        );
        assert!(!out.contains(v[0]["skS"].as_str().unwrap()));
        imported.push(id);
    }
    // Generated after the imports: generation draws again on a truncated-id collision,
    // where an import of a fixed key would be refused.
    let ids = three_keys(&keys_dir);
    for id in &ids {
        let mode = std::fs::metadata(keys_dir.join(format!("{id}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{id}");
        assert!(keys_dir.join(format!("{id}.json")).exists());
    }
    let pem = std::fs::read_to_string(keys_dir.join(format!("{}.pem", ids[1]))).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVACYPASS VOPRF P384"),
        "{pem}"
    );

    // A P-384 scalar is not a ristretto255 key.
    let sk = dir.path().join("voprf-p384.hex");
    let out = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args([
            "keys",
            "import",
            sk.to_str().unwrap(),
            "--type",
            "voprf-ristretto255",
        ])
        .arg("--keys-dir")
        .arg(&keys_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&std::fs::read_to_string(&sk).unwrap().trim().to_string()[..16]));

    let list = privacypassd(&["keys", "list"], &keys_dir);
    let row = |id: &str| list.lines().find(|l| l.starts_with(id)).unwrap().to_owned();
    assert!(row(&ids[0]).contains("blind-rsa-2048"), "{list}");
    assert!(row(&ids[1]).contains("voprf-p384"), "{list}");
    assert!(row(&ids[2]).contains("voprf-ristretto255"), "{list}");
    assert!(row(&imported[0]).contains("voprf-p384"), "{list}");
    assert!(row(&imported[1]).contains("voprf-ristretto255"), "{list}");
    assert!(row(&ids[1]).contains("active"), "{list}");

    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys_dir.to_str().unwrap()]);
    assert_eq!(directory(&daemon).token_keys.len(), 5);
    privacypassd(&["keys", "retire", &ids[1][..12]], &keys_dir);
    let list = privacypassd(&["keys", "list"], &keys_dir);
    let row = list.lines().find(|l| l.starts_with(&ids[1])).unwrap();
    assert!(row.contains("grace"), "{list}");
    daemon.signal("HUP");
    // The retired key stays listed while its tokens redeem, after the key that issues, so a
    // client taking the first listed key of its type asks for one that issues.
    let p384_ids = || -> Vec<String> {
        directory(&daemon)
            .token_keys
            .iter()
            .filter(|k| k.token_type == TokenType::VoprfP384.value())
            .map(|k| hex::encode(privacypass_core::crypto::sha256(&k.token_key)))
            .collect()
    };
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = p384_ids();
        if listed.last() == Some(&ids[1]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        listed,
        vec![imported[0].clone(), ids[1].clone()],
        "after SIGHUP the retired VOPRF key is listed after the issuing one"
    );
    assert_eq!(directory(&daemon).token_keys.len(), 5);
}

/// The daemon's VOPRF key of `token_type` as its directory lists it.
fn voprf_challenge(token_type: TokenType) -> TokenChallenge {
    TokenChallenge::new(token_type.value(), b"127.0.0.1", &[5; 32], b"").unwrap()
}

/// A type 1 or 5 token issued over `/token-request` and finalized (proof checked) by the client.
fn issue_native(daemon: &Daemon, token_type: TokenType) -> Token {
    let client = VoprfClient::new(voprf_key(daemon, token_type));
    let pending = client.request(&voprf_challenge(token_type)).unwrap();
    let mut resp = agent()
        .post(format!("{}/token-request", daemon.url))
        .header("Content-Type", "application/private-token-request")
        .send(&pending.request().encode()[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/private-token-response"
    );
    let body = resp.body_mut().read_to_vec().unwrap();
    pending.finalize(&body).unwrap()
}

/// A type 1 or 5 token issued over JSON-RPC `issue` (bare blinded element, or the whole
/// TokenRequest) and finalized by the client.
fn issue_rpc(daemon: &Daemon, token_type: TokenType, whole_request: bool) -> Token {
    let key = voprf_key(daemon, token_type);
    let client = VoprfClient::new(key.clone());
    let pending = client.request(&voprf_challenge(token_type)).unwrap();
    let request = pending.request().encode();
    let blinded = if whole_request {
        &request[..]
    } else {
        &request[3..]
    };
    assert_eq!(
        request.len() - 3,
        match token_type {
            TokenType::VoprfP384 => 49,
            _ => 32,
        }
    );
    let (status, body) = rpc(
        &agent(),
        &format!("{}/rpc", daemon.url),
        "issue",
        json!({"blinded-token": b64::encode_url(blinded), "key-id": hex::encode(key.token_key_id())}),
    );
    assert_eq!(status, 200, "{body}");
    let response = b64::decode_any(body["result"]["blind-sig"].as_str().unwrap()).unwrap();
    pending.finalize(&response).unwrap()
}

fn three_key_daemon(dir: &Path) -> Daemon {
    let keys_dir = dir.join("keys");
    three_keys(&keys_dir);
    Daemon::start(dir, &["--keys-dir", keys_dir.to_str().unwrap()])
}

#[test]
fn a_daemon_issues_type_1_and_type_5_tokens_natively_and_over_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let token = issue_native(&daemon, token_type);
        assert_eq!(token.token_type, token_type);
        for whole in [false, true] {
            let token = issue_rpc(&daemon, token_type, whole);
            assert_eq!(token.token_type, token_type);
        }
        // REST issuance answers the same TokenResponse as blind-sig.
        let key = voprf_key(&daemon, token_type);
        let pending = VoprfClient::new(key.clone())
            .request(&voprf_challenge(token_type))
            .unwrap();
        let (status, body) = post_json(
            &agent(),
            &format!("{}/api/v1/privacy-passes", daemon.url),
            &json!({"blinded-token": b64::encode_url(&pending.request().encode()[3..]),
                    "key-id": hex::encode(key.token_key_id())}),
        );
        assert_eq!(status, 201, "{body}");
        let response = b64::decode_any(body["blind-sig"].as_str().unwrap()).unwrap();
        pending.finalize(&response).unwrap();

        // An unknown truncated id of this type is 422, as for type 2.
        let mut request = VoprfClient::new(key.clone())
            .request(&voprf_challenge(token_type))
            .unwrap()
            .request()
            .encode();
        request[2] = request[2].wrapping_add(1);
        while directory(&daemon)
            .token_keys
            .iter()
            .any(|k| privacypass_core::crypto::sha256(&k.token_key)[31] == request[2])
        {
            request[2] = request[2].wrapping_add(1);
        }
        let resp = agent()
            .post(format!("{}/token-request", daemon.url))
            .header("Content-Type", "application/private-token-request")
            .send(&request[..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 422);
        // A blinded element of the other type's size is refused.
        let (status, body) = rpc(
            &agent(),
            &format!("{}/rpc", daemon.url),
            "issue",
            json!({"blinded-token": b64::encode_url(&[2u8; 40]), "key-id": hex::encode(key.token_key_id())}),
        );
        assert_eq!(status, 422, "{body}");
        assert_eq!(error_code(&body), Some(-32024));
    }
    // Type 2 still issues over /token-request beside them.
    let rsa = privacypass_core::PublicKey::from_spki(
        &directory(&daemon)
            .keys_of_type(TokenType::BlindRsa2048)
            .next()
            .unwrap()
            .token_key,
    )
    .unwrap();
    let pending = privacypass_core::Client::new(std::sync::Arc::new(rsa))
        .request(&challenge())
        .unwrap();
    let mut resp = agent()
        .post(format!("{}/token-request", daemon.url))
        .header("Content-Type", "application/private-token-request")
        .send(&pending.request().encode()[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    pending
        .finalize(&resp.body_mut().read_to_vec().unwrap())
        .unwrap();
}

#[test]
fn type_1_and_type_5_tokens_redeem_once_on_both_routes() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let agent = agent();
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        for route in ["/rpc", "/api/redeem"] {
            let url = format!("{}{route}", daemon.url);
            for token in [
                issue_native(&daemon, token_type),
                issue_rpc(&daemon, token_type, false),
            ] {
                let encoded = b64::encode_url(&token.encode());
                let challenge = b64::encode_url(&voprf_challenge(token_type).encode());
                let (status, body) = rpc(
                    &agent,
                    &url,
                    "redeem",
                    json!({"token": encoded, "challenge": challenge}),
                );
                assert_eq!(
                    (status, &body["result"]),
                    (200, &json!("success")),
                    "{body}"
                );
                let (status, body) = rpc(&agent, &url, "redeem", json!({"token": encoded}));
                assert_eq!(status, 403, "{body}");
                assert_eq!(error_code(&body), Some(-32021), "{token_type:?} {route}");
                // The data form: the same spend.
                let (_, body) = rpc(
                    &agent,
                    &url,
                    "redeem",
                    json!({"data": [encoded], "bindings": [challenge], "compressed": false}),
                );
                assert_eq!(error_code(&body), Some(-32021), "{body}");
            }
            // A fresh token through the data form.
            let token = issue_native(&daemon, token_type);
            let (status, body) = rpc(
                &agent,
                &url,
                "redeem",
                json!({"data": [b64::encode_std(&token.encode())], "compressed": false}),
            );
            assert_eq!(
                (status, &body["result"]),
                (200, &json!("success")),
                "{body}"
            );
        }
    }
}

#[test]
fn a_forged_type_1_token_answers_32020_and_an_unknown_type_32022() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let agent = agent();
    let url = format!("{}/rpc", daemon.url);
    let token = issue_native(&daemon, TokenType::VoprfP384);
    let mut forged = token.clone();
    forged.authenticator[0] ^= 1;
    let (status, body) = rpc(
        &agent,
        &url,
        "redeem",
        json!({"token": b64::encode_url(&forged.encode())}),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), Some(-32020));
    // A token under an unknown VOPRF key is forged too.
    let mut unknown = token.clone();
    unknown.token_key_id = [9; 32];
    let (_, body) = rpc(
        &agent,
        &url,
        "redeem",
        json!({"token": b64::encode_url(&unknown.encode())}),
    );
    assert_eq!(error_code(&body), Some(-32020), "{body}");
    // The forgery spent nothing: the real token still redeems once.
    let (status, body) = rpc(
        &agent,
        &url,
        "redeem",
        json!({"token": b64::encode_url(&token.encode())}),
    );
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("success")),
        "{body}"
    );
    // Spent now, and its bytes remembered: the replay is -32021, while the forgery on the same
    // nonce is other bytes, verified in full with the private key again, and still -32020.
    for (bytes, code) in [(token.encode(), -32021), (forged.encode(), -32020)] {
        let (_, body) = rpc(
            &agent,
            &url,
            "redeem",
            json!({"token": b64::encode_url(&bytes)}),
        );
        assert_eq!(error_code(&body), Some(code), "{body}");
    }
    // An unknown token type.
    let mut bytes = token.encode();
    bytes[1] = 0x03;
    let (_, body) = rpc(
        &agent,
        &url,
        "redeem",
        json!({"token": b64::encode_url(&bytes)}),
    );
    assert_eq!(error_code(&body), Some(-32022), "{body}");
}

#[test]
fn demo_runs_the_cycle_for_every_key_type_served() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(["demo", "--url", &daemon.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("token type 0x0001 (VOPRF P-384)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("token type 0x0005 (VOPRF ristretto255)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("7 tokens issued, 7 redeemed, 3 double spend(s) refused"),
        "{stdout}"
    );
}

#[test]
fn metrics_count_keys_by_token_type() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let text = metrics_text(&daemon);
    assert!(
        text.contains("privacypass_keys{state=\"active\"} 3"),
        "{text}"
    );
    for token_type in [1, 2, 5] {
        assert!(
            text.contains(&format!(
                "privacypass_keys_by_type{{token_type=\"{token_type}\",state=\"active\"}} 1"
            )),
            "{text}"
        );
    }
}

#[test]
fn metrics_count_calls_by_token_type() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let url = format!("{}/rpc", daemon.url);
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let token = issue_native(&daemon, token_type);
        let params = json!({"token": b64::encode_url(&token.encode())});
        rpc(&agent(), &url, "redeem", params.clone());
        rpc(&agent(), &url, "redeem", params);
    }
    let text = metrics_text(&daemon);
    for (op, token_type, outcome, n) in [
        ("issue", 1, "success", 1),
        ("issue", 5, "success", 1),
        ("redeem", 1, "success", 1),
        ("redeem", 1, "error", 1),
        ("redeem", 5, "success", 1),
        ("redeem", 5, "error", 1),
        ("redeem", 2, "success", 0),
    ] {
        let line = format!(
            "privacypass_calls_by_type_total{{op=\"{op}\",token_type=\"{token_type}\",outcome=\"{outcome}\"}} {n}"
        );
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}

#[test]
fn type_1_and_type_5_spends_are_shared_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis =
        redis_server::RedisServer::start(&dir.path().join("redis"), redis_server::free_port());
    let keys_dir = dir.path().join("keys");
    three_keys(&keys_dir);
    let store = redis.url();
    let args = [
        "--store",
        store.as_str(),
        "--keys-dir",
        keys_dir.to_str().unwrap(),
    ];
    let first = Daemon::start(&dir.path().join("a"), &args);
    let second = Daemon::start(&dir.path().join("b"), &args);
    let agent = agent();
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let token = issue_native(&first, token_type);
        let params = json!({"token": b64::encode_url(&token.encode())});
        let (status, body) = rpc(
            &agent,
            &format!("{}/api/redeem", first.url),
            "redeem",
            params.clone(),
        );
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("success")),
            "{body}"
        );
        let (status, body) = rpc(
            &agent,
            &format!("{}/api/redeem", second.url),
            "redeem",
            params,
        );
        assert_eq!(status, 403, "{body}");
        assert_eq!(error_code(&body), Some(-32021), "{token_type:?}");
    }
}

#[test]
fn a_voprf_issue_is_replayed_through_an_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path());
    let agent = agent();
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let key = voprf_key(&daemon, token_type);
        let pending = VoprfClient::new(key.clone())
            .request(&voprf_challenge(token_type))
            .unwrap();
        let body = json!({"blinded-token": b64::encode_url(&pending.request().encode()),
                          "key-id": hex::encode(key.token_key_id())});
        let idempotency_key = format!("voprf-issue-{}", token_type.value());
        let send = || {
            let mut resp = agent
                .post(format!("{}/api/v1/privacy-passes", daemon.url))
                .header("Idempotency-Key", &idempotency_key)
                .send_json(&body)
                .unwrap();
            let replayed = resp.headers().contains_key("idempotent-replayed");
            let text = resp.body_mut().read_to_string().unwrap();
            (
                resp.status().as_u16(),
                replayed,
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            )
        };
        let (status, replayed, first) = send();
        assert_eq!((status, replayed), (201, false), "{first}");
        let (status, replayed, again) = send();
        assert_eq!((status, replayed), (201, true), "{again}");
        // The very same TokenResponse (its proof is randomized: a fresh evaluation would differ).
        assert_eq!(first["blind-sig"], again["blind-sig"]);
        let response = b64::decode_any(first["blind-sig"].as_str().unwrap()).unwrap();
        pending.finalize(&response).unwrap();
    }
}

#[test]
fn a_daemon_with_only_a_voprf_key_is_ready_and_generates_no_rsa_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    privacypassd(
        &["keys", "generate", "--type", "voprf-ristretto255"],
        &keys_dir,
    );
    // The helper passes --generate-key-if-missing true: a VOPRF key issuing is enough.
    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys_dir.to_str().unwrap()]);
    let listed = directory(&daemon);
    assert_eq!(listed.token_keys.len(), 1, "{listed:?}");
    assert_eq!(listed.token_keys[0].token_type, 5);
    let mut resp = agent()
        .get(format!("{}/healthz", daemon.url))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["issuing-keys"], 1, "{body}");
    let token = issue_native(&daemon, TokenType::VoprfRistretto255);
    redeem_all(&daemon, &[token]);
}

/// `keys import --type voprf-p384` reads another issuer's P-384 key as PKCS#8 PEM (what
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384` writes); its id is the
/// SHA-256 of the compressed point; the same file is refused for ristretto255.
#[test]
fn keys_import_reads_a_p384_pkcs8_key() {
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let group = EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let compressed = ec
        .public_key()
        .to_bytes(&group, PointConversionForm::COMPRESSED, &mut ctx)
        .unwrap();
    let file = dir.path().join("p384.pem");
    let pem = openssl::pkey::PKey::from_ec_key(ec)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    std::fs::write(&file, &pem).unwrap();
    let out = privacypassd(
        &[
            "keys",
            "import",
            file.to_str().unwrap(),
            "--type",
            "voprf-p384",
        ],
        &keys_dir,
    );
    assert_eq!(
        printed_id(&out),
        hex::encode(privacypass_core::crypto::sha256(&compressed)),
        "{out}"
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args([
            "keys",
            "import",
            file.to_str().unwrap(),
            "--type",
            "voprf-ristretto255",
        ])
        .arg("--keys-dir")
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("voprf-p384 only"), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}

/// A JSON-RPC call with an API key: (HTTP status, `RateLimit-Remaining`, body).
fn rpc_as(
    agent: &ureq::Agent,
    url: &str,
    api_key: &str,
    method: &str,
    params: Value,
) -> (u16, Option<u64>, Value) {
    let mut resp = agent
        .post(url)
        .header("authorization", format!("Bearer {api_key}"))
        .send_json(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .unwrap();
    let remaining = resp
        .headers()
        .get("ratelimit-remaining")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    (resp.status().as_u16(), remaining, body)
}

#[test]
fn rate_limits_count_type_1_and_type_5_calls_like_type_2() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    three_keys(&keys_dir);
    let api_keys = dir.path().join("api-keys");
    std::fs::write(&api_keys, "voprf-rate-limited-key-01\n").unwrap();
    let keys = keys_dir.to_str().unwrap();
    let limited = [
        "--api-keys",
        api_keys.to_str().unwrap(),
        "--rate-limit",
        "4/3600",
    ];
    let daemon = Daemon::start(dir.path(), &[&["--keys-dir", keys][..], &limited].concat());
    // Native issuance has no API key: a second daemon of the same keys bounds it.
    let anonymous = Daemon::start(
        &dir.path().join("anonymous"),
        &["--keys-dir", keys, "--anonymous-issue-limit", "2/3600"],
    );
    clear_of_window_end(3600);
    let agent = agent();
    let url = format!("{}/rpc", daemon.url);
    let key = "voprf-rate-limited-key-01";
    let blinded = |token_type: TokenType| {
        let public = voprf_key(&daemon, token_type);
        let pending = VoprfClient::new(public.clone())
            .request(&voprf_challenge(token_type))
            .unwrap();
        let params = json!({"blinded-token": b64::encode_url(&pending.request().encode()[3..]),
                            "key-id": hex::encode(public.token_key_id())});
        (pending, params)
    };
    // With the API key: an issue of each type and a redeem of each count four calls.
    let mut tokens = Vec::new();
    for (used, token_type) in [TokenType::VoprfP384, TokenType::VoprfRistretto255]
        .into_iter()
        .enumerate()
    {
        let (pending, params) = blinded(token_type);
        let (status, remaining, body) = rpc_as(&agent, &url, key, "issue", params);
        assert_eq!((status, remaining), (200, Some(3 - used as u64)), "{body}");
        let sig = b64::decode_any(body["result"]["blind-sig"].as_str().unwrap()).unwrap();
        tokens.push(pending.finalize(&sig).unwrap());
    }
    for (used, token) in tokens.iter().enumerate() {
        let (status, remaining, body) = rpc_as(&agent, &url, key, "redeem", redeem_params(token));
        assert_eq!((status, remaining), (200, Some(1 - used as u64)), "{body}");
    }
    // Over the limit: refused before any work, a redeem of either type as an issue.
    let (_, params) = blinded(TokenType::VoprfRistretto255);
    let (status, _, body) = rpc_as(&agent, &url, key, "issue", params);
    assert_eq!((status, error_code(&body)), (429, Some(-32034)), "{body}");
    let fresh = issue_native(&anonymous, TokenType::VoprfP384);
    let (status, _, body) = rpc_as(&agent, &url, key, "redeem", redeem_params(&fresh));
    assert_eq!((status, error_code(&body)), (429, Some(-32034)), "{body}");
    // Without a key, native issuance of types 1 and 5 shares the anonymous window of two: the
    // one above was the first, this the second, the next is refused.
    issue_native(&anonymous, TokenType::VoprfRistretto255);
    let client = VoprfClient::new(voprf_key(&anonymous, TokenType::VoprfP384));
    let pending = client
        .request(&voprf_challenge(TokenType::VoprfP384))
        .unwrap();
    let resp = agent
        .post(format!("{}/token-request", anonymous.url))
        .header("Content-Type", "application/private-token-request")
        .send(&pending.request().encode()[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    // The token refused over the limit was not spent: it redeems once, here through the same
    // daemon restarted without limits on the same data directory.
    drop(daemon);
    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys]);
    let (status, body) = rpc(&agent, &url_of(&daemon), "redeem", redeem_params(&fresh));
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("success")),
        "{body}"
    );
    let (status, body) = rpc(&agent, &url_of(&daemon), "redeem", redeem_params(&fresh));
    assert_eq!((status, error_code(&body)), (403, Some(-32021)), "{body}");
}

fn url_of(daemon: &Daemon) -> String {
    format!("{}/rpc", daemon.url)
}
