//! `traffic_surge` with `workers: N`: when one machine cannot make the load, Kubernetes runs
//! the generator. An Indexed Job of N pods (labelled with the run) runs `firedrill load` from
//! the scenario's `image`, pod k sending share k of N of the surge's requests
//! ([`crate::load::Share`]) from the same wall-clock start; each streams its per-second buckets
//! to its log (`--format stream`), which firedrill follows and merges as they come
//! ([`crate::load::Merge`]): exactly what one generator sending every request would have
//! measured. A log followed again after its connection broke repeats lines, which the merge
//! counts once.
//!
//! The Job bounds itself: `activeDeadlineSeconds` stops its pods soon after the surge should
//! have ended, and `ttlSecondsAfterFinished` removes it, so a drill killed mid-surge leaves
//! no load running in the cluster even before `firedrill recover` deletes the Job.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};

use super::error::KubeError;
use crate::env::RUN_LABEL;
use crate::load::{describe, Merge, Plan};
use crate::sample::Evidence;

/// How long the pods have to be running before the surge starts, unless the scenario says
/// (`start_within`): an image pull on a cold node, a scheduling delay. A pod not running by
/// then fails the surge, saying why.
pub const START_WITHIN: Duration = Duration::from_secs(30);

/// How long a revert waits for the workers' last lines (their final seconds, flushed once
/// their requests are answered or timed out) before it deletes their Job.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// How long after the surge's end the Job may still run before Kubernetes stops it.
const OVERRUN: Duration = Duration::from_secs(60);

/// The label Kubernetes gives a Job's pods.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The Job running `plan` (one target, an open model) as `workers` pods of `image`, starting at
/// `start_at`, `start_within` from now; named after the run and labelled with it.
pub fn job(
    run_id: &str,
    image: &str,
    plan: &Plan,
    workers: u32,
    start_at: jiff::Timestamp,
    start_within: Duration,
) -> Job {
    let name = format!("firedrill-{run_id}-surge");
    let labels: std::collections::BTreeMap<String, String> = [(RUN_LABEL.to_string(), run_id.to_string())].into();
    let rate = match &plan.model {
        crate::load::Model::Open(stages) => stages.first().map_or(0.0, |s| s.rate),
        crate::load::Model::Closed { .. } => 0.0,
    };
    let duration = crate::load::schedule::total(match &plan.model {
        crate::load::Model::Open(stages) => stages,
        crate::load::Model::Closed { .. } => &[],
    });
    let mut args: Vec<String> = vec!["load".into(), plan.targets.first().map(|t| t.url.clone()).unwrap_or_default()];
    args.extend(["--rate".into(), format!("{rate}/s")]);
    args.extend(["--duration".into(), format!("{}ms", duration.as_millis())]);
    args.extend(["--timeout".into(), format!("{}ms", plan.timeout.as_millis())]);
    args.extend(["--connections".into(), plan.connections.to_string()]);
    // Kubernetes expands $(VAR) in args from the container's environment: each pod its index.
    args.extend(["--share".into(), format!("$(JOB_COMPLETION_INDEX)/{workers}")]);
    args.extend(["--start-at".into(), start_at.to_string(), "--format".into(), "stream".into()]);
    let deadline = start_within + duration + plan.timeout + OVERRUN;
    Job {
        metadata: ObjectMeta { name: Some(name), labels: Some(labels.clone()), ..Default::default() },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(workers as i32),
            parallelism: Some(workers as i32),
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline.as_secs() as i64),
            ttl_seconds_after_finished: Some(600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "load".into(),
                        image: Some(image.into()),
                        command: Some(vec!["firedrill".into()]),
                        args: Some(args),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// A surge running as a Job: its streams, merged as they come.
pub struct WorkerSurge {
    job: String,
    namespace: String,
    plan: Plan,
    workers: u32,
    merge: Arc<Mutex<Merge>>,
    /// What could not be merged, or read, in words.
    problems: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerSurge {
    /// Creates `job` in `namespace`, waits until its `workers` pods run (at most until
    /// `start_at`), follows their logs, and returns at
    /// `start_at`, when the surge starts. A pod not running by then fails it, with its state.
    pub async fn start(
        client: &Client,
        namespace: &str,
        job: Job,
        plan: Plan,
        workers: u32,
        start_at: jiff::Timestamp,
    ) -> Result<WorkerSurge, KubeError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        jobs.create(&PostParams::default(), &job)
            .await
            .map_err(KubeError::api(format!("create job {namespace}/{name}")))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let selector = ListParams::default().labels(&format!("{JOB_NAME_LABEL}={name}"));
        let running = loop {
            let listed = pods
                .list(&selector)
                .await
                .map_err(KubeError::api(format!("list the pods of job {namespace}/{name}")))?;
            let running: Vec<String> = listed
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if running.len() >= workers as usize {
                break running;
            }
            if jiff::Timestamp::now() >= start_at {
                return Err(KubeError::WorkersNotRunning {
                    job: name,
                    running: running.len(),
                    workers,
                    states: states(&listed.items),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let merge = Arc::new(Mutex::new(Merge::new(&plan)));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let readers = running
            .into_iter()
            .map(|pod| tokio::spawn(follow(pods.clone(), pod, merge.clone(), problems.clone())))
            .collect();
        let wait = start_at.duration_since(jiff::Timestamp::now());
        tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
        Ok(WorkerSurge { job: name, namespace: namespace.into(), plan, workers, merge, problems, readers })
    }

    /// The Job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Its namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Waits, at most `within`, for every worker to end its stream, and stops reading them.
    /// (Deleting the Job, with its pods, is the caller's: it journalled its creation.)
    pub async fn stop(&mut self, within: Duration) {
        let ended = tokio::time::timeout(within, futures_util::future::join_all(self.readers.iter_mut())).await;
        if ended.is_err() {
            self.readers.iter().for_each(tokio::task::JoinHandle::abort);
        }
    }

    /// What the workers measured together, and which did not end their stream.
    pub fn evidence(&self) -> Evidence {
        let merge = self.merge.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = format!("{} worker pods of job {}/{}; ", self.workers, self.namespace, self.job);
        let ended = merge.ended().count();
        text.push_str(&format!("{ended} of them ended their stream\n"));
        text.push_str(&describe(&self.plan, &merge.report(&self.plan)));
        for problem in self.problems.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            text.push_str(&format!("\n{problem}"));
        }
        Evidence { source: "traffic_surge".into(), text, truncated: false }
    }
}

/// Follows `pod`'s log into `merge` until it ends; again, after a second, when the connection
/// broke before the worker's last line.
async fn follow(pods: Api<Pod>, pod: String, merge: Arc<Mutex<Merge>>, problems: Arc<Mutex<Vec<String>>>) {
    let params = LogParams { follow: true, ..Default::default() };
    // A pod gone makes the same error each second: said once.
    let said = |what: String| {
        let mut problems = problems.lock().unwrap_or_else(PoisonError::into_inner);
        if problems.last() != Some(&what) {
            problems.push(what);
        }
    };
    loop {
        match pods.log_stream(&pod, &params).await {
            Ok(stream) => {
                let mut lines = stream.lines();
                while let Some(line) = lines.next().await {
                    match line {
                        Ok(line) if line.trim().is_empty() => {}
                        Ok(line) => {
                            if let Err(e) = merge.lock().unwrap_or_else(PoisonError::into_inner).read(&pod, &line) {
                                said(e.to_string());
                            }
                        }
                        Err(e) => {
                            said(format!("worker {pod}: its log broke off: {e}"));
                            break;
                        }
                    }
                }
            }
            Err(e) => said(format!("worker {pod}: its log could not be read: {e}")),
        }
        if merge.lock().unwrap_or_else(PoisonError::into_inner).ended().any(|w| w == pod) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Each pod's name and state, for a surge whose workers did not all start.
fn states(pods: &[Pod]) -> String {
    let state = |p: &Pod| {
        let status = p.status.clone().unwrap_or_default();
        let waiting = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| c.state.and_then(|s| s.waiting).and_then(|w| w.reason));
        let phase = status.phase.unwrap_or_else(|| "Pending".into());
        format!(
            "{} {phase}{}",
            p.metadata.name.as_deref().unwrap_or("?"),
            waiting.map(|w| format!(" ({w})")).unwrap_or_default()
        )
    };
    if pods.is_empty() {
        return "no pod created".into();
    }
    pods.iter().map(state).collect::<Vec<_>>().join(", ")
}
