//! `firedrill load`: HTTP load against URLs, measured.

use clap::Args;
use firedrill::duration::{Dur, Rate};
use firedrill::load;
use firedrill::score::EXIT_OK;

use super::{CliError, Output, TextOrJson};

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
    /// `text`, or `json` for the whole measurement, per-second buckets included.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
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
        };
        let report = load::run(&plan)?;
        match self.format {
            TextOrJson::Text => out.print(&load::describe(&plan, &report)),
            TextOrJson::Json => out.println(&serde_json::to_string_pretty(&report).expect("plain JSON")),
        }
        Ok(EXIT_OK)
    }
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
