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
        }
    }
}
