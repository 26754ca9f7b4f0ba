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
    /// every check but `write_ledger`, which measures data loss, and `alert`, which measures
    /// detection.
    #[serde(default)]
    pub availability: Option<bool>,
}

fn default_interval() -> Dur {
    Dur::secs(1)
}

impl Probe {
    /// Whether the probe's samples make up availability.
    pub fn is_availability(&self) -> bool {
        self.availability.unwrap_or(!matches!(self.check, Check::WriteLedger { .. } | Check::Alert { .. }))
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
        /// `kube`: request the URL from inside the cluster (a Service's DNS name, as the pods
        /// reach it), from a probe pod firedrill starts for the drill and removes after it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        in_cluster: bool,
    },
    /// A TCP connection.
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// A SQL query on PostgreSQL.
    Sql {
        /// Connection string, `key=value` or `postgresql://`; TLS as libpq's `sslmode`,
        /// `sslrootcert`, `sslcert` and `sslkey` say (files relative to the scenario's folder).
        dsn: String,
        /// Query that must succeed.
        #[serde(default = "default_query")]
        query: String,
        /// Keep one connection open across samples, as an application's pool does, and open a
        /// new one only after a sample on it failed (a query error or the probe's timeout). A
        /// pool that keeps a dead connection recovers later than new connections do, so the two
        /// measure different RTOs. Absent: a new connection for every sample.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pool: bool,
    },
    /// A put and get of a small object.
    S3 {
        /// The S3 endpoint URL (an emulator, a private object store). Absent: AWS itself, with
        /// the client, credentials (environment, profiles, SSO, instance and container roles)
        /// and region of the AWS SDK's standard chain, as the team's own tools find them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// The bucket.
        bucket: String,
        /// The region signed for. Absent: `us-east-1` with an `endpoint`, the standard chain's
        /// region without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// An `https://` endpoint's CA (see `http`).
        #[serde(default)]
        ca: Option<std::path::PathBuf>,
    },
    /// A DNS name resolved (its CNAME chain and its A and AAAA records): healthy while it
    /// resolves (to an answer containing `expect`). Every change of the answer is kept with
    /// when it was seen (the DNS timeline): a database failover behind a DNS name shows as the
    /// name's CNAME moving from one host to another, and when clients could follow it.
    Dns {
        /// The name (`shop-db.abc123.eu-west-1.rds.amazonaws.com`).
        name: String,
        /// The DNS server asked (`127.0.0.1:5353`, or an address on port 53). Absent: this
        /// machine's resolvers (`/etc/resolv.conf`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        /// Text a healthy answer contains (a host name of the chain, an address).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
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
    /// A PromQL query against a Prometheus server: healthy while every series it returns
    /// meets the condition (the team's own objective, where it already lives).
    Prometheus {
        /// The Prometheus server (`http://prometheus:9090`).
        url: String,
        /// The PromQL query, evaluated at each sample.
        query: String,
        /// What each value must satisfy: `< 0.01`, `<= 5`, `> 0`, `>= 1`, `== 1`, `!= 0`.
        condition: Comparison,
        /// `https://`: the CA that signs the server's certificate (see `http`).
        #[serde(default)]
        ca: Option<std::path::PathBuf>,
    },
    /// A named alert on a Prometheus server: healthy while it is not firing. Its first firing
    /// sample after the fault is when the team's monitoring detected the fault (MTTD from the
    /// alert), beside the moment the probes first saw users hurt.
    Alert {
        /// The Prometheus server whose rules raise the alert (`http://prometheus:9090`).
        url: String,
        /// The alert's name (its `alertname` label).
        alert: String,
        /// Labels the alert must also carry to count (`{service: shop}`), when one rule
        /// raises alerts for many services.
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        /// `https://`: the CA that signs the server's certificate (see `http`).
        #[serde(default)]
        ca: Option<std::path::PathBuf>,
    },
    /// Numbered records written at every interval and read back after recovery (RPO).
    WriteLedger {
        /// Connection string of the database written to (TLS as for `sql`).
        dsn: String,
        /// Table the ledger writes (created if missing).
        #[serde(default = "default_ledger_table")]
        table: String,
    },
    /// `kube`: a Deployment has at least `min_ready` ready replicas, as its status says.
    Deployment {
        /// The Deployment.
        deployment: String,
        /// Its namespace; absent: the environment's `namespace`.
        #[serde(default)]
        namespace: Option<String>,
        /// The ready replicas a healthy Deployment has at least.
        #[serde(default = "default_min_ready")]
        min_ready: u32,
    },
    /// `kube`: a Service's EndpointSlices (label `kubernetes.io/service-name`) list at least
    /// `min_ready` ready addresses, as the API server's watch says: what the Service routes
    /// to, which is what a failover or a drain changes first.
    Endpoints {
        /// The Service.
        service: String,
        /// Its namespace; absent: the environment's `namespace`.
        #[serde(default)]
        namespace: Option<String>,
        /// The ready addresses a healthy Service has at least.
        #[serde(default = "default_min_ready")]
        min_ready: u32,
    },
}

fn default_min_ready() -> u32 {
    1
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
            Check::Dns { .. } => ProbeKind::Dns,
            Check::Command { .. } => ProbeKind::Command,
            Check::Slo { .. } => ProbeKind::Slo,
            Check::WriteLedger { .. } => ProbeKind::WriteLedger,
            Check::Prometheus { .. } => ProbeKind::Prometheus,
            Check::Alert { .. } => ProbeKind::Alert,
            Check::Deployment { .. } => ProbeKind::Deployment,
            Check::Endpoints { .. } => ProbeKind::Endpoints,
        }
    }

    /// What the check targets, in one line.
    pub fn target(&self) -> String {
        match self {
            Check::Http { url, expect_status, method, .. } => format!("{} {url} → {expect_status}", method.as_str()),
            Check::Tcp { address } => address.clone(),
            Check::Sql { dsn, query, pool } => {
                let pooled = if *pool { " (one pooled connection)" } else { "" };
                format!("{query} on {}{pooled}", crate::redact::dsn(dsn))
            }
            Check::S3 { endpoint: Some(endpoint), bucket, .. } => format!("{endpoint}/{bucket}"),
            Check::S3 { endpoint: None, bucket, .. } => format!("s3://{bucket}"),
            Check::Dns { name, server, expect } => {
                let server = server.as_ref().map(|s| format!(" at {s}")).unwrap_or_default();
                let expect = expect.as_ref().map(|e| format!(" → contains `{e}`")).unwrap_or_default();
                format!("{name}{server}{expect}")
            }
            Check::Command { argv } => argv.join(" "),
            Check::Slo { url, rate, p95, p99, max_error_percent, window, .. } => {
                let mut objective = vec![format!("errors < {max_error_percent}%")];
                objective.extend(p95.map(|d| format!("p95 < {d}")));
                objective.extend(p99.map(|d| format!("p99 < {d}")));
                format!("GET {url} at {rate}; {} over {window}", objective.join(", "))
            }
            Check::WriteLedger { dsn, table } => format!("{table} on {}", crate::redact::dsn(dsn)),
            Check::Prometheus { url, query, condition, .. } => format!("{query} {condition} on {url}"),
            Check::Alert { url, alert, labels, .. } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                match labels.is_empty() {
                    true => format!("alert {alert} on {url}"),
                    false => format!("alert {alert}{{{}}} on {url}", labels.join(",")),
                }
            }
            Check::Deployment { deployment, namespace, min_ready } => format!(
                "deployment {}{deployment}: at least {min_ready} ready replica(s)",
                namespace.as_ref().map(|ns| format!("{ns}/")).unwrap_or_default()
            ),
            Check::Endpoints { service, namespace, min_ready } => format!(
                "service {}{service}: at least {min_ready} ready endpoint(s)",
                namespace.as_ref().map(|ns| format!("{ns}/")).unwrap_or_default()
            ),
        }
    }
}

/// A `dns` probe's `server`: `IP:port`, `[IPv6]:port`, or an address alone on port 53; `None`
/// when it is none of these (refused at load).
pub fn dns_server(text: &str) -> Option<std::net::SocketAddr> {
    let text = text.trim();
    text.parse().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(|ip| std::net::SocketAddr::new(ip, 53)))
}

/// A comparison a value must satisfy, written as in PromQL: `< 0.01`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Comparison {
    /// The operator.
    pub op: CompareOp,
    /// The value compared with.
    pub value: f64,
}

/// The operators of a [`Comparison`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CompareOp {
    const ALL: [(CompareOp, &'static str); 6] = [
        (CompareOp::Le, "<="),
        (CompareOp::Ge, ">="),
        (CompareOp::Eq, "=="),
        (CompareOp::Ne, "!="),
        (CompareOp::Lt, "<"),
        (CompareOp::Gt, ">"),
    ];

    fn as_str(self) -> &'static str {
        CompareOp::ALL.iter().find(|(op, _)| *op == self).map(|(_, s)| *s).unwrap_or("?")
    }
}

impl Comparison {
    /// Whether `x` satisfies it. NaN satisfies nothing but `!=`.
    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            CompareOp::Lt => x < self.value,
            CompareOp::Le => x <= self.value,
            CompareOp::Gt => x > self.value,
            CompareOp::Ge => x >= self.value,
            CompareOp::Eq => x == self.value,
            CompareOp::Ne => x != self.value,
        }
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.value)
    }
}

impl From<Comparison> for String {
    fn from(c: Comparison) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Comparison {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let t = text.trim();
        let (op, rest) =
            CompareOp::ALL.iter().find_map(|(op, s)| t.strip_prefix(s).map(|rest| (*op, rest))).ok_or_else(|| {
                format!("`{text}`: expected an operator (<, <=, >, >=, ==, !=) and a number, e.g. `< 0.01`")
            })?;
        let value: f64 = rest.trim().parse().map_err(|_| format!("`{text}`: `{}` is not a number", rest.trim()))?;
        if !value.is_finite() {
            return Err(format!("`{text}`: the value must be a finite number"));
        }
        Ok(Comparison { op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Comparison, String> {
        Comparison::try_from(text.to_string())
    }

    #[test]
    fn conditions_read_as_promql_writes_them() {
        assert_eq!(parse("< 0.01"), Ok(Comparison { op: CompareOp::Lt, value: 0.01 }));
        assert_eq!(parse(">=1"), Ok(Comparison { op: CompareOp::Ge, value: 1.0 }));
        assert_eq!(parse(" != 0 "), Ok(Comparison { op: CompareOp::Ne, value: 0.0 }));
        assert_eq!(parse("<= 5").map(|c| c.to_string()), Ok("<= 5".to_string()));
        assert!(parse("~ 1").unwrap_err().contains("expected an operator"));
        assert!(parse("< x").unwrap_err().contains("`x` is not a number"));
        assert!(parse("< inf").unwrap_err().contains("finite"));
        let below = parse("< 0.01").unwrap();
        assert!(below.holds(0.001) && !below.holds(0.01) && !below.holds(f64::NAN));
        assert!(parse("!= 0").unwrap().holds(f64::NAN));
    }

    #[test]
    fn a_dns_probes_server_is_an_address_with_or_without_its_port() {
        assert_eq!(dns_server("127.0.0.1:5353"), Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(dns_server("10.0.0.2"), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(dns_server("[::1]:5353"), Some("[::1]:5353".parse().unwrap()));
        assert_eq!(dns_server("ns1.example.com"), None);
        let text = "name: s\nfault: {kind: db_failover}\nprobes:\n  - name: p\n    check: {kind: dns, name: db.example.com, server: ns1}\n";
        let e = crate::scenario::parse(text, std::path::Path::new("s.yaml")).unwrap_err().to_string();
        assert!(e.contains("s.yaml:4:") && e.contains("`server` must be an IP address"), "{e}");
    }

    #[test]
    fn new_probe_fields_are_optional_and_named_in_the_target() {
        let text = "name: s\nfault: {kind: db_failover}\nprobes:\n  - name: d\n    check: {kind: dns, name: db.example.com, expect: ec2-}\n  - name: q\n    check: {kind: sql, dsn: \"host=db\", pool: true}\n  - name: o\n    check: {kind: s3, bucket: drills}\n";
        let s = crate::scenario::parse(text, std::path::Path::new("s.yaml")).unwrap();
        let targets: Vec<String> = s.probes.iter().map(|p| p.check.target()).collect();
        assert_eq!(
            targets,
            ["db.example.com → contains `ec2-`", "SELECT 1 on host=db (one pooled connection)", "s3://drills"]
        );
        assert_eq!(s.probes[0].check.kind(), ProbeKind::Dns);
    }

    #[test]
    fn a_bad_condition_is_refused_at_its_place_in_the_file() {
        let text = "name: s\nfault: {kind: db_failover}\nprobes:\n  - name: p\n    check: {kind: prometheus, url: \"http://127.0.0.1:9090\", query: up, condition: \"~ 1\"}\n";
        let e = crate::scenario::parse(text, std::path::Path::new("s.yaml")).unwrap_err().to_string();
        assert!(e.contains("s.yaml:5:") && e.contains("expected an operator"), "{e}");
    }
}
