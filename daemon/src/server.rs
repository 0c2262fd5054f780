//! The HTTP server: accept loop with a connection cap, hyper HTTP/1.1 connections with a
//! header-read timeout serving the stack (the route table inside the layers of `layers`), and
//! a graceful stop that finishes the requests in flight.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tower::{ServiceBuilder, ServiceExt};
use tracing::{info, warn};

use crate::app::App;
use crate::deadline::Deadline;
use crate::http::Resp;
use crate::layers::{Admission, AnswerHeaders, AppLayer, RequestLog, Wrapped};
use crate::routes::Router;

/// How long a graceful stop waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The stack every request passes: the route table inside its layers.
pub type Stack = Wrapped<Wrapped<Wrapped<Router, Admission>, AnswerHeaders>, RequestLog>;

/// The whole stack: the route table inside the layers every request passes (request id and
/// access log outermost, then the headers of every API answer, then the admission of API
/// requests).
pub fn stack(router: Router) -> Stack {
    let app = router.app().clone();
    ServiceBuilder::new()
        .layer(AppLayer::new(app.clone(), RequestLog))
        .layer(AppLayer::new(app.clone(), AnswerHeaders))
        .layer(AppLayer::new(app, Admission))
        .service(router)
}

/// A request through the whole stack, in process (no socket, any body type).
pub async fn handle<B>(router: &Router, req: Request<B>) -> Resp
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match stack(router.clone()).oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// The open connections, oldest first, each with the signal that asks it to close once its
/// request in flight (if any) is answered.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, Arc<Notify>>,
}

impl Connections {
    fn add(&mut self) -> (u64, Arc<Notify>) {
        let id = self.next;
        self.next += 1;
        let notify = Arc::new(Notify::new());
        self.open.insert(id, notify.clone());
        (id, notify)
    }

    /// Asks the oldest connection to close; false when none is left to ask.
    fn shed_oldest(&mut self) -> bool {
        match self.open.pop_first() {
            Some((_, notify)) => {
                notify.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and drains the connections. At the
/// connection cap, a new connection makes the oldest one close (after answering its request
/// in flight): idle keep-alive connections cannot lock new clients out.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let router = Router::new(app.clone());
    let stack = stack(router.clone());
    let max = app.settings.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.settings.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Ok(mut open) = connections.lock() {
                    open.shed_oldest();
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = Deadline::new(
            stream,
            app.settings.write_timeout,
            app.settings.idle_timeout,
        );
        let service = TowerToHyperService::new(stack.clone());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        let registry = connections.clone();
        let Ok((id, shed)) = connections.lock().map(|mut c| c.add()) else {
            break;
        };
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
                () = shed.notified() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            if let Ok(mut open) = registry.lock() {
                open.open.remove(&id);
            }
            drop(permit);
        });
    }
    drop(listener);
    info!("stopping: no new connections, draining requests in flight");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(max as u32)).await;
    if drained.is_err() {
        warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    if !router.websockets().close_all(DRAIN_TIMEOUT).await {
        warn!("WebSocket connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}
