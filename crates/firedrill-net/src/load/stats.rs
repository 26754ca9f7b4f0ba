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
    Histogram::new_with_bounds(LOWEST, HIGHEST, SIGFIG).expect("valid histogram bounds")
}

const LOWEST: u64 = 1;
const HIGHEST: u64 = 100_000_000;
const SIGFIG: u8 = 3;

/// One time bucket's measurements, by the time requests were due. The whole run's totals are
/// the sum of its buckets, so the buckets of several generators, added, give what one
/// generator sending all their requests would have measured: exactly, HDR histograms of the
/// same bounds adding without loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    sent: u64,
    ok: u64,
    errors: BTreeMap<ErrorClass, u64>,
    first_send: Option<Duration>,
    last_send: Duration,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            latency: histogram(),
            service: histogram(),
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            first_send: None,
            last_send: Duration::ZERO,
        }
    }
}

impl Bucket {
    fn record(&mut self, o: &RequestOutcome) {
        self.sent += 1;
        self.first_send = Some(self.first_send.map_or(o.sent, |f| f.min(o.sent)));
        self.last_send = self.last_send.max(o.sent);
        match o.error {
            None => {
                self.ok += 1;
                self.latency.saturating_record((o.done.saturating_sub(o.due).as_micros() as u64).max(1));
                self.service.saturating_record((o.done.saturating_sub(o.sent).as_micros() as u64).max(1));
            }
            Some(class) => *self.errors.entry(class).or_default() += 1,
        }
    }

    /// Adds `other`'s measurements to this bucket's.
    pub fn add(&mut self, other: &Bucket) {
        // Same bounds on both sides (checked when a streamed bucket is read): cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.sent += other.sent;
        self.ok += other.ok;
        for (class, n) in &other.errors {
            *self.errors.entry(*class).or_default() += n;
        }
        self.first_send = match (self.first_send, other.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_send = self.last_send.max(other.last_send);
    }

    /// The bucket as a worker streams it.
    pub fn to_line(&self, index: usize) -> BucketLine {
        BucketLine {
            index,
            sent: self.sent,
            ok: self.ok,
            errors: self.errors.clone(),
            first_send_us: self.first_send.map(|d| d.as_micros() as u64),
            last_send_us: self.last_send.as_micros() as u64,
            latency: encode(&self.latency),
            service: encode(&self.service),
        }
    }

    /// A streamed bucket, read back; refused when its histograms are not this generator's
    /// (other bounds would not add exactly).
    pub fn from_line(line: &BucketLine) -> Result<Bucket, HistogramError> {
        Ok(Bucket {
            latency: decode(&line.latency)?,
            service: decode(&line.service)?,
            sent: line.sent,
            ok: line.ok,
            errors: line.errors.clone(),
            first_send: line.first_send_us.map(Duration::from_micros),
            last_send: Duration::from_micros(line.last_send_us),
        })
    }
}

/// One bucket of a worker's stream: a line of JSON, its histograms in HdrHistogram's
/// compressed V2 encoding (base64), the form HdrHistogram's own tools read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketLine {
    /// Which bucket: its start is `index` bucket widths after the run's start.
    pub index: usize,
    /// Requests due in it.
    pub sent: u64,
    /// Of them, successful.
    pub ok: u64,
    /// Failures by class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<ErrorClass, u64>,
    /// The first of them sent, in µs from the run's start.
    pub first_send_us: Option<u64>,
    /// The last of them sent.
    pub last_send_us: u64,
    /// Latency of the successful ones, from when each was due.
    pub latency: String,
    /// Service time of the successful ones, from when each was sent.
    pub service: String,
}

/// A streamed histogram that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// Not base64.
    #[error("a histogram is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// Not HdrHistogram's V2 encoding.
    #[error("a histogram is not in HdrHistogram's V2 encoding: {0:?}")]
    Encoding(hdrhistogram::serialization::DeserializeError),
    /// Encoded with bounds other than firedrill's, so it would not add exactly.
    #[error("a histogram spans {low}..{high} at {sigfig} digits, not firedrill's {LOWEST}..{HIGHEST} at {SIGFIG}")]
    Bounds {
        /// Its lowest discernible value.
        low: u64,
        /// Its highest trackable value.
        high: u64,
        /// Its significant digits.
        sigfig: u8,
    },
}

fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail, nor can compressing a histogram of sane bounds.
    let _ = hdrhistogram::serialization::V2DeflateSerializer::new().serialize(h, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(HistogramError::Base64)?;
    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramError::Encoding)?;
    if (h.low(), h.high(), h.sigfig()) != (LOWEST, HIGHEST, SIGFIG) {
        return Err(HistogramError::Bounds { low: h.low(), high: h.high(), sigfig: h.sigfig() });
    }
    Ok(h)
}

/// What every request recorded, shared by the connections of a run. Buckets are by the
/// time a request was due, so a bucket shows what users arriving then experienced.
pub struct Recorder {
    bucket: Duration,
    buckets: Mutex<Vec<Bucket>>,
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
        Recorder { bucket, recent: window.map(|w| (w, Mutex::new(VecDeque::new()))), buckets: Mutex::new(Vec::new()) }
    }

    /// Records one request. Latency runs from when it was due, not when it was sent: time
    /// spent waiting for a free connection is time a user waited.
    pub fn record(&self, o: &RequestOutcome) {
        let index = (o.due.as_nanos() / self.bucket.as_nanos().max(1)) as usize;
        {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            if buckets.len() <= index {
                buckets.resize_with(index + 1, Bucket::default);
            }
            buckets[index].record(o);
        }
        if let Some((window, recent)) = &self.recent {
            let latency = o.done.saturating_sub(o.due).as_micros() as u64;
            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.push_back((o.done, latency, o.error.is_none()));
            while recent.front().is_some_and(|r| r.0 + *window < o.done) {
                recent.pop_front();
            }
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

    /// The buckets `from..` that are final by `now` (an offset from the run's start): every
    /// request due in them has been answered or has timed out, `timeout` being the longest a
    /// request takes. With `now` past the run's end, every bucket from `from` on.
    pub fn final_buckets(&self, from: usize, now: Duration, timeout: Duration) -> Vec<(usize, Bucket)> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let width = self.bucket.as_nanos().max(1);
        let done = (now.saturating_sub(timeout).as_nanos() / width) as usize;
        (from..done.min(buckets.len())).map(|i| (i, buckets[i].clone())).collect()
    }

    /// The summary of everything recorded.
    pub fn summary(&self) -> LoadSummary {
        summary(&self.buckets.lock().unwrap_or_else(|e| e.into_inner()), self.bucket)
    }
}

/// The summary of a run's buckets, `width` wide: its totals are their sum.
pub fn summary(buckets: &[Bucket], width: Duration) -> LoadSummary {
    let mut total = Bucket::default();
    for b in buckets {
        total.add(b);
    }
    let span = total.last_send.saturating_sub(total.first_send.unwrap_or_default()).as_secs_f64();
    LoadSummary {
        sent: total.sent,
        ok: total.ok,
        // n requests sent over a span have n − 1 gaps between them.
        send_rate: if span > 0.0 { (total.sent.saturating_sub(1)) as f64 / span } else { 0.0 },
        latency: Percentiles::of(&total.latency),
        service_time: Percentiles::of(&total.service),
        errors: total.errors,
        buckets: buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let errors = b.errors.values().sum::<u64>();
                BucketSummary {
                    start_s: (width * i as u32).as_secs_f64(),
                    sent: b.sent,
                    ok: b.ok,
                    errors,
                    error_rate: if b.sent > 0 { errors as f64 / b.sent as f64 } else { 0.0 },
                    p50_ms: ms(b.latency.value_at_quantile(0.5), b.ok),
                    p95_ms: ms(b.latency.value_at_quantile(0.95), b.ok),
                    p99_ms: ms(b.latency.value_at_quantile(0.99), b.ok),
                }
            })
            .collect(),
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
