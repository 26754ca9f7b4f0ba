//! The kill switch through the real binary: a file that appears, or SIGUSR1, stops a real-time
//! drill at once, its fault reverted, and the drills after it are not run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firedrill::record::DrillRecord;
use firedrill::timeline::{EventKind, Outcome};

use crate::common::{firedrill, has, json_files, load_record, run, texts, Running};

/// A live tabletop failover whose manual step takes a minute: long enough to pull the switch
/// while the fault is active.
const LIVE: &str = "name: live-failover
environment: { kind: sim }
fault: { kind: db_failover, mode: crash }
probes:
  - name: orders
    check: { kind: http, url: \"http://shop.internal/orders\" }
    interval: 100ms
procedure:
  kind: steps
  steps:
    - name: Promote the replica by hand
      manual: Promote it.
      sim: { duration: 60s, effect: promote_replica }
steady_state: { samples: 2, timeout: 10s }
stability: { samples: 2, min_duration: 200ms }
targets: { rto: 5m }
deadline: 10m
";

/// A real-time `firedrill run --repeat 2` of [`LIVE`] with `--kill-switch`, its progress
/// lines (stderr) read as they come.
struct Live {
    dir: tempfile::TempDir,
    drill: Running,
}

impl Live {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let scenario = dir.path().join("live.yaml");
        std::fs::write(&scenario, LIVE).expect("writing the scenario");
        let drill = Running::start(
            firedrill()
                .args(["run", scenario.to_str().unwrap(), "--pace", "real", "--seed", "1", "--repeat", "2"])
                .arg("--reports")
                .arg(dir.path().join("reports"))
                .arg("--kill-switch")
                .arg(dir.path().join("STOP")),
        );
        Live { dir, drill }
    }

    fn kill_switch(&self) -> PathBuf {
        self.dir.path().join("STOP")
    }

    /// Waits until the manual step is underway: the fault is active.
    fn wait_for_the_step(&self) {
        self.drill.wait_for_line("step 1: Promote the replica by hand");
    }

    /// Waits for the process to end, at most 10 s after `pulled`: its exit code, stdout,
    /// stderr and the records written.
    fn finish(self, pulled: Instant) -> (Option<i32>, String, String, Vec<DrillRecord>) {
        let (status, stdout, stderr) = self.drill.finish(pulled);
        assert!(pulled.elapsed() < Duration::from_secs(5), "took {:?} to stop", pulled.elapsed());
        let reports = self.dir.path().join("reports");
        let records = json_files(&reports).iter().map(|f| load_record(f)).collect();
        (status.code(), stdout, stderr, records)
    }
}

/// The checks every drill stopped by the kill switch `switch` passes: aborted, the fault
/// reverted at once for the switch, the step cut short, and the repeat not run.
fn assert_killed(code: Option<i32>, stdout: &str, stderr: &str, records: &[DrillRecord], switch: &str) {
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("│ aborted │"), "{stdout}");
    assert!(stdout.contains("stopped by the kill switch"), "{stdout}");
    assert!(stderr.contains(&format!("kill switch pulled ({switch}): reverting at once")), "{stderr}");
    assert!(stderr.contains(&format!("kill switch pulled ({switch}): the remaining drills were not run")), "{stderr}");
    assert_eq!(records.len(), 1, "the second run of --repeat 2 is not run");
    let record = &records[0];
    assert_eq!(record.outcome, Outcome::Aborted);
    assert_eq!(record.timeline.kill_switch(), Some(switch));
    let events = &record.timeline.events;
    let time = |pick: &dyn Fn(&EventKind) -> bool| events.iter().find(|e| pick(&e.kind)).map(|e| e.t_us);
    let killed = time(&|k| matches!(k, EventKind::KillSwitch { .. })).expect("a kill_switch event");
    let reverted = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FaultReverted { reason } => Some((e.t_us, reason.clone())),
            _ => None,
        })
        .expect("the fault was reverted");
    assert_eq!(reverted.1, format!("kill switch: {switch}"));
    assert!(reverted.0 - killed < 200_000, "reverted {} µs after the kill switch", reverted.0 - killed);
    assert!(time(&|k| *k == EventKind::FaultActive).unwrap() < killed);
    assert!(!has(events, |k| matches!(k, EventKind::StepFinished { .. })), "the step was cut short");
}

#[cfg(unix)]
#[test]
fn a_kill_switch_file_that_appears_aborts_the_drill_at_once_and_runs_nothing_more() {
    let live = Live::start();
    live.wait_for_the_step();
    let switch = live.kill_switch();
    std::fs::write(&switch, "").unwrap();
    let pulled = Instant::now();
    let (code, stdout, stderr, records) = live.finish(pulled);
    assert_killed(code, &stdout, &stderr, &records, &format!("file {}", switch.display()));
}

#[cfg(unix)]
#[test]
fn sigusr1_aborts_the_drill_at_once_and_runs_nothing_more() {
    let live = Live::start();
    live.wait_for_the_step();
    let pulled = Instant::now();
    let kill = std::process::Command::new("kill").args(["-USR1", &live.drill.child.id().to_string()]).status();
    assert!(kill.expect("kill runs").success());
    let (code, stdout, stderr, records) = live.finish(pulled);
    assert_killed(code, &stdout, &stderr, &records, "signal SIGUSR1");
}

#[test]
fn a_kill_switch_already_pulled_refuses_to_run_anything() {
    let dir = tempfile::tempdir().unwrap();
    let switch = dir.path().join("STOP");
    std::fs::write(&switch, "").unwrap();
    let reports = dir.path().join("reports");
    let out = run(&[
        "run",
        "scenarios/db-failover.yaml",
        "--reports",
        reports.to_str().unwrap(),
        "--kill-switch",
        switch.to_str().unwrap(),
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let said = format!("the kill switch {} already exists: nothing was run; remove it", switch.display());
    assert!(stderr.contains(&said), "{stderr}");
    assert!(!reports.exists(), "nothing ran, nothing was written");
}

/// An `slo_breach` on the real Docker engine: a paused web server makes its users' requests
/// time out, and the drill stops once the window is past the safety limit, unpausing it.
#[test]
fn an_slo_breach_on_real_containers_aborts_and_reverts() {
    let Some(_engine) = crate::docker::engine() else { return };
    let s = crate::common::scenario(
        r#"
name: slo-breach
environment:
  kind: docker
  containers:
    - name: web
      command: [python3, -m, http.server, "8080"]
      ready: {port: 8080}
probes:
  - name: users
    check: {kind: slo, url: "http://${web:8080}/", rate: 50/s, p95: 200ms, max_error_percent: 1, window: 1s, request_timeout: 500ms}
    interval: 100ms
fault: {kind: container_pause, target: web}
stop_conditions:
  - {kind: slo_breach, probe: users, max_error_percent: 50, for: 500ms}
deadline: 60s
"#,
    );
    let record = firedrill::drill::drill_once(&s, 1, 1, true, None).expect("the drill runs");
    crate::docker::assert_nothing_left();
    assert_eq!(record.outcome, Outcome::Aborted, "{:#?}", record.timeline.events);
    let (t, breach) = record
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StopConditionReached { probe, breach, .. } if probe == "users" => Some((e.t_us, *breach)),
            _ => None,
        })
        .expect("the stop condition was reached");
    let breach = breach.expect("the limit and the value measured");
    assert_eq!(breach.limit, firedrill::timeline::SloLimit::ErrorPercent);
    assert!(breach.measured > 50.0 && breach.max == 50.0, "{breach:?}");
    // Requests time out after 0.5 s, the window is 1 s, the limit must hold 0.5 s: well
    // within 10 s of the pause, not at the 60 s deadline.
    let t0 = record.timeline.t0().expect("the fault was active");
    assert!(t - t0 < 10_000_000, "aborted {} µs after the pause", t - t0);
    let reverted = record
        .timeline
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::FaultReverted { reason } if reason == "aborted by stop condition"));
    assert!(reverted, "{:#?}", record.timeline.events);
}

#[test]
fn the_plan_states_each_stop_condition_and_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(
        &path,
        r#"name: plan-slo
environment:
  kind: docker
  containers:
    - name: web
      command: [python3, -m, http.server, "8080"]
      ready: {port: 8080}
probes:
  - name: users
    check: {kind: slo, url: "http://${web:8080}/", rate: 50/s, p95: 200ms}
fault: {kind: container_pause, target: web}
stop_conditions:
  - {kind: slo_breach, probe: users, max_error_percent: 50, p99: 2s, for: 500ms}
  - {kind: probe_failing, probe: users, for: 1m}
"#,
    )
    .unwrap();
    let out = run(&["plan", path.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for line in [
        "stop condition: abort and revert if `users` has errors > 50% or p99 > 2s for 500ms",
        "stop condition: abort and revert if `users` fails for 1m",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}
