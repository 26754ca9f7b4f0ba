//! What a docker drill leaves as evidence, taken before teardown: each container's log since
//! the drill started (its tail, up to the scenario's `log_limit`), the load tables of
//! the traffic the users' side sent (SLO probes' steady load, surges), and what the probes
//! that keep state saw (DNS timelines, pooled connections).

use futures_util::StreamExt;
use testcontainers::bollard::query_parameters::LogsOptions;
use testcontainers::bollard::Docker;

use super::{Inner, Target};
use crate::sample::Evidence;

/// Evidence kept per container when the scenario sets no `log_limit`.
const DEFAULT_LOG_LIMIT: u64 = 64 * 1024;

impl Inner {
    /// The logs, then the load tables; nothing when the engine cannot be reached.
    pub(super) async fn evidence(&self) -> Vec<Evidence> {
        let Ok(docker) = self.docker() else { return Vec::new() };
        let mut evidence = self.logs(docker).await;
        evidence.extend(self.loads.evidence());
        evidence.extend(self.held.evidence());
        evidence
    }

    /// Each container's log since the drill started, replaced ones too, by name.
    async fn logs(&self, docker: &Docker) -> Vec<Evidence> {
        let since = self.started.borrow().unwrap_or(0);
        let limit = self.stack.log_limit.unwrap_or(DEFAULT_LOG_LIMIT) as usize;
        let mut names: Vec<(String, Target)> =
            self.targets.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        names.extend(self.retired.borrow().iter().cloned());
        names.sort_by(|a, b| a.0.cmp(&b.0));
        // Where it ran, when nodes are declared: a drain's evidence shows the move.
        let names = names.into_iter().map(|(name, t)| match &t.node {
            Some(node) => (format!("{name} ({node})"), t),
            None => (name, t),
        });
        let mut evidence = Vec::new();
        for (name, target) in names {
            let options = LogsOptions {
                stdout: true,
                stderr: true,
                since: since as i32,
                tail: "all".into(),
                ..Default::default()
            };
            let mut stream = docker.logs(&target.id, Some(options));
            let mut bytes = Vec::new();
            let mut truncated = false;
            while let Some(Ok(chunk)) = stream.next().await {
                bytes.extend_from_slice(&chunk.into_bytes());
                if bytes.len() > 2 * limit {
                    bytes.drain(..bytes.len() - limit);
                    truncated = true;
                }
            }
            if bytes.len() > limit {
                bytes.drain(..bytes.len() - limit);
                truncated = true;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            evidence.push(Evidence { source: name, text, truncated });
        }
        evidence
    }
}
