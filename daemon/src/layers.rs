//! The tower layers every request passes, around the route table: the request id and the
//! access log (`RequestLog`), the headers an API route's answer carries whatever answered it
//! (`AnswerHeaders`), and the admission of an API request: method, Content-Type, Persona and
//! idempotency headers, API key and rate limit, before its body is read (`Admission`). Each is
//! a `Wrap` in an `AppLayer`; `server::stack` puts them together.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use tower::{Layer, Service};
use tracing::info;

use crate::app::App;
use crate::guard;
use crate::http::Resp;
use crate::ratelimit::RateState;
use crate::routes;
use crate::websocket::is_upgrade;

pub type Answer = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

/// `Retry-After` of a 503: the spend store could not record, so the client may try again.
const RETRY_UNAVAILABLE_SECS: &str = "1";

/// What a layer does around the service inside it, given the app.
pub trait Wrap: Clone + Send + Sync + 'static {
    fn wrap<S, B>(&self, app: Arc<App>, inner: S, req: Request<B>) -> Answer
    where
        S: Service<Request<B>, Response = Resp, Error = Infallible> + Send + 'static,
        S::Future: Send,
        B: Send + 'static;
}

/// The layer of a `Wrap`.
#[derive(Clone, Debug)]
pub struct AppLayer<W> {
    app: Arc<App>,
    wrap: W,
}

impl<W> AppLayer<W> {
    pub fn new(app: Arc<App>, wrap: W) -> Self {
        AppLayer { app, wrap }
    }
}

impl<S, W: Clone> Layer<S> for AppLayer<W> {
    type Service = Wrapped<S, W>;

    fn layer(&self, inner: S) -> Wrapped<S, W> {
        Wrapped {
            app: self.app.clone(),
            wrap: self.wrap.clone(),
            inner,
        }
    }
}

/// A service inside a `Wrap`.
#[derive(Clone, Debug)]
pub struct Wrapped<S, W> {
    app: Arc<App>,
    wrap: W,
    inner: S,
}

impl<S, B, W> Service<Request<B>> for Wrapped<S, W>
where
    S: Service<Request<B>, Response = Resp, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    W: Wrap,
{
    type Response = Resp;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Answer {
        // The clone that was made ready is the one that answers.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        self.wrap.wrap(self.app.clone(), inner, req)
    }
}

/// Gives each request its id (`Request-Id` on the answer, and on every log line written while
/// it runs) and writes its access-log line.
#[derive(Clone, Copy, Debug)]
pub struct RequestLog;

impl Wrap for RequestLog {
    fn wrap<S, B>(&self, app: Arc<App>, mut inner: S, req: Request<B>) -> Answer
    where
        S: Service<Request<B>, Response = Resp, Error = Infallible> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        Box::pin(async move {
            let started = Instant::now();
            let request_id = app.next_request_id();
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            // Everything logged while the request runs carries its id, whatever the log level
            // (a span at the highest level is never filtered out).
            let span = tracing::error_span!("request", request_id = %request_id);
            let mut resp = tracing::Instrument::instrument(inner.call(req), span).await?;
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                resp.headers_mut().insert("request-id", v);
            }
            app.metrics.record_http();
            info!(
                request_id = %request_id,
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
            Ok(resp)
        })
    }
}

/// The headers of every answer of an API route, whichever check or handler wrote it: the
/// `WWW-Authenticate` of a 401, the `Retry-After` of a 503 (nothing was done, the same call
/// may be repeated shortly) and the operator's Persona ids.
#[derive(Clone, Copy, Debug)]
pub struct AnswerHeaders;

impl Wrap for AnswerHeaders {
    fn wrap<S, B>(&self, app: Arc<App>, mut inner: S, req: Request<B>) -> Answer
    where
        S: Service<Request<B>, Response = Resp, Error = Infallible> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        let api = routes::find(req.uri().path()).is_some_and(|r| r.api.is_some());
        Box::pin(async move {
            let mut resp = inner.call(req).await?;
            if api {
                write_answer_headers(&app, &mut resp);
            }
            Ok(resp)
        })
    }
}

/// The admission of every API request (`guard::admit`): its HTTP method, Content-Type,
/// request headers (`Persona-Version`, `Key-Inflection`, `Idempotency-Key`) and API key, all
/// before a byte of its body is read; a refusal is answered here, an admitted request goes on
/// with what was established in its extensions. Every answer of an API route then carries
/// where the caller stands in its rate limit (`RateLimit-*`, `Retry-After` past it): the
/// handler's count when it counted the calls of a body, else the admission's.
#[derive(Clone, Copy, Debug)]
pub struct Admission;

impl Wrap for Admission {
    fn wrap<S, B>(&self, app: Arc<App>, mut inner: S, req: Request<B>) -> Answer
    where
        S: Service<Request<B>, Response = Resp, Error = Infallible> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        let route = routes::find(req.uri().path());
        let (Some(route), Some(form)) = (route, route.and_then(|r| r.api)) else {
            return Box::pin(inner.call(req));
        };
        let upgrade = route.websocket && is_upgrade(&req);
        let allow = route.methods.unwrap_or("POST");
        let (mut parts, body) = req.into_parts();
        Box::pin(async move {
            let mut rate = None;
            let admitted = guard::admit(
                &app,
                &parts.method,
                &parts.headers,
                form,
                allow,
                upgrade,
                &mut rate,
            )
            .await;
            let mut resp = match admitted {
                Err(refused) => refused,
                Ok(admitted) => {
                    parts.extensions.insert(admitted);
                    inner.call(Request::from_parts(parts, body)).await?
                }
            };
            let state = resp.extensions().get::<RateState>().copied().or(rate);
            if let Some(state) = state {
                state.write_headers(resp.headers_mut());
            }
            Ok(resp)
        })
    }
}

fn write_answer_headers(app: &App, resp: &mut Resp) {
    let status = resp.status();
    let headers = resp.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"privacypass\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !headers.contains_key(RETRY_AFTER) {
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static(RETRY_UNAVAILABLE_SECS),
        );
    }
    for (name, value) in [
        ("persona-environment-id", &app.settings.environment_id),
        ("persona-organization-id", &app.settings.organization_id),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
}
