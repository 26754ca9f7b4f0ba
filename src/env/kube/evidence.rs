//! What the cluster says happened during a drill, read after the fault was reverted and kept
//! with the record: the Kubernetes Events of the scenario's namespaces over the drill's window,
//! the logs of the pods of the workloads the fault hit (its targets' replacements and any
//! target still there; an evicted pod's log goes with it), and the cordon state of each node
//! at the end. Each is bounded (lines, bytes, time): evidence must never hold up the
//! teardown. A read that fails is said in place of what it would have shown.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

use super::access::pod_name;
use super::drain::RUN_ANNOTATION;
use super::error::KubeError;
use crate::sample::Evidence;
use crate::text::error_chain;

/// The source of the Events evidence.
pub const EVENTS_EVIDENCE: &str = "kube events";
/// The source of the nodes' cordon state at the end.
pub const NODES_EVIDENCE: &str = "kube nodes";
/// The most Events kept, the latest.
pub const MAX_EVENTS: usize = 300;
/// The most log lines read of each pod, the latest.
pub const LOG_TAIL_LINES: i64 = 200;
/// The most log bytes read of each pod.
pub const LOG_LIMIT_BYTES: i64 = 64 * 1024;
/// How long each read may take.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// What the drill hit, and since when.
pub struct Scope<'a> {
    /// The scenario's namespaces, whose Events are read.
    pub namespaces: &'a [String],
    /// When the drill started: Events and log lines before it are left out.
    pub since: jiff::Timestamp,
    /// The pods the fault acted on (as they were before it).
    pub targets: &'a [Pod],
    /// The nodes the fault drained.
    pub nodes: &'a [String],
}

/// The evidence of `scope`, read now.
pub async fn collect(client: &Client, scope: &Scope<'_>) -> Vec<Evidence> {
    let mut evidence = vec![events(client, scope).await, nodes(client, scope.nodes).await];
    evidence.extend(logs(client, scope).await);
    evidence
}

/// `read` within [`READ_LIMIT`].
async fn bounded<T>(what: &str, read: impl Future<Output = Result<T, KubeError>>) -> Result<T, String> {
    match tokio::time::timeout(READ_LIMIT, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_chain(&e)),
        Err(_) => Err(format!("failed to {what}: no answer within {} s", READ_LIMIT.as_secs())),
    }
}

/// The Events of the namespaces since the drill started, oldest first, one line each:
/// `12:00:01 Normal Killing Pod/web-1: Stopping container web (kubelet)`.
async fn events(client: &Client, scope: &Scope<'_>) -> Evidence {
    let since = whole_second(scope.since);
    let mut lines = Vec::new();
    for namespace in scope.namespaces {
        let read = async {
            Api::<Event>::namespaced(client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map_err(KubeError::api(format!("list the events of namespace {namespace}")))
        };
        match bounded("list the events", read).await {
            Ok(listed) => lines.extend(listed.items.iter().filter_map(|e| event_line(e, since))),
            Err(why) => lines.push((since, why)),
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    let truncated = lines.len() > MAX_EVENTS;
    let kept = lines.split_off(lines.len().saturating_sub(MAX_EVENTS));
    let text = match kept.is_empty() {
        true => format!("no events in namespace(s) {} since the drill started", scope.namespaces.join(", ")),
        false => kept.into_iter().map(|(_, line)| line).collect::<Vec<_>>().join("\n"),
    };
    Evidence { source: EVENTS_EVIDENCE.into(), text, truncated }
}

/// An Event as one line, with when it last happened, if that is at `since` or later.
fn event_line(event: &Event, since: ApiTime) -> Option<(ApiTime, String)> {
    let at = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))?;
    if at < since {
        return None;
    }
    let object = &event.involved_object;
    let component = event
        .reporting_component
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| event.source.as_ref().and_then(|s| s.component.clone()))
        .unwrap_or_default();
    let count = event.count.filter(|c| *c > 1).map(|c| format!(" (x{c})")).unwrap_or_default();
    let line = format!(
        "{} {} {} {}/{}: {}{count} ({component})",
        at.strftime("%H:%M:%S"),
        event.type_.as_deref().unwrap_or(""),
        event.reason.as_deref().unwrap_or(""),
        object.kind.as_deref().unwrap_or(""),
        object.name.as_deref().unwrap_or(""),
        event.message.as_deref().unwrap_or("").trim_end()
    );
    Some((at, line))
}

/// Whether each node is cordoned now, and by whom: every node of the cluster, or, when the
/// drill's user may not list them, each drained node (which the drain needed to get).
async fn nodes(client: &Client, drained: &[String]) -> Evidence {
    let read = async {
        Api::<Node>::all(client.clone()).list(&ListParams::default()).await.map_err(KubeError::api("list the nodes"))
    };
    let mut lines = Vec::new();
    match bounded("list the nodes", read).await {
        Ok(listed) => lines.extend(listed.items.iter().map(cordon_state)),
        Err(why) => {
            lines.push(format!("the nodes are not listed ({why}): the drained ones only"));
            for node in drained {
                match bounded("get the node", super::drain::node(client, node)).await {
                    Ok(found) => lines.push(cordon_state(&found)),
                    Err(why) => lines.push(format!("node {node}: {why}")),
                }
            }
        }
    }
    Evidence { source: NODES_EVIDENCE.into(), text: lines.join("\n"), truncated: false }
}

/// `node NAME: schedulable`, or cordoned and by whom.
fn cordon_state(node: &Node) -> String {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    let run = node.metadata.annotations.as_ref().and_then(|a| a.get(RUN_ANNOTATION));
    match (cordoned, run) {
        (false, _) => format!("node {name}: schedulable"),
        (true, Some(run)) => format!("node {name}: cordoned, by firedrill run {run}"),
        (true, None) => format!("node {name}: cordoned, not by firedrill"),
    }
}

/// The logs since the drill started of the targets' workloads: each pod there now that a
/// target's controller owns, or that is a target still; an evicted target that is gone is
/// said to be.
async fn logs(client: &Client, scope: &Scope<'_>) -> Vec<Evidence> {
    let owners: Vec<&str> = scope.targets.iter().filter_map(controller_uid).collect();
    let mut namespaces: Vec<&str> = scope.targets.iter().filter_map(|p| p.metadata.namespace.as_deref()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut evidence = Vec::new();
    for namespace in namespaces {
        let read = async {
            Api::<Pod>::namespaced(client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map_err(KubeError::api(format!("list the pods of namespace {namespace}")))
        };
        let pods = match bounded("list the pods", read).await {
            Ok(listed) => listed.items,
            Err(why) => {
                evidence.push(Evidence {
                    source: format!("logs in namespace {namespace}"),
                    text: why,
                    truncated: false,
                });
                continue;
            }
        };
        let is_target = |pod: &Pod| scope.targets.iter().any(|t| t.metadata.uid == pod.metadata.uid);
        for target in scope.targets.iter().filter(|t| t.metadata.namespace.as_deref() == Some(namespace)) {
            if !pods.iter().any(|p| p.metadata.uid == target.metadata.uid) {
                let text = format!("{} is gone (evicted): its log went with it", pod_name(target));
                evidence.push(Evidence { source: format!("log of pod {}", pod_name(target)), text, truncated: false });
            }
        }
        for pod in pods.iter().filter(|p| is_target(p) || controller_uid(p).is_some_and(|u| owners.contains(&u))) {
            evidence.push(log(client, pod, scope.since).await);
        }
    }
    evidence
}

/// The time type of the API's objects, of another jiff than firedrill's.
type ApiTime = k8s_openapi::jiff::Timestamp;

/// `at` in the API's time type, down to its second: Events and `sinceTime` carry whole
/// seconds, and what happened in the drill's first second is in its window.
fn whole_second(at: jiff::Timestamp) -> ApiTime {
    ApiTime::from_second(at.as_second()).unwrap_or(ApiTime::UNIX_EPOCH)
}

/// The controller (a ReplicaSet, a StatefulSet) that owns `pod`, by uid.
fn controller_uid(pod: &Pod) -> Option<&str> {
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    owners.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// The log of `pod` since `since`, its last [`LOG_TAIL_LINES`] lines and at most
/// [`LOG_LIMIT_BYTES`] bytes; truncated when either bound was reached.
async fn log(client: &Client, pod: &Pod, since: jiff::Timestamp) -> Evidence {
    let source = format!("log of pod {}", pod_name(pod));
    let params = LogParams {
        since_time: Some(whole_second(since)),
        tail_lines: Some(LOG_TAIL_LINES),
        limit_bytes: Some(LOG_LIMIT_BYTES),
        ..Default::default()
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
    let read = async {
        api.logs(&name, &params).await.map_err(KubeError::api(format!("read the log of pod {}", pod_name(pod))))
    };
    match bounded("read the log", read).await {
        Ok(text) => {
            let truncated = text.len() as i64 >= LOG_LIMIT_BYTES || text.lines().count() as i64 >= LOG_TAIL_LINES;
            Evidence { source, text, truncated }
        }
        Err(why) => Evidence { source, text: why, truncated: false },
    }
}
