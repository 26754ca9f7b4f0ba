//! The procedure: the recovery runbook, its steps, and what each step does in the simulation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::dist::Delay;
use crate::duration::Dur;

/// The recovery runbook.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Procedure {
    /// `automatic`: the system heals itself and nobody acts; `steps`: the steps below, in order.
    pub kind: ProcedureKind,
    /// Time budget of the whole procedure.
    pub budget: Option<Dur>,
    /// Running longer than this records an escalation; defaults to the budget.
    pub escalate_after: Option<Dur>,
    /// The ordered steps.
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

/// Whether recovery is self-healing or follows steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureKind {
    /// The system heals itself.
    #[default]
    Automatic,
    /// People or automation follow ordered steps.
    Steps,
}

/// One step of the runbook: automated (`run`) or manual (`manual`), exactly one of them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the step does, as the runbook says it.
    pub name: String,
    /// Automated: the command run (argv, not a shell string).
    #[serde(default)]
    pub run: Option<Vec<String>>,
    /// Run the command inside this container (`docker`) instead of on this machine.
    #[serde(default)]
    pub container: Option<String>,
    /// Manual: the instruction a person follows and confirms.
    #[serde(default)]
    pub manual: Option<String>,
    /// Automated (`docker`): start this standby container and wait until it is ready, as a
    /// scale-out would.
    #[serde(default)]
    pub start: Option<String>,
    /// Automated (`kube`): a `kubectl`-shaped action carried out through the API, without a
    /// kubectl on this machine. The simulation plays it by its budget and `sim.effect`.
    #[serde(default)]
    pub kube: Option<KubeAction>,
    /// Time budget of the step.
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub budget: Option<Spanned<Dur>>,
    /// Running longer than this records an escalation; defaults to the budget.
    #[serde(default)]
    pub escalate_after: Option<Dur>,
    /// An automated step still running after this is stopped and fails.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// How the step plays out in the `sim` environment.
    #[serde(default)]
    pub sim: Option<SimStep>,
}

/// A runbook's `kubectl` line, carried out through the API by the `kube` environment. What it
/// changes is the recovery, so it is neither journalled nor reverted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum KubeAction {
    /// `kubectl scale WORKLOAD --replicas=N`, through the scale subresource.
    Scale {
        /// `deployment/NAME` or `statefulset/NAME`.
        workload: String,
        /// The replicas.
        replicas: u32,
        /// The namespace; absent: the environment's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// `kubectl rollout restart WORKLOAD`: the patch kubectl makes, the pod template's
    /// `kubectl.kubernetes.io/restartedAt` annotation set to now, which rolls every pod.
    RolloutRestart {
        /// `deployment/NAME` or `statefulset/NAME`.
        workload: String,
        /// The namespace; absent: the environment's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// `kubectl uncordon NODE`: the node schedulable again.
    Uncordon {
        /// The node.
        node: String,
    },
    /// `kubectl exec POD -- COMMAND`: the step fails when the command exits non-zero, and its
    /// output is the step's.
    Exec {
        /// The pod; or give `selector`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pod: Option<String>,
        /// The first running pod (by name) this label selector picks; or give `pod`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        /// The container; absent: the pod's first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
        /// Program and arguments (argv, not a shell string).
        command: Vec<String>,
        /// The namespace; absent: the environment's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// `kubectl delete pod`: the pod named, or every running pod a selector picks, each with
    /// its uid as a precondition.
    DeletePod {
        /// The pod; or give `selector`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pod: Option<String>,
        /// The label selector; or give `pod`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        /// The grace period; absent: the pod's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_period: Option<Dur>,
        /// The namespace; absent: the environment's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

impl KubeAction {
    /// The action as the kubectl line it stands for, for plans and reports.
    pub fn describe(&self) -> String {
        let ns = |n: &Option<String>| n.as_ref().map(|n| format!(" -n {n}")).unwrap_or_default();
        let target = |pod: &Option<String>, selector: &Option<String>| match (pod, selector) {
            (Some(pod), _) => pod.clone(),
            (None, Some(selector)) => format!("-l {selector}"),
            (None, None) => String::new(),
        };
        match self {
            KubeAction::Scale { workload, replicas, namespace } => {
                format!("kubectl scale {workload} --replicas={replicas}{}", ns(namespace))
            }
            KubeAction::RolloutRestart { workload, namespace } => {
                format!("kubectl rollout restart {workload}{}", ns(namespace))
            }
            KubeAction::Uncordon { node } => format!("kubectl uncordon {node}"),
            KubeAction::Exec { pod, selector, container, command, namespace } => format!(
                "kubectl exec {}{}{} -- {}",
                target(pod, selector),
                container.as_ref().map(|c| format!(" -c {c}")).unwrap_or_default(),
                ns(namespace),
                command.join(" ")
            ),
            KubeAction::DeletePod { pod, selector, grace_period, namespace } => format!(
                "kubectl delete pod {}{}{}",
                target(pod, selector),
                grace_period.map(|g| format!(" --grace-period={}", g.0.as_secs())).unwrap_or_default(),
                ns(namespace)
            ),
        }
    }

    /// The namespace the action names, if any.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            KubeAction::Scale { namespace, .. }
            | KubeAction::RolloutRestart { namespace, .. }
            | KubeAction::Exec { namespace, .. }
            | KubeAction::DeletePod { namespace, .. } => namespace.as_deref(),
            KubeAction::Uncordon { .. } => None,
        }
    }
}

/// How a procedure step plays out in the simulation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimStep {
    /// How long the step takes; defaults to a distribution around the step's budget.
    #[serde(default)]
    pub duration: Option<Delay>,
    /// What the step does to the simulated stack when it completes.
    #[serde(default)]
    pub effect: Effect,
    /// Replicas added by `scale_out`.
    #[serde(default)]
    pub replicas: Option<u32>,
}

/// What a step does to the simulated stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Nothing (checking, diagnosing, communicating).
    #[default]
    None,
    /// Promote the database replica to primary.
    PromoteReplica,
    /// Start more app replicas (`replicas`).
    ScaleOut,
    /// Return a drained node to service.
    Uncordon,
    /// Point the app at a reachable object store (fail over to a replica bucket).
    RestoreObjectStore,
    /// Restart the app: it reconnects to its dependencies at once, skipping backoff.
    RestartApp,
}

impl Effect {
    /// The effect's word, as written in a scenario (its serde name), for plans and timelines.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::None => "none",
            Effect::PromoteReplica => "promote_replica",
            Effect::ScaleOut => "scale_out",
            Effect::Uncordon => "uncordon",
            Effect::RestoreObjectStore => "restore_object_store",
            Effect::RestartApp => "restart_app",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_effect_prints_as_it_is_written() {
        use Effect::*;
        for effect in [None, PromoteReplica, ScaleOut, Uncordon, RestoreObjectStore, RestartApp] {
            assert_eq!(serde_json::to_value(effect).unwrap(), effect.as_str());
        }
    }
}
