//! A fault's blast radius as the scenario file alone tells it: the containers (in `sim`, the
//! simulated replicas, database primary and object store) it would affect. `max_blast_radius`
//! is checked against it at load time, and the dry run shows it.

use std::collections::BTreeSet;

use super::{DockerStack, EnvironmentSpec, Fault, SimStack};

/// The names of what `fault` affects in `environment`, sorted, each once: a sequence counts
/// every one of its faults' targets, a container faulted twice once. A node drain counts the
/// containers declared on that node; those placed on `any` node or started later by a step
/// are placed when they start, so only the `docker` environment's check before each inject
/// sees them.
pub fn statically_affected(environment: &EnvironmentSpec, fault: &Fault) -> Vec<String> {
    let mut affected = BTreeSet::new();
    collect(environment, fault, &mut affected);
    affected.into_iter().collect()
}

fn collect(environment: &EnvironmentSpec, fault: &Fault, affected: &mut BTreeSet<String>) {
    match (fault, environment) {
        (Fault::Sequence { faults }, _) => {
            for entry in faults {
                collect(environment, &entry.fault, affected);
            }
        }
        (Fault::NodeDrain { node, .. }, EnvironmentSpec::Docker(stack)) => affected.extend(placed_on(stack, node)),
        (Fault::NodeDrain { node, .. }, EnvironmentSpec::Sim(stack)) => affected.extend(sim_replicas_on(stack, node)),
        (Fault::DbFailover { .. }, EnvironmentSpec::Sim(_)) => {
            affected.insert("database primary".into());
        }
        (Fault::S3Block { .. }, EnvironmentSpec::Sim(_)) => {
            affected.insert("object store".into());
        }
        // A surge loads what is there; it changes no container.
        (Fault::TrafficSurge { .. }, _) => {}
        _ => affected.extend(fault.container_target().map(str::to_string)),
    }
}

/// A fault refused because the containers affected would then be more than
/// `max_blast_radius`.
#[derive(Debug, thiserror::Error)]
#[error("{subject} would affect {} container(s) ({}); max_blast_radius is {limit}", affected.len(), affected.join(", "))]
pub struct BlastRadiusExceeded {
    /// The fault, with what it names (`node_drain of node-a`).
    pub subject: String,
    /// Every container affected if it went ahead, those affected earlier in the drill included.
    pub affected: Vec<String>,
    /// The scenario's `max_blast_radius`.
    pub limit: u32,
}

impl BlastRadiusExceeded {
    /// The refusal of `fault` when `affected` is more than `limit`; `None` when within it.
    pub fn check(fault: &Fault, affected: Vec<String>, limit: u32) -> Option<Self> {
        let kind = fault.kind();
        let subject = match (fault, fault.container_target()) {
            (Fault::NodeDrain { node, .. }, _) => format!("{kind} of {node}"),
            (Fault::PodKill { selector, .. } | Fault::PodDelete { selector, .. }, _) => format!("{kind} of {selector}"),
            (_, Some(target)) => format!("{kind} of {target}"),
            _ => kind.to_string(),
        };
        (affected.len() > limit as usize).then_some(BlastRadiusExceeded { subject, affected, limit })
    }
}

/// The containers started with the stack on `node`, as declared (not `any`, not standbys).
pub fn placed_on<'a>(stack: &'a DockerStack, node: &'a str) -> impl Iterator<Item = String> + 'a {
    stack.containers.iter().filter(move |c| !c.standby && c.node.as_deref() == Some(node)).map(|c| c.name.clone())
}

/// The simulated replicas on `node` (`node-1` …), spread round robin as the simulation starts
/// them.
fn sim_replicas_on(stack: &SimStack, node: &str) -> Vec<String> {
    let Some(index) = node.strip_prefix("node-").and_then(|n| n.parse::<usize>().ok()).and_then(|n| n.checked_sub(1))
    else {
        return vec![];
    };
    let nodes = stack.nodes.max(1) as usize;
    (0..stack.replicas as usize).filter(|i| i % nodes == index).map(|i| format!("replica-{}", i + 1)).collect()
}

impl Fault {
    /// The container a container fault acts on (a blackhole's peer is not changed, only its
    /// traffic with the target); `None` for the other faults.
    pub fn container_target(&self) -> Option<&str> {
        match self {
            Fault::ContainerStop { target, .. }
            | Fault::ContainerKill { target, .. }
            | Fault::ContainerPause { target, .. }
            | Fault::ContainerRestart { target, .. }
            | Fault::NetworkDisconnect { target, .. }
            | Fault::NetworkBlackhole { target, .. } => Some(target),
            Fault::NodeDrain { .. }
            | Fault::TrafficSurge { .. }
            | Fault::DbFailover { .. }
            | Fault::S3Block { .. }
            | Fault::PodKill { .. }
            | Fault::PodDelete { .. }
            | Fault::Scale { .. }
            | Fault::Sequence { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ContainerSpec, SequenceEntry};

    fn container(name: &str, node: Option<&str>, standby: bool) -> ContainerSpec {
        let mut c: ContainerSpec = serde_json::from_value(serde_json::json!({ "name": name })).unwrap();
        c.node = node.map(str::to_string);
        c.standby = standby;
        c
    }

    fn docker() -> EnvironmentSpec {
        EnvironmentSpec::Docker(DockerStack {
            nodes: vec!["node-a".into(), "node-b".into()],
            containers: vec![
                container("web-1", Some("node-a"), false),
                container("web-2", Some("node-a"), false),
                container("web-3", Some("any"), false),
                container("web-4", Some("node-a"), true),
                container("db", None, false),
            ],
            ..Default::default()
        })
    }

    fn drain(node: &str) -> Fault {
        Fault::NodeDrain { node: node.into(), grace_period: crate::duration::Dur::secs(1), deadline: None }
    }

    fn pause(target: &str) -> Fault {
        Fault::ContainerPause { target: target.into(), duration: None }
    }

    #[test]
    fn a_drain_affects_the_containers_declared_on_its_node() {
        // `any` is placed when it starts, a standby when a step starts it: neither is known here.
        assert_eq!(statically_affected(&docker(), &drain("node-a")), ["web-1", "web-2"]);
        assert!(statically_affected(&docker(), &drain("node-b")).is_empty());
    }

    #[test]
    fn a_sequence_counts_each_container_once() {
        let entry = |fault| SequenceEntry { after: Default::default(), fault };
        let sequence = Fault::Sequence { faults: vec![entry(pause("db")), entry(drain("node-a")), entry(pause("db"))] };
        assert_eq!(statically_affected(&docker(), &sequence), ["db", "web-1", "web-2"]);
    }

    #[test]
    fn container_faults_affect_their_target_and_surges_nothing() {
        let blackhole = Fault::NetworkBlackhole {
            target: "db".into(),
            peer: Some("web-1".into()),
            mode: Default::default(),
            duration: None,
            direction: None,
            namespace: None,
            confirm: None,
        };
        assert_eq!(statically_affected(&docker(), &blackhole), ["db"]);
        let surge: Fault =
            serde_json::from_value(serde_json::json!({"kind": "traffic_surge", "multiplier": 2.0, "duration": "10s"}))
                .unwrap();
        assert!(statically_affected(&docker(), &surge).is_empty());
    }

    #[test]
    fn sim_drains_count_the_replicas_spread_on_the_node() {
        let sim = EnvironmentSpec::Sim(SimStack { nodes: 3, replicas: 7, ..Default::default() });
        assert_eq!(statically_affected(&sim, &drain("node-1")), ["replica-1", "replica-4", "replica-7"]);
        assert_eq!(statically_affected(&sim, &drain("node-3")), ["replica-3", "replica-6"]);
        assert!(statically_affected(&sim, &drain("node-9")).is_empty());
        let failover = Fault::DbFailover {
            mode: Default::default(),
            cluster: None,
            patroni: None,
            db_instance: None,
            db_cluster: None,
            target: None,
            failback: false,
            confirm_within: None,
        };
        assert_eq!(statically_affected(&sim, &failover), ["database primary"]);
    }
}
