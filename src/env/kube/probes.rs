//! Probes that ask the API server: what the cluster itself says about a workload's health.

use std::time::Duration;

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

/// What an `http` probe `in_cluster` asks of its answer.
pub struct InCluster<'a> {
    /// The URL, as the pods reach it.
    pub url: &'a str,
    /// GET or POST (an empty body).
    pub post: bool,
    /// The status a healthy answer has.
    pub expect_status: u16,
    /// Text a healthy answer's body contains.
    pub body_contains: Option<&'a str>,
    /// A slower answer fails.
    pub max_latency: Option<Duration>,
    /// How long wget waits for the server.
    pub timeout: Duration,
}

/// One sample of an `http` probe from inside the cluster: busybox `wget` run in the probe pod
/// `namespace`/`pod`, its `-S` output giving the answer's status. The latency is the exec's,
/// so it includes the round trip through the API server and the kubelet to the pod (tens of
/// milliseconds): a `max_latency` must leave room for it.
pub async fn http_in_cluster(client: &Client, namespace: &str, pod: &str, check: &InCluster<'_>) -> Sample {
    let timeout = check.timeout.as_secs().max(1).to_string();
    let mut command: Vec<String> = ["wget", "-S", "-q", "-T", &timeout, "-O", "-"].map(String::from).to_vec();
    if check.post {
        command.extend(["--post-data".into(), String::new()]);
    }
    command.push(check.url.into());
    let started = std::time::Instant::now();
    let ran = match super::exec::exec(client, namespace, pod, None, &command).await {
        Ok(ran) => ran,
        Err(e) => return Sample::fail(error_chain(&e)),
    };
    let took = started.elapsed();
    // busybox wget prints each answer's status line on stderr with -S (the last one after
    // redirects), and fails (exit 1) on a 4xx or 5xx.
    let status = ran.stderr.lines().rev().find_map(|line| {
        let mut words = line.split_whitespace().skip_while(|w| !w.starts_with("HTTP/"));
        words.next()?;
        words.next()?.parse::<u16>().ok()
    });
    let status = match (status, ran.ok()) {
        (Some(status), _) => status,
        (None, true) => 200,
        (None, false) => return Sample::fail(format!("from inside the cluster: {}", ran.failure())),
    };
    if status != check.expect_status {
        return Sample::fail(format!("from inside the cluster: HTTP {status} (expected {})", check.expect_status));
    }
    if let Some(text) = check.body_contains {
        if !ran.stdout.contains(text) {
            return Sample::fail(format!("from inside the cluster: the answer lacks `{text}`"));
        }
    }
    if let Some(max) = check.max_latency {
        if took > max {
            return Sample::fail(format!(
                "from inside the cluster: answered in {} ms (at most {} ms)",
                took.as_millis(),
                max.as_millis()
            ));
        }
    }
    Sample::ok()
}
