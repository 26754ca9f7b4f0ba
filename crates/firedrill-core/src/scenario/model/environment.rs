//! Where a scenario runs: the closed choice of environment and its description.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DockerStack, SimStack};
use crate::word::EnvironmentKind;

/// Where a scenario runs.
// One per scenario: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvironmentSpec {
    /// The in-process model of a service stack, in virtual time.
    Sim(SimStack),
    /// Real containers on this machine's Docker Engine.
    Docker(DockerStack),
    /// A Kubernetes cluster, reached through a context of the user's kubeconfig.
    Kube(KubeCluster),
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        EnvironmentSpec::Sim(SimStack::default())
    }
}

impl EnvironmentSpec {
    /// The environment's word, as records and reports store it.
    pub fn kind(&self) -> EnvironmentKind {
        match self {
            EnvironmentSpec::Sim(_) => EnvironmentKind::Sim,
            EnvironmentSpec::Docker(_) => EnvironmentKind::Docker,
            EnvironmentSpec::Kube(_) => EnvironmentKind::Kube,
        }
    }
}

/// A Kubernetes cluster and the part of it a drill may touch.
///
/// The context is named, never taken from the kubeconfig's `current-context`: a drill that
/// followed whatever `kubectl` points at today could drain a production node. What the drill
/// changes is confined to `namespaces` (a node drain refuses a node carrying pods of others).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeCluster {
    /// The kubeconfig context (from `KUBECONFIG`, else `~/.kube/config`) the drill runs
    /// against; `run --context` must name the same one.
    pub context: String,
    /// The namespace of the drilled workloads.
    pub namespace: String,
    /// Every namespace the drill may disrupt; `[namespace]` when absent, and it must contain
    /// `namespace`.
    #[serde(default)]
    pub namespaces: Vec<String>,
}
