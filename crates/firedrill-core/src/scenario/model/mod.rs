//! The scenario format: the typed mirror of the YAML a user writes, one module per part.
//!
//! These are the raw, as-written types. Lists whose entries are checked against each other
//! (probes, steps, stop conditions) and values checked against each other (targets, deadline)
//! carry their source position so a semantic error can point at them; [`super::Scenario`] is
//! the validated form the engine runs.

mod blast_radius;
mod docker_stack;
mod environment;
mod fault;
mod inject;
mod probe;
mod procedure;
mod sim_stack;
mod targets;

pub use blast_radius::*;
pub use docker_stack::*;
pub use environment::*;
pub use fault::*;
pub use inject::*;
pub use probe::*;
pub use procedure::*;
pub use sim_stack::*;
pub use targets::*;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::duration::Dur;

/// A scenario file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "firedrill scenario")]
pub struct RawScenario {
    /// Short identifier, used to group drills of the same scenario (letters, digits, `-`, `_`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the drill proves, for the people reading its report.
    #[serde(default)]
    pub description: String,
    /// Free labels (`tier-1`, `database`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the scenario runs; `sim` when absent.
    #[serde(default)]
    pub environment: EnvironmentSpec,
    /// What kind of disruption the fault rehearses: `software`, `hardware`, `az` or `region`
    /// (AWS Resilience Hub's types); absent: inferred from the fault (see the README's table).
    /// It picks the `targets.by_disruption` block that scores the drill.
    #[serde(default)]
    #[schemars(with = "Option<Disruption>")]
    pub disruption: Option<Spanned<Disruption>>,
    /// What is injected.
    #[schemars(with = "Fault")]
    pub fault: Spanned<Fault>,
    /// The repeated checks that observe the system.
    #[serde(default)]
    #[schemars(with = "Vec<Probe>")]
    pub probes: Vec<Spanned<Probe>>,
    /// The recovery runbook; self-healing (`automatic`) when absent.
    #[serde(default)]
    pub procedure: Procedure,
    /// The limits the drill must meet.
    #[serde(default)]
    pub targets: Targets,
    /// How long the system must stay healthy to count as recovered.
    #[serde(default)]
    pub stability: Stability,
    /// How long after the fault firedrill waits for recovery before calling it unrecovered.
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub deadline: Option<Spanned<Dur>>,
    /// The healthy state required before injecting and expected again after reverting.
    #[serde(default)]
    pub steady_state: SteadyState,
    /// Safety limits: the drill is aborted (and the fault reverted) when one is reached.
    #[serde(default)]
    #[schemars(with = "Vec<StopCondition>")]
    pub stop_conditions: Vec<Spanned<StopCondition>>,
    /// The most containers (in `sim`: replicas, the database primary, the object store) the
    /// drill may affect: a fault that would affect more is refused, at load time when what it
    /// affects is known from the file, and in `docker` again before each inject.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_blast_radius: Option<Spanned<u32>>,
    /// New information shown to a tabletop exercise's room at set times (`firedrill
    /// tabletop`); other environments ignore them.
    #[serde(default)]
    #[schemars(with = "Vec<Inject>")]
    pub injects: Vec<Spanned<Inject>>,
    /// Strings masked wherever they would appear in a result or report (passwords, tokens,
    /// internal host names). Passwords in connection strings are masked without being listed.
    #[serde(default)]
    pub redact: Vec<String>,
}
