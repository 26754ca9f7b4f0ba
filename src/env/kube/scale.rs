//! `scale`: a Deployment's or StatefulSet's replicas set through its scale subresource, as
//! `kubectl scale` does: the count read first, journalled with the undo that sets it back,
//! then patched. The revert (and `firedrill recover`) sets the prior count again only while
//! the workload still has the count firedrill set: one an autoscaler or a person changed since
//! is theirs.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client};

use super::error::KubeError;
use super::Inner;
use crate::journal::Undo;
use crate::scenario::{Workload, WorkloadKind};

/// A scale this drill made, and its journal entry.
#[derive(Debug)]
pub(super) struct Scaled {
    entry: u64,
    namespace: String,
    workload: String,
    before: i32,
    set: i32,
}

/// The workload's API, through which its scale subresource is read and patched.
pub(super) fn api(client: &Client, namespace: &str, workload: &Workload) -> Api<DynamicObject> {
    let resource = match workload.kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The workload named `workload` (`deployment/NAME`), or the error saying it is not one.
pub(super) fn parse(workload: &str) -> Result<Workload<'_>, KubeError> {
    Workload::parse(workload).ok_or_else(|| KubeError::NotAWorkload { workload: workload.into() })
}

/// The workload's replicas, as its scale subresource says (`spec.replicas`).
pub async fn replicas(client: &Client, namespace: &str, workload: &str) -> Result<i32, KubeError> {
    let parsed = parse(workload)?;
    let scale = api(client, namespace, &parsed)
        .get_scale(parsed.name)
        .await
        .map_err(KubeError::api(format!("read the scale of {workload} in namespace {namespace}")))?;
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// Sets the workload's replicas with a merge patch of its scale subresource.
pub async fn set_replicas(client: &Client, namespace: &str, workload: &str, replicas: i32) -> Result<(), KubeError> {
    let parsed = parse(workload)?;
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api(client, namespace, &parsed)
        .patch_scale(parsed.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api(format!("scale {workload} in namespace {namespace} to {replicas}")))?;
    Ok(())
}

/// Whether the workload still has the `set` replicas firedrill gave it; if not, why.
pub async fn scaled_by_us(
    client: &Client,
    namespace: &str,
    workload: &str,
    set: i32,
) -> Result<Result<(), String>, KubeError> {
    match replicas(client, namespace, workload).await {
        Ok(now) if now == set => Ok(Ok(())),
        Ok(now) => Ok(Err(format!("{workload} has {now} replicas now, not the {set} firedrill set: left as it is"))),
        Err(KubeError::Api { source, .. }) if source.code() == Some(404) => {
            Ok(Err(format!("{workload} in namespace {namespace} is gone")))
        }
        Err(e) => Err(e),
    }
}

/// Sets the workload back to `before` replicas while it still has the `set` ones firedrill
/// gave it; what it found and did, in words.
pub async fn restore(
    client: &Client,
    namespace: &str,
    workload: &str,
    before: i32,
    set: i32,
) -> Result<String, KubeError> {
    if let Err(why) = scaled_by_us(client, namespace, workload, set).await? {
        return Ok(format!("nothing to do: {why}"));
    }
    set_replicas(client, namespace, workload, before).await?;
    Ok(format!("{workload} in namespace {namespace} scaled back to {before} replicas"))
}

impl Inner {
    /// Scales `workload` in `namespace` (absent: the scenario's) to `to` replicas: its count read,
    /// the undo journalled, then the scale patched. A failed patch closes its entry, since
    /// nothing was changed.
    pub(super) async fn scale(&self, workload: &str, namespace: Option<&str>, to: u32) -> Result<Scaled, KubeError> {
        let namespace = namespace.unwrap_or(&self.cluster.namespace).to_string();
        let client = self.client()?;
        let before = replicas(&client, &namespace, workload).await?;
        let set = i32::try_from(to).unwrap_or(i32::MAX);
        let undo = Undo::RestoreReplicas {
            context: self.cluster.context.clone(),
            namespace: namespace.clone(),
            workload: workload.into(),
            before,
            set,
        };
        let entry =
            self.journal_apply(&format!("scale {workload} in namespace {namespace} from {before} to {set}"), undo)?;
        if let Err(e) = set_replicas(&client, &namespace, workload, set).await {
            self.answered(format!("scale {workload} to {set}: {}", crate::text::error_chain(&e)));
            let _ = self.journal_done(entry, "not made: the call failed");
            return Err(e);
        }
        self.answered(format!("{workload} in namespace {namespace} scaled from {before} to {set} replicas"));
        Ok(Scaled { entry, namespace, workload: workload.into(), before, set })
    }

    /// Sets a workload this drill scaled back to its prior count, and closes its journal entry.
    pub(super) async fn unscale(&self, scaled: &Scaled, by: &str) -> Result<(), KubeError> {
        let Scaled { entry, namespace, workload, before, set } = scaled;
        let done = restore(&self.client()?, namespace, workload, *before, *set).await;
        match &done {
            Ok(what) => self.answered(what.clone()),
            Err(e) => self.answered(format!("scale {workload} back to {before}: {}", crate::text::error_chain(e))),
        }
        self.journal_done(*entry, &format!("{by}: {}", done?))?;
        Ok(())
    }
}
