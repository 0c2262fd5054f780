//! The route table: every path the daemon serves, the HTTP methods it takes, whether the API
//! checks apply (and how its body is taken), and its handler. The server reads this table
//! alone; handlers live in one module per route family.

pub mod directory;
pub mod issuance;
pub mod native;
pub mod ops;
pub mod redemption;
pub mod rpc;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Body;
use hyper::Request;

use crate::app::App;
use crate::guard::{self, Form, Parsed};
use crate::http::{Handled, Resp};
use crate::jsonrpc;
use crate::routes::rpc::Modules;
use crate::websocket::{is_upgrade, Hub};
use privacypass_rpc::jsonrpsee::core::server::Methods;

/// What answers a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// JSON-RPC with every method.
    Rpc,
    /// JSON-RPC with `redeem` only.
    RedeemRpc,
    Rest,
    Native,
    Directory,
    Healthz,
    Livez,
    Metrics,
}

/// A row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub path: &'static str,
    /// The HTTP methods served, as an `Allow` header lists them; `None` for any.
    pub methods: Option<&'static str>,
    /// For the API routes: how the body is taken and errors answered (the checks of
    /// `guard` apply: API keys, rate limits, body limit, Idempotency-Key).
    pub api: Option<Form>,
    /// Whether a `GET` with `Upgrade: websocket` becomes a JSON-RPC WebSocket connection.
    pub websocket: bool,
    pub handler: Handler,
}

pub const ROUTES: [Route; 8] = [
    Route {
        path: "/rpc",
        methods: Some("POST"),
        api: Some(Form::JsonRpc { redeem_only: false }),
        websocket: true,
        handler: Handler::Rpc,
    },
    Route {
        path: "/api/redeem",
        methods: Some("POST"),
        api: Some(Form::JsonRpc { redeem_only: true }),
        websocket: true,
        handler: Handler::RedeemRpc,
    },
    Route {
        path: "/api/v1/privacy-passes",
        methods: Some("POST"),
        api: Some(Form::Rest),
        websocket: false,
        handler: Handler::Rest,
    },
    Route {
        path: "/token-request",
        methods: Some("POST"),
        api: Some(Form::Native),
        websocket: false,
        handler: Handler::Native,
    },
    Route {
        path: "/.well-known/private-token-issuer-directory",
        methods: Some("GET, HEAD"),
        api: None,
        websocket: false,
        handler: Handler::Directory,
    },
    Route {
        path: "/healthz",
        methods: None,
        api: None,
        websocket: false,
        handler: Handler::Healthz,
    },
    Route {
        path: "/livez",
        methods: None,
        api: None,
        websocket: false,
        handler: Handler::Livez,
    },
    Route {
        path: "/metrics",
        methods: None,
        api: None,
        websocket: false,
        handler: Handler::Metrics,
    },
];

/// The route table as a tower service: what the layers of `server::stack` wrap.
impl<B> tower::Service<Request<B>> for Router
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Resp;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let router = self.clone();
        Box::pin(async move { Ok(router.serve(req).await) })
    }
}

/// The route of a path.
pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

/// The routes with what their handlers share: the app and the JSON-RPC modules.
#[derive(Clone, Debug)]
pub struct Router {
    app: Arc<App>,
    modules: Modules,
    websockets: Hub,
}

impl Router {
    pub fn new(app: Arc<App>) -> Router {
        let modules = Modules::new(app.clone());
        let websockets = Hub::new(app.settings.max_websockets);
        Router {
            app,
            modules,
            websockets,
        }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The WebSocket connections of the JSON-RPC routes.
    pub fn websockets(&self) -> &Hub {
        &self.websockets
    }

    /// The JSON-RPC methods a route serves.
    fn methods(&self, handler: Handler) -> &Methods {
        match handler {
            Handler::RedeemRpc => &self.modules.redeem_only,
            _ => &self.modules.all,
        }
    }

    /// Answers a request, in process: no socket, any body type.
    pub async fn serve<B>(&self, req: Request<B>) -> Resp
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let app = &self.app;
        let Some(route) = find(req.uri().path()) else {
            return ops::not_found(req.uri().path());
        };
        if let (Some(form), true) = (route.api, route.websocket && is_upgrade(&req)) {
            let methods = self.methods(route.handler);
            return self.websockets.upgrade(app, req, form, methods);
        }
        if let Some(form) = route.api {
            return guard::serve(app, req, form, |caller, body| async move {
                match (route.handler, body) {
                    (Handler::Rpc, Parsed::Calls(calls)) => {
                        Ok(jsonrpc::answer(&self.modules.all, caller, calls).await)
                    }
                    (Handler::RedeemRpc, Parsed::Calls(calls)) => {
                        Ok(jsonrpc::answer(&self.modules.redeem_only, caller, calls).await)
                    }
                    (Handler::Rest, Parsed::Rest { raw, .. }) => {
                        Ok(Handled::whole(issuance::rest(app, &caller, &raw).await?))
                    }
                    (Handler::Native, Parsed::Native(request)) => Ok(Handled::whole(
                        native::token_request(app, &caller, request).await?,
                    )),
                    (handler, _) => Err(crate::error::ApiError::new(
                        privacypass_core::ErrorCode::Internal,
                        format!("route {handler:?} was given a body it does not take"),
                    )),
                }
            })
            .await;
        }
        match route.handler {
            Handler::Directory => directory::directory(app, &req, route.methods.unwrap_or("GET")),
            Handler::Healthz => ops::healthz(app).await,
            Handler::Livez => ops::livez(),
            Handler::Metrics => ops::metrics(app).await,
            // The API routes are answered above.
            Handler::Rpc | Handler::RedeemRpc | Handler::Rest | Handler::Native => {
                ops::not_found(route.path)
            }
        }
    }
}
