//! What a drill is judged against and held to: its targets, when the system counts as healthy,
//! and the safety limits that abort it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::duration::Dur;

/// The limits a drill must meet. Absent targets are not scored.
///
/// `rto` and `rpo` may be given per disruption type too (`by_disruption`), the shape of an AWS
/// Resilience Hub resiliency policy: the scenario's disruption type picks its block, and what
/// the block leaves out falls back to the plain targets.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Recovery time objective.
    #[schemars(with = "Option<Dur>")]
    pub rto: Option<Spanned<Dur>>,
    /// Recovery point objective (data loss, in time).
    #[schemars(with = "Option<Dur>")]
    pub rpo: Option<Spanned<Dur>>,
    /// Time to detect.
    #[schemars(with = "Option<Dur>")]
    pub mttd: Option<Spanned<Dur>>,
    /// Mean time to recover over repeated drills.
    #[schemars(with = "Option<Dur>")]
    pub mttr: Option<Spanned<Dur>>,
    /// RTO and RPO per disruption type; only the scenario's own type scores the drill, so one
    /// organisation-wide policy can be copied into every scenario.
    pub by_disruption: DisruptionTargets,
    /// Time targets on named steps: the step done (finished ok) within this long of `t0`, the
    /// way runbooks state "team response < 5 min" (`"Acknowledge the page": 5m`). Kept here
    /// beside RTO and RPO, keyed by the step's name, so the objectives read as one block and
    /// a step's own fields stay about how it is carried out.
    #[schemars(with = "BTreeMap<String, Dur>")]
    pub steps: BTreeMap<String, Spanned<Dur>>,
}

crate::word::word_enum! {
    /// What a drill's fault rehearses, in AWS Resilience Hub's disruption types: the scale
    /// of what is lost, from narrowest to widest (the order a sequence of faults is judged by).
    #[derive(PartialOrd, Ord, JsonSchema)]
    pub enum Disruption {
        /// The application's own software fails: a process crash, a bad deploy, an overload.
        Software = "software",
        /// Infrastructure fails under it: a node, a host's network, a database server.
        Hardware = "hardware",
        /// An Availability Zone is lost, and with it what runs there.
        Az = "az",
        /// A whole region, or a regional service, is unavailable.
        Region = "region",
    }
}

impl Disruption {
    /// Every type, narrowest first: the rows of the compliance summary.
    pub const ALL: [Disruption; 4] = [Disruption::Software, Disruption::Hardware, Disruption::Az, Disruption::Region];
}

/// RTO and RPO targets per disruption type (a Resilience Hub resiliency policy's map). A type
/// not written here is scored by the plain targets.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DisruptionTargets {
    /// For a software (application) disruption.
    #[schemars(with = "Option<FailurePolicy>")]
    pub software: Option<Spanned<FailurePolicy>>,
    /// For a hardware (infrastructure) disruption.
    #[schemars(with = "Option<FailurePolicy>")]
    pub hardware: Option<Spanned<FailurePolicy>>,
    /// For the loss of an Availability Zone.
    #[schemars(with = "Option<FailurePolicy>")]
    pub az: Option<Spanned<FailurePolicy>>,
    /// For the loss of a region.
    #[schemars(with = "Option<FailurePolicy>")]
    pub region: Option<Spanned<FailurePolicy>>,
}

impl DisruptionTargets {
    /// The block of one disruption type, when written.
    pub fn get(&self, disruption: Disruption) -> Option<&Spanned<FailurePolicy>> {
        match disruption {
            Disruption::Software => self.software.as_ref(),
            Disruption::Hardware => self.hardware.as_ref(),
            Disruption::Az => self.az.as_ref(),
            Disruption::Region => self.region.as_ref(),
        }
    }
}

/// The targets of one disruption type (Resilience Hub's `FailurePolicy`, in durations rather
/// than seconds). At least one of them.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FailurePolicy {
    /// Recovery time objective for this type; absent: the plain `rto`.
    #[schemars(with = "Option<Dur>")]
    pub rto: Option<Spanned<Dur>>,
    /// Recovery point objective for this type; absent: the plain `rpo`.
    #[schemars(with = "Option<Dur>")]
    pub rpo: Option<Spanned<Dur>>,
}

/// When the system counts as recovered: every availability sample ok for this long.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Stability {
    /// Consecutive ok samples each availability probe needs.
    pub samples: u32,
    /// Shortest healthy window, whatever the sample count.
    pub min_duration: Dur,
}

impl Default for Stability {
    fn default() -> Self {
        Stability { samples: 3, min_duration: Dur::secs(1) }
    }
}

/// The healthy state checked before injecting and after reverting.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SteadyState {
    /// Consecutive ok samples each availability probe needs.
    pub samples: u32,
    /// How long to wait for them before giving up.
    pub timeout: Dur,
}

impl Default for SteadyState {
    fn default() -> Self {
        SteadyState { samples: 3, timeout: Dur::secs(60) }
    }
}

/// A safety limit on a drill: reached, it aborts the drill and reverts the fault at once.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StopCondition {
    /// Abort when a probe has failed continuously for this long (protect what the drill must
    /// not break).
    ProbeFailing {
        /// The probe watched.
        probe: String,
        /// How long it may fail before the drill is aborted.
        #[serde(rename = "for")]
        for_: Dur,
    },
    /// Abort when an `slo` probe's measured window breaches one of these limits continuously
    /// for this long. The limits are a safety net looser than the probe's own objective: the
    /// objective says when users are back to normal (RTO), these say when the drill hurts too
    /// much to go on.
    SloBreach {
        /// The `slo` probe watched.
        probe: String,
        /// The most failed requests allowed in the window, in percent.
        #[serde(default)]
        max_error_percent: Option<f64>,
        /// The most 95th-percentile latency allowed.
        #[serde(default)]
        p95: Option<Dur>,
        /// The most 99th-percentile latency allowed.
        #[serde(default)]
        p99: Option<Dur>,
        /// How long a limit may be breached before the drill is aborted (`0s`: at the first
        /// breaching sample).
        #[serde(rename = "for")]
        for_: Dur,
    },
}

impl StopCondition {
    /// The probe the condition watches.
    pub fn probe(&self) -> &str {
        match self {
            StopCondition::ProbeFailing { probe, .. } | StopCondition::SloBreach { probe, .. } => probe,
        }
    }

    /// How long the condition must hold before the drill is aborted.
    pub fn holds_for(&self) -> Dur {
        match self {
            StopCondition::ProbeFailing { for_, .. } | StopCondition::SloBreach { for_, .. } => *for_,
        }
    }
}
