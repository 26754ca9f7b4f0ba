//! `traffic_surge` on kube: the load goes from this machine to a URL that reaches the cluster
//! (a NodePort, an ingress), as in docker ([`crate::env::load`]); what Kubernetes does about it
//! is read from the API each second until the drill ends: the Deployment's replicas, and
//! those of the autoscalers that target it, so the report shows the scale-out (or its
//! absence) next to what the users met.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::sample::Evidence;

/// The evidence's source.
pub const SCALE_OUT_EVIDENCE: &str = "scale-out";

/// How often the replicas are read.
const EVERY: Duration = Duration::from_secs(1);

/// The replicas of a Deployment and its autoscalers, read each second in a task of its own
/// until stopped.
pub struct ScaleOut {
    deployment: String,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScaleOut {
    /// Starts reading Deployment `namespace`/`name`.
    pub fn start(client: Client, namespace: &str, name: &str) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(watch(client, namespace.to_string(), name.to_string(), lines.clone()));
        ScaleOut { deployment: format!("{namespace}/{name}"), lines, task }
    }

    /// Stops reading, and says what was read.
    pub fn stop(&self) -> Evidence {
        self.task.abort();
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let text =
            format!("deployment {}, read each second (a line when it changed):\n{}", self.deployment, lines.join("\n"));
        Evidence { source: SCALE_OUT_EVIDENCE.into(), text, truncated: false }
    }
}

impl Drop for ScaleOut {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the replicas every second; a line only when they changed (or the read failed
/// differently), with the time, so a 10-minute drill does not make 600 equal lines.
async fn watch(client: Client, namespace: String, name: String, lines: Arc<Mutex<Vec<String>>>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client, &namespace);
    let mut tick = tokio::time::interval(EVERY);
    let mut last = String::new();
    loop {
        tick.tick().await;
        let now = replicas(&deployments, &autoscalers, &name).await;
        if now != last {
            let at = jiff::Timestamp::now().strftime("%H:%M:%S");
            lines.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{at} {now}"));
            last = now;
        }
    }
}

/// "3 wanted, 2 ready; autoscaler shop: 3 current, 5 desired (3..10)", or why it could not
/// be read.
async fn replicas(deployments: &Api<Deployment>, autoscalers: &Api<HorizontalPodAutoscaler>, name: &str) -> String {
    let deployment = match deployments.get(name).await {
        Ok(d) => d,
        Err(e) => return format!("the deployment could not be read: {e}"),
    };
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.unwrap_or_default();
    let mut line = format!(
        "{wanted} wanted, {} updated, {} ready",
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0)
    );
    match autoscalers.list(&ListParams::default()).await {
        Ok(list) => {
            for hpa in list.items.iter().filter(|h| {
                h.spec
                    .as_ref()
                    .is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == name)
            }) {
                let (min, max) = hpa.spec.as_ref().map_or((None, 0), |s| (s.min_replicas, s.max_replicas));
                let status = hpa.status.clone().unwrap_or_default();
                line.push_str(&format!(
                    "; autoscaler {}: {} current, {} desired ({}..{max})",
                    hpa.metadata.name.as_deref().unwrap_or("?"),
                    status.current_replicas.unwrap_or(0),
                    status.desired_replicas,
                    min.unwrap_or(1)
                ));
            }
        }
        Err(e) => line.push_str(&format!("; the autoscalers could not be listed: {e}")),
    }
    line
}
