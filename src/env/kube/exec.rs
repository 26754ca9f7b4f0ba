//! A command run in a pod through the API's `exec` subresource (a websocket, as `kubectl
//! exec` opens), its output read whole and its exit code taken from the Status the API server
//! ends the exec with: the blackhole's in-cluster check and the `exec` step.

use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use kube::{Api, Client};
use tokio::io::AsyncReadExt;

use super::error::KubeError;

/// How a command run in a pod ended.
#[derive(Debug)]
pub struct Ran {
    /// What it printed on standard output.
    pub stdout: String,
    /// What it printed on standard error.
    pub stderr: String,
    /// Its exit code; `None` when the Status named none (a failure of the exec itself, said
    /// in `stderr`).
    pub code: Option<i32>,
}

impl Ran {
    /// Whether it exited with 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// How it ended, in words: `exit code 1: wget: download timed out`.
    pub fn failure(&self) -> String {
        let code = self.code.map_or("?".to_string(), |c| c.to_string());
        format!("exit code {code}: {}", self.stderr.trim())
    }
}

/// Runs `command` in `pod` (in `container`, if named) of `namespace`, and waits for it to end.
pub async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<Ran, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let action = || format!("exec `{}` in pod {namespace}/{pod}", command.join(" "));
    let mut params = AttachParams::default().stdout(true).stderr(true);
    if let Some(container) = container {
        params = params.container(container);
    }
    let mut process = pods.exec(pod, command.to_vec(), &params).await.map_err(KubeError::api(action()))?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = process.stdout() {
        let _ = out.read_to_string(&mut stdout).await;
    }
    if let Some(mut err) = process.stderr() {
        let _ = err.read_to_string(&mut stderr).await;
    }
    let status = match process.take_status() {
        Some(status) => status.await,
        None => None,
    };
    let _ = process.join().await;
    let Some(status) = status else { return Err(KubeError::ExecEnded { action: action() }) };
    if status.status.as_deref() == Some("Success") {
        return Ok(Ran { stdout, stderr, code: Some(0) });
    }
    let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
    let code = causes
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok());
    if stderr.trim().is_empty() {
        stderr = status.message.unwrap_or_default();
    }
    Ok(Ran { stdout, stderr, code })
}
