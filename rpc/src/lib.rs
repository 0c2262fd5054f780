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

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
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
                required: true,
                schema: STRING,
            },
            Param {
                name: "key-id",
                required: true,
                schema: STRING,
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
        ISSUE => json!({"name": "issued", "schema": {"type": "object",
            "properties": {"blind-sig": {"type": "string"}}, "required": ["blind-sig"]}}),
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

/// The result of `issue`: `{"blind-sig": "<base64url>"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueResult {
    /// base64url of the blind signature: the RFC 9578 TokenResponse.
    pub blind_sig: String,
    /// How the key is spelled when this result is written; any spelling is read.
    pub case: KeyCase,
}

const BLIND_SIG: &str = "blind-sig";

impl Serialize for IssueResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self.case {
            KeyCase::Kebab => map.serialize_entry(BLIND_SIG, &self.blind_sig)?,
            KeyCase::Camel => map.serialize_entry("blindSig", &self.blind_sig)?,
            KeyCase::Snake => map.serialize_entry("blind_sig", &self.blind_sig)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for IssueResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = IssueResult;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with blind-sig")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IssueResult, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    let case = KeyCase::ALL.into_iter().find(|c| c.spell(BLIND_SIG) == key);
                    match case {
                        Some(case) if found.is_none() => {
                            found = Some(IssueResult {
                                blind_sig: map.next_value()?,
                                case,
                            })
                        }
                        Some(_) => return Err(de::Error::duplicate_field(BLIND_SIG)),
                        None => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                found.ok_or_else(|| de::Error::missing_field(BLIND_SIG))
            }
        }
        deserializer.deserialize_map(Fields)
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
    /// Blind-signs `blinded-token` with the key `key-id` names.
    #[method(name = "issue", param_kind = map, with_extensions)]
    async fn issue(
        &self,
        #[argument(rename = "blinded-token")] blinded_token: String,
        #[argument(rename = "key-id")] key_id: String,
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
        for case in KeyCase::ALL {
            let result = IssueResult {
                blind_sig: "s".into(),
                case,
            };
            let text = serde_json::to_value(&result).unwrap();
            assert_eq!(text, json!({ case.spell("blind-sig"): "s" }));
            assert_eq!(serde_json::from_value::<IssueResult>(text).unwrap(), result);
        }
        assert!(serde_json::from_value::<IssueResult>(json!({"sig": "s"})).is_err());
        assert_eq!(
            serde_json::to_value(Redeemed::Success).unwrap(),
            json!("success")
        );
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
