//! A fake CloudNativePG operator: a `postgresql.cnpg.io/v1` Cluster with one pod per instance
//! (`<name>-1` … `<name>-N`, `<name>-1` the first primary), its `-rw`, `-ro` and `-r` Services,
//! and the operator's two recoveries. Failover: when the primary's pod is gone or unready, the
//! first Ready replica is promoted after `failover_delay`. Switchover: when `status.targetPrimary`
//! names another Ready instance (the status patch `kubectl cnpg promote` makes), the primary is
//! demoted at once (the `-rw` Service has no endpoint) and the target promoted after
//! `failover_delay`. A lost instance comes back under its own name, with a new uid, as a replica.

use std::time::Instant;

use serde_json::{json, Value};

use super::cluster::{FakeDatabase, FakeSpec};
use super::controller::{is_ready, is_terminating, lasted, owner_reference, place, record_event};
use super::store::{text, Kind, State};

/// The label that says an instance's role, which the Services select on.
const ROLE: &str = "cnpg.io/instanceRole";

/// The Cluster, its instances (Ready, on the nodes named) and its Services.
pub fn seed(state: &mut State, spec: &FakeSpec, database: &FakeDatabase, now: Instant) {
    let FakeDatabase { namespace, name, nodes } = database;
    let object = json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": { "name": name },
        "spec": { "instances": nodes.len(), "storage": { "size": "1Gi" } },
        "status": { "currentPrimary": format!("{name}-1"), "targetPrimary": format!("{name}-1") },
    });
    let cluster = state.create(Kind::named("clusters"), namespace, object).expect("a PostgreSQL cluster");
    for (i, node) in nodes.iter().enumerate() {
        let role = if i == 0 { "primary" } else { "replica" };
        instance(state, spec, &cluster, i + 1, role, Some(node.as_str()), now);
    }
    for (suffix, role) in [("rw", Some("primary")), ("ro", Some("replica")), ("r", None)] {
        let mut selector = json!({ "cnpg.io/cluster": name });
        if let Some(role) = role {
            selector[ROLE] = json!(role);
        }
        let service = json!({
            "metadata": { "name": format!("{name}-{suffix}") },
            "spec": { "selector": selector, "ports": [{ "name": "postgres", "port": 5432, "targetPort": 5432 }] },
        });
        state.create(Kind::named("services"), namespace, service).expect("a Service");
    }
}

/// Creates instance `<cluster>-<n>` in a role: Ready at once when seeded on a node, else
/// scheduled and Ready after `ready_delay`.
fn instance(
    state: &mut State,
    spec: &FakeSpec,
    cluster: &Value,
    n: usize,
    role: &str,
    node: Option<&str>,
    now: Instant,
) {
    let namespace = text(cluster, "/metadata/namespace").to_string();
    let cluster_name = text(cluster, "/metadata/name");
    let name = format!("{cluster_name}-{n}");
    let mut labels = json!({ "cnpg.io/cluster": cluster_name, "cnpg.io/instanceName": name, "role": role });
    labels[ROLE] = json!(role);
    let object = json!({
        "metadata": { "name": name, "labels": labels, "ownerReferences": owner_reference(cluster) },
        "spec": {
            "containers": [{ "name": "postgres", "image": "ghcr.io/cloudnative-pg/postgresql:17", "ports": [{ "containerPort": 5432 }] }],
            "terminationGracePeriodSeconds": spec.grace_period_seconds,
        },
        "status": { "phase": "Pending" },
    });
    state.create(Kind::named("pods"), &namespace, object).expect("an instance");
    record_event(state, cluster, "CreatingInstance", format!("Creating instance {name}"), "cloudnative-pg");
    place(state, spec, &namespace, &name, node, now, node.is_some());
}

/// A Cluster's instance pods that are not being deleted.
fn instances(state: &State, cluster: &Value) -> Vec<Value> {
    let uid = text(cluster, "/metadata/uid");
    state
        .list("pods", Some(text(cluster, "/metadata/namespace")))
        .into_iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences/0/uid").and_then(Value::as_str) == Some(uid) && !is_terminating(p)
        })
        .collect()
}

/// Labels every instance with its role, `primary` the one named (none when `primary` is "").
fn label_roles(state: &mut State, cluster: &Value, primary: &str) {
    for mut pod in instances(state, cluster) {
        let role = if text(&pod, "/metadata/name") == primary { "primary" } else { "replica" };
        pod["metadata"]["labels"][ROLE] = json!(role);
        pod["metadata"]["labels"]["role"] = json!(role);
        state.update(Kind::named("pods"), pod);
    }
}

/// One pass of the operator over every Cluster.
pub fn reconcile(state: &mut State, spec: &FakeSpec, now: Instant) {
    let clusters = Kind::named("clusters");
    for cluster in state.list("clusters", None) {
        let uid = text(&cluster, "/metadata/uid").to_string();
        let name = text(&cluster, "/metadata/name").to_string();
        let namespace = text(&cluster, "/metadata/namespace").to_string();
        let current = text(&cluster, "/status/currentPrimary").to_string();
        let target = text(&cluster, "/status/targetPrimary").to_string();
        let pods = instances(state, &cluster);
        let ready = |wanted: &str| pods.iter().any(|p| text(p, "/metadata/name") == wanted && is_ready(p));
        let primary_up = ready(&current);
        let successor = pods
            .iter()
            .find(|p| is_ready(p) && text(p, "/metadata/name") != current)
            .map(|p| text(p, "/metadata/name").to_string());
        let switching = primary_up && target != current && ready(&target);
        if switching {
            label_roles(state, &cluster, "");
        }
        let promoted = if lasted(state, format!("{uid}/failover"), !primary_up, spec.failover_delay, now) {
            successor.map(|next| (next, "FailoverTarget"))
        } else if lasted(state, format!("{uid}/switchover"), switching, spec.failover_delay, now) {
            Some((target.clone(), "SwitchoverTarget"))
        } else {
            None
        };
        let mut updated = cluster.clone();
        if let Some((primary, reason)) = promoted {
            label_roles(state, &cluster, &primary);
            updated["status"]["currentPrimary"] = json!(primary);
            updated["status"]["targetPrimary"] = json!(primary);
            record_event(state, &cluster, reason, format!("Promoting {primary} to primary"), "cloudnative-pg");
        }
        let wanted = cluster.pointer("/spec/instances").and_then(Value::as_u64).unwrap_or(1) as usize;
        for n in 1..=wanted {
            let present = state.get("pods", &namespace, &format!("{name}-{n}")).is_some();
            if lasted(state, format!("{uid}/{n}"), !present, spec.recreate_delay, now) {
                instance(state, spec, &cluster, n, "replica", None, now);
            }
        }
        let pods = instances(state, &cluster);
        let ready_count = pods.iter().filter(|p| is_ready(p)).count();
        let primary = text(&updated, "/status/currentPrimary").to_string();
        let phase = if !pods.iter().any(|p| text(p, "/metadata/name") == primary && is_ready(p)) {
            "Failing over"
        } else if text(&updated, "/status/targetPrimary") != primary {
            "Switchover in progress"
        } else if ready_count == wanted {
            "Cluster in healthy state"
        } else {
            "Waiting for the instances to become active"
        };
        updated["status"]["instances"] = json!(pods.len());
        updated["status"]["readyInstances"] = json!(ready_count);
        updated["status"]["phase"] = json!(phase);
        state.update(clusters, updated);
    }
}
