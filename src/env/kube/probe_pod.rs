//! The probe pods firedrill starts in a cluster to look at it from inside: `sleep` in a small
//! image with `wget`, commands run in it through `exec`. One confirms a blackhole before `t0`
//! (role `confirm`, which the blackhole's policy copy selects); one takes the samples of `http`
//! probes with `in_cluster: true` for the whole drill (role `probe`). Each is labelled with the
//! run and its role, journalled before it is created, removed when done, and ended by the
//! kubelet (`activeDeadlineSeconds`) should firedrill die first.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::Api;

use super::error::KubeError;
use super::Inner;
use crate::env::RUN_LABEL;

/// The image of the probe pods: it needs `wget` and `sleep`.
pub const PROBE_IMAGE: &str = "busybox:1.36";
/// How long a probe pod may take to be Ready (its image pulled, if need be).
pub const PROBE_READY_WITHIN: Duration = Duration::from_secs(120);
/// The label that tells a probe pod's role.
pub const ROLE_LABEL: &str = "firedrill.role";
/// How often a starting probe pod's readiness is asked again.
const POLL: Duration = Duration::from_millis(250);

/// What a probe pod is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Confirms a blackhole before `t0`, then goes.
    Confirm,
    /// Takes in-cluster probes' samples for the whole drill.
    Probe,
}

impl Role {
    /// The role label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Confirm => "confirm",
            Role::Probe => "probe",
        }
    }
}

/// A probe pod: `sleep` in [`PROBE_IMAGE`], labelled with the run and its role, ended by the
/// kubelet after `lifetime` should nothing remove it.
fn probe_pod(name: &str, namespace: &str, run: &str, role: Role, lifetime: Duration) -> Pod {
    let labels =
        BTreeMap::from([(RUN_LABEL.to_string(), run.to_string()), (ROLE_LABEL.to_string(), role.as_str().to_string())]);
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: role.as_str().into(),
                image: Some(PROBE_IMAGE.into()),
                command: Some(vec!["sleep".into(), lifetime.as_secs().to_string()]),
                ..Default::default()
            }],
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(0),
            active_deadline_seconds: Some(lifetime.as_secs() as i64),
            ..Default::default()
        }),
        status: None,
    }
}

impl Inner {
    /// Starts a probe pod for `role`, journalled first, and waits until it is Ready: its
    /// journal entry. One that does not start is removed.
    pub(super) async fn start_probe(&self, namespace: &str, name: &str, role: Role) -> Result<u64, KubeError> {
        let lifetime = match role {
            Role::Confirm => Duration::from_secs(600),
            Role::Probe => self.probe_lifetime,
        };
        let entry = self.journal_created("Pod", namespace, name)?;
        let pods: Api<Pod> = Api::namespaced(self.client()?, namespace);
        let started = async {
            pods.create(&PostParams::default(), &probe_pod(name, namespace, &self.run_id, role, lifetime))
                .await
                .map_err(KubeError::api(format!("create the probe pod {namespace}/{name}")))?;
            let until = tokio::time::Instant::now() + PROBE_READY_WITHIN;
            loop {
                let pod =
                    pods.get(name).await.map_err(KubeError::api(format!("get the probe pod {namespace}/{name}")))?;
                let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
                if conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")) {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= until {
                    return Err(KubeError::ProbeNotReady {
                        pod: format!("{namespace}/{name}"),
                        within: PROBE_READY_WITHIN,
                    });
                }
                tokio::time::sleep(POLL).await;
            }
        };
        if let Err(e) = started.await {
            let _ = self.remove(entry, "Pod", namespace, name, "the probe pod did not start").await;
            return Err(e);
        }
        self.answered(format!("probe pod {namespace}/{name} started ({RUN_LABEL}={})", self.run_id));
        Ok(entry)
    }
}
