//! Faults: what a drill injects, and how each one is described in plans and timelines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Disruption;
use crate::duration::{Dur, Rate};
use crate::word::FaultKind;

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
        /// `kube`: how long evictions a PodDisruptionBudget blocks are retried (every 5 s, as
        /// `kubectl drain` does) before the drain fails; absent: 2 minutes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<Dur>,
    },
    /// `kube`: delete pods at once (grace period 0), as a crash or an OOM kill would end them.
    /// Nothing is reverted: their controller (a ReplicaSet, a StatefulSet) recreates them, and
    /// that recovery is what the drill measures.
    PodKill {
        /// The pods, as a label selector (`app=shop,tier=web`).
        selector: String,
        /// Their namespace, one of the environment's `namespaces`; absent: its `namespace`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// How many of the matching pods, first by name; absent: all of them. Either way at
        /// most `max_blast_radius`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// `kube`: delete pods gracefully (SIGTERM, then SIGKILL after the grace period), as a
    /// rolling node replacement would. Nothing is reverted, as for `pod_kill`.
    PodDelete {
        /// The pods, as a label selector (`app=shop,tier=web`).
        selector: String,
        /// Their namespace, one of the environment's `namespaces`; absent: its `namespace`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// How many of the matching pods, first by name; absent: all of them. Either way at
        /// most `max_blast_radius`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// Time the pods get to finish in-flight work.
        #[serde(default = "default_grace")]
        grace_period: Dur,
    },
    /// `kube`: set the replicas of a Deployment or StatefulSet through its scale subresource
    /// (to 0: an outage of the workload); revert sets the count it had before.
    Scale {
        /// The workload, as kubectl names it: `deployment/shop` or `statefulset/db`.
        workload: String,
        /// Its namespace, one of the environment's `namespaces`; absent: its `namespace`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// The replica count while the fault lasts.
        replicas: u32,
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
        /// `docker`, `kube`: the URL the surge's requests go to, from this machine. The
        /// baseline a multiplier applies to is the rate of the `slo` probe loading the same
        /// URL; the surge adds the rest.
        #[serde(default)]
        url: Option<String>,
        /// `kube`: the Deployment whose replicas, and its autoscaler's, are recorded each
        /// second until the drill ends, so the report shows the scale-out the surge caused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment: Option<String>,
        /// `kube`: when one machine cannot make the load, run the generator in the cluster
        /// instead, as a Job of this many pods, each sending its share; `url` is then as the
        /// pods reach it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workers: Option<u32>,
        /// `kube`, with `workers`: the image holding the firedrill binary the pods run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// `kube`, with `workers`: how long the pods have to be running (an image pull, a
        /// scheduling delay) before the surge starts at once in all of them; absent: 30 s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_within: Option<Dur>,
    },
    /// Kill the primary database; recovery needs a replica promoted.
    DbFailover {
        /// `crash` kills the primary at once; `graceful` shuts it down cleanly, letting the
        /// replica catch up first (no acknowledged write is lost).
        #[serde(default)]
        mode: FailoverMode,
        /// `kube`: the CloudNativePG Cluster (`postgresql.cnpg.io/v1`) whose primary fails, in
        /// the environment's namespace: `crash` deletes its primary's pod, `graceful` asks the
        /// operator to switch over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        /// `kube`, instead of `cluster`: a Patroni cluster (Zalando's operator, Spilo), whose
        /// members are the pods its selector picks and whose REST API names the leader:
        /// `crash` deletes the leader's pod, `graceful` asks Patroni to switch over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patroni: Option<PatroniCluster>,
        /// `aws`: a Multi-AZ DB instance, failed over by a reboot with `ForceFailover`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        db_instance: Option<String>,
        /// `aws`, instead of `db_instance`: an Aurora or Multi-AZ DB cluster, failed over
        /// (`FailoverDBCluster`) to `target` or to the first available reader.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        db_cluster: Option<String>,
        /// `aws`, with `db_cluster`: the reader to promote.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// `aws`: fail back to the first writer once the drill has measured, reported as an
        /// outage of its own.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        failback: bool,
        /// `aws`: how long RDS's control plane has to confirm the failover (a status that
        /// leaves `available`, a new writer or zone, a failover event) before the drill stops
        /// with "not confirmed by the control plane" instead of timing a fault that may not
        /// have happened; absent: two minutes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_within: Option<Dur>,
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
    /// traffic, all of it or only with one peer container (a partition). In `kube`: a deny
    /// NetworkPolicy on the pods a label selector picks, confirmed from inside the cluster
    /// before `t0` (see `confirm`), deleted on revert.
    NetworkBlackhole {
        /// The container; `kube`: the pods, as a label selector of `key=value` terms
        /// (`app=shop`).
        target: String,
        /// Only the traffic with this container; `kube`: with these pods (`key=value` terms),
        /// in the same namespace.
        #[serde(default)]
        peer: Option<String>,
        /// Unanswered or refused (`kube`: `blackhole` only: a NetworkPolicy drops).
        #[serde(default)]
        mode: BlockMode,
        /// Lift it after this long; absent: when the drill ends.
        #[serde(default)]
        duration: Option<Dur>,
        /// `kube`: which of the pods' traffic is cut; absent: both directions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<Direction>,
        /// `kube`: the pods' namespace, one of the environment's; absent: its `namespace`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// `kube` (needed there): an in-cluster `http://` URL that answers before the policy
        /// and must fail once it holds, fetched (`wget`) from a probe pod firedrill starts
        /// under the same policy and removes: for `egress` or `both`, a Service the pods call
        /// (the peer's, for a partition); for `ingress`, a Service in front of the pods. When
        /// it still answers, the CNI does not enforce NetworkPolicy: the policy is deleted and
        /// the drill stops before `t0`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm: Option<String>,
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
    /// The fault's word, as records and reports store it.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::NodeDrain { .. } => FaultKind::NodeDrain,
            Fault::PodKill { .. } => FaultKind::PodKill,
            Fault::PodDelete { .. } => FaultKind::PodDelete,
            Fault::Scale { .. } => FaultKind::Scale,
            Fault::TrafficSurge { .. } => FaultKind::TrafficSurge,
            Fault::DbFailover { .. } => FaultKind::DbFailover,
            Fault::S3Block { .. } => FaultKind::S3Block,
            Fault::ContainerStop { .. } => FaultKind::ContainerStop,
            Fault::ContainerKill { .. } => FaultKind::ContainerKill,
            Fault::ContainerPause { .. } => FaultKind::ContainerPause,
            Fault::ContainerRestart { .. } => FaultKind::ContainerRestart,
            Fault::NetworkDisconnect { .. } => FaultKind::NetworkDisconnect,
            Fault::NetworkBlackhole { .. } => FaultKind::NetworkBlackhole,
            Fault::Sequence { .. } => FaultKind::Sequence,
        }
    }

    /// The disruption type the fault rehearses when the scenario does not say (the README
    /// has the table and its reasons). A process, pod or workload failing is the application's
    /// own (software), and so is an overload; a node, a host's network or a database server
    /// lost is infrastructure (hardware); an RDS Multi-AZ failover is what RDS does when the
    /// primary's zone is lost (az); the object store unreachable is what an S3 outage looks
    /// like, and S3 is a regional service that rides out the loss of a zone (region). A
    /// sequence is as wide as its widest fault.
    pub fn disruption(&self) -> Disruption {
        match self {
            Fault::PodKill { .. }
            | Fault::PodDelete { .. }
            | Fault::Scale { .. }
            | Fault::TrafficSurge { .. }
            | Fault::ContainerStop { .. }
            | Fault::ContainerKill { .. }
            | Fault::ContainerPause { .. }
            | Fault::ContainerRestart { .. } => Disruption::Software,
            Fault::DbFailover { db_instance: None, db_cluster: None, .. } => Disruption::Hardware,
            Fault::DbFailover { .. } => Disruption::Az,
            Fault::NodeDrain { .. } | Fault::NetworkDisconnect { .. } | Fault::NetworkBlackhole { .. } => {
                Disruption::Hardware
            }
            Fault::S3Block { .. } => Disruption::Region,
            Fault::Sequence { faults } => {
                faults.iter().map(|f| f.fault.disruption()).max().unwrap_or(Disruption::Software)
            }
        }
    }

    /// Whether the fault acts on containers (the `docker` environment's faults).
    pub fn is_container_fault(&self) -> bool {
        !matches!(
            self,
            Fault::NodeDrain { .. }
                | Fault::TrafficSurge { .. }
                | Fault::DbFailover { .. }
                | Fault::S3Block { .. }
                | Fault::PodKill { .. }
                | Fault::PodDelete { .. }
                | Fault::Scale { .. }
        )
    }

    /// Whether the fault acts on Kubernetes objects only (pods, workloads): the `kube`
    /// environment's own faults.
    pub fn is_kube_fault(&self) -> bool {
        matches!(self, Fault::PodKill { .. } | Fault::PodDelete { .. } | Fault::Scale { .. })
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
            // Pods are recreated by their controller; a scale lasts until the drill ends.
            Fault::PodKill { .. } | Fault::PodDelete { .. } | Fault::Scale { .. } => None,
        }
    }

    /// One line saying what the fault does, for plans and timelines.
    pub fn describe(&self) -> String {
        match self {
            Fault::NodeDrain { node, grace_period, deadline: None } => {
                format!("drain node {node} (grace period {grace_period})")
            }
            Fault::NodeDrain { node, grace_period, deadline: Some(deadline) } => {
                format!("drain node {node} (grace period {grace_period}, deadline {deadline})")
            }
            Fault::PodKill { selector, namespace, count } => {
                format!("kill {} (grace period 0s){}", pods(selector, count), in_(namespace))
            }
            Fault::PodDelete { selector, namespace, count, grace_period } => {
                format!("delete {} (grace period {grace_period}){}", pods(selector, count), in_(namespace))
            }
            Fault::Scale { workload, namespace, replicas } => {
                format!("scale {workload}{} to {replicas} replicas", in_(namespace))
            }
            Fault::TrafficSurge { multiplier: Some(m), duration, .. } => format!("traffic surge ×{m} for {duration}"),
            Fault::TrafficSurge { rate, duration, .. } => {
                format!("traffic surge to {} for {duration}", rate.map(|r| r.to_string()).unwrap_or_default())
            }
            Fault::DbFailover { mode, cluster: Some(cluster), .. } => {
                format!("database primary failure of cluster {cluster} ({})", mode.as_str())
            }
            Fault::DbFailover { mode, patroni: Some(patroni), .. } => {
                format!("database primary failure of Patroni cluster {} ({})", patroni.selector, mode.as_str())
            }
            Fault::DbFailover { mode, .. } => format!("database primary failure ({})", mode.as_str()),
            Fault::S3Block { bucket, mode, duration } => format!(
                "block object store{} ({}){}",
                bucket.as_ref().map(|b| format!(" bucket {b}")).unwrap_or_default(),
                mode.as_str(),
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
            Fault::NetworkBlackhole { target, peer, direction, confirm: Some(_), duration, .. } => format!(
                "cut the {} traffic of the pods {target}{} (a NetworkPolicy){}",
                direction.unwrap_or_default().as_str(),
                peer.as_ref().map(|p| format!(" with the pods {p} only")).unwrap_or_default(),
                for_(duration)
            ),
            Fault::NetworkBlackhole { target, peer, mode, duration, .. } => format!(
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

/// A Patroni cluster on Kubernetes: its member pods and the port of their REST API.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatroniCluster {
    /// The member pods, as a label selector (`application=spilo,cluster-name=shop-db`, as
    /// Zalando's operator labels them); a member's name is its pod's name.
    pub selector: String,
    /// The REST API's port on each member (Patroni's default, 8008, when absent).
    #[serde(default = "patroni_port")]
    pub port: u16,
}

/// Patroni's REST API port by default (`restapi.listen`).
fn patroni_port() -> u16 {
    8008
}

/// The pods a selector picks, in words: `the pods app=shop`, `2 pods app=shop`.
fn pods(selector: &str, count: &Option<u32>) -> String {
    match count {
        Some(n) => format!("{n} pod(s) {selector}"),
        None => format!("the pods {selector}"),
    }
}

fn in_(namespace: &Option<String>) -> String {
    namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
}

fn for_(duration: &Option<Dur>) -> String {
    duration.map(|d| format!(" for {d}")).unwrap_or_default()
}

/// The `key=value` terms of a label selector (`app=shop,tier=web`; `==` too), as a
/// NetworkPolicy's `matchLabels` takes them; `None` when it is empty or has other terms
/// (`!=`, `in`, `!key`), which a policy's rules could not negate one by one.
pub fn label_terms(selector: &str) -> Option<Vec<(&str, &str)>> {
    let terms: Option<Vec<(&str, &str)>> = selector
        .split(',')
        .map(|term| {
            let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
            let (key, value) = (key.trim(), value.trim());
            let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
            (plain(key) && plain(value)).then_some((key, value))
        })
        .collect();
    terms.filter(|t| !t.is_empty())
}

/// A workload whose replicas a `scale` sets, as kubectl names it (`deployment/shop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload<'a> {
    /// Which kind of workload.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: &'a str,
}

/// The workloads with a scale subresource firedrill sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// An `apps/v1` Deployment.
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
}

impl<'a> Workload<'a> {
    /// `deployment/NAME` or `statefulset/NAME` (kubectl's short forms `deploy` and `sts`
    /// too); `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Workload<'a>> {
        let (kind, name) = text.split_once('/')?;
        let kind = match kind {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            _ => return None,
        };
        (!name.is_empty() && !name.contains('/')).then_some(Workload { kind, name })
    }
}

impl std::fmt::Display for Workload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        };
        write!(f, "{kind}/{}", self.name)
    }
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

impl FailoverMode {
    /// The mode's word, as written in a scenario (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverMode::Crash => "crash",
            FailoverMode::Graceful => "graceful",
        }
    }
}

/// The traffic of pods a NetworkPolicy cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// What comes to the pods.
    Ingress,
    /// What the pods send.
    Egress,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    /// The direction's word, as written in a scenario (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
            Direction::Both => "both",
        }
    }
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

impl BlockMode {
    /// The mode's word, as written in a scenario (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            BlockMode::Blackhole => "blackhole",
            BlockMode::Refuse => "refuse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_terms_are_equalities_only() {
        assert_eq!(label_terms("app=shop, tier==web"), Some(vec![("app", "shop"), ("tier", "web")]));
        for bad in ["", "app", "app!=shop", "app in (a,b)", "app=shop,", "=x"] {
            assert_eq!(label_terms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_workload_is_named_as_kubectl_names_it() {
        let parsed = Workload::parse("deploy/shop").unwrap();
        assert_eq!(
            (parsed.kind, parsed.name, parsed.to_string().as_str()),
            (WorkloadKind::Deployment, "shop", "deployment/shop")
        );
        assert_eq!(Workload::parse("sts/db").map(|w| w.kind), Some(WorkloadKind::StatefulSet));
        for bad in ["shop", "pod/shop", "deployment/", "deployment/a/b"] {
            assert_eq!(Workload::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn modes_print_as_they_are_written() {
        for mode in [FailoverMode::Crash, FailoverMode::Graceful] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        for mode in [BlockMode::Blackhole, BlockMode::Refuse] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }
}
