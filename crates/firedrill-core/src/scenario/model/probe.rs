//! Probes: the repeated checks whose samples measure detection, recovery and data loss.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{Dur, Rate};
use crate::word::ProbeKind;

/// A repeated check of the system.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Unique within the scenario.
    pub name: String,
    /// What is checked.
    pub check: Check,
    /// Time between samples.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// A sample not answered within this time fails, stamped at its own start.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Whether the probe's samples make up availability (MTTD, RTO). Defaults to true for
    /// every check but `write_ledger`, which measures data loss.
    #[serde(default)]
    pub availability: Option<bool>,
}

fn default_interval() -> Dur {
    Dur::secs(1)
}

impl Probe {
    /// Whether the probe's samples make up availability.
    pub fn is_availability(&self) -> bool {
        self.availability.unwrap_or(!matches!(self.check, Check::WriteLedger { .. }))
    }

    /// The sample timeout: the declared one, or the interval.
    pub fn timeout(&self) -> Dur {
        self.timeout.unwrap_or(self.interval)
    }
}

/// The method of an HTTP probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// Reads.
    #[default]
    Get,
    /// Writes (an order placed).
    Post,
    /// Writes (an object stored).
    Put,
    /// Removes.
    Delete,
}

impl HttpMethod {
    /// As written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// What a probe checks.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// An HTTP request.
    Http {
        /// The URL requested.
        url: String,
        /// The method (`POST` with an empty body probes a write endpoint).
        #[serde(default)]
        method: HttpMethod,
        /// The status a healthy answer has.
        #[serde(default = "default_status")]
        expect_status: u16,
        /// Text a healthy answer's body contains.
        #[serde(default)]
        body_contains: Option<String>,
        /// A slower answer fails.
        #[serde(default)]
        max_latency: Option<Dur>,
        /// `https://`: a PEM file with the CA that signs the server's certificate (a private
        /// CA), trusted instead of this machine's root certificates; relative to the
        /// scenario's folder.
        #[serde(default)]
        ca: Option<std::path::PathBuf>,
    },
    /// A TCP connection.
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// A SQL query on PostgreSQL.
    Sql {
        /// Connection string.
        dsn: String,
        /// Query that must succeed.
        #[serde(default = "default_query")]
        query: String,
    },
    /// A put and get of a small object.
    S3 {
        /// The S3 endpoint URL.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// The region signed for.
        #[serde(default = "default_region")]
        region: String,
    },
    /// A command whose exit status 0 means healthy (argv, not a shell string).
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// Background HTTP load at a set rate throughout the drill, healthy while it meets its
    /// service-level objective over a sliding window: a surge's RTO is the time until the
    /// users' experience is back within the objective.
    Slo {
        /// The URL loaded (`http://` or `https://`).
        url: String,
        /// Requests per second, sent whatever the answers (open model).
        rate: Rate,
        /// The 95th-percentile latency must stay under this.
        #[serde(default)]
        p95: Option<Dur>,
        /// The 99th-percentile latency must stay under this.
        #[serde(default)]
        p99: Option<Dur>,
        /// The most failed requests allowed, in percent.
        #[serde(default = "default_error_percent")]
        max_error_percent: f64,
        /// The requests answered (or timed out) in this past window are judged at each sample.
        #[serde(default = "default_slo_window")]
        window: Dur,
        /// A request not answered within this fails.
        #[serde(default = "default_request_timeout")]
        request_timeout: Dur,
        /// `https://`: the CA that signs the server's certificate (see `http`).
        #[serde(default)]
        ca: Option<std::path::PathBuf>,
    },
    /// Numbered records written at every interval and read back after recovery (RPO).
    WriteLedger {
        /// Connection string of the database written to.
        dsn: String,
        /// Table the ledger writes (created if missing).
        #[serde(default = "default_ledger_table")]
        table: String,
    },
}

fn default_error_percent() -> f64 {
    1.0
}
fn default_slo_window() -> Dur {
    Dur::secs(5)
}
fn default_request_timeout() -> Dur {
    Dur::secs(2)
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_status() -> u16 {
    200
}
fn default_query() -> String {
    "SELECT 1".into()
}
fn default_ledger_table() -> String {
    "firedrill_ledger".into()
}

impl Check {
    /// The check's word, as records, plans and reports store it.
    pub fn kind(&self) -> ProbeKind {
        match self {
            Check::Http { .. } => ProbeKind::Http,
            Check::Tcp { .. } => ProbeKind::Tcp,
            Check::Sql { .. } => ProbeKind::Sql,
            Check::S3 { .. } => ProbeKind::S3,
            Check::Command { .. } => ProbeKind::Command,
            Check::Slo { .. } => ProbeKind::Slo,
            Check::WriteLedger { .. } => ProbeKind::WriteLedger,
        }
    }

    /// What the check targets, in one line.
    pub fn target(&self) -> String {
        match self {
            Check::Http { url, expect_status, method, .. } => format!("{} {url} → {expect_status}", method.as_str()),
            Check::Tcp { address } => address.clone(),
            Check::Sql { dsn, query } => format!("{query} on {}", crate::redact::dsn(dsn)),
            Check::S3 { endpoint, bucket, .. } => format!("{endpoint}/{bucket}"),
            Check::Command { argv } => argv.join(" "),
            Check::Slo { url, rate, p95, p99, max_error_percent, window, .. } => {
                let mut objective = vec![format!("errors < {max_error_percent}%")];
                objective.extend(p95.map(|d| format!("p95 < {d}")));
                objective.extend(p99.map(|d| format!("p99 < {d}")));
                format!("GET {url} at {rate}; {} over {window}", objective.join(", "))
            }
            Check::WriteLedger { dsn, table } => format!("{table} on {}", crate::redact::dsn(dsn)),
        }
    }
}
