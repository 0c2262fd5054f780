//! `GET /.well-known/private-token-issuer-directory`: the RFC 9578 directory of the keys
//! issuing now and of those published ahead of their start (the rotation policy's
//! `publish-ahead`), with the policy's `Cache-Control: max-age` and an `ETag` (304 on
//! `If-None-Match`).

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use hyper::{Method, Request, StatusCode};
use privacypass_core::crypto;
use privacypass_core::directory::IssuerDirectory;

use crate::app::App;
use crate::http::{method_not_allowed, respond, Resp};

/// `GET /.well-known/private-token-issuer-directory`.
/// `allow` lists the methods served (GET, HEAD), as the route table has them.
pub fn directory<B>(app: &App, req: &Request<B>, allow: &'static str) -> Resp {
    if !allow.split(", ").any(|m| m == req.method().as_str()) {
        let resp = respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n");
        return method_not_allowed(allow, resp);
    }
    let policy = &app.settings.rotation;
    let body = IssuerDirectory::of_published_keys(
        &app.keys(),
        &app.settings.issuer_request_uri,
        privacypass_core::unix_now(),
        policy.publish_ahead,
        policy.listed,
    )
    .to_json();
    let etag = format!(
        "\"{}\"",
        hex::encode(&crypto::sha256(body.as_bytes())[..16])
    );
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        respond(
            StatusCode::NOT_MODIFIED,
            "application/private-token-issuer-directory",
            Bytes::new(),
        )
    } else if req.method() == Method::HEAD {
        respond(
            StatusCode::OK,
            "application/private-token-issuer-directory",
            Bytes::new(),
        )
    } else {
        respond(
            StatusCode::OK,
            "application/private-token-issuer-directory",
            body,
        )
    };
    let headers = resp.headers_mut();
    // The policy's max-age: a key published `publish_ahead` before it issues is in every
    // cache before it issues (rotation's inequality).
    if let Ok(v) = HeaderValue::from_str(&format!(
        "public, max-age={}, must-revalidate",
        policy.max_age
    )) {
        headers.insert(CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    resp
}
