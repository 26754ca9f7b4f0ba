//! `db_failover` on a CloudNativePG Cluster (`postgresql.cnpg.io/v1`).
//!
//! `crash` deletes the primary's pod at once (grace period 0) with a uid precondition, so that
//! an instance recreated under the same name in the meantime is never hit: the operator then
//! promotes a replica. `graceful` asks the operator for a switchover to a Ready replica with
//! the status patch `kubectl cnpg promote CLUSTER INSTANCE` makes (cloudnative-pg
//! internal/cmd/plugin/promote/promote.go: `status.targetPrimary`, `targetPrimaryTimestamp`
//! (RFC 3339 with microseconds, as cloudnative-pg/machinery pkg/postgres/time
//! `GetCurrentTimestamp` writes it), `phase: Switchover in progress` and `phaseReason`,
//! patched with an optimistic lock, which a merge patch carrying the read `resourceVersion`
//! is): the operator demotes the primary, then promotes the target.
//!
//! Neither is journalled nor reverted: a deleted pod cannot be undeleted, and its Cluster
//! recreates it as a replica by itself; a new primary is the recovery, and switching back
//! would be a second failover. What the drill measures is the operator's answer: the
//! `currentPrimary` it reports (followed by [`PrimaryWatch`], each change a timeline event)
//! and the read-write Service's endpoints (an `endpoints` probe on `CLUSTER-rw`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use super::error::KubeError;
use super::{Answered, API_EVIDENCE};
use crate::scenario::{BlastRadiusExceeded, FailoverMode};
use crate::text::error_chain;

/// How often the Cluster's status is read while a failover is followed.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// The label CloudNativePG puts on each instance's pod, naming its Cluster.
const CLUSTER_LABEL: &str = "cnpg.io/cluster";

/// The Cluster resource.
fn resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster"))
}

/// The Clusters of `namespace`.
fn clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource())
}

/// A status field of a Cluster, "" when absent.
fn status<'a>(cluster: &'a DynamicObject, field: &str) -> &'a str {
    cluster.data.pointer(&format!("/status/{field}")).and_then(Value::as_str).unwrap_or("")
}

/// The Cluster `name` and its current primary.
async fn primary_of(client: &Client, namespace: &str, name: &str) -> Result<(DynamicObject, String), KubeError> {
    let cluster = clusters(client, namespace)
        .get(name)
        .await
        .map_err(KubeError::api(format!("get CloudNativePG cluster {namespace}/{name}")))?;
    let primary = status(&cluster, "currentPrimary").to_string();
    if primary.is_empty() {
        return Err(KubeError::NoPrimary { cluster: format!("{namespace}/{name}") });
    }
    Ok((cluster, primary))
}

/// Deletes the Cluster's primary pod at once, with its uid as a precondition: the pod as it
/// was (a target whose workload's log is evidence).
pub async fn crash(client: &Client, namespace: &str, name: &str, answered: &impl Fn(String)) -> Result<Pod, KubeError> {
    let (_, primary) = primary_of(client, namespace, name).await?;
    delete_primary(client, namespace, &format!("cluster {namespace}/{name}"), &primary, answered).await
}

/// Deletes the primary's pod `primary` of the database `what` at once (grace period 0), with
/// the uid read just before as a precondition: the pod as it was. CloudNativePG's and
/// Patroni's crash alike, since both name a primary by its pod.
pub async fn delete_primary(
    client: &Client,
    namespace: &str,
    what: &str,
    primary: &str,
    answered: &impl Fn(String),
) -> Result<Pod, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = pods.get(primary).await.map_err(KubeError::api(format!("get primary pod {namespace}/{primary}")))?;
    let uid = pod.uid().unwrap_or_default();
    let delete = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    let deleted = pods.delete(primary, &delete).await;
    let action = format!("delete primary pod {namespace}/{primary} (uid {uid}, grace period 0)");
    match deleted {
        Ok(_) => answered(format!("{what}: {action}: accepted")),
        Err(e) => {
            let e = KubeError::api(action)(e);
            answered(error_chain(&e));
            return Err(e);
        }
    }
    Ok(pod)
}

/// Asks the operator to switch over to the first Ready replica (by name), as `kubectl cnpg
/// promote` does: the replica asked for.
pub async fn switchover(
    client: &Client,
    namespace: &str,
    name: &str,
    answered: &impl Fn(String),
) -> Result<String, KubeError> {
    let (cluster, primary) = primary_of(client, namespace, name).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let instances = pods
        .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}={name}")))
        .await
        .map_err(KubeError::api(format!("list the instances of cluster {namespace}/{name}")))?;
    let mut replicas: Vec<String> = instances
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .map(ResourceExt::name_any)
        .filter(|n| *n != primary)
        .collect();
    replicas.sort();
    let Some(target) = replicas.into_iter().next() else {
        return Err(KubeError::NoReplica { cluster: format!("{namespace}/{name}"), primary });
    };
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let promote = json!({
        "metadata": { "resourceVersion": cluster.resource_version() },
        "status": {
            "targetPrimary": target,
            "targetPrimaryTimestamp": now,
            "phase": "Switchover in progress",
            "phaseReason": format!("Switching over to {target}"),
        },
    });
    let action = format!("switch cluster {namespace}/{name} over from {primary} to {target}");
    match clusters(client, namespace).patch_status(name, &PatchParams::default(), &Patch::Merge(&promote)).await {
        Ok(_) => answered(format!("{action}: accepted (status.targetPrimary={target})")),
        Err(e) => {
            let e = KubeError::api(action)(e);
            answered(error_chain(&e));
            return Err(e);
        }
    }
    Ok(target)
}

/// Whether a pod's Ready condition is true.
fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Cluster's `currentPrimary` and `phase`, read every 100 ms from the fault on: each
/// change is a timeline event at the read that saw it (at most 100 ms after the operator wrote
/// it). Dropping it stops the reads.
pub struct PrimaryWatch {
    changes: Arc<Mutex<Vec<Answered>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PrimaryWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PrimaryWatch {
    /// Starts reading the Cluster `name`'s status.
    pub fn start(client: &Client, namespace: &str, name: &str) -> PrimaryWatch {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let api = clusters(client, namespace);
        let (what, name, kept) = (format!("cluster {namespace}/{name}"), name.to_string(), changes.clone());
        let task = tokio::spawn(async move {
            let mut last = String::new();
            loop {
                let now = match api.get(&name).await {
                    Ok(c) => format!(
                        "currentPrimary {}, targetPrimary {}, phase {}",
                        status(&c, "currentPrimary"),
                        status(&c, "targetPrimary"),
                        status(&c, "phase")
                    ),
                    Err(e) => error_chain(&KubeError::api(format!("get {what}"))(e)),
                };
                if now != last {
                    let text = format!("{what}: {now}");
                    let answer = Answered { at: tokio::time::Instant::now(), source: API_EVIDENCE.into(), text };
                    kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(answer);
                    last = now;
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        });
        PrimaryWatch { changes, task }
    }

    /// The changes seen since the last call, as timeline events.
    pub fn take_changes(&self) -> Vec<Answered> {
        std::mem::take(&mut self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl super::Inner {
    /// Fails the CloudNativePG Cluster `name`'s primary over (see the module docs): refused
    /// when a crash would delete more pods than `max_blast_radius` allows. Nothing to journal.
    pub(super) async fn fail_over(&self, name: &str, mode: FailoverMode) -> Result<(), KubeError> {
        let client = self.client()?;
        let namespace = &self.cluster.namespace;
        if let Some(limit) = self.max_blast_radius {
            let affected = vec![format!("{namespace}/{name} primary")];
            if let Some(refused) = BlastRadiusExceeded::check(&self.fault, affected, limit) {
                return Err(refused.into());
            }
        }
        *self.primary.borrow_mut() = Some(PrimaryWatch::start(&client, namespace, name));
        let answered = |what: String| self.answered(what);
        match mode {
            FailoverMode::Crash => {
                let pod = crash(&client, namespace, name, &answered).await?;
                self.targets.borrow_mut().push(pod);
            }
            FailoverMode::Graceful => {
                switchover(&client, namespace, name, &answered).await?;
            }
        }
        Ok(())
    }
}
