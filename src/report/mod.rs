//! Reports: the JSON record of a drill and its renderings.

mod record;
pub mod terminal;

pub use record::{
    load_history, write_atomic, DrillRecord, ProbeInfo, ReportError, ScenarioInfo, StepInfo, TargetsInfo,
};
