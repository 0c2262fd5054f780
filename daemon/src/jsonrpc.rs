//! JSON-RPC 2.0 envelopes, for jsonrpsee's `Methods` (the route table gives each JSON-RPC
//! route its module, `routes::rpc`) inside the daemon's own HTTP stack.
//!
//! jsonrpsee decodes the params, runs the method and writes its answer; this module reads the
//! envelope, so that what the README's "Routes" and "Errors" promise holds where jsonrpsee's
//! server differs: a batch is bounded (`--max-batch`) before any call runs and its calls run in
//! order, a single call answers the HTTP status of its error, an `id` may be any JSON-RPC id
//! (a negative or fractional number too) of at most [`MAX_ID_BYTES`], and params, when given,
//! an object.

use std::borrow::Cow;

use hyper::StatusCode;
use privacypass_core::ErrorCode;
use privacypass_rpc::jsonrpsee::core::server::{
    ConnectionId, Extensions, MethodCallback, MethodResponse, Methods,
};
use privacypass_rpc::jsonrpsee::types::{ErrorObject, Id, Params};
use privacypass_rpc::{issue_tokens, ISSUE};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::auth::Caller;
use crate::error::{status_of_jsonrpc, ApiError};
use crate::http::{respond, Handled, Resp};

/// The longest JSON-RPC `id` (as JSON text) a call may carry: it is echoed in the answer.
pub const MAX_ID_BYTES: usize = 256;

/// The `id` an answer echoes. jsonrpsee's `Id` holds null, strings and unsigned integers; any
/// other number is written back as it came.
#[derive(Clone, Debug)]
enum ReplyId {
    Plain(Id<'static>),
    Verbatim(Box<str>),
}

impl ReplyId {
    fn null() -> ReplyId {
        ReplyId::Plain(Id::Null)
    }

    fn id(&self) -> Id<'static> {
        match self {
            ReplyId::Plain(id) => id.clone(),
            ReplyId::Verbatim(_) => Id::Null,
        }
    }

    /// `answer` (written by jsonrpsee for `self.id()`) with this id.
    fn into_answer(self, answer: &RawValue) -> String {
        // jsonrpsee writes `{"jsonrpc":"2.0","id":<id>,...}`: a null id is replaced in place.
        const NULL_ID: &str = r#"{"jsonrpc":"2.0","id":null"#;
        match self {
            ReplyId::Plain(_) => answer.get().to_owned(),
            ReplyId::Verbatim(raw) => match answer.get().strip_prefix(NULL_ID) {
                Some(rest) => format!(r#"{{"jsonrpc":"2.0","id":{raw}{rest}"#),
                None => answer.get().to_owned(),
            },
        }
    }
}

/// One item of a body, checked as far as the envelope goes.
#[derive(Debug)]
enum Item {
    /// Refused before any method runs; answered even without an id.
    Refused { id: ReplyId, error: ApiError },
    /// A call; `id` is `None` for a notification; `params` is `Ok(None)` when absent and
    /// `Err(())` when not an object.
    Call {
        id: Option<ReplyId>,
        method: String,
        params: Result<Option<Box<RawValue>>, ()>,
    },
}

/// A call, and the tokens it asks for (those of an `issue` batch; 1 for any other call).
#[derive(Debug)]
struct Counted {
    item: Item,
    tokens: u64,
}

/// The members of a request object, as written; a member written twice counts as its last
/// value, as any JSON object reader takes it.
struct Envelope<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut e = Envelope {
                    jsonrpc: None,
                    id: None,
                    method: None,
                    params: None,
                };
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    match &*name {
                        "jsonrpc" => e.jsonrpc = Some(value),
                        "id" => e.id = Some(value),
                        "method" => e.method = Some(value),
                        "params" => e.params = Some(value),
                        _ => {}
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_map(Members)
    }
}

impl Counted {
    /// A call, its tokens counted; an `issue` of more than `max_tokens` tokens is refused
    /// before it runs.
    fn parse(raw: &RawValue, max_tokens: usize) -> Counted {
        let item = Item::parse(raw);
        let tokens = match &item {
            Item::Call {
                method,
                params: Ok(Some(params)),
                ..
            } if method == ISSUE => issue_tokens(params.get()),
            _ => 1,
        };
        if tokens > max_tokens {
            let Item::Call { id, .. } = item else {
                return Counted { item, tokens: 1 };
            };
            let error = ApiError::new(
                ErrorCode::TooLarge,
                format!("the batch holds more than {max_tokens} tokens (--max-batch-tokens)"),
            );
            return Counted {
                item: Item::Refused {
                    id: id.unwrap_or_else(ReplyId::null),
                    error,
                },
                tokens: 1,
            };
        }
        Counted {
            item,
            tokens: tokens as u64,
        }
    }
}

impl Item {
    fn parse(raw: &RawValue) -> Item {
        let invalid = |id: ReplyId, m: &str| Item::Refused {
            id,
            error: ApiError::new(ErrorCode::InvalidRequest, m),
        };
        let text = raw.get();
        if !text.starts_with('{') {
            return invalid(ReplyId::null(), "a request must be an object");
        }
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            return invalid(ReplyId::null(), "a request must be an object");
        };
        let id = match envelope.id {
            None => None,
            Some(raw) => match reply_id(raw) {
                Ok(id) => Some(id),
                Err(m) => return invalid(ReplyId::null(), &m),
            },
        };
        let answer_id = id.clone().unwrap_or_else(ReplyId::null);
        if envelope.jsonrpc.map(RawValue::get) != Some(r#""2.0""#) {
            return invalid(answer_id, "jsonrpc must be \"2.0\"");
        }
        let Some(Ok(method)) = envelope
            .method
            .map(|m| serde_json::from_str::<Cow<str>>(m.get()))
        else {
            return invalid(answer_id, "method must be a string");
        };
        Item::Call {
            id,
            method: method.into_owned(),
            params: match envelope.params {
                None => Ok(None),
                Some(p) if p.get().starts_with('{') => Ok(Some(p.to_owned())),
                Some(_) => Err(()),
            },
        }
    }

    fn is_issue(&self) -> bool {
        matches!(self, Item::Call { method, .. } if method == ISSUE)
    }
}

/// The id of a call, or why it is refused.
fn reply_id(raw: &RawValue) -> Result<ReplyId, String> {
    let text = raw.get();
    // The id is echoed back: a large one would make every answer large.
    if text.len() > MAX_ID_BYTES {
        return Err(format!("id longer than {MAX_ID_BYTES} bytes"));
    }
    let not_an_id = || "id must be a string, a number or null".to_owned();
    match text.as_bytes().first() {
        Some(b'n') => Ok(ReplyId::null()),
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(|s| ReplyId::Plain(Id::Str(s.into())))
            .map_err(|_| not_an_id()),
        Some(b'-' | b'0'..=b'9') => match text.parse::<u64>() {
            Ok(n) => Ok(ReplyId::Plain(Id::Number(n))),
            // Any other number is echoed as written, once a double can hold it: an answer
            // holding `1e400` is JSON that most clients' readers refuse.
            Err(_) => serde_json::from_str::<serde_json::Number>(text)
                .map(|_| ReplyId::Verbatim(text.into()))
                .map_err(|_| "id is a number out of range".to_owned()),
        },
        _ => Err(not_an_id()),
    }
}

/// A JSON-RPC body, parsed and bounded: one call or a batch.
#[derive(Debug)]
pub struct Calls {
    items: Vec<Counted>,
    batch: bool,
}

impl Calls {
    /// Parses a body; refuses one that is not JSON, an empty batch and a batch of more than
    /// `max_batch` calls, before any call runs; an `issue` of more than `max_tokens` tokens
    /// is answered -32042 without running.
    pub fn parse(body: &[u8], max_batch: usize, max_tokens: usize) -> Result<Calls, ApiError> {
        let top: &RawValue = serde_json::from_slice(body)
            .map_err(|e| ApiError::new(ErrorCode::ParseError, e.to_string()))?;
        if !top.get().starts_with('[') {
            return Ok(Calls {
                items: vec![Counted::parse(top, max_tokens)],
                batch: false,
            });
        }
        let raw: Vec<&RawValue> = serde_json::from_str(top.get())
            .map_err(|e| ApiError::new(ErrorCode::ParseError, e.to_string()))?;
        if raw.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "empty batch"));
        }
        if raw.len() > max_batch {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "batch of {} calls; at most {max_batch} are allowed",
                    raw.len()
                ),
            ));
        }
        Ok(Calls {
            items: raw
                .into_iter()
                .map(|raw| Counted::parse(raw, max_tokens))
                .collect(),
            batch: true,
        })
    }

    /// How many calls the body holds (each counts against a rate limit).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// What the calls count against a rate limit: each call one, an `issue` batch each of its
    /// tokens.
    pub fn counted(&self) -> u64 {
        self.items.iter().map(|c| c.tokens).sum()
    }

    /// The tokens the `issue` calls ask for.
    pub fn issue_calls(&self) -> u64 {
        self.items
            .iter()
            .filter(|c| c.item.is_issue())
            .map(|c| c.tokens)
            .sum()
    }

    /// Whether every call is `issue` (what an Idempotency-Key applies to).
    pub fn issue_only(&self) -> bool {
        self.items.iter().all(|c| c.item.is_issue())
    }
}

/// Runs the calls with `methods` for `caller`, in order. A single call's failure shows in the
/// HTTP status; a batch answers 200, and says whether one of its calls failed on the server's
/// side.
pub async fn answer(methods: &Methods, caller: Caller, calls: Calls) -> Handled {
    let batch = calls.batch;
    let (text, batch_call_failed) = answer_text(methods, caller, calls).await;
    let resp = match text {
        None => no_content(),
        Some((text, code)) => {
            let status = match code {
                Some(code) if !batch => status_of_jsonrpc(code),
                _ => StatusCode::OK,
            };
            respond(status, "application/json", text)
        }
    };
    Handled {
        resp,
        batch_call_failed,
    }
}

/// Runs the calls with `methods` for `caller`, in order: the answer's text (none when every
/// call is a notification) with the error code of a single call, and whether a call of a
/// batch failed on the server's side.
pub async fn answer_text(
    methods: &Methods,
    caller: Caller,
    calls: Calls,
) -> (Option<(String, Option<i32>)>, bool) {
    let mut ext = Extensions::new();
    ext.insert(caller);
    if !calls.batch {
        let Some(item) = calls.items.into_iter().next() else {
            return (None, false);
        };
        return (run(methods, item.item, &ext).await, false);
    }
    let mut body = String::from("[");
    let mut item_failed = false;
    for counted in calls.items {
        if let Some((text, code)) = run(methods, counted.item, &ext).await {
            item_failed |= code.is_some_and(|c| status_of_jsonrpc(c).is_server_error());
            if body.len() > 1 {
                body.push(',');
            }
            body.push_str(&text);
        }
    }
    if body.len() == 1 {
        return (None, item_failed);
    }
    body.push(']');
    (Some((body, None)), item_failed)
}

fn no_content() -> Resp {
    respond(StatusCode::NO_CONTENT, "application/json", "")
}

/// The largest answer a method may write.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// One call: its answer and error code, or `None` for a notification.
async fn run(methods: &Methods, item: Item, ext: &Extensions) -> Option<(String, Option<i32>)> {
    let (id, method, params) = match item {
        Item::Refused { id, error } => {
            let answer = MethodResponse::error(id.id(), error.to_jsonrpc());
            return Some(finish(id, answer));
        }
        Item::Call { id, method, params } => (id, method, params),
    };
    let call_id = id.as_ref().map_or(Id::Null, ReplyId::id);
    let refuse = |code: ErrorCode, m: String| {
        MethodResponse::error(call_id.clone(), ApiError::new(code, m).to_jsonrpc())
    };
    let answer = match (methods.method(&method), params) {
        (None, _) => refuse(ErrorCode::MethodNotFound, format!("no method {method:?}")),
        (Some(_), Err(())) => refuse(ErrorCode::InvalidParams, "params must be an object".into()),
        (Some(MethodCallback::Async(callback)), Ok(params)) => {
            let params = Params::new(params.as_deref().map(RawValue::get)).into_owned();
            callback(
                call_id.clone(),
                params,
                ConnectionId(0),
                MAX_RESPONSE_BYTES,
                ext.clone(),
            )
            .await
        }
        (Some(MethodCallback::Sync(callback)), Ok(params)) => callback(
            call_id.clone(),
            Params::new(params.as_deref().map(RawValue::get)),
            MAX_RESPONSE_BYTES,
            ext.clone(),
        ),
        (Some(_), Ok(_)) => refuse(ErrorCode::MethodNotFound, format!("no method {method:?}")),
    };
    id.map(|id| finish(id, in_table_form(answer, call_id)))
}

/// An error jsonrpsee wrote itself (params it could not decode into the method's types) in the
/// form of the daemon's own: the table's message, and jsonrpsee's text as the detail.
fn in_table_form(answer: MethodResponse, id: Id<'static>) -> MethodResponse {
    #[derive(Deserialize)]
    struct Failed<'a> {
        #[serde(borrow)]
        error: ErrorObject<'a>,
    }
    let Some(code) = answer.as_error_code().and_then(ErrorCode::from_code) else {
        return answer;
    };
    let Ok(Failed { error }) = serde_json::from_str::<Failed>(answer.as_json().get()) else {
        return answer;
    };
    if error.message() == code.meaning() {
        return answer;
    }
    let detail = error
        .data()
        .and_then(|d| serde_json::from_str::<String>(d.get()).ok())
        .unwrap_or_else(|| error.message().to_owned());
    MethodResponse::error(id, ApiError::new(code, detail).to_jsonrpc())
}

fn finish(id: ReplyId, answer: MethodResponse) -> (String, Option<i32>) {
    let code = answer.as_error_code();
    (id.into_answer(answer.as_json()), code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use privacypass_rpc::jsonrpsee::types::ErrorObjectOwned;

    fn item(text: &str) -> Item {
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        Item::parse(&raw)
    }

    #[test]
    fn envelopes_are_checked_in_order() {
        let refused = |text: &str| match item(text) {
            Item::Refused { id, error } => (format!("{id:?}"), error.code),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused("5").1, ErrorCode::InvalidRequest);
        assert_eq!(
            refused(r#"{"jsonrpc":"1.0","id":3,"method":"redeem"}"#),
            (
                format!("{:?}", ReplyId::Plain(Id::Number(3))),
                ErrorCode::InvalidRequest
            )
        );
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","method":"x"}}"#,
            "i".repeat(300)
        );
        assert_eq!(refused(&long).0, format!("{:?}", ReplyId::null()));
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#).1,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"method":7}"#).1,
            ErrorCode::InvalidRequest
        );
        // A number no JSON reader's double holds is refused, not echoed for the client to choke on.
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1e400,"method":"redeem"}"#),
            (format!("{:?}", ReplyId::null()), ErrorCode::InvalidRequest)
        );
        assert!(matches!(
            item(r#"{"jsonrpc":"2.0","id":-1.5e3,"method":"redeem"}"#),
            Item::Call {
                id: Some(ReplyId::Verbatim(_)),
                ..
            }
        ));
        // A member written twice counts as its last value.
        assert!(matches!(
            item(r#"{"jsonrpc":"2.0","id":2,"method":"x","method":"redeem","params":{}}"#),
            Item::Call { id: Some(ReplyId::Plain(Id::Number(2))), method, .. } if method == "redeem"
        ));
        // A null id is an id, not a notification.
        assert!(matches!(
            item(r#"{"jsonrpc":"2.0","id":null,"method":"redeem","params":{}}"#),
            Item::Call {
                id: Some(_),
                params: Ok(Some(_)),
                ..
            }
        ));
        assert!(matches!(
            item(r#"{"jsonrpc":"2.0","method":"redeem","params":[1]}"#),
            Item::Call {
                id: None,
                params: Err(()),
                ..
            }
        ));
    }

    #[test]
    fn ids_jsonrpsee_cannot_hold_are_echoed_as_written() {
        for raw in ["-1", "1.5", "1e3"] {
            let id = reply_id(&serde_json::from_str::<Box<RawValue>>(raw).unwrap()).unwrap();
            let answer = MethodResponse::error(
                id.id(),
                ApiError::new(ErrorCode::MethodNotFound, "x").to_jsonrpc(),
            );
            let text = id.into_answer(answer.as_json());
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                value["id"].to_string(),
                raw.replace("1e3", "1000.0"),
                "{text}"
            );
            assert_eq!(value["error"]["code"], -32601);
        }
    }

    #[test]
    fn errors_jsonrpsee_writes_take_the_form_of_the_table() {
        let raw = MethodResponse::error(
            Id::Number(4),
            ErrorObjectOwned::owned(-32602, "Invalid params", Some("missing field `key-id`")),
        );
        let answer = in_table_form(raw, Id::Number(4));
        let value: serde_json::Value = serde_json::from_str(answer.as_json().get()).unwrap();
        assert_eq!(value["id"], 4);
        assert_eq!(
            value["error"]["message"],
            ErrorCode::InvalidParams.meaning()
        );
        assert_eq!(value["error"]["data"]["detail"], "missing field `key-id`");
    }

    #[test]
    fn batches_are_bounded_before_anything_runs() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"issue","params":{}}"#;
        let batch = format!("[{call},{call},{call}]");
        assert_eq!(
            Calls::parse(batch.as_bytes(), 2, 100).unwrap_err().code,
            ErrorCode::TooLarge
        );
        let calls = Calls::parse(batch.as_bytes(), 3, 100).unwrap();
        assert_eq!(
            (calls.len(), calls.issue_calls(), calls.issue_only()),
            (3, 3, true)
        );
        assert_eq!(
            Calls::parse(b"[]", 3, 100).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            Calls::parse(b"{not json", 3, 100).unwrap_err().code,
            ErrorCode::ParseError
        );
    }

    #[test]
    fn issue_batches_count_their_tokens_and_are_bounded() {
        let tokens = |n: usize| {
            let list = vec![r#""AA""#; n].join(",");
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"issue","params":{{"blinded-tokens":[{list}],"key-id":"k"}}}}"#
            )
        };
        let redeem = r#"{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"token":"t"}}"#;
        let body = format!("[{},{redeem},{}]", tokens(5), tokens(3));
        let calls = Calls::parse(body.as_bytes(), 10, 5).unwrap();
        assert_eq!(
            (
                calls.len(),
                calls.counted(),
                calls.issue_calls(),
                calls.issue_only()
            ),
            (3, 9, 8, false)
        );
        // Over the bound: that call is refused (and counts once), the others stand.
        let body = format!("[{},{redeem}]", tokens(6));
        let calls = Calls::parse(body.as_bytes(), 10, 5).unwrap();
        assert_eq!((calls.counted(), calls.issue_calls()), (2, 0));
        assert!(matches!(
            &calls.items[0].item,
            Item::Refused { id: ReplyId::Plain(Id::Number(7)), error } if error.code == ErrorCode::TooLarge
        ));
    }
}
