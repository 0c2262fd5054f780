//! The daemon's whole HTTP stack in process, without sockets: the route table, the checks of
//! every API call and the JSON-RPC envelope, driven with in-memory bodies. The real-daemon
//! tests (e2e, persona, edges) prove the deployment; these cover the envelope's edges fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use privacypass_core::{b64, Client, Issuer, IssuerKey, KeySet, KeyValidity, TokenChallenge};
use privacypassd::app::App;
use privacypassd::auth::ApiKeys;
use privacypassd::config::ServeArgs;
use privacypassd::routes::Router;
use privacypassd::server;
use serde_json::{json, Value};

struct Stack {
    router: Router,
    key: Arc<IssuerKey>,
}

fn stack() -> Stack {
    let settings = ServeArgs {
        store: Some("memory:".into()),
        max_batch: Some(3),
        max_body_bytes: Some(2048),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    let mut keys = KeySet::new(0);
    let key = keys
        .generate(KeyValidity::new(0, u64::MAX / 2).unwrap())
        .unwrap();
    let backends = privacypass_stores::open_backends("memory:").unwrap();
    let app = Arc::new(App::new(settings, keys, backends, ApiKeys::default()));
    Stack {
        router: Router::new(app),
        key,
    }
}

struct Answer {
    status: u16,
    allow: Option<String>,
    body: Value,
    empty: bool,
}

impl Stack {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let resp = server::handle(&self.router, req).await;
        assert!(resp.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        let status = resp.status().as_u16();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            allow,
            empty: bytes.is_empty(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// A request through the stack: the status, headers and body of its answer.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, hyper::HeaderMap, Bytes) {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = server::handle(&self.router, req).await;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, bytes)
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, &[], &body.to_string()).await
    }

    fn issue_call(&self, id: Value) -> Value {
        let pending = Client::new(self.key.public_key().clone())
            .request(&TokenChallenge::new(2, b"example", &[], b"").unwrap())
            .unwrap();
        json!({"jsonrpc": "2.0", "id": id, "method": "issue", "params": {
            "blinded-token": b64::encode_url(&pending.request().encode()),
            "key-id": hex::encode(self.key.public_key().token_key_id())}})
    }

    fn token(&self) -> String {
        let pending = Client::new(self.key.public_key().clone())
            .request(&TokenChallenge::new(2, b"example", &[], b"").unwrap())
            .unwrap();
        let response = Issuer::new(self.router.app().keys())
            .issue_request(&pending.request().encode(), 1)
            .unwrap();
        b64::encode_url(&pending.finalize(&response.encode()).unwrap().encode())
    }
}

fn redeem_call(id: Value, token: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "redeem", "params": {"token": token}})
}

fn code(body: &Value) -> Option<i64> {
    body.pointer("/error/code").and_then(Value::as_i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_of_every_json_rpc_type_are_echoed() {
    let s = stack();
    for id in [json!("abc"), json!(7), json!(-1), json!(1.5), json!(null)] {
        let a = s
            .post(
                "/rpc",
                &json!({"jsonrpc": "2.0", "id": id, "method": "mint", "params": {}}),
            )
            .await;
        assert_eq!((a.status, code(&a.body)), (400, Some(-32601)), "{}", a.body);
        assert_eq!(a.body["id"], id, "{}", a.body);
        assert_eq!(a.body["jsonrpc"], "2.0");
    }
    for id in [
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!("i".repeat(300)),
    ] {
        let a = s
            .post(
                "/rpc",
                &json!({"jsonrpc": "2.0", "id": id, "method": "mint"}),
            )
            .await;
        assert_eq!((a.status, code(&a.body)), (400, Some(-32600)), "{}", a.body);
        assert_eq!(a.body["id"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_answer_nothing_and_batches_answer_200() {
    let s = stack();
    let token = s.token();
    let note = json!({"jsonrpc": "2.0", "method": "redeem", "params": {"token": token}});
    let a = s.post("/rpc", &note).await;
    assert_eq!((a.status, a.empty), (204, true));
    // The notification ran: the token is spent.
    let a = s.post("/rpc", &redeem_call(json!(1), &token)).await;
    assert_eq!((a.status, code(&a.body)), (403, Some(-32021)), "{}", a.body);
    let a = s.post("/rpc", &json!([note, note])).await;
    assert_eq!((a.status, a.empty), (204, true));
    // A batch: 200, answers in order, errors per call, the notification unanswered.
    let fresh = s.token();
    let batch = json!([
        redeem_call(json!("a"), &fresh),
        redeem_call(json!("b"), &fresh),
        {"jsonrpc": "2.0", "method": "redeem", "params": {"token": s.token()}},
    ]);
    let a = s.post("/rpc", &batch).await;
    assert_eq!(a.status, 200);
    let answers = a.body.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{}", a.body);
    assert_eq!(
        (&answers[0]["id"], &answers[0]["result"]),
        (&json!("a"), &json!("success"))
    );
    assert_eq!(
        (&answers[1]["id"], code(&answers[1])),
        (&json!("b"), Some(-32021))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_before_any_call_runs() {
    let s = stack();
    let token = s.token();
    let call = redeem_call(json!(1), &token);
    let a = s.post("/rpc", &json!([call, call, call, call])).await;
    assert_eq!((a.status, code(&a.body)), (413, Some(-32042)), "{}", a.body);
    // Nothing of the refused batch ran.
    let a = s.post("/rpc", &call).await;
    assert_eq!(
        (a.status, &a.body["result"]),
        (200, &json!("success")),
        "{}",
        a.body
    );
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3000));
    let a = s.send("POST", "/rpc", &[], &big).await;
    assert_eq!((a.status, code(&a.body)), (413, Some(-32042)), "{}", a.body);
    let a = s.send("POST", "/rpc", &[], "[]").await;
    assert_eq!((a.status, code(&a.body)), (400, Some(-32600)));
    let a = s.send("POST", "/rpc", &[], "{not json").await;
    assert_eq!((a.status, code(&a.body)), (400, Some(-32700)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_params_and_routes() {
    let s = stack();
    for method in ["GET", "PUT", "DELETE"] {
        for path in ["/rpc", "/api/redeem", "/api/v1/privacy-passes"] {
            let a = s.send(method, path, &[], "").await;
            assert_eq!(
                (a.status, a.allow.as_deref()),
                (405, Some("POST")),
                "{method} {path}"
            );
            assert_eq!(
                a.body
                    .pointer("/error/code")
                    .or(a.body.pointer("/errors/0/code")),
                Some(&json!(-32041))
            );
        }
    }
    let a = s
        .send(
            "POST",
            "/.well-known/private-token-issuer-directory",
            &[],
            "",
        )
        .await;
    assert_eq!((a.status, a.allow.as_deref()), (405, Some("GET, HEAD")));
    // issue at the redemption route; params not an object; a missing param.
    let a = s.post("/api/redeem", &s.issue_call(json!(1))).await;
    assert_eq!((a.status, code(&a.body)), (400, Some(-32040)), "{}", a.body);
    let a = s
        .post(
            "/rpc",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "issue", "params": ["x", "y"]}),
        )
        .await;
    assert_eq!((a.status, code(&a.body)), (400, Some(-32602)), "{}", a.body);
    let a = s
        .post(
            "/rpc",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "issue", "params": {"key-id": "00"}}),
        )
        .await;
    assert_eq!((a.status, code(&a.body)), (400, Some(-32602)), "{}", a.body);
    assert!(a.body["error"]["data"]["detail"]
        .as_str()
        .unwrap()
        .contains("blinded-token"));
    // Issuance in every casing of the answer.
    for (case, field) in [
        ("kebab", "blind-sig"),
        ("camel", "blindSig"),
        ("snake", "blind_sig"),
    ] {
        let body = s.issue_call(json!(2)).to_string();
        let a = s
            .send("POST", "/rpc", &[("key-inflection", case)], &body)
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body["result"][field].is_string(), "{}", a.body);
    }
    let a = s.send("GET", "/nowhere", &[], "").await;
    assert_eq!(a.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_discover_names_every_method_param_and_code() {
    let s = stack();
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"});
    let a = s.post("/rpc", &discover).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = &a.body["result"];
    assert_eq!(doc["openrpc"], "1.2.6");
    let methods: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(methods, privacypass_rpc::METHODS);
    for method in doc["methods"].as_array().unwrap() {
        let codes: Vec<i64> = method["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        for code in privacypass_core::ErrorCode::ALL {
            assert!(codes.contains(&i64::from(code.code())), "{code:?}");
        }
    }
    // The params it names are the ones the methods take.
    let issue = &doc["methods"][0]["params"];
    let names: Vec<&str> = issue
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let call = s.issue_call(json!(2));
    let mut taken: Vec<&str> = call["params"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    taken.sort();
    // A single call's params, then the two batch forms'.
    assert_eq!(names[..2], taken);
    assert_eq!(names[2..], ["blinded-tokens", "batch"]);
    assert!(issue
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["required"] == false));
    let a = s.post("/rpc", &call).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let redeem = &doc["methods"][1]["params"];
    assert_eq!(redeem[0]["name"], "token");
    let a = s.post("/rpc", &redeem_call(json!(3), &s.token())).await;
    assert_eq!(a.body["result"], "success", "{}", a.body);
    // The redemption route describes what it serves.
    let a = s.post("/api/redeem", &discover).await;
    assert_eq!(
        a.body["result"]["methods"][0]["name"], "redeem",
        "{}",
        a.body
    );
    assert_eq!(a.body["result"]["methods"].as_array().unwrap().len(), 1);
}

/// The OpenAPI document of the repository (docs/openapi.json).
fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The schema `$ref` names, in `doc`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = doc
                .pointer(r.strip_prefix('#').unwrap())
                .unwrap_or_else(|| panic!("{r} names nothing"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Whether `value` is of the JSON Schema type `ty`.
fn of_type(ty: &str, value: &Value) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        other => panic!("a schema type {other} the check does not know"),
    }
}

/// Checks `value` against the parts of JSON Schema the document uses.
fn conforms(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|s| conforms(doc, s, value).is_ok())
            .count();
        return (matching == 1)
            .then_some(())
            .ok_or_else(|| format!("{value} matches {matching} of oneOf"));
    }
    match &schema["type"] {
        Value::String(ty) if !of_type(ty, value) => return Err(format!("{value} is not {ty}")),
        Value::Array(types) if !types.iter().any(|t| of_type(t.as_str().unwrap(), value)) => {
            return Err(format!("{value} is none of {types:?}"))
        }
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return Err(format!("{value} is not {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return Err(format!("{value} is none of {options:?}"));
        }
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        if value.get(name.as_str().unwrap()).is_none() {
            return Err(format!("{value} has no {name}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, sub) in props {
            if let Some(v) = obj.get(name) {
                conforms(doc, sub, v).map_err(|e| format!("{name}: {e}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
        if array.len() < min {
            return Err(format!("{value} has fewer than {min} items"));
        }
        for v in array {
            conforms(doc, items, v)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_the_routes_served() {
    use privacypassd::routes::ROUTES;
    use std::collections::BTreeSet;

    let doc = openapi();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    // The paths and methods are the route table's: a GET is documented on the JSON-RPC routes
    // for their WebSocket upgrade, and on the routes that take any method.
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let served: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
    assert_eq!(documented, served);
    for route in ROUTES {
        let mut methods: BTreeSet<String> = match route.methods {
            Some(m) => m.split(", ").map(str::to_lowercase).collect(),
            None => ["get".to_owned()].into(),
        };
        if route.websocket {
            methods.insert("get".to_owned());
        }
        let in_doc: BTreeSet<String> = paths[route.path]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(in_doc, methods, "{}", route.path);
    }

    // What each route answers is documented: the status for that operation, its media type,
    // and a JSON body of its schema.
    let stack = stack();
    let key_id = hex::encode(stack.key.public_key().token_key_id());
    let pending = Client::new(stack.key.public_key().clone())
        .request(&TokenChallenge::new(2, b"example", &[], b"").unwrap())
        .unwrap();
    let request = pending.request().encode();
    let blinded = b64::encode_url(&request);
    let rest_issue = json!({"blinded-token": blinded, "key-id": key_id}).to_string();
    let unknown_key = json!({"blinded-token": blinded, "key-id": "00".repeat(32)}).to_string();
    let bad_blinded = json!({"blinded-token": "AAAA", "key-id": key_id}).to_string();
    let spent = stack.token();
    let _ = stack.post("/rpc", &redeem_call(json!(1), &spent)).await;
    let big = "x".repeat(4096);
    let native = [("content-type", "application/private-token-request")];
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let directory = "/.well-known/private-token-issuer-directory";
    let etag = {
        let (_, headers, _) = stack.exchange("GET", directory, &[], Vec::new()).await;
        headers["etag"].to_str().unwrap().to_owned()
    };
    // (method, path, headers, body, the status it must answer)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/rpc",
            vec![],
            stack.issue_call(json!(2)).to_string().into(),
            200,
        ),
        (
            "POST",
            "/rpc",
            vec![],
            br#"{"jsonrpc":"2.0","method":"x"}"#.to_vec(),
            204,
        ),
        ("POST", "/rpc", vec![], b"{".to_vec(), 400),
        (
            "POST",
            "/rpc",
            vec![],
            redeem_call(json!(3), &spent).to_string().into(),
            403,
        ),
        ("POST", "/rpc", vec![], big.clone().into(), 413),
        ("GET", "/rpc", vec![], Vec::new(), 405),
        ("GET", "/rpc", upgrade.to_vec(), Vec::new(), 101),
        (
            "POST",
            "/api/redeem",
            vec![],
            redeem_call(json!(4), &stack.token()).to_string().into(),
            200,
        ),
        (
            "POST",
            "/api/redeem",
            vec![],
            stack.issue_call(json!(5)).to_string().into(),
            400,
        ),
        ("GET", "/api/redeem", upgrade.to_vec(), Vec::new(), 101),
        (
            "POST",
            "/api/v1/privacy-passes",
            vec![],
            rest_issue.into(),
            201,
        ),
        (
            "POST",
            "/api/v1/privacy-passes",
            vec![],
            b"[]".to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/privacy-passes",
            vec![],
            unknown_key.into(),
            404,
        ),
        (
            "POST",
            "/api/v1/privacy-passes",
            vec![],
            bad_blinded.into(),
            422,
        ),
        (
            "POST",
            "/api/v1/privacy-passes",
            vec![],
            big.clone().into(),
            413,
        ),
        (
            "POST",
            "/token-request",
            native.to_vec(),
            request.clone(),
            200,
        ),
        ("POST", "/token-request", vec![], request.clone(), 415),
        (
            "POST",
            "/token-request",
            native.to_vec(),
            b"\x00\x02".to_vec(),
            422,
        ),
        ("POST", "/token-request", native.to_vec(), big.into(), 413),
        ("GET", directory, vec![], Vec::new(), 200),
        ("HEAD", directory, vec![], Vec::new(), 200),
        (
            "GET",
            directory,
            vec![("if-none-match", etag.as_str())],
            Vec::new(),
            304,
        ),
        ("GET", "/healthz", vec![], Vec::new(), 200),
        ("GET", "/livez", vec![], Vec::new(), 200),
        ("GET", "/metrics", vec![], Vec::new(), 200),
    ];
    for (method, path, headers, body, expected) in cases {
        let (status, resp_headers, bytes) = stack.exchange(method, path, &headers, body).await;
        let what = format!("{method} {path} answered {status}");
        assert_eq!(
            status,
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let op = &paths[path][method.to_lowercase()];
        let documented = op["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{what}, which its document does not list"));
        let Some(content) = documented.get("content").and_then(Value::as_object) else {
            assert!(
                bytes.is_empty(),
                "{what} with a body its document does not have"
            );
            continue;
        };
        let media = resp_headers["content-type"].to_str().unwrap();
        let media = media.split(';').next().unwrap().trim();
        let schema = content
            .get(media)
            .unwrap_or_else(|| panic!("{what} as {media}, not {:?}", content.keys()))
            .get("schema")
            .unwrap();
        if method == "HEAD" || !(media.ends_with("json") || media.ends_with("directory")) {
            continue;
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        conforms(&doc, schema, &value).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}
