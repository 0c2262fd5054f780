//! JSON-RPC over WebSocket on the JSON-RPC routes (`GET` with `Upgrade: websocket` on `/rpc`
//! and `/api/redeem`).
//!
//! The upgrade request passes the checks of an HTTP request's headers (`Persona-Version`,
//! `Key-Inflection`, the API key where the route requires one); a refused upgrade is answered
//! over HTTP as a refused call would be. Each text (or binary) message is then one JSON-RPC
//! body, answered by the same envelope and methods as a POST body: bounded by
//! `--max-body-bytes` (a larger message is answered -32042 and the connection closed with
//! 1009) and `--max-batch`, its calls counted against the caller's rate limit, each error the
//! code of the table. A message of notifications only gets no answer. At most
//! `--max-websockets` connections are open; one more is refused (429, -32034). A connection
//! that sends nothing for `--idle-timeout` is closed, and a stopping daemon closes them all
//! (1001) once their message in flight is answered.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Body;
use hyper::header::{
    HeaderMap, HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use privacypass_core::ErrorCode;
use privacypass_rpc::jsonrpsee::core::server::Methods;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info};

use crate::app::App;
use crate::auth::{ApiKey, Caller};
use crate::error::ApiError;
use crate::guard::{self, Admitted, Form, Parsed};
use crate::http::{respond, Resp};
use crate::jsonrpc::{self, Calls};

/// Whether a request asks to become a WebSocket (RFC 6455 §4.2.1: a GET with `Upgrade:
/// websocket` and `Connection: upgrade`).
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has_token = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.method() == Method::GET
        && has_token(UPGRADE, "websocket")
        && has_token(CONNECTION, "upgrade")
}

/// The open WebSocket connections: their cap, and the signal that closes them when the daemon
/// stops.
#[derive(Clone, Debug)]
pub struct Hub {
    permits: Arc<Semaphore>,
    max: usize,
    stop: watch::Sender<bool>,
}

impl Hub {
    pub fn new(max: usize) -> Hub {
        Hub {
            permits: Arc::new(Semaphore::new(max)),
            max,
            stop: watch::channel(false).0,
        }
    }

    /// Asks every connection to close once its message in flight is answered, and waits (at
    /// most `timeout`) until they have.
    pub async fn close_all(&self, timeout: std::time::Duration) -> bool {
        self.stop.send_replace(true);
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.permits.acquire_many(all))
            .await
            .is_ok()
    }

    /// Answers an upgrade request of a JSON-RPC route, admitted as every API request is (its
    /// headers and API key): 101 and a connection served with `methods`, or the refusal.
    pub fn upgrade<B>(
        &self,
        app: &Arc<App>,
        mut req: Request<B>,
        form: Form,
        methods: &Methods,
    ) -> Resp
    where
        B: Body,
    {
        let (caller, proxied, permit, accept) = match self.accept(&mut req) {
            Ok(accepted) => accepted,
            Err(e) => return form.error(&e),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let session = Session {
            app: app.clone(),
            methods: methods.clone(),
            form,
            caller,
            proxied,
        };
        let stop = self.stop.subscribe();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config(session.app.settings.max_body_bytes)),
                    )
                    .await;
                    session.run(ws, stop).await;
                }
                Err(e) => debug!(error = %e, "WebSocket upgrade not completed"),
            }
            drop(permit);
        });
        switching_protocols(&accept)
    }

    /// The checks of an upgrade after its admission: the handshake's headers and a free
    /// connection.
    #[allow(clippy::type_complexity)]
    fn accept<B>(
        &self,
        req: &mut Request<B>,
    ) -> Result<(Caller, bool, OwnedSemaphorePermit, String), ApiError> {
        let admitted = req.extensions_mut().remove::<Admitted>().ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "an upgrade that was not admitted")
        })?;
        let accept = handshake_accept(req.headers())?;
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{} WebSocket connections are open, the most this daemon serves; retry later or use HTTP",
                    self.max
                ),
            )
        })?;
        let caller = Caller {
            key: admitted.key,
            case: admitted.case,
        };
        Ok((caller, admitted.proxied, permit, accept))
    }
}

/// `Sec-WebSocket-Accept` of a handshake, or why it is refused.
fn handshake_accept(headers: &HeaderMap) -> Result<String, ApiError> {
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "WebSocket upgrade without Sec-WebSocket-Version: 13",
        ));
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "WebSocket upgrade without Sec-WebSocket-Key",
            )
        })?;
    Ok(derive_accept_key(key))
}

fn switching_protocols(accept: &str) -> Resp {
    let mut resp = respond(StatusCode::SWITCHING_PROTOCOLS, "application/json", "");
    let headers = resp.headers_mut();
    headers.remove(hyper::header::CONTENT_TYPE);
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// A connection's limits: its largest message (and frame) is the largest request body.
fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// One connection: who it is, and what its messages are answered with.
struct Session {
    app: Arc<App>,
    methods: Methods,
    form: Form,
    caller: Caller,
    proxied: bool,
}

impl Session {
    async fn run<S>(self, mut ws: WebSocketStream<S>, mut stop: watch::Receiver<bool>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let close = |code: CloseCode, reason: &'static str| {
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        };
        loop {
            let message = tokio::select! {
                m = ws.next() => m,
                _ = stopping(&mut stop) => {
                    let _ = ws.send(close(CloseCode::Away, "the daemon is stopping")).await;
                    break;
                }
            };
            let body: Bytes = match message {
                Some(Ok(Message::Text(text))) => Bytes::from(text),
                Some(Ok(Message::Binary(bytes))) => bytes,
                // Pings are answered by the next read or write; pongs and frames need nothing.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    let e = ApiError::new(
                        ErrorCode::TooLarge,
                        format!("message of {size} bytes; at most {max_size} are allowed"),
                    );
                    let _ = ws.send(Message::text(refusal(&e))).await;
                    let _ = ws.send(close(CloseCode::Size, "message too large")).await;
                    break;
                }
                Some(Err(e)) => {
                    debug!(error = %e, "WebSocket connection failed");
                    break;
                }
            };
            let Some(answer) = self.answer(&body).await else {
                continue;
            };
            if ws.send(Message::text(answer)).await.is_err() {
                break;
            }
        }
        let _ = ws.close(None).await;
        info!("WebSocket connection closed");
    }

    /// The answer to one message, as the body of a POST would be answered; none for
    /// notifications.
    async fn answer(&self, body: &[u8]) -> Option<String> {
        let app = &self.app;
        let mut rate = None;
        let counted: Result<Parsed, ApiError> = async {
            let body = Parsed::Calls(Calls::parse(
                body,
                app.settings.max_batch,
                app.settings.max_batch_tokens,
            )?);
            let key: Option<&ApiKey> = self.caller.key.as_deref();
            guard::count_body(app, self.form, key, 0, &body, self.proxied, &mut rate).await?;
            Ok(body)
        }
        .await;
        match counted {
            Err(e) => Some(refusal(&e)),
            Ok(Parsed::Calls(calls)) => {
                jsonrpc::answer_text(&self.methods, self.caller.clone(), calls)
                    .await
                    .0
                    .map(|(text, _)| text)
            }
            Ok(Parsed::Rest { .. } | Parsed::Native(_)) => Some(refusal(&ApiError::new(
                ErrorCode::Internal,
                "a JSON-RPC message that is not calls",
            ))),
        }
    }
}

/// Resolves once the daemon is stopping.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// A refusal of a whole message, with no call to answer.
fn refusal(e: &ApiError) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": null, "error": e.to_jsonrpc()}).to_string()
}
