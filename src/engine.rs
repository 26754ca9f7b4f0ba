//! The engine: runs one drill of a scenario in an environment and records its timeline.
//!
//! Lifecycle: prepare → probes start → steady state → inject → procedure, while waiting for
//! stable recovery, the deadline, a stop condition or an interruption → revert → ledger
//! read-back → steady state after → teardown. The fault is reverted on every path out of the
//! wait, including errors, panics, Ctrl-C and the kill switch. An interruption ([`Interrupt`])
//! is watched in every phase but the read-back (evidence of data loss, bounded by its
//! timeout), and never cuts an inject short: its guard is needed to undo it. The engine emits
//! events and never formats output.
//!
//! Time comes from tokio's clock: a paused runtime makes the same code run in virtual time.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use jiff::Timestamp;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, timeout, Instant};

use crate::duration::Dur;
use crate::env::{EnvError, Environment, FaultGuard};
use crate::metrics::{MetricSpec, RecoveryTracker};
use crate::sample::Sample;
use crate::scenario::{Check, Fault, Scenario, StopCondition};
use crate::text::error_chain;
use crate::timeline::{Event, EventKind, Micros, Outcome, Phase, SloBreach, Timeline};

/// Where a drill's timestamps come from.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    wall_start: Timestamp,
}

impl Clock {
    /// A clock starting now, with wall-clock stamps starting at `wall_start` (the real time, or
    /// a fixed epoch for virtual-time drills so that a seed gives identical results).
    pub fn starting_at(wall_start: Timestamp) -> Self {
        Clock { start: Instant::now(), wall_start }
    }

    fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    fn instant(&self, t: Micros) -> Instant {
        self.start + std::time::Duration::from_micros(t)
    }

    fn micros_at(&self, at: Instant) -> Micros {
        at.saturating_duration_since(self.start).as_micros() as Micros
    }

    fn wall(&self, t: Micros) -> Timestamp {
        self.wall_start + jiff::SignedDuration::from_micros(t as i64)
    }
}

/// Knobs of one drill that are not in the scenario.
pub struct DrillOptions<'a> {
    /// The clock.
    pub clock: Clock,
    /// Called with every event as it is recorded (progress display).
    pub on_event: Option<&'a dyn Fn(&Event)>,
}

/// Live state the engine decides on, updated as samples arrive.
struct Live {
    /// Consecutive ok samples per probe, since `counting_from`.
    consecutive_ok: Vec<u32>,
    /// When each probe started failing, if it is failing.
    failing_since: Vec<Option<Micros>>,
    /// Recovery tracking, from `t0`.
    tracker: Option<Tracking>,
    /// Acknowledged records per ledger probe.
    acked: Vec<Vec<u64>>,
    /// Why each probe's latest sample failed, while it fails: what a drill that cannot start
    /// says about why.
    last_failure: Vec<Option<String>>,
    /// Per stop condition (by index) of kind `slo_breach`: since when its probe's window has
    /// breached a limit, and the breach at its latest sample.
    breaching: Vec<Option<(Micros, SloBreach)>>,
}

/// The recovery tracker fed in time order. Checks finish out of the order they started in
/// (a slow probe's sample lands after a fast one's later sample), so samples are kept sorted
/// and the tracker is rebuilt on the rare late arrival.
struct Tracking {
    t0: Micros,
    spec: MetricSpec,
    tracker: RecoveryTracker,
    samples: Vec<(Micros, usize, bool)>,
}

impl Tracking {
    fn new(spec: MetricSpec, t0: Micros) -> Self {
        Tracking { t0, tracker: RecoveryTracker::new(&spec), spec, samples: Vec::new() }
    }

    fn observe(&mut self, names: &[String], probe: usize, t: Micros, ok: bool) {
        if t < self.t0 {
            return;
        }
        let in_order = self.samples.last().is_none_or(|last| last.0 <= t);
        let at = self.samples.partition_point(|s| s.0 <= t);
        self.samples.insert(at, (t, probe, ok));
        if in_order {
            self.tracker.observe(&names[probe], t, ok);
        } else {
            self.tracker = RecoveryTracker::new(&self.spec);
            for &(t, p, ok) in &self.samples {
                self.tracker.observe(&names[p], t, ok);
            }
        }
    }
}

struct Recorder<'a> {
    clock: Clock,
    events: RefCell<Vec<Event>>,
    live: RefCell<Live>,
    changed: Notify,
    on_event: Option<&'a dyn Fn(&Event)>,
    probe_names: Vec<String>,
}

impl Recorder<'_> {
    /// Counts the availability probes' consecutive ok samples afresh from now.
    fn restart_counts(&self, scenario: &Scenario) {
        let mut live = self.live.borrow_mut();
        scenario.availability_probes().for_each(|(i, _)| live.consecutive_ok[i] = 0);
    }

    /// The first availability probe with fewer than `samples` consecutive ok samples.
    fn lagging(&self, scenario: &Scenario, samples: u32) -> Option<usize> {
        let live = self.live.borrow();
        scenario.availability_probes().map(|(i, _)| i).find(|&i| live.consecutive_ok[i] < samples)
    }

    fn record_at(&self, t: Micros, kind: EventKind) {
        let event = Event { t_us: t, at: self.clock.wall(t), kind };
        if let Some(f) = self.on_event {
            f(&event);
        }
        self.events.borrow_mut().push(event);
    }

    fn record(&self, kind: EventKind) -> Micros {
        let t = self.clock.now();
        self.record_at(t, kind);
        t
    }

    fn sample(&self, scenario: &Scenario, probe: usize, t: Micros, sample: Sample, latency: Micros) {
        let Sample { ok, detail, slo, firing } = sample;
        let name = self.probe_names[probe].clone();
        {
            let mut live = self.live.borrow_mut();
            if ok {
                live.consecutive_ok[probe] += 1;
                live.failing_since[probe] = None;
                live.last_failure[probe] = None;
            } else {
                live.consecutive_ok[probe] = 0;
                live.failing_since[probe].get_or_insert(t);
                live.last_failure[probe].clone_from(&detail);
            }
            // A window with nothing in it is no evidence either way: the breach stays as it was.
            if let Some(window) = slo.filter(|w| w.completed > 0) {
                for (i, condition) in scenario.stop_conditions.iter().enumerate() {
                    let StopCondition::SloBreach { probe: watched, max_error_percent, p95, p99, .. } = condition else {
                        continue;
                    };
                    if *watched != name {
                        continue;
                    }
                    live.breaching[i] = window
                        .breach(*max_error_percent, *p95, *p99)
                        .map(|breach| (live.breaching[i].map_or(t, |(since, _)| since), breach));
                }
            }
            if let Some(tracking) = live.tracker.as_mut() {
                tracking.observe(&self.probe_names, probe, t, ok);
            }
        }
        self.record_at(t, EventKind::Sample { probe: name, ok, latency_us: Some(latency), detail, firing });
        self.changed.notify_waiters();
    }
}

/// What stops a drill from outside, through the `cancel` future of [`run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// The operator interrupted the drill (Ctrl-C, SIGTERM): outcome `cancelled`.
    Cancel,
    /// The kill switch was pulled: the fault is reverted at once, outcome `aborted`.
    KillSwitch {
        /// What pulled it, for the timeline (`file /run/stop-drills`, `signal SIGUSR1`).
        switch: String,
    },
}

/// A future that just completes is a plain cancellation, so `cancel` can be any `()` future.
impl From<()> for Interrupt {
    fn from((): ()) -> Self {
        Interrupt::Cancel
    }
}

impl Interrupt {
    /// The drill's outcome.
    fn outcome(&self) -> Outcome {
        match self {
            Interrupt::Cancel => Outcome::Cancelled,
            Interrupt::KillSwitch { .. } => Outcome::Aborted,
        }
    }

    /// Records the interruption and gives the outcome it makes.
    fn record(&self, rec: &Recorder<'_>) -> Outcome {
        rec.record(match self {
            Interrupt::Cancel => EventKind::Cancelled,
            Interrupt::KillSwitch { switch } => EventKind::KillSwitch { switch: switch.clone() },
        });
        self.outcome()
    }

    /// Why the fault is reverted, as the timeline says it.
    fn revert_reason(&self) -> String {
        match self {
            Interrupt::Cancel => Outcome::Cancelled.describe().to_string(),
            Interrupt::KillSwitch { switch } => format!("kill switch: {switch}"),
        }
    }
}

/// Runs one drill and returns its timeline. Environment failures are recorded in the
/// timeline (outcome `error`), not returned, so that a failed drill still has its evidence.
pub async fn run<E: Environment>(
    scenario: &Scenario,
    env: &E,
    opts: DrillOptions<'_>,
    cancel: impl Future<Output = impl Into<Interrupt>>,
) -> Timeline {
    let n = scenario.probes.len();
    let rec = Recorder {
        clock: opts.clock,
        events: RefCell::new(Vec::new()),
        live: RefCell::new(Live {
            consecutive_ok: vec![0; n],
            failing_since: vec![None; n],
            last_failure: vec![None; n],
            tracker: None,
            acked: vec![Vec::new(); n],
            breaching: vec![None; scenario.stop_conditions.len()],
        }),
        changed: Notify::new(),
        on_event: opts.on_event,
        probe_names: scenario.probes.iter().map(|p| p.name.clone()).collect(),
    };
    rec.record(EventKind::DrillStarted { scenario: scenario.name.clone(), environment: scenario.environment.kind() });

    // Cancellation is watched from the start: an operator may stop a drill while containers
    // are still starting, and what started must still be removed.
    let cancel = cancel.map(Into::into).shared();
    let prepared = tokio::select! {
        biased;
        interrupt = cancel.clone() => Err(interrupt),
        prepared = env.prepare() => Ok(prepared),
    };
    let outcome = match prepared {
        Err(interrupt) => interrupt.record(&rec),
        Ok(Err(e)) => {
            rec.record(EventKind::Error { message: error_chain(&e) });
            Outcome::Error
        }
        Ok(Ok(())) => {
            let (stop_probes, probes_stopped) = watch::channel(false);
            let (stop_ledgers, ledgers_stopped) = watch::channel(false);
            let rec = &rec;
            let probes = futures_util::future::join_all(scenario.probes.iter().enumerate().map(|(i, p)| {
                let stopped = if matches!(p.check, Check::WriteLedger { .. }) {
                    ledgers_stopped.clone()
                } else {
                    probes_stopped.clone()
                };
                // A probe that panics stops sampling (which the metrics will show); it must not
                // take the drill down with it before the fault is reverted.
                async move {
                    if AssertUnwindSafe(probe_loop(rec, env, i, scenario, stopped)).catch_unwind().await.is_err() {
                        rec.record(EventKind::Error {
                            message: format!("probe `{}` panicked and stopped sampling", p.name),
                        });
                    }
                }
            }));
            let lifecycle = async {
                let outcome = lifecycle(scenario, env, rec, cancel, &stop_ledgers).await;
                let _ = stop_ledgers.send(true);
                let _ = stop_probes.send(true);
                outcome
            };
            let (_, outcome) = tokio::join!(probes, lifecycle);
            outcome
        }
    };
    for answer in env.answers() {
        rec.record_at(rec.clock.micros_at(answer.at), EventKind::Answered { source: answer.source, text: answer.text });
    }
    for evidence in env.evidence().await {
        rec.record(EventKind::Output { source: evidence.source, text: evidence.text, truncated: evidence.truncated });
    }
    if let Err(e) = env.teardown().await {
        rec.record(EventKind::Error { message: error_chain(&e) });
    }
    rec.record(EventKind::DrillEnded { outcome });
    let mut timeline = Timeline { events: rec.events.into_inner() };
    timeline.canonicalize();
    timeline
}

/// Samples one probe (or writes one ledger) at its interval until stopped. Each check runs
/// concurrently with the next ones, bounded by the probe's timeout, so a hung check never
/// delays the schedule or another probe.
async fn probe_loop<E: Environment>(
    rec: &Recorder<'_>,
    env: &E,
    i: usize,
    scenario: &Scenario,
    mut stopped: watch::Receiver<bool>,
) {
    let probe = &scenario.probes[i];
    let interval = probe.interval.0;
    let limit = probe.timeout().0;
    let is_ledger = matches!(probe.check, Check::WriteLedger { .. });
    let mut next = Instant::now();
    let mut seq = 0u64;
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|s| *s) => break,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            _ = sleep_until(next) => {
                next += interval;
                let t = rec.clock.now();
                let this_seq = seq;
                seq += 1;
                in_flight.push(async move {
                    if is_ledger {
                        let acked = matches!(timeout(limit, env.write(i, probe, this_seq)).await, Ok(Ok(())));
                        if acked {
                            rec.live.borrow_mut().acked[i].push(this_seq);
                        }
                        rec.record_at(t, EventKind::LedgerWrite { probe: probe.name.clone(), seq: this_seq, acked });
                    } else {
                        let sample = timeout(limit, env.sample(i, probe))
                            .await
                            .unwrap_or_else(|_| Sample::fail(format!("timed out after {}", Dur(limit))));
                        let latency = rec.clock.now() - t;
                        rec.sample(scenario, i, t, sample, latency);
                    }
                }.boxed_local());
            }
        }
    }
}

/// Waits until every availability probe has `samples` consecutive ok samples counted from
/// now; returns the first probe that did not, on timeout.
async fn steady(scenario: &Scenario, rec: &Recorder<'_>) -> Result<(), String> {
    let samples = scenario.steady_state.samples;
    let deadline = Instant::now() + scenario.steady_state.timeout.0;
    rec.restart_counts(scenario);
    loop {
        let changed = rec.changed.notified();
        let Some(lagging) = rec.lagging(scenario, samples) else { return Ok(()) };
        tokio::select! {
            biased;
            _ = changed => {}
            _ = sleep_until(deadline) => {
                let why = match &rec.live.borrow().last_failure[lagging] {
                    Some(detail) => format!("; its last sample: {detail}"),
                    None => String::new(),
                };
                return Err(format!(
                    "probe `{}` did not pass {samples} consecutive samples within {}{why}",
                    scenario.probes[lagging].name, scenario.steady_state.timeout
                ));
            }
        }
    }
}

/// Why the wait for recovery ended.
enum WaitEnd {
    /// Recovered, or the deadline passed.
    Outcome(Outcome),
    /// A stop condition was reached.
    Stopped,
    /// Cancelled or killed from outside (already recorded).
    Interrupted(Interrupt),
    /// The environment failed.
    Failed(String),
}

async fn lifecycle<E: Environment>(
    scenario: &Scenario,
    env: &E,
    rec: &Recorder<'_>,
    cancel: impl Future<Output = Interrupt>,
    stop_ledgers: &watch::Sender<bool>,
) -> Outcome {
    let mut cancel = pin!(cancel);
    let before = tokio::select! {
        biased;
        interrupt = cancel.as_mut() => return interrupt.record(rec),
        before = steady(scenario, rec) => before,
    };
    if let Err(detail) = before {
        rec.record(EventKind::SteadyState { phase: Phase::Before, ok: false, detail: Some(detail) });
        return Outcome::NotSteady;
    }
    rec.record(EventKind::SteadyState { phase: Phase::Before, ok: true, detail: None });

    let mut guard = match inject(scenario, env, rec, cancel.as_mut()).await {
        Ok(g) => g,
        Err(outcome) => return outcome,
    };
    let t0 = rec.record(EventKind::FaultActive);
    rec.live.borrow_mut().tracker = Some(Tracking::new(MetricSpec::of(scenario), t0));

    let mut reverted = false;
    let waited =
        AssertUnwindSafe(wait_for_recovery(scenario, env, rec, t0, &mut guard, &mut reverted, cancel.as_mut()))
            .catch_unwind()
            .await;
    let (end, reason) = match &waited {
        Ok(WaitEnd::Outcome(o)) => (*o, o.describe().to_string()),
        Ok(WaitEnd::Stopped) => (Outcome::Aborted, "aborted by stop condition".to_string()),
        Ok(WaitEnd::Interrupted(interrupt)) => (interrupt.outcome(), interrupt.revert_reason()),
        Ok(WaitEnd::Failed(e)) => (Outcome::Error, format!("error: {e}")),
        Err(_) => (Outcome::Error, "engine panic".to_string()),
    };
    // A fault that lifted itself at the end of its duration has nothing left to undo.
    if !reverted {
        revert(&mut guard, rec, &reason).await;
    }
    if let Ok(WaitEnd::Failed(e)) = &waited {
        rec.record(EventKind::Error { message: e.clone() });
    }
    if waited.is_err() {
        rec.record(EventKind::Error { message: "the engine panicked; the fault was reverted".into() });
    }

    // Data: stop writing, then read back every acknowledged record.
    let _ = stop_ledgers.send(true);
    for (i, probe) in scenario.probes.iter().enumerate() {
        if !matches!(probe.check, Check::WriteLedger { .. }) {
            continue;
        }
        let acked = rec.live.borrow().acked[i].clone();
        let read = timeout(scenario.steady_state.timeout.0, env.read_back(i, probe, &acked)).await;
        let kind = match read {
            Ok(Ok(missing)) => {
                EventKind::LedgerReadBack { probe: probe.name.clone(), checked: acked.len() as u64, missing }
            }
            Ok(Err(e)) => EventKind::LedgerReadFailed { probe: probe.name.clone(), error: error_chain(&e) },
            Err(_) => EventKind::LedgerReadFailed {
                probe: probe.name.clone(),
                error: format!("timed out after {}", scenario.steady_state.timeout),
            },
        };
        rec.record(kind);
    }

    // An interrupted drill stops at once: nobody waits for the system to settle. With the
    // fault reverted, an interruption only ends that wait, but is recorded, so that the
    // invocation stops after this drill.
    if !matches!(waited, Ok(WaitEnd::Interrupted(_))) {
        let after = tokio::select! {
            biased;
            interrupt = cancel.as_mut() => return interrupt.record(rec),
            after = steady(scenario, rec) => after,
        };
        rec.record(EventKind::SteadyState { phase: Phase::After, ok: after.is_ok(), detail: after.err() });
    }
    end
}

/// The guards of the faults in effect, reverted last first.
struct Guards<G>(Vec<G>);

impl<G: FaultGuard> FaultGuard for Guards<G> {
    async fn revert(&mut self) -> Result<(), EnvError> {
        // A guard whose revert fails stays, so that a later revert tries it again.
        while let Some(last) = self.0.last_mut() {
            last.revert().await?;
            self.0.pop();
        }
        Ok(())
    }
}

/// Injects the scenario's fault, or each fault of a sequence in turn, `after` apart, recording
/// when each was injected. When one fails, or the drill is interrupted between two, those
/// already injected are reverted: nothing stays injected without a guard. The error is the
/// drill's outcome, its events recorded.
async fn inject<E: Environment>(
    scenario: &Scenario,
    env: &E,
    rec: &Recorder<'_>,
    mut cancel: Pin<&mut impl Future<Output = Interrupt>>,
) -> Result<Guards<E::Guard>, Outcome> {
    let faults: Vec<(Dur, &Fault)> = match &scenario.fault {
        Fault::Sequence { faults } => faults.iter().map(|e| (e.after, &e.fault)).collect(),
        fault => vec![(Dur(std::time::Duration::ZERO), fault)],
    };
    let mut guards = Guards(Vec::new());
    for (after, fault) in faults {
        // An inject under way is not cut short: its guard is needed to undo it.
        tokio::select! {
            biased;
            interrupt = cancel.as_mut() => {
                let outcome = interrupt.record(rec);
                if !guards.0.is_empty() {
                    revert(&mut guards, rec, &interrupt.revert_reason()).await;
                }
                return Err(outcome);
            }
            () = tokio::time::sleep(after.0) => {}
        }
        rec.record(EventKind::FaultInjected { fault: fault.kind(), description: fault.describe() });
        match env.inject(fault).await {
            Ok(g) => guards.0.push(g),
            Err(e) => {
                let message = match guards.revert().await {
                    Ok(()) => error_chain(&e),
                    Err(u) => {
                        format!(
                            "{}; reverting the faults injected before it failed too: {}",
                            error_chain(&e),
                            error_chain(&u)
                        )
                    }
                };
                rec.record(EventKind::Error { message });
                return Err(Outcome::Error);
            }
        }
    }
    Ok(guards)
}

async fn revert<G: FaultGuard>(guard: &mut G, rec: &Recorder<'_>, reason: &str) {
    match guard.revert().await {
        Ok(()) => {
            rec.record(EventKind::FaultReverted { reason: reason.into() });
        }
        Err(e) => {
            rec.record(EventKind::RevertFailed { error: error_chain(&e) });
        }
    }
}

/// Runs the procedure while watching the probes, until recovery (with the procedure done),
/// the deadline, a stop condition or cancellation. Lifts a fault with a duration when it ends.
async fn wait_for_recovery<E: Environment>(
    scenario: &Scenario,
    env: &E,
    rec: &Recorder<'_>,
    t0: Micros,
    guard: &mut Guards<E::Guard>,
    reverted: &mut bool,
    mut cancel: Pin<&mut impl Future<Output = Interrupt>>,
) -> WaitEnd {
    let deadline = rec.clock.instant(t0) + scenario.deadline.0;
    let mut fault_end = scenario.fault.duration().map(|d| rec.clock.instant(t0) + d.0);
    let mut procedure = pin!(procedure(scenario, env, rec));
    let mut procedure_done = false;
    // With no failure seen, the drill ends once the procedure is done, the fault has run its
    // course, and the system then stays healthy for a whole stability window: no impact.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let changed = rec.changed.notified();
        let (recovered, impact) = {
            let live = rec.live.borrow();
            let tracker = &live.tracker.as_ref().expect("set at t0").tracker;
            (tracker.recovered.is_some(), tracker.first_failure.is_some())
        };
        // A fault with a duration (a surge) is seen through to its end: recovering while it
        // still runs is the point of the drill, and a relapse must be seen.
        if recovered && procedure_done && fault_end.is_none() {
            rec.record(EventKind::RecoveryConfirmed);
            return WaitEnd::Outcome(Outcome::Recovered);
        }
        if impact {
            quiet_since = None;
        } else if procedure_done && fault_end.is_none() {
            let since = *quiet_since.get_or_insert_with(|| {
                rec.restart_counts(scenario);
                Instant::now()
            });
            let enough = rec.lagging(scenario, scenario.stability.samples).is_none();
            if enough && since.elapsed() >= scenario.stability.min_duration.0 {
                rec.record(EventKind::RecoveryConfirmed);
                return WaitEnd::Outcome(Outcome::Recovered);
            }
        }
        if let Some(reached) = stop_condition(scenario, rec) {
            rec.record(reached);
            return WaitEnd::Stopped;
        }
        tokio::select! {
            biased;
            interrupt = cancel.as_mut() => {
                interrupt.record(rec);
                return WaitEnd::Interrupted(interrupt);
            }
            _ = sleep_until(deadline) => {
                rec.record(EventKind::DeadlineReached);
                return WaitEnd::Outcome(Outcome::DeadlineReached);
            }
            _ = sleep_until(fault_end.unwrap_or(deadline)), if fault_end.is_some() => {
                fault_end = None;
                if let Err(e) = guard.revert().await {
                    return WaitEnd::Failed(error_chain(&e));
                }
                *reverted = true;
                rec.record(EventKind::FaultReverted { reason: "the fault's duration elapsed".into() });
            }
            _ = procedure.as_mut(), if !procedure_done => procedure_done = true,
            _ = changed => {}
            // Wake when the oldest stop condition holding would have held long enough.
            _ = sleep_until(next_stop_check(scenario, rec).unwrap_or(deadline)) => {}
        }
    }
}

/// Since when each stop condition has held, and for an `slo_breach` the limit its probe's
/// window breached at the latest sample; `None` for a condition not holding.
fn holding_since(scenario: &Scenario, live: &Live) -> Vec<Option<(Micros, Option<SloBreach>)>> {
    scenario
        .stop_conditions
        .iter()
        .enumerate()
        .map(|(i, condition)| match condition {
            StopCondition::ProbeFailing { probe, .. } => {
                let p = scenario.probes.iter().position(|p| &p.name == probe)?;
                Some((live.failing_since[p]?, None))
            }
            StopCondition::SloBreach { .. } => live.breaching[i].map(|(since, breach)| (since, Some(breach))),
        })
        .collect()
}

/// The event of the first stop condition that has held for its `for`, if any.
fn stop_condition(scenario: &Scenario, rec: &Recorder<'_>) -> Option<EventKind> {
    let now = rec.clock.now();
    let holding = holding_since(scenario, &rec.live.borrow());
    scenario.stop_conditions.iter().zip(holding).find_map(|(condition, holding)| {
        let (since, breach) = holding?;
        let held = now.saturating_sub(since);
        (held >= condition.holds_for().0.as_micros() as Micros).then(|| EventKind::StopConditionReached {
            probe: condition.probe().to_string(),
            failing_for_us: held,
            breach,
        })
    })
}

fn next_stop_check(scenario: &Scenario, rec: &Recorder<'_>) -> Option<Instant> {
    let holding = holding_since(scenario, &rec.live.borrow());
    scenario
        .stop_conditions
        .iter()
        .zip(holding)
        .filter_map(|(condition, holding)| Some(rec.clock.instant(holding?.0) + condition.holds_for().0))
        .min()
}

/// Runs the steps in order, recording escalations; a failed step skips the rest.
async fn procedure<E: Environment>(scenario: &Scenario, env: &E, rec: &Recorder<'_>) {
    if scenario.steps.is_empty() {
        return;
    }
    let start = Instant::now();
    let mut procedure_escalation = scenario.procedure_escalate_after.map(|d| start + d.0);
    let mut failed = false;
    for (i, step) in scenario.steps.iter().enumerate() {
        if failed {
            rec.record(EventKind::StepSkipped { step: i, reason: "an earlier step failed".into() });
            continue;
        }
        rec.record(EventKind::StepStarted { step: i, name: step.name.clone() });
        let step_start = Instant::now();
        let mut step_escalation = step.escalate_after.map(|d| step_start + d.0);
        let run = async {
            match step.timeout {
                Some(limit) => timeout(limit.0, env.run_step(i, step))
                    .await
                    .unwrap_or_else(|_| Err(EnvError::Step(format!("stopped after its timeout of {limit}").into()))),
                None => env.run_step(i, step).await,
            }
        };
        let mut run = pin!(run);
        let result = loop {
            tokio::select! {
                biased;
                r = run.as_mut() => break r,
                _ = sleep_until(step_escalation.unwrap_or(step_start)), if step_escalation.is_some() => {
                    step_escalation = None;
                    let after = step.escalate_after.map_or(0, |d| d.0.as_micros() as Micros);
                    rec.record(EventKind::Escalation { step: Some(i), after_us: after });
                }
                _ = sleep_until(procedure_escalation.unwrap_or(start)), if procedure_escalation.is_some() => {
                    procedure_escalation = None;
                    let after = scenario.procedure_escalate_after.map_or(0, |d| d.0.as_micros() as Micros);
                    rec.record(EventKind::Escalation { step: None, after_us: after });
                }
            }
        };
        failed = result.is_err();
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, Some(error_chain(&e))),
        };
        rec.record(EventKind::StepFinished { step: i, ok, detail });
    }
}
