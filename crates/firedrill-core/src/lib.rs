//! firedrill's core: what a drill is and what it produced, with no async runtime and no
//! network, so that scenarios, metrics and records can be read, checked and scored anywhere.
//!
//! Layers, each using only those before it: units ([`duration`], [`rng`], [`dist`],
//! [`redact`], [`text`], [`word`]) → [`scenario`] → [`timeline`] and [`sample`] → [`metrics`] and
//! [`score`] → [`record`] (and [`journal`], the revert journal of changes made to real systems).

pub mod dist;
pub mod duration;
pub mod journal;
pub mod metrics;
pub mod record;
pub mod redact;
pub mod rng;
pub mod sample;
pub mod scenario;
pub mod score;
pub mod text;
pub mod timeline;
pub mod word;
