//! Injects: new information a tabletop exercise's facilitator drops into the room at a set
//! time ("the status page is down too"), so the plan meets surprises as an incident would.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Dur;

/// One scheduled inject; other environments ignore them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// When it is shown, on the exercise's clock from `t0` (breaks left out); within the
    /// deadline.
    pub at: Dur,
    /// The new information, as the room will read it.
    pub text: String,
}
