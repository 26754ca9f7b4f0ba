//! End-to-end and integration tests of firedrill, as one test binary: the command line run
//! through the real binary, the engine driven through custom environments, the shipped
//! scenarios run in the simulation, and the scenario parser fed mutated input.

mod common;

mod cli;
mod docker;
mod engine;
mod load;
mod parse_robustness;
mod probes;
mod records;
mod reports;
mod scenarios;
mod simulate;
mod stack;
