//! `firedrill stack lb`: the load balancer in front of the shop's replicas, whose view of them
//! is what a user sees during a node drain. [`Config`] holds its settings and [`run`] serves
//! until SIGTERM.
//!
//! Requests go round robin to the healthy backends. A backend is healthy after its health
//! path answered 200; it is checked every `interval`, its name resolved again each time, so
//! that a backend that does not exist yet (a standby, a replacement on a new address) is found
//! when it appears. A failed connection marks its backend down at once (a passive check), and
//! since nothing was sent, the request is retried once on another backend: a replica that
//! died between two checks costs latency, not an error.
//!
//! Two endpoints of its own let drills look at its view: `GET /lb/status` (JSON, every
//! backend) and `GET /lb/capacity?min=N` (200 when at least N backends are healthy).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, timeout_at, Instant, MissedTickBehavior};

use super::serve::{self, lock, AbortOnDrop, Answer, Signals};
use super::StackError;
use firedrill_core::duration::Dur;
use firedrill_core::text::error_chain;
use firedrill_net::cause::IoCause;
use firedrill_net::probe::{self, ProbeError};

/// The load balancer's settings, one per command-line flag.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen, `host:port`.
    pub listen: String,
    /// The backends, `host:port` each; a name is resolved again at every health check.
    pub backends: Vec<String>,
    /// The path that answers 200 on a healthy backend.
    pub health_path: String,
    /// Time between two health checks of a backend.
    pub interval: Duration,
    /// The longest one request to a backend may take, its answer read whole.
    pub timeout: Duration,
}

/// A health check slower than this failed: the backends are on the same network.
const CHECK_TIMEOUT: Duration = Duration::from_millis(300);
/// A connection to a backend slower than this failed, and the request goes elsewhere.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Request bodies are buffered, so that a request can be sent again; they are small.
const MAX_BODY: usize = 1 << 20;
/// Idle keep-alive connections kept per backend; more are closed after use.
const MAX_IDLE: usize = 32;

/// Checks the settings, listens, checks every backend once, and balances until SIGTERM or
/// SIGINT; then returns at once (requests in flight are cut).
pub fn run(config: Config) -> Result<(), StackError> {
    let addresses = config.check()?;
    serve::runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let listener = serve::bind(&config.listen).await?;
        let stop = async move {
            let name = signals.recv().await;
            println!("lb: {name}: stopping");
        };
        Arc::new(Balancer::new(config, addresses)).serve(listener, stop).await;
        Ok(())
    })
}

impl Config {
    /// Each backend's host and port, or what is wrong with the settings.
    fn check(&self) -> Result<Vec<(String, u16)>, StackError> {
        let bad = |why: String| Err(StackError::Config(why));
        if self.backends.is_empty() {
            return bad("no backend given".into());
        }
        if !self.health_path.starts_with('/') {
            return bad(format!("the health path `{}` does not start with `/`", self.health_path));
        }
        if self.interval.is_zero() || self.timeout.is_zero() {
            return bad("the health-check interval and the timeout must be more than 0s".into());
        }
        self.backends.iter().map(|b| host_and_port(b)).collect()
    }
}

/// `web-1:8080` → (`web-1`, 8080); `[::1]:8080` → (`::1`, 8080).
fn host_and_port(address: &str) -> Result<(String, u16), StackError> {
    let bad = || StackError::Backend { address: address.into() };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(['/', ' ']) || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The backend whose turn it is: the healthy ones take turns, whatever the unhealthy ones
/// between them. `avoid` (the backend that just failed) is passed over unless it is the
/// only healthy one.
fn choose(healthy: &[bool], turn: usize, avoid: Option<usize>) -> Option<usize> {
    let candidates: Vec<usize> = (0..healthy.len()).filter(|&i| healthy[i] && Some(i) != avoid).collect();
    if candidates.is_empty() {
        return avoid.filter(|&i| healthy.get(i) == Some(&true));
    }
    Some(candidates[turn % candidates.len()])
}

/// The `min` of a capacity query (`min=2`); all backends when absent.
fn parse_min(query: Option<&str>, total: usize) -> Result<usize, BadMin> {
    let value = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("min="));
    match value {
        None => Ok(total),
        Some(v) => v.parse().map_err(|_| BadMin { value: v.into() }),
    }
}

/// A capacity query whose `min` is not a count: the client's mistake, answered 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`min` must be a whole number, not `{value}`")]
struct BadMin {
    /// The value given.
    value: String,
}

/// Why a backend could not be reached, or failed its health check: the log's and the
/// answers' reason, as its chain ([`error_chain`]).
#[derive(Debug, thiserror::Error)]
enum BackendError {
    /// Its name did not resolve at the last health check: a container not started, or gone.
    #[error("cannot resolve {host}")]
    Unresolved {
        /// The name.
        host: String,
    },
    /// The TCP connection did not open within the limit.
    #[error("connect: timed out after {0}")]
    ConnectTimeout(Dur),
    /// The TCP connection failed (refused, unreachable).
    #[error("connect")]
    Connect(#[source] IoCause),
    /// The HTTP/1.1 handshake on a new connection failed.
    #[error("handshake")]
    Handshake(#[source] hyper::Error),
    /// The health request failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The health path answered another status than 200.
    #[error("HTTP {0}")]
    Unhealthy(u16),
    /// The whole health check took longer than its limit.
    #[error("timed out after {0}")]
    CheckTimeout(Dur),
}

struct Balancer {
    config: Config,
    backends: Vec<Backend>,
    turn: AtomicUsize,
}

struct Backend {
    /// As given, for the log and the status.
    address: String,
    host: String,
    port: u16,
    state: Mutex<State>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

#[derive(Clone, Copy, Default)]
struct State {
    /// `None` until first checked.
    healthy: Option<bool>,
    /// The address last resolved.
    ip: Option<IpAddr>,
}

/// How an attempt on one backend failed.
enum Failed {
    /// No connection: the backend is down, and the request can go elsewhere.
    Connect(String),
    /// A kept-alive connection closed before the request was written: it can go elsewhere.
    NotSent(String),
    /// The request may have reached the backend: this is the answer.
    Answer(StatusCode, String),
}

/// A client's request, body read, ready to be sent to any backend, more than once.
struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Balancer {
    fn new(config: Config, addresses: Vec<(String, u16)>) -> Self {
        let backends = config
            .backends
            .iter()
            .zip(addresses)
            .map(|(address, (host, port))| Backend {
                address: address.clone(),
                host,
                port,
                state: Mutex::new(State::default()),
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        Balancer { config, backends, turn: AtomicUsize::new(0) }
    }

    /// Checks every backend once, then serves on `listener` with health checks running,
    /// until `stop` completes.
    async fn serve(self: Arc<Self>, listener: TcpListener, stop: impl std::future::Future<Output = ()>) {
        futures_util::future::join_all(self.backends.iter().map(|b| b.check(&self.config.health_path))).await;
        let _watchers: Vec<AbortOnDrop> =
            (0..self.backends.len()).map(|i| AbortOnDrop::spawn(self.clone().watch(i))).collect();
        println!(
            "lb: listening on {}: {} of {} backends healthy",
            self.config.listen,
            self.healthy_count(),
            self.backends.len()
        );
        let handler = {
            let balancer = self.clone();
            move |request| balancer.clone().handle(request)
        };
        serve::serve(listener, handler, stop, Duration::ZERO).await;
    }

    /// Health-checks backend `i` every interval, forever.
    async fn watch(self: Arc<Self>, i: usize) {
        let every = self.config.interval;
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.backends[i].check(&self.config.health_path).await;
        }
    }

    fn healthy_count(&self) -> usize {
        self.backends.iter().filter(|b| b.healthy()).count()
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/lb/status") => self.status(),
            (&Method::GET, "/lb/capacity") => self.capacity(request.uri().query()),
            (_, path) if path.starts_with("/lb/") => serve::text(StatusCode::NOT_FOUND, "not found"),
            _ => self.proxy(request).await,
        }
    }

    fn status(&self) -> Answer {
        let backends: Vec<serde_json::Value> = self
            .backends
            .iter()
            .map(|b| {
                let state = b.state();
                serde_json::json!({
                    "address": b.address,
                    "healthy": state.healthy == Some(true),
                    "ip": state.ip.map(|ip| ip.to_string()),
                })
            })
            .collect();
        serve::json(StatusCode::OK, &serde_json::json!({ "backends": backends, "healthy": self.healthy_count() }))
    }

    fn capacity(&self, query: Option<&str>) -> Answer {
        let total = self.backends.len();
        let min = match parse_min(query, total) {
            Ok(min) => min,
            Err(why) => return serve::text(StatusCode::BAD_REQUEST, &why.to_string()),
        };
        let healthy = self.healthy_count();
        if healthy >= min {
            serve::text(StatusCode::OK, &format!("{healthy} of {total} backends healthy"))
        } else {
            serve::text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{healthy} of {total} backends healthy; {min} needed"),
            )
        }
    }

    async fn proxy(&self, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        let body = match timeout(self.config.timeout, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return serve::text(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is over {MAX_BODY} bytes"));
            }
            Ok(Err(e)) => return serve::text(StatusCode::BAD_REQUEST, &format!("reading the request body: {e}")),
            Err(_) => {
                let why = format!("the request body did not arrive within {}", Dur(self.config.timeout));
                return serve::text(StatusCode::REQUEST_TIMEOUT, &why);
            }
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        let uri = parts.uri.path_and_query().map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        let request = Prepared { method: parts.method, uri, headers, body };

        let mut avoid = None;
        let mut last = None;
        for attempt in 0..2 {
            let healthy: Vec<bool> = self.backends.iter().map(Backend::healthy).collect();
            let Some(i) = choose(&healthy, self.turn.fetch_add(1, Ordering::Relaxed), avoid) else {
                let why = match last {
                    Some(e) => format!("no healthy backend ({e})"),
                    None => "no healthy backend".into(),
                };
                return serve::text(StatusCode::SERVICE_UNAVAILABLE, &why);
            };
            let backend = &self.backends[i];
            // A retry opens a new connection: the kept-alive ones may all be as stale as
            // the one that failed.
            match self.forward(backend, &request, attempt > 0).await {
                Ok(answer) => return answer,
                Err(Failed::Answer(status, why)) => return serve::text(status, &why),
                Err(Failed::Connect(e)) => {
                    backend.mark(false, &e);
                    last = Some(format!("{}: {e}", backend.address));
                }
                Err(Failed::NotSent(e)) => last = Some(format!("{}: {e}", backend.address)),
            }
            avoid = Some(i);
        }
        let why = format!("bad gateway: {}", last.unwrap_or_default());
        serve::text(StatusCode::BAD_GATEWAY, &why)
    }

    /// One attempt on `backend`, on a kept-alive connection unless `fresh`.
    async fn forward(&self, backend: &Backend, request: &Prepared, fresh: bool) -> Result<Answer, Failed> {
        let deadline = Instant::now() + self.config.timeout;
        let pooled = if fresh { None } else { backend.take_idle() };
        let mut sender = match pooled {
            Some(sender) => sender,
            None => backend
                .connect(CONNECT_TIMEOUT.min(self.config.timeout))
                .await
                .map_err(|e| Failed::Connect(error_chain(&e)))?,
        };
        let exchange = async {
            let response = sender.try_send_request(request.to(&backend.address)).await.map_err(|mut e| {
                if e.take_message().is_some() {
                    Failed::NotSent(e.into_error().to_string())
                } else {
                    let why = format!("backend {}: {}", backend.address, e.into_error());
                    Failed::Answer(StatusCode::BAD_GATEWAY, why)
                }
            })?;
            let (mut parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| {
                Failed::Answer(StatusCode::BAD_GATEWAY, format!("backend {}: reading the answer: {e}", backend.address))
            })?;
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Full::new(body.to_bytes())))
        };
        match timeout_at(deadline, exchange).await {
            Ok(Ok(answer)) => {
                backend.give_back(sender);
                Ok(answer)
            }
            Ok(Err(failed)) => Err(failed),
            Err(_) => {
                let why = format!("backend {} timed out after {}", backend.address, Dur(self.config.timeout));
                Err(Failed::Answer(StatusCode::GATEWAY_TIMEOUT, why))
            }
        }
    }
}

impl Prepared {
    /// The request for `backend`; `Host` stays the client's, when it sent one.
    fn to(&self, backend: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        if !request.headers().contains_key(HOST) {
            if let Ok(host) = HeaderValue::from_str(backend) {
                request.headers_mut().insert(HOST, host);
            }
        }
        request
    }
}

/// Removes the headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"] {
        headers.remove(name);
    }
}

impl Backend {
    fn state(&self) -> State {
        *lock(&self.state)
    }

    fn healthy(&self) -> bool {
        self.state().healthy == Some(true)
    }

    /// Records a check's result; logs a change. A backend going down loses its kept-alive
    /// connections.
    fn mark(&self, healthy: bool, why: &str) {
        let mut state = lock(&self.state);
        if state.healthy == Some(healthy) {
            return;
        }
        state.healthy = Some(healthy);
        drop(state);
        if healthy {
            println!("lb: backend {} up", self.address);
        } else {
            println!("lb: backend {} down ({why})", self.address);
            lock(&self.idle).clear();
        }
    }

    /// Records the backend's address; a new one (a replacement) makes the kept-alive
    /// connections to the old one useless.
    fn set_ip(&self, ip: Option<IpAddr>) {
        let mut state = lock(&self.state);
        if state.ip != ip {
            state.ip = ip;
            drop(state);
            lock(&self.idle).clear();
        }
    }

    /// Resolves the name, then GETs the health path on a fresh connection. Its reasons start
    /// with "health check:", so that the log tells an active check from a passive one.
    async fn check(&self, path: &str) {
        let checked = async {
            let addresses = tokio::net::lookup_host((self.host.as_str(), self.port)).await;
            // IPv4 first: a container's IPv6 address, when it has one, is rarely the one served.
            let address = addresses.ok().and_then(|found| found.min_by_key(|a| a.is_ipv6()));
            self.set_ip(address.map(|a| a.ip()));
            let address = address.ok_or_else(|| BackendError::Unresolved { host: self.host.clone() })?;
            let (status, _) =
                probe::request("GET", &format!("http://{address}{path}"), None, Default::default()).await?;
            match status {
                200 => Ok(()),
                _ => Err(BackendError::Unhealthy(status)),
            }
        };
        let result = timeout(CHECK_TIMEOUT, checked)
            .await
            .unwrap_or_else(|_| Err(BackendError::CheckTimeout(Dur(CHECK_TIMEOUT))));
        match result {
            Ok(()) => self.mark(true, ""),
            Err(why) => self.mark(false, &format!("health check: {}", error_chain(&why))),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = lock(&self.idle);
        std::iter::from_fn(|| idle.pop()).find(|s| !s.is_closed() && s.is_ready())
    }

    fn give_back(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE && !sender.is_closed() {
            idle.push(sender);
        }
    }

    /// A new connection to the address the last health check found.
    async fn connect(&self, limit: Duration) -> Result<SendRequest<Full<Bytes>>, BackendError> {
        let ip = self.state().ip.ok_or_else(|| BackendError::Unresolved { host: self.host.clone() })?;
        let stream = timeout(limit, TcpStream::connect(SocketAddr::new(ip, self.port)))
            .await
            .map_err(|_| BackendError::ConnectTimeout(Dur(limit)))?
            .map_err(|e| BackendError::Connect(IoCause(e)))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(BackendError::Handshake)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_backends_take_turns_and_unhealthy_ones_are_skipped() {
        let picks = |healthy: &[bool], avoid| (0..6).map(|t| choose(healthy, t, avoid)).collect::<Vec<_>>();
        assert_eq!(picks(&[true, true, true], None), [0, 1, 2, 0, 1, 2].map(Some));
        // The backend after an unhealthy one does not get its turns too.
        assert_eq!(picks(&[true, false, true], None), [0, 2, 0, 2, 0, 2].map(Some));
        assert_eq!(picks(&[false, false, true], None), [Some(2); 6]);
        assert_eq!(picks(&[false, false], None), [None; 6]);
        assert_eq!(picks(&[], None), [None; 6]);
    }

    #[test]
    fn a_retry_avoids_the_backend_that_failed_unless_it_is_the_only_one() {
        assert_eq!(choose(&[true, true, true], 0, Some(0)), Some(1));
        assert_eq!(choose(&[true, true, true], 1, Some(0)), Some(2));
        assert_eq!(choose(&[true, false], 5, Some(0)), Some(0));
        assert_eq!(choose(&[false, false], 5, Some(0)), None);
        assert_eq!(choose(&[true, false], 5, Some(7)), Some(0));
    }

    #[test]
    fn capacity_min_is_read_from_the_query() {
        assert_eq!(parse_min(Some("min=2"), 3), Ok(2));
        assert_eq!(parse_min(Some("x=1&min=0"), 3), Ok(0));
        assert_eq!(parse_min(None, 3), Ok(3));
        assert_eq!(parse_min(Some("other=1"), 3), Ok(3));
        assert!(parse_min(Some("min=two"), 3).unwrap_err().to_string().contains("`two`"));
        assert!(parse_min(Some("min=-1"), 3).is_err());
    }

    #[test]
    fn backends_are_host_and_port() {
        assert_eq!(host_and_port("web-1:8080").unwrap(), ("web-1".into(), 8080));
        assert_eq!(host_and_port("[::1]:80").unwrap(), ("::1".into(), 80));
        for bad in ["web-1", ":8080", "web-1:", "web-1:http", "web-1:70000", "web-1:0", "http://web-1:80"] {
            assert!(host_and_port(bad).unwrap_err().to_string().contains("HOST:PORT"), "{bad}");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let good = Config {
            listen: "127.0.0.1:0".into(),
            backends: vec!["web-1:8080".into()],
            health_path: "/healthz".into(),
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
        };
        assert!(good.check().is_ok());
        let cases = [
            (Config { backends: vec![], ..good.clone() }, "no backend"),
            (Config { backends: vec!["web-1".into()], ..good.clone() }, "HOST:PORT"),
            (Config { health_path: "healthz".into(), ..good.clone() }, "does not start with `/`"),
            (Config { interval: Duration::ZERO, ..good.clone() }, "more than 0s"),
        ];
        for (config, expected) in cases {
            let error = config.check().expect_err(expected).to_string();
            assert!(error.contains(expected), "`{error}` should say `{expected}`");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [("connection", "close, x-trace"), ("x-trace", "1"), ("keep-alive", "5"), ("x-kept", "y")]
        {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers.insert(HOST, HeaderValue::from_static("shop"));
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["host", "x-kept"]);
    }
}
