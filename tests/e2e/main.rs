//! End-to-end and integration tests of firedrill, as one test binary: the command line run
//! through the real binary, the engine driven through custom environments, the contracts every
//! environment keeps, the shipped scenarios run in the simulation, snapshots of every
//! rendering, and the scenario parser fed mutated input.

#[cfg(feature = "aws")]
mod aws;
mod aws_mock;
mod aws_real;
mod aws_run;
mod common;

mod blast;
mod cli;
mod conformance;
mod docker;
mod engine;
mod held_probes;
mod import;
#[cfg(feature = "kube")]
mod kube_db;
#[cfg(feature = "kube")]
mod kube_fake;
#[cfg(feature = "kube")]
mod kube_faults;
#[cfg(feature = "kube")]
mod kube_manifests;
#[cfg(feature = "kube")]
mod kube_patroni;
#[cfg(feature = "kube")]
mod kube_probes;
mod kube_real;
#[cfg(feature = "kube")]
mod kube_run;
#[cfg(feature = "kube")]
mod kube_surge;
#[cfg(feature = "kube")]
mod kube_wire;
mod layers;
mod load;
mod otel;
mod parse_robustness;
mod pg_tls;
mod probes;
mod prometheus;
mod push;
mod records;
mod recover;
mod reports;
#[cfg(feature = "aws")]
mod reports_s3;
mod scenarios;
mod simulate;
mod snapshots;
mod stack;
mod stops;
mod tabletop;
