//! The `kube:` steps of a runbook: its `kubectl` lines (`scale`, `rollout restart`,
//! `uncordon`, `exec`, `delete pod`) carried out through the API with the requests kubectl
//! makes, so a drill needs no kubectl and no shell. A step is the recovery: what it changes is
//! neither journalled nor reverted.

use std::cell::RefCell;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::error::KubeError;
use super::{exec, pods, scale, Inner};
use crate::scenario::{KubeAction, KubeCluster, Problem, Scenario, StepAction};

/// The problems of the scenario's `kube` steps in `cluster`: a namespace it may not touch.
pub fn problems(cluster: &KubeCluster, scenario: &Scenario) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let StepAction::Kube(action) = &step.action else { continue };
        if let Some(namespace) = action.namespace().filter(|n| !cluster.namespaces.iter().any(|c| c == n)) {
            problems.push(Problem::new(
                scenario.positions.steps[i],
                format!(
                    "step `{}`: namespace `{namespace}` is not one of the environment's namespaces ({})",
                    step.name,
                    cluster.namespaces.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The patch `kubectl rollout restart` makes: the pod template annotated with now, which the
/// workload's controller rolls out as a new revision.
pub fn restart_patch(now: jiff::Timestamp) -> serde_json::Value {
    let at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}})
}

/// `kubectl rollout restart`.
async fn rollout_restart(client: &Client, namespace: &str, workload: &str) -> Result<String, KubeError> {
    let parsed = scale::parse(workload)?;
    scale::api(client, namespace, &parsed)
        .patch(parsed.name, &PatchParams::default(), &Patch::Strategic(restart_patch(jiff::Timestamp::now())))
        .await
        .map_err(KubeError::api(format!("restart {workload} in namespace {namespace}")))?;
    Ok(format!(
        "{workload} in namespace {namespace} restarted (its pod template annotated kubectl.kubernetes.io/restartedAt)"
    ))
}

/// `kubectl uncordon`: the strategic merge patch that drops `spec.unschedulable`.
async fn uncordon(client: &Client, node: &str) -> Result<String, KubeError> {
    let patch = serde_json::json!({"spec": {"unschedulable": null}});
    Api::<Node>::all(client.clone())
        .patch(node, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(KubeError::api(format!("uncordon node {node}")))?;
    Ok(format!("node {node} uncordoned"))
}

/// The pods a step names: `pod`, or the running ones `selector` picks (none is an error).
async fn named_pods(
    client: &Client,
    namespace: &str,
    pod: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Pod>, KubeError> {
    if let Some(pod) = pod {
        let found = Api::<Pod>::namespaced(client.clone(), namespace)
            .get(pod)
            .await
            .map_err(KubeError::api(format!("get pod {namespace}/{pod}")))?;
        return Ok(vec![found]);
    }
    let selector = selector.unwrap_or_default();
    let found = pods::matching(client, namespace, selector).await?;
    match found.is_empty() {
        true => Err(KubeError::NoPods { selector: selector.into(), namespace: namespace.into() }),
        false => Ok(found),
    }
}

impl Inner {
    /// Carries out a `kube` step; what the API answered, as the step's output.
    pub(super) async fn kube_step(&self, action: &KubeAction) -> Result<Option<String>, KubeError> {
        let client = self.client()?;
        let namespace = action.namespace().unwrap_or(&self.cluster.namespace).to_string();
        let done = match action {
            KubeAction::Scale { workload, replicas, .. } => {
                let before = scale::replicas(&client, &namespace, workload).await?;
                let to = i32::try_from(*replicas).unwrap_or(i32::MAX);
                scale::set_replicas(&client, &namespace, workload, to).await?;
                format!("{workload} in namespace {namespace} scaled from {before} to {to} replicas")
            }
            KubeAction::RolloutRestart { workload, .. } => rollout_restart(&client, &namespace, workload).await?,
            KubeAction::Uncordon { node } => uncordon(&client, node).await?,
            KubeAction::Exec { pod, selector, container, command, .. } => {
                let found = named_pods(&client, &namespace, pod.as_deref(), selector.as_deref()).await?;
                let name = found[0].metadata.name.clone().unwrap_or_default();
                let ran = exec::exec(&client, &namespace, &name, container.as_deref(), command).await?;
                if !ran.ok() {
                    return Err(KubeError::ExecFailed {
                        command: command.join(" "),
                        pod: format!("{namespace}/{name}"),
                        why: ran.failure(),
                    });
                }
                ran.stdout.trim_end().to_string()
            }
            KubeAction::DeletePod { pod, selector, grace_period, .. } => {
                let found = named_pods(&client, &namespace, pod.as_deref(), selector.as_deref()).await?;
                let answers = RefCell::new(Vec::new());
                let said = |what: String| answers.borrow_mut().push(what);
                let grace: Option<Duration> = grace_period.map(|g| g.0);
                for pod in &found {
                    pods::delete(&client, pod, grace, &said).await?;
                }
                answers.into_inner().join("\n")
            }
        };
        Ok(Some(done))
    }
}
