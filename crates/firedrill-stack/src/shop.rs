//! `firedrill stack shop`: the web service the drills break. Orders live in PostgreSQL and
//! receipts in an S3 bucket, so that a database failover, a blocked object store, a drained
//! node and a traffic surge each show their real symptoms. [`Config`] holds its settings and
//! [`run`] serves until SIGTERM.
//!
//! Its limits are explicit, so that its capacity is known and overload is visible: `pool`
//! database connections, each catalogue read costing `query_cost` of database time (3 / 25 ms
//! is 120 reads a second), at most `max_inflight` requests in progress (the rest are answered
//! 503 at once), and a deadline of `timeout` on every request, within which failed database
//! and object-store operations are retried with exponential backoff.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::{ByteStream, ByteStreamError};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION};
use hyper::{Method, Request, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{sleep, timeout, timeout_at, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::serve::{self, lock, AbortOnDrop, Answer, Signals};
use super::StackError;
use firedrill_core::duration::Dur;
use firedrill_core::text::error_chain;
use firedrill_net::probe::ledger::PgError;

/// The service's settings, one per command-line flag.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen, `host:port`.
    pub listen: String,
    /// A libpq-style connection string. With several hosts and
    /// `target_session_attrs=read-write`, every new connection finds the current primary.
    pub db: String,
    /// The S3 endpoint, e.g. `http://s3:5000`.
    pub s3: String,
    /// The bucket receipts are stored in.
    pub bucket: String,
    /// Database connections.
    pub pool: usize,
    /// Database time one catalogue read costs.
    pub query_cost: Duration,
    /// Requests in progress beyond which new ones are refused at once.
    pub max_inflight: usize,
    /// Each request's deadline, waiting and retries included.
    pub timeout: Duration,
    /// How long the service keeps serving after SIGTERM while its health check fails, so that
    /// the load balancer stops sending before the listener closes.
    pub drain_delay: Duration,
}

/// The region the S3 client signs for; a local S3 server takes any.
const REGION: &str = "us-east-1";
/// A fresh S3 connection slower than this is a failed attempt (the store is on the same
/// network).
const S3_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// One S3 attempt slower than this is a failed attempt, to be retried within the deadline.
const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// The first retry's wait within a request; each next one doubles.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Startup waits for its dependencies with a slower backoff, up to this between tries.
const STARTUP_MAX_RETRY: Duration = Duration::from_secs(2);
/// One startup try slower than this failed (a connection string without `connect_timeout`
/// could otherwise hang on an unreachable host).
const STARTUP_ATTEMPT: Duration = Duration::from_secs(5);
/// Request bodies are orders and receipts: small.
const MAX_BODY: usize = 1 << 20;
/// An order's item text is cut to this many characters.
const MAX_ITEM: usize = 200;
/// What an order with no item text orders.
const DEFAULT_ITEM: &str = "widget";
/// The object the S3 drill probes, put at startup.
const WELCOME_KEY: &str = "welcome";
const WELCOME_BODY: &str = "welcome to the firedrill shop\n";

const CREATE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, item text NOT NULL, \
                             created_at timestamptz NOT NULL DEFAULT now())";
const INSERT_ORDER: &str = "INSERT INTO orders (item) VALUES ($1) RETURNING id";
/// The costed read: a real count, and `pg_sleep` holding the connection for the set cost.
const CATALOG: &str = "SELECT (SELECT count(*) FROM orders), pg_sleep($1)";

/// Checks the settings, waits for the database and the object store, listens, and serves
/// until SIGTERM or SIGINT; then drains (see [`Config::drain_delay`]) and returns. A signal
/// during startup returns at once.
pub fn run(config: Config) -> Result<(), StackError> {
    let db = config.check()?;
    serve::runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let shop = Arc::new(Shop::new(config, db));
        tokio::select! {
            () = shop.prepare() => {}
            name = signals.recv() => {
                println!("shop: {name} while starting: exiting");
                return Ok(());
            }
        }
        // Listening only now means that an open port is a ready service.
        let listener = serve::bind(&shop.config.listen).await?;
        let c = &shop.config;
        println!(
            "shop: ready on {}: pool {}, {} per catalogue read, at most {} in flight, deadline {}",
            c.listen,
            c.pool,
            Dur(c.query_cost),
            c.max_inflight,
            Dur(c.timeout)
        );
        shop.serve(listener, async move { signals.recv().await }).await;
        Ok(())
    })
}

impl Config {
    /// The parsed connection string, or what is wrong with the settings.
    fn check(&self) -> Result<tokio_postgres::Config, StackError> {
        let bad = |why: String| Err(StackError::Config(why));
        if self.pool == 0 {
            return bad("the pool needs at least one connection".into());
        }
        if self.max_inflight == 0 {
            return bad("max-inflight must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return bad("the request timeout must be more than 0s".into());
        }
        if self.bucket.is_empty() {
            return bad("the bucket name is empty".into());
        }
        let s3_ok = self
            .s3
            .parse::<hyper::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()));
        if !s3_ok {
            return bad(format!("`{}` is not an S3 endpoint URL (expected e.g. `http://s3:5000`)", self.s3));
        }
        let db: tokio_postgres::Config = self.db.parse().map_err(|e| {
            StackError::Config(format!("invalid connection string `{}`: {e}", firedrill_core::redact::dsn(&self.db)))
        })?;
        if db.get_hosts().is_empty() {
            return bad(format!("the connection string `{}` names no host", firedrill_core::redact::dsn(&self.db)));
        }
        Ok(db)
    }
}

/// The running service.
struct Shop {
    config: Config,
    pool: Pool,
    s3: aws_sdk_s3::Client,
    db: Dependency,
    store: Dependency,
    inflight: AtomicUsize,
    /// Whether requests are being shed, so that shedding is logged when it starts and ends.
    shedding: AtomicBool,
    draining: AtomicBool,
}

/// Why a request failed, and so its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Overloaded,
    Database(String),
    ObjectStore(String),
    /// The deadline passed; the last error seen before, if any.
    TimedOut(Duration, Option<String>),
    BadBody(String),
    TooLarge,
}

impl Failure {
    fn answer(&self) -> Answer {
        let status = match self {
            Failure::BadBody(_) => StatusCode::BAD_REQUEST,
            Failure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        serve::text(status, &self.to_string())
    }
}

/// The one-line reason the answer gives.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Overloaded => f.write_str("overloaded"),
            Failure::Database(e) => write!(f, "database unavailable: {e}"),
            Failure::ObjectStore(e) => write!(f, "object store unavailable: {e}"),
            Failure::TimedOut(after, None) => write!(f, "timed out after {}", Dur(*after)),
            Failure::TimedOut(after, Some(last)) => write!(f, "timed out after {} ({last})", Dur(*after)),
            Failure::BadBody(e) => write!(f, "reading the request body: {e}"),
            Failure::TooLarge => write!(f, "the body is over {MAX_BODY} bytes"),
        }
    }
}

/// Why one attempt on a dependency failed: logged, and the answer's reason, as its chain
/// ([`error_chain`]).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The database refused, failed or could not be reached.
    #[error(transparent)]
    Database(#[from] PgError),
    /// The pool was closed (the service is stopping).
    #[error("the pool is closed")]
    PoolClosed,
    /// The bucket could not be created.
    #[error(transparent)]
    CreateBucket(SdkError<CreateBucketError, HttpResponse>),
    /// An object could not be put.
    #[error(transparent)]
    Put(SdkError<PutObjectError, HttpResponse>),
    /// An object could not be got.
    #[error(transparent)]
    Get(SdkError<GetObjectError, HttpResponse>),
    /// An object's body broke off while it was read.
    #[error("reading the object")]
    Read(#[source] ByteStreamError),
}

/// Why the service is not ready yet: it retries until it is.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    /// The orders table could not be made.
    #[error("database error")]
    Database(#[source] AttemptError),
    /// The bucket or the welcome object could not be made.
    #[error("object store error")]
    ObjectStore(#[source] AttemptError),
    /// A step did not finish within its limit.
    #[error("a startup step timed out after {0}")]
    TimedOut(Dur),
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Health,
    Work(Work<'a>),
    NotFound,
}

/// The requests that use a dependency, and so count against the limits.
#[derive(Debug, PartialEq, Eq)]
enum Work<'a> {
    CreateOrder,
    Catalog,
    PutReceipt(&'a str),
    GetReceipt(&'a str),
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let receipt = path.strip_prefix("/receipts/").filter(|key| !key.is_empty());
    match (method, path, receipt) {
        (&Method::GET, "/healthz", _) => Route::Health,
        (&Method::POST, "/orders", _) => Route::Work(Work::CreateOrder),
        (&Method::GET, "/catalog", _) => Route::Work(Work::Catalog),
        (&Method::PUT, _, Some(key)) => Route::Work(Work::PutReceipt(key)),
        (&Method::GET, _, Some(key)) => Route::Work(Work::GetReceipt(key)),
        _ => Route::NotFound,
    }
}

impl Shop {
    fn new(config: Config, db: tokio_postgres::Config) -> Self {
        let pool = Pool { db, slots: Semaphore::new(config.pool), idle: Mutex::new(Vec::new()) };
        let s3 = s3_client(&config.s3);
        Shop {
            config,
            pool,
            s3,
            db: Dependency::new("database", Failure::Database),
            store: Dependency::new("object store", Failure::ObjectStore),
            inflight: AtomicUsize::new(0),
            shedding: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }
    }

    /// Waits until the database answers and the object store holds the bucket and the
    /// welcome object, retrying with backoff; logs each new error.
    async fn prepare(&self) {
        let mut backoff = Backoff::new(FIRST_RETRY * 2, STARTUP_MAX_RETRY);
        let mut last = None;
        loop {
            let attempt = timeout(STARTUP_ATTEMPT, self.try_prepare()).await;
            let error = match attempt {
                Ok(Ok(())) => return,
                Ok(Err(e)) => error_chain(&e),
                Err(_) => error_chain(&StartupError::TimedOut(Dur(STARTUP_ATTEMPT))),
            };
            let wait = backoff.next().unwrap_or(STARTUP_MAX_RETRY);
            if last.as_ref() != Some(&error) {
                println!("shop: {error}; retrying in {}", Dur(wait));
            }
            last = Some(error);
            sleep(wait).await;
        }
    }

    async fn try_prepare(&self) -> Result<(), StartupError> {
        let db_error = StartupError::Database;
        let lease = self.pool.lease().await.map_err(db_error)?;
        // Replicas starting together can race on creating the table; the loser retries and
        // finds it.
        lease.conn.client.batch_execute(CREATE_ORDERS).await.map_err(|e| db_error(PgError(e).into()))?;
        self.db.up(&lease.conn.host);
        lease.give_back();

        let store_error = StartupError::ObjectStore;
        if let Err(e) = self.s3.create_bucket().bucket(&self.config.bucket).send().await {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
            if !exists {
                return Err(store_error(AttemptError::CreateBucket(e)));
            }
        }
        let put = self
            .s3
            .put_object()
            .bucket(&self.config.bucket)
            .key(WELCOME_KEY)
            .body(ByteStream::from_static(WELCOME_BODY.as_bytes()));
        put.send().await.map_err(|e| store_error(AttemptError::Put(e)))?;
        self.store.up(&self.config.s3);
        Ok(())
    }

    /// Serves on `listener` until `stop` completes; then fails its health check for the
    /// drain delay while still serving, closes the listener and finishes the requests in
    /// flight (each within its deadline).
    async fn serve(self: Arc<Self>, listener: TcpListener, stop: impl Future<Output = &'static str>) {
        let shop = self.clone();
        let drain = async move {
            let name = stop.await;
            shop.draining.store(true, Ordering::SeqCst);
            println!("shop: {name}: draining (health check failing for {})", Dur(shop.config.drain_delay));
            sleep(shop.config.drain_delay).await;
            println!("shop: closing the listener; {} requests in flight", shop.inflight.load(Ordering::SeqCst));
        };
        let handler = {
            let shop = self.clone();
            move |request| shop.clone().handle(request)
        };
        serve::serve(listener, handler, drain, self.config.timeout + Duration::from_secs(1)).await;
        println!("shop: stopped");
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        let deadline = Instant::now() + self.config.timeout;
        let path = request.uri().path().to_string();
        let mut answer = match route(request.method(), &path) {
            Route::Health if self.draining.load(Ordering::SeqCst) => {
                serve::text(StatusCode::SERVICE_UNAVAILABLE, "draining")
            }
            Route::Health => serve::text(StatusCode::OK, "ok"),
            Route::NotFound => serve::text(StatusCode::NOT_FOUND, "not found"),
            Route::Work(work) => match self.admit() {
                None => Failure::Overloaded.answer(),
                Some(_slot) => {
                    let done = timeout_at(deadline, self.work(work, request.into_body(), deadline)).await;
                    match done.unwrap_or(Err(Failure::TimedOut(self.config.timeout, None))) {
                        Ok(answer) => answer,
                        Err(failure) => failure.answer(),
                    }
                }
            },
        };
        if self.draining.load(Ordering::SeqCst) {
            // Clients (the load balancer's pool) should not keep a connection to a replica
            // that is going away.
            answer.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        answer
    }

    /// A place among the requests in flight, or `None` when they are at the limit.
    fn admit(&self) -> Option<InFlight<'_>> {
        let max = self.config.max_inflight;
        let before = self.inflight.fetch_add(1, Ordering::SeqCst);
        if before >= max {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            if !self.shedding.swap(true, Ordering::SeqCst) {
                println!("shop: overloaded: shedding requests over {max} in flight");
            }
            return None;
        }
        Some(InFlight(self))
    }

    async fn work(&self, work: Work<'_>, body: Incoming, deadline: Instant) -> Result<Answer, Failure> {
        Ok(match work {
            Work::CreateOrder => {
                let item = item_of(&read_body(body).await?);
                let id = self.create_order(&item, deadline).await?;
                serve::json(StatusCode::CREATED, &serde_json::json!({ "id": id }))
            }
            Work::Catalog => {
                let orders = self.catalog(deadline).await?;
                serve::json(StatusCode::OK, &serde_json::json!({ "orders": orders }))
            }
            Work::PutReceipt(key) => {
                let body = read_body(body).await?;
                self.put_receipt(key, body, deadline).await?;
                serve::text(StatusCode::CREATED, "stored")
            }
            Work::GetReceipt(key) => match self.get_receipt(key, deadline).await? {
                Some(body) => serve::answer(StatusCode::OK, body, "application/octet-stream"),
                None => serve::text(StatusCode::NOT_FOUND, &format!("no receipt `{key}`")),
            },
        })
    }

    async fn create_order(&self, item: &str, deadline: Instant) -> Result<i64, Failure> {
        // A retried insert whose first try reached the server may order twice: at least once,
        // as most services do, rather than an error for a write that may have happened.
        self.retrying(&self.db, deadline, || async {
            let lease = self.pool.lease().await?;
            let row = lease.conn.client.query_typed_one(INSERT_ORDER, &[(&item, Type::TEXT)]).await.map_err(PgError)?;
            let id: i64 = row.try_get(0).map_err(PgError)?;
            self.db.up(&lease.conn.host);
            lease.give_back();
            Ok(id)
        })
        .await
    }

    async fn catalog(&self, deadline: Instant) -> Result<i64, Failure> {
        let cost = self.config.query_cost.as_secs_f64();
        self.retrying(&self.db, deadline, || async {
            let lease = self.pool.lease().await?;
            let row = lease.conn.client.query_typed_one(CATALOG, &[(&cost, Type::FLOAT8)]).await.map_err(PgError)?;
            let orders: i64 = row.try_get(0).map_err(PgError)?;
            self.db.up(&lease.conn.host);
            lease.give_back();
            Ok(orders)
        })
        .await
    }

    async fn put_receipt(&self, key: &str, body: Bytes, deadline: Instant) -> Result<(), Failure> {
        self.retrying(&self.store, deadline, || async {
            let put = self.s3.put_object().bucket(&self.config.bucket).key(key).body(ByteStream::from(body.clone()));
            put.send().await.map_err(AttemptError::Put)?;
            self.store.up(&self.config.s3);
            Ok(())
        })
        .await
    }

    async fn get_receipt(&self, key: &str, deadline: Instant) -> Result<Option<Bytes>, Failure> {
        self.retrying(&self.store, deadline, || async {
            let got = match self.s3.get_object().bucket(&self.config.bucket).key(key).send().await {
                Ok(got) => got,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    self.store.up(&self.config.s3);
                    return Ok(None);
                }
                Err(e) => return Err(AttemptError::Get(e)),
            };
            let body = got.body.collect().await.map_err(AttemptError::Read)?;
            self.store.up(&self.config.s3);
            Ok(Some(body.into_bytes()))
        })
        .await
    }

    /// Runs `attempt` until it succeeds, waiting between tries with exponential backoff,
    /// all before `deadline`. Gives the error up at once when the next wait would pass the
    /// deadline, rather than sleeping into it.
    async fn retrying<T, F, Fut>(&self, dep: &Dependency, deadline: Instant, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let mut backoff = Backoff::new(FIRST_RETRY, self.config.timeout);
        let mut last = None;
        loop {
            let error = match timeout_at(deadline, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => error_chain(&e),
                Err(_) => return Err(Failure::TimedOut(self.config.timeout, last)),
            };
            let wait = backoff.next().unwrap_or(self.config.timeout);
            let retry = Instant::now() + wait < deadline;
            dep.down(&error, retry.then_some(wait));
            let failure = (dep.failure)(error);
            if !retry {
                return Err(failure);
            }
            last = Some(failure.to_string());
            sleep(wait).await;
        }
    }
}

/// A request's place among those in flight, given back when it is answered.
struct InFlight<'a>(&'a Shop);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let shop = self.0;
        let left = shop.inflight.fetch_sub(1, Ordering::SeqCst) - 1;
        // Half the limit, so that a load hovering at it does not log at every request.
        let calm = shop.config.max_inflight / 2;
        if left <= calm && shop.shedding.swap(false, Ordering::SeqCst) {
            println!("shop: load back to {left} in flight: no longer shedding");
        }
    }
}

/// A dependency's last known state, so that only its changes are logged, not every request
/// that meets it.
struct Dependency {
    name: &'static str,
    failure: fn(String) -> Failure,
    state: Mutex<DepState>,
}

#[derive(PartialEq, Eq)]
enum DepState {
    Unknown,
    /// Working, through the named host.
    Up(String),
    Down,
}

impl Dependency {
    fn new(name: &'static str, failure: fn(String) -> Failure) -> Self {
        Dependency { name, failure, state: Mutex::new(DepState::Unknown) }
    }

    /// An operation through `host` succeeded: logged when the dependency was not working
    /// or worked through another host (a new primary).
    fn up(&self, host: &str) {
        let mut state = lock(&self.state);
        if !matches!(&*state, DepState::Up(h) if h == host) {
            println!("shop: {} connected ({host})", self.name);
            *state = DepState::Up(host.to_string());
        }
    }

    /// An operation failed: logged when the dependency was working (or not yet known).
    fn down(&self, error: &str, retry_in: Option<Duration>) {
        let mut state = lock(&self.state);
        if *state != DepState::Down {
            match retry_in {
                Some(wait) => println!("shop: {} error: {error}; retrying in {}", self.name, Dur(wait)),
                None => println!("shop: {} error: {error}", self.name),
            }
            *state = DepState::Down;
        }
    }
}

/// Exponential backoff: `first`, doubling, never over `max`. Without jitter: each request
/// starts its retries at its own failure, which spreads them already.
#[derive(Clone, Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Backoff { next: first.min(max), max }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        Some(wait)
    }
}

/// A few database connections, each opened when first needed. A connection whose operation
/// failed or was dropped at a deadline is closed rather than given back, and a later lease
/// opens a fresh one, which finds the current primary.
struct Pool {
    db: tokio_postgres::Config,
    /// One permit per connection, open or not: a lease waits here when all are busy.
    slots: Semaphore,
    idle: Mutex<Vec<Conn>>,
}

struct Conn {
    client: Client,
    /// The host of the connection string it reached, for the log.
    host: String,
    /// Its I/O, closed with it.
    _io: AbortOnDrop,
}

/// A connection lent out; dropped, it is closed.
struct Lease<'a> {
    conn: Conn,
    pool: &'a Pool,
    _slot: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The operation succeeded: the connection is kept for the next one.
    fn give_back(self) {
        let Lease { conn, pool, _slot } = self;
        lock(&pool.idle).push(conn);
    }
}

impl Pool {
    /// An idle connection, else a new one, once a slot is free.
    async fn lease(&self) -> Result<Lease<'_>, AttemptError> {
        let slot = self.slots.acquire().await.map_err(|_| AttemptError::PoolClosed)?;
        let idle = {
            let mut idle = lock(&self.idle);
            std::iter::from_fn(|| idle.pop()).find(|c| !c.client.is_closed())
        };
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Ok(Lease { conn, pool: self, _slot: slot })
    }

    async fn connect(&self) -> Result<Conn, PgError> {
        let (client, connection) = self.db.connect(NoTls).await.map_err(PgError)?;
        let io = AbortOnDrop::spawn(async move {
            let _ = connection.await;
        });
        let rows = client.simple_query("SELECT host(inet_server_addr())").await.map_err(PgError)?;
        let address = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        let host = match address {
            Some(address) => self.host_named(&address).await.unwrap_or(address),
            None => "a local socket".into(),
        };
        Ok(Conn { client, host, _io: io })
    }

    /// Which host of the connection string has `address`: the multi-host string does not
    /// say which one it reached, and a failover shows as a change of name.
    async fn host_named(&self, address: &str) -> Option<String> {
        let ports = self.db.get_ports();
        for (i, host) in self.db.get_hosts().iter().enumerate() {
            let tokio_postgres::config::Host::Tcp(name) = host else { continue };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let Ok(mut addrs) = tokio::net::lookup_host((name.as_str(), port)).await else { continue };
            if addrs.any(|a| a.ip().to_string() == address) {
                return Some(name.clone());
            }
        }
        None
    }
}

/// The S3 client of the service: the probes' client (path-style, no SDK retries: the
/// service retries within its own deadline) with short timeouts, so that a store that
/// stopped answering fails an attempt rather than the whole request.
fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let base = firedrill_net::probe::s3_client(endpoint, REGION, None);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(S3_CONNECT_TIMEOUT)
        .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
        .build();
    aws_sdk_s3::Client::from_conf(base.config().to_builder().timeout_config(timeouts).build())
}

async fn read_body(body: Incoming) -> Result<Bytes, Failure> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Failure::TooLarge),
        Err(e) => Err(Failure::BadBody(e.to_string())),
    }
}

/// The item an order body names: `{"item": "..."}`, else the body as text, else the default.
/// Control characters are dropped (PostgreSQL refuses NUL in text) and the length is capped.
fn item_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Order {
        item: String,
    }
    let text = match serde_json::from_slice::<Order>(body) {
        Ok(order) => order.item,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let item: String = text.trim().chars().filter(|c| !c.is_control()).take(MAX_ITEM).collect();
    if item.is_empty() {
        DEFAULT_ITEM.into()
    } else {
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> Result<(u16, Bytes), firedrill_net::probe::ProbeError> {
        firedrill_net::probe::request("GET", url, None, Default::default()).await
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(route(&Method::GET, "/healthz"), Route::Health);
        assert_eq!(route(&Method::POST, "/orders"), Route::Work(Work::CreateOrder));
        assert_eq!(route(&Method::GET, "/catalog"), Route::Work(Work::Catalog));
        assert_eq!(route(&Method::PUT, "/receipts/a/b.txt"), Route::Work(Work::PutReceipt("a/b.txt")));
        assert_eq!(route(&Method::GET, "/receipts/welcome"), Route::Work(Work::GetReceipt("welcome")));
        for (method, path) in [
            (Method::GET, "/receipts/"),
            (Method::DELETE, "/receipts/x"),
            (Method::GET, "/orders"),
            (Method::POST, "/catalog"),
            (Method::GET, "/"),
            (Method::GET, "/healthz/x"),
        ] {
            assert_eq!(route(&method, path), Route::NotFound, "{method} {path}");
        }
    }

    #[test]
    fn backoff_doubles_from_its_start_up_to_its_cap() {
        let waits: Vec<u64> =
            Backoff::new(FIRST_RETRY, Duration::from_secs(1)).take(7).map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
        let capped: Vec<Duration> = Backoff::new(Duration::from_secs(5), Duration::from_secs(1)).take(2).collect();
        assert_eq!(capped, [Duration::from_secs(1); 2]);
    }

    #[test]
    fn an_order_names_its_item_in_json_or_text() {
        assert_eq!(item_of(br#"{"item":"teapot"}"#), "teapot");
        assert_eq!(item_of(b"  kettle \n"), "kettle");
        assert_eq!(item_of(b""), DEFAULT_ITEM);
        assert_eq!(item_of(b"a\0b"), "ab");
        assert_eq!(item_of("x".repeat(500).as_bytes()).len(), MAX_ITEM);
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let good = config("host=db user=postgres password=hunter2", "http://s3:5000");
        assert!(good.check().is_ok());
        let cases = [
            (Config { pool: 0, ..good.clone() }, "at least one connection"),
            (Config { max_inflight: 0, ..good.clone() }, "max-inflight"),
            (Config { timeout: Duration::ZERO, ..good.clone() }, "more than 0s"),
            (config("host=db", "s3:5000"), "not an S3 endpoint URL"),
            (config("user=postgres password=hunter2", "http://s3"), "names no host"),
            (config("host=db password=hunter2 sslmode=sometimes", "http://s3"), "invalid connection string"),
        ];
        for (config, expected) in cases {
            let error = config.check().expect_err(expected).to_string();
            assert!(error.contains(expected), "`{error}` should say `{expected}`");
            assert!(!error.contains("hunter2"), "`{error}` shows the password");
        }
    }

    fn config(db: &str, s3: &str) -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            db: db.into(),
            s3: s3.into(),
            bucket: "receipts".into(),
            pool: 3,
            query_cost: Duration::from_millis(25),
            max_inflight: 32,
            timeout: Duration::from_secs(1),
            drain_delay: Duration::from_millis(500),
        }
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port").local_addr().expect("an address").port()
    }

    /// A loopback port that accepts connections and never answers: a hung dependency.
    async fn silent_port() -> (u16, AbortOnDrop) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let task = AbortOnDrop::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        (port, task)
    }

    /// The shop (not prepared: its dependencies are down) serving on a loopback port until
    /// the returned sender is used; its base URL.
    async fn start(config: Config) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let db = config.check().expect("valid settings");
        let shop = Arc::new(Shop::new(config, db));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(shop.serve(listener, async move {
            let _ = stopped.await;
            "SIGTERM"
        }));
        (url, stop, served)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_that_refuses_gives_503_with_the_reason_within_the_deadline() {
        let mut config = config(
            &format!("host=127.0.0.1 port={} user=postgres connect_timeout=1", closed_port()),
            "http://127.0.0.1:1",
        );
        config.timeout = Duration::from_millis(300);
        let (url, _stop, _served) = start(config).await;

        assert_eq!(get(&format!("{url}/healthz")).await.expect("an answer"), (200, Bytes::from("ok\n")));
        assert_eq!(get(&format!("{url}/nothing")).await.expect("an answer").0, 404);

        let started = std::time::Instant::now();
        let (status, body) = get(&format!("{url}/catalog")).await.expect("an answer");
        let took = started.elapsed();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 503, "{body}");
        assert!(body.starts_with("database unavailable: ") || body.starts_with("timed out after 300ms"), "{body}");
        assert!(body.contains("refused"), "the reason names the cause: {body}");
        assert!(took < Duration::from_millis(600), "answered in {took:?}, long past the 300ms deadline");
        println!("catalog: {status} {body:?} in {took:?}");

        let (status, body) = get(&format!("{url}/receipts/welcome")).await.expect("an answer");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 503, "{body}");
        assert!(body.starts_with("object store unavailable: ") || body.starts_with("timed out after 300ms"), "{body}");
        println!("receipt: {status} {body:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_over_the_limit_are_shed_at_once_and_a_hung_database_times_out() {
        let (db_port, _db) = silent_port().await;
        let mut config = config(&format!("host=127.0.0.1 port={db_port} user=postgres"), "http://127.0.0.1:1");
        config.max_inflight = 2;
        config.timeout = Duration::from_millis(600);
        let (url, _stop, _served) = start(config).await;

        let catalog = format!("{url}/catalog");
        let hung: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn({
                    let catalog = catalog.clone();
                    async move { get(&catalog).await }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let (status, body) = get(&catalog).await.expect("an answer");
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (503, "overloaded\n"));
        assert!(started.elapsed() < Duration::from_millis(300), "shed in {:?}", started.elapsed());
        // Health checks are not work: they pass while the service sheds.
        assert_eq!(get(&format!("{url}/healthz")).await.expect("an answer").0, 200);

        for request in hung {
            let (status, body) = request.await.expect("joined").expect("an answer");
            assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (503, "timed out after 600ms\n"));
        }
        // The slots are free again.
        let (status, body) = get(&catalog).await.expect("an answer");
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (503, "timed out after 600ms\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sigterm_the_health_check_fails_for_the_drain_delay_then_the_listener_closes() {
        let mut config = config(&format!("host=127.0.0.1 port={}", closed_port()), "http://127.0.0.1:1");
        config.drain_delay = Duration::from_millis(400);
        config.timeout = Duration::from_millis(200);
        let (url, stop, served) = start(config).await;
        assert_eq!(get(&format!("{url}/healthz")).await.expect("an answer").0, 200);

        let signalled = std::time::Instant::now();
        stop.send(()).expect("the shop is serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = get(&format!("{url}/healthz")).await.expect("still serving while draining");
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (503, "draining\n"));
        served.await.expect("the shop stops");
        let took = signalled.elapsed();
        assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(900), "stopped after {took:?}");
        assert!(get(&format!("{url}/healthz")).await.is_err(), "the listener is closed");
    }
}
