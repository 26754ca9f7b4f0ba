//! `pod_kill` and `pod_delete`: the pods a label selector picks in one of the scenario's
//! namespaces, deleted through the API with the fault's grace period (0 for a kill) and a uid
//! precondition, so that a replacement that took a deleted pod's name (a StatefulSet's) is
//! never hit in its predecessor's stead.
//!
//! Nothing is journalled and nothing reverted: a deleted pod cannot be undeleted, and its
//! controller (a ReplicaSet, a StatefulSet) recreates it; that recovery is what the drill
//! measures. A bare pod no controller owns stays gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Preconditions};
use kube::{Api, Client};

use super::access::pod_name;
use super::error::{Answer, KubeError};
use super::Inner;
use crate::scenario::BlastRadiusExceeded;

/// The running pods `selector` picks in `namespace`, by name: those finished or already
/// terminating are left out (deleting them again would count as a fault that was not made).
pub async fn matching(client: &Client, namespace: &str, selector: &str) -> Result<Vec<Pod>, KubeError> {
    let params = ListParams::default().labels(selector);
    let listed = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .map_err(KubeError::api(format!("list the pods {selector} in namespace {namespace}")))?;
    let mut pods: Vec<Pod> = listed
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods)
}

/// Deletes `pod` with `grace` (absent: the pod's own) and its uid as a precondition; what
/// the API answered is handed to `said`. A pod already gone (404) or replaced under its name
/// (409: the precondition failed) is not an error: what the fault meant to end has ended.
pub async fn delete(
    client: &Client,
    pod: &Pod,
    grace: Option<Duration>,
    said: &dyn Fn(String),
) -> Result<(), KubeError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let full = pod_name(pod);
    let params = DeleteParams {
        grace_period_seconds: grace.map(|g| g.as_secs().try_into().unwrap_or(u32::MAX)),
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..DeleteParams::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
    let error = match pods.delete(&name, &params).await {
        Ok(_) => {
            let grace = grace.map_or("its own grace period".to_string(), |g| format!("grace period {}s", g.as_secs()));
            said(format!("delete pod {full}: accepted ({grace})"));
            return Ok(());
        }
        Err(e) => Answer(e),
    };
    match error.code() {
        Some(404) => said(format!("delete pod {full}: already gone ({error})")),
        Some(409) => said(format!(
            "delete pod {full}: not deleted, the uid precondition failed: a replacement now has the name ({error})"
        )),
        _ => {
            said(format!("delete pod {full}: {error}"));
            return Err(KubeError::Api { action: format!("delete pod {full}"), source: error });
        }
    }
    Ok(())
}

impl Inner {
    /// Deletes the first `count` (absent: all) of the pods `selector` picks in `namespace`
    /// (absent: the scenario's), all at once; refused before any is deleted when none match, or
    /// when they are more than `max_blast_radius`. Every deletion is tried; the first failure
    /// is the error.
    pub(super) async fn delete_pods(
        &self,
        selector: &str,
        namespace: Option<&str>,
        count: Option<u32>,
        grace: Duration,
    ) -> Result<(), KubeError> {
        let namespace = namespace.unwrap_or(&self.cluster.namespace);
        let client = self.client()?;
        let mut pods = matching(&client, namespace, selector).await?;
        if pods.is_empty() {
            return Err(KubeError::NoPods { selector: selector.into(), namespace: namespace.into() });
        }
        if let Some(count) = count {
            pods.truncate(count as usize);
        }
        if let Some(limit) = self.max_blast_radius {
            let affected = pods.iter().map(pod_name).collect();
            if let Some(refused) = BlastRadiusExceeded::check(&self.fault, affected, limit) {
                return Err(refused.into());
            }
        }
        let said = |what: String| self.answered(what);
        let deletions = pods.iter().map(|pod| delete(&client, pod, Some(grace), &said));
        let failed = futures_util::future::join_all(deletions).await.into_iter().find_map(Result::err);
        failed.map_or(Ok(()), Err)
    }
}
