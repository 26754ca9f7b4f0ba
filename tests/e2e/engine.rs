//! The engine driven through environments defined here, whose every call is counted, in
//! virtual time: every path out of a drill reverts the fault exactly once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use firedrill::drill::drill_in;
use firedrill::engine::Interrupt;
use firedrill::env::{EnvError, Environment, FaultGuard, Sample};
use firedrill::metrics::Measurement;
use firedrill::record::DrillRecord;
use firedrill::sample::SloWindow;
use firedrill::scenario::{Fault, Probe, Problem, ResolvedStep, Scenario};
use firedrill::timeline::{Event, EventKind, Outcome, Phase, SloBreach, SloLimit};
use tokio::time::{sleep, Instant};

use crate::common::{events, has, scenario};

const S: u64 = 1_000_000;

/// What a procedure step does in the test environment.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Takes this many seconds and succeeds.
    Ok(u64),
    /// Takes this many seconds, succeeds, and repairs the system.
    Fixes(u64),
    /// Takes this many seconds and fails.
    Fails(u64),
    /// Panics at once.
    Panics,
}

/// State shared between the environment and its fault guard.
#[derive(Default)]
struct Shared {
    revert_calls: Cell<u32>,
    /// When the fault was first actually reverted.
    reverted_at: Cell<Option<Instant>>,
}

/// A system that is healthy until the fault is injected and healthy again once the fault is
/// reverted, a step repairs it, or it heals by itself after `heals_after`.
///
/// Probes named `stuck` never answer; probes named `slow` answer ok after 1.5 s; probes named
/// `users` answer as an `slo` probe would, with their window's numbers (healthy: no errors,
/// p95 50 ms, p99 80 ms; unhealthy: 30% errors, p95 900 ms, p99 2.5 s); every other probe
/// answers with the system's health at once.
#[derive(Default)]
struct TestEnv {
    broken_before: bool,
    /// Broken from the inject on, whatever is done (reverting included).
    stays_broken: bool,
    inject_fails: bool,
    heals_after: Option<Duration>,
    steps: Vec<Step>,
    shared: Rc<Shared>,
    injected_at: Cell<Option<Instant>>,
    fixed: Cell<bool>,
    prepares: Cell<u32>,
    injects: Cell<u32>,
    teardowns: Cell<u32>,
    steps_run: RefCell<Vec<usize>>,
}

struct TestGuard {
    shared: Rc<Shared>,
}

impl FaultGuard for TestGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        let s = &self.shared;
        s.revert_calls.set(s.revert_calls.get() + 1);
        if s.reverted_at.get().is_none() {
            s.reverted_at.set(Some(Instant::now()));
        }
        Ok(())
    }
}

impl TestEnv {
    fn healthy(&self) -> bool {
        if self.broken_before {
            return false;
        }
        let Some(at) = self.injected_at.get() else { return true };
        if self.stays_broken {
            return false;
        }
        self.shared.reverted_at.get().is_some()
            || self.fixed.get()
            || self.heals_after.is_some_and(|d| at.elapsed() >= d)
    }

    fn revert_calls(&self) -> u32 {
        self.shared.revert_calls.get()
    }
}

impl Environment for TestEnv {
    type Guard = TestGuard;

    fn virtual_time(&self) -> bool {
        true
    }

    fn check(&self, _scenario: &Scenario) -> Vec<Problem> {
        vec![]
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        self.prepares.set(self.prepares.get() + 1);
        Ok(())
    }

    async fn sample(&self, _probe: usize, spec: &Probe) -> Sample {
        match spec.name.as_str() {
            "stuck" => std::future::pending().await,
            "slow" => {
                sleep(Duration::from_millis(1500)).await;
                Sample::ok()
            }
            "users" if self.healthy() => {
                Sample::ok().with_slo(SloWindow { completed: 100, errors: 0, p95_ms: Some(50.0), p99_ms: Some(80.0) })
            }
            "users" => Sample::fail("30.0% of requests failed").with_slo(SloWindow {
                completed: 100,
                errors: 30,
                p95_ms: Some(900.0),
                p99_ms: Some(2500.0),
            }),
            _ if self.healthy() => Sample::ok(),
            _ => Sample::fail("503 down"),
        }
    }

    async fn write(&self, _probe: usize, _spec: &Probe, _seq: u64) -> Result<(), EnvError> {
        if self.healthy() {
            Ok(())
        } else {
            Err(EnvError::Write("connection refused".into()))
        }
    }

    async fn read_back(&self, _probe: usize, _spec: &Probe, _acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        Ok(vec![])
    }

    async fn inject(&self, _fault: &Fault) -> Result<TestGuard, EnvError> {
        self.injects.set(self.injects.get() + 1);
        if self.inject_fails {
            return Err(EnvError::Inject("permission denied by the test".into()));
        }
        self.injected_at.set(Some(Instant::now()));
        Ok(TestGuard { shared: self.shared.clone() })
    }

    async fn run_step(&self, index: usize, _step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        self.steps_run.borrow_mut().push(index);
        match self.steps[index] {
            Step::Ok(s) => {
                sleep(Duration::from_secs(s)).await;
                Ok(None)
            }
            Step::Fixes(s) => {
                sleep(Duration::from_secs(s)).await;
                self.fixed.set(true);
                Ok(Some("repaired".into()))
            }
            Step::Fails(s) => {
                sleep(Duration::from_secs(s)).await;
                Err(EnvError::Step("exit status 1: the runbook command failed".into()))
            }
            Step::Panics => panic!("a step implementation blew up (expected by this test)"),
        }
    }

    async fn evidence(&self) -> Vec<firedrill::env::Evidence> {
        Vec::new()
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        self.teardowns.set(self.teardowns.get() + 1);
        Ok(())
    }
}

/// A scenario with one availability probe `app` sampled every second, and `rest` appended.
fn with_app_probe(fault: &str, rest: &str) -> Scenario {
    scenario(&format!(
        "name: engine-test
fault: {fault}
probes:
  - name: app
    check: {{ kind: http, url: \"http://app.internal/health\" }}
    interval: 1s
{rest}"
    ))
}

/// A procedure of steps with the given budgets (the test environment decides what they do).
fn steps_yaml(budgets: &[&str]) -> String {
    let mut s = String::from("procedure:\n  kind: steps\n  steps:\n");
    for (i, b) in budgets.iter().enumerate() {
        s += &format!("    - name: step {i}\n      manual: do step {i}\n      budget: {b}\n");
    }
    s
}

fn drill(s: &Scenario, env: &TestEnv) -> DrillRecord {
    drill_in(s, env, 1, 1, None, std::future::pending::<()>()).expect("the drill runs")
}

fn t0(r: &DrillRecord) -> u64 {
    r.timeline.t0().expect("the fault became active")
}

fn reverted_events(r: &DrillRecord) -> Vec<&Event> {
    events(&r.timeline.events, |k| matches!(k, EventKind::FaultReverted { .. }))
}

fn revert_reason(e: &Event) -> &str {
    match &e.kind {
        EventKind::FaultReverted { reason } => reason,
        other => panic!("not a revert: {other:?}"),
    }
}

fn time_of(r: &DrillRecord, pick: impl Fn(&EventKind) -> bool) -> u64 {
    let found = events(&r.timeline.events, pick);
    assert_eq!(found.len(), 1, "expected one such event in {:#?}", r.timeline.events);
    found[0].t_us
}

/// The checks every drill that injected its fault must pass: reverted exactly once, for
/// `reason`, after everything the wait recorded, and torn down once.
fn assert_reverted_once(r: &DrillRecord, env: &TestEnv, reason: &str) {
    assert_eq!(env.injects.get(), 1);
    assert_eq!(env.revert_calls(), 1, "revert calls");
    let reverts = reverted_events(r);
    assert_eq!(reverts.len(), 1, "{:#?}", r.timeline.events);
    assert_eq!(revert_reason(reverts[0]), reason);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::RevertFailed { .. })));
    assert_eq!(env.teardowns.get(), 1);
    assert_eq!(env.prepares.get(), 1);
    let ended = r.timeline.events.last().unwrap();
    assert_eq!(ended.kind, EventKind::DrillEnded { outcome: r.outcome });
}

#[test]
fn recovery_reverts_the_fault_once_and_checks_the_steady_state_again() {
    let s = with_app_probe("{ kind: db_failover }", "deadline: 5m\n");
    let env = TestEnv { heals_after: Some(Duration::from_secs(10)), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    assert_reverted_once(&r, &env, "recovered");
    let t0 = t0(&r);
    let confirmed = time_of(&r, |k| *k == EventKind::RecoveryConfirmed);
    let reverted = reverted_events(&r)[0].t_us;
    assert!(reverted >= confirmed, "revert after recovery is confirmed");
    // Healed 10 s after t0, sampled every second: RTO 9.5 s ± 0.5 s (between the last failed
    // and the first ok sample), and confirmed after 3 ok samples spanning at least 1 s.
    let Measurement::Measured { seconds, uncertainty, .. } = r.metrics.rto else { panic!("{:?}", r.metrics.rto) };
    assert!((9.0..=10.5).contains(&seconds), "RTO {seconds}");
    assert_eq!(uncertainty, 0.5);
    assert!(confirmed >= t0 + 12 * S && confirmed <= t0 + 14 * S, "confirmed at {}", confirmed - t0);
    assert!(has(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { phase: Phase::After, ok: true, .. })));
}

#[test]
fn reaching_the_deadline_reverts_the_fault_once() {
    let s = with_app_probe("{ kind: db_failover }", "deadline: 30s\n");
    let env = TestEnv::default(); // never heals by itself
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::DeadlineReached);
    assert_reverted_once(&r, &env, "deadline reached");
    let t0 = t0(&r);
    assert_eq!(time_of(&r, |k| *k == EventKind::DeadlineReached), t0 + 30 * S);
    assert!(!has(&r.timeline.events, |k| *k == EventKind::RecoveryConfirmed));
    // The revert lets the system heal: the steady state after is checked and passes.
    assert!(has(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { phase: Phase::After, ok: true, .. })));
}

#[test]
fn a_stop_condition_aborts_the_drill_and_reverts_the_fault_once() {
    let s = with_app_probe(
        "{ kind: db_failover }",
        "deadline: 10m\nstop_conditions:\n  - { kind: probe_failing, probe: app, for: 5s }\n",
    );
    let env = TestEnv::default();
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_reverted_once(&r, &env, "aborted by stop condition");
    let t0 = t0(&r);
    let stop = events(&r.timeline.events, |k| matches!(k, EventKind::StopConditionReached { .. }));
    assert_eq!(stop.len(), 1);
    let EventKind::StopConditionReached { probe, failing_for_us, breach } = &stop[0].kind else { unreachable!() };
    assert_eq!(probe, "app");
    assert_eq!(*breach, None, "a probe_failing condition breaches no SLO limit");
    assert!((5 * S..6 * S).contains(failing_for_us), "failing for {failing_for_us}");
    // Aborted about 5 s after the first failed sample, not at the 10-minute deadline.
    let first_fail = events(&r.timeline.events, |k| matches!(k, EventKind::Sample { ok: false, .. }))[0].t_us;
    assert_eq!(stop[0].t_us, first_fail + 5 * S);
    assert!(stop[0].t_us < t0 + 10 * S);
}

#[test]
fn cancellation_before_the_fault_injects_nothing_and_still_tears_down() {
    let s = with_app_probe("{ kind: db_failover }", "deadline: 10m\n");
    let env = TestEnv::default();
    let r = drill_in(&s, &env, 1, 1, None, async {}).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::FaultInjected { .. })));
    assert_eq!(env.teardowns.get(), 1);
}

#[test]
fn cancellation_reverts_the_fault_once_and_skips_the_steady_state_after() {
    let s = with_app_probe("{ kind: db_failover }", &format!("deadline: 10m\n{}", steps_yaml(&["2m"])));
    let env = TestEnv { steps: vec![Step::Fixes(60)], ..Default::default() };
    let cancel = async { sleep(Duration::from_secs(20)).await };
    let r = drill_in(&s, &env, 1, 1, None, cancel).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_reverted_once(&r, &env, "cancelled");
    let cancelled = time_of(&r, |k| *k == EventKind::Cancelled);
    // The cancel future is watched from the drill's start (virtual time 0).
    assert_eq!(cancelled, 20 * S);
    assert!(cancelled > t0(&r));
    assert!(reverted_events(&r)[0].t_us >= cancelled);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::StepFinished { .. })), "the step was cut short");
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { phase: Phase::After, .. })));
    assert_eq!(r.metrics.steps[0].status, firedrill::metrics::StepStatus::Unfinished);
}

#[test]
fn a_failed_step_skips_the_rest_and_the_fault_is_reverted_once() {
    let s = with_app_probe("{ kind: db_failover }", &format!("deadline: 2m\n{}", steps_yaml(&["1m", "1m", "1m"])));
    let env = TestEnv { steps: vec![Step::Ok(5), Step::Fails(5), Step::Fixes(5)], ..Default::default() };
    let r = drill(&s, &env);
    // The repairing step never ran, so the system never recovered.
    assert_eq!(*env.steps_run.borrow(), vec![0, 1]);
    assert_eq!(r.outcome, Outcome::DeadlineReached);
    assert_reverted_once(&r, &env, "deadline reached");
    let finished = events(&r.timeline.events, |k| matches!(k, EventKind::StepFinished { step: 1, .. }));
    assert!(
        matches!(&finished[0].kind, EventKind::StepFinished { ok: false, detail: Some(d), .. } if d.contains("runbook command failed")),
        "{finished:?}"
    );
    let skipped = events(&r.timeline.events, |k| matches!(k, EventKind::StepSkipped { .. }));
    assert_eq!(skipped.len(), 1);
    assert!(matches!(&skipped[0].kind, EventKind::StepSkipped { step: 2, .. }));
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::StepStarted { step: 2, .. })));
    let statuses: Vec<&str> = r.metrics.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "failed", "skipped"]);
}

#[test]
fn a_panicking_step_is_caught_recorded_and_the_fault_still_reverted() {
    let s = with_app_probe("{ kind: db_failover }", &format!("deadline: 10m\n{}", steps_yaml(&["1m"])));
    let env = TestEnv { steps: vec![Step::Panics], ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Error);
    assert_reverted_once(&r, &env, "engine panic");
    let errors = events(&r.timeline.events, |k| matches!(k, EventKind::Error { .. }));
    assert!(
        errors.iter().any(|e| matches!(&e.kind, EventKind::Error { message } if message.contains("panicked"))),
        "{errors:?}"
    );
    // The revert is recorded before the error that explains it, at the same instant.
    assert!(reverted_events(&r)[0].t_us <= errors[0].t_us);
    assert_eq!(firedrill::score::exit_code([(r.outcome, r.verdicts.as_slice())]), 2);
}

#[test]
fn a_failed_inject_is_an_error_with_nothing_to_revert_and_teardown_still_runs() {
    let s = with_app_probe("{ kind: db_failover }", "");
    let env = TestEnv { inject_fails: true, ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Error);
    assert_eq!(env.injects.get(), 1);
    assert_eq!(env.revert_calls(), 0);
    assert_eq!(env.teardowns.get(), 1);
    assert!(reverted_events(&r).is_empty());
    assert!(r.timeline.t0().is_none(), "the fault never became active");
    assert!(
        has(
            &r.timeline.events,
            |k| matches!(k, EventKind::Error { message } if message.contains("permission denied by the test"))
        ),
        "{:#?}",
        r.timeline.events
    );
    assert!(matches!(r.metrics.rto, Measurement::NotMeasured { .. }));
}

#[test]
fn a_system_not_steady_before_the_fault_is_never_injected() {
    let s = with_app_probe("{ kind: db_failover }", "steady_state: { samples: 3, timeout: 10s }\n");
    let env = TestEnv { broken_before: true, ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::NotSteady);
    assert_eq!(env.injects.get(), 0);
    assert_eq!(env.revert_calls(), 0);
    assert_eq!(env.teardowns.get(), 1);
    let steady = events(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { .. }));
    assert_eq!(steady.len(), 1);
    assert!(
        matches!(&steady[0].kind, EventKind::SteadyState { phase: Phase::Before, ok: false, detail: Some(d) } if d.contains("`app`")),
        "{steady:?}"
    );
    assert_eq!(steady[0].t_us, 10 * S, "gives up at the steady-state timeout");
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::FaultInjected { .. })));
    assert_eq!(firedrill::score::exit_code([(r.outcome, r.verdicts.as_slice())]), 2);
}

#[test]
fn a_hung_probe_fails_by_timeout_on_its_own_schedule_without_stalling_the_drill() {
    let s = with_app_probe(
        "{ kind: db_failover }",
        "  - name: stuck
    check: { kind: sql, dsn: \"postgres://db/x\" }
    interval: 2s
    timeout: 500ms
    availability: false
deadline: 5m
",
    );
    let env = TestEnv { heals_after: Some(Duration::from_secs(10)), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered, "the hung probe must not keep the drill from recovering");
    assert_reverted_once(&r, &env, "recovered");
    let stuck: Vec<&Event> =
        events(&r.timeline.events, |k| matches!(k, EventKind::Sample { probe, .. } if probe == "stuck"));
    assert!(stuck.len() >= 5, "{} samples", stuck.len());
    for (i, e) in stuck.iter().enumerate() {
        assert_eq!(e.t_us, i as u64 * 2 * S, "stamped at its own interval");
        let EventKind::Sample { ok, detail, latency_us, .. } = &e.kind else { unreachable!() };
        assert!(!ok);
        assert_eq!(detail.as_deref(), Some("timed out after 500ms"));
        assert_eq!(*latency_us, Some(500_000));
    }
    // The other probe kept its once-a-second schedule throughout.
    let app: Vec<u64> = events(&r.timeline.events, |k| matches!(k, EventKind::Sample { probe, .. } if probe == "app"))
        .iter()
        .map(|e| e.t_us)
        .collect();
    assert!(app.windows(2).all(|w| w[1] - w[0] == S), "{app:?}");
    let ended = r.timeline.events.last().unwrap().t_us;
    assert!(ended < t0(&r) + 30 * S, "ended {} s after t0", (ended - t0(&r)) / S);
}

#[test]
fn a_fault_with_a_duration_is_reverted_when_it_elapses() {
    let s = with_app_probe("{ kind: s3_block, duration: 20s }", "deadline: 5m\n");
    let env = TestEnv::default(); // only the revert heals it
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    let t0 = t0(&r);
    let first = reverted_events(&r)[0];
    assert_eq!(first.t_us, t0 + 20 * S);
    assert_eq!(revert_reason(first), "the fault's duration elapsed");
    let (injected, reverted) = (env.injected_at.get().unwrap(), env.shared.reverted_at.get().unwrap());
    assert_eq!(reverted - injected, Duration::from_secs(20), "the guard itself was reverted at t0 + 20 s");
    assert!(time_of(&r, |k| *k == EventKind::RecoveryConfirmed) > t0 + 20 * S);
    let Measurement::Measured { seconds, .. } = r.metrics.rto else { panic!("{:?}", r.metrics.rto) };
    assert!((19.0..=21.0).contains(&seconds), "RTO {seconds}");
    assert_eq!(env.teardowns.get(), 1);
}

#[test]
fn a_step_over_its_escalation_threshold_records_an_escalation() {
    let s = with_app_probe(
        "{ kind: db_failover }",
        "deadline: 10m
procedure:
  kind: steps
  budget: 1m
  steps:
    - { name: slow step, manual: do it, budget: 10s }
    - { name: fix, manual: fix it, budget: 1m }
",
    );
    let env = TestEnv { steps: vec![Step::Ok(15), Step::Fixes(50)], ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    assert_reverted_once(&r, &env, "recovered");
    let started = time_of(&r, |k| matches!(k, EventKind::StepStarted { step: 0, .. }));
    let esc = events(&r.timeline.events, |k| matches!(k, EventKind::Escalation { .. }));
    let times: Vec<(Option<usize>, u64, u64)> = esc
        .iter()
        .map(|e| match &e.kind {
            EventKind::Escalation { step, after_us } => (*step, *after_us, e.t_us - started),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(times, vec![(Some(0), 10 * S, 10 * S), (None, 60 * S, 60 * S)]);
    assert!(r.metrics.steps[0].over_budget && r.metrics.steps[0].escalated);
    assert!(r.metrics.steps[1].over_budget.eq(&false) && !r.metrics.steps[1].escalated);
    assert_eq!(r.metrics.escalations, 2);
}

#[test]
fn a_fault_without_visible_impact_ends_after_a_quiet_window_with_rto_zero() {
    let s = with_app_probe("{ kind: db_failover }", "deadline: 30m\n");
    let env = TestEnv { heals_after: Some(Duration::ZERO), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    assert_reverted_once(&r, &env, "recovered");
    assert_eq!(r.metrics.rto, Measurement::NoImpact);
    assert_eq!(r.metrics.mttd, Measurement::NoImpact);
    let confirmed = time_of(&r, |k| *k == EventKind::RecoveryConfirmed);
    assert!(confirmed <= t0(&r) + 5 * S, "ended {} µs after t0, not at the deadline", confirmed - t0(&r));
}

/// Two availability probes whose samples complete out of time order: a fast one, and a slow
/// one that answers ok after 1.5 s though sampled every second.
///
/// The live `RecoveryTracker` is fed in completion order, not time order: a sample stamped
/// before the window's start must neither underflow (a panic that left the fault applied, once)
/// nor confirm recovery before the stability window was observed.
#[test]
fn availability_samples_completing_out_of_order_do_not_break_recovery() {
    let s = with_app_probe(
        "{ kind: db_failover }",
        "  - name: slow
    check: { kind: sql, dsn: \"postgres://db/x\" }
    interval: 1s
    timeout: 3s
stability: { samples: 1, min_duration: 1s }
deadline: 5m
",
    );
    let env = TestEnv { heals_after: Some(Duration::from_millis(4500)), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    assert_reverted_once(&r, &env, "recovered");
    assert!(matches!(r.metrics.rto, Measurement::Measured { .. }), "{:?}", r.metrics.rto);
}

/// A fault with a duration is seen through to its end, even when the system recovers while it
/// still runs; the RTO is still the time of that recovery.
#[test]
fn a_fault_with_a_duration_is_seen_through_to_its_end_after_an_early_recovery() {
    let s = with_app_probe("{ kind: traffic_surge, multiplier: 3, duration: 2m }", "deadline: 30m\n");
    let env = TestEnv { heals_after: Some(Duration::from_secs(10)), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    let t0 = t0(&r);
    let first = reverted_events(&r)[0];
    assert_eq!((first.t_us, revert_reason(first)), (t0 + 120 * S, "the fault's duration elapsed"));
    let confirmed = time_of(&r, |k| *k == EventKind::RecoveryConfirmed);
    assert!(confirmed >= t0 + 120 * S, "confirmed {} s after t0, before the surge ended", (confirmed - t0) / S);
    let Measurement::Measured { seconds, .. } = r.metrics.rto else { panic!("{:?}", r.metrics.rto) };
    assert!((9.0..=10.5).contains(&seconds), "RTO {seconds}: the recovery, not the end of the surge");
    assert_eq!(env.shared.reverted_at.get().unwrap() - env.injected_at.get().unwrap(), Duration::from_secs(120));
    assert_eq!(env.teardowns.get(), 1);
}

/// Samples taken after the deadline's revert (while the steady state after is checked) are not
/// recovery: a system that recovers only once the fault is reverted never recovered within its
/// deadline, and its RTO is unmet, not measured (it once read 29.5 s, under a 30 s target).
#[test]
fn a_drill_that_reached_its_deadline_has_an_unmet_rto() {
    let s = with_app_probe("{ kind: db_failover }", "targets: { rto: 30s }\ndeadline: 30s\n");
    let env = TestEnv::default();
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::DeadlineReached);
    assert!(matches!(r.metrics.rto, Measurement::Unmet { .. }), "{:?}", r.metrics.rto);
    let rto = r.verdicts.iter().find(|v| v.target == firedrill::score::TargetKind::Rto).unwrap();
    assert_eq!(rto.status, firedrill::score::Status::Missed);
    assert_eq!(firedrill::score::exit_code([(r.outcome, r.verdicts.as_slice())]), 1);
}

/// Fails for the same reason: the samples taken after the stop condition's revert make a
/// stable window, so an aborted drill reports a measured RTO instead of none.
#[test]
fn a_drill_aborted_by_a_stop_condition_has_no_measured_rto() {
    let s = with_app_probe(
        "{ kind: db_failover }",
        "targets: { rto: 1m }\ndeadline: 10m\nstop_conditions:\n  - { kind: probe_failing, probe: app, for: 5s }\n",
    );
    let env = TestEnv::default();
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Aborted);
    assert!(matches!(r.metrics.rto, Measurement::NotMeasured { .. }), "{:?}", r.metrics.rto);
    let rto = r.verdicts.iter().find(|v| v.target == firedrill::score::TargetKind::Rto).unwrap();
    assert_eq!(rto.status, firedrill::score::Status::NotMeasured);
}

/// A scenario with one `slo` probe `users` sampled every second (objective: errors under 1%,
/// p95 under 500 ms), the stop condition `stop`, and `rest` appended.
fn with_users_slo(stop: &str, rest: &str) -> Scenario {
    scenario(&format!(
        "name: engine-test
fault: {{ kind: db_failover }}
probes:
  - name: users
    check: {{ kind: slo, url: \"http://app.internal/\", rate: 10/s, p95: 500ms }}
    interval: 1s
stop_conditions:
  - {stop}
{rest}"
    ))
}

/// The only stop-condition event, with its time.
fn stop_event(r: &DrillRecord) -> (u64, &str, u64, Option<SloBreach>) {
    let stop = events(&r.timeline.events, |k| matches!(k, EventKind::StopConditionReached { .. }));
    assert_eq!(stop.len(), 1, "{:#?}", r.timeline.events);
    let EventKind::StopConditionReached { probe, failing_for_us, breach } = &stop[0].kind else { unreachable!() };
    (stop[0].t_us, probe, *failing_for_us, *breach)
}

fn first_failed_sample(r: &DrillRecord) -> u64 {
    events(&r.timeline.events, |k| matches!(k, EventKind::Sample { ok: false, .. }))[0].t_us
}

#[test]
fn an_slo_breach_aborts_once_a_limit_has_been_breached_for_its_for() {
    let s = with_users_slo(
        "{ kind: slo_breach, probe: users, max_error_percent: 20, p95: 800ms, for: 5s }",
        "deadline: 10m\n",
    );
    let env = TestEnv::default(); // never heals by itself
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_reverted_once(&r, &env, "aborted by stop condition");
    let (at, probe, held, breach) = stop_event(&r);
    assert_eq!(probe, "users");
    // Errors are judged first: 30% measured against the limit of 20%.
    assert_eq!(breach, Some(SloBreach { limit: SloLimit::ErrorPercent, measured: 30.0, max: 20.0 }));
    assert_eq!(at, first_failed_sample(&r) + 5 * S);
    assert_eq!(held, 5 * S);
    assert!(matches!(r.metrics.rto, Measurement::NotMeasured { .. }), "{:?}", r.metrics.rto);
}

#[test]
fn an_slo_breach_for_0s_aborts_at_the_first_breaching_sample_naming_the_limit() {
    let s = with_users_slo("{ kind: slo_breach, probe: users, p99: 2s, for: 0s }", "deadline: 10m\n");
    let env = TestEnv::default();
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_reverted_once(&r, &env, "aborted by stop condition");
    let (at, _, held, breach) = stop_event(&r);
    assert_eq!(breach, Some(SloBreach { limit: SloLimit::P99, measured: 2500.0, max: 2000.0 }));
    assert_eq!((at, held), (first_failed_sample(&r), 0));
}

#[test]
fn an_slo_breach_shorter_than_its_for_or_within_the_limits_does_not_abort() {
    // Breached for 3 s, allowed 10 s: the drill goes on and sees the recovery.
    let s = with_users_slo("{ kind: slo_breach, probe: users, p95: 800ms, for: 10s }", "deadline: 5m\n");
    let env = TestEnv { heals_after: Some(Duration::from_secs(3)), ..Default::default() };
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::Recovered);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::StopConditionReached { .. })));
    // Failing its objective for good, but within the safety limits (30% < 50%, 900 ms < 1 s).
    let s = with_users_slo(
        "{ kind: slo_breach, probe: users, max_error_percent: 50, p95: 1s, for: 0s }",
        "deadline: 30s\n",
    );
    let env = TestEnv::default();
    let r = drill(&s, &env);
    assert_eq!(r.outcome, Outcome::DeadlineReached);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::StopConditionReached { .. })));
}

/// A kill switch pulled at `at` seconds of virtual time.
async fn kill_switch_at(at: u64) -> Interrupt {
    sleep(Duration::from_secs(at)).await;
    Interrupt::KillSwitch { switch: "test".into() }
}

#[test]
fn the_kill_switch_reverts_the_fault_at_once_mid_step_and_aborts() {
    let s = with_app_probe("{ kind: db_failover }", &format!("deadline: 10m\n{}", steps_yaml(&["2m"])));
    let env = TestEnv { steps: vec![Step::Fixes(60)], ..Default::default() };
    let r = drill_in(&s, &env, 1, 1, None, kill_switch_at(20)).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_reverted_once(&r, &env, "kill switch: test");
    assert_eq!(r.timeline.kill_switch(), Some("test"));
    let killed = time_of(&r, |k| matches!(k, EventKind::KillSwitch { .. }));
    assert_eq!(killed, 20 * S);
    // At once: in the same virtual instant, not after the 60-second step.
    assert_eq!(reverted_events(&r)[0].t_us, killed);
    let (injected, reverted) = (env.injected_at.get().unwrap(), env.shared.reverted_at.get().unwrap());
    assert_eq!(reverted - injected, Duration::from_micros(killed - t0(&r)), "the guard itself was reverted then");
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::StepFinished { .. })), "the step was cut short");
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { phase: Phase::After, .. })));
    assert!(
        matches!(r.metrics.rto, Measurement::NotMeasured { ref reason } if reason.contains("kill switch")),
        "{:?}",
        r.metrics.rto
    );
}

#[test]
fn the_kill_switch_before_the_fault_injects_nothing() {
    // Pulled before the drill starts.
    let s = with_app_probe("{ kind: db_failover }", "deadline: 10m\n");
    let env = TestEnv::default();
    let r = drill_in(&s, &env, 1, 1, None, kill_switch_at(0)).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!((env.injects.get(), env.revert_calls(), env.teardowns.get()), (0, 0, 1));
    assert_eq!(time_of(&r, |k| matches!(k, EventKind::KillSwitch { .. })), 0);
    // Pulled while waiting for a steady state that never comes (60 s allowed).
    let env = TestEnv { broken_before: true, ..Default::default() };
    let r = drill_in(&s, &env, 1, 1, None, kill_switch_at(10)).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!((env.injects.get(), env.revert_calls(), env.teardowns.get()), (0, 0, 1));
    assert_eq!(time_of(&r, |k| matches!(k, EventKind::KillSwitch { .. })), 10 * S);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::FaultInjected { .. } | EventKind::SteadyState { .. })));
}

#[test]
fn the_kill_switch_between_the_faults_of_a_sequence_reverts_those_injected() {
    let s = with_app_probe(
        "{ kind: sequence, faults: [ { fault: { kind: db_failover } }, { after: 30s, fault: { kind: s3_block } } ] }",
        "deadline: 10m\n",
    );
    let env = TestEnv::default();
    let r = drill_in(&s, &env, 1, 1, None, kill_switch_at(10)).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!(env.injects.get(), 1, "the second fault is never injected");
    assert_eq!(env.revert_calls(), 1);
    let reverts = reverted_events(&r);
    assert_eq!(reverts.len(), 1);
    assert_eq!(revert_reason(reverts[0]), "kill switch: test");
    assert_eq!(reverts[0].t_us, 10 * S);
    assert!(!has(&r.timeline.events, |k| *k == EventKind::FaultActive));
    assert_eq!(env.teardowns.get(), 1);
}

#[test]
fn the_kill_switch_after_the_revert_ends_the_wait_for_the_steady_state() {
    let s = with_app_probe("{ kind: db_failover }", "deadline: 30s\n");
    let env = TestEnv { stays_broken: true, ..Default::default() };
    // The deadline passes about 33 s in; the steady state after would be awaited for 60 s.
    let r = drill_in(&s, &env, 1, 1, None, kill_switch_at(50)).expect("the drill runs");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_reverted_once(&r, &env, "deadline reached");
    assert_eq!(time_of(&r, |k| matches!(k, EventKind::KillSwitch { .. })), 50 * S);
    assert!(!has(&r.timeline.events, |k| matches!(k, EventKind::SteadyState { phase: Phase::After, .. })));
    assert!(r.timeline.events.last().unwrap().t_us < 51 * S, "ended at once");
}
