//! JSON-RPC over WebSocket on /rpc and /api/redeem, against the real daemon: issuance and
//! redemption with the codes of the table, notifications, batches, the message and connection
//! bounds, API keys and rate limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use privacypass_core::{b64, Client, PublicKey};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(daemon: &Daemon, path: &str) -> String {
    format!("{}{path}", daemon.url.replacen("http://", "ws://", 1))
}

/// Opens a WebSocket, with `Authorization: Bearer <key>` when given; the HTTP status of a
/// refused upgrade otherwise.
async fn connect(url: &str, key: Option<&str>) -> Result<Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    if let Some(key) = key {
        req.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("WebSocket connect failed: {e}"),
    }
}

/// The next message, as JSON.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("an answer within 30 s")
            .expect("an open connection")
            .expect("a message");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("not a text message: {other:?}"),
        }
    }
}

async fn call(ws: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    ws.send(Message::text(body.to_string())).await.unwrap();
    let answer = next(ws).await;
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

/// The close frame's code, once the daemon closes the connection.
async fn closed_with(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("closed within 30 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

fn directory_key(daemon: &Daemon) -> PublicKey {
    let mut resp = agent()
        .get(format!(
            "{}/.well-known/private-token-issuer-directory",
            daemon.url
        ))
        .call()
        .unwrap();
    let dir: Value = resp.body_mut().read_json().unwrap();
    let spki = b64::decode_url(dir["token-keys"][0]["token-key"].as_str().unwrap()).unwrap();
    PublicKey::from_spki(&spki).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_and_redeems_over_a_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let key = directory_key(&daemon);
    let key_id = hex::encode(key.token_key_id());
    let client = Client::new(key.into());
    let mut ws = connect(&ws_url(&daemon, "/rpc"), None).await.unwrap();

    // Issue on one connection, several calls in turn.
    let mut tokens = Vec::new();
    for id in 1..=3 {
        let pending = client.request(&challenge()).unwrap();
        let blinded = b64::encode_url(&pending.request().encode());
        let answer = call(
            &mut ws,
            id,
            "issue",
            json!({"blinded-token": blinded, "key-id": key_id}),
        )
        .await;
        let sig = b64::decode_url(answer["result"]["blind-sig"].as_str().unwrap()).unwrap();
        tokens.push(pending.finalize(&sig).unwrap());
    }

    // Redeem: once, and never twice, on this connection or over HTTP.
    let answer = call(&mut ws, 4, "redeem", redeem_params(&tokens[0])).await;
    assert_eq!(answer["result"], "success", "{answer}");
    let answer = call(&mut ws, 5, "redeem", redeem_params(&tokens[0])).await;
    assert_eq!(error_code(&answer), Some(-32021), "{answer}");
    let (status, body) = rpc(
        &agent(),
        &format!("{}/api/redeem", daemon.url),
        "redeem",
        redeem_params(&tokens[0]),
    );
    assert_eq!((status, error_code(&body)), (403, Some(-32021)));

    // A notification gets no answer: the next message is the answer to the call after it.
    let notification =
        json!({"jsonrpc": "2.0", "method": "redeem", "params": redeem_params(&tokens[1])});
    ws.send(Message::text(notification.to_string()))
        .await
        .unwrap();
    let answer = call(&mut ws, 6, "redeem", redeem_params(&tokens[1])).await;
    assert_eq!(
        error_code(&answer),
        Some(-32021),
        "the notification spent it: {answer}"
    );

    // A batch is answered as one message, in order.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 7, "method": "redeem", "params": redeem_params(&tokens[2])},
        {"jsonrpc": "2.0", "id": 8, "method": "redeem", "params": redeem_params(&tokens[2])},
        {"jsonrpc": "2.0", "id": 9, "method": "nope"},
    ]);
    ws.send(Message::text(batch.to_string())).await.unwrap();
    let answers = next(&mut ws).await;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["result"], "success");
    assert_eq!(error_code(&answers[1]), Some(-32021));
    assert_eq!(error_code(&answers[2]), Some(-32601));

    // The codes of a POST body: not JSON, not a request, params of the wrong type.
    ws.send(Message::text("{")).await.unwrap();
    assert_eq!(error_code(&next(&mut ws).await), Some(-32700));
    ws.send(Message::text("[]")).await.unwrap();
    assert_eq!(error_code(&next(&mut ws).await), Some(-32600));
    let answer = call(&mut ws, 10, "redeem", json!({"token": 7})).await;
    assert_eq!(error_code(&answer), Some(-32602), "{answer}");
    // rpc.discover names the methods.
    let answer = call(&mut ws, 11, "rpc.discover", json!({})).await;
    assert!(answer["result"]["methods"].is_array(), "{answer}");

    // /api/redeem redeems and does not issue.
    let mut redeem_ws = connect(&ws_url(&daemon, "/api/redeem"), None)
        .await
        .unwrap();
    let pending = client.request(&challenge()).unwrap();
    let blinded = b64::encode_url(&pending.request().encode());
    let answer = call(
        &mut redeem_ws,
        1,
        "issue",
        json!({"blinded-token": blinded, "key-id": key_id}),
    )
    .await;
    assert_eq!(error_code(&answer), Some(-32040), "{answer}");
    let minter = Minter::new(daemon.issuer_key());
    let answer = call(&mut redeem_ws, 2, "redeem", redeem_params(&minter.token())).await;
    assert_eq!(answer["result"], "success", "{answer}");

    // A GET that is no upgrade is still refused as before.
    let resp = agent().get(format!("{}/rpc", daemon.url)).call().unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");

    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &[
            "--max-body-bytes",
            "4096",
            "--max-batch",
            "2",
            "--max-websockets",
            "1",
        ],
    );
    let url = ws_url(&daemon, "/rpc");
    let minter = Minter::new(daemon.issuer_key());
    let mut ws = connect(&url, None).await.unwrap();

    // One connection is the most: another is refused while it is open.
    assert_eq!(connect(&url, None).await.err(), Some(429));

    // A batch over --max-batch is refused before any call runs; the connection stays.
    let token = minter.token();
    let call_of = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "redeem", "params": redeem_params(&token)});
    let batch = json!([call_of(1), call_of(2), call_of(3)]);
    ws.send(Message::text(batch.to_string())).await.unwrap();
    let answer = next(&mut ws).await;
    assert_eq!(error_code(&answer), Some(-32042), "{answer}");
    let detail = answer["error"]["data"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("batch of 3 calls"), "{answer}");
    let answer = call(&mut ws, 4, "redeem", redeem_params(&token)).await;
    assert_eq!(
        answer["result"], "success",
        "no call of the refused batch ran: {answer}"
    );

    // A message over --max-body-bytes is answered -32042, and the connection closed (1009).
    let large = json!({"jsonrpc": "2.0", "id": 5, "method": "redeem", "params": {"token": "A".repeat(5000)}});
    ws.send(Message::text(large.to_string())).await.unwrap();
    let answer = next(&mut ws).await;
    assert_eq!(error_code(&answer), Some(-32042), "{answer}");
    let detail = answer["error"]["data"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("message of"), "{answer}");
    assert_eq!(closed_with(&mut ws).await, Some(CloseCode::Size));

    // Its place is free again.
    let mut again = None;
    for _ in 0..50 {
        match connect(&url, None).await {
            Ok(ws) => {
                again = Some(ws);
                break;
            }
            Err(429) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(status) => panic!("upgrade refused with {status}"),
        }
    }
    let mut again = again.expect("a connection once the first closed");
    let answer = call(&mut again, 6, "redeem", redeem_params(&token)).await;
    assert_eq!(error_code(&answer), Some(-32021), "{answer}");

    // A stopping daemon closes its WebSockets as going away (1001), and exits.
    let mut daemon = daemon;
    daemon.signal("TERM");
    assert_eq!(closed_with(&mut again).await, Some(CloseCode::Away));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_rate_limits_hold_over_a_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("api-keys");
    let full = "websocket-test-key-may-do-all";
    let redeemer = "websocket-test-key-redeems-only";
    std::fs::write(&keys_file, format!("{full}\n{redeemer} methods=redeem\n")).unwrap();
    clear_of_window_end(3600);
    let daemon = Daemon::start(
        &dir.path().join("data"),
        &[
            "--api-keys",
            keys_file.to_str().unwrap(),
            "--redeem-auth",
            "--rate-limit",
            "3/3600",
        ],
    );
    let url = ws_url(&daemon, "/rpc");
    let key = directory_key(&daemon);
    let key_id = hex::encode(key.token_key_id());
    let client = Client::new(key.into());

    // The upgrade needs a key, as a POST does.
    assert_eq!(connect(&url, None).await.err(), Some(401));
    assert_eq!(connect(&url, Some("not-a-key")).await.err(), Some(401));

    // A key's methods hold on every message.
    let mut redeem_ws = connect(&url, Some(redeemer)).await.unwrap();
    let pending = client.request(&challenge()).unwrap();
    let blinded = b64::encode_url(&pending.request().encode());
    let issue = json!({"blinded-token": blinded, "key-id": key_id});
    let answer = call(&mut redeem_ws, 1, "issue", issue.clone()).await;
    assert_eq!(error_code(&answer), Some(-32031), "{answer}");

    // The upgrade and each call count against the key's window: 3 of them, then -32034 for
    // every message, and no call of it runs.
    let mut ws = connect(&url, Some(full)).await.unwrap();
    let answer = call(&mut ws, 2, "issue", issue.clone()).await;
    assert!(answer["result"]["blind-sig"].is_string(), "{answer}");
    let minter = Minter::new(daemon.issuer_key());
    let answer = call(&mut ws, 3, "redeem", redeem_params(&minter.token())).await;
    assert_eq!(answer["result"], "success", "{answer}");
    let token = minter.token();
    ws.send(Message::text(
        json!({"jsonrpc": "2.0", "id": 4, "method": "redeem", "params": redeem_params(&token)})
            .to_string(),
    ))
    .await
    .unwrap();
    let answer = next(&mut ws).await;
    assert_eq!(error_code(&answer), Some(-32034), "{answer}");
    // Another key's window is its own; the refused call did not spend the token.
    let answer = call(&mut redeem_ws, 5, "redeem", redeem_params(&token)).await;
    assert_eq!(answer["result"], "success", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &["--idle-timeout", "1"]);
    let mut ws = connect(&ws_url(&daemon, "/rpc"), None).await.unwrap();
    let started = std::time::Instant::now();
    let _ = closed_with(&mut ws).await;
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(10),
        "closed after {idle:?}"
    );
}
