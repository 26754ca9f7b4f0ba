//! firedrill: disaster-recovery drills and chaos simulation.
//!
//! Data flows one way: a [`scenario`] is run by the [`engine`] in an [`env`]ironment, which
//! yields a [`timeline`]; [`metrics`] are pure functions of it, [`score`] turns them into
//! verdicts and an exit code, and [`report`] renders the result. [`drill`] ties these together
//! for the command line.

#![warn(missing_docs)]

pub mod dist;
pub mod drill;
pub mod duration;
pub mod engine;
pub mod env;
pub mod load;
pub mod metrics;
pub mod probe;
pub mod redact;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod score;
pub mod simulate;
pub mod stack;
pub mod timeline;
