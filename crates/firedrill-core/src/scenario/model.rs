//! The scenario format: the typed mirror of the YAML a user writes.
//!
//! These are the raw, as-written types. Lists whose entries are checked against each other
//! (probes, steps, stop conditions) and values checked against each other (targets, deadline)
//! carry their source position so a semantic error can point at them; [`super::Scenario`] is
//! the validated form the engine runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::dist::{Delay, Dist};
use crate::duration::{Dur, Rate};

/// A scenario file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "firedrill scenario")]
pub struct RawScenario {
    /// Short identifier, used to group drills of the same scenario (letters, digits, `-`, `_`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the drill proves, for the people reading its report.
    #[serde(default)]
    pub description: String,
    /// Free labels (`tier-1`, `database`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the scenario runs; `sim` when absent.
    #[serde(default)]
    pub environment: EnvironmentSpec,
    /// What is injected.
    #[schemars(with = "Fault")]
    pub fault: Spanned<Fault>,
    /// The repeated checks that observe the system.
    #[serde(default)]
    #[schemars(with = "Vec<Probe>")]
    pub probes: Vec<Spanned<Probe>>,
    /// The recovery runbook; self-healing (`automatic`) when absent.
    #[serde(default)]
    pub procedure: Procedure,
    /// The limits the drill must meet.
    #[serde(default)]
    pub targets: Targets,
    /// How long the system must stay healthy to count as recovered.
    #[serde(default)]
    pub stability: Stability,
    /// How long after the fault firedrill waits for recovery before calling it unrecovered.
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub deadline: Option<Spanned<Dur>>,
    /// The healthy state required before injecting and expected again after reverting.
    #[serde(default)]
    pub steady_state: SteadyState,
    /// Safety limits: the drill is aborted (and the fault reverted) when one is reached.
    #[serde(default)]
    #[schemars(with = "Vec<StopCondition>")]
    pub stop_conditions: Vec<Spanned<StopCondition>>,
    /// Strings masked wherever they would appear in a result or report (passwords, tokens,
    /// internal host names). Passwords in connection strings are masked without being listed.
    #[serde(default)]
    pub redact: Vec<String>,
}

/// Where a scenario runs.
// One per scenario: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvironmentSpec {
    /// The in-process model of a service stack, in virtual time.
    Sim(SimStack),
    /// Real containers on this machine's Docker Engine.
    Docker(DockerStack),
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        EnvironmentSpec::Sim(SimStack::default())
    }
}

impl EnvironmentSpec {
    /// The environment's word, as used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvironmentSpec::Sim(_) => "sim",
            EnvironmentSpec::Docker(_) => "docker",
        }
    }
}

/// Containers on this machine's Docker Engine: started for the drill on a private network
/// (`containers`, removed afterwards) or already running (`attach`, never removed).
///
/// Probes, steps and faults name containers by their `name`; in probe targets `${name}` is the
/// container's address and `${name:port}` its address and port, looked up at every sample so a
/// container that comes back with a new address is still found.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DockerStack {
    /// A stack file whose containers, nodes and attachments come first, so several scenarios
    /// drill one shipped stack (`stacks/reference.yaml`); relative to the scenario's folder.
    pub from: Option<String>,
    /// The node labels containers are placed on; a drained node's workloads are started
    /// again on the others, as a scheduler would.
    pub nodes: Vec<String>,
    /// Containers firedrill starts, in order, each ready before the next starts.
    pub containers: Vec<ContainerSpec>,
    /// Running containers the drill targets.
    pub attach: Vec<Attach>,
    /// Bytes of each container's log kept as evidence of the drill window (the last ones).
    pub log_limit: Option<u64>,
}

/// A container firedrill starts for the drill.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// The name the drill uses, and the container's host name on the private network, so the
    /// other containers reach it by this name.
    pub name: String,
    /// A local image (`firedrill/base:latest` is built by `scripts/setup-docker`).
    #[serde(default = "default_image")]
    pub image: String,
    /// The command (argv), replacing the image's.
    #[serde(default)]
    pub command: Vec<String>,
    /// The user the command runs as (PostgreSQL refuses to run as root).
    #[serde(default)]
    pub user: Option<String>,
    /// EnvironmentSpec variables.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// When the container counts as started.
    #[serde(default)]
    pub ready: Ready,
    /// The node it runs on (one of `nodes`), or `any`: the least loaded one when it starts.
    /// Absent: on no node (a managed database, say), so no drain moves it.
    #[serde(default)]
    pub node: Option<String>,
    /// Declared but not started with the stack: spare capacity a procedure step starts
    /// (`start: <name>`).
    #[serde(default)]
    pub standby: bool,
}

fn default_image() -> String {
    "firedrill/base:latest".into()
}

/// A readiness check: every condition given must hold.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Ready {
    /// Text the container prints (stdout or stderr).
    pub log: Option<String>,
    /// A command run inside the container that exits 0 once ready (argv), retried.
    pub command: Option<Vec<String>>,
    /// A TCP port of the container that accepts connections once ready.
    pub port: Option<u16>,
    /// How long to wait before the drill fails to start.
    pub timeout: Dur,
}

impl Default for Ready {
    fn default() -> Self {
        Ready { log: None, command: None, port: None, timeout: Dur::secs(60) }
    }
}

/// A running container the drill targets, chosen by container name or by Docker Compose
/// service.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    /// The name the drill uses.
    pub name: String,
    /// The Docker container name.
    #[serde(default)]
    pub container: Option<String>,
    /// The Compose service (labels `com.docker.compose.project` and `.service`).
    #[serde(default)]
    pub compose: Option<ComposeService>,
}

/// A Docker Compose service.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeService {
    /// The Compose project.
    pub project: String,
    /// The service within it.
    pub service: String,
}

/// The simulated stack: app replicas on nodes behind a load balancer, a primary database with
/// an asynchronous replica, an object store, an autoscaler. Every recovery behaviour is a
/// distribution so repeated drills vary as real ones do.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SimStack {
    /// Worker nodes, named `node-1` … `node-N`.
    pub nodes: u32,
    /// App replicas, spread round-robin over the nodes.
    pub replicas: u32,
    /// Requests per second one replica serves before it sheds load.
    pub replica_capacity: Rate,
    /// Baseline request arrival rate at the load balancer.
    pub traffic: Rate,
    /// Time for the scheduler to place an evicted replica on another node.
    pub reschedule: Delay,
    /// Time from a replica's start to passing readiness.
    pub readiness: Delay,
    /// The horizontal autoscaler.
    pub autoscaler: Autoscaler,
    /// The primary database and its replica.
    pub database: Database,
    /// The object store the app depends on.
    pub object_store: ObjectStore,
    /// The app's endpoints and the dependencies each one needs.
    pub endpoints: Vec<Endpoint>,
}

impl Default for SimStack {
    fn default() -> Self {
        SimStack {
            nodes: 3,
            replicas: 6,
            replica_capacity: Rate(100.0),
            traffic: Rate(300.0),
            reschedule: Delay(Dist::Uniform { min: Dur::secs(2), max: Dur::secs(10) }),
            readiness: Delay(Dist::Uniform { min: Dur::secs(10), max: Dur::secs(30) }),
            autoscaler: Autoscaler::default(),
            database: Database::default(),
            object_store: ObjectStore::default(),
            endpoints: vec![
                Endpoint { path: "/health".into(), needs: vec![] },
                Endpoint { path: "/orders".into(), needs: vec![Dependency::Database] },
                Endpoint { path: "/objects".into(), needs: vec![Dependency::ObjectStore] },
            ],
        }
    }
}

/// The horizontal autoscaler of the simulated app.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Autoscaler {
    /// Whether it runs at all.
    pub enabled: bool,
    /// The most replicas it will run.
    pub max_replicas: u32,
    /// It scales out when load over capacity of ready replicas exceeds this fraction.
    pub target_utilization: f64,
    /// How often it evaluates (a Kubernetes HPA syncs every 15 s).
    pub period: Dur,
}

impl Default for Autoscaler {
    fn default() -> Self {
        Autoscaler { enabled: true, max_replicas: 12, target_utilization: 0.7, period: Dur::secs(15) }
    }
}

/// The simulated primary database with an asynchronous streaming replica.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// How far the replica is behind the primary: writes acknowledged within this time before
    /// the primary fails are lost by a failover.
    pub replication_lag: Delay,
    /// Time for automatic failover (a Patroni- or RDS-style promotion); absent means the
    /// replica is promoted only by a procedure step with effect `promote_replica`.
    pub auto_failover: Option<Delay>,
    /// Time for the app's connection pool to find the new primary once it is promoted.
    pub reconnect: Delay,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            replication_lag: Delay(Dist::Lognormal { median: Dur::millis(300), p95: Dur::secs(2) }),
            auto_failover: None,
            reconnect: Delay(Dist::Uniform { min: Dur::secs(1), max: Dur::secs(5) }),
        }
    }
}

/// The simulated object store dependency.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStore {
    /// The app's client retry backoff: how long after the store is reachable again the app's
    /// object requests succeed.
    pub retry_backoff: Delay,
}

impl Default for ObjectStore {
    fn default() -> Self {
        ObjectStore { retry_backoff: Delay(Dist::Uniform { min: Dur::secs(1), max: Dur::secs(8) }) }
    }
}

/// One endpoint of the simulated app.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The URL path, matched against HTTP probes' URLs.
    pub path: String,
    /// Dependencies a request to this path needs, besides a ready app replica.
    #[serde(default)]
    pub needs: Vec<Dependency>,
}

/// A dependency of the simulated app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// The primary database.
    Database,
    /// The object store.
    ObjectStore,
}

/// A fault to inject. Every fault has an inject and a revert.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Cordon a node and evict its workloads gracefully; revert uncordons it.
    NodeDrain {
        /// The node to drain.
        node: String,
        /// Time the evicted workloads get to finish in-flight work.
        #[serde(default = "default_grace")]
        grace_period: Dur,
    },
    /// Multiply (or set) the request arrival rate for a while.
    TrafficSurge {
        /// Factor applied to the baseline rate.
        #[serde(default)]
        multiplier: Option<f64>,
        /// Absolute rate during the surge, instead of a multiplier.
        #[serde(default)]
        rate: Option<Rate>,
        /// How long the surge lasts.
        duration: Dur,
        /// `docker`: the URL the surge's requests go to. The baseline a multiplier applies to
        /// is the rate of the `slo` probe loading the same URL; the surge adds the rest.
        #[serde(default)]
        url: Option<String>,
    },
    /// Kill the primary database; recovery needs a replica promoted.
    DbFailover {
        /// `crash` kills the primary at once; `graceful` shuts it down cleanly, letting the
        /// replica catch up first (no acknowledged write is lost).
        #[serde(default)]
        mode: FailoverMode,
    },
    /// Make the object store unreachable.
    S3Block {
        /// The bucket whose endpoint is blocked (informational in `sim`).
        #[serde(default)]
        bucket: Option<String>,
        /// `blackhole`: requests hang until they time out; `refuse`: they fail at once.
        #[serde(default)]
        mode: BlockMode,
        /// How long the block lasts before it lifts by itself; absent: until recovered by the
        /// procedure or until the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Stop a container gracefully (SIGTERM, then SIGKILL after the grace period); revert
    /// starts it again.
    ContainerStop {
        /// The container.
        target: String,
        /// Time between SIGTERM and SIGKILL.
        #[serde(default = "default_stop_grace")]
        grace_period: Dur,
        /// Leave it stopped when the drill ends: a failed-over primary is rebuilt, not
        /// restarted, which would make two primaries.
        #[serde(default)]
        keep_stopped: bool,
        /// Start it again after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Send a container a signal (SIGKILL: a crash); revert starts it again.
    ContainerKill {
        /// The container.
        target: String,
        /// The signal.
        #[serde(default = "default_signal")]
        signal: String,
        /// Leave it stopped when the drill ends (see `container_stop`).
        #[serde(default)]
        keep_stopped: bool,
        /// Start it again after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Freeze a container's processes; its network still accepts connections, which then hang.
    ContainerPause {
        /// The container.
        target: String,
        /// Unpause after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Restart a container: stop it with a grace period, then start it again at once.
    ContainerRestart {
        /// The container.
        target: String,
        /// Time between SIGTERM and SIGKILL.
        #[serde(default = "default_stop_grace")]
        grace_period: Dur,
    },
    /// Disconnect a container from its network; revert reconnects it.
    NetworkDisconnect {
        /// The container.
        target: String,
        /// Reconnect after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Drop (`blackhole`: connections hang) or reject (`refuse`) a container's network
    /// traffic, all of it or only with one peer container (a partition).
    NetworkBlackhole {
        /// The container.
        target: String,
        /// Only the traffic with this container.
        #[serde(default)]
        peer: Option<String>,
        /// Unanswered or refused.
        #[serde(default)]
        mode: BlockMode,
        /// Lift it after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
    },
    /// Several faults injected in order, each `after` the previous one: a compound failure
    /// (a replica cut off, then the primary lost). `t0` is when the last one is in effect.
    Sequence {
        /// The faults, in order.
        faults: Vec<SequenceEntry>,
    },
}

/// One fault of a sequence.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceEntry {
    /// Time since the previous fault took effect.
    #[serde(default)]
    pub after: Dur,
    /// The fault.
    pub fault: Fault,
}

fn default_grace() -> Dur {
    Dur::secs(30)
}
fn default_stop_grace() -> Dur {
    Dur::secs(10)
}
fn default_signal() -> String {
    "SIGKILL".into()
}

impl Fault {
    /// The fault's word, as used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::NodeDrain { .. } => "node_drain",
            Fault::TrafficSurge { .. } => "traffic_surge",
            Fault::DbFailover { .. } => "db_failover",
            Fault::S3Block { .. } => "s3_block",
            Fault::ContainerStop { .. } => "container_stop",
            Fault::ContainerKill { .. } => "container_kill",
            Fault::ContainerPause { .. } => "container_pause",
            Fault::ContainerRestart { .. } => "container_restart",
            Fault::NetworkDisconnect { .. } => "network_disconnect",
            Fault::NetworkBlackhole { .. } => "network_blackhole",
            Fault::Sequence { .. } => "sequence",
        }
    }

    /// Whether the fault acts on containers (the `docker` environment's faults).
    pub fn is_container_fault(&self) -> bool {
        !matches!(
            self,
            Fault::NodeDrain { .. } | Fault::TrafficSurge { .. } | Fault::DbFailover { .. } | Fault::S3Block { .. }
        )
    }

    /// How long the fault lasts before it lifts by itself, if it does.
    pub fn duration(&self) -> Option<Dur> {
        match self {
            Fault::TrafficSurge { duration, .. } => Some(*duration),
            Fault::S3Block { duration, .. }
            | Fault::ContainerStop { duration, .. }
            | Fault::ContainerKill { duration, .. }
            | Fault::ContainerPause { duration, .. }
            | Fault::NetworkDisconnect { duration, .. }
            | Fault::NetworkBlackhole { duration, .. } => *duration,
            // Down, then started again at once.
            Fault::ContainerRestart { .. } => Some(Dur(std::time::Duration::ZERO)),
            // A sequence's faults are reverted together when the drill ends.
            Fault::NodeDrain { .. } | Fault::DbFailover { .. } | Fault::Sequence { .. } => None,
        }
    }

    /// One line saying what the fault does, for plans and timelines.
    pub fn describe(&self) -> String {
        match self {
            Fault::NodeDrain { node, grace_period } => format!("drain node {node} (grace period {grace_period})"),
            Fault::TrafficSurge { multiplier: Some(m), duration, .. } => format!("traffic surge ×{m} for {duration}"),
            Fault::TrafficSurge { rate, duration, .. } => {
                format!("traffic surge to {} for {duration}", rate.map(|r| r.to_string()).unwrap_or_default())
            }
            Fault::DbFailover { mode } => format!("database primary failure ({mode:?})").to_lowercase(),
            Fault::S3Block { bucket, mode, duration } => format!(
                "block object store{} ({}){}",
                bucket.as_ref().map(|b| format!(" bucket {b}")).unwrap_or_default(),
                format!("{mode:?}").to_lowercase(),
                duration.map(|d| format!(" for {d}")).unwrap_or_default()
            ),
            Fault::ContainerStop { target, grace_period, duration, .. } => {
                format!("stop container {target} (grace period {grace_period}){}", for_(duration))
            }
            Fault::ContainerKill { target, signal, duration, .. } => {
                format!("send {signal} to container {target}{}", for_(duration))
            }
            Fault::ContainerPause { target, duration } => format!("pause container {target}{}", for_(duration)),
            Fault::ContainerRestart { target, .. } => format!("restart container {target}"),
            Fault::NetworkDisconnect { target, duration } => {
                format!("disconnect container {target} from its network{}", for_(duration))
            }
            Fault::NetworkBlackhole { target, peer, mode, duration } => format!(
                "{} the network traffic of container {target}{}{}",
                match mode {
                    BlockMode::Blackhole => "drop",
                    BlockMode::Refuse => "refuse",
                },
                peer.as_ref().map(|p| format!(" with {p}")).unwrap_or_default(),
                for_(duration)
            ),
            Fault::Sequence { faults } => faults
                .iter()
                .map(|e| {
                    if e.after.is_zero() {
                        e.fault.describe()
                    } else {
                        format!("after {}: {}", e.after, e.fault.describe())
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

fn for_(duration: &Option<Dur>) -> String {
    duration.map(|d| format!(" for {d}")).unwrap_or_default()
}

/// How the primary database goes away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailoverMode {
    /// Killed at once: unreplicated writes are lost.
    #[default]
    Crash,
    /// Shut down cleanly after the replica caught up.
    Graceful,
}

/// How a blocked endpoint behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockMode {
    /// Packets go unanswered: requests hang until their timeout.
    #[default]
    Blackhole,
    /// Connections are refused at once.
    Refuse,
}

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
        /// The URL loaded (`http://`).
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
    /// The check's word, as used in plans and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http { .. } => "http",
            Check::Tcp { .. } => "tcp",
            Check::Sql { .. } => "sql",
            Check::S3 { .. } => "s3",
            Check::Command { .. } => "command",
            Check::Slo { .. } => "slo",
            Check::WriteLedger { .. } => "write_ledger",
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

/// The recovery runbook.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Procedure {
    /// `automatic`: the system heals itself and nobody acts; `steps`: the steps below, in order.
    pub kind: ProcedureKind,
    /// Time budget of the whole procedure.
    pub budget: Option<Dur>,
    /// Running longer than this records an escalation; defaults to the budget.
    pub escalate_after: Option<Dur>,
    /// The ordered steps.
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

/// Whether recovery is self-healing or follows steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureKind {
    /// The system heals itself.
    #[default]
    Automatic,
    /// People or automation follow ordered steps.
    Steps,
}

/// One step of the runbook: automated (`run`) or manual (`manual`), exactly one of them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the step does, as the runbook says it.
    pub name: String,
    /// Automated: the command run (argv, not a shell string).
    #[serde(default)]
    pub run: Option<Vec<String>>,
    /// Run the command inside this container (`docker`) instead of on this machine.
    #[serde(default)]
    pub container: Option<String>,
    /// Manual: the instruction a person follows and confirms.
    #[serde(default)]
    pub manual: Option<String>,
    /// Automated (`docker`): start this standby container and wait until it is ready, as a
    /// scale-out would.
    #[serde(default)]
    pub start: Option<String>,
    /// Time budget of the step.
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub budget: Option<Spanned<Dur>>,
    /// Running longer than this records an escalation; defaults to the budget.
    #[serde(default)]
    pub escalate_after: Option<Dur>,
    /// An automated step still running after this is stopped and fails.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// How the step plays out in the `sim` environment.
    #[serde(default)]
    pub sim: Option<SimStep>,
}

/// How a procedure step plays out in the simulation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimStep {
    /// How long the step takes; defaults to a distribution around the step's budget.
    #[serde(default)]
    pub duration: Option<Delay>,
    /// What the step does to the simulated stack when it completes.
    #[serde(default)]
    pub effect: Effect,
    /// Replicas added by `scale_out`.
    #[serde(default)]
    pub replicas: Option<u32>,
}

/// What a step does to the simulated stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Nothing (checking, diagnosing, communicating).
    #[default]
    None,
    /// Promote the database replica to primary.
    PromoteReplica,
    /// Start more app replicas (`replicas`).
    ScaleOut,
    /// Return a drained node to service.
    Uncordon,
    /// Point the app at a reachable object store (fail over to a replica bucket).
    RestoreObjectStore,
    /// Restart the app: it reconnects to its dependencies at once, skipping backoff.
    RestartApp,
}

/// The limits a drill must meet. Absent targets are not scored.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Recovery time objective.
    #[schemars(with = "Option<Dur>")]
    pub rto: Option<Spanned<Dur>>,
    /// Recovery point objective (data loss, in time).
    #[schemars(with = "Option<Dur>")]
    pub rpo: Option<Spanned<Dur>>,
    /// Time to detect.
    #[schemars(with = "Option<Dur>")]
    pub mttd: Option<Spanned<Dur>>,
    /// Mean time to recover over repeated drills.
    #[schemars(with = "Option<Dur>")]
    pub mttr: Option<Spanned<Dur>>,
}

/// When the system counts as recovered: every availability sample ok for this long.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Stability {
    /// Consecutive ok samples each availability probe needs.
    pub samples: u32,
    /// Shortest healthy window, whatever the sample count.
    pub min_duration: Dur,
}

impl Default for Stability {
    fn default() -> Self {
        Stability { samples: 3, min_duration: Dur::secs(1) }
    }
}

/// The healthy state checked before injecting and after reverting.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SteadyState {
    /// Consecutive ok samples each availability probe needs.
    pub samples: u32,
    /// How long to wait for them before giving up.
    pub timeout: Dur,
}

impl Default for SteadyState {
    fn default() -> Self {
        SteadyState { samples: 3, timeout: Dur::secs(60) }
    }
}

/// A safety limit on a drill.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StopCondition {
    /// Abort when a probe has failed continuously for this long (protect what the drill must
    /// not break).
    ProbeFailing {
        /// The probe watched.
        probe: String,
        /// How long it may fail before the drill is aborted.
        #[serde(rename = "for")]
        for_: Dur,
    },
}
