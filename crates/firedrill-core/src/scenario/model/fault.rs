//! Faults: what a drill injects, and how each one is described in plans and timelines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
        /// `kube`: the CloudNativePG Cluster (`postgresql.cnpg.io/v1`) whose primary fails, in
        /// the environment's namespace: `crash` deletes its primary's pod, `graceful` asks the
        /// operator to switch over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
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
    /// The fault's word, as records and reports store it.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::NodeDrain { .. } => FaultKind::NodeDrain,
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
            Fault::NodeDrain { node, grace_period, deadline: None } => {
                format!("drain node {node} (grace period {grace_period})")
            }
            Fault::NodeDrain { node, grace_period, deadline: Some(deadline) } => {
                format!("drain node {node} (grace period {grace_period}, deadline {deadline})")
            }
            Fault::TrafficSurge { multiplier: Some(m), duration, .. } => format!("traffic surge ×{m} for {duration}"),
            Fault::TrafficSurge { rate, duration, .. } => {
                format!("traffic surge to {} for {duration}", rate.map(|r| r.to_string()).unwrap_or_default())
            }
            Fault::DbFailover { mode, cluster: None } => format!("database primary failure ({})", mode.as_str()),
            Fault::DbFailover { mode, cluster: Some(cluster) } => {
                format!("database primary failure of cluster {cluster} ({})", mode.as_str())
            }
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

impl FailoverMode {
    /// The mode's word, as written in a scenario (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverMode::Crash => "crash",
            FailoverMode::Graceful => "graceful",
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
    fn modes_print_as_they_are_written() {
        for mode in [FailoverMode::Crash, FailoverMode::Graceful] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        for mode in [BlockMode::Blackhole, BlockMode::Refuse] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }
}
