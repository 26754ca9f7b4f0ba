//! firedrill: disaster-recovery drills and chaos simulation.
//!
//! Data flows one way: a [`scenario`] is run by the [`engine`] in an [`env`]ironment, which
//! yields a [`timeline`]; [`metrics`] are pure functions of it, [`score`] turns them into
//! verdicts, [`drill`] returns them as [`record`]s, and [`report`] renders records. The
//! command line is a thin layer over [`drill`] and [`report`].
//!
//! This crate is the top of the workspace. What it re-exports from `firedrill-core` and
//! `firedrill-net` sits below it; within it, modules use only those before them in this order
//! (tests/e2e/layers.rs fails on a new back-edge): engine → env → drill → simulate → report.

pub use firedrill_core::{
    dist, duration, journal, metrics, record, redact, rng, sample, scenario, score, text, timeline, word,
};
#[cfg(feature = "live")]
pub use firedrill_net::{load, probe, process, tls};
#[cfg(feature = "docker")]
pub use firedrill_stack as stack;

pub mod drill;
pub mod engine;
pub mod env;
pub mod import;
pub mod recover;
pub mod report;
pub mod simulate;
pub mod store;
pub mod tabletop;
