//! What firedrill creates in a cluster (a blackhole's NetworkPolicy and its probe pod, a
//! surge's Job of worker pods): labelled `firedrill.run=<run>`, journalled before it is
//! created ([`Undo::DeleteKubeObject`]), deleted by kind and name only while it still carries
//! the run's label (a name reused by someone else is not firedrill's to delete), and swept by
//! that label when no journal entry names it.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::{Api, Client};

use super::error::KubeError;
use super::Inner;
use crate::env::RUN_LABEL;
use crate::journal::Undo;
use crate::text::error_chain;

/// The kinds firedrill creates, by the name its journal gives them.
const KINDS: [&str; 3] = ["NetworkPolicy", "Pod", "Job"];

/// The API of objects of `kind` in `namespace`.
fn api(client: &Client, namespace: &str, kind: &str) -> Result<Api<DynamicObject>, KubeError> {
    let resource = match kind {
        "NetworkPolicy" => ApiResource::erase::<NetworkPolicy>(&()),
        "Pod" => ApiResource::erase::<Pod>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        other => return Err(KubeError::NotCreatedKind { kind: other.into() }),
    };
    Ok(Api::namespaced_with(client.clone(), namespace, &resource))
}

/// Deletes the object `kind` named `name` while it carries `run`'s label, at once and with
/// what it owns (a Job's pods); what it found and did, in words.
pub async fn delete_object(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    run: &str,
) -> Result<String, KubeError> {
    if let Err(why) = created_by(client, namespace, kind, name, run).await? {
        return Ok(format!("nothing to do: {why}"));
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api(client, namespace, kind)?.delete(name, &params).await {
        Ok(_) => Ok(format!("{kind} {namespace}/{name} deleted")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(format!("nothing to do: {kind} {namespace}/{name} is gone")),
        Err(e) => Err(KubeError::api(format!("delete {kind} {namespace}/{name}"))(e)),
    }
}

/// Deletes what `run` created in `namespace` that no journal entry named (an object whose
/// journal was lost with its machine), found by the run's label. What it deleted, in words.
pub async fn sweep(client: &Client, namespace: &str, run: &str) -> Result<Vec<String>, KubeError> {
    let params = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let mut deleted = Vec::new();
    for kind in KINDS {
        let listed = api(client, namespace, kind)?
            .list(&params)
            .await
            .map_err(KubeError::api(format!("list the {kind}s labelled {RUN_LABEL}={run} in namespace {namespace}")))?;
        for object in listed.items {
            let name = object.metadata.name.unwrap_or_default();
            deleted.push(delete_object(client, namespace, kind, &name, run).await?);
        }
    }
    Ok(deleted)
}

/// Whether the object still exists and carries `run`'s label; if not, why.
pub async fn created_by(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    run: &str,
) -> Result<Result<(), String>, KubeError> {
    let found = api(client, namespace, kind)?
        .get_opt(name)
        .await
        .map_err(KubeError::api(format!("get {kind} {namespace}/{name}")))?;
    let Some(object) = found else { return Ok(Err(format!("{kind} {namespace}/{name} is gone"))) };
    Ok(match object.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)) {
        Some(r) if r == run => Ok(()),
        _ => Err(format!("{kind} {namespace}/{name} is not labelled {RUN_LABEL}={run}: not firedrill's to delete")),
    })
}

impl Inner {
    /// Journals the creation of `kind` `name`, whose undo deletes it.
    pub(super) fn journal_created(&self, kind: &str, namespace: &str, name: &str) -> Result<u64, KubeError> {
        let undo = Undo::DeleteKubeObject {
            context: self.cluster.context.clone(),
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
        };
        self.journal_apply(&format!("create {kind} {namespace}/{name}"), undo)
    }

    /// Deletes an object this drill created and closes its journal entry; a failure is said
    /// in the evidence, and leaves the entry open for `firedrill recover`.
    pub(super) async fn remove(
        &self,
        entry: u64,
        kind: &str,
        namespace: &str,
        name: &str,
        by: &str,
    ) -> Result<(), KubeError> {
        let done = delete_object(&self.client()?, namespace, kind, name, &self.run_id).await;
        match &done {
            Ok(what) => self.answered(what.clone()),
            Err(e) => self.answered(format!("delete {kind} {namespace}/{name}: {}", error_chain(e))),
        }
        self.journal_done(entry, &format!("{by}: {}", done?))
    }
}
