//! What a load run measured: latency in HDR histograms, overall and per time bucket, and
//! every error by class.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed mid-request.
    Reset,
    /// The connection could not be made for another reason.
    Connect,
    /// The TLS handshake failed (a certificate not trusted, expired, for another name).
    Tls,
    /// An answer with a 4xx status.
    Http4xx,
    /// An answer with a 5xx status.
    Http5xx,
    /// Anything else (a malformed answer).
    Other,
}

impl ErrorClass {
    /// Its one text form, the serde name (`http5xx`: `snake_case` puts no `_` before a digit),
    /// for tables and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Refused => "refused",
            ErrorClass::Reset => "reset",
            ErrorClass::Connect => "connect",
            ErrorClass::Tls => "tls",
            ErrorClass::Http4xx => "http4xx",
            ErrorClass::Http5xx => "http5xx",
            ErrorClass::Other => "other",
        }
    }

    /// The class of an answer's status, `None` for a success (1xx–3xx).
    pub fn of_status(status: u16) -> Option<Self> {
        match status {
            400..=499 => Some(ErrorClass::Http4xx),
            500..=599 => Some(ErrorClass::Http5xx),
            _ => None,
        }
    }

    /// The class of an I/O error.
    pub fn of_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => ErrorClass::Refused,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => ErrorClass::Reset,
            TimedOut => ErrorClass::Timeout,
            _ => ErrorClass::Connect,
        }
    }

    /// The class of a hyper error (an I/O cause is classified as such).
    pub fn of_hyper(e: &hyper::Error) -> Self {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return Self::of_io(io);
            }
            source = s.source();
        }
        if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
            ErrorClass::Reset
        } else {
            ErrorClass::Other
        }
    }
}

/// Latency histograms span 1 µs to 100 s at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// One time bucket's counts.
struct Bucket {
    latency: Histogram<u64>,
    sent: u64,
    ok: u64,
    errors: BTreeMap<ErrorClass, u64>,
}

impl Bucket {
    fn new() -> Self {
        Bucket { latency: histogram(), sent: 0, ok: 0, errors: BTreeMap::new() }
    }
}

/// What every request recorded, shared by the connections of a run. Buckets are by the
/// time a request was due, so a bucket shows what users arriving then experienced.
pub struct Recorder {
    bucket: Duration,
    buckets: Mutex<Vec<Bucket>>,
    totals: Mutex<Totals>,
    /// The latest answers by completion time, kept for a window.
    recent: Option<(Duration, Mutex<VecDeque<Answer>>)>,
}

/// One completed request: when it completed, its latency in µs, and whether it succeeded.
type Answer = (Duration, u64, bool);

/// The requests completed (answered, failed or timed out) in a past window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// How many.
    pub completed: u64,
    /// Of them, failed.
    pub errors: u64,
    /// 95th-percentile latency of all of them, failures included, in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile, in ms.
    pub p99_ms: Option<f64>,
}

struct Totals {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    errors: BTreeMap<ErrorClass, u64>,
    ok: u64,
    first_send: Option<Duration>,
    last_send: Duration,
}

/// One request's result, times as offsets from the run's start.
pub struct RequestOutcome {
    /// When it was due.
    pub due: Duration,
    /// When it was sent.
    pub sent: Duration,
    /// When its answer (or failure) came.
    pub done: Duration,
    /// `None` for success.
    pub error: Option<ErrorClass>,
}

impl Recorder {
    /// A recorder with buckets of `bucket`, keeping the answers of the last `window` when
    /// one is given.
    pub fn new(bucket: Duration, window: Option<Duration>) -> Self {
        Recorder {
            bucket,
            recent: window.map(|w| (w, Mutex::new(VecDeque::new()))),
            buckets: Mutex::new(Vec::new()),
            totals: Mutex::new(Totals {
                latency: histogram(),
                service: histogram(),
                errors: BTreeMap::new(),
                ok: 0,
                first_send: None,
                last_send: Duration::ZERO,
            }),
        }
    }

    /// Records one request. Latency runs from when it was due, not when it was sent: time
    /// spent waiting for a free connection is time a user waited.
    pub fn record(&self, o: &RequestOutcome) {
        let latency = o.done.saturating_sub(o.due).as_micros() as u64;
        let service = o.done.saturating_sub(o.sent).as_micros() as u64;
        let index = (o.due.as_nanos() / self.bucket.as_nanos().max(1)) as usize;
        {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            if buckets.len() <= index {
                buckets.resize_with(index + 1, Bucket::new);
            }
            let b = &mut buckets[index];
            b.sent += 1;
            match o.error {
                None => {
                    b.ok += 1;
                    b.latency.saturating_record(latency.max(1));
                }
                Some(class) => *b.errors.entry(class).or_default() += 1,
            }
        }
        if let Some((window, recent)) = &self.recent {
            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.push_back((o.done, latency, o.error.is_none()));
            while recent.front().is_some_and(|r| r.0 + *window < o.done) {
                recent.pop_front();
            }
        }
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.first_send = Some(t.first_send.map_or(o.sent, |f| f.min(o.sent)));
        t.last_send = t.last_send.max(o.sent);
        match o.error {
            None => {
                t.ok += 1;
                t.latency.saturating_record(latency.max(1));
                t.service.saturating_record(service.max(1));
            }
            Some(class) => *t.errors.entry(class).or_default() += 1,
        }
    }

    /// The requests completed in the `window` before `now` (an offset from the run's start).
    /// A request counts once answered or timed out, so a hung one counts after its timeout.
    pub fn window(&self, now: Duration) -> Window {
        let Some((window, recent)) = &self.recent else {
            return Window { completed: 0, errors: 0, p95_ms: None, p99_ms: None };
        };
        let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
        let in_window = recent.iter().filter(|r| r.0 + *window >= now && r.0 <= now);
        let errors = in_window.clone().filter(|r| !r.2).count() as u64;
        let mut latencies: Vec<u64> = in_window.map(|r| r.1).collect();
        latencies.sort_unstable();
        let q = |q: f64| {
            let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
            latencies.get(i).map(|&us| us as f64 / 1000.0)
        };
        Window { completed: latencies.len() as u64, errors, p95_ms: q(0.95), p99_ms: q(0.99) }
    }

    /// The summary of everything recorded.
    pub fn summary(&self) -> LoadSummary {
        let t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let sent = t.ok + t.errors.values().sum::<u64>();
        let span = t.last_send.saturating_sub(t.first_send.unwrap_or_default()).as_secs_f64();
        LoadSummary {
            sent,
            ok: t.ok,
            errors: t.errors.clone(),
            // n requests sent over a span have n − 1 gaps between them.
            send_rate: if span > 0.0 { (sent.saturating_sub(1)) as f64 / span } else { 0.0 },
            latency: Percentiles::of(&t.latency),
            service_time: Percentiles::of(&t.service),
            buckets: buckets
                .iter()
                .enumerate()
                .map(|(i, b)| BucketSummary {
                    start_s: (self.bucket * i as u32).as_secs_f64(),
                    sent: b.sent,
                    ok: b.ok,
                    errors: b.errors.values().sum(),
                    error_rate: if b.sent > 0 { b.errors.values().sum::<u64>() as f64 / b.sent as f64 } else { 0.0 },
                    p50_ms: ms(b.latency.value_at_quantile(0.5), b.ok),
                    p95_ms: ms(b.latency.value_at_quantile(0.95), b.ok),
                    p99_ms: ms(b.latency.value_at_quantile(0.99), b.ok),
                })
                .collect(),
        }
    }
}

fn ms(micros: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| micros as f64 / 1000.0)
}

/// Latency percentiles in milliseconds (`None` without successful requests).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Mean.
    pub mean_ms: Option<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let n = h.len();
        let q = |q: f64| ms(h.value_at_quantile(q), n);
        Percentiles {
            mean_ms: (n > 0).then(|| h.mean() / 1000.0),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(h.max(), n),
        }
    }
}

/// A time bucket of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketSummary {
    /// Start of the bucket, in seconds from the run's start.
    pub start_s: f64,
    /// Requests due in it.
    pub sent: u64,
    /// Of them, successful.
    pub ok: u64,
    /// Of them, failed.
    pub errors: u64,
    /// Failed share.
    pub error_rate: f64,
    /// Median latency of the successful ones.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Requests sent (and answered or failed).
    pub sent: u64,
    /// Successful ones.
    pub ok: u64,
    /// Failures by class.
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Requests sent per second, first send to last.
    pub send_rate: f64,
    /// From when each request was due to its answer (what users waited).
    pub latency: Percentiles,
    /// From when each request was sent to its answer (what the server took).
    pub service_time: Percentiles,
    /// Per time bucket.
    pub buckets: Vec<BucketSummary>,
}

#[cfg(test)]
mod tests {
    use super::ErrorClass;

    #[test]
    fn an_error_class_reads_as_its_serde_name() {
        use ErrorClass::*;
        for class in [Timeout, Refused, Reset, Connect, Http4xx, Http5xx, Other] {
            assert_eq!(serde_json::to_string(&class).unwrap(), format!("\"{}\"", class.as_str()));
        }
    }
}
