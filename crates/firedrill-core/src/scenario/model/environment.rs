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
    /// An AWS account and region, reached through the AWS SDK's standard credential chain.
    Aws(AwsAccount),
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
            EnvironmentSpec::Aws(_) => EnvironmentKind::Aws,
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

/// An AWS account and region, and what a drill may touch in it.
///
/// Credentials come from the SDK's standard chain (environment, profiles, SSO, instance and
/// container roles), as the team's own tools get them. firedrill changes only resources that
/// carry `allow_tag`, and, when `accounts` is given, only in one of them (asked of STS before
/// anything): a drill pointed at the wrong profile stops before it touches production.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsAccount {
    /// The region (`eu-west-1`); absent: the chain's (`AWS_REGION`, the profile's).
    #[serde(default)]
    pub region: Option<String>,
    /// An emulator's endpoint (moto, LocalStack) in place of AWS's, for every service.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The tag, `key=value`, a resource must carry for firedrill to change it.
    #[serde(default = "default_allow_tag")]
    pub allow_tag: String,
    /// The twelve-digit accounts the drill may run in; absent: any the credentials reach.
    #[serde(default)]
    pub accounts: Vec<String>,
}

fn default_allow_tag() -> String {
    "firedrill=allowed".into()
}
