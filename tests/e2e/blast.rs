//! Blast radius on the real Docker Engine: `run --dry-run` changes nothing (the engine's
//! containers and networks compared before and after), containers firedrill did not start are
//! drilled only when confirmed, and `max_blast_radius` refuses a fault before it changes
//! anything.
//!
//! Containers these tests start themselves stand for a team's own (attached) containers; they
//! are labelled `firedrill.test=1` and removed at the end, whatever the outcome.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use firedrill::drill::drill_once;
use firedrill::timeline::{EventKind, Outcome};

use crate::common::{firedrill, repo, scenario, texts};
use crate::docker::{assert_nothing_left, docker, engine, TestContainer};

impl TestContainer {
    /// Its id, status, paused flag, start time and restart count: what a fault would change.
    fn state(&self) -> String {
        self.inspect("{{.Id}} {{.State.Status}} {{.State.Paused}} {{.State.StartedAt}} {{.RestartCount}}")
    }
}

/// Every container of the engine (id, status, paused, start time) and every network: what
/// a dry run must leave as it found it.
fn engine_state() -> (Vec<String>, Vec<String>) {
    let ids = docker(&["ps", "-aq", "--no-trunc"]);
    let format = "{{.Id}} {{.State.Status}} {{.State.Paused}} {{.State.StartedAt}}";
    let mut containers: Vec<String> =
        ids.iter().flat_map(|id| docker(&["inspect", "--format", format, id.as_str()])).collect();
    containers.sort();
    let mut networks = docker(&["network", "ls", "-q", "--no-trunc"]);
    networks.sort();
    (containers, networks)
}

/// A scenario pausing the attached container `name`, written into `dir`.
fn attach_scenario(dir: &Path, name: &str) -> String {
    let yaml = format!(
        r#"name: attached-pause
environment:
  kind: docker
  attach:
    - name: web
      container: {name}
probes:
  - name: web
    check: {{kind: http, url: "http://${{web:8080}}/"}}
    interval: 100ms
fault: {{kind: container_pause, target: web, duration: 1s}}
deadline: 20s
"#
    );
    let path = dir.join("attached.yaml");
    std::fs::write(&path, yaml).expect("the scenario is written");
    path.display().to_string()
}

/// Runs the binary with `args`, `CI` unset and standard input not a terminal.
fn run_unattended(args: &[&str]) -> Output {
    let mut cmd: Command = firedrill();
    cmd.args(args).env_remove("CI").stdin(Stdio::null());
    cmd.output().expect("the firedrill binary runs")
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path().display().to_string()).collect(),
        Err(_) => vec![],
    }
}

#[test]
fn a_dry_run_changes_nothing_on_the_engine_and_shows_what_a_drill_would_touch() {
    let Some(_engine) = engine() else { return };
    let attached = TestContainer::start("fd-blast-dry");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let reports = dir.path().join("reports");
    let file = attach_scenario(dir.path(), &attached.name);
    let drain = repo().join("scenarios/docker/node-drain.yaml").display().to_string();
    let before = (engine_state(), attached.state());
    let out = run_unattended(&["run", "--dry-run", &file, &drain, "--reports", &reports.display().to_string()]);
    let after = (engine_state(), attached.state());
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(before, after, "the dry run changed the engine:\n{stdout}");
    assert!(files_in(dir.path()) == [file.clone()] && files_in(&reports).is_empty(), "{:?}", files_in(dir.path()));
    let id = docker(&["inspect", "--format", "{{.Id}}", &attached.name]).join("");
    assert!(stdout.contains(&format!("web → {} {} (running)", &id[..12], attached.name)), "{stdout}");
    assert!(stdout.contains("pause container web for 1s: affects web"), "{stdout}");
    // The drain's containers: web-1 is declared on node-a; web-3 could be placed there.
    assert!(stdout.contains("drain node node-a (grace period 10s): evicts web-1 (and web-3"), "{stdout}");
    assert!(stdout.contains("40/s → http://${lb:8080}/catalog"), "{stdout}");
    assert!(stdout.contains("blast radius: 1 container(s) (web-1)"), "{stdout}");
    assert_nothing_left();
}

#[test]
fn a_dry_run_of_a_missing_attached_container_exits_2() {
    let Some(_engine) = engine() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = attach_scenario(dir.path(), &format!("fd-blast-absent-{}", std::process::id()));
    let out = run_unattended(&["run", "--dry-run", &file]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("MISSING  attached container `web`") && stderr.contains("could not run"), "{stdout}");
    assert_nothing_left();
}

#[test]
fn attached_containers_are_not_drilled_unconfirmed_without_a_terminal() {
    let Some(_engine) = engine() else { return };
    let attached = TestContainer::start("fd-blast-unconfirmed");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let reports = dir.path().join("reports");
    let file = attach_scenario(dir.path(), &attached.name);
    let before = (engine_state(), attached.state());
    let out = run_unattended(&["run", &file, "--reports", &reports.display().to_string()]);
    let after = (engine_state(), attached.state());
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert_eq!(before, after, "an unconfirmed run changed the engine");
    assert!(files_in(&reports).is_empty());
    let listed = format!("attached-pause: web → container {}: pause container web for 1s", attached.name);
    assert!(stderr.contains(&listed) && stderr.contains("pass --yes"), "{stderr}");
    assert_nothing_left();
}

#[test]
fn max_blast_radius_refuses_a_drain_before_it_evicts_anything() {
    let Some(_engine) = engine() else { return };
    let attached = TestContainer::start("fd-blast-limit");
    // Four containers placed by the scheduler, two on each node: only known once they run,
    // so the load-time check lets the scenario through and the inject refuses it.
    let yaml = format!(
        r#"name: limited-drain
environment:
  kind: docker
  nodes: [node-a, node-b]
  containers:
    - {{name: w1, node: any, command: [sleep, infinity]}}
    - {{name: w2, node: any, command: [sleep, infinity]}}
    - {{name: w3, node: any, command: [sleep, infinity]}}
    - {{name: w4, node: any, command: [sleep, infinity]}}
  attach:
    - {{name: web, container: {}}}
probes:
  - name: web
    check: {{kind: http, url: "http://${{web:8080}}/"}}
    interval: 100ms
fault: {{kind: node_drain, node: node-a, grace_period: 1s}}
max_blast_radius: 1
steady_state: {{samples: 3, timeout: 20s}}
deadline: 20s
"#,
        attached.name
    );
    let before = attached.state();
    let record = drill_once(&scenario(&yaml), 1, 1, true, None).expect("the drill runs");
    assert_eq!(attached.state(), before, "the attached container was touched");
    assert_eq!(record.outcome, Outcome::Error);
    let errors: Vec<&String> = record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Error { message } => Some(message),
            _ => None,
        })
        .collect();
    let refused = "node_drain of node-a would affect 2 container(s) (w1, w3); max_blast_radius is 1";
    assert!(errors.iter().any(|e| e.contains(refused)), "{errors:?}");
    assert!(record.timeline.t0().is_none(), "the fault took effect");
    assert_nothing_left();
}

#[test]
fn a_sim_dry_run_touches_nothing_outside_the_process() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let reports = dir.path().join("reports");
    let out =
        run_unattended(&["run", "--dry-run", "scenarios/node-drain.yaml", "--reports", &reports.display().to_string()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("process  nothing outside this process"), "{stdout}");
    assert!(
        stdout.contains("drain node node-2 (grace period 30s) (simulated): affects replica-2, replica-5"),
        "{stdout}"
    );
    assert!(stdout.contains("blast radius: 2 container(s) (replica-2, replica-5); no max_blast_radius"), "{stdout}");
    assert!(!reports.exists(), "the dry run created the reports folder");
}
