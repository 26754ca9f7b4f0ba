//! An in-process fake Kubernetes API server for the kube environment's tests, since no API
//! server can be installed here: the subset of the API firedrill uses, with the API's own paths,
//! wire shapes (k8s-openapi types) and semantics, served on a loopback port to a real
//! `kube::Client`, or to `firedrill run` through the kubeconfig it writes. Nodes, pods owned by
//! ReplicaSets and DaemonSets that fake controllers recreate after a delay, mirror pods,
//! Deployments with the scale subresource, PodDisruptionBudgets that block evictions with the
//! API's 429, EndpointSlices that follow readiness, NetworkPolicies, autoscalers, Events, pod
//! logs, SelfSubjectAccessReviews, watches with resourceVersions, a CloudNativePG operator that
//! fails over and switches over, `exec` of an in-cluster HTTP check that NetworkPolicies can
//! block (unless the spec's CNI fails open), port-forwards to local addresses that die with
//! their pod, and Indexed Jobs whose pods run a local program for real (`FakeSpec::run_jobs`),
//! its output their log.
//!
//! A drill runs against it as against a cluster:
//!
//! ```text
//! let cluster = FakeCluster::start(FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a", "node-a"]));
//! firedrill().env("KUBECONFIG", cluster.kubeconfig(dir)).args(["run", "node-drain.yaml", "--context", "fake"])
//! ```
//!
//! A replacement pod exists `recreate_delay` after its predecessor is gone and is Ready
//! `ready_delay` after that (300 ms and 700 ms by default); a new primary is promoted
//! `failover_delay` (500 ms) after the old one went. A drill's measured recovery is their sum,
//! later by at most a few controller passes (20 ms each). The tests in `tests.rs` state what the
//! fake promises.
//!
//! Not served: exec of any other command, attach, port-forwards of several ports at once,
//! rollouts (a Deployment keeps one ReplicaSet), field ownership in server-side apply (it is a
//! create-or-merge here), JSON patches (refused with 415), custom resources other than
//! CloudNativePG's Cluster, and PostgreSQL itself (the operator moves roles and Services, not
//! data; a port-forward reaches whatever local address the spec names).

mod api;
mod cluster;
mod controller;
mod jobs;
mod operator;
mod selector;
mod status;
mod store;
mod subresource;
mod tests;

pub use cluster::{FakeCluster, FakeSpec};
