//! Why an operation of the kube environment failed. The engine records an error as its chain
//! ([`crate::text::error_chain`]), so each variant says its own part and keeps its cause as a
//! source; what the API server answered is said in its words ([`Answer`]), not kube-rs's
//! debug output.

use kube::config::KubeconfigError;

use super::access::Permission;

/// Why an operation of the kube environment failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be read.
    #[error("failed to read the kubeconfig (KUBECONFIG, else ~/.kube/config)")]
    Kubeconfig(#[source] KubeconfigError),
    /// A traffic surge could not start.
    #[error(transparent)]
    Surge(#[from] crate::env::load::SurgeError),
    /// A journal names an object of a kind firedrill does not create (a journal of a newer
    /// firedrill, or edited).
    #[error("firedrill creates no {kind}: a NetworkPolicy, a Pod or a Job")]
    NotCreatedKind {
        /// The kind named.
        kind: String,
    },
    /// A surge's worker pods were not all running when it was to start.
    #[error("{running} of the {workers} worker pods of job {job} were running when the surge was to start: {states}")]
    WorkersNotRunning {
        /// The Job.
        job: String,
        /// How many ran.
        running: usize,
        /// How many were asked for.
        workers: u32,
        /// Each pod's phase and why it waits.
        states: String,
    },
    /// The scenario's context is not in the kubeconfig.
    #[error("context `{context}` is not in the kubeconfig{} (it has {})", files.as_ref().map(|f| format!(" {f}")).unwrap_or_default(), if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NoContext {
        /// The scenario's context.
        context: String,
        /// The contexts the kubeconfig has.
        known: Vec<String>,
        /// The files it was read from (`:`-separated), when it was read from files.
        files: Option<String>,
    },
    /// The context's cluster, user or credentials could not be made into a client
    /// configuration.
    #[error("failed to configure a client for context `{context}`")]
    Config {
        /// The context.
        context: String,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
    /// The client could not be built (TLS, proxy).
    #[error("failed to build a Kubernetes client for context `{context}`")]
    Client {
        /// The context.
        context: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A request was refused or failed; `action` says which.
    #[error("failed to {action}")]
    Api {
        /// What was asked ("cordon node kind-worker", "evict pod shop/web-1").
        action: String,
        /// The answer.
        #[source]
        source: Answer,
    },
    /// The drill's identity lacks permissions the fault needs: all of them are listed, so one
    /// change to its Role fixes them (`firedrill kube rbac` prints it).
    #[error("the context's user may not {}: grant them (`firedrill kube rbac SCENARIO` prints the Role) or use another context", missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Forbidden {
        /// Every permission denied.
        missing: Vec<Permission>,
    },
    /// A drain would evict pods of namespaces the scenario does not list.
    #[error("node {node} carries pods outside the scenario's namespaces ({}): {}; add their namespaces to `namespaces` or drain another node", namespaces.join(", "), pods.join(", "))]
    OutsideNamespaces {
        /// The node.
        node: String,
        /// The scenario's namespaces.
        namespaces: Vec<String>,
        /// The pods, `namespace/name`.
        pods: Vec<String>,
    },
    /// A drain would evict more pods than `max_blast_radius`.
    #[error(transparent)]
    BlastRadius(#[from] crate::scenario::BlastRadiusExceeded),
    /// Evictions were still blocked by a PodDisruptionBudget when the drain's deadline came.
    #[error("evictions still blocked when the drain's deadline ({deadline}) came: {}", blocked.join("; "))]
    DrainDeadline {
        /// The drain's deadline.
        deadline: crate::duration::Dur,
        /// Each blocked pod and the last block.
        blocked: Vec<String>,
    },
    /// A `pod_kill` or `pod_delete` found no running pod to delete: a fault that hits nothing
    /// is not a drill.
    #[error("no running pod matches `{selector}` in namespace {namespace}")]
    NoPods {
        /// The fault's label selector.
        selector: String,
        /// The namespace.
        namespace: String,
    },
    /// A `scale` names no Deployment or StatefulSet (refused at load time; a bug if reached).
    #[error("`{workload}` is not `deployment/NAME` or `statefulset/NAME`")]
    NotAWorkload {
        /// What the scenario or journal named.
        workload: String,
    },
    /// A blackhole's selector is not `key=value` labels (refused at load time; a bug if
    /// reached).
    #[error("`{selector}` is not `key=value` labels")]
    NotLabels {
        /// The selector.
        selector: String,
    },
    /// The probe pod that confirms a blackhole did not become Ready.
    #[error("the probe pod {pod} was not Ready within {within:?} (it runs {image}: can the nodes pull it?)", image = super::probe_pod::PROBE_IMAGE)]
    ProbeNotReady {
        /// The pod, `namespace/name`.
        pod: String,
        /// How long it was given.
        within: std::time::Duration,
    },
    /// An exec ended without the API server's Status saying how the command ended.
    #[error("failed to {action}: the exec ended without saying how the command ended")]
    ExecEnded {
        /// The exec.
        action: String,
    },
    /// A blackhole's `confirm` URL did not answer before the policy: its failing later would
    /// prove nothing.
    #[error("the blackhole's `confirm` URL {url} does not answer from inside the cluster before the fault ({why}): it cannot confirm the blackhole; name a URL that answers")]
    ConfirmUnreachable {
        /// The URL.
        url: String,
        /// Why it did not answer.
        why: String,
    },
    /// The `confirm` URL still answered once the NetworkPolicy existed: the policy was
    /// deleted, and the drill stops before `t0` rather than measure a fault that never was.
    #[error("the CNI does not enforce NetworkPolicy: {url} still answered {within:?} after the deny policy was created; the policy is deleted and the drill stopped (use a CNI that enforces policies, such as kindnet since kind v0.24, Calico or Cilium)")]
    CniFailsOpen {
        /// The URL.
        url: String,
        /// How long it was given to fail.
        within: std::time::Duration,
    },
    /// An `exec` step's command exited non-zero.
    #[error("`{command}` in pod {pod} failed: {why}")]
    ExecFailed {
        /// The command.
        command: String,
        /// The pod, `namespace/name`.
        pod: String,
        /// How it ended.
        why: String,
    },
    /// The node is already drained by this drill.
    #[error("node {node} is already drained by this drill")]
    AlreadyDrained {
        /// The node.
        node: String,
    },
    /// A fault this environment cannot inject (refused at load time; a bug if reached).
    #[error("`{kind}` is not supported in kube yet")]
    Unsupported {
        /// The fault.
        kind: crate::word::FaultKind,
    },
    /// A probe this environment cannot take (refused at load time; a bug if reached).
    #[error("`{kind}` probes are not supported in kube yet")]
    UnsupportedProbe {
        /// The probe's kind.
        kind: crate::word::ProbeKind,
    },
    /// The environment was asked to act before `prepare` connected it (a bug).
    #[error("no client: the kube environment was not prepared")]
    NotConnected,
    /// The revert journal could not be written: no change is made that could not be undone
    /// after a crash.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A change was to be made before the journal was opened (a bug).
    #[error("no revert journal is open")]
    NoJournal,
    /// Changes are left in effect at the drill's end.
    #[error("changes of the drill are not all undone; see {path} and run `firedrill recover --run {run}`")]
    LeftInJournal {
        /// The journal.
        path: std::path::PathBuf,
        /// The run.
        run: String,
    },
    /// The kubeconfig that points the steps at the scenario's context could not be written
    /// or removed.
    #[error("failed to {action} the steps' kubeconfig {}", path.display())]
    StepKubeconfig {
        /// `write` or `remove`.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CloudNativePG Cluster's status names no current primary (it is still being created).
    #[error("CloudNativePG cluster {cluster} has no status.currentPrimary: is it running?")]
    NoPrimary {
        /// The Cluster, `namespace/name`.
        cluster: String,
    },
    /// A switchover has no Ready replica to promote.
    #[error("CloudNativePG cluster {cluster} has no Ready replica to switch over to from {primary}")]
    NoReplica {
        /// The Cluster, `namespace/name`.
        cluster: String,
        /// Its primary.
        primary: String,
    },
    /// A Patroni member's REST API could not be reached through a port-forward, or its
    /// answer could not be read.
    #[error("failed to {request} on Patroni member {pod}: {why}")]
    PatroniRest {
        /// The request, `GET /cluster`.
        request: String,
        /// The member's pod, `namespace/name`.
        pod: String,
        /// Why.
        why: String,
    },
    /// A Patroni cluster offers nothing to fail over: no member answered, no leader, or no
    /// healthy replica.
    #[error("failed to fail Patroni cluster {cluster} over: {why}")]
    PatroniCluster {
        /// The cluster, `namespace/selector`.
        cluster: String,
        /// Why.
        why: String,
    },
    /// Patroni refused a switchover (412: not possible now; 503: it failed, or its outcome is
    /// unknown), in its own words.
    #[error(
        "Patroni refused the switchover of cluster {cluster} from {leader} to {candidate}: HTTP {status}: {answer}"
    )]
    PatroniRefused {
        /// The cluster, `namespace/selector`.
        cluster: String,
        /// The leader asked to step down.
        leader: String,
        /// The replica asked to take over.
        candidate: String,
        /// The HTTP status.
        status: u16,
        /// Patroni's answer.
        answer: String,
    },
    /// The loopback port of a port-forward could not be opened.
    #[error("failed to listen on a loopback port for the port-forward to {target}")]
    Listen {
        /// The Service forwarded to.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A port-forward found no pod to reach behind its Service.
    #[error("failed to forward to {target}: {why}")]
    NoBackend {
        /// The Service forwarded to.
        target: String,
        /// Why.
        why: String,
    },
    /// The write ledger's database failed.
    #[error(transparent)]
    Ledger(#[from] crate::probe::postgres::DbError),
    /// The write ledger's records could not be removed in time.
    #[error("failed to remove the write ledger's records within {limit} s: the database did not answer")]
    LedgerLeft {
        /// The limit, in seconds.
        limit: u64,
    },
    /// A probe that is not a write ledger was asked to write (a bug).
    #[error("probe `{probe}` is not a write ledger")]
    NotALedger {
        /// The probe.
        probe: String,
    },
    /// A procedure step's command failed.
    #[error(transparent)]
    Command(#[from] crate::process::CommandError),
    /// A manual step was not confirmed.
    #[error(transparent)]
    Manual(#[from] crate::env::ManualStepError),
}

/// What the API server (or the way to it) answered to a failed request, in words: `HTTP 429
/// TooManyRequests: Cannot evict pod…` rather than kube-rs's debug form of the Status.
#[derive(Debug)]
pub struct Answer(pub kube::Error);

impl Answer {
    /// The API's Status, when the server answered one.
    pub fn status(&self) -> Option<&kube::core::Status> {
        match &self.0 {
            kube::Error::Api(status) => Some(status),
            _ => None,
        }
    }

    /// The HTTP code the server answered, if it answered.
    pub fn code(&self) -> Option<u16> {
        self.status().map(|s| s.code)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status() {
            Some(s) if s.reason.is_empty() => write!(f, "HTTP {}: {}", s.code, s.message),
            Some(s) => write!(f, "HTTP {} {}: {}", s.code, s.reason, s.message),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for Answer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The Status is said whole above; a transport error's own cause follows it.
        match &self.0 {
            kube::Error::Api(_) => None,
            other => other.source(),
        }
    }
}

impl KubeError {
    /// The error of `action` failing with `source`.
    pub(super) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let action = action.into();
        move |source| KubeError::Api { action, source: Answer(source) }
    }
}
