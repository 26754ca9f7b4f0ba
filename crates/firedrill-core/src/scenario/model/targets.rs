//! What a drill is judged against and held to: its targets, when the system counts as healthy,
//! and the safety limits that abort it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::duration::Dur;

/// The limits a drill must meet. Absent targets are not scored.
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

/// A safety limit on a drill.
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
}
