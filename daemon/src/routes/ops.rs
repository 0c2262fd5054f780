//! Operations: `GET /healthz` (readiness), `GET /livez` (liveness), `GET /metrics`
//! (Prometheus text), and the answer to a path no route serves.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::http::{json_response, respond, Resp};

/// `GET /healthz`, readiness: 200 when a key (of any token type) issues and a spend could be
/// recorded now (the
/// store's write probe, at most one a second: a shared Redis is not asked on every hit).
pub async fn healthz(app: &Arc<App>) -> Resp {
    let keys = app.keys();
    let now = privacypass_core::unix_now();
    let issuing = keys.issuing(now).count() + keys.voprf_issuing(now).count();
    let store_ok = app.store_writable().await;
    let ready = issuing > 0 && store_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({"status": if ready {"ok"} else {"unavailable"}, "issuing-keys": issuing, "store": if store_ok {"ok"} else {"unavailable"}}),
    )
}

/// `GET /livez`, liveness: 200 while the process serves requests, whatever its store does.
pub fn livez() -> Resp {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /metrics`, with whether the store can record a spend now (the health probe's outcome).
pub async fn metrics(app: &Arc<App>) -> Resp {
    let writable = app.store_writable().await;
    let mut text = app.metrics.render(
        &app.keys(),
        privacypass_core::unix_now(),
        app.store.commit_sizes().as_ref(),
    );
    text.push_str(
        "# HELP privacypass_store_writable 1 when a spend can be recorded now, else 0.
",
    );
    text.push_str(
        "# TYPE privacypass_store_writable gauge
",
    );
    text.push_str(&format!(
        "privacypass_store_writable {}
",
        u8::from(writable)
    ));
    respond(StatusCode::OK, "text/plain; version=0.0.4", text)
}

pub fn not_found(path: &str) -> Resp {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errors": [{"code": 404, "title": "not found", "detail": format!("no route {path}")}]}),
    )
}
