//! The `sim` environment: a seeded model of a service stack, run in virtual time.
//!
//! The main type is [`SimEnv`]; the stack it models is [`StackModel`]: app replicas on nodes behind
//! a load balancer, a primary database with an asynchronous replica, an object store and an
//! autoscaler. The model's state is a function of virtual time and of the actions applied to
//! it (inject, revert, procedure steps), never of how often it is probed, so a seed gives the
//! same drill whatever the probes' intervals or the order they are polled in.

use std::cell::RefCell;

use tokio::time::{sleep, Duration, Instant};

use super::{EnvError, Environment, FaultGuard, Sample};
use crate::dist::Dist;
use crate::rng::Rng;
use crate::scenario::{
    BlockMode, Check, Dependency, Effect, FailoverMode, Fault, Probe, Problem, ResolvedStep, Scenario, SimStack,
    StepAction,
};

/// Latency of an unloaded request.
const BASE_LATENCY: f64 = 0.020;
/// Latency of a request that is served while the app is saturated.
const SATURATED_LATENCY: f64 = 2.0;
/// How long a request to a blackholed dependency hangs before the app's own client gives up.
const HANG: f64 = 30.0;

/// One app replica.
#[derive(Clone, Debug)]
struct Replica {
    node: usize,
    /// Virtual time it passes readiness (`INFINITY` while waiting for a node).
    ready_at: f64,
    /// Whether it still exists (an evicted replica is gone).
    alive: bool,
}

/// The simulated stack at a point in virtual time.
#[derive(Clone, Debug)]
pub struct StackModel {
    stack: SimStack,
    rng: Rng,
    now: f64,
    replicas: Vec<Replica>,
    /// Replacements waiting for a schedulable node.
    unscheduled: u32,
    cordoned: Vec<bool>,
    surge: Option<(f64, f64)>,
    next_autoscale: f64,
    /// When an automatic failover will have promoted the replica.
    pending_promotion: Option<f64>,
    db: Db,
    store: Store,
}

#[derive(Clone, Debug)]
struct Db {
    /// The primary is down and no replica has been promoted.
    down_since: Option<f64>,
    /// The app reaches a primary again from this time on.
    app_ok_at: f64,
    /// Acknowledged writes lost by a crash: records written after this time (and before the
    /// crash) had not reached the replica.
    lost_window: Option<(f64, f64)>,
    /// Times each ledger record was acknowledged, by record number, per ledger probe.
    acked: Vec<Vec<(u64, f64)>>,
}

#[derive(Clone, Debug)]
struct Store {
    blocked: Option<BlockMode>,
    /// The app's object requests succeed again from this time on (client retry backoff).
    app_ok_at: f64,
}

impl StackModel {
    /// The stack at time 0, every replica ready.
    pub fn new(stack: SimStack, seed: u64) -> Self {
        let mut model = StackModel {
            rng: Rng::new(0),
            now: 0.0,
            replicas: Vec::new(),
            unscheduled: 0,
            cordoned: vec![false; stack.nodes.max(1) as usize],
            surge: None,
            next_autoscale: 0.0,
            pending_promotion: None,
            db: Db { down_since: None, app_ok_at: 0.0, lost_window: None, acked: Vec::new() },
            store: Store { blocked: None, app_ok_at: 0.0 },
            stack,
        };
        model.reset(seed);
        model
    }

    /// Back to time 0 with a new seed, keeping allocations: a Monte Carlo run costs no
    /// allocation once the first has sized the buffers.
    pub fn reset(&mut self, seed: u64) {
        let nodes = self.cordoned.len();
        self.rng = Rng::derive(seed, 0);
        self.now = 0.0;
        self.replicas.clear();
        self.replicas.extend((0..self.stack.replicas as usize).map(|i| Replica {
            node: i % nodes,
            ready_at: 0.0,
            alive: true,
        }));
        self.unscheduled = 0;
        self.cordoned.fill(false);
        self.surge = None;
        self.next_autoscale = self.stack.autoscaler.period.as_secs_f64();
        self.pending_promotion = None;
        self.db.down_since = None;
        self.db.app_ok_at = 0.0;
        self.db.lost_window = None;
        self.db.acked.iter_mut().for_each(Vec::clear);
        self.store = Store { blocked: None, app_ok_at: 0.0 };
    }

    /// Moves virtual time forward to `t`, running on the way, in time order, what the stack
    /// does by itself: the autoscaler's evaluations and an automatic failover.
    pub fn advance(&mut self, t: f64) {
        let period = self.stack.autoscaler.period.as_secs_f64();
        let scaling = self.stack.autoscaler.enabled && period > 0.0;
        loop {
            let autoscale = if scaling { self.next_autoscale } else { f64::INFINITY };
            let promotion = self.pending_promotion.unwrap_or(f64::INFINITY);
            let next = autoscale.min(promotion);
            if next > t {
                break;
            }
            self.now = next;
            if promotion <= autoscale {
                self.promote();
            } else {
                self.autoscale();
                self.next_autoscale += period;
            }
        }
        self.now = self.now.max(t);
    }

    fn ready_replicas(&self) -> usize {
        self.replicas.iter().filter(|r| r.alive && r.ready_at <= self.now).count()
    }

    fn arrival_rate(&self) -> f64 {
        let base = self.stack.traffic.per_sec();
        match self.surge {
            Some((until, rate)) if self.now < until => rate,
            _ => base,
        }
    }

    /// How many replicas the autoscaler would add now.
    fn autoscale_wanted(&self) -> usize {
        let a = &self.stack.autoscaler;
        let capacity = self.stack.replica_capacity.per_sec();
        if !a.enabled || capacity <= 0.0 {
            return 0;
        }
        let desired = (self.arrival_rate() / (capacity * a.target_utilization)).ceil() as usize;
        let desired = desired.min(a.max_replicas as usize);
        let existing = self.replicas.iter().filter(|r| r.alive).count() + self.unscheduled as usize;
        desired.saturating_sub(existing)
    }

    fn autoscale(&mut self) {
        for _ in 0..self.autoscale_wanted() {
            self.start_replica(self.now);
        }
    }

    /// Starts one replica on the least-loaded schedulable node, scheduled after `from`.
    fn start_replica(&mut self, from: f64) {
        let Some(node) = self.least_loaded_node() else {
            self.unscheduled += 1;
            return;
        };
        let ready = from + self.stack.readiness.sample(&mut self.rng);
        self.replicas.push(Replica { node, ready_at: ready, alive: true });
    }

    fn least_loaded_node(&self) -> Option<usize> {
        (0..self.cordoned.len())
            .filter(|&n| !self.cordoned[n])
            .min_by_key(|&n| self.replicas.iter().filter(|r| r.alive && r.node == n).count())
    }

    fn db_reachable(&self) -> bool {
        self.db.down_since.is_none()
    }

    /// What a probe of this kind reaches in the stack; `None` for checks the model cannot
    /// answer (tcp, command).
    pub fn target_of(&self, check: &Check) -> Option<ProbeReach> {
        match check {
            Check::Http { url, .. } => {
                let path = url_path(url);
                let needs =
                    self.stack.endpoints.iter().find(|e| e.path == path).map(|e| e.needs.as_slice()).unwrap_or(&[]);
                Some(ProbeReach::App {
                    database: needs.contains(&Dependency::Database),
                    object_store: needs.contains(&Dependency::ObjectStore),
                })
            }
            Check::Sql { .. } | Check::WriteLedger { .. } => Some(ProbeReach::Database),
            Check::S3 { .. } => Some(ProbeReach::ObjectStore),
            Check::Tcp { .. }
            | Check::Dns { .. }
            | Check::Command { .. }
            | Check::Slo { .. }
            | Check::Prometheus { .. }
            | Check::Alert { .. }
            | Check::Deployment { .. }
            | Check::Endpoints { .. } => None,
        }
    }

    /// What a request to `target` gets now. With `shed`, a request to an overloaded app is
    /// shed with the probability of the overload, as a load balancer would; without, any
    /// overload is a failure (the steady view the Monte Carlo predictions take).
    fn answer(&self, target: ProbeReach, shed: Option<&mut Rng>) -> Answer {
        let (database, object_store) = match target {
            ProbeReach::Database => {
                return if self.db_reachable() {
                    Answer::Ok(0.002)
                } else {
                    Answer::Fail("connection refused: primary is down".into())
                };
            }
            ProbeReach::ObjectStore => {
                return match self.store.blocked {
                    Some(BlockMode::Blackhole) => Answer::Hang,
                    Some(BlockMode::Refuse) => Answer::Fail("connection refused".into()),
                    None => Answer::Ok(0.010),
                };
            }
            ProbeReach::App { database, object_store } => (database, object_store),
        };
        let ready = self.ready_replicas();
        if ready == 0 {
            return Answer::Fail("503 no healthy upstream".into());
        }
        let load = self.arrival_rate();
        let capacity = ready as f64 * self.stack.replica_capacity.per_sec();
        let utilization = if capacity > 0.0 { load / capacity } else { f64::INFINITY };
        let shed = match shed {
            Some(rng) => utilization > 1.0 && rng.chance(1.0 - 1.0 / utilization),
            None => utilization > 1.0,
        };
        if shed {
            return Answer::Fail("503 overloaded: request shed".into());
        }
        if database && (!self.db_reachable() || self.now < self.db.app_ok_at) {
            return Answer::Fail("500 database unavailable".into());
        }
        if object_store {
            match self.store.blocked {
                Some(BlockMode::Blackhole) => return Answer::Hang,
                Some(BlockMode::Refuse) => return Answer::Fail("502 object store: connection refused".into()),
                None if self.now < self.store.app_ok_at => {
                    return Answer::Fail("502 object store: client in retry backoff".into());
                }
                None => {}
            }
        }
        let latency = if utilization >= 1.0 {
            SATURATED_LATENCY
        } else {
            (BASE_LATENCY / (1.0 - utilization)).min(SATURATED_LATENCY)
        };
        Answer::Ok(latency)
    }

    /// Whether `target` answers now, overload counting as a failure.
    pub fn healthy(&self, target: ProbeReach) -> bool {
        matches!(self.answer(target, None), Answer::Ok(_))
    }

    /// The next time after now at which the stack changes by itself: a replica passes
    /// readiness, the autoscaler evaluates, a promotion completes, a client recovers from
    /// backoff, a surge ends. `INFINITY` when nothing is pending.
    pub fn next_change(&self) -> f64 {
        let now = self.now;
        let later = |t: f64| if t > now { t } else { f64::INFINITY };
        let mut next = self.pending_promotion.unwrap_or(f64::INFINITY);
        // An evaluation that would add nothing changes nothing; what it looks at (the arrival
        // rate, the replicas) only changes at another change, so it can be skipped.
        if self.stack.autoscaler.period.as_secs_f64() > 0.0 && self.autoscale_wanted() > 0 {
            next = next.min(self.next_autoscale);
        }
        for r in &self.replicas {
            if r.alive {
                next = next.min(later(r.ready_at));
            }
        }
        next = next.min(later(self.db.app_ok_at)).min(later(self.store.app_ok_at));
        if let Some((until, _)) = self.surge {
            next = next.min(later(until));
        }
        next
    }

    /// The width of the window of acknowledged writes a failover lost (0 when none was).
    pub fn lost_window(&self) -> f64 {
        match self.db.lost_window {
            Some((from, to)) if self.db.down_since.is_none() => to - from,
            _ => 0.0,
        }
    }

    /// A random sample from the model's own stream (step durations in simulations).
    pub fn sample(&mut self, dist: &Dist) -> f64 {
        dist.sample(&mut self.rng)
    }

    /// Injects a fault now.
    pub fn inject(&mut self, fault: &Fault) {
        match fault {
            Fault::NodeDrain { node, .. } => {
                let Some(n) = node_index(node) else { return };
                if n >= self.cordoned.len() || self.cordoned[n] {
                    return;
                }
                self.cordoned[n] = true;
                let evicted: Vec<usize> = (0..self.replicas.len())
                    .filter(|&i| self.replicas[i].alive && self.replicas[i].node == n)
                    .collect();
                for i in evicted {
                    // Endpoints drop the replica at once; its replacement is scheduled elsewhere.
                    self.replicas[i].alive = false;
                    let placed = self.now + self.stack.reschedule.sample(&mut self.rng);
                    self.start_replica(placed);
                }
            }
            Fault::TrafficSurge { multiplier, rate, duration, .. } => {
                let rate =
                    rate.map(|r| r.per_sec()).unwrap_or(self.stack.traffic.per_sec() * multiplier.unwrap_or(1.0));
                self.surge = Some((self.now + duration.as_secs_f64(), rate));
            }
            Fault::DbFailover { mode, .. } => {
                if self.db.down_since.is_some() {
                    return;
                }
                self.db.down_since = Some(self.now);
                if *mode == FailoverMode::Crash {
                    let lag = self.stack.database.replication_lag.sample(&mut self.rng);
                    self.db.lost_window = Some((self.now - lag, self.now));
                }
                if let Some(auto) = self.stack.database.auto_failover.clone() {
                    self.pending_promotion = Some(self.now + auto.sample(&mut self.rng));
                }
            }
            Fault::S3Block { mode, .. } => self.store.blocked = Some(*mode),
            // Container faults exist only in `docker`, pod and workload faults only in `kube`;
            // loading rejects them here.
            Fault::ContainerStop { .. }
            | Fault::ContainerKill { .. }
            | Fault::ContainerPause { .. }
            | Fault::ContainerRestart { .. }
            | Fault::NetworkDisconnect { .. }
            | Fault::NetworkBlackhole { .. }
            | Fault::PodKill { .. }
            | Fault::PodDelete { .. }
            | Fault::Scale { .. }
            | Fault::Sequence { .. } => {}
        }
    }

    /// Reverts a fault now.
    pub fn revert(&mut self, fault: &Fault) {
        match fault {
            Fault::NodeDrain { node, .. } => {
                if let Some(n) = node_index(node).filter(|&n| n < self.cordoned.len()) {
                    self.uncordon(n);
                }
            }
            Fault::TrafficSurge { .. } => {
                if let Some((until, rate)) = self.surge {
                    self.surge = Some((until.min(self.now), rate));
                }
            }
            // The old primary is restarted: if no replica was promoted it is primary again,
            // with its own log, so nothing is lost; if one was, it rejoins as a replica.
            Fault::DbFailover { .. } => {
                if self.db.down_since.is_some() {
                    self.db.lost_window = None;
                    self.promote();
                }
            }
            Fault::S3Block { .. } => self.unblock_store(),
            // Container faults exist only in `docker`, pod and workload faults only in `kube`;
            // loading rejects them here.
            Fault::ContainerStop { .. }
            | Fault::ContainerKill { .. }
            | Fault::ContainerPause { .. }
            | Fault::ContainerRestart { .. }
            | Fault::NetworkDisconnect { .. }
            | Fault::NetworkBlackhole { .. }
            | Fault::PodKill { .. }
            | Fault::PodDelete { .. }
            | Fault::Scale { .. }
            | Fault::Sequence { .. } => {}
        }
    }

    fn uncordon(&mut self, n: usize) {
        if !self.cordoned[n] {
            return;
        }
        self.cordoned[n] = false;
        let waiting = std::mem::take(&mut self.unscheduled);
        for _ in 0..waiting {
            let placed = self.now + self.stack.reschedule.sample(&mut self.rng);
            self.start_replica(placed);
        }
    }

    /// A primary is reachable again (a promoted replica, or the restarted old primary); the
    /// app's pool needs its reconnect time to find it.
    fn promote(&mut self) {
        if self.db.down_since.take().is_some() {
            self.pending_promotion = None;
            self.db.app_ok_at = self.now + self.stack.database.reconnect.sample(&mut self.rng);
        }
    }

    fn unblock_store(&mut self) {
        if self.store.blocked.take().is_some() {
            self.store.app_ok_at = self.now + self.stack.object_store.retry_backoff.sample(&mut self.rng);
        }
    }

    /// Applies a procedure step's effect now.
    pub fn apply(&mut self, effect: Effect, replicas: u32) {
        match effect {
            Effect::None => {}
            Effect::PromoteReplica => self.promote(),
            Effect::ScaleOut => (0..replicas).for_each(|_| self.start_replica(self.now)),
            Effect::Uncordon => (0..self.cordoned.len()).for_each(|n| self.uncordon(n)),
            Effect::RestoreObjectStore => self.unblock_store(),
            Effect::RestartApp => {
                // A restart reconnects at once; replicas come back through readiness.
                if self.db.down_since.is_none() {
                    self.db.app_ok_at = self.db.app_ok_at.min(self.now);
                }
                if self.store.blocked.is_none() {
                    self.store.app_ok_at = self.store.app_ok_at.min(self.now);
                }
            }
        }
    }
}

/// What a probe reaches in the simulated stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeReach {
    /// The app through the load balancer, and the dependencies the endpoint needs.
    App {
        /// Needs the database.
        database: bool,
        /// Needs the object store.
        object_store: bool,
    },
    /// The database directly.
    Database,
    /// The object store directly.
    ObjectStore,
}

/// What the app answers a request.
enum Answer {
    Ok(f64),
    Fail(String),
    Hang,
}

fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse::<usize>().ok()?.checked_sub(1)
}

/// The path of an HTTP URL (`http://shop/orders?x=1` → `/orders`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// The `sim` environment: the [`StackModel`] driven by the engine's (virtual) clock.
pub struct SimEnv {
    model: std::rc::Rc<RefCell<StackModel>>,
    start: std::rc::Rc<RefCell<Instant>>,
    probe_rngs: RefCell<Vec<Rng>>,
    seed: u64,
    real_time: bool,
}

impl SimEnv {
    /// A simulated stack whose every random choice follows from `seed`.
    pub fn new(stack: SimStack, seed: u64) -> Self {
        SimEnv {
            model: std::rc::Rc::new(RefCell::new(StackModel::new(stack, seed))),
            start: std::rc::Rc::new(RefCell::new(Instant::now())),
            probe_rngs: RefCell::new(Vec::new()),
            seed,
            real_time: false,
        }
    }

    /// Plays the drill out on the wall clock instead of in virtual time: the model is the
    /// same, only the clock differs.
    pub fn real_time(mut self, real_time: bool) -> Self {
        self.real_time = real_time;
        self
    }

    /// Brings the model to the present and lends it out.
    fn with<T>(&self, f: impl FnOnce(&mut StackModel) -> T) -> T {
        let now = self.start.borrow().elapsed().as_secs_f64();
        let mut model = self.model.borrow_mut();
        model.advance(now);
        f(&mut model)
    }

    fn probe_rng<T>(&self, probe: usize, f: impl FnOnce(&mut Rng) -> T) -> T {
        let mut rngs = self.probe_rngs.borrow_mut();
        let seed = self.seed;
        while rngs.len() <= probe {
            let stream = 1000 + rngs.len() as u64;
            rngs.push(Rng::derive(seed, stream));
        }
        f(&mut rngs[probe])
    }
}

/// An injected fault in the simulated stack.
pub struct SimGuard {
    model: std::rc::Rc<RefCell<StackModel>>,
    start: std::rc::Rc<RefCell<Instant>>,
    fault: Option<Fault>,
}

impl FaultGuard for SimGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        if let Some(fault) = self.fault.take() {
            let now = self.start.borrow().elapsed().as_secs_f64();
            let mut model = self.model.borrow_mut();
            model.advance(now);
            model.revert(&fault);
        }
        Ok(())
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 1e9))
}

impl Environment for SimEnv {
    type Guard = SimGuard;

    fn virtual_time(&self) -> bool {
        !self.real_time
    }

    fn check(&self, scenario: &Scenario) -> Vec<Problem> {
        let stack = &self.model.borrow().stack;
        let mut problems = Vec::new();
        if scenario.fault.is_container_fault() {
            problems.push(Problem::new(
                scenario.positions.fault,
                format!("`{}` is a container fault: it needs `environment: {{kind: docker}}`", scenario.fault.kind()),
            ));
        }
        if let Fault::NodeDrain { node, .. } = &scenario.fault {
            if node_index(node).is_none_or(|n| n >= stack.nodes as usize) {
                problems.push(Problem::new(
                    scenario.positions.fault,
                    format!(
                        "node_drain: the simulated stack has no node `{node}`; its nodes are node-1 … node-{}",
                        stack.nodes
                    ),
                ));
            }
        }
        if let Fault::TrafficSurge { url: Some(_), .. } = &scenario.fault {
            problems.push(Problem::new(
                scenario.positions.fault,
                "traffic_surge: `url` is for the docker environment; the simulated stack has its own traffic",
            ));
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            if let StepAction::Start(name) = &step.action {
                problems.push(Problem::new(
                    scenario.positions.steps[i],
                    format!("step `{}`: `start: {name}` starts a container, which needs the docker environment; use `sim.effect: scale_out`", step.name),
                ));
            }
        }
        for (i, probe) in scenario.probes.iter().enumerate() {
            let at = scenario.positions.probes[i];
            match &probe.check {
                Check::Http { url, .. } => {
                    let path = url_path(url);
                    if !stack.endpoints.iter().any(|e| e.path == path) {
                        let known: Vec<&str> = stack.endpoints.iter().map(|e| e.path.as_str()).collect();
                        problems.push(Problem::new(
                            at,
                            format!(
                                "probe `{}`: the simulated app has no endpoint `{path}`; it has {}",
                                probe.name,
                                known.join(", ")
                            ),
                        ));
                    }
                }
                Check::Tcp { .. }
                | Check::Dns { .. }
                | Check::Command { .. }
                | Check::Slo { .. }
                | Check::Prometheus { .. }
                | Check::Alert { .. }
                | Check::Deployment { .. }
                | Check::Endpoints { .. } => problems.push(Problem::new(
                    at,
                    format!(
                        "probe `{}`: `{}` checks cannot run in the sim environment; use http, sql, s3 or write_ledger",
                        probe.name,
                        probe.check.kind()
                    ),
                )),
                Check::Sql { .. } | Check::S3 { .. } | Check::WriteLedger { .. } => {}
            }
        }
        if stack.replicas == 0 || stack.nodes == 0 {
            problems.push(Problem::new(
                scenario.positions.environment,
                "the simulated stack needs at least one node and one replica",
            ));
        }
        let a = &stack.autoscaler;
        if !(a.target_utilization > 0.0 && a.target_utilization <= 1.0) {
            problems
                .push(Problem::new(scenario.positions.environment, "autoscaler.target_utilization must be in (0, 1]"));
        }
        let delays: [(&str, &Dist); 5] = [
            ("reschedule", &stack.reschedule),
            ("readiness", &stack.readiness),
            ("database.replication_lag", &stack.database.replication_lag),
            ("database.reconnect", &stack.database.reconnect),
            ("object_store.retry_backoff", &stack.object_store.retry_backoff),
        ];
        let auto = stack.database.auto_failover.as_ref().map(|d| ("database.auto_failover", &d.0));
        for (field, dist) in delays.into_iter().chain(auto) {
            if let Err(e) = dist.check() {
                problems.push(Problem::new(scenario.positions.environment, format!("environment.{field}: {e}")));
            }
        }
        problems
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        *self.start.borrow_mut() = Instant::now();
        Ok(())
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        let answer = self.with(|m| match m.target_of(&spec.check) {
            Some(target) => self.probe_rng(probe, |rng| m.answer(target, Some(rng))),
            None => Answer::Fail("not supported in sim".into()),
        });
        match answer {
            Answer::Ok(latency) => {
                sleep(secs(latency)).await;
                Sample::ok()
            }
            Answer::Fail(why) => {
                sleep(secs(BASE_LATENCY)).await;
                Sample::fail(why)
            }
            Answer::Hang => {
                sleep(secs(HANG)).await;
                Sample::fail("no answer: the app's client timed out")
            }
        }
    }

    async fn write(&self, probe: usize, _spec: &Probe, seq: u64) -> Result<(), EnvError> {
        self.with(|m| {
            if !m.db_reachable() {
                return Err(EnvError::Write("connection refused: primary is down".into()));
            }
            while m.db.acked.len() <= probe {
                m.db.acked.push(Vec::new());
            }
            let now = m.now;
            m.db.acked[probe].push((seq, now));
            Ok(())
        })
    }

    async fn read_back(&self, probe: usize, _spec: &Probe, acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        self.with(|m| {
            if m.db.down_since.is_some() {
                return Err(EnvError::ReadBack("the database has no primary to read from".into()));
            }
            let Some((from, to)) = m.db.lost_window else { return Ok(vec![]) };
            let times = m.db.acked.get(probe).cloned().unwrap_or_default();
            let lost: std::collections::HashSet<u64> =
                times.iter().filter(|(_, t)| *t > from && *t <= to).map(|(s, _)| *s).collect();
            Ok(acked.iter().copied().filter(|s| lost.contains(s)).collect())
        })
    }

    async fn inject(&self, fault: &Fault) -> Result<SimGuard, EnvError> {
        self.with(|m| m.inject(fault));
        Ok(SimGuard { model: self.model.clone(), start: self.start.clone(), fault: Some(fault.clone()) })
    }

    async fn run_step(&self, _index: usize, step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        let took = self.with(|m| step.sim_duration.as_ref().map_or(0.0, |d| d.sample(&mut m.rng)));
        sleep(secs(took)).await;
        self.with(|m| m.apply(step.sim_effect, step.sim_replicas));
        Ok(match step.sim_effect {
            Effect::None => None,
            effect => Some(format!("simulated effect: {}", effect.as_str())),
        })
    }

    async fn evidence(&self) -> Vec<super::Evidence> {
        Vec::new()
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        Ok(())
    }
}
