//! firedrill's reach into real systems: [`probe`]s that check an endpoint as a new user would,
//! the PostgreSQL write ledger behind RPO, and the open-model [`load`] generator.
//!
//! Above `firedrill-core` (it answers with [`firedrill_core::sample::Sample`]s) and below every
//! environment with real systems in it.

pub mod cause;
pub mod load;
pub mod probe;
pub mod process;
pub mod tls;
