//! The `endpoints` probe: a Service's ready backends, as its EndpointSlices (label
//! `kubernetes.io/service-name`) list them. Endpoints are deprecated since 1.33; the slices are
//! what kube-proxy routes by, so they are what a failover or a drain changes for the users.
//!
//! The slices are watched, not polled: the probe's first sample lists them (and fails with the
//! API's answer if it cannot), then a task watches from the list's resourceVersion and keeps
//! the state the last watch event left. A sample reads that state as it is when the sample is
//! taken: it says what the API server had told firedrill by then, not what a request at the
//! sample's time would answer. Each change of the ready count is also a timeline event at the
//! moment its watch event arrived ([`super::Environment::answers`]), so the report shows when the
//! API server said the Service lost and regained its backends, to the millisecond, whatever
//! the probe's interval. A watch the server ends is resumed from the last resourceVersion; one
//! whose version expired (410) lists again.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Client, ResourceExt};

use super::error::KubeError;
use super::{Answered, API_EVIDENCE};
use crate::sample::Sample;
use crate::text::error_chain;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// How long one watch request lasts before the server ends it (and it is resumed).
const WATCH_SECONDS: u32 = 290;

/// How long a failed watch waits before it lists again.
const RETRY: Duration = Duration::from_secs(1);

/// A Service's EndpointSlices, as the last list or watch event said.
#[derive(Default)]
struct Seen {
    /// The pods each slice lists as ready, by slice name.
    ready: BTreeMap<String, Vec<String>>,
    /// The wall-clock time of the last event that changed the ready count.
    changed_at: Option<jiff::Timestamp>,
    /// Why the watch is not running, while it is not.
    broken: Option<String>,
    /// The changes of the ready count not yet taken as timeline events.
    changes: Vec<Answered>,
}

impl Seen {
    fn count(&self) -> usize {
        self.ready.values().map(Vec::len).sum()
    }

    /// Applies one slice's new state (`None`: deleted), keeping a change of the ready count
    /// as a timeline event.
    fn apply(&mut self, what: &str, slice: &str, ready: Option<Vec<String>>) {
        let before = self.count();
        match ready {
            Some(pods) => self.ready.insert(slice.to_string(), pods),
            None => self.ready.remove(slice),
        };
        let after = self.count();
        if after != before {
            self.changed_at = Some(jiff::Timestamp::now());
            let text = format!("{what}: {after} ready endpoint(s) (was {before}): {}", self.pods().join(", "));
            self.changes.push(Answered { at: tokio::time::Instant::now(), source: API_EVIDENCE.into(), text });
        }
    }

    fn pods(&self) -> Vec<String> {
        self.ready.values().flatten().cloned().collect()
    }
}

/// The pods a slice lists as ready (an endpoint without a pod is named by its address).
pub fn ready_in(slice: &EndpointSlice) -> Vec<String> {
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .map(|e| e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_else(|| e.addresses.join(",")))
        .collect()
}

/// The label selector of a Service's slices.
pub fn selector(service: &str) -> String {
    format!("{SERVICE_LABEL}={service}")
}

/// A running watch of one Service's slices; dropping it stops the watch.
pub struct EndpointsWatch {
    what: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EndpointsWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EndpointsWatch {
    /// Lists `service`'s slices in `namespace`, then watches them from the list's version.
    pub async fn start(client: &Client, namespace: &str, service: &str) -> Result<EndpointsWatch, KubeError> {
        let what = format!("service {namespace}/{service}");
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let version = list(&api, service, &what, &seen).await?;
        let task = tokio::spawn(watch(api, service.to_string(), what.clone(), version, seen.clone()));
        Ok(EndpointsWatch { what, seen, task })
    }

    /// The sample the watched state gives now: healthy with at least `min_ready` ready
    /// endpoints; a watch that broke fails it with why.
    pub fn sample(&self, min_ready: u32) -> Sample {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = &seen.broken {
            return Sample::fail(format!("{}: the watch of its EndpointSlices failed: {why}", self.what));
        }
        let count = seen.count();
        if count >= min_ready as usize {
            return Sample::ok();
        }
        let since = seen.changed_at.map(|t| format!(" since {}", t.strftime("%H:%M:%S%.3f"))).unwrap_or_default();
        Sample::fail(format!("{}: {count} ready endpoint(s){since}, needs {min_ready}", self.what))
    }

    /// The changes of the ready count seen since the last call, as timeline events.
    pub fn take_changes(&self) -> Vec<Answered> {
        std::mem::take(&mut self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).changes)
    }
}

/// Lists the slices into `seen` (replacing what it had): the list's resourceVersion.
async fn list(api: &Api<EndpointSlice>, service: &str, what: &str, seen: &Mutex<Seen>) -> Result<String, KubeError> {
    let listed = api
        .list(&ListParams::default().labels(&selector(service)))
        .await
        .map_err(KubeError::api(format!("list the EndpointSlices of {what}")))?;
    let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.broken = None;
    let names: Vec<String> = seen.ready.keys().cloned().collect();
    for gone in names.iter().filter(|n| !listed.items.iter().any(|s| s.name_any() == **n)) {
        seen.apply(what, gone, None);
    }
    for slice in &listed.items {
        seen.apply(what, &slice.name_any(), Some(ready_in(slice)));
    }
    Ok(listed.metadata.resource_version.unwrap_or_default())
}

/// Follows the slices' watch events from `version`, resuming each ended watch from the last
/// version seen, and listing again when the version expired (410) or the watch failed; a
/// failure other than an expired version fails the samples until a list succeeds.
async fn watch(api: Api<EndpointSlice>, service: String, what: String, mut version: String, seen: Arc<Mutex<Seen>>) {
    let params = WatchParams::default().labels(&selector(&service)).timeout(WATCH_SECONDS);
    loop {
        let ended = match api.watch(&params, &version).await {
            Ok(stream) => follow(stream.boxed(), &what, &mut version, &seen).await,
            Err(e) => Ended::Failed(error_chain(&KubeError::api(format!("watch the EndpointSlices of {what}"))(e))),
        };
        match ended {
            Ended::Resume => continue,
            Ended::Expired => {}
            Ended::Failed(why) => seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).broken = Some(why),
        }
        loop {
            match list(&api, &service, &what, &seen).await {
                Ok(listed) => {
                    version = listed;
                    break;
                }
                Err(e) => seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).broken = Some(error_chain(&e)),
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// How a watch ended.
enum Ended {
    /// The server ended it (its timeout): resume from the last version.
    Resume,
    /// Its version expired (410): list again.
    Expired,
    /// It failed, for this reason: list again, failing the samples until that succeeds.
    Failed(String),
}

/// Applies one watch's events until it ends.
async fn follow(
    mut stream: futures_util::stream::BoxStream<'_, Result<WatchEvent<EndpointSlice>, kube::Error>>,
    what: &str,
    version: &mut String,
    seen: &Mutex<Seen>,
) -> Ended {
    while let Some(event) = stream.next().await {
        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Ok(WatchEvent::Added(s) | WatchEvent::Modified(s)) => {
                *version = s.resource_version().unwrap_or_default();
                seen.apply(what, &s.name_any(), Some(ready_in(&s)));
            }
            Ok(WatchEvent::Deleted(s)) => {
                *version = s.resource_version().unwrap_or_default();
                seen.apply(what, &s.name_any(), None);
            }
            Ok(WatchEvent::Bookmark(b)) => *version = b.metadata.resource_version,
            Ok(WatchEvent::Error(e)) if e.code == 410 => return Ended::Expired,
            Ok(WatchEvent::Error(e)) => return Ended::Failed(format!("HTTP {} {}: {}", e.code, e.reason, e.message)),
            Err(e) => return Ended::Failed(error_chain(&e)),
        }
    }
    Ended::Resume
}

impl super::Inner {
    /// A sample of `endpoints` probe `probe`, from its watch (started by its first sample).
    pub(super) async fn endpoints_sample(
        &self,
        probe: usize,
        namespace: &str,
        service: &str,
        min_ready: u32,
    ) -> Sample {
        let running = self.endpoints.borrow().get(&probe).cloned();
        let watch = match running {
            Some(watch) => watch,
            None => {
                let started = match self.client() {
                    Ok(client) => EndpointsWatch::start(&client, namespace, service).await,
                    Err(e) => Err(e),
                };
                match started {
                    Ok(watch) => self.endpoints.borrow_mut().entry(probe).or_insert(Rc::new(watch)).clone(),
                    Err(e) => return Sample::fail(error_chain(&e)),
                }
            }
        };
        watch.sample(min_ready)
    }
}
