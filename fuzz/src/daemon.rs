//! The daemon's API routes in-process: two `App`s on one memory store (one without API keys,
//! one with them and `--redeem-auth`), three generated keys (issuing, in its redemption grace,
//! pending), a token of each redeemable key, and the request headers a target's selector bytes
//! choose. `server::handle` runs on a body held in memory, exactly as the server runs it on hyper's.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use privacypass_core::{
    b64, Client, IssuerKey, KeySet, KeyValidity, PublicKey, TokenChallenge, TokenRequest, TokenType,
};
use privacypass_stores::open_backends;
use privacypassd::app::App;
use privacypassd::auth::ApiKeys;
use privacypassd::config::ServeArgs;
use privacypassd::http::TOKEN_REQUEST_TYPE;
use privacypassd::routes::Router;
use privacypassd::server;

use serde_json::{Map, Value};

use crate::table::ErrorTable;
use crate::{kebab, param};

/// API keys of the keyed `App`, by the selector's choice (index 0 sends none).
pub const API_KEYS: [&str; 4] = [
    "",
    "fuzz-key-may-do-everything",
    "fuzz-key-issues-with-grace-key-only",
    "fuzz-key-redeems-only-000",
];

/// The request headers and route variant that the first two bytes of an input choose.
#[derive(Clone, Copy, Debug)]
pub struct Selector {
    /// Bit 0 of the first byte: the target's second route.
    pub alternate_route: bool,
    /// The `App` with API keys (and `--redeem-auth`) instead of the one without.
    pub keyed: bool,
    /// Index into `API_KEYS` for `Authorization: Bearer`; 0 sends none.
    pub api_key: usize,
    /// `Key-Inflection`: none, camel, snake, or a value that is none of them.
    pub inflection: u8,
    pub idempotency_key: Option<u8>,
    pub forwarded: bool,
    /// GET instead of POST.
    pub get: bool,
    /// `Persona-Version`: none, the supported one, another.
    pub persona_version: u8,
    /// `Content-Type` of `/token-request`: the right one, with a parameter, another, none.
    pub content_type: u8,
}

impl Selector {
    /// The selector of the first two bytes and the body after them.
    pub fn split(data: &[u8]) -> Option<(Selector, &[u8])> {
        let [a, b, body @ ..] = data else {
            return None;
        };
        let selector = Selector {
            alternate_route: a & 1 != 0,
            keyed: a & 2 != 0,
            api_key: usize::from((a >> 2) & 3),
            inflection: (a >> 4) & 3,
            idempotency_key: (a & 0x40 != 0).then_some(b >> 5),
            forwarded: a & 0x80 != 0,
            get: b & 1 != 0,
            persona_version: (b >> 1) & 3,
            content_type: (b >> 3) & 3,
        };
        Some((selector, body))
    }
}

/// The API routes a target drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/rpc`: JSON-RPC with every method.
    Rpc,
    /// `/api/redeem`: JSON-RPC with `redeem` only.
    Redeem,
    /// `/api/v1/privacy-passes`.
    PersonaRest,
    /// `/token-request`.
    TokenRequest,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Daemon {
    runtime: tokio::runtime::Runtime,
    anonymous: Router,
    keyed: Router,
    /// The key that issues now, in its grace, not yet issuing.
    pub active: Arc<IssuerKey>,
    pub grace: Arc<IssuerKey>,
    pub pending: Arc<IssuerKey>,
    /// A token of the active and of the grace key, both bound to `challenge`.
    pub tokens: Vec<Vec<u8>>,
    pub challenge: Vec<u8>,
    /// Tokens (decoded bytes) a redeem answered success for.
    pub redeemed: Mutex<HashSet<Vec<u8>>>,
    placeholders: Vec<(Vec<u8>, Vec<u8>)>,
    pub table: ErrorTable,
    pub max_batch: usize,
    pub max_batch_tokens: usize,
}

/// A token of `key` bound to `challenge`, made as a client and an issuer make it.
fn token(key: &IssuerKey, challenge: &TokenChallenge) -> Vec<u8> {
    let client = Client::new(key.public_key().clone());
    let pending = client.request(challenge).expect("blind a token request");
    let sig = key
        .blind_sign(&pending.request().blinded_msg)
        .expect("sign the blinded message");
    pending.finalize(&sig).expect("finalize the token").encode()
}

impl Daemon {
    /// The one daemon of this process.
    pub fn get() -> &'static Daemon {
        static DAEMON: OnceLock<Daemon> = OnceLock::new();
        DAEMON.get_or_init(Daemon::start)
    }

    fn start() -> Daemon {
        let now = privacypass_core::unix_now();
        let day = 86_400;
        let mut keys = KeySet::new(7 * day);
        let mut generate = |not_before, expires| {
            let validity = KeyValidity::new(not_before, expires).expect("a validity window");
            keys.generate(validity).expect("generate a key")
        };
        let active = generate(now - day, now + 30 * day);
        let grace = generate(now - 30 * day, now - day);
        let pending = generate(now + day, now + 30 * day);
        let challenge = TokenChallenge::new(
            TokenType::BlindRsa2048.value(),
            b"issuer.example",
            &[7; 32],
            b"origin.example",
        )
        .expect("a challenge");
        let tokens = vec![token(&active, &challenge), token(&grace, &challenge)];
        let client = Client::new(active.public_key().clone());
        let request = client
            .request(&challenge)
            .expect("a token request")
            .request()
            .encode();

        let backends = open_backends("memory:").expect("a memory store");
        privacypassd::purge::retain_keys(backends.spends.as_ref(), &keys)
            .expect("the store keeps the keys' spends");
        let settings = |redeem_auth| {
            ServeArgs {
                store: Some("memory:".into()),
                redeem_auth: Some(redeem_auth),
                ..ServeArgs::default()
            }
            .resolve()
            .expect("settings")
        };
        let anonymous = App::new(
            settings(false),
            keys.clone(),
            backends.clone(),
            ApiKeys::default(),
        );
        let api_keys = ApiKeys::parse(&format!(
            "{}\n{} methods=issue token-keys={}\n{} methods=redeem\n",
            API_KEYS[1],
            API_KEYS[2],
            hex::encode(grace.public_key().token_key_id()),
            API_KEYS[3],
        ))
        .expect("API keys");
        let keyed = App::new(settings(true), keys, backends, api_keys);
        let max_batch = anonymous.settings.max_batch;
        let max_batch_tokens = anonymous.settings.max_batch_tokens;

        let b64 = |bytes: &[u8]| b64::encode_url(bytes).into_bytes();
        let id = |key: &IssuerKey| hex::encode(key.public_key().token_key_id()).into_bytes();
        let mut placeholders: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"$KEY".to_vec(), id(&active)),
            (b"$GRACEKEY".to_vec(), id(&grace)),
            (b"$PENDINGKEY".to_vec(), id(&pending)),
            (b"$TOKEN".to_vec(), b64(&tokens[0])),
            (b"$GRACETOKEN".to_vec(), b64(&tokens[1])),
            (b"$CHALLENGE".to_vec(), b64(&challenge.encode())),
            (b"$REQUEST".to_vec(), b64(&request)),
            (b"$BLINDED".to_vec(), b64(&request[3..])),
            (b"$RAWREQUEST".to_vec(), request.clone()),
        ];
        placeholders.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        Daemon {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            anonymous: Router::new(Arc::new(anonymous)),
            keyed: Router::new(Arc::new(keyed)),
            active,
            grace,
            pending,
            tokens,
            challenge: challenge.encode(),
            redeemed: Mutex::new(HashSet::new()),
            placeholders,
            table: ErrorTable::from_readme(),
            max_batch,
            max_batch_tokens,
        }
    }

    /// The body with this process's keys and tokens in place of the placeholders.
    pub fn expand(&self, body: &[u8]) -> Vec<u8> {
        crate::expand(body, &self.placeholders)
    }

    /// The public key of a token key id, when it is one of the daemon's keys.
    pub fn key(&self, id: &[u8]) -> Option<&PublicKey> {
        [&self.active, &self.grace, &self.pending]
            .into_iter()
            .map(|k| &**k.public_key())
            .find(|k| k.token_key_id().as_slice() == id)
    }

    /// Sends `body` to a route with the selector's headers and reads the whole answer.
    pub fn call(&self, route: Route, selector: &Selector, body: Vec<u8>) -> Answer {
        let router = if selector.keyed {
            &self.keyed
        } else {
            &self.anonymous
        };
        let path = match route {
            Route::Rpc => "/rpc",
            Route::Redeem => "/api/redeem",
            Route::PersonaRest => "/api/v1/privacy-passes",
            Route::TokenRequest => "/token-request",
        };
        let method = if selector.get {
            Method::GET
        } else {
            Method::POST
        };
        let mut req = Request::builder().method(method).uri(path);
        let headers = req.headers_mut().expect("a request builder");
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let content_type = match route {
            Route::TokenRequest => match selector.content_type {
                0 => Some(TOKEN_REQUEST_TYPE.to_owned()),
                1 => Some(format!(
                    "{}; charset=binary",
                    TOKEN_REQUEST_TYPE.to_uppercase()
                )),
                2 => Some("application/json".to_owned()),
                _ => None,
            },
            _ => Some("application/json".to_owned()),
        };
        if let Some(t) = content_type {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(&t).expect("a header value"),
            );
        }
        if selector.api_key > 0 {
            let value = format!("Bearer {}", API_KEYS[selector.api_key]);
            headers.insert(
                "authorization",
                HeaderValue::from_str(&value).expect("a header value"),
            );
        }
        let inflection = ["", "camel", "snake", "shouting"][usize::from(selector.inflection)];
        if !inflection.is_empty() {
            headers.insert("key-inflection", HeaderValue::from_static(inflection));
        }
        if let Some(k) = selector.idempotency_key {
            headers.insert("idempotency-key", HeaderValue::from(u16::from(k) + 1000));
        }
        if selector.forwarded {
            headers.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.7"));
        }
        match selector.persona_version {
            1 => {
                headers.insert("persona-version", HeaderValue::from_static("2023-01-05"));
            }
            2 => {
                headers.insert("persona-version", HeaderValue::from_static("1999-12-31"));
            }
            _ => {}
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("a request");
        self.runtime.block_on(async {
            let resp = server::handle(router, req).await;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }

    /// Checks what every API route answers: the headers that go with a status.
    pub fn check_common(&self, answer: &Answer) {
        let has = |name: &str| answer.headers.contains_key(name);
        match answer.status {
            StatusCode::UNAUTHORIZED => {
                assert!(has("www-authenticate"), "401 without WWW-Authenticate")
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                assert!(has("retry-after"), "{} without Retry-After", answer.status)
            }
            StatusCode::METHOD_NOT_ALLOWED => assert_eq!(
                answer.headers.get("allow").map(HeaderValue::as_bytes),
                Some(&b"POST"[..]),
                "405 without Allow: POST"
            ),
            _ => {}
        }
    }

    /// An `issue` result (or a 201/206 REST body) for `params`, in any of its forms, as the
    /// inflection spells it: `blind-sig` for one token, `blind-sigs` for `blinded-tokens`, one
    /// signature per entry, or `batch`, each entry a signature or an error of the README's
    /// table. Every signature is the issuing key's, of the blinded message asked for, and the
    /// form is the one the params name. Whether an entry was refused.
    pub fn check_issued(&self, params: &Map<String, Value>, result: &Value) -> bool {
        let result = result
            .as_object()
            .unwrap_or_else(|| panic!("an issue result that is not an object: {result}"));
        let [(name, value)] = result.iter().collect::<Vec<_>>()[..] else {
            panic!("an issue result with keys {:?}", result.keys());
        };
        let form = kebab(name);
        let key_id = || {
            param(params, "key-id")
                .and_then(Value::as_str)
                .and_then(|k| hex::decode(k).ok())
                .unwrap_or_else(|| panic!("issued without a key-id: {params:?}"))
        };
        match form.as_str() {
            "blind-sig" => {
                let blinded = param(params, "blinded-token").unwrap_or_else(|| {
                    panic!("blind-sig for params without blinded-token: {params:?}")
                });
                self.check_signed(&key_id(), blinded, value);
                false
            }
            "blind-sigs" => {
                let blinded = param(params, "blinded-tokens")
                    .and_then(Value::as_array)
                    .unwrap_or_else(|| {
                        panic!("blind-sigs for params without blinded-tokens: {params:?}")
                    });
                let sigs = value
                    .as_array()
                    .unwrap_or_else(|| panic!("blind-sigs that is not a list: {value}"));
                assert_eq!(sigs.len(), blinded.len(), "one blind-sig per entry");
                assert!(
                    sigs.len() <= self.max_batch_tokens,
                    "a batch over the bound was issued"
                );
                let key_id = key_id();
                for (blinded, sig) in blinded.iter().zip(sigs) {
                    self.check_signed(&key_id, blinded, sig);
                }
                false
            }
            "batch" => {
                let asked = param(params, "batch")
                    .and_then(Value::as_array)
                    .unwrap_or_else(|| {
                        panic!("a batch answer for params without batch: {params:?}")
                    });
                let answers = value
                    .as_array()
                    .unwrap_or_else(|| panic!("a batch answer that is not a list: {value}"));
                assert_eq!(answers.len(), asked.len(), "one answer per entry");
                assert!(
                    answers.len() <= self.max_batch_tokens,
                    "a batch over the bound was issued"
                );
                let mut refused = false;
                for (entry, answer) in asked.iter().zip(answers) {
                    let entry = entry.as_object().unwrap_or_else(|| {
                        panic!("an entry that is not an object was answered: {entry}")
                    });
                    let answer = answer.as_object().unwrap_or_else(|| {
                        panic!("a batch answer entry that is not an object: {answer}")
                    });
                    let [(name, value)] = answer.iter().collect::<Vec<_>>()[..] else {
                        panic!("a batch answer entry with keys {:?}", answer.keys());
                    };
                    if name == "error" {
                        let code = value.get("code").and_then(Value::as_i64);
                        let code = code
                            .unwrap_or_else(|| panic!("an entry error without a code: {value}"));
                        assert!(
                            self.table.row(code).is_some(),
                            "code {code} is not in the README's table"
                        );
                        refused = true;
                        continue;
                    }
                    assert_eq!(
                        kebab(name),
                        "blind-sig",
                        "a batch answer entry named {name}"
                    );
                    let entry_key = param(entry, "key-id")
                        .and_then(Value::as_str)
                        .and_then(|k| hex::decode(k).ok())
                        .unwrap_or_else(|| panic!("an entry issued without a key-id: {entry:?}"));
                    let blinded = param(entry, "blinded-token").unwrap_or_else(|| {
                        panic!("an entry issued without blinded-token: {entry:?}")
                    });
                    self.check_signed(&entry_key, blinded, value);
                }
                refused
            }
            other => panic!("an issue result named {other}"),
        }
    }

    /// `sig` (base64url) is the issuing key's signature of `blinded` (base64: the bare blinded
    /// message or a whole TokenRequest ending with it), and `key_id` names that key.
    fn check_signed(&self, key_id: &[u8], blinded: &Value, sig: &Value) {
        assert_eq!(
            key_id,
            self.active.public_key().token_key_id().as_slice(),
            "issued with a key that does not issue now"
        );
        let sig = sig
            .as_str()
            .and_then(b64::decode_url)
            .unwrap_or_else(|| panic!("blind-sig is not base64url: {sig}"));
        let blinded = blinded
            .as_str()
            .and_then(b64::decode_any)
            .unwrap_or_else(|| panic!("issued without a base64 blinded-token: {blinded}"));
        let msg = &blinded[blinded.len().saturating_sub(256)..];
        assert!(
            crate::signs(self.active.public_key(), msg, &sig),
            "blind-sig is not the signature of the blinded message"
        );
    }

    /// A redeem answered success for `token` (its base64 text): it must be a token issued
    /// here, by a key that is still redeemable, answered success once.
    pub fn redeemed(&self, token_text: &str) {
        let token = b64::decode_any(token_text).unwrap_or_else(|| {
            panic!("redeem succeeded for a token that is not base64: {token_text:?}")
        });
        assert!(
            self.tokens.contains(&token),
            "redeem succeeded for bytes that are no token issued here: {token_text:?}"
        );
        let first = self
            .redeemed
            .lock()
            .map(|mut seen| seen.insert(token))
            .unwrap_or(false);
        assert!(first, "a token was redeemed twice: {token_text:?}");
    }

    /// The TokenRequest bytes a `/token-request` body must be to be signed: the active key's.
    pub fn signable_request(&self, body: &[u8]) -> Option<TokenRequest> {
        let request = TokenRequest::decode(body).ok()?;
        (request.token_type == TokenType::BlindRsa2048
            && request.truncated_token_key_id == self.active.public_key().truncated_token_key_id())
        .then_some(request)
    }
}
