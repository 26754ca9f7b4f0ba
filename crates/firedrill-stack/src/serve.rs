//! What both parts need to serve HTTP: the accept loop with its graceful stop, one-line
//! answers, the signals that stop them, and small task and lock helpers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;

use super::StackError;

/// Every answer is small and built whole.
pub type Answer = Response<Full<Bytes>>;

/// How long the accept loop pauses after a failed accept (out of file descriptors, say), so
/// that it does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// A multi-threaded runtime: the load balancer and a loaded service need both cores.
pub fn runtime() -> Result<tokio::runtime::Runtime, StackError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(StackError::Runtime)
}

/// Binds `address` (`host:port`).
pub async fn bind(address: &str) -> Result<TcpListener, StackError> {
    TcpListener::bind(address).await.map_err(|source| StackError::Listen { address: address.into(), source })
}

/// Serves HTTP/1.1 with keep-alive on `listener` until `stop` completes; then closes the
/// listener, closes idle connections, and gives requests in flight up to `drain` to finish.
/// Connections still open after that are dropped with the runtime.
pub async fn serve<H, F>(listener: TcpListener, handler: H, stop: impl Future<Output = ()>, drain: Duration)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        // Answers are one small write each; Nagle's algorithm would hold them back.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let answer = handler(request);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let connection = http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that resets or stalls is its own problem, not a state change to log.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
}

/// A one-line plain-text answer. Reasons may quote errors, so line breaks are flattened:
/// drill reports show the body as one line.
pub fn text(status: StatusCode, body: &str) -> Answer {
    let mut line = body.replace(['\r', '\n'], " ");
    line.push('\n');
    answer(status, line, "text/plain; charset=utf-8")
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Answer {
    answer(status, format!("{value}\n"), "application/json")
}

/// An answer of `body` as it is.
pub fn answer(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(body.into()));
    *answer.status_mut() = status;
    answer.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer
}

/// SIGTERM (what `docker stop` and a node drain send) and SIGINT, caught from the start so
/// that one arriving during startup is not the default, immediate death.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Catches both signals from now on.
    pub fn new() -> Result<Self, StackError> {
        let term = signal(SignalKind::terminate()).map_err(StackError::Signals)?;
        let int = signal(SignalKind::interrupt()).map_err(StackError::Signals)?;
        Ok(Signals { term, int })
    }

    /// Waits for the next signal; its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// A spawned task that ends when this is dropped, so that what owns it cannot leak it.
pub struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Spawns `task` on the current runtime.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        AbortOnDrop(tokio::spawn(task))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked: the guarded values here
/// are replaced whole, never left half-written.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
