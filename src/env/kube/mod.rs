//! The `kube` environment: a Kubernetes cluster, through its API, from a context of the
//! user's kubeconfig. It drains a node (`node_drain`), deletes pods (`pod_kill`,
//! `pod_delete`), scales a workload (`scale`), cuts pods off (`network_blackhole`), surges
//! traffic (`traffic_surge`) and fails a CloudNativePG Cluster's primary over (`db_failover`,
//! `failover`); probes ask the API (`deployment`, `endpoints` from a watch), reach a database
//! inside the cluster through a port-forward (`sql`, `write_ledger`: `forward`), reach the
//! system from a probe pod (`http` with `in_cluster`) or from this machine (`http`, `slo`,
//! `tcp`, `command`, `prometheus`, `alert`), and steps run on it.
//!
//! [`KubeEnv`] holds the drill's state in one `Inner`, shared with the fault guard so that it
//! can revert after the environment moved on; each seam is a module of its own: `connect`
//! (kubeconfig, context, no SDK retries), `access` (the permissions a fault needs, asked of
//! the API server before anything changes; which pods a drain may evict), `drain` (cordon,
//! evictions, uncordon), `pods` (`pod_kill`, `pod_delete`), `scale` (a workload's replicas),
//! `netpol` (`network_blackhole`: a deny NetworkPolicy, confirmed from a probe pod), `surge`
//! and `workers` (`traffic_surge`, from this machine or by worker pods), `steps` (kubectl-shaped
//! steps), `step_kubeconfig` (what `run:` steps get), `evidence` and `plan`. Every change is
//! journalled before it is made ([`crate::journal`]), and every answer of the API server to a
//! change is kept as the drill's evidence and as a timeline event at its time
//! ([`Environment::answers`]).

pub mod access;
pub mod connect;
pub mod created;
pub mod drain;
pub mod endpoints;
mod error;
pub mod evidence;
pub mod exec;
pub mod failover;
pub mod forward;
pub mod netpol;
pub mod patroni;
pub mod plan;
pub mod pods;
pub mod probe_pod;
mod probes;
pub mod scale;
pub mod step_kubeconfig;
mod steps;
pub mod surge;
pub mod workers;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use kube::Client;

pub use error::{Answer, KubeError};

use super::{Answered, EnvError, Environment, Evidence, FaultGuard, Sample};
use crate::journal::{Begin, Journal, Undo, FORMAT};
use crate::scenario::{
    BlastRadiusExceeded, Check, FailoverMode, Fault, KubeCluster, Probe, Problem, ResolvedStep, Scenario, StepAction,
};
use crate::text::error_chain;
use crate::word::EnvironmentKind;

/// The source of the evidence that says what the API server answered.
pub const API_EVIDENCE: &str = "kube API";

/// A Kubernetes cluster; see the module docs.
pub struct KubeEnv {
    inner: Rc<Inner>,
}

/// What the fault guard shares with the environment.
struct Inner {
    cluster: KubeCluster,
    /// The scenario's fault.
    fault: Fault,
    /// What the fault and the probes need, asked for in `prepare`, before steady state.
    needed: Vec<access::Permission>,
    scenario: String,
    path: PathBuf,
    journal_dir: PathBuf,
    run_id: String,
    /// The client: given (tests), or connected to the scenario's context in `prepare`.
    client: RefCell<Option<Client>>,
    journal: RefCell<Option<Journal>>,
    /// What the API server answered to each change, with when, in order: the evidence.
    answers: RefCell<Vec<String>>,
    /// The answers to changes, with when they came: timeline events.
    timed: RefCell<Vec<Answered>>,
    /// Nodes this drill drained.
    drained: RefCell<Vec<String>>,
    /// `max_blast_radius`: the most pods a fault may evict.
    max_blast_radius: Option<u32>,
    /// The `slo` probes' steady load and the traffic surges, sent from this machine.
    loads: crate::env::load::Loads,
    /// A surge's Deployment, its replicas read each second until the drill ends.
    scale_out: RefCell<Option<surge::ScaleOut>>,
    /// Whether an `http` probe is sampled from inside the cluster (`in_cluster`).
    in_cluster_probes: bool,
    /// How long a probe pod for the whole drill may live: the kubelet ends it after that,
    /// should firedrill die first.
    probe_lifetime: Duration,
    /// The probe pod `http` probes `in_cluster` are sampled from, and its journal entry.
    probe_pod: RefCell<Option<(u64, String)>>,
    /// A surge run by worker pods in the cluster, and the journal entry of their Job.
    worker_surge: RefCell<Option<(u64, workers::WorkerSurge)>>,
    /// When `prepare` began: the start of the window the evidence covers.
    started: std::cell::Cell<Option<jiff::Timestamp>>,
    /// The pods the drains evicted (as they were before), whose workloads' logs are evidence.
    targets: RefCell<Vec<k8s_openapi::api::core::v1::Pod>>,
    /// The kubeconfig `run:` steps get, written in `prepare`.
    step_kubeconfig: RefCell<Option<step_kubeconfig::StepKubeconfig>>,
    /// The watches of the `endpoints` probes, by probe, started at their first sample.
    endpoints: RefCell<std::collections::HashMap<usize, Rc<endpoints::EndpointsWatch>>>,
    /// The port-forwards of the `sql` and `write_ledger` probes, by Service, opened at first use.
    forwards: RefCell<std::collections::HashMap<forward::ServiceTarget, Rc<forward::ServiceForward>>>,
    /// The write ledgers, by probe.
    ledgers: RefCell<std::collections::HashMap<usize, Rc<crate::probe::ledger::Ledger>>>,
    /// The reads of a failed-over Cluster's primary, from its fault on.
    primary: RefCell<Option<failover::PrimaryWatch>>,
    /// The probes that keep state between samples: `dns`, pooled `sql`.
    held: crate::probe::held::HeldProbes,
}

impl KubeEnv {
    /// An environment for `scenario` on `cluster`; `run_id` is what firedrill's annotations
    /// name, and the journal is written under `journal_dir`.
    pub fn new(cluster: KubeCluster, scenario: &Scenario, run_id: &str, journal_dir: PathBuf) -> Self {
        let inner = Inner {
            needed: access::needed_by_scenario(&cluster, scenario),
            cluster,
            fault: scenario.fault.clone(),
            scenario: scenario.name.clone(),
            path: scenario.path.clone(),
            journal_dir,
            run_id: run_id.into(),
            client: RefCell::default(),
            journal: RefCell::default(),
            answers: RefCell::default(),
            timed: RefCell::default(),
            drained: RefCell::default(),
            max_blast_radius: scenario.max_blast_radius,
            loads: Default::default(),
            scale_out: RefCell::default(),
            worker_surge: RefCell::default(),
            // The drill's longest: its steady state, its deadline, and ten minutes to spare.
            probe_lifetime: scenario.steady_state.timeout.0 + scenario.deadline.0 + Duration::from_secs(600),
            probe_pod: RefCell::default(),
            in_cluster_probes: scenario.probes.iter().any(|p| matches!(p.check, Check::Http { in_cluster: true, .. })),
            started: std::cell::Cell::default(),
            targets: RefCell::default(),
            step_kubeconfig: RefCell::default(),
            endpoints: RefCell::default(),
            forwards: RefCell::default(),
            ledgers: RefCell::default(),
            primary: RefCell::default(),
            held: Default::default(),
        };
        KubeEnv { inner: Rc::new(inner) }
    }

    /// Uses `client` instead of connecting to the scenario's context: for tests, whose API
    /// server is a mock or a fake.
    pub fn with_client(self, client: Client) -> Self {
        *self.inner.client.borrow_mut() = Some(client);
        self
    }

    /// The id firedrill's annotations carry (`firedrill.io/run`).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }
}

impl Inner {
    fn client(&self) -> Result<Client, KubeError> {
        self.client.borrow().clone().ok_or(KubeError::NotConnected)
    }

    /// Keeps what the API answered, stamped with the wall clock.
    fn said(&self, what: String) {
        let at = jiff::Timestamp::now().strftime("%H:%M:%S%.3f");
        self.answers.borrow_mut().push(format!("{at} {what}"));
    }

    /// Keeps the API's answer to a change (a cordon, an eviction, its dry run) in the
    /// evidence and as a timeline event at its time.
    fn answered(&self, what: String) {
        let at = tokio::time::Instant::now();
        self.timed.borrow_mut().push(Answered { at, source: API_EVIDENCE.into(), text: what.clone() });
        self.said(what);
    }

    /// Connects (unless given a client), opens the journal, and asks whether the context's
    /// user may do what the fault needs: a drill missing a permission fails here, before
    /// steady state, with every missing one listed.
    async fn prepare(&self) -> Result<(), KubeError> {
        self.started.set(Some(jiff::Timestamp::now()));
        if self.client.borrow().is_none() {
            let client = connect::connect(&self.cluster.context).await?;
            *self.client.borrow_mut() = Some(client);
        }
        let begin = Begin {
            format: FORMAT,
            run: self.run_id.clone(),
            scenario: self.scenario.clone(),
            path: self.path.clone(),
            environment: EnvironmentKind::Kube,
            started: jiff::Timestamp::now(),
            pid: std::process::id(),
        };
        *self.journal.borrow_mut() = Some(Journal::create(&self.journal_dir, begin)?);
        access::preflight(&self.client()?, &self.needed).await?;
        *self.step_kubeconfig.borrow_mut() =
            Some(step_kubeconfig::StepKubeconfig::write(&self.cluster.context, &self.run_id)?);
        let listed = self.needed.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        self.said(format!("context {}: the user may {listed}", self.cluster.context));
        if self.in_cluster_probes {
            let name = format!("firedrill-{}-probe", self.run_id);
            let entry = self.start_probe(&self.cluster.namespace, &name, probe_pod::Role::Probe).await?;
            *self.probe_pod.borrow_mut() = Some((entry, name));
        }
        Ok(())
    }

    fn journal_apply(&self, change: &str, undo: Undo) -> Result<u64, KubeError> {
        let journal = self.journal.borrow();
        Ok(journal.as_ref().ok_or(KubeError::NoJournal)?.apply(change, undo, None)?)
    }

    fn journal_done(&self, entry: u64, by: &str) -> Result<(), KubeError> {
        let journal = self.journal.borrow();
        Ok(journal.as_ref().ok_or(KubeError::NoJournal)?.done(entry, by)?)
    }

    /// Drains `node`: refused when it carries pods outside the scenario's namespaces, more
    /// pods than `max_blast_radius`, or a pod whose eviction's server-side dry run is refused
    /// for another reason than a PodDisruptionBudget; then cordoned (journalled first) unless
    /// it already was, and every pod on it evicted. In effect once every eviction was accepted (or its pod
    /// found gone). When one fails, the node is uncordoned again before the error is returned
    /// (should that fail too, its journal entry stays open, and the teardown says so);
    /// evictions made stay made. The pods are listed before the cordon, so that a refusal
    /// changes nothing: a pod scheduled onto the node between the two is not evicted.
    async fn drain(&self, node: &str, grace: Duration, deadline: Duration) -> Result<Option<Cordon>, KubeError> {
        if self.drained.borrow().iter().any(|n| n == node) {
            return Err(KubeError::AlreadyDrained { node: node.into() });
        }
        let client = self.client()?;
        let found = drain::node(&client, node).await?;
        let pods = drain::pods_on(&client, node).await?;
        let (left, evicted): (Vec<_>, Vec<_>) = pods.into_iter().partition(|p| access::left_on_node(p).is_some());
        let outside = access::outside(&evicted, &self.cluster.namespaces);
        if !outside.is_empty() {
            return Err(KubeError::OutsideNamespaces {
                node: node.into(),
                namespaces: self.cluster.namespaces.clone(),
                pods: outside,
            });
        }
        if let Some(limit) = self.max_blast_radius {
            let affected = evicted.iter().map(access::pod_name).collect();
            if let Some(refused) = BlastRadiusExceeded::check(&self.fault, affected, limit) {
                return Err(refused.into());
            }
        }
        for pod in &left {
            let why = access::left_on_node(pod).unwrap_or_default();
            self.said(format!("{} stays on node {node}: {why}", access::pod_name(pod)));
        }
        let answered = |what: String| self.answered(what);
        for pod in &evicted {
            drain::dry_run_evict(&client, pod, grace, &answered).await?;
        }
        let cordon = if found.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
            self.said(format!("node {node} was already cordoned: firedrill leaves it so"));
            None
        } else {
            let undo = Undo::Uncordon { context: self.cluster.context.clone(), node: node.into() };
            let entry = self.journal_apply(&format!("cordon node {node}"), undo)?;
            if let Err(e) = drain::cordon(&client, node, &self.run_id).await {
                self.answered(format!("cordon node {node}: {}", error_chain(&e)));
                let _ = self.journal_done(entry, "not made: the call failed");
                return Err(e);
            }
            self.answered(format!("node {node} cordoned (firedrill.io/run={})", self.run_id));
            Some(Cordon { entry, node: node.into() })
        };
        self.targets.borrow_mut().extend(evicted.iter().cloned());
        let evictions = evicted.iter().map(|pod| drain::evict(&client, pod, grace, deadline, &answered));
        let failed: Vec<KubeError> =
            futures_util::future::join_all(evictions).await.into_iter().filter_map(Result::err).collect();
        let Some(first) = failed.into_iter().next() else {
            self.drained.borrow_mut().push(node.into());
            return Ok(cordon);
        };
        if let Some(c) = &cordon {
            let _ = self.uncordon(c, "the drain failed; uncordoned").await;
        }
        Err(first)
    }

    /// Uncordons a node this drill cordoned, and closes its journal entry.
    async fn uncordon(&self, cordon: &Cordon, by: &str) -> Result<(), KubeError> {
        let done = drain::uncordon(&self.client()?, &cordon.node, &self.run_id).await;
        match &done {
            Ok(what) => self.answered(what.clone()),
            Err(e) => self.answered(format!("uncordon node {}: {}", cordon.node, error_chain(e))),
        }
        self.journal_done(cordon.entry, &format!("{by}: {}", done?))?;
        self.drained.borrow_mut().retain(|n| *n != cordon.node);
        Ok(())
    }

    /// Starts a surge (from this machine, or by worker pods), and the reading of its
    /// Deployment's replicas. The surge from this machine, by number, to stop it.
    async fn surge(&self, fault: &Fault) -> Result<Option<usize>, KubeError> {
        let Fault::TrafficSurge {
            url: Some(url),
            multiplier,
            rate,
            duration,
            deployment,
            workers,
            image,
            start_within,
        } = fault
        else {
            return Err(KubeError::Unsupported { kind: fault.kind() });
        };
        if let Some(name) = deployment {
            let started = surge::ScaleOut::start(self.client()?, &self.cluster.namespace, name);
            self.scale_out.borrow_mut().get_or_insert(started);
        }
        let plan = self.loads.surge_plan(url, *multiplier, *rate, duration.0)?;
        let for_ = crate::text::secs(duration.0.as_secs_f64());
        let (Some(workers), Some(image)) = (workers, image) else {
            let surge = self.loads.surge(&plan)?;
            self.answered(format!("traffic surge on {url} for {for_}, from this machine"));
            return Ok(Some(surge));
        };
        let start_within = start_within.map_or(workers::START_WITHIN, |d| d.0);
        let start_at = jiff::Timestamp::now() + start_within;
        let job = workers::job(&self.run_id, image, &plan, *workers, start_at, start_within);
        let namespace = &self.cluster.namespace;
        let name = job.metadata.name.clone().unwrap_or_default();
        let entry = self.journal_created("Job", namespace, &name)?;
        match workers::WorkerSurge::start(&self.client()?, namespace, job, plan, *workers, start_at).await {
            Ok(started) => {
                self.answered(format!(
                    "traffic surge on {url} for {for_}, by {workers} worker pods of job {namespace}/{name}"
                ));
                *self.worker_surge.borrow_mut() = Some((entry, started));
                Ok(None)
            }
            Err(e) => {
                self.answered(format!("traffic surge by job {namespace}/{name}: {}", error_chain(&e)));
                let _ = self.remove(entry, "Job", namespace, &name, "the surge did not start").await;
                Err(e)
            }
        }
    }

    /// Stops the surge the worker pods run, waiting for their last lines, and deletes their Job
    /// (its pods with it).
    async fn stop_workers(&self) -> Result<(), KubeError> {
        let Some((entry, mut surge)) = self.worker_surge.borrow_mut().take() else { return Ok(()) };
        surge.stop(workers::STOP_WITHIN).await;
        let removed = self.remove(entry, "Job", surge.namespace(), surge.job(), "reverted by the drill").await;
        *self.worker_surge.borrow_mut() = Some((entry, surge));
        removed
    }

    /// Stops the load and the watches, removes the probe pod and the steps' kubeconfig, and
    /// closes the journal: kept, and said, when a change is left in it (which is said before a
    /// kubeconfig left behind).
    async fn teardown(&self) -> Result<(), KubeError> {
        self.loads.end();
        self.scale_out.borrow_mut().take();
        self.endpoints.borrow_mut().clear();
        self.forwards.borrow_mut().clear();
        self.primary.borrow_mut().take();
        let probe_pod = self.probe_pod.borrow_mut().take();
        if let Some((entry, name)) = probe_pod {
            self.remove(entry, "Pod", &self.cluster.namespace, &name, "the drill is over").await?;
        }
        let removed = self.step_kubeconfig.borrow_mut().take().map_or(Ok(()), step_kubeconfig::StepKubeconfig::remove);
        if let Some(journal) = self.journal.borrow_mut().take() {
            if let Some(path) = journal.close()? {
                return Err(KubeError::LeftInJournal { path, run: self.run_id.clone() });
            }
        }
        removed
    }
}

/// A node this drill cordoned, and its journal entry.
#[derive(Debug)]
struct Cordon {
    entry: u64,
    node: String,
}

/// A drain in effect: its revert uncordons the node, if firedrill cordoned it.
pub struct KubeGuard {
    inner: Rc<Inner>,
    /// Taken once reverted, so a second revert does nothing.
    cordon: Option<Cordon>,
    /// The surge this fault started from this machine, stopped by the revert.
    surge: Option<usize>,
    /// Whether this fault's surge runs in worker pods, stopped by the revert.
    workers: bool,
    /// The scale a `scale` made; taken once reverted.
    scaled: Option<scale::Scaled>,
    /// The policy a `network_blackhole` made; taken once reverted.
    blackhole: Option<netpol::Blackhole>,
}

impl FaultGuard for KubeGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        if let Some(surge) = self.surge.take() {
            self.inner.loads.stop_surge(surge);
        }
        if self.workers {
            self.inner.stop_workers().await.map_err(|e| EnvError::Revert(Box::new(e)))?;
            self.workers = false;
        }
        if let Some(scaled) = &self.scaled {
            self.inner.unscale(scaled, "reverted by the drill").await.map_err(|e| EnvError::Revert(Box::new(e)))?;
            self.scaled = None;
        }
        if let Some(cut) = &self.blackhole {
            self.inner.unblackhole(cut, "reverted by the drill").await.map_err(|e| EnvError::Revert(Box::new(e)))?;
            self.blackhole = None;
        }
        let Some(cordon) = &self.cordon else { return Ok(()) };
        self.inner.uncordon(cordon, "reverted by the drill").await.map_err(|e| EnvError::Revert(Box::new(e)))?;
        self.cordon = None;
        Ok(())
    }
}

impl Environment for KubeEnv {
    type Guard = KubeGuard;

    fn virtual_time(&self) -> bool {
        false
    }

    fn check(&self, scenario: &Scenario) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, probe) in scenario.probes.iter().enumerate() {
            if !supported(&probe.check) {
                let why = format!(
                    "probe `{}`: `{}` probes are not supported in kube yet (deployment and endpoints are, sql (pooled or not) and write_ledger through a port-forward, http from inside the cluster, and http, slo, tcp, dns, command, prometheus and alert from this machine)",
                    probe.name,
                    probe.check.kind()
                );
                problems.push(Problem::new(scenario.positions.probes[i], why));
            }
        }
        problems.extend(crate::env::load::surge_problems(scenario, |_| None));
        for (i, probe) in scenario.probes.iter().enumerate() {
            let (Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. }) = &probe.check else { continue };
            let url_to_service = dsn.starts_with("postgres") && dsn.contains(".svc");
            if url_to_service {
                let why = format!(
                    "probe `{}`: a Service is port-forwarded to from a `key=value` connection string (`host=NAME.NAMESPACE.svc port=5432 ...`), not a URL",
                    probe.name
                );
                problems.push(Problem::new(scenario.positions.probes[i], why));
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let why = match &step.action {
                StepAction::Run { container: Some(_), .. } => {
                    "`container` is Docker's: in kube a `run` step runs on this machine"
                }
                StepAction::Start(_) => "`start` starts a Docker standby container; kube has none",
                _ => continue,
            };
            problems.push(Problem::new(scenario.positions.steps[i], format!("step `{}`: {why}", step.name)));
        }
        problems.extend(steps::problems(&self.inner.cluster, scenario));
        problems
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        self.inner.prepare().await.map_err(|e| EnvError::Prepare(Box::new(e)))
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        use crate::probe;
        if let Some(sample) = super::here::sample(probe, spec, &self.inner.loads, &self.inner.held).await {
            return sample;
        }
        match &spec.check {
            Check::Http { url, method, expect_status, body_contains, max_latency, in_cluster: true, .. } => {
                let inner = &self.inner;
                let (Ok(client), Some((_, pod))) = (inner.client(), inner.probe_pod.borrow().clone()) else {
                    return Sample::fail("the probe pod is not running");
                };
                let check = probes::InCluster {
                    url,
                    post: *method == crate::scenario::HttpMethod::Post,
                    expect_status: *expect_status,
                    body_contains: body_contains.as_deref(),
                    max_latency: max_latency.map(|d| d.0),
                    timeout: spec.timeout().0,
                };
                probes::http_in_cluster(&client, &inner.cluster.namespace, &pod, &check).await
            }
            Check::Sql { dsn, query, pool } => match self.inner.dsn(dsn).await {
                Ok(dsn) if *pool => self.inner.held.sql(probe, &spec.name, &dsn, query).await,
                Ok(dsn) => probe::sql(&dsn, query).await,
                Err(e) => Sample::fail(error_chain(&e)),
            },
            Check::Deployment { deployment, namespace, min_ready } => {
                let namespace = namespace.as_deref().unwrap_or(&self.inner.cluster.namespace);
                match self.inner.client() {
                    Ok(client) => probes::deployment(&client, namespace, deployment, *min_ready).await,
                    Err(e) => Sample::fail(e.to_string()),
                }
            }
            Check::Endpoints { service, namespace, min_ready } => {
                let namespace = namespace.as_deref().unwrap_or(&self.inner.cluster.namespace);
                self.inner.endpoints_sample(probe, namespace, service, *min_ready).await
            }
            other => Sample::fail(KubeError::UnsupportedProbe { kind: other.kind() }.to_string()),
        }
    }

    async fn write(&self, probe: usize, spec: &Probe, seq: u64) -> Result<(), EnvError> {
        let written = async {
            let (ledger, dsn) = self.inner.ledger(probe, spec).await?;
            Ok::<_, KubeError>(ledger.write(&dsn, seq).await?)
        };
        written.await.map_err(|e| EnvError::Write(Box::new(e)))
    }

    async fn read_back(&self, probe: usize, spec: &Probe, acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        let read = async {
            let (ledger, dsn) = self.inner.ledger(probe, spec).await?;
            Ok::<_, KubeError>(ledger.missing(&dsn, acked).await?)
        };
        read.await.map_err(|e| EnvError::ReadBack(Box::new(e)))
    }

    async fn inject(&self, fault: &Fault) -> Result<KubeGuard, EnvError> {
        let mut guard = KubeGuard {
            inner: self.inner.clone(),
            cordon: None,
            scaled: None,
            blackhole: None,
            surge: None,
            workers: false,
        };
        let inner = &self.inner;
        let made = match fault {
            Fault::NodeDrain { node, grace_period, deadline } => {
                let deadline = deadline.map_or(drain::DEFAULT_DEADLINE, |d| d.0);
                inner.drain(node, grace_period.0, deadline).await.map(|c| guard.cordon = c)
            }
            Fault::TrafficSurge { workers, .. } => inner.surge(fault).await.map(|s| {
                guard.surge = s;
                guard.workers = workers.is_some();
            }),
            Fault::PodKill { selector, namespace, count } => {
                inner.delete_pods(selector, namespace.as_deref(), *count, Duration::ZERO).await
            }
            Fault::PodDelete { selector, namespace, count, grace_period } => {
                inner.delete_pods(selector, namespace.as_deref(), *count, grace_period.0).await
            }
            Fault::Scale { workload, namespace, replicas } => {
                inner.scale(workload, namespace.as_deref(), *replicas).await.map(|s| guard.scaled = Some(s))
            }
            Fault::NetworkBlackhole { target, peer, direction, namespace, confirm: Some(confirm), .. } => inner
                .blackhole(target, peer.as_deref(), direction.unwrap_or_default(), namespace.as_deref(), confirm)
                .await
                .map(|b| guard.blackhole = Some(b)),
            Fault::DbFailover { mode, cluster: Some(cluster), .. } => inner.fail_over(cluster, *mode).await,
            Fault::DbFailover { mode, patroni: Some(patroni), .. } => inner.fail_over_patroni(patroni, *mode).await,
            other => Err(KubeError::Unsupported { kind: other.kind() }),
        };
        made.map_err(|e| EnvError::Inject(Box::new(e)))?;
        Ok(guard)
    }

    async fn run_step(&self, _index: usize, step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        let ran: Result<Option<String>, KubeError> = match &step.action {
            StepAction::Run { argv, container: None } => {
                let kubeconfig = self.inner.step_kubeconfig.borrow().as_ref().map(|k| k.value().to_owned());
                let vars: Vec<(&str, &std::ffi::OsStr)> =
                    kubeconfig.iter().map(|value| ("KUBECONFIG", value.as_os_str())).collect();
                crate::process::run_with(argv, &vars).await.map_err(Into::into)
            }
            StepAction::Manual(text) => super::confirm_manual(&step.name, text).await.map_err(Into::into),
            StepAction::Kube(action) => self.inner.kube_step(action).await,
            // Refused by `check`.
            StepAction::Run { .. } | StepAction::Start(_) => Ok(None),
        };
        ran.map_err(|e| EnvError::Step(Box::new(e)))
    }

    async fn evidence(&self) -> Vec<Evidence> {
        let inner = &self.inner;
        let mut kept = Vec::new();
        let answers = inner.answers.borrow().join("\n");
        if !answers.is_empty() {
            kept.push(Evidence { source: API_EVIDENCE.into(), text: answers, truncated: false });
        }
        kept.extend(inner.scale_out.borrow().as_ref().map(surge::ScaleOut::stop));
        kept.extend(inner.worker_surge.borrow().as_ref().map(|(_, surge)| surge.evidence()));
        kept.extend(inner.loads.evidence());
        kept.extend(inner.held.evidence());
        // What the cluster says, once the drill touched it.
        let (Ok(client), Some(since)) = (inner.client(), inner.started.get()) else { return kept };
        let nodes = drain::drained_nodes(&inner.fault);
        let targets = inner.targets.borrow().clone();
        let scope = evidence::Scope { namespaces: &inner.cluster.namespaces, since, targets: &targets, nodes: &nodes };
        kept.extend(evidence::collect(&client, &scope).await);
        kept
    }

    fn answers(&self) -> Vec<Answered> {
        let mut answers = self.inner.timed.take();
        answers.extend(self.inner.endpoints.borrow().values().flat_map(|w| w.take_changes()));
        answers.extend(self.inner.forwards.borrow().values().flat_map(|f| f.take_changes()));
        answers.extend(self.inner.primary.borrow().iter().flat_map(|p| p.take_changes()));
        answers.extend(super::here::held_changes(&self.inner.held));
        answers.sort_by_key(|a| a.at);
        answers
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        let removed = self.inner.remove_ledgers().await;
        self.inner.teardown().await.and(removed).map_err(|e| EnvError::Teardown(Box::new(e)))
    }
}

impl KubeEnv {
    /// What a drill would touch, from the scenario alone: the cluster is not asked (the
    /// permissions and the pods on a node are found when the drill prepares and injects).
    pub fn dry_run(&self, scenario: &Scenario) -> super::dry_run::DryRun {
        use super::dry_run::{each_fault, DryRun, TouchKind};
        let inner = &self.inner;
        let cluster = &inner.cluster;
        let mut run = DryRun::default();
        run.touch(TouchKind::Journal, format!("the revert journal in {}", inner.journal_dir.display()));
        for fault in each_fault(&scenario.fault) {
            let needed =
                access::needed(cluster, fault, &[]).iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            let how = match fault {
                Fault::NodeDrain { .. } => "cordon, then evict every pod on it but DaemonSet and mirror pods",
                Fault::TrafficSurge { workers: None, .. } => {
                    "load its URL from this machine on top of the slo probes' load; read the Deployment's and its autoscalers' replicas each second"
                }
                Fault::TrafficSurge { workers: Some(_), .. } => {
                    "create a Job of worker pods (labelled with the run) that load its URL from the cluster, follow their logs, delete the Job at the revert"
                }
                Fault::PodKill { .. } | Fault::PodDelete { .. } => {
                    "delete the running pods the selector picks, each with its uid as a precondition; their controller recreates them"
                }
                Fault::Scale { .. } => "read the scale, journal it, patch spec.replicas; the revert sets the prior count",
                Fault::NetworkBlackhole { .. } => {
                    "start a probe pod, create a deny NetworkPolicy (labelled with the run), confirm that the `confirm` URL fails from the probe pod, remove the probe pod; the revert deletes the policy"
                }
                Fault::DbFailover { mode: FailoverMode::Crash, patroni: Some(_), .. } => {
                    "read the leader from Patroni's GET /cluster through a port-forward, delete its pod (grace period 0, its uid a precondition); nothing to revert"
                }
                Fault::DbFailover { mode: FailoverMode::Crash, .. } => {
                    "delete the primary's pod (grace period 0, its uid a precondition); nothing to revert"
                }
                Fault::DbFailover { mode: FailoverMode::Graceful, patroni: Some(_), .. } => {
                    "read the leader from Patroni's GET /cluster through a port-forward, POST /switchover to a healthy replica; not switched back"
                }
                Fault::DbFailover { mode: FailoverMode::Graceful, .. } => {
                    "ask the operator to switch over to a Ready replica (status.targetPrimary); not switched back"
                }
                _ => "not supported in kube",
            };
            run.touch(
                TouchKind::Fault,
                format!(
                    "{} in context {} (namespaces {}): {how}; needs: {needed}",
                    fault.describe(),
                    cluster.context,
                    cluster.namespaces.join(", ")
                ),
            );
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let what = match &step.action {
                StepAction::Run { argv, .. } => format!(
                    "runs `{}` on this machine, its KUBECONFIG setting context {} before the user's files",
                    argv.join(" "),
                    cluster.context
                ),
                StepAction::Manual(text) => format!("a person confirms: {text}"),
                StepAction::Start(name) => format!("starts {name} (refused: kube has no standby containers)"),
                StepAction::Kube(action) => format!("{}, through the API", action.describe()),
            };
            run.touch(TouchKind::Step, format!("{} `{}`: {what}", i + 1, step.name));
        }
        for probe in &scenario.probes {
            run.touch(TouchKind::Probe, format!("{}: {}", probe.name, probe.check.target()));
        }
        run
    }
}

/// Whether the kube environment can take a probe's samples.
fn supported(check: &Check) -> bool {
    matches!(
        check,
        Check::Http { .. }
            | Check::Slo { .. }
            | Check::Tcp { .. }
            | Check::Command { .. }
            | Check::Prometheus { .. }
            | Check::Alert { .. }
            | Check::Deployment { .. }
            | Check::Endpoints { .. }
            | Check::Sql { .. }
            | Check::Dns { .. }
            | Check::WriteLedger { .. }
    )
}

/// Whether a journalled Kubernetes change is still in effect, and if not, why: for
/// `firedrill recover`.
pub async fn in_effect(run: &str, undo: &Undo) -> Result<Result<(), String>, KubeError> {
    match undo {
        Undo::Uncordon { context, node } => drain::cordoned_by(&connect::connect(context).await?, node, run).await,
        Undo::RestoreReplicas { context, namespace, workload, set, .. } => {
            scale::scaled_by_us(&connect::connect(context).await?, namespace, workload, *set).await
        }
        Undo::DeleteKubeObject { context, namespace, kind, name } => {
            created::created_by(&connect::connect(context).await?, namespace, kind, name, run).await
        }
        other => Ok(Err(format!("{other:?} is not a Kubernetes change"))),
    }
}

/// Undoes a journalled Kubernetes change without the drill that made it (`firedrill
/// recover`): what it found and did.
pub async fn undo(run: &str, undo: &Undo) -> Result<String, KubeError> {
    match undo {
        Undo::Uncordon { context, node } => drain::uncordon(&connect::connect(context).await?, node, run).await,
        Undo::RestoreReplicas { context, namespace, workload, before, set } => {
            scale::restore(&connect::connect(context).await?, namespace, workload, *before, *set).await
        }
        Undo::DeleteKubeObject { context, namespace, kind, name } => {
            let client = connect::connect(context).await?;
            let done = created::delete_object(&client, namespace, kind, name, run).await?;
            let orphans = created::sweep(&client, namespace, run).await?;
            Ok(match orphans.is_empty() {
                true => done,
                false => format!("{done}; found by the run's label: {}", orphans.join("; ")),
            })
        }
        other => Ok(format!("nothing to do: {other:?} is not a Kubernetes change")),
    }
}
