//! The JSON-RPC API of privacypassd, defined once: the methods `issue` and `redeem` as one
//! jsonrpsee `#[rpc(server, client)]` trait, with the serde types of their params and results.
//!
//! - feature `server`: `PrivacyPassServer`, which the daemon implements and serves;
//! - feature `client`: `PrivacyPassClient`, implemented for every jsonrpsee client, and
//!   [`client()`], an HTTP client (plain HTTP, no TLS stack) that reads the daemon's errors.
//!
//! Without either feature the crate is the types alone. It never depends on the daemon, its
//! spend stores or tokio's network side.
//!
//! Request keys are accepted in kebab, camel and snake case (`blinded-token`, `blindedToken`,
//! `blinded_token`); results are written in the casing a [`KeyCase`] names (the daemon's
//! `Key-Inflection` header) and read in any of the three.

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(feature = "client")]
pub use client::{client, Client, ErrorStatus, ErrorStatusLayer};
#[cfg(any(feature = "server", feature = "client"))]
pub use jsonrpsee;
#[cfg(feature = "client")]
pub use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};

#[cfg(feature = "client")]
mod client;

/// The JSON-RPC method that blind-signs a token request.
pub const ISSUE: &str = "issue";
/// The JSON-RPC method that verifies a token and records its spend.
pub const REDEEM: &str = "redeem";
/// Every method of [`PrivacyPassServer`], as the daemon serves them.
pub const METHODS: [&str; 2] = [ISSUE, REDEEM];
/// The OpenRPC service-discovery method: the document of [`openrpc`].
pub const DISCOVER: &str = "rpc.discover";

/// A named param of a method, as the trait below declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// The JSON Schema of its value.
    pub schema: &'static str,
}

const STRING: &str = r#"{"type":"string"}"#;
const STRINGS: &str = r#"{"type":"array","items":{"type":"string"}}"#;

/// The params of each method, in the order of the trait's arguments.
pub const PARAMS: [(&str, &[Param]); 2] = [
    (
        ISSUE,
        &[
            Param {
                name: "blinded-token",
                required: false,
                schema: STRING,
            },
            Param {
                name: "key-id",
                required: false,
                schema: STRING,
            },
            Param {
                name: "blinded-tokens",
                required: false,
                schema: STRINGS,
            },
            Param {
                name: "batch",
                required: false,
                schema: r#"{"type":"array","items":{"type":"object","properties":{"blinded-token":{"type":"string"},"key-id":{"type":"string"}},"required":["blinded-token","key-id"]}}"#,
            },
        ],
    ),
    (
        REDEEM,
        &[
            Param {
                name: "token",
                required: false,
                schema: STRING,
            },
            Param {
                name: "challenge",
                required: false,
                schema: STRING,
            },
            Param {
                name: "data",
                required: false,
                schema: STRINGS,
            },
            Param {
                name: "bindings",
                required: false,
                schema: STRINGS,
            },
            Param {
                name: "compressed",
                required: false,
                schema: r#"{"type":"boolean"}"#,
            },
        ],
    ),
];

/// The OpenRPC 1.2 document of `methods` (of [`METHODS`]) and the error codes they answer.
pub fn openrpc(methods: &[&str], errors: &[(i32, &str)]) -> serde_json::Value {
    use serde_json::{json, Value};
    let schema = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let errors: Vec<Value> = errors
        .iter()
        .map(|(code, message)| json!({"code": code, "message": message}))
        .collect();
    let result = |method: &str| match method {
        ISSUE => json!({"name": "issued", "schema": {"oneOf": [
            {"type": "object", "properties": {"blind-sig": {"type": "string"}},
                "required": ["blind-sig"]},
            {"type": "object", "properties": {"blind-sigs": {"type": "array",
                "items": {"type": "string"}}}, "required": ["blind-sigs"]},
            {"type": "object", "properties": {"batch": {"type": "array", "items": {"oneOf": [
                {"type": "object", "properties": {"blind-sig": {"type": "string"}},
                    "required": ["blind-sig"]},
                {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "integer"}, "message": {"type": "string"}},
                    "required": ["code", "message"]}}, "required": ["error"]}]}}},
                "required": ["batch"]}]}}),
        _ => json!({"name": "redeemed", "schema": {"const": "success"}}),
    };
    let methods: Vec<Value> = PARAMS
        .iter()
        .filter(|(name, _)| methods.contains(name))
        .map(|(name, params)| {
            let params: Vec<Value> = params
                .iter()
                .map(
                    |p| json!({"name": p.name, "required": p.required, "schema": schema(p.schema)}),
                )
                .collect();
            json!({"name": name, "paramStructure": "by-name", "params": params,
                "result": result(name), "errors": errors})
        })
        .collect();
    json!({"openrpc": "1.2.6", "info": {"title": "privacypassd", "version": env!("CARGO_PKG_VERSION")},
        "methods": methods})
}

/// The casing of the keys of a JSON object: `blind-sig`, `blindSig` or `blind_sig`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyCase {
    #[default]
    Kebab,
    Camel,
    Snake,
}

impl KeyCase {
    /// Every casing, the default first.
    pub const ALL: [KeyCase; 3] = [KeyCase::Kebab, KeyCase::Camel, KeyCase::Snake];

    /// `kebab`, `camel` or `snake`, in any ASCII case.
    pub fn from_name(name: &str) -> Option<KeyCase> {
        KeyCase::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyCase::Kebab => "kebab",
            KeyCase::Camel => "camel",
            KeyCase::Snake => "snake",
        }
    }

    /// A kebab-case key in this casing.
    pub fn spell(self, kebab: &str) -> String {
        match self {
            KeyCase::Kebab => kebab.to_owned(),
            KeyCase::Snake => kebab.replace('-', "_"),
            KeyCase::Camel => {
                let mut out = String::with_capacity(kebab.len());
                let mut upper = false;
                for c in kebab.chars() {
                    if c == '-' {
                        upper = true;
                    } else if upper {
                        out.push(c.to_ascii_uppercase());
                        upper = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Renames the keys of every object in `value` written in this casing to kebab case.
    pub fn to_kebab(self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        let kebab = |key: &str| -> String {
            let mut out = String::with_capacity(key.len() + 4);
            for c in key.chars() {
                match (self, c) {
                    (KeyCase::Snake, '_') => out.push('-'),
                    (KeyCase::Camel, c) if c.is_ascii_uppercase() => {
                        out.push('-');
                        out.push(c.to_ascii_lowercase());
                    }
                    (_, c) => out.push(c),
                }
            }
            out
        };
        match (self, value) {
            (KeyCase::Kebab, v) => v,
            (_, Value::Object(map)) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (kebab(&k), self.to_kebab(v)))
                    .collect(),
            ),
            (_, Value::Array(items)) => {
                Value::Array(items.into_iter().map(|v| self.to_kebab(v)).collect())
            }
            (_, v) => v,
        }
    }

    /// Renames the keys of every object in `value` from kebab case.
    pub fn apply(self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match (self, value) {
            (KeyCase::Kebab, v) => v,
            (_, Value::Object(map)) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.spell(&k), self.apply(v)))
                    .collect(),
            ),
            (_, Value::Array(items)) => {
                Value::Array(items.into_iter().map(|v| self.apply(v)).collect())
            }
            (_, v) => v,
        }
    }
}

/// The params of `issue`, as one object (the body of the daemon's REST issuance route).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueParams {
    /// base64url (or base64, padded or not) of the bare blinded message or a whole RFC 9578
    /// TokenRequest.
    #[serde(
        rename = "blinded-token",
        alias = "blindedToken",
        alias = "blinded_token"
    )]
    pub blinded_token: String,
    /// Hex of the 32-byte `token_key_id` of the key to sign with.
    #[serde(rename = "key-id", alias = "keyId", alias = "key_id")]
    pub key_id: String,
}

/// What one `issue` call asks for, from its params (see [`IssueRequest::from_fields`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueRequest {
    /// `blinded-token` and `key-id`: one token.
    Single(IssueParams),
    /// `blinded-tokens` and `key-id`: a batch for one key. A type-2 key signs each entry; a
    /// VOPRF key evaluates all of them with one DLEQ proof (an amortized batch).
    OneKey {
        blinded_tokens: Vec<String>,
        key_id: String,
    },
    /// `batch`: a generic batch, each entry a single request of any key; each is answered
    /// on its own.
    Generic(Vec<IssueParams>),
}

impl IssueRequest {
    /// The form the params of a call select; exactly one of `blinded-token`,
    /// `blinded-tokens` and `batch` is given, and `key-id` with either of the first two.
    pub fn from_fields(
        blinded_token: Option<String>,
        key_id: Option<String>,
        blinded_tokens: Option<Vec<String>>,
        batch: Option<Vec<IssueParams>>,
    ) -> Result<IssueRequest, &'static str> {
        match (blinded_token, key_id, blinded_tokens, batch) {
            (Some(blinded_token), Some(key_id), None, None) => {
                Ok(IssueRequest::Single(IssueParams {
                    blinded_token,
                    key_id,
                }))
            }
            (None, Some(key_id), Some(blinded_tokens), None) => Ok(IssueRequest::OneKey {
                blinded_tokens,
                key_id,
            }),
            (None, None, None, Some(batch)) => Ok(IssueRequest::Generic(batch)),
            (None, None, None, None) => {
                Err("blinded-token (or blinded-tokens, or batch) is required")
            }
            (_, None, _, None) => Err("key-id is required with blinded-token and blinded-tokens"),
            (_, _, _, Some(_)) => Err("batch names the key of each entry: give it alone"),
            _ => Err("give one of blinded-token and blinded-tokens"),
        }
    }

    /// How many tokens it asks for: what rate limits count.
    pub fn tokens(&self) -> usize {
        match self {
            IssueRequest::Single(_) => 1,
            IssueRequest::OneKey { blinded_tokens, .. } => blinded_tokens.len(),
            IssueRequest::Generic(batch) => batch.len(),
        }
    }
}

/// The body of the REST issuance route (and the params of `issue`), in any casing: every
/// field optional, [`IssueBody::request`] picks the form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueBody {
    #[serde(
        rename = "blinded-token",
        alias = "blindedToken",
        alias = "blinded_token",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub blinded_token: Option<String>,
    #[serde(
        rename = "key-id",
        alias = "keyId",
        alias = "key_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub key_id: Option<String>,
    #[serde(
        rename = "blinded-tokens",
        alias = "blindedTokens",
        alias = "blinded_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub blinded_tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Vec<IssueParams>>,
}

impl IssueBody {
    pub fn request(self) -> Result<IssueRequest, &'static str> {
        IssueRequest::from_fields(
            self.blinded_token,
            self.key_id,
            self.blinded_tokens,
            self.batch,
        )
    }
}

/// How many tokens the params of an `issue` call (or a REST body) ask for, read without
/// decoding them: the length of `blinded-tokens` or `batch`, else 1. What rate limits and the
/// batch bound count before the call runs.
pub fn issue_tokens(params: &str) -> usize {
    #[derive(Deserialize)]
    struct Lists<'a> {
        #[serde(
            rename = "blinded-tokens",
            alias = "blindedTokens",
            alias = "blinded_tokens",
            borrow,
            default
        )]
        blinded_tokens: Option<Vec<&'a serde_json::value::RawValue>>,
        #[serde(borrow, default)]
        batch: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    match serde_json::from_str::<Lists>(params) {
        Ok(lists) => {
            let n =
                lists.blinded_tokens.map_or(0, |l| l.len()) + lists.batch.map_or(0, |l| l.len());
            n.max(1)
        }
        Err(_) => 1,
    }
}

/// Why one entry of a batch was not issued: the code and message a single `issue` of it
/// would have answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryError {
    pub code: i32,
    pub message: String,
}

/// One entry of a generic batch's answer: `{"blind-sig": ...}` or `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchEntry {
    #[serde(rename = "blind-sig")]
    BlindSig(String),
    #[serde(rename = "error")]
    Error(EntryError),
}

/// What an `issue` call answered, by the form of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issued {
    /// `{"blind-sig": ...}`: the TokenResponse of one token, or for a one-key batch of a
    /// VOPRF key its whole AmortizedBatchTokenResponse (the evaluated elements and one proof).
    BlindSig(String),
    /// `{"blind-sigs": [...]}`: a one-key batch of a type-2 key, one TokenResponse for each
    /// entry, in order.
    BlindSigs(Vec<String>),
    /// `{"batch": [...]}`: a generic batch, an answer for each entry, in order.
    Batch(Vec<BatchEntry>),
}

/// The result of `issue`: `{"blind-sig": "<base64url>"}` for one token (and see [`Issued`]
/// for batches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueResult {
    pub issued: Issued,
    /// How the keys are spelled when this result is written; any spelling is read.
    pub case: KeyCase,
}

impl IssueResult {
    /// The `blind-sig` of a single (or amortized) issue.
    pub fn blind_sig(&self) -> Option<&str> {
        match &self.issued {
            Issued::BlindSig(sig) => Some(sig),
            _ => None,
        }
    }

    /// Whether some entry of a generic batch was refused (the REST route answers 206).
    pub fn partial(&self) -> bool {
        matches!(&self.issued, Issued::Batch(entries)
            if entries.iter().any(|e| matches!(e, BatchEntry::Error(_))))
    }

    fn to_kebab(&self) -> serde_json::Value {
        use serde_json::json;
        match &self.issued {
            Issued::BlindSig(sig) => json!({ BLIND_SIG: sig }),
            Issued::BlindSigs(sigs) => json!({ BLIND_SIGS: sigs }),
            Issued::Batch(entries) => json!({ BATCH: entries }),
        }
    }
}

const BLIND_SIG: &str = "blind-sig";
const BLIND_SIGS: &str = "blind-sigs";
const BATCH: &str = "batch";

impl Serialize for IssueResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.case.apply(self.to_kebab()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IssueResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        let Value::Object(map) = Value::deserialize(deserializer)? else {
            return Err(de::Error::custom(
                "an object with blind-sig, blind-sigs or batch",
            ));
        };
        // The one key it holds, and its casing ("batch" is the same in each).
        let mut found = None;
        for (name, value) in &map {
            let known = KeyCase::ALL.into_iter().find_map(|case| {
                [BLIND_SIG, BLIND_SIGS, BATCH]
                    .into_iter()
                    .find(|key| case.spell(key) == *name)
                    .map(|key| (case, key, value))
            });
            if known.is_some() && found.is_some() {
                return Err(de::Error::duplicate_field(BLIND_SIG));
            }
            found = found.or(known);
        }
        let Some((mut case, key, value)) = found else {
            return Err(de::Error::missing_field(BLIND_SIG));
        };
        let mut value = case.to_kebab(value.clone());
        if key == BATCH {
            // "batch" is spelled alike in every casing: its entries' `blind-sig` tells.
            for entry in value.as_array_mut().into_iter().flatten() {
                let Value::Object(entry) = entry else {
                    continue;
                };
                for spelled in KeyCase::ALL {
                    if let Some(sig) = entry.remove(&spelled.spell(BLIND_SIG)) {
                        case = spelled;
                        entry.insert(BLIND_SIG.to_owned(), sig);
                    }
                }
            }
        }
        let issued = match key {
            BLIND_SIG => {
                Issued::BlindSig(serde_json::from_value(value).map_err(de::Error::custom)?)
            }
            BLIND_SIGS => {
                Issued::BlindSigs(serde_json::from_value(value).map_err(de::Error::custom)?)
            }
            _ => Issued::Batch(serde_json::from_value(value).map_err(de::Error::custom)?),
        };
        Ok(IssueResult { issued, case })
    }
}

/// The params of `redeem`, in either of its forms; serialized as the call's params object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RedeemParams {
    /// `{"token": "<base64url Token>", "challenge": "<base64url TokenChallenge>"?}`
    Token {
        token: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        challenge: Option<String>,
    },
    /// The compatible form: `{"data": ["<base64 Token>"], "bindings": [...], "compressed": false}`.
    Data {
        data: Vec<String>,
        bindings: Vec<String>,
        compressed: bool,
    },
}

/// Why `redeem` params are refused before any token is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedeemParamsError {
    /// Neither `token` nor `data`, or a `data` that does not hold exactly one token.
    Invalid(&'static str),
    /// `compressed: true`: not served.
    Compressed,
    /// The public redemption API's original form: `data` holds a token preimage, an HMAC tag
    /// and base64 JSON of the curve settings (`{"curve":"p256","hash":"sha256",
    /// "method":"increment"}`), a token of the protocol before RFC 9578.
    EarlierProtocol(EarlierSettings),
}

/// The curve settings an earlier-protocol redemption names, each cut to printable ASCII of at
/// most 32 characters (they are echoed in the answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarlierSettings {
    pub curve: String,
    pub hash: String,
    pub method: String,
}

impl EarlierSettings {
    /// The settings of a `data` of three strings whose last is base64 of a JSON object naming a
    /// `curve`; `None` for any other `data`.
    pub fn of(data: &[String]) -> Option<EarlierSettings> {
        let [_, _, settings] = data else {
            return None;
        };
        use base64::Engine;
        let settings = settings.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(settings)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(settings))
            .ok()?;
        let settings: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let field = |name: &str| -> String {
            let text = settings.get(name).and_then(|v| v.as_str()).unwrap_or("");
            text.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(32)
                .collect()
        };
        settings.get("curve")?.as_str()?;
        Some(EarlierSettings {
            curve: field("curve"),
            hash: field("hash"),
            method: field("method"),
        })
    }
}

impl RedeemParams {
    /// The form the named params of a call select: `token` wins over `data`.
    pub fn from_fields(
        token: Option<String>,
        challenge: Option<String>,
        data: Option<Vec<String>>,
        bindings: Option<Vec<String>>,
        compressed: Option<bool>,
    ) -> Result<RedeemParams, RedeemParamsError> {
        if let Some(token) = token {
            return Ok(RedeemParams::Token { token, challenge });
        }
        let Some(data) = data else {
            return Err(RedeemParamsError::Invalid("token (or data) is required"));
        };
        if let Some(settings) = EarlierSettings::of(&data) {
            return Err(RedeemParamsError::EarlierProtocol(settings));
        }
        if data.len() != 1 {
            return Err(RedeemParamsError::Invalid(
                "data must be an array holding exactly one base64 token",
            ));
        }
        if compressed == Some(true) {
            return Err(RedeemParamsError::Compressed);
        }
        Ok(RedeemParams::Data {
            data,
            bindings: bindings.unwrap_or_default(),
            compressed: false,
        })
    }

    /// The token's text and the challenges it may be bound to.
    pub fn token_and_challenges(&self) -> (&str, Vec<&str>) {
        match self {
            RedeemParams::Token { token, challenge } => {
                (token, challenge.iter().map(String::as_str).collect())
            }
            RedeemParams::Data { data, bindings, .. } => (
                data.first().map_or("", String::as_str),
                bindings.iter().map(String::as_str).collect(),
            ),
        }
    }
}

/// The result of a successful `redeem`: `"success"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redeemed {
    #[serde(rename = "success")]
    Success,
}

/// The methods of privacypassd's JSON-RPC routes (`/rpc`; `/api/redeem` serves `redeem`).
///
/// Params are named (a JSON object); keys are read in kebab, camel or snake case.
#[cfg(any(feature = "server", feature = "client"))]
#[cfg_attr(
    all(feature = "server", feature = "client"),
    jsonrpsee::proc_macros::rpc(server, client)
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    jsonrpsee::proc_macros::rpc(server)
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    jsonrpsee::proc_macros::rpc(client)
)]
pub trait PrivacyPass {
    /// Blind-signs `blinded-token` with the key `key-id` names, or a batch: `blinded-tokens`
    /// for the key `key-id` names, or `batch`, entries of any keys; see [`IssueRequest`].
    #[method(name = "issue", param_kind = map, with_extensions)]
    async fn issue(
        &self,
        #[argument(rename = "blinded-token")] blinded_token: Option<String>,
        #[argument(rename = "key-id")] key_id: Option<String>,
        #[argument(rename = "blinded-tokens")] blinded_tokens: Option<Vec<String>>,
        batch: Option<Vec<IssueParams>>,
    ) -> jsonrpsee::core::RpcResult<IssueResult>;

    /// Verifies a token (bound to `challenge` or one of `bindings` when given) and records its
    /// spend; see [`RedeemParams`] for the two forms.
    #[method(name = "redeem", param_kind = map, with_extensions)]
    async fn redeem(
        &self,
        token: Option<String>,
        challenge: Option<String>,
        data: Option<Vec<String>>,
        bindings: Option<Vec<String>>,
        compressed: Option<bool>,
    ) -> jsonrpsee::core::RpcResult<Redeemed>;
}

/// `issue` in each of its forms, for clients.
#[cfg(feature = "client")]
pub trait IssueToken: PrivacyPassClient {
    /// Issues one token: `blinded_token` (base64url) with the key `key_id` (hex) names.
    fn issue_token(
        &self,
        blinded_token: String,
        key_id: String,
    ) -> impl std::future::Future<Output = Result<IssueResult, jsonrpsee::core::client::Error>> + Send
    where
        Self: Sync,
    {
        self.issue(Some(blinded_token), Some(key_id), None, None)
    }

    /// Issues a batch of tokens of one key (amortized for a VOPRF key).
    fn issue_tokens(
        &self,
        blinded_tokens: Vec<String>,
        key_id: String,
    ) -> impl std::future::Future<Output = Result<IssueResult, jsonrpsee::core::client::Error>> + Send
    where
        Self: Sync,
    {
        self.issue(None, Some(key_id), Some(blinded_tokens), None)
    }

    /// Issues a generic batch: each entry on its own, of any key.
    fn issue_batch(
        &self,
        batch: Vec<IssueParams>,
    ) -> impl std::future::Future<Output = Result<IssueResult, jsonrpsee::core::client::Error>> + Send
    where
        Self: Sync,
    {
        self.issue(None, None, None, Some(batch))
    }
}

#[cfg(feature = "client")]
impl<T: PrivacyPassClient + ?Sized> IssueToken for T {}

/// `redeem` in its usual form, for clients.
#[cfg(feature = "client")]
pub trait RedeemToken: PrivacyPassClient {
    /// Redeems `token` (base64url), bound to `challenge` (base64url) when given.
    fn redeem_token(
        &self,
        token: String,
        challenge: Option<String>,
    ) -> impl std::future::Future<Output = Result<Redeemed, jsonrpsee::core::client::Error>> + Send
    where
        Self: Sync,
    {
        self.redeem(Some(token), challenge, None, None, None)
    }
}

#[cfg(feature = "client")]
impl<T: PrivacyPassClient + ?Sized> RedeemToken for T {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn redeem_params_serialize_as_the_call_names_them() {
        let token = RedeemParams::Token {
            token: "t".into(),
            challenge: None,
        };
        assert_eq!(serde_json::to_value(&token).unwrap(), json!({"token": "t"}));
        let bound = RedeemParams::Token {
            token: "t".into(),
            challenge: Some("c".into()),
        };
        assert_eq!(
            serde_json::to_value(&bound).unwrap(),
            json!({"token": "t", "challenge": "c"})
        );
        let data = RedeemParams::from_fields(None, None, Some(vec!["t".into()]), None, None);
        assert_eq!(
            serde_json::to_value(data.unwrap()).unwrap(),
            json!({"data": ["t"], "bindings": [], "compressed": false})
        );
    }

    #[test]
    fn issue_params_and_results_read_every_casing() {
        for body in [
            json!({"blinded-token": "b", "key-id": "k"}),
            json!({"blindedToken": "b", "keyId": "k"}),
            json!({"blinded_token": "b", "key_id": "k"}),
        ] {
            let params: IssueParams = serde_json::from_value(body).unwrap();
            assert_eq!(
                (params.blinded_token.as_str(), params.key_id.as_str()),
                ("b", "k")
            );
        }
        let entries = vec![
            BatchEntry::BlindSig("a".into()),
            BatchEntry::Error(EntryError {
                code: -32011,
                message: "m".into(),
            }),
        ];
        for case in KeyCase::ALL {
            let sig = case.spell("blind-sig");
            for (issued, text) in [
                (Issued::BlindSig("s".into()), json!({ sig.clone(): "s" })),
                (
                    Issued::BlindSigs(vec!["s".into(), "t".into()]),
                    json!({ case.spell("blind-sigs"): ["s", "t"] }),
                ),
                (
                    Issued::Batch(entries.clone()),
                    json!({"batch": [{ sig.clone(): "a" },
                        {"error": {"code": -32011, "message": "m"}}]}),
                ),
            ] {
                let result = IssueResult { issued, case };
                assert_eq!(serde_json::to_value(&result).unwrap(), text);
                assert_eq!(serde_json::from_value::<IssueResult>(text).unwrap(), result);
            }
        }
        let partial = IssueResult {
            issued: Issued::Batch(entries),
            case: KeyCase::Kebab,
        };
        assert!(partial.partial() && partial.blind_sig().is_none());
        for wrong in [
            json!({"sig": "s"}),
            json!({"blind-sig": "s", "blindSig": "s"}),
            json!({"blind-sig": "s", "batch": []}),
            json!({"blind-sigs": "s"}),
            json!([]),
        ] {
            assert!(
                serde_json::from_value::<IssueResult>(wrong.clone()).is_err(),
                "{wrong}"
            );
        }
        assert_eq!(
            serde_json::to_value(Redeemed::Success).unwrap(),
            json!("success")
        );
    }

    #[test]
    fn issue_params_select_one_form() {
        let s = |t: &str| Some(t.to_owned());
        let one = IssueParams {
            blinded_token: "b".into(),
            key_id: "k".into(),
        };
        assert_eq!(
            IssueRequest::from_fields(s("b"), s("k"), None, None),
            Ok(IssueRequest::Single(one.clone()))
        );
        let many =
            IssueRequest::from_fields(None, s("k"), Some(vec!["a".into(), "b".into()]), None);
        assert_eq!(many.as_ref().map(IssueRequest::tokens), Ok(2));
        let batch = IssueRequest::from_fields(None, None, None, Some(vec![one.clone(); 3]));
        assert_eq!(batch.map(|b| b.tokens()), Ok(3));
        for (token, key, tokens, batch) in [
            (None, None, None, None),
            (s("b"), None, None, None),
            (None, None, Some(vec![]), None),
            (s("b"), s("k"), Some(vec![]), None),
            (None, s("k"), None, Some(vec![one.clone()])),
            (s("b"), None, None, Some(vec![one.clone()])),
            (None, s("k"), None, None),
        ] {
            assert!(IssueRequest::from_fields(token, key, tokens, batch).is_err());
        }
        let body: IssueBody =
            serde_json::from_value(json!({"blindedTokens": ["a"], "key_id": "k"})).unwrap();
        assert_eq!(body.request().map(|r| r.tokens()), Ok(1));
        for (params, n) in [
            (r#"{"blinded-token":"b","key-id":"k"}"#, 1),
            (r#"{"blinded-tokens":["a","b","c"],"key-id":"k"}"#, 3),
            (r#"{"blindedTokens":["a","b"]}"#, 2),
            (r#"{"batch":[{},{},{},{}]}"#, 4),
            (r#"{"batch":[]}"#, 1),
            (r#"{"batch":7}"#, 1),
            ("not json", 1),
        ] {
            assert_eq!(issue_tokens(params), n, "{params}");
        }
    }

    #[test]
    fn casings_rename_nested_keys() {
        let body = json!({"blind-sig": "x", "errors": [{"token-key-id": 1}]});
        assert_eq!(
            KeyCase::Camel.apply(body.clone()),
            json!({"blindSig": "x", "errors": [{"tokenKeyId": 1}]})
        );
        assert_eq!(
            KeyCase::Snake.apply(body.clone()),
            json!({"blind_sig": "x", "errors": [{"token_key_id": 1}]})
        );
        assert_eq!(KeyCase::Kebab.apply(body.clone()), body);
        for case in KeyCase::ALL {
            assert_eq!(case.to_kebab(case.apply(body.clone())), body);
        }
        assert_eq!(KeyCase::from_name("CAMEL"), Some(KeyCase::Camel));
        assert_eq!(KeyCase::from_name("pascal"), None);
    }

    #[test]
    fn redeem_forms() {
        let token = RedeemParams::from_fields(Some("t".into()), None, Some(vec![]), None, None);
        assert_eq!(
            token.unwrap().token_and_challenges(),
            ("t", Vec::<&str>::new())
        );
        let data = RedeemParams::from_fields(
            None,
            None,
            Some(vec!["t".into()]),
            Some(vec!["c".into()]),
            Some(false),
        );
        assert_eq!(data.unwrap().token_and_challenges(), ("t", vec!["c"]));
        assert_eq!(
            RedeemParams::from_fields(None, None, Some(vec!["t".into()]), None, Some(true)),
            Err(RedeemParamsError::Compressed)
        );
        let settings = "eyJjdXJ2ZSI6InAyNTYiLCJoYXNoIjoic2hhMjU2IiwibWV0aG9kIjoiaW5jcmVtZW50In0=";
        let earlier = vec!["p".into(), "t".into(), settings.into()];
        assert_eq!(
            RedeemParams::from_fields(None, None, Some(earlier), None, Some(false)),
            Err(RedeemParamsError::EarlierProtocol(EarlierSettings {
                curve: "p256".into(),
                hash: "sha256".into(),
                method: "increment".into(),
            }))
        );
        let hostile = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(r#"{{"curve":"p256\n{}","hash":7}}"#, "x".repeat(100)),
        );
        let Err(RedeemParamsError::EarlierProtocol(cut)) = RedeemParams::from_fields(
            None,
            None,
            Some(vec!["p".into(), "t".into(), hostile]),
            None,
            None,
        ) else {
            panic!("not read as the earlier form");
        };
        assert_eq!((cut.curve.len(), cut.hash.as_str()), (32, ""));
        assert!(cut.curve.starts_with("p256x"));
        let not_settings = vec!["a".into(), "b".into(), "bm90IGpzb24=".into()];
        for data in [
            None,
            Some(vec![]),
            Some(vec!["a".into(), "b".into()]),
            Some(not_settings),
        ] {
            assert!(matches!(
                RedeemParams::from_fields(None, None, data, None, None),
                Err(RedeemParamsError::Invalid(_))
            ));
        }
    }
}
