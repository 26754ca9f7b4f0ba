//! The `docker` environment's stack: containers firedrill starts and containers it attaches to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Dur;

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

impl Attach {
    /// How the container is chosen, in words (`container shop-db-1`, `Compose service shop/db`).
    pub fn selector(&self) -> String {
        match (&self.container, &self.compose) {
            (Some(name), _) => format!("container {name}"),
            (None, Some(c)) => format!("Compose service {}/{}", c.project, c.service),
            (None, None) => "no container (neither `container` nor `compose`)".into(),
        }
    }
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
