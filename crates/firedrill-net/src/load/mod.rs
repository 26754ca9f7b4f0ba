//! The traffic generator: HTTP load at a set arrival rate (open model) or from a set number of
//! users (closed model), measured into latency histograms per time bucket.
//!
//! In the open model every request's send time is fixed in advance by the rate stages, and its
//! latency runs from that time: when the server slows down, requests wait for a connection and
//! the wait shows as latency, while the offered rate stays what was asked (no coordinated
//! omission). Connections are opened as needed, up to a limit, and kept alive.

mod describe;
mod http1;
mod merge;
pub mod schedule;
pub mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};

pub use describe::describe;
use http1::Stream;
/// The request method and body types a load [`Target`] takes.
pub use hyper::{body::Bytes, Method};
pub use merge::{Merge, MergeError, StreamLine, WorkerEnd};
pub use schedule::Stage;
pub use stats::{Bucket, ErrorClass, LoadSummary};
use stats::{Recorder, RequestOutcome};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A target does not parse as a URL. (The cause is in the message too, since `firedrill
    /// load` prints this error's message alone.)
    #[error("target `{url}`: {source}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why it does not parse.
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    /// A target is neither `http://` nor `https://`.
    #[error("target `{url}`: only http:// and https:// URLs can be loaded")]
    NotHttp {
        /// The URL.
        url: String,
    },
    /// A target names no host.
    #[error("target `{url}`: no host")]
    NoHost {
        /// The URL.
        url: String,
    },
    /// The plan has no target.
    #[error("no target URL")]
    NoTarget,
    /// The TLS client could not be set up (a CA file that does not read, no roots).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The plan allows no connection.
    #[error("at least one connection is needed")]
    NoConnection,
    /// Every target has weight 0, so none would be picked.
    #[error("the targets' weights add up to zero")]
    ZeroWeight,
    /// The runtime could not start.
    #[error("failed to start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A share names no generator of the split (`index` not below `of`).
    #[error("share {index} of {of}: the shares are numbered 0 to {of} - 1")]
    Share {
        /// The share asked for.
        index: usize,
        /// Of how many.
        of: usize,
    },
    /// The start time given has passed: a generator started too late would send its overdue
    /// requests in a burst no user made.
    #[error("the start time passed {late:?} ago: this generator started too late")]
    StartPassed {
        /// By how much.
        late: Duration,
    },
}

/// A request the generator sends, chosen in proportion to its weight.
#[derive(Clone, Debug)]
pub struct Target {
    /// The method.
    pub method: hyper::Method,
    /// An `http://` URL.
    pub url: String,
    /// The request body (empty for none).
    pub body: Bytes,
    /// Relative share of the requests.
    pub weight: u32,
}

impl Target {
    /// A GET of `url`, weight 1.
    pub fn get(url: &str) -> Self {
        Target { method: hyper::Method::GET, url: url.into(), body: Bytes::new(), weight: 1 }
    }
}

/// How requests arrive.
#[derive(Clone, Debug)]
pub enum Model {
    /// At the stages' rates, whatever the server does.
    Open(Vec<Stage>),
    /// From `users` clients, each sending its next request when the last one is answered.
    Closed {
        /// Concurrent users.
        users: usize,
        /// How long.
        duration: Duration,
    },
}

/// A load run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What is requested.
    pub targets: Vec<Target>,
    /// How requests arrive.
    pub model: Model,
    /// The most connections opened (open model); HTTP/2 multiplexes requests over them.
    pub connections: usize,
    /// A request not answered within this fails as a timeout.
    pub timeout: Duration,
    /// HTTP/2 (prior knowledge over cleartext, ALPN over TLS) instead of HTTP/1.1.
    pub http2: bool,
    /// The width of the time buckets.
    pub bucket: Duration,
    /// `https://` targets: the CA that signs their certificates, instead of the platform's
    /// roots.
    pub ca: Option<std::path::PathBuf>,
    /// This generator's share, when several split the plan.
    pub share: Share,
    /// When the plan starts, on the wall clock: generators splitting a plan on several machines
    /// start together, so that their buckets cover the same seconds. `None`: at once.
    pub start_at: Option<std::time::SystemTime>,
}

/// Which of several generators splitting one plan this one is: it sends the `index`-th of
/// every `of` requests of the plan's schedule (open model), or runs every `of`-th user
/// (closed), so that together they send the requests one generator would, when it would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// This generator's place, from 0.
    pub index: usize,
    /// How many generators split the plan.
    pub of: usize,
}

impl Share {
    /// The whole plan: one generator.
    pub const WHOLE: Share = Share { index: 0, of: 1 };

    /// Whether request (or user) `seq` of the plan is this generator's.
    fn holds(self, seq: usize) -> bool {
        seq % self.of.max(1) == self.index
    }
}

impl Plan {
    /// GETs of `url` at a constant `rate` for `duration`, over HTTP/1.1, measured per second:
    /// the steady traffic of an SLO probe, or a surge on top of it.
    pub fn steady(url: &str, rate: f64, duration: Duration, connections: usize, timeout: Duration) -> Self {
        Plan {
            targets: vec![Target::get(url)],
            model: Model::Open(vec![Stage::constant(rate, duration)]),
            connections,
            timeout,
            http2: false,
            bucket: Duration::from_secs(1),
            ca: None,
            share: Share::WHOLE,
            start_at: None,
        }
    }
}

/// What a run measured, and what it cost.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The rate asked for, on average over the run (open model).
    pub requested_rate: Option<f64>,
    /// Wall-clock length of the run, in seconds.
    pub elapsed_s: f64,
    /// Connections opened.
    pub connections: usize,
    /// CPU time firedrill used (user + system), in seconds.
    pub cpu_s: f64,
    /// CPU time per request, in microseconds.
    pub cpu_us_per_request: f64,
    /// The measurements.
    #[serde(flatten)]
    pub summary: LoadSummary,
    /// The first failed TLS handshake, in words ("unknown issuer: …"), when one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_failure: Option<String>,
}

/// Load running in the background of a drill, on the drill's runtime, until dropped: an SLO
/// probe's steady traffic.
pub struct Background {
    plan: Plan,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<Arc<Shared>>,
    cpu_before: f64,
}

impl Background {
    /// Starts `plan` on the current runtime, keeping the answers of the last `window`.
    pub fn start(plan: &Plan, window: Duration) -> Result<Self, LoadError> {
        let mut shared = prepare(plan, Some(window))?;
        shared.start = Instant::now();
        let shared = Arc::new(shared);
        let task = tokio::spawn(generate(plan.clone(), shared.clone(), vec![tokio::runtime::Handle::current()]));
        Ok(Background { plan: plan.clone(), shared, task, cpu_before: cpu_seconds() })
    }

    /// The requests completed in the window up to now.
    pub fn window(&self) -> stats::Window {
        self.shared.recorder.window(Instant::now().saturating_duration_since(self.shared.start))
    }

    /// The first failed TLS handshake so far, in words.
    pub fn tls_failure(&self) -> Option<&str> {
        self.shared.tls_failure.get().map(String::as_str)
    }

    /// What it measured so far.
    pub fn report(&self) -> Report {
        report(&self.plan, &self.shared, self.shared.start.elapsed().as_secs_f64(), cpu_seconds() - self.cpu_before)
    }

    /// The plan it runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Load on threads of its own until its plan ends or it is stopped: a surge of thousands of
/// requests per second would otherwise slow the drill's probes, and be slowed by them.
pub struct Detached {
    plan: Plan,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    cpu_before: f64,
}

impl Detached {
    /// Starts `plan` on runtimes of its own, one per core.
    pub fn start(plan: &Plan) -> Result<Self, LoadError> {
        let mut shared = prepare(plan, None)?;
        let workers = Workers::start()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(LoadError::Runtime)?;
        shared.start = Instant::now();
        let shared = Arc::new(shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (plan_, shared_, handles) = (plan.clone(), shared.clone(), workers.handles.clone());
        let thread = std::thread::Builder::new()
            .name("firedrill-load".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = generate(plan_, shared_, handles) => {}
                        _ = stopped => {}
                    }
                });
                // In-flight requests are dropped with the workers' runtimes: they were due
                // before the stop.
                drop(workers);
            })
            .map_err(LoadError::Runtime)?;
        Ok(Detached { plan: plan.clone(), shared, stop: Some(stop), thread: Some(thread), cpu_before: cpu_seconds() })
    }

    /// The plan it runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Stops it (if its plan has not ended) and reports what it measured.
    pub fn stop(&mut self) -> Report {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        report(&self.plan, &self.shared, self.shared.start.elapsed().as_secs_f64(), cpu_seconds() - self.cpu_before)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A parsed target, ready to send.
struct Prepared {
    method: hyper::Method,
    /// The whole URL, for HTTP/2.
    uri: hyper::Uri,
    /// The request as HTTP/1.1 sends it.
    http1: http1::Encoded,
    authority: String,
    address: String,
    /// Index of its address among the plan's distinct ones: connections are per address.
    host: usize,
    body: Bytes,
    /// For `https://`: the client configuration and the server name its certificate must have.
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
}

struct Shared {
    targets: Vec<Prepared>,
    /// Cumulative weights, for picking a target by request number.
    cumulative: Vec<u64>,
    timeout: Duration,
    http2: bool,
    start: Instant,
    recorder: Recorder,
    idle: AtomicUsize,
    opened: AtomicUsize,
    /// Distinct addresses among the targets.
    hosts: usize,
    /// HTTP/2 connections, `connections` per address, shared by every request slot.
    h2: Vec<tokio::sync::Mutex<Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>>>>,
    /// The first failed TLS handshake, in words: the `tls` errors counted say no more, and a
    /// certificate problem is what the user must fix.
    tls_failure: std::sync::OnceLock<String>,
}

impl Shared {
    fn pick(&self, seq: u64) -> &Prepared {
        let total = *self.cumulative.last().unwrap_or(&1);
        // A multiplicative hash spreads consecutive requests over the weights.
        let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) % total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.targets[i.min(self.targets.len() - 1)]
    }
}

/// Runs a plan on runtimes of its own, one per core, and reports.
pub fn run(plan: &Plan) -> Result<Report, LoadError> {
    run_streamed(plan, |_, _| {})
}

/// Runs a plan as [`run`] does, handing each bucket to `emit` in order once it is final (every
/// request due in it answered or timed out), the last ones when the run ends: a worker of a
/// split run streams them to whoever merges the split ([`Merge`]).
pub fn run_streamed(plan: &Plan, mut emit: impl FnMut(usize, &Bucket)) -> Result<Report, LoadError> {
    let mut shared = prepare(plan, None)?;
    // A short lead lets the first connections open before the first request is due.
    let lead = match plan.start_at {
        None => Duration::from_millis(20),
        Some(at) => at
            .duration_since(std::time::SystemTime::now())
            .map_err(|e| LoadError::StartPassed { late: e.duration() })?,
    };
    let workers = Workers::start()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(LoadError::Runtime)?;
    let cpu_before = cpu_seconds();
    let started = std::time::Instant::now();
    let shared = runtime.block_on(async {
        shared.start = Instant::now() + lead;
        let shared = Arc::new(shared);
        let generating = generate(plan.clone(), shared.clone(), workers.handles.clone());
        tokio::pin!(generating);
        let mut tick = tokio::time::interval(plan.bucket);
        let mut next = 0;
        loop {
            tokio::select! {
                _ = &mut generating => break,
                _ = tick.tick() => {
                    let now = Instant::now().saturating_duration_since(shared.start);
                    for (i, bucket) in shared.recorder.final_buckets(next, now, plan.timeout) {
                        emit(i, &bucket);
                        next = i + 1;
                    }
                }
            }
        }
        for (i, bucket) in shared.recorder.final_buckets(next, Duration::MAX, Duration::ZERO) {
            emit(i, &bucket);
        }
        shared
    });
    drop(workers);
    Ok(report(plan, &shared, started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before))
}

fn report(plan: &Plan, shared: &Shared, elapsed_s: f64, cpu_s: f64) -> Report {
    let end = WorkerEnd {
        elapsed_s,
        cpu_s,
        connections: shared.opened.load(Ordering::Relaxed),
        tls_failure: shared.tls_failure.get().cloned(),
    };
    Report::of(plan, shared.recorder.summary(), end)
}

impl Report {
    fn of(plan: &Plan, summary: LoadSummary, end: WorkerEnd) -> Report {
        let requested_rate = match &plan.model {
            Model::Open(stages) => Some(schedule::expected_requests(stages) / schedule::total(stages).as_secs_f64()),
            Model::Closed { .. } => None,
        };
        Report {
            requested_rate,
            elapsed_s: end.elapsed_s,
            connections: end.connections,
            cpu_s: end.cpu_s,
            cpu_us_per_request: if summary.sent > 0 { end.cpu_s * 1e6 / summary.sent as f64 } else { 0.0 },
            summary,
            tls_failure: end.tls_failure,
        }
    }

    /// What ends a worker's stream: the run's cost, which its buckets do not carry.
    pub fn end(&self) -> WorkerEnd {
        WorkerEnd {
            elapsed_s: self.elapsed_s,
            cpu_s: self.cpu_s,
            connections: self.connections,
            tls_failure: self.tls_failure.clone(),
        }
    }
}

fn prepare(plan: &Plan, window: Option<Duration>) -> Result<Shared, LoadError> {
    if plan.targets.is_empty() {
        return Err(LoadError::NoTarget);
    }
    if plan.connections == 0 {
        return Err(LoadError::NoConnection);
    }
    if plan.share.index >= plan.share.of {
        return Err(LoadError::Share { index: plan.share.index, of: plan.share.of });
    }
    let mut targets = Vec::new();
    let mut addresses: Vec<String> = Vec::new();
    let mut cumulative = Vec::new();
    let mut total = 0u64;
    for t in &plan.targets {
        let bad = |source| LoadError::BadUrl { url: t.url.clone(), source };
        let uri: hyper::Uri = t.url.parse().map_err(bad)?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => {
                let alpn = if plan.http2 { crate::tls::Alpn::Http2 } else { crate::tls::Alpn::Http1 };
                Some(crate::tls::client_config(plan.ca.as_deref(), alpn)?)
            }
            _ => return Err(LoadError::NotHttp { url: t.url.clone() }),
        };
        let host = uri.host().ok_or_else(|| LoadError::NoHost { url: t.url.clone() })?;
        let address = format!("{host}:{}", uri.port_u16().unwrap_or(if tls.is_some() { 443 } else { 80 }));
        let tls = tls.map(|config| (config, host.to_string()));
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        total += t.weight as u64;
        cumulative.push(total);
        let host = addresses.iter().position(|a| *a == address).unwrap_or_else(|| {
            addresses.push(address.clone());
            addresses.len() - 1
        });
        targets.push(Prepared {
            method: t.method.clone(),
            http1: http1::Encoded::new(&t.method, path, &authority, &t.body),
            uri: uri.clone(),
            authority,
            address,
            host,
            body: t.body.clone(),
            tls,
        });
    }
    if total == 0 {
        return Err(LoadError::ZeroWeight);
    }
    Ok(Shared {
        targets,
        cumulative,
        timeout: plan.timeout,
        http2: plan.http2,
        start: Instant::now(),
        recorder: Recorder::new(plan.bucket, window),
        idle: AtomicUsize::new(0),
        opened: AtomicUsize::new(0),
        hosts: addresses.len(),
        h2: (0..plan.connections * addresses.len()).map(|_| tokio::sync::Mutex::new(None)).collect(),
        tls_failure: std::sync::OnceLock::new(),
    })
}

/// Single-threaded runtimes, one per core, each driven by a thread of its own, that a run's
/// request slots are spread over. A slot then stays on one thread, with its connection and
/// timers, and its wake-ups never cross threads: the shape of wrk's loop per thread. Against
/// nginx on two cores this reached a higher rate than tokio's shared multi-thread scheduler in
/// each of three alternating runs.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    /// Dropped to stop the threads, which drop their runtimes and whatever still runs there.
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn start() -> Result<Self, LoadError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut workers = Workers { handles: Vec::new(), stops: Vec::new(), threads: Vec::new() };
        for i in 0..cores {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(LoadError::Runtime)?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            workers.handles.push(runtime.handle().clone());
            workers.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("firedrill-load-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })
                .map_err(LoadError::Runtime)?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stops.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A request to send: its number and when it is due.
struct Ticket {
    seq: u64,
    due: Instant,
}

/// Sends the plan's requests from slots spread over `runtimes`.
async fn generate(plan: Plan, shared: Arc<Shared>, runtimes: Vec<tokio::runtime::Handle>) -> Arc<Shared> {
    let mut slots = Vec::new();
    match &plan.model {
        Model::Open(stages) => {
            let (tx, rx) = flume::unbounded::<Ticket>();
            // HTTP/2 multiplexes: a request slot is a stream, not a connection.
            let limit = if plan.http2 { plan.connections * 100 } else { plan.connections };
            for (seq, offset) in schedule::Schedule::new(stages).enumerate().filter(|(seq, _)| plan.share.holds(*seq)) {
                let due = shared.start + offset;
                if due > Instant::now() + Duration::from_micros(500) {
                    sleep_until(due).await;
                }
                // Open another slot when none is free for this request.
                if rx.len() >= shared.idle.load(Ordering::Relaxed) && slots.len() < limit {
                    shared.idle.fetch_add(1, Ordering::Relaxed);
                    let (shared, rx, id) = (shared.clone(), rx.clone(), slots.len());
                    slots.push(runtimes[id % runtimes.len()].spawn(open_slot(shared, rx, id)));
                }
                let _ = tx.send(Ticket { seq: seq as u64, due });
            }
        }
        Model::Closed { users, duration } => {
            let end = shared.start + *duration;
            for id in (0..*users).filter(|id| plan.share.holds(*id)) {
                slots.push(runtimes[id % runtimes.len()].spawn(closed_user(shared.clone(), id, end)));
            }
        }
    }
    for slot in slots {
        let _ = slot.await;
    }
    shared
}

async fn open_slot(shared: Arc<Shared>, rx: flume::Receiver<Ticket>, id: usize) {
    let mut conn = Conn::default();
    while let Ok(ticket) = rx.recv_async().await {
        shared.idle.fetch_sub(1, Ordering::Relaxed);
        send(&shared, &mut conn, id, ticket).await;
        shared.idle.fetch_add(1, Ordering::Relaxed);
    }
}

async fn closed_user(shared: Arc<Shared>, id: usize, end: Instant) {
    let mut conn = Conn::default();
    sleep_until(shared.start).await;
    let mut seq = id as u64;
    // The next request is due when the last one is done: one clock reading serves both.
    let mut now = Instant::now();
    while now < end {
        now = send(&shared, &mut conn, id, Ticket { seq, due: now }).await;
        seq += 1_000_003;
    }
}

/// A slot's HTTP/1.1 connections, one per address, kept alive between its requests.
#[derive(Default)]
struct Conn {
    http1: Vec<Option<http1::Connection>>,
}

/// Sends a ticket's request and records the outcome; when it was done.
async fn send(shared: &Shared, conn: &mut Conn, id: usize, ticket: Ticket) -> Instant {
    let target = shared.pick(ticket.seq);
    if conn.http1.len() < shared.hosts {
        conn.http1.resize_with(shared.hosts, || None);
    }
    let sent = Instant::now();
    let error = match timeout_at(sent + shared.timeout, exchange(shared, conn, id, target)).await {
        Ok(Ok(status)) => ErrorClass::of_status(status),
        Ok(Err(class)) => {
            conn.http1[target.host] = None;
            Some(class)
        }
        Err(_) => {
            // The connection may still carry the late answer: start afresh.
            conn.http1[target.host] = None;
            Some(ErrorClass::Timeout)
        }
    };
    let done = Instant::now();
    shared.recorder.record(&RequestOutcome {
        due: ticket.due.saturating_duration_since(shared.start),
        sent: sent.saturating_duration_since(shared.start),
        done: done.saturating_duration_since(shared.start),
        error,
    });
    done
}

fn request(target: &Prepared) -> hyper::Request<Full<Bytes>> {
    let mut request = hyper::Request::new(Full::new(target.body.clone()));
    *request.method_mut() = target.method.clone();
    *request.uri_mut() = target.uri.clone();
    if let Ok(host) = hyper::header::HeaderValue::from_str(&target.authority) {
        request.headers_mut().insert(hyper::header::HOST, host);
    }
    request
}

async fn connect(shared: &Shared, target: &Prepared) -> Result<Box<dyn Stream>, ErrorClass> {
    let stream = TcpStream::connect(&target.address).await.map_err(|e| ErrorClass::of_io(&e))?;
    let _ = stream.set_nodelay(true);
    shared.opened.fetch_add(1, Ordering::Relaxed);
    let stream: Box<dyn Stream> = match &target.tls {
        None => Box::new(stream),
        Some((config, host)) => Box::new(crate::tls::connect(config.clone(), host, stream).await.map_err(|e| {
            let _ = shared.tls_failure.set(e.to_string());
            ErrorClass::Tls
        })?),
    };
    Ok(stream)
}

/// One request and its whole answer; the status.
async fn exchange(shared: &Shared, conn: &mut Conn, id: usize, target: &Prepared) -> Result<u16, ErrorClass> {
    let response = if shared.http2 {
        let per_host = shared.h2.len() / shared.hosts;
        let slot = &shared.h2[target.host * per_host + id % per_host];
        let mut sender = {
            let mut guard = slot.lock().await;
            match guard.as_ref().filter(|s| !s.is_closed()) {
                Some(s) => s.clone(),
                None => {
                    let io = TokioIo::new(connect(shared, target).await?);
                    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .map_err(|e| ErrorClass::of_hyper(&e))?;
                    tokio::spawn(connection);
                    *guard = Some(sender.clone());
                    sender
                }
            }
        };
        sender.ready().await.map_err(|e| ErrorClass::of_hyper(&e))?;
        sender.send_request(request(target)).await.map_err(|e| ErrorClass::of_hyper(&e))?
    } else {
        let slot = &mut conn.http1[target.host];
        loop {
            let connection = match slot {
                Some(connection) if connection.is_open() => connection,
                _ => slot.insert(http1::Connection::new(connect(shared, target).await?)),
            };
            match connection.exchange(&target.http1).await {
                http1::Outcome::Answered(status) => return Ok(status),
                // A new connection is never stale, so this sends the request once more at most.
                http1::Outcome::Stale => *slot = None,
                http1::Outcome::Failed(class) => return Err(class),
            }
        }
    };
    let status = response.status().as_u16();
    response.into_body().collect().await.map_err(|e| ErrorClass::of_hyper(&e))?;
    Ok(status)
}

/// CPU time this process has used, user and system, from `/proc/self/stat` (Linux counts it
/// in 1/100 s); 0 where that file does not exist.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
