//! The `docker` environment against the real Docker Engine: drills of real containers, the
//! measured numbers checked against what was done to them, and nothing left behind.
//!
//! These tests need `scripts/setup-docker` to have run. Without a reachable engine they are
//! skipped locally and fail under `CI=true`, where they must run. They take a lock so that one
//! drill at a time shares the two cores, which keeps the timings honest and lets each test
//! check that nothing of firedrill's is left on the engine.

use std::sync::{Mutex, MutexGuard};

use firedrill::drill::drill_once;
use firedrill::metrics::Measurement;
use firedrill::record::DrillRecord;
use firedrill::timeline::{EventKind, Outcome};

use crate::common::{repo, scenario};

static ENGINE: Mutex<()> = Mutex::new(());

/// The engine to ourselves, or `None` (skip) when there is no engine and this is not CI.
pub(crate) fn engine() -> Option<MutexGuard<'static, ()>> {
    let up = std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !up {
        assert!(std::env::var("CI").is_err(), "CI must run the Docker tests: run scripts/setup-docker first");
        eprintln!("skipped: no Docker Engine (run scripts/setup-docker)");
        return None;
    }
    Some(ENGINE.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `docker` CLI output lines, for checks made from outside firedrill.
pub(crate) fn docker(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

/// A container a test starts itself, standing for a team's own (attached) one: a small HTTP
/// server on port 8080, labelled `firedrill.test=1`, removed when dropped.
pub(crate) struct TestContainer {
    pub(crate) name: String,
}

impl TestContainer {
    /// Starts it as `<name>-<this process>`.
    pub(crate) fn start(name: &str) -> Self {
        let name = format!("{name}-{}", std::process::id());
        let _ = std::process::Command::new("docker").args(["rm", "-f", &name]).output();
        let args = ["run", "-d", "--name", &name, "--label", "firedrill.test=1", "firedrill/base:latest"];
        docker(&[&args[..], &["python3", "-m", "http.server", "8080"]].concat());
        TestContainer { name }
    }

    /// `docker inspect --format FORMAT` of it.
    pub(crate) fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "--format", format, &self.name]).join("\n")
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// Fails when any container or network firedrill created is still there.
pub(crate) fn assert_nothing_left() {
    let containers = docker(&["ps", "-a", "--filter", "label=firedrill.run", "--format", "{{.Names}}"]);
    assert!(containers.is_empty(), "containers left behind: {containers:?}");
    let networks: Vec<String> = docker(&["network", "ls", "--format", "{{.Name}}"])
        .into_iter()
        .filter(|n| n.starts_with("firedrill-"))
        .collect();
    assert!(networks.is_empty(), "networks left behind: {networks:?}");
}

fn drill(yaml: &str) -> DrillRecord {
    let scenario = scenario(yaml);
    let record = drill_once(&scenario, 1, 1, true, None).expect("the drill runs");
    assert_nothing_left();
    record
}

fn seconds(m: &Measurement) -> f64 {
    match m {
        Measurement::Measured { seconds, .. } => *seconds,
        other => panic!("expected a measured value, got {other:?}"),
    }
}

fn errors(r: &DrillRecord) -> Vec<String> {
    r.timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Error { message } => Some(message.clone()),
            EventKind::RevertFailed { error } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

/// Seconds between the first events matching `a` and `b`.
fn between(r: &DrillRecord, a: impl Fn(&EventKind) -> bool, b: impl Fn(&EventKind) -> bool) -> f64 {
    let t = |f: &dyn Fn(&EventKind) -> bool| r.timeline.events.iter().find(|e| f(&e.kind)).expect("the event").t_us;
    (t(&b) - t(&a)) as f64 / 1e6
}

/// Failed samples of `probe` after the fault, with their details.
fn failures(r: &DrillRecord, probe: &str) -> Vec<String> {
    let t0 = r.timeline.t0().expect("the fault was injected");
    r.timeline
        .events
        .iter()
        .filter(|e| e.t_us >= t0)
        .filter_map(|e| match &e.kind {
            EventKind::Sample { probe: p, ok: false, detail, .. } if p == probe => {
                Some(detail.clone().unwrap_or_default())
            }
            _ => None,
        })
        .collect()
}

const WEB: &str = r#"
environment:
  kind: docker
  containers:
    - name: web
      command: [python3, -m, http.server, "8080"]
      ready: {port: 8080}
probes:
  - name: web
    check: {kind: http, url: "http://${web:8080}/"}
    interval: 50ms
stability: {samples: 3, min_duration: 500ms}
deadline: 30s
"#;

#[test]
fn a_paused_container_measures_an_rto_equal_to_the_pause() {
    let Some(_engine) = engine() else { return };
    let record = drill(&format!("name: pause\n{WEB}\nfault: {{kind: container_pause, target: web, duration: 4s}}\n"));
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    let rto = seconds(&record.metrics.rto);
    // The ground truth: the time from the pause taking effect to the unpause returning.
    let paused =
        between(&record, |k| matches!(k, EventKind::FaultActive), |k| matches!(k, EventKind::FaultReverted { .. }));
    eprintln!("pause 4 s: measured RTO {rto:.3} s, actual pause {paused:.3} s, error {:+.3} s", rto - paused);
    assert!((paused - 4.0).abs() < 0.5, "the pause lasted {paused} s");
    // One probe interval plus the declared stability window.
    assert!((rto - paused).abs() <= 0.05 + 0.5, "RTO {rto} s against a {paused} s pause");
    // Hung requests, not refused ones: a paused container's kernel still accepts connections.
    assert!(failures(&record, "web").iter().all(|d| d.contains("timed out")), "{:?}", failures(&record, "web"));
}

#[test]
fn a_blackhole_hangs_where_a_refusal_fails_at_once() {
    let Some(_engine) = engine() else { return };
    for (mode, expect) in [("blackhole", "timed out"), ("refuse", "connect")] {
        let fault = format!("fault: {{kind: network_blackhole, target: web, mode: {mode}, duration: 2s}}\n");
        let record = drill(&format!("name: block-{mode}\n{WEB}\n{fault}"));
        assert_eq!(record.outcome, Outcome::Recovered, "{mode}: errors: {:?}", errors(&record));
        let failed = failures(&record, "web");
        assert!(failed.len() >= 10, "{mode}: only {} failed samples", failed.len());
        assert!(failed.iter().all(|d| d.contains(expect)), "{mode}: {failed:?}");
        let rto = seconds(&record.metrics.rto);
        assert!((rto - 2.0).abs() < 0.6, "{mode}: RTO {rto} s for a 2 s block");
    }
}

#[test]
fn stop_kill_restart_and_disconnect_take_the_service_down_and_back() {
    let Some(_engine) = engine() else { return };
    let faults = [
        "{kind: container_stop, target: web, grace_period: 1s, duration: 2s}",
        "{kind: container_kill, target: web, duration: 2s}",
        "{kind: container_restart, target: web, grace_period: 0s}",
        "{kind: network_disconnect, target: web, duration: 2s}",
    ];
    for fault in faults {
        let record = drill(&format!("name: faults\n{WEB}\nfault: {fault}\n"));
        assert_eq!(record.outcome, Outcome::Recovered, "{fault}: errors: {:?}", errors(&record));
        assert!(!failures(&record, "web").is_empty(), "{fault}: the service never failed");
        assert!(seconds(&record.metrics.rto) > 0.0, "{fault}");
        let reverted = record.timeline.events.iter().any(|e| matches!(e.kind, EventKind::FaultReverted { .. }));
        assert!(reverted || fault.contains("restart"), "{fault}: not reverted");
    }
}

#[test]
fn container_logs_of_the_drill_window_are_kept_as_evidence() {
    let Some(_engine) = engine() else { return };
    let yaml = r#"
name: evidence
environment:
  kind: docker
  log_limit: 200
  containers:
    - name: talker
      command: [bash, -c, "for i in $(seq 1 400); do echo line $i; done; exec sleep infinity"]
      ready: {log: "line 400"}
probes:
  - name: alive
    check: {kind: command, argv: ["true"]}
    interval: 100ms
fault: {kind: container_pause, target: talker, duration: 200ms}
deadline: 10s
"#;
    let record = drill(yaml);
    let (text, truncated) = record
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Output { source, text, truncated } if source == "talker" => Some((text.clone(), *truncated)),
            _ => None,
        })
        .expect("the container's output is in the record");
    assert!(truncated, "400 lines do not fit in 200 bytes");
    assert!(text.len() <= 200, "{} bytes kept", text.len());
    assert!(text.trim_end().ends_with("line 400"), "the last lines are kept: {text:?}");
    let md = firedrill::report::markdown::render(&record);
    assert!(md.contains("## Evidence") && md.contains("line 400"), "{md}");
}

#[test]
fn attached_containers_are_faulted_and_reverted_but_never_removed() {
    let Some(_engine) = engine() else { return };
    let name = format!("fd-attached-{}", std::process::id());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "com.docker.compose.project=fdtest",
        "--label",
        "com.docker.compose.service=web",
        "firedrill/base:latest",
        "python3",
        "-m",
        "http.server",
        "8080",
    ]);
    let yaml = r#"
name: attached
environment:
  kind: docker
  attach:
    - name: web
      compose: {project: fdtest, service: web}
    - name: same
      container: NAME
probes:
  - name: web
    check: {kind: tcp, address: "${web:8080}"}
    interval: 50ms
  - name: same
    check: {kind: http, url: "http://${same:8080}/"}
    interval: 50ms
fault: {kind: container_kill, target: web, duration: 1s}
steady_state: {samples: 3, timeout: 20s}
deadline: 20s
"#;
    let scenario = scenario(&yaml.replace("NAME", &name));
    let record = drill_once(&scenario, 1, 1, true, None).expect("the drill runs");
    let state = docker(&["inspect", "--format", "{{.State.Running}}", &name]);
    docker(&["rm", "-f", &name]);
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    assert_eq!(state, ["true"], "the attached container was restarted by the revert and kept");
    assert!(!failures(&record, "web").is_empty(), "the kill was not seen through the Compose service");
    assert!(!failures(&record, "same").is_empty(), "the kill was not seen through the container name");
    assert_nothing_left();
}

#[test]
fn a_drill_that_fails_to_start_removes_what_it_started() {
    let Some(_engine) = engine() else { return };
    let yaml = r#"
name: broken
environment:
  kind: docker
  containers:
    - name: first
      command: [sleep, infinity]
    - name: second
      image: firedrill/no-such-image:1
probes:
  - name: first
    check: {kind: command, argv: ["true"]}
fault: {kind: container_pause, target: first}
"#;
    let record = drill(yaml);
    assert_eq!(record.outcome, Outcome::Error);
    assert!(errors(&record).iter().any(|e| e.contains("firedrill/no-such-image:1") && e.contains("setup-docker")));
}

#[test]
fn a_test_that_panics_midway_leaves_nothing_behind() {
    let Some(_engine) = engine() else { return };
    use firedrill::env::{AnyEnvironment, Environment};
    let scenario = scenario(&format!("name: panics\n{WEB}\nfault: {{kind: container_pause, target: web}}\n"));
    let state = tempfile::tempdir().expect("a state folder");
    let Ok(AnyEnvironment::Docker(env)) = AnyEnvironment::for_scenario(&scenario, 7, state.path()) else {
        panic!("a docker environment")
    };
    let run = env.run_id().to_string();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            env.prepare().await.expect("the container starts");
            let running = docker(&["ps", "--filter", &format!("label=firedrill.run={run}"), "--format", "{{.Names}}"]);
            assert_eq!(running.len(), 1, "{running:?}");
            panic!("the test fails midway");
        })
    }));
    assert!(panicked.is_err());
    drop(env);
    assert_nothing_left();
    // The journal of the drill that never reached its teardown is left for `recover`, which
    // finds what it names already gone.
    let survey = firedrill::recover::survey(state.path()).expect("the state folder reads");
    let left = survey.runs.iter().find(|l| l.run == run).expect("the journal is a leftover");
    assert!(!left.entries.is_empty());
    for (entry, state) in &left.entries {
        assert!(matches!(state, firedrill::recover::EntryState::NotInEffect(_)), "{}: {state:?}", entry.change);
    }
}

/// The PostgreSQL failover drill beside these tests, with `--set` overrides.
fn postgres_failover(sets: &[&str]) -> DrillRecord {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scenario =
        firedrill::scenario::load_with(&repo().join("tests/e2e/postgres-failover.yaml"), &sets).expect("it loads");
    let record = drill_once(&scenario, 1, 1, true, None).expect("the drill runs");
    assert_nothing_left();
    record
}

/// Each acknowledged ledger write: (time written, lost).
fn ledger_writes(r: &DrillRecord) -> Vec<(u64, bool)> {
    let missing: Vec<u64> = r
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::LedgerReadBack { missing, .. } => Some(missing.clone()),
            _ => None,
        })
        .expect("the ledger was read back");
    r.timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::LedgerWrite { seq, acked: true, .. } => Some((e.t_us, missing.contains(seq))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failover_after_the_replica_was_cut_off_loses_the_writes_of_that_window() {
    let Some(_engine) = engine() else { return };
    let record = postgres_failover(&[]);
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    let injected: Vec<u64> = record
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FaultInjected { .. }))
        .map(|e| e.t_us)
        .collect();
    let [cut_start, kill_start] = injected[..] else { panic!("two faults injected: {injected:?}") };
    let t0 = record.timeline.t0().expect("t0");
    // The cut took effect between its injection and 3 s before the kill was sent; the
    // primary died between the kill and t0.
    let cut_done = kill_start - 3_000_000;
    let interval = 100_000;
    let writes = ledger_writes(&record);
    for &(t, lost) in &writes {
        if t + interval < cut_start {
            assert!(!lost, "a write {} ms before the cut was lost", (cut_start - t) / 1000);
        }
        if (cut_done..kill_start).contains(&t) {
            assert!(lost, "a write {} ms into the cut survived", (t - cut_done) / 1000);
        }
    }
    let lost = writes.iter().filter(|w| w.1).count();
    let rpo = seconds(&record.metrics.rpo.measurement);
    let (low, high) = ((t0 - cut_done) as f64 / 1e6, (t0 - cut_start) as f64 / 1e6);
    eprintln!(
        "failover after a 3 s cut: RPO {rpo:.3} s, window between {low:.3} s and {high:.3} s, {lost} of {} writes lost",
        writes.len()
    );
    assert!(rpo >= low - 0.1 && rpo <= high + 0.1, "RPO {rpo} s outside [{low}, {high}] ± one write interval");
    assert!(lost >= 25, "only {lost} writes lost in a 3 s window at 10 writes/s");
    assert_eq!(record.metrics.rpo.lost as usize, lost);
}

#[test]
fn a_failover_with_synchronous_replication_loses_no_acknowledged_write() {
    let Some(_engine) = engine() else { return };
    // The same cut and crash: with every commit waiting for the replica, the writes of the
    // cut are never acknowledged, so none can be lost.
    let record = postgres_failover(&["environment.containers[0].env.SYNC_STANDBYS='*'"]);
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    let writes = ledger_writes(&record);
    let injected: Vec<u64> = record
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FaultInjected { .. }))
        .map(|e| e.t_us)
        .collect();
    let [cut, kill] = injected[..] else { panic!("two faults injected: {injected:?}") };
    // Writes sent in the cut that timed out (2 s) before the kill: none may be acknowledged.
    // Later ones may be, by the promoted replica, once their connection finds it.
    let acked_in_cut = writes.iter().filter(|w| (cut + 200_000..kill - 2_000_000).contains(&w.0)).count();
    eprintln!(
        "synchronous failover: {} acknowledged writes, {} lost, {acked_in_cut} acknowledged during the cut, RTO {:?}",
        writes.len(),
        record.metrics.rpo.lost,
        record.metrics.rto
    );
    assert!(writes.len() >= 20, "only {} acknowledged writes", writes.len());
    assert_eq!(acked_in_cut, 0, "a write was acknowledged without the replica");
    assert_eq!(record.metrics.rpo.lost, 0, "lost: {:?}", record.metrics.rpo.lost_records);
    assert_eq!(seconds(&record.metrics.rpo.measurement), 0.0);
}

#[test]
fn ctrl_c_or_sigterm_during_a_drill_reverts_the_fault_and_removes_everything() {
    let Some(_engine) = engine() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("paused.yaml");
    let yaml = format!("name: interrupted\n{WEB}\nfault: {{kind: container_pause, target: web}}\n");
    std::fs::write(&path, yaml.replace("deadline: 30s", "deadline: 5m")).expect("the scenario is written");
    for signal in ["-INT", "-TERM"] {
        let child = crate::common::firedrill()
            .args(["run", path.to_str().expect("a UTF-8 path"), "--no-write"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("firedrill starts");
        let paused = || docker(&["ps", "--filter", "label=firedrill.run", "--filter", "status=paused", "-q"]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while paused().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the fault was never injected");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let sent = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()));
        let out = child.wait_with_output().expect("firedrill ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{signal}: {stdout}");
        assert!(stdout.contains("cancelled"), "{signal}: {stdout}");
        assert_nothing_left();
    }
}

#[test]
fn docker_scenarios_are_checked_before_anything_runs() {
    // No engine needed: these are load-time checks, with the line of each problem.
    let yaml = r#"name: wrong
environment:
  kind: docker
  containers:
    - name: web
    - name: web
  attach:
    - name: both
      container: x
      compose: {project: p, service: s}
fault: {kind: container_kill, target: db}
probes:
  - name: api
    check: {kind: http, url: "http://${cache:80}/"}
  - name: ledger
    check: {kind: write_ledger, dsn: "host=${web}", table: "orders; drop table x"}
procedure:
  kind: steps
  steps:
    - name: promote
      run: [pg_ctl, promote]
      container: replica
      budget: 1m
"#;
    let problems = match firedrill::scenario::parse(yaml, std::path::Path::new("wrong.yaml")) {
        Err(e) => e.to_string(),
        Ok(s) => match firedrill::drill::check(&s) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("the scenario was accepted"),
        },
    };
    for expected in ["duplicate container name `web`", "needs exactly one of `container` or `compose`", "table"] {
        assert!(problems.contains(expected), "missing `{expected}` in:\n{problems}");
    }
    // The cross-references are checked once the scenario is otherwise valid.
    let fixed = yaml.replace("    - name: web\n    - name: web\n", "    - name: web\n").replace(
        "    - name: both\n      container: x\n      compose: {project: p, service: s}\n",
        "    - name: both\n      container: x\n",
    );
    let fixed = fixed.replace(", table: \"orders; drop table x\"", "");
    let scenario = firedrill::scenario::parse(&fixed, std::path::Path::new("wrong.yaml")).expect("it parses");
    let problems = firedrill::drill::check(&scenario).expect_err("unknown containers").to_string();
    for expected in [
        "wrong.yaml:9:8: container_kill: no container `db` in the environment; it has web, both",
        "wrong.yaml:11:5: probe `api`: `http://${cache:80}/` names no container `cache`",
        "wrong.yaml:18:7: step `promote`: no container `replica`",
    ] {
        assert!(problems.contains(expected), "missing `{expected}` in:\n{problems}");
    }
}

#[test]
fn stack_files_nodes_surges_and_scale_outs_are_checked_before_anything_runs() {
    // No engine needed: load-time checks. A stack file's own problems name that file.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let stack = dir.path().join("stack.yaml");
    let scenario_path = dir.path().join("drill.yaml");
    std::fs::write(&stack, "nodes: [a, b]\ncontainers:\n  - name: web\n    imagee: x\n").expect("written");
    let drill = "name: d\nenvironment: {kind: docker, from: stack.yaml}\nfault: {kind: node_drain, node: a}\n";
    std::fs::write(&scenario_path, drill).expect("written");
    let error = firedrill::scenario::load(&scenario_path).expect_err("the stack file is wrong").to_string();
    assert!(error.contains("stack.yaml:4:5") && error.contains("imagee"), "{error}");

    // The stack's containers come first, then the scenario's own.
    std::fs::write(
        &stack,
        "nodes: [a, b]\ncontainers:\n  - {name: web, node: a}\n  - {name: spare, node: any, standby: true}\n",
    )
    .expect("written");
    let own = "  containers: [{name: tool}]\n";
    let drill = format!(
        "name: d\nenvironment:\n  kind: docker\n  from: stack.yaml\n{own}fault: {{kind: node_drain, node: a}}\n"
    );
    std::fs::write(&scenario_path, drill).expect("written");
    let scenario = firedrill::scenario::load(&scenario_path).expect("it loads");
    let firedrill::scenario::EnvironmentSpec::Docker(env) = &scenario.environment else { panic!("docker") };
    let names: Vec<&str> = env.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "spare", "tool"]);
    firedrill::drill::check(&scenario).expect("a valid drill");

    // Each of these is refused, at its line.
    let yaml = r#"name: wrong
environment:
  kind: docker
  nodes: [a]
  containers:
    - {name: web, node: a}
    - {name: db, node: z}
fault: {kind: traffic_surge, multiplier: 10, duration: 30s, url: "http://${web:80}/"}
procedure:
  kind: steps
  steps:
    - name: scale out
      start: web
"#;
    let error = firedrill::scenario::parse(yaml, std::path::Path::new("wrong.yaml")).expect_err("db is on no node");
    assert!(error.to_string().contains("node `z` is not one of the environment's `nodes` (a)"), "{error}");
    let scenario = firedrill::scenario::parse(&yaml.replace("node: z", "node: a"), std::path::Path::new("wrong.yaml"))
        .expect("it parses");
    let problems = firedrill::drill::check(&scenario).expect_err("no baseline, no standby").to_string();
    for expected in [
        "wrong.yaml:8:8: traffic_surge: a `multiplier` applies to the rate of an `slo` probe loading `http://${web:80}/`",
        "wrong.yaml:12:7: step `scale out`: `start: web` needs a container `web` declared with `standby: true`",
    ] {
        assert!(problems.contains(expected), "missing `{expected}` in:\n{problems}");
    }
    let drain = yaml.replace(
        r#"{kind: traffic_surge, multiplier: 10, duration: 30s, url: "http://${web:80}/"}"#,
        "{kind: node_drain, node: a}",
    );
    let scenario = firedrill::scenario::parse(&drain.replace("node: z", "node: a"), std::path::Path::new("wrong.yaml"))
        .expect("it parses");
    let problems = firedrill::drill::check(&scenario).expect_err("one node").to_string();
    assert!(problems.contains("node_drain: `a` is the only node"), "{problems}");
}

#[test]
fn an_slo_probe_judges_background_load_over_its_window() {
    let Some(_engine) = engine() else { return };
    let yaml = r#"
name: slo
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
fault: {kind: container_pause, target: web, duration: 3s}
stability: {samples: 3, min_duration: 500ms}
deadline: 30s
"#;
    let record = drill(yaml);
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    let rto = seconds(&record.metrics.rto);
    let mttd = seconds(&record.metrics.mttd);
    eprintln!("SLO probe over a 3 s pause: MTTD {mttd:.2} s, RTO {rto:.2} s");
    // Hung requests count once timed out (0.5 s). After the unpause, the requests that queued
    // during it are answered late (up to their 0.5 s timeout), and the 1 s window must then
    // clear of them: back within the objective by pause + timeout + window, plus slack.
    assert!(mttd <= 0.5 + 0.2, "MTTD {mttd}");
    assert!((3.0..=3.0 + 0.5 + 1.0 + 0.5).contains(&rto), "RTO {rto}");
    let failures = failures(&record, "users");
    assert!(failures.iter().any(|d| d.contains("failed") || d.contains("latency")), "{failures:?}");
}

// The reference stack's four drills, run as a user runs them: `firedrill run` on the shipped
// scenario, its exit code, and the record it wrote.

/// Runs `scenarios/docker/<file>`; the exit code and the record.
fn stack_drill(file: &str) -> (i32, DrillRecord) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let reports = dir.path().to_str().expect("a UTF-8 path");
    let path = format!("scenarios/docker/{file}");
    let out = crate::common::run(&["run", &path, "--seed", "1", "--reports", reports]);
    let (stdout, stderr) = crate::common::texts(&out);
    eprintln!("{stdout}");
    let files = crate::common::json_files(dir.path());
    assert_eq!(files.len(), 1, "one record written\n{stdout}\n{stderr}");
    let record = crate::common::load_record(&files[0]);
    assert_nothing_left();
    (out.status.code().unwrap_or(-1), record)
}

/// The evidence from `source` (a container, `traffic_surge`, or an SLO probe's load).
fn evidence<'a>(r: &'a DrillRecord, source: &str) -> Option<&'a str> {
    r.timeline.events.iter().find_map(|e| match &e.kind {
        EventKind::Output { source: s, text, .. } if s == source => Some(text.as_str()),
        _ => None,
    })
}

/// The rows of a load table (`firedrill load`'s per-second table): sent, errors, p95 ms.
fn load_rows(text: &str) -> Vec<(u64, u64, Option<f64>)> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('│').map(str::trim).filter(|c| !c.is_empty()).collect();
            let [t, sent, errors, _p50, p95, _p99] = cells[..] else { return None };
            t.strip_suffix('s')?.parse::<u64>().ok()?;
            let errors = errors.split_whitespace().next()?.parse().ok()?;
            Some((sent.parse().ok()?, errors, p95.parse().ok()))
        })
        .collect()
}

fn step_output(r: &DrillRecord, step: usize) -> String {
    r.timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StepFinished { step: s, detail, .. } if *s == step => Some(detail.clone().unwrap_or_default()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("step {step} finished"))
}

#[test]
fn reference_stack_node_drain_keeps_users_served_and_restores_capacity() {
    let Some(_engine) = engine() else { return };
    let (code, record) = stack_drill("node-drain.yaml");
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    assert_eq!(code, 0, "every target met");
    // The floor: the users' objective (≤ 1% errors, p95 < 200 ms over 2 s) held throughout.
    assert_eq!(failures(&record, "users"), Vec::<String>::new());
    let rows = load_rows(evidence(&record, "load of probe `users`").expect("the users' load"));
    let (sent, failed) = rows.iter().fold((0, 0), |(s, f), r| (s + r.0, f + r.1));
    assert!(sent > 150 && failed * 100 <= sent, "{failed} of {sent} users' requests failed");
    // Capacity dropped with the drain and came back with the replacement's readiness.
    let capacity = failures(&record, "capacity");
    assert!(capacity.iter().any(|f| f.contains("503")), "capacity never dropped: {capacity:?}");
    let rto = seconds(&record.metrics.rto);
    eprintln!(
        "node drain: RTO {rto:.3} s, {} capacity failures, {failed} of {sent} users' requests failed",
        capacity.len()
    );
    assert!(rto > 0.0 && rto < 15.0, "RTO {rto} s");
    // web-1 moved from node-a to the empty node-c, and the old one drained gracefully.
    let old = evidence(&record, "web-1, replaced (node-a)").expect("the drained web-1's log");
    assert!(old.contains("draining"), "{old}");
    assert!(evidence(&record, "web-1 (node-c)").is_some(), "the replacement on node-c");
}

#[test]
fn reference_stack_traffic_surge_raises_latency_then_recovers_after_scale_out() {
    let Some(_engine) = engine() else { return };
    let (code, record) = stack_drill("traffic-surge.yaml");
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    assert_eq!(code, 0, "every target met");
    let users = failures(&record, "users");
    assert!(!users.is_empty(), "the surge broke the users' objective");
    let rows = load_rows(evidence(&record, "load of probe `users`").expect("the users' load"));
    let p95 = |r: &(u64, u64, Option<f64>)| r.2.unwrap_or(f64::INFINITY);
    let worst = rows.iter().map(p95).fold(0.0, f64::max);
    let last: Vec<_> = rows.iter().rev().skip(1).take(3).collect();
    eprintln!(
        "traffic surge: RTO {:.3} s, worst p95 {worst:.0} ms, last seconds {last:?}",
        seconds(&record.metrics.rto)
    );
    // Before the surge: the unloaded latency (25 ms of database time and the hops).
    let before = p95(&rows[0]);
    assert!(before < 100.0, "{rows:?}");
    // During it: requests queue for the database (up to 32 in flight per replica, then shed).
    assert!(
        worst > 200.0 && worst > 4.0 * before,
        "latency rose during the surge: worst p95 {worst} ms, {before} ms before"
    );
    assert!(rows.iter().any(|r| r.1 > 0), "some users' requests failed");
    // After the scale-out and the surge: back within the objective (p95 under 200 ms).
    assert!(last.iter().all(|r| p95(r) < 200.0 && r.1 == 0), "{last:?}");
    // The surge itself: 9 × 30/s on top of the users, for 30 s.
    let surge = evidence(&record, "traffic_surge").expect("the surge's measurement");
    let sent: u64 = load_rows(surge).iter().map(|r| r.0).sum();
    assert!((7600..=8600).contains(&sent), "{sent} surge requests, expected 270/s for 30 s\n{surge}");
    assert!(step_output(&record, 2).contains("web-3 ready on node-c"), "{}", step_output(&record, 2));
    let rto = seconds(&record.metrics.rto);
    assert!(rto < 30.0, "recovered during the surge, after the scale-out: RTO {rto} s");
}

#[test]
fn reference_stack_db_failover_recovers_writes_and_measures_the_data_lost() {
    let Some(_engine) = engine() else { return };
    let (code, record) = stack_drill("db-failover.yaml");
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    assert_eq!(code, 0, "every target met");
    let injected: Vec<u64> = record
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FaultInjected { .. }))
        .map(|e| e.t_us)
        .collect();
    let [cut_start, kill_start] = injected[..] else { panic!("two faults injected: {injected:?}") };
    let t0 = record.timeline.t0().expect("t0");
    let (low, high) = ((t0 - (kill_start - 3_000_000)) as f64 / 1e6, (t0 - cut_start) as f64 / 1e6);
    let rpo = seconds(&record.metrics.rpo.measurement);
    let rto = seconds(&record.metrics.rto);
    let promoted = between(
        &record,
        |k| matches!(k, EventKind::FaultInjected { .. }),
        |k| matches!(k, EventKind::StepFinished { step: 2, .. }),
    );
    eprintln!(
        "db failover: RTO {rto:.3} s (promoted {promoted:.3} s after the cut), RPO {rpo:.3} s in [{low:.3}, {high:.3}], {} of {} writes lost",
        record.metrics.rpo.lost, record.metrics.rpo.acknowledged
    );
    assert!(rpo >= low - 0.1 && rpo <= high + 0.1, "RPO {rpo} s outside [{low}, {high}] ± one write interval");
    assert!(record.metrics.rpo.lost >= 20, "the writes of the 3 s cut were lost");
    // Orders came back only after the promotion, and soon after it.
    let orders = failures(&record, "orders");
    assert!(!orders.is_empty(), "orders failed until the promotion");
    assert!(rto > 0.0 && rto < 20.0, "RTO {rto} s");
}

#[test]
fn reference_stack_s3_block_fails_receipts_for_the_block_and_no_longer() {
    let Some(_engine) = engine() else { return };
    let (code, record) = stack_drill("s3-block.yaml");
    assert_eq!(record.outcome, Outcome::Recovered, "errors: {:?}", errors(&record));
    assert_eq!(code, 0, "every target met");
    let rto = seconds(&record.metrics.rto);
    let receipts = failures(&record, "receipts");
    eprintln!(
        "s3 block of 10 s: RTO {rto:.3} s, {} failed receipt samples, first: {:?}",
        receipts.len(),
        receipts.first()
    );
    // The block lasts 10 s. A sample is stamped when it starts: one that started up to the
    // service's 1 s deadline before the unblock can be answered after it, so the RTO seen can
    // be up to 1 s short of the block; the probe's 100 ms interval and the service's retries
    // bound how late it is seen.
    assert!((9.0..=12.5).contains(&rto), "RTO {rto} s for a 10 s block");
    assert!(receipts.iter().all(|f| f.contains("503")), "the service answered 503: {receipts:?}");
    // Orders do not need the object store.
    assert_eq!(failures(&record, "orders"), Vec::<String>::new());
}
