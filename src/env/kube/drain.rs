//! `node_drain` through the API, as `kubectl drain --ignore-daemonsets` does it: the node
//! cordoned (and annotated with the run, so that a later `firedrill recover` knows it is
//! firedrill's), then every pod on it evicted through the Eviction API with the drain's grace
//! period and a uid precondition, an eviction a PodDisruptionBudget blocks retried every 5 s
//! until the drain's deadline. Each request's answer is said in the drill's evidence.
//!
//! The Eviction is k8s-openapi's own `policy/v1` object, posted with `create_subresource`:
//! kube-rs's `Api::evict` sends its options under `delete_options`, which the API server
//! ignores (the field is `deleteOptions`), so the grace period and the precondition would be
//! dropped without a word.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::{Api, Client};
use tokio::time::Instant;

use super::access::pod_name;
use super::error::{Answer, KubeError};

/// The annotation naming the run that cordoned a node.
pub const RUN_ANNOTATION: &str = "firedrill.io/run";
/// The annotation keeping whether the node was unschedulable before firedrill cordoned it.
pub const UNSCHEDULABLE_BEFORE_ANNOTATION: &str = "firedrill.io/unschedulable-before";
/// How often an eviction a PodDisruptionBudget blocks is tried again: `kubectl drain`'s pace.
pub const PDB_RETRY: Duration = Duration::from_secs(5);
/// How long blocked evictions are retried when the fault gives no `deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// The nodes `fault` drains (each of a sequence's drains).
pub fn drained_nodes(fault: &crate::scenario::Fault) -> Vec<String> {
    let drained = crate::env::dry_run::each_fault(fault).into_iter().filter_map(|f| match f {
        crate::scenario::Fault::NodeDrain { node, .. } => Some(node.clone()),
        _ => None,
    });
    drained.collect()
}

/// The node as the API has it now.
pub async fn node(client: &Client, node: &str) -> Result<Node, KubeError> {
    Api::<Node>::all(client.clone()).get(node).await.map_err(KubeError::api(format!("get node {node}")))
}

/// Every pod bound to `node`, in every namespace.
pub async fn pods_on(client: &Client, node: &str) -> Result<Vec<Pod>, KubeError> {
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let pods = Api::<Pod>::all(client.clone())
        .list(&params)
        .await
        .map_err(KubeError::api(format!("list the pods on node {node}")))?;
    Ok(pods.items)
}

/// Cordons `node` and annotates it with the run and its prior state, in one merge patch:
/// the node is never cordoned without saying by whom.
pub async fn cordon(client: &Client, node: &str, run: &str) -> Result<(), KubeError> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {RUN_ANNOTATION: run, UNSCHEDULABLE_BEFORE_ANNOTATION: "false"}},
        "spec": {"unschedulable": true},
    });
    Api::<Node>::all(client.clone())
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api(format!("cordon node {node}")))?;
    Ok(())
}

/// Makes `node` schedulable again and removes firedrill's annotations, only while they name
/// `run`: a node someone uncordoned, or cordoned again for their own reasons since, is left
/// alone. What it found and did, in words.
pub async fn uncordon(client: &Client, node: &str, run: &str) -> Result<String, KubeError> {
    if let Err(why) = cordoned_by(client, node, run).await? {
        return Ok(format!("nothing to do: {why}"));
    }
    let patch = serde_json::json!({
        "metadata": {"annotations": {RUN_ANNOTATION: null, UNSCHEDULABLE_BEFORE_ANNOTATION: null}},
        "spec": {"unschedulable": null},
    });
    Api::<Node>::all(client.clone())
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api(format!("uncordon node {node}")))?;
    Ok(format!("node {node} uncordoned"))
}

/// Whether `node` is still cordoned by `run`; if not, why.
pub async fn cordoned_by(client: &Client, node: &str, run: &str) -> Result<Result<(), String>, KubeError> {
    let found = match Api::<Node>::all(client.clone()).get_opt(node).await {
        Ok(found) => found,
        Err(e) => return Err(KubeError::api(format!("get node {node}"))(e)),
    };
    let Some(found) = found else { return Ok(Err(format!("node {node} is gone"))) };
    let annotated = found.metadata.annotations.as_ref().and_then(|a| a.get(RUN_ANNOTATION));
    Ok(match annotated {
        Some(r) if r == run => Ok(()),
        Some(other) => Err(format!("node {node} is now cordoned by run {other}")),
        None => Err(format!("node {node} no longer carries firedrill's annotation")),
    })
}

/// How one eviction ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Evicted {
    /// The API accepted it (201): the pod is terminating, with its grace period.
    Accepted,
    /// The pod was already gone (404).
    Gone,
    /// The uid precondition failed (409): the name is a replacement's now, which is never
    /// evicted in its predecessor's name.
    Replaced,
}

/// Evicts `pod`, retrying every [`PDB_RETRY`] while a PodDisruptionBudget blocks it (429),
/// for `deadline` from now; each answer is handed to `said` ("evict shop/web-1: blocked by PDB web:
/// …"). Any other refusal is an error, the API's answer in it.
pub async fn evict(
    client: &Client,
    pod: &Pod,
    grace: Duration,
    deadline: Duration,
    said: &dyn Fn(String),
) -> Result<Evicted, KubeError> {
    let until = Instant::now() + deadline;
    let (pods, name, eviction) = eviction(client, pod, grace);
    let full = pod_name(pod);
    loop {
        let answer = pods.create_subresource::<_, Status>("eviction", &name, &PostParams::default(), &eviction).await;
        let error = match answer {
            Ok(_) => {
                said(format!("evict {full}: accepted (grace period {}s)", grace.as_secs()));
                return Ok(Evicted::Accepted);
            }
            Err(e) => Answer(e),
        };
        match error.code() {
            Some(404) => {
                said(format!("evict {full}: already gone ({error})"));
                return Ok(Evicted::Gone);
            }
            Some(409) => {
                said(format!(
                    "evict {full}: not evicted, the uid precondition failed: a replacement now has the name ({error})"
                ));
                return Ok(Evicted::Replaced);
            }
            Some(429) => {
                let block = blocked_by(error.status());
                said(format!("evict {full}: {block}"));
                let now = Instant::now();
                if now >= until {
                    let blocked = vec![format!("{full}: {block}")];
                    return Err(KubeError::DrainDeadline { deadline: crate::duration::Dur(deadline), blocked });
                }
                tokio::time::sleep(PDB_RETRY.min(until - now)).await;
            }
            _ => return Err(KubeError::Api { action: format!("evict pod {full}"), source: error }),
        }
    }
}

/// The Eviction of `pod` with the drain's grace period and the pod's uid as a precondition,
/// the pod's name, and the API of its namespace's pods.
fn eviction(client: &Client, pod: &Pod, grace: Duration) -> (Api<Pod>, String, Eviction) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let eviction = Eviction {
        metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(namespace.clone()), ..Default::default() },
        delete_options: Some(DeleteOptions {
            grace_period_seconds: Some(grace.as_secs() as i64),
            preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        }),
    };
    (Api::namespaced(client.clone(), &namespace), name, eviction)
}

/// Posts the eviction of `pod` as a server-side dry run (`?dryRun=All`): the API server
/// admits it as it would the real one (RBAC, the pod's existence, the uid precondition, the
/// PodDisruptionBudget) and changes nothing. A budget's block is said ("would be blocked by
/// PDB web now") but is no refusal: the drain retries a blocked eviction until its deadline,
/// and a replacement may be Ready by then. Any other refusal is an error, so that a drain
/// that cannot succeed fails before the node is cordoned.
pub async fn dry_run_evict(
    client: &Client,
    pod: &Pod,
    grace: Duration,
    said: &dyn Fn(String),
) -> Result<(), KubeError> {
    let (pods, name, eviction) = eviction(client, pod, grace);
    let full = pod_name(pod);
    let params = PostParams { dry_run: true, ..Default::default() };
    let error = match pods.create_subresource::<_, Status>("eviction", &name, &params, &eviction).await {
        Ok(_) => {
            said(format!("dry run: evict {full}: would be accepted"));
            return Ok(());
        }
        Err(e) => Answer(e),
    };
    if error.code() != Some(429) {
        return Err(KubeError::Api { action: format!("dry-run the eviction of pod {full}"), source: error });
    }
    let block = match budget_cause(error.status()) {
        Some((pdb, message)) => format!("would be blocked by PDB {pdb} now: {message}"),
        None => format!("would be refused now: {}", blocked_by(error.status())),
    };
    said(format!("dry run: evict {full}: {block}; the drain retries it until its deadline"));
    Ok(())
}

/// The PodDisruptionBudget a 429's Status names in its `DisruptionBudget` cause, and the
/// cause's message, which the API server writes as "The disruption budget <name> needs 2
/// healthy pods and has 2 currently" (or "… does not allow evicting pods currently …").
fn budget_cause(status: Option<&Status>) -> Option<(&str, &str)> {
    let causes = status.and_then(|s| s.details.as_ref()).map(|d| d.causes.as_slice()).unwrap_or_default();
    let cause = causes.iter().find(|c| c.reason == "DisruptionBudget")?;
    let name = cause.message.strip_prefix("The disruption budget ")?.split_whitespace().next()?;
    Some((name, cause.message.as_str()))
}

/// The block a 429 answer says, in words: `blocked by PDB <name>: <message>`, the budget
/// named by the Status's cause ([`budget_cause`]).
pub fn blocked_by(status: Option<&Status>) -> String {
    match budget_cause(status) {
        Some((name, message)) => format!("blocked by PDB {name}: {message}"),
        // A 429 without a budget's cause: the API server's own throttling, retried the same.
        _ => format!("HTTP 429, no PodDisruptionBudget named: {}", status.map(|s| s.message.as_str()).unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

    #[test]
    fn a_block_names_its_budget_from_the_cause_and_a_bare_429_says_it_names_none() {
        let cause = |message: &str| StatusCause {
            reason: "DisruptionBudget".into(),
            message: message.into(),
            field: String::new(),
        };
        let details = |causes| StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes,
            retry_after_seconds: 10,
        };
        let status = |causes| {
            Status::failure("Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests")
                .with_code(429)
                .with_details(details(causes))
        };
        let processing =
            "The disruption budget db-pdb does not allow evicting pods currently because it failed sync: x";
        assert_eq!(blocked_by(Some(&status(vec![cause(processing)]))), format!("blocked by PDB db-pdb: {processing}"));
        let throttled = Status::failure("too many requests, please try again later", "TooManyRequests").with_code(429);
        assert_eq!(
            blocked_by(Some(&throttled)),
            "HTTP 429, no PodDisruptionBudget named: too many requests, please try again later"
        );
        assert_eq!(
            blocked_by(Some(&status(vec![]))),
            "HTTP 429, no PodDisruptionBudget named: Cannot evict pod as it would violate the pod's disruption budget."
        );
    }
}
