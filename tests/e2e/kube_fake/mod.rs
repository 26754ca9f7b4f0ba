//! An in-process fake Kubernetes API server for the kube environment's tests, since no API
//! server can be installed here: the subset of the API firedrill uses, with the API's own paths,
//! wire shapes (k8s-openapi types) and semantics, served on a loopback port to a real
//! `kube::Client` (or to `firedrill run` through the kubeconfig it writes). Nodes, pods owned
//! by ReplicaSets and DaemonSets that fake controllers recreate after a delay, Deployments with
//! the scale subresource, PodDisruptionBudgets that block evictions with the API's 429,
//! EndpointSlices that follow readiness, NetworkPolicies, SelfSubjectAccessReviews, and
//! watches with resourceVersions. The tests in `tests.rs` state what it promises.

mod api;
mod cluster;
mod controller;
mod selector;
mod status;
mod store;
mod subresource;
mod tests;

pub use cluster::{FakeCluster, FakeSpec};
