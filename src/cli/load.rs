//! `firedrill load`: HTTP load against URLs, measured.

use clap::Args;
use firedrill::duration::{Dur, Rate};
use firedrill::load;
use firedrill::score::EXIT_OK;

use super::{CliError, Output};

/// Send HTTP load to URLs: latency percentiles (overall and per second), errors by class,
/// the rate reached, and the CPU it cost.
///
/// Open model by default: requests start at `--rate` (or along `--stages`) whatever the
/// server does, and latency counts from when each was due, so a slow server shows as
/// latency, not as less load. `--users N` is the closed model instead.
#[derive(Args)]
pub struct LoadArgs {
    /// `http://` or `https://` URLs, requested in equal shares; `3*URL` gives a URL three shares.
    #[arg(required = true)]
    urls: Vec<String>,
    /// Arrival rate.
    #[arg(long, default_value = "100/s")]
    rate: Rate,
    /// How long.
    #[arg(long, default_value = "10s")]
    duration: Dur,
    /// Rate stages instead of `--rate`/`--duration`: `200/s:10s,2000/s:60s,200/s:10s`;
    /// a ramp is `0/s..500/s:30s`.
    #[arg(long)]
    stages: Option<String>,
    /// Closed model: this many users, each sending its next request when its last one is
    /// answered, for `--duration`.
    #[arg(long)]
    users: Option<usize>,
    /// The most connections opened (HTTP/2 multiplexes up to 100 requests on each).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// A request not answered within this fails as a timeout.
    #[arg(long, default_value = "5s")]
    timeout: Dur,
    /// HTTP/2 (prior knowledge over cleartext, ALPN `h2` over TLS) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// A PEM file with the CA that signs the `https://` targets' certificates (a private CA),
    /// trusted instead of this machine's roots (which honour SSL_CERT_FILE and SSL_CERT_DIR).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// The request method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The request body.
    #[arg(long)]
    body: Option<String>,
    /// `text`; `json` for the whole measurement, per-second buckets included; `stream` for
    /// what a worker of a split run sends back: a line of JSON per second once final (its HDR
    /// histograms encoded), then one with the run's cost.
    #[arg(long, value_enum, default_value_t = LoadFormat::Text)]
    format: LoadFormat,
    /// Send only share K of N of the requests (every N-th, from the K-th, K from 0), so that
    /// N generators on several machines, each given its share, send together what one would.
    #[arg(long, value_name = "K/N", value_parser = parse_share)]
    share: Option<load::Share>,
    /// Start at this time (RFC 3339, `2026-11-30T14:00:00Z`) rather than at once: generators
    /// splitting a run start together, so that their per-second buckets cover the same seconds.
    #[arg(long, value_name = "TIME", value_parser = parse_start)]
    start_at: Option<std::time::SystemTime>,
}

/// How `firedrill load` prints what it measured.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LoadFormat {
    /// The measurement in words and tables.
    Text,
    /// The whole measurement as JSON.
    Json,
    /// JSON lines, as a worker of a split run streams them.
    Stream,
}

impl LoadArgs {
    /// Sends the load and prints the measurement.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let model = match (self.users, &self.stages) {
            (Some(_), Some(_)) => return Err(CliError::BothModels),
            (Some(users), None) => load::Model::Closed { users, duration: self.duration.0 },
            (None, Some(text)) => load::Model::Open(parse_stages(text)?),
            (None, None) => load::Model::Open(vec![load::Stage::constant(self.rate.per_sec(), self.duration.0)]),
        };
        let method =
            self.method.to_uppercase().parse::<load::Method>().map_err(|_| CliError::Method(self.method.clone()))?;
        let body = load::Bytes::from(self.body.unwrap_or_default());
        let mut targets = Vec::new();
        for arg in &self.urls {
            // `3*URL`: three shares of the requests.
            let (weight, url) = match arg.split_once('*') {
                Some((n, url)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                    let weight = n.parse().map_err(|_| CliError::Weight { target: arg.clone(), weight: n.into() })?;
                    (weight, url)
                }
                _ => (1, arg.as_str()),
            };
            targets.push(load::Target { method: method.clone(), url: url.into(), body: body.clone(), weight });
        }
        let plan = load::Plan {
            targets,
            model,
            connections: self.connections,
            timeout: self.timeout.0,
            http2: self.http2,
            bucket: std::time::Duration::from_secs(1),
            ca: self.ca,
            share: self.share.unwrap_or(load::Share::WHOLE),
            start_at: self.start_at,
        };
        let line = |line: &load::StreamLine| serde_json::to_string(line).expect("plain JSON");
        match self.format {
            LoadFormat::Text => out.print(&load::describe(&plan, &load::run(&plan)?)),
            LoadFormat::Json => out.println(&serde_json::to_string_pretty(&load::run(&plan)?).expect("plain JSON")),
            LoadFormat::Stream => {
                let report = load::run_streamed(&plan, |i, bucket| {
                    out.println(&line(&load::StreamLine::Bucket(bucket.to_line(i))))
                })?;
                out.println(&line(&load::StreamLine::End(report.end())));
            }
        }
        Ok(EXIT_OK)
    }
}

/// `K/N`: share K (from 0) of N.
fn parse_share(text: &str) -> Result<load::Share, String> {
    let (index, of) = text.split_once('/').ok_or("expected K/N, e.g. 0/4")?;
    let number = |n: &str| n.trim().parse::<usize>().map_err(|_| format!("`{n}` is not a whole number"));
    let share = load::Share { index: number(index)?, of: number(of)? };
    if share.index >= share.of {
        return Err(format!("share {} of {}: K is counted from 0, so it is below N", share.index, share.of));
    }
    Ok(share)
}

/// An RFC 3339 time, as the wall clock's.
fn parse_start(text: &str) -> Result<std::time::SystemTime, String> {
    let at: jiff::Timestamp = text.parse().map_err(|e| format!("not an RFC 3339 time (2026-11-30T14:00:00Z): {e}"))?;
    std::time::SystemTime::try_from(at).map_err(|e| format!("{at} is beyond this system's clock: {e}"))
}

/// `200/s:10s,0/s..500/s:30s` → stages.
fn parse_stages(text: &str) -> Result<Vec<load::Stage>, CliError> {
    text.split(',')
        .map(|part| {
            let value = |source| CliError::StageValue { part: part.into(), source };
            let (rates, duration) =
                part.trim().rsplit_once(':').ok_or_else(|| CliError::StageForm { part: part.into() })?;
            let duration: Dur = duration.parse().map_err(value)?;
            let (from, to) = match rates.split_once("..") {
                Some((a, b)) => (a, Some(b)),
                None => (rates, None),
            };
            let rate = |r: &str| r.parse::<Rate>().map(|r| r.per_sec()).map_err(value);
            Ok(load::Stage { rate: rate(from)?, to: to.map(rate).transpose()?, duration: duration.0 })
        })
        .collect()
}
