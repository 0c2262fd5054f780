//! Batched issuance on `/token-request` (draft-ietf-privacypass-batched-tokens): amortized
//! batches of types 1 and 5, generic batches of every type, the limits and answers around them.
//! The real binary on 127.0.0.1, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use privacypass_core::batch::{
    PendingEntry, PendingGenericBatch, AMORTIZED_REQUEST_MEDIA_TYPE, AMORTIZED_RESPONSE_MEDIA_TYPE,
    GENERIC_REQUEST_MEDIA_TYPE, GENERIC_RESPONSE_MEDIA_TYPE,
};
use privacypass_core::{b64, Client, PublicKey, Token, TokenChallenge, TokenType, VoprfClient};
use serde_json::{json, Value};

/// POST `body` to /token-request as `content_type`: (status, Content-Type, body).
fn post(daemon: &Daemon, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut resp = agent()
        .post(format!("{}/token-request", daemon.url))
        .header("Content-Type", content_type)
        .send(body)
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        resp.status().as_u16(),
        ct,
        resp.body_mut().read_to_vec().unwrap(),
    )
}

fn challenge_of(token_type: TokenType) -> TokenChallenge {
    TokenChallenge::new(token_type.value(), b"127.0.0.1", &[5; 32], b"").unwrap()
}

fn rsa_key(daemon: &Daemon) -> std::sync::Arc<PublicKey> {
    let listed = directory(daemon);
    let key = listed
        .token_keys
        .iter()
        .find(|k| k.token_type == 2)
        .unwrap();
    std::sync::Arc::new(PublicKey::from_spki(&key.token_key).unwrap())
}

fn three_key_daemon(dir: &Path, extra: &[&str]) -> Daemon {
    let keys_dir = dir.join("keys");
    three_keys(&keys_dir);
    let args = [&["--keys-dir", keys_dir.to_str().unwrap()][..], extra].concat();
    Daemon::start(dir, &args)
}

#[test]
fn amortized_batches_of_both_voprf_types_issue_and_redeem_once() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &[]);
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let client = VoprfClient::new(voprf_key(&daemon, token_type));
        let pending = client
            .request_amortized(&challenge_of(token_type), 10)
            .unwrap();
        let (status, ct, body) = post(
            &daemon,
            AMORTIZED_REQUEST_MEDIA_TYPE,
            &pending.request().encode(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(ct, AMORTIZED_RESPONSE_MEDIA_TYPE);
        let tokens = pending.finalize(&body).unwrap();
        assert_eq!(tokens.len(), 10);
        redeem_all(&daemon, &tokens);
        let label = format!(
            "privacypass_batch_tokens_total{{kind=\"amortized\",token_type=\"{}\",outcome=\"issued\"}}",
            token_type.value()
        );
        assert_eq!(metric(&daemon, &label), 10, "{label}");
    }
    assert_eq!(
        metric(&daemon, "privacypass_batches_total{kind=\"amortized\"}"),
        2
    );
}

#[test]
fn a_generic_batch_mixes_every_type_and_answers_206_for_what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &[]);
    let entries = |with_unknown_key: bool| {
        let mut entries = Vec::new();
        for i in 0..6 {
            let entry = match i % 3 {
                0 => PendingEntry::BlindRsa(Box::new(
                    Client::new(rsa_key(&daemon))
                        .request(&challenge_of(TokenType::BlindRsa2048))
                        .unwrap(),
                )),
                1 => PendingEntry::Voprf(Box::new(
                    VoprfClient::new(voprf_key(&daemon, TokenType::VoprfP384))
                        .request(&challenge_of(TokenType::VoprfP384))
                        .unwrap(),
                )),
                _ => PendingEntry::Voprf(Box::new(
                    VoprfClient::new(voprf_key(&daemon, TokenType::VoprfRistretto255))
                        .request(&challenge_of(TokenType::VoprfRistretto255))
                        .unwrap(),
                )),
            };
            entries.push(entry);
        }
        let batch = PendingGenericBatch::new(entries);
        let mut request = batch.request().clone();
        if with_unknown_key {
            // The second entry names a P-384 key the daemon does not hold.
            request.token_requests[1].truncated_token_key_id ^= 0x5a;
        }
        (batch, request.encode())
    };
    let (batch, request) = entries(false);
    let (status, ct, body) = post(&daemon, GENERIC_REQUEST_MEDIA_TYPE, &request);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, GENERIC_RESPONSE_MEDIA_TYPE);
    let tokens: Vec<Token> = batch
        .finalize(&body)
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(tokens.len(), 6);
    redeem_all(&daemon, &tokens);

    // One entry refused: 206, that entry absent, the others issued and finalized.
    let (batch, request) = entries(true);
    let (status, _, body) = post(&daemon, GENERIC_REQUEST_MEDIA_TYPE, &request);
    assert_eq!(status, 206, "{}", String::from_utf8_lossy(&body));
    let answered = privacypass_core::batch::GenericBatchTokenResponse::decode(&body, 100).unwrap();
    assert!(answered.token_responses[1].is_none());
    assert_eq!(
        answered
            .token_responses
            .iter()
            .filter(|r| r.is_some())
            .count(),
        5
    );
    // The client finalizes the five answered entries (its own request named the right key, so
    // the answered ones finalize; the refused one is None).
    let finalized = batch.finalize(&body).unwrap();
    assert!(finalized[1].is_none());
    assert_eq!(finalized.iter().filter(|t| t.is_some()).count(), 5);
    let label =
        "privacypass_batch_tokens_total{kind=\"generic\",token_type=\"1\",outcome=\"refused\"}";
    assert_eq!(metric(&daemon, label), 1);

    // Nothing issuable: 400.
    let rsa = Client::new(rsa_key(&daemon))
        .request(&challenge_of(TokenType::BlindRsa2048))
        .unwrap();
    let mut only = PendingGenericBatch::new(vec![PendingEntry::BlindRsa(Box::new(rsa))])
        .request()
        .clone();
    only.token_requests[0].truncated_token_key_id ^= 0x5a;
    let (status, _, _) = post(&daemon, GENERIC_REQUEST_MEDIA_TYPE, &only.encode());
    assert_eq!(status, 400);
}

#[test]
fn limits_media_types_and_malformed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &["--max-batch-tokens", "8"]);
    let client = VoprfClient::new(voprf_key(&daemon, TokenType::VoprfRistretto255));
    let challenge = challenge_of(TokenType::VoprfRistretto255);
    let nine = client.request_amortized(&challenge, 9).unwrap();
    let issued_before = metric(&daemon, "privacypass_calls_total{op=\"issue\",code=\"0\"}");
    // Over the limit: 413 before any evaluation.
    let (status, _, body) = post(
        &daemon,
        AMORTIZED_REQUEST_MEDIA_TYPE,
        &nine.request().encode(),
    );
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("more than 8 tokens"));
    assert_eq!(
        metric(&daemon, "privacypass_calls_total{op=\"issue\",code=\"0\"}"),
        issued_before,
        "nothing was issued"
    );
    // Exactly the limit: served.
    let eight = client.request_amortized(&challenge, 8).unwrap();
    let (status, _, body) = post(
        &daemon,
        AMORTIZED_REQUEST_MEDIA_TYPE,
        &eight.request().encode(),
    );
    assert_eq!(status, 200);
    assert_eq!(eight.finalize(&body).unwrap().len(), 8);
    // Another media type: 415; a batch under the single request's media type is a malformed
    // single request; truncated or of type 2: 422.
    let request = eight.request().encode();
    let (status, _, _) = post(&daemon, "application/octet-stream", &request);
    assert_eq!(status, 415);
    let (status, _, _) = post(&daemon, "application/private-token-request", &request);
    assert_eq!(status, 422);
    for bad in [&request[..request.len() - 1], &[0, 2, 0, 0][..], &[][..]] {
        let (status, _, body) = post(&daemon, AMORTIZED_REQUEST_MEDIA_TYPE, bad);
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
        let (status, _, _) = post(&daemon, GENERIC_REQUEST_MEDIA_TYPE, bad);
        assert_eq!(status, 422);
    }
    // The media type's parameters and case do not matter.
    let (status, _, _) = post(
        &daemon,
        "Application/Private-Token-Amortized-Batch-Request; charset=binary",
        &client
            .request_amortized(&challenge, 1)
            .unwrap()
            .request()
            .encode(),
    );
    assert_eq!(status, 200);
}

#[test]
fn rate_limits_count_the_tokens_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &["--anonymous-issue-limit", "12/3600"]);
    clear_of_window_end(3600);
    let client = VoprfClient::new(voprf_key(&daemon, TokenType::VoprfP384));
    let challenge = challenge_of(TokenType::VoprfP384);
    let ten = client.request_amortized(&challenge, 10).unwrap();
    assert_eq!(
        post(
            &daemon,
            AMORTIZED_REQUEST_MEDIA_TYPE,
            &ten.request().encode()
        )
        .0,
        200
    );
    // Ten of twelve used: a batch of two fills the window, and then a batch of one is over it.
    let two = client.request_amortized(&challenge, 2).unwrap();
    assert_eq!(
        post(
            &daemon,
            AMORTIZED_REQUEST_MEDIA_TYPE,
            &two.request().encode()
        )
        .0,
        200
    );
    let one = client.request_amortized(&challenge, 1).unwrap();
    assert_eq!(
        post(
            &daemon,
            AMORTIZED_REQUEST_MEDIA_TYPE,
            &one.request().encode()
        )
        .0,
        429
    );
}

#[test]
fn an_idempotency_key_covers_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &[]);
    let client = VoprfClient::new(voprf_key(&daemon, TokenType::VoprfRistretto255));
    let pending = client
        .request_amortized(&challenge_of(TokenType::VoprfRistretto255), 5)
        .unwrap();
    let send = || {
        let mut resp = agent()
            .post(format!("{}/token-request", daemon.url))
            .header("Content-Type", AMORTIZED_REQUEST_MEDIA_TYPE)
            .header("Idempotency-Key", "batch-0001")
            .send(&pending.request().encode()[..])
            .unwrap();
        (
            resp.status().as_u16(),
            resp.headers().get("idempotent-replayed").is_some(),
            resp.body_mut().read_to_vec().unwrap(),
        )
    };
    let (status, replayed, first) = send();
    assert_eq!((status, replayed), (200, false));
    let (status, replayed, again) = send();
    assert_eq!((status, replayed), (200, true));
    // The same response, proof included: the batch was evaluated once.
    assert_eq!(first, again);
    assert_eq!(pending.finalize(&again).unwrap().len(), 5);
}

/// A generic batch of 64 type-2 requests signs on both cores: it finishes in less than 64
/// single signatures' time measured in the same run (a ratio of two measurements side by side,
/// with a wide margin: two cores make it about half).
#[test]
fn a_generic_batch_of_rsa_requests_signs_on_both_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &["--max-batch-tokens", "64"]);
    let client = Client::new(rsa_key(&daemon));
    let challenge = challenge_of(TokenType::BlindRsa2048);
    let single = || client.request(&challenge).unwrap().request().encode();
    // Warm up, then 64 single requests one after the other, then one batch of 64.
    for _ in 0..4 {
        assert_eq!(
            post(&daemon, "application/private-token-request", &single()).0,
            200
        );
    }
    let requests: Vec<Vec<u8>> = (0..64).map(|_| single()).collect();
    let started = Instant::now();
    for r in &requests {
        assert_eq!(post(&daemon, "application/private-token-request", r).0, 200);
    }
    let singles = started.elapsed();
    let entries: Vec<PendingEntry> = (0..64)
        .map(|_| PendingEntry::BlindRsa(Box::new(client.request(&challenge).unwrap())))
        .collect();
    let batch = PendingGenericBatch::new(entries);
    let started = Instant::now();
    let (status, _, body) = post(
        &daemon,
        GENERIC_REQUEST_MEDIA_TYPE,
        &batch.request().encode(),
    );
    let batched = started.elapsed();
    assert_eq!(status, 200);
    let tokens = batch.finalize(&body).unwrap();
    assert!(tokens.iter().all(Option::is_some));
    // Each token was verified by the client; the daemon redeems each once.
    let tokens: Vec<Token> = tokens.into_iter().flatten().collect();
    redeem_all(&daemon, &tokens);
    eprintln!("64 single issues: {singles:?}; one batch of 64: {batched:?}; {cores} cores");
    assert!(
        batched < singles.mul_f64(0.8),
        "a batch of 64 took {batched:?}, 64 single requests {singles:?} ({cores} cores)"
    );
}

/// POST a JSON body with optional headers: (status, body).
fn post_with(daemon: &Daemon, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = agent()
        .post(format!("{}{path}", daemon.url))
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut resp = req.send(body.to_string().as_bytes()).unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap(),
    )
}

fn issue_rpc(daemon: &Daemon, params: Value) -> (u16, Value) {
    rpc(&agent(), &format!("{}/rpc", daemon.url), "issue", params)
}

fn token_key_id(daemon: &Daemon, token_type: TokenType) -> String {
    match token_type {
        TokenType::BlindRsa2048 => hex::encode(rsa_key(daemon).token_key_id()),
        voprf => hex::encode(voprf_key(daemon, voprf).token_key_id()),
    }
}

/// Successful issue calls and the tokens batches issued: what a refused call leaves alone.
fn issued_tokens(daemon: &Daemon) -> u64 {
    let batched: u64 = ["amortized", "generic"]
        .iter()
        .flat_map(|k| ["1", "2", "5"].map(|t| (k, t)))
        .map(|(k, t)| {
            metric(
                daemon,
                &format!("privacypass_batch_tokens_total{{kind=\"{k}\",token_type=\"{t}\",outcome=\"issued\"}}"),
            )
        })
        .sum();
    batched + metric(daemon, "privacypass_calls_total{op=\"issue\",code=\"0\"}")
}

#[test]
fn json_rpc_and_rest_issue_one_key_batches_of_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &[]);
    // Type 2 through JSON-RPC: `blind-sigs`, one TokenResponse per entry, in order.
    let client = Client::new(rsa_key(&daemon));
    let challenge = challenge_of(TokenType::BlindRsa2048);
    let pending: Vec<_> = (0..4)
        .map(|_| client.request(&challenge).unwrap())
        .collect();
    let blinded: Vec<String> = pending
        .iter()
        .map(|p| b64::encode_url(&p.request().encode()))
        .collect();
    let key_id = token_key_id(&daemon, TokenType::BlindRsa2048);
    let (status, body) = issue_rpc(
        &daemon,
        json!({"blinded-tokens": blinded, "key-id": key_id}),
    );
    assert_eq!(status, 200, "{body}");
    let sigs = body["result"]["blind-sigs"].as_array().unwrap();
    assert_eq!(sigs.len(), 4);
    let tokens: Vec<Token> = pending
        .iter()
        .zip(sigs)
        .map(|(p, s)| {
            p.finalize(&b64::decode_url(s.as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect();
    redeem_all(&daemon, &tokens);
    assert_eq!(
        metric(
            &daemon,
            "privacypass_batch_tokens_total{kind=\"generic\",token_type=\"2\",outcome=\"issued\"}"
        ),
        4
    );

    // Types 5 (JSON-RPC, bare elements) and 1 (REST, camel case, whole TokenRequests): one
    // proof for the batch, `blind-sig` the AmortizedBatchTokenResponse.
    for (token_type, rest) in [
        (TokenType::VoprfRistretto255, false),
        (TokenType::VoprfP384, true),
    ] {
        let key = voprf_key(&daemon, token_type);
        let pending = VoprfClient::new(key.clone())
            .request_amortized(&challenge_of(token_type), 7)
            .unwrap();
        let request = pending.request();
        let entries: Vec<String> = request
            .blinded_msgs
            .iter()
            .map(|m| {
                if rest {
                    let prefix = [
                        &token_type.value().to_be_bytes()[..],
                        &[key.truncated_token_key_id()],
                    ]
                    .concat();
                    b64::encode_url(&[&prefix[..], m].concat())
                } else {
                    b64::encode_url(m)
                }
            })
            .collect();
        let key_id = hex::encode(key.token_key_id());
        let (status, body) = if rest {
            post_with(
                &daemon,
                "/api/v1/privacy-passes",
                &json!({"blindedTokens": entries, "keyId": key_id}),
                &[],
            )
        } else {
            let (status, body) = issue_rpc(
                &daemon,
                json!({"blinded-tokens": entries, "key-id": key_id}),
            );
            (status, body["result"].clone())
        };
        assert_eq!(status, if rest { 201 } else { 200 }, "{body}");
        let response = b64::decode_url(body["blind-sig"].as_str().unwrap()).unwrap();
        // Seven elements and one proof: the amortized layout.
        let tokens = pending.finalize(&response).unwrap();
        assert_eq!(tokens.len(), 7);
        redeem_all(&daemon, &tokens);
        let label = format!(
            "privacypass_batch_tokens_total{{kind=\"amortized\",token_type=\"{}\",outcome=\"issued\"}}",
            token_type.value()
        );
        assert_eq!(metric(&daemon, &label), 7, "{label}");
    }

    // A wrong entry refuses the whole call, naming the entry; nothing is issued.
    let before = issued_tokens(&daemon);
    let mut bad = blinded.clone();
    bad[2] = b64::encode_url(&[7; 12]);
    let (status, body) = issue_rpc(&daemon, json!({"blinded-tokens": bad, "key-id": key_id}));
    assert_eq!((status, error_code(&body)), (422, Some(-32024)), "{body}");
    let detail = body["error"]["data"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("blinded-tokens[2]: "), "{detail}");
    let ristretto = token_key_id(&daemon, TokenType::VoprfRistretto255);
    let (status, body) = issue_rpc(
        &daemon,
        json!({"blinded-tokens": ["AAAA", "!!"], "key-id": ristretto}),
    );
    assert_eq!((status, error_code(&body)), (422, Some(-32024)), "{body}");
    assert!(body["error"]["data"]["detail"]
        .as_str()
        .unwrap()
        .starts_with("blinded-tokens[1]: "));
    assert_eq!(issued_tokens(&daemon), before, "nothing was issued");
    // Params that name no single form: -32602.
    for params in [
        json!({"blinded-tokens": [], "key-id": key_id}),
        json!({"blinded-tokens": blinded, "blinded-token": blinded[0], "key-id": key_id}),
        json!({"blinded-tokens": blinded}),
        json!({"batch": [], "key-id": key_id}),
        json!({}),
    ] {
        let (status, body) = issue_rpc(&daemon, params.clone());
        assert_eq!(
            (status, error_code(&body)),
            (400, Some(-32602)),
            "{params}: {body}"
        );
    }
}

#[test]
fn json_rpc_and_rest_generic_batches_answer_each_entry() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(dir.path(), &[]);
    let rsa = Client::new(rsa_key(&daemon));
    let p384 = VoprfClient::new(voprf_key(&daemon, TokenType::VoprfP384));
    let r255 = VoprfClient::new(voprf_key(&daemon, TokenType::VoprfRistretto255));
    let entries = || {
        let a = rsa.request(&challenge_of(TokenType::BlindRsa2048)).unwrap();
        let b = p384.request(&challenge_of(TokenType::VoprfP384)).unwrap();
        let c = r255
            .request(&challenge_of(TokenType::VoprfRistretto255))
            .unwrap();
        let params = json!([
            {"blinded-token": b64::encode_url(&a.request().encode()), "key-id": token_key_id(&daemon, TokenType::BlindRsa2048)},
            {"blinded-token": b64::encode_url(&b.request().encode()), "key-id": token_key_id(&daemon, TokenType::VoprfP384)},
            {"blinded-token": "%%%", "key-id": token_key_id(&daemon, TokenType::VoprfP384)},
            {"blinded-token": b64::encode_url(&c.request().encode()), "key-id": "00".repeat(32)},
            {"blinded-token": b64::encode_url(&c.request().encode()), "key-id": token_key_id(&daemon, TokenType::VoprfRistretto255)},
        ]);
        (a, b, c, params)
    };
    for rest in [false, true] {
        let (a, b, c, batch) = entries();
        let (status, result) = if rest {
            post_with(
                &daemon,
                "/api/v1/privacy-passes",
                &json!({ "batch": batch }),
                &[],
            )
        } else {
            let (status, body) = issue_rpc(&daemon, json!({ "batch": batch }));
            (status, body["result"].clone())
        };
        // REST answers 206 for a batch with a refused entry, as /token-request does.
        assert_eq!(status, if rest { 206 } else { 200 }, "{result}");
        let answers = result["batch"].as_array().unwrap();
        assert_eq!(answers.len(), 5, "{result}");
        assert_eq!(answers[2]["error"]["code"], -32024, "{result}");
        assert_eq!(answers[3]["error"]["code"], -32023, "{result}");
        let sig = |i: usize| b64::decode_url(answers[i]["blind-sig"].as_str().unwrap()).unwrap();
        let tokens = vec![
            a.finalize(&sig(0)).unwrap(),
            b.finalize(&sig(1)).unwrap(),
            c.finalize(&sig(4)).unwrap(),
        ];
        redeem_all(&daemon, &tokens);
    }
    assert_eq!(
        metric(
            &daemon,
            "privacypass_batch_tokens_total{kind=\"generic\",token_type=\"1\",outcome=\"refused\"}"
        ),
        2,
        "the bad base64 entry of each batch, counted by its key's type"
    );
    // An Idempotency-Key covers the whole batch: the replay is the same answer.
    let (_, _, _, batch) = entries();
    let send = || {
        post_with(
            &daemon,
            "/api/v1/privacy-passes",
            &json!({ "batch": batch }),
            &[("Idempotency-Key", "json-batch-1")],
        )
    };
    let first = send();
    assert_eq!(first.0, 206);
    assert_eq!(send(), first);
}

#[test]
fn json_batches_are_bounded_and_count_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = three_key_daemon(
        dir.path(),
        &[
            "--max-batch-tokens",
            "8",
            "--anonymous-issue-limit",
            "12/3600",
        ],
    );
    clear_of_window_end(3600);
    let key = voprf_key(&daemon, TokenType::VoprfRistretto255);
    let key_id = hex::encode(key.token_key_id());
    let elements = |n: usize| -> Vec<String> {
        let pending = VoprfClient::new(key.clone())
            .request_amortized(&challenge_of(TokenType::VoprfRistretto255), n)
            .unwrap();
        pending
            .request()
            .blinded_msgs
            .iter()
            .map(|m| b64::encode_url(m))
            .collect()
    };
    // Nine tokens: 413 / -32042 before anything is evaluated or counted, in either form and
    // on either route.
    let nine = elements(9);
    let (status, body) = issue_rpc(&daemon, json!({"blinded-tokens": nine, "key-id": key_id}));
    assert_eq!((status, error_code(&body)), (413, Some(-32042)), "{body}");
    let entries: Vec<Value> = nine
        .iter()
        .map(|e| json!({"blinded-token": e, "key-id": key_id}))
        .collect();
    let (status, body) = issue_rpc(&daemon, json!({ "batch": entries }));
    assert_eq!((status, error_code(&body)), (413, Some(-32042)), "{body}");
    let (status, body) = post_with(
        &daemon,
        "/api/v1/privacy-passes",
        &json!({"blinded-tokens": nine, "key-id": key_id}),
        &[],
    );
    assert_eq!(status, 413, "{body}");
    // Eight, then four of the twelve the window allows: the third batch is over it.
    let (status, body) = issue_rpc(
        &daemon,
        json!({"blinded-tokens": elements(8), "key-id": key_id}),
    );
    assert_eq!(status, 200, "{body}");
    let four: Vec<Value> = elements(4)
        .iter()
        .map(|e| json!({"blinded-token": e, "key-id": key_id}))
        .collect();
    let (status, body) = issue_rpc(&daemon, json!({ "batch": four }));
    assert_eq!(status, 200, "{body}");
    let (status, body) = issue_rpc(
        &daemon,
        json!({"blinded-tokens": elements(1), "key-id": key_id}),
    );
    assert_eq!((status, error_code(&body)), (429, Some(-32034)), "{body}");
}
