//! What `firedrill plan` says of a kube scenario beyond the engine's plan: the cluster it
//! names, the permissions the drill asks for before it starts, and, when the cluster answers
//! within a few seconds, which pods a drain would evict and which it would leave. Planning
//! only reads: it connects, gets the node and lists its pods, nothing else.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::access::{self, left_on_node, pod_name};
use super::error::KubeError;
use super::{connect, drain};
use crate::scenario::{KubeCluster, Scenario};
use crate::text::error_chain;

/// How long the plan waits for the cluster: a plan is read by a person, who is better told
/// the cluster did not answer than kept waiting.
pub const REACH_LIMIT: Duration = Duration::from_secs(4);

/// The plan's lines for `scenario` on `cluster`, each already indented under a `kube:` head.
pub async fn lines(scenario: &Scenario, cluster: &KubeCluster) -> Vec<String> {
    let mut lines = vec![format!(
        "kube: context {}, namespace {} (the drill may disrupt namespaces {})",
        cluster.context,
        cluster.namespace,
        cluster.namespaces.join(", ")
    )];
    lines.push("  asked of the API server before the drill (one SelfSubjectAccessReview each):".into());
    lines.extend(access::needed_by_scenario(cluster, scenario).iter().map(|p| format!("    {p}")));
    for node in drain::drained_nodes(&scenario.fault) {
        let listed = tokio::time::timeout(REACH_LIMIT, pods_on(&cluster.context, &node)).await;
        match listed {
            Ok(Ok(pods)) => lines.extend(drain_lines(&node, &pods, &cluster.namespaces)),
            Ok(Err(e)) => lines.push(format!("  the pods on node {node} are not listed: {}", error_chain(&e))),
            Err(_) => lines.push(format!(
                "  the pods on node {node} are not listed: context {} did not answer within {} s",
                cluster.context,
                REACH_LIMIT.as_secs()
            )),
        }
    }
    lines
}

/// The pods on `node`, asked of `context` now.
async fn pods_on(context: &str, node: &str) -> Result<Vec<Pod>, KubeError> {
    let client = connect::connect(context).await?;
    drain::node(&client, node).await?;
    drain::pods_on(&client, node).await
}

/// What a drain of `node` would do with `pods`, as it would decide it now.
fn drain_lines(node: &str, pods: &[Pod], namespaces: &[String]) -> Vec<String> {
    let (left, evicted): (Vec<&Pod>, Vec<&Pod>) = pods.iter().partition(|p| left_on_node(p).is_some());
    let evicted: Vec<Pod> = evicted.into_iter().cloned().collect();
    let outside = access::outside(&evicted, namespaces);
    let mut lines = vec![format!("  drain node {node}, as the cluster has it now ({} pod(s) on it):", pods.len())];
    match evicted.is_empty() {
        true => lines.push("    would be evicted: none".into()),
        false => {
            lines.push(format!("    would be evicted: {}", evicted.iter().map(pod_name).collect::<Vec<_>>().join(", ")))
        }
    }
    let stays: Vec<String> =
        left.iter().map(|p| format!("{} ({})", pod_name(p), left_on_node(p).unwrap_or_default())).collect();
    lines.push(format!(
        "    stays (DaemonSet/mirror): {}",
        if stays.is_empty() { "none".to_string() } else { stays.join(", ") }
    ));
    if !outside.is_empty() {
        lines.push(format!(
            "    REFUSED: the drain would evict pods outside the scenario's namespaces: {}",
            outside.join(", ")
        ));
    }
    lines
}
