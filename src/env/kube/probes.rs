//! Probes that ask the API server: what the cluster itself says about a workload's health.

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use super::error::KubeError;
use crate::sample::Sample;
use crate::text::error_chain;

/// One sample of a `deployment` probe: healthy while the Deployment's status counts at least
/// `min_ready` ready replicas. The status is the Deployment controller's view, which lags
/// the pods by its sync; a failed request fails the sample with the API's answer.
pub async fn deployment(client: &Client, namespace: &str, name: &str, min_ready: u32) -> Sample {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let found = match api.get(name).await {
        Ok(found) => found,
        Err(e) => return Sample::fail(error_chain(&KubeError::api(format!("get deployment {namespace}/{name}"))(e))),
    };
    let status = found.status.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0).max(0) as u32;
    let wanted = found.spec.and_then(|s| s.replicas).unwrap_or(1);
    match ready >= min_ready {
        true => Sample::ok(),
        false => Sample::fail(format!(
            "deployment {namespace}/{name}: {ready} of {wanted} replica(s) ready, needs {min_ready}"
        )),
    }
}
