//! The HTTP client for privacypassd. The daemon answers a single call that fails with the HTTP
//! status of its error (403 for a spent token, 503 for a store that cannot record): jsonrpsee's
//! HTTP client reports any status but 2xx as `Rejected` without reading the body, so the
//! JSON-RPC error and its code would be lost. [`ErrorStatusLayer`] lets it read a JSON answer
//! whatever its status.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use jsonrpsee::core::client::Error;
use jsonrpsee_http_client::transport::HttpBackend;
use jsonrpsee_http_client::{HttpClient, RpcLogger, RpcService};
use tower::{Layer, Service};

/// An HTTP client of the daemon's JSON-RPC routes.
pub type Client = HttpClient<RpcLogger<RpcService<ErrorStatus<HttpBackend>>>>;

/// A client of the JSON-RPC route at `url` (`http://127.0.0.1:8787/rpc`), whose failed calls
/// are the daemon's JSON-RPC errors.
pub fn client(url: impl AsRef<str>) -> Result<Client, Error> {
    HttpClient::builder()
        .set_http_middleware(tower::ServiceBuilder::new().layer(ErrorStatusLayer))
        .build(url)
}

/// Reads a JSON answer whatever its HTTP status (see the module's comment).
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorStatusLayer;

impl<S> Layer<S> for ErrorStatusLayer {
    type Service = ErrorStatus<S>;

    fn layer(&self, inner: S) -> ErrorStatus<S> {
        ErrorStatus(inner)
    }
}

/// The service of [`ErrorStatusLayer`].
#[derive(Clone, Debug)]
pub struct ErrorStatus<S>(S);

impl<S, Request, B> Service<Request> for ErrorStatus<S>
where
    S: Service<Request, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let answer = self.0.call(req);
        Box::pin(async move {
            let mut resp = answer.await?;
            let json = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            // A JSON body is a JSON-RPC answer (an error object); anything else, a proxy's
            // error page for one, stays a rejection.
            if json && (resp.status().is_client_error() || resp.status().is_server_error()) {
                *resp.status_mut() = StatusCode::OK;
            }
            Ok(resp)
        })
    }
}
