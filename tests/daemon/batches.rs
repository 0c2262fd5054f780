//! Batched issuance on `/token-request` (draft-ietf-privacypass-batched-tokens): amortized
//! batches of types 1 and 5, generic batches of every type, the limits and answers around them.
//! The real binary on 127.0.0.1, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use privacypass::batch::{
    PendingEntry, PendingGenericBatch, AMORTIZED_REQUEST_MEDIA_TYPE, AMORTIZED_RESPONSE_MEDIA_TYPE,
    GENERIC_REQUEST_MEDIA_TYPE, GENERIC_RESPONSE_MEDIA_TYPE,
};
use privacypass::{b64, Client, PublicKey, Token, TokenChallenge, TokenType, VoprfClient};
use serde_json::json;

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

/// Redeems each token once through JSON-RPC: every one succeeds.
fn redeem_all(daemon: &Daemon, tokens: &[Token]) {
    for token in tokens {
        let (status, body) = rpc(
            &agent(),
            &format!("{}/rpc", daemon.url),
            "redeem",
            json!({"token": b64::encode_url(&token.encode())}),
        );
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("success")),
            "{body}"
        );
    }
}

fn metric(daemon: &Daemon, line_start: &str) -> u64 {
    let text = agent()
        .get(format!("{}/metrics", daemon.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
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
    let answered = privacypass::batch::GenericBatchTokenResponse::decode(&body, 100).unwrap();
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
