//! `firedrill tabletop` driven as a facilitator drives it: the real binary in a tmux pane,
//! keys sent with send-keys and the screen read with capture-pane, in a small colourless
//! terminal; then the record, the report and the action items it wrote.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill::metrics::Measurement;
use firedrill::record::EnvironmentKind;
use firedrill::timeline::EventKind;

use crate::common::{firedrill, has, load_record, repo, shipped_text};

/// A tmux server of this test's own, so that nothing else's sessions are touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        self.cmd(&[&["send-keys", "-t", "tt"][..], keys].concat());
    }

    fn typed(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "tt", "-l", text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "tt"])
    }

    /// Waits until the screen shows `text`; fails with the screen after 30 s.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, |screen| screen.contains(text))
    }

    /// Waits until the screen is `what` says; fails with the screen after 30 s.
    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let since = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(since.elapsed() < Duration::from_secs(30), "waited for {what}; the screen shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

/// Whether tmux can be used; CI must have it.
fn tmux_present() -> bool {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must run the tabletop tests: install tmux");
        eprintln!("skipped: tmux is not installed");
        return false;
    }
    true
}

/// The console on `scenario` in a tmux pane of `size` with `env` set, for Ana (IC) and Luis
/// (ops), writing to `dir/reports`; the pane shows `EXIT=<code>` when it ends.
fn console(dir: &Path, scenario: &Path, env: &str, size: (&str, &str)) -> Tmux {
    let command = format!(
        "{env} XDG_STATE_HOME={state} {bin} tabletop {scenario} --participants Ana:IC,Luis:ops --reports {reports} --runs 200; echo EXIT=$?; sleep 60",
        state = dir.join("state").display(),
        bin = env!("CARGO_BIN_EXE_firedrill"),
        scenario = scenario.display(),
        reports = dir.join("reports").display(),
    );
    // One server per test: tests run in parallel.
    let name = scenario.file_stem().unwrap().to_string_lossy();
    let tmux = Tmux { socket: format!("firedrill-e2e-{}-{name}", std::process::id()) };
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tt",
        "-x",
        size.0,
        "-y",
        size.1,
        "-c",
        &repo().display().to_string(),
        &command,
    ]);
    tmux
}

/// The one record in `reports`.
fn the_record(reports: &Path) -> firedrill::record::DrillRecord {
    let record = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| firedrill::record::is_result(&p.file_name().unwrap().to_string_lossy()))
        .expect("a record");
    load_record(&record)
}

#[test]
fn a_whole_exercise_in_a_small_colourless_terminal_is_recorded() {
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("db-failover-tabletop.yaml");
    let text = shipped_text("db-failover.yaml") + "injects:\n  - { at: 1s, text: The status page is down too }\n";
    std::fs::write(&scenario, text).unwrap();
    let reports = dir.path().join("reports");
    let tmux = console(dir.path(), &scenario, "NO_COLOR=1", ("40", "12"));

    let before = tmux.wait_for("Enter start");
    assert!(before.contains("Prediction"), "{before}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Step 1/4");
    tmux.keys(&["D"]);
    tmux.keys(&["s"]);
    tmux.wait_for("Step 2/4");
    tmux.wait_for("INJECT");
    tmux.keys(&["p"]);
    tmux.wait_for("PAUSED");
    tmux.keys(&["p"]);
    tmux.wait_for("running");
    tmux.keys(&["f"]);
    tmux.wait_for("Step 3/4");
    tmux.keys(&["e"]);
    tmux.wait_for("escalate to");
    tmux.typed("DBA on call");
    tmux.keys(&["n"]);
    tmux.typed("replica lag unknown");
    tmux.wait_for("note: replica lag unknown");
    tmux.keys(&["d"]);
    tmux.wait_for("Step 4/4");
    tmux.keys(&["d"]);
    tmux.keys(&["R"]);
    tmux.wait_for("detected, restored");
    tmux.keys(&["q"]);
    tmux.wait_for("lesson learned");
    tmux.typed("Nobody knew the replica lag");
    tmux.keys(&["Enter"]);
    tmux.wait_for("what");
    tmux.typed("Alert on replica lag");
    tmux.typed("Luis");
    tmux.typed("2026-12-15");
    tmux.keys(&["Enter"]);
    let end = tmux.wait_for("EXIT=");
    assert!(end.contains("EXIT=0"), "{end}");

    let mut files: Vec<_> = std::fs::read_dir(&reports).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let named = |suffix: &str| {
        files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .cloned()
            .unwrap_or_else(|| panic!("no *{suffix} in {files:?}"))
    };
    let actions = named(".actions.json");
    let record = the_record(&reports);
    assert_eq!(record.environment, EnvironmentKind::Tabletop);
    let events = &record.timeline.events;
    assert!(has(events, |k| matches!(k, EventKind::StepSkipped { step: 0, .. })));
    assert!(has(events, |k| matches!(k, EventKind::StepFinished { step: 1, ok: false, .. })));
    assert!(has(events, |k| matches!(k, EventKind::InjectShown { text, .. } if text == "The status page is down too")));
    assert!(has(events, |k| matches!(k, EventKind::Paused)) && has(events, |k| matches!(k, EventKind::Resumed)));
    assert!(has(events, |k| matches!(k, EventKind::Escalated { step: Some(2), text } if text == "DBA on call")));
    assert!(has(events, |k| matches!(k, EventKind::Participant { name, role } if name == "Luis" && role == "ops")));
    assert!(matches!(record.metrics.rto, Measurement::Declared { .. }), "{:?}", record.metrics.rto);
    assert!(matches!(record.metrics.mttd, Measurement::Declared { .. }), "{:?}", record.metrics.mttd);

    let report = std::fs::read_to_string(named(".md")).unwrap();
    for needed in [
        "declared by the room",
        "Nobody knew the replica lag",
        "| Alert on replica lag | Luis | 2026-12-15 |",
        "P(meet RTO",
        "| Metric | Declared | Target | Verdict | Margin |",
        "nothing was measured on a system",
    ] {
        assert!(report.contains(needed), "the report lacks {needed:?}:\n{report}");
    }
    assert!(!report.contains("| Measured |"), "a tabletop's times are never headed as measured:\n{report}");
    assert!(
        report.contains("| step \"Acknowledge the page and open the incident channel\" done | unmet: the step was skipped: skipped by the room | 5m | MISSED |"),
        "the skipped step misses its target:\n{report}"
    );
    assert!(!report.contains("## Probes"), "no probe observed the room:\n{report}");
    let html = std::fs::read_to_string(named(".html")).unwrap();
    for needed in [
        "declared by the room",
        "<td>Alert on replica lag</td><td>Luis</td><td>2026-12-15</td>",
        "P(meet RTO",
        "<th>Declared</th>",
    ] {
        assert!(html.contains(needed), "the HTML report lacks {needed:?}");
    }
    let items: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(actions).unwrap()).unwrap();
    assert_eq!(
        items["items"],
        serde_json::json!([{ "what": "Alert on replica lag", "owner": "Luis", "due": "2026-12-15" }])
    );

    // Beside a simulated drill of the same scenario, the exercise is counted and listed in the
    // compliance summary, and its declared times stay out of every measured figure.
    let out = firedrill()
        .args(["run", scenario.to_str().unwrap(), "--seed", "3", "--reports", reports.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", crate::common::texts(&out));
    for check in [&["--verify"][..], &["--format", "md,json"]] {
        let out = firedrill().arg("report").arg(&reports).args(check).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{check:?}: {:?}", crate::common::texts(&out));
    }
    let summary = std::fs::read_to_string(reports.join("compliance-summary.summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let row = &summary["scenarios"][0];
    assert_eq!((row["drills"].as_u64(), row["tabletop_exercises"].as_u64()), (Some(1), Some(1)), "{row}");
    assert_eq!(row["history"].as_array().map(Vec::len), Some(2), "{row}");
    assert_eq!(row["mttr"]["note"], "mean of 1 drills", "{row}");
    assert_eq!(row["p50_rto_s"], row["mttr"]["seconds"], "only the simulated drill's RTO: {row}");
    let summary_md = std::fs::read_to_string(reports.join("compliance-summary.md")).unwrap();
    assert!(summary_md.contains("| 1 + 1 tabletop |"), "{summary_md}");
    assert!(summary_md.contains("declared by the room, not measured on a system"), "{summary_md}");
}

/// A runbook imported as it is runs in the console: the shared minimarket runbook's first
/// procedure, its commands on screen, its team response time judged on the room's mark.
#[test]
fn an_imported_runbook_runs_in_the_console_as_it_is() {
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runbook = repo().join("tests/fixtures/runbooks/minimarket-operations-runbook.md");
    let out = firedrill().arg("import").arg(&runbook).arg("--out").arg(dir.path().join("imported")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", crate::common::texts(&out));
    let scenario = dir.path().join("imported/p1-dashboard-no-responde-service-down.yaml");
    let tmux = console(dir.path(), &scenario, "TERM=xterm-256color", ("100", "30"));
    tmux.wait_for("Enter start");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Step 1/2: Diagnóstico");
    assert!(screen.contains("curl -v http://localhost:8080/health"), "the step's commands are shown:\n{screen}");
    assert!(screen.contains("target: done by 05:00"), "the team response time is the step's target:\n{screen}");
    // Grown, the screen is drawn again at the new size: the keys move to its new last three
    // lines (without a redraw, those would stay blank).
    tmux.cmd(&["resize-window", "-t", "tt", "-x", "120", "-y", "40"]);
    tmux.wait_until("the keys in the last 3 of 40 lines", |screen| {
        screen.lines().position(|l| l.contains("q finish")).is_some_and(|line| line >= 37)
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("y: end the exercise");
    assert!(screen.contains("Step 1/2"), "{screen}");
    tmux.keys(&["x"]); // anything but `y` goes on
    tmux.keys(&["d"]);
    tmux.wait_for("Step 2/2: Acciones Inmediatas");
    tmux.keys(&["d"]);
    tmux.keys(&["R"]);
    tmux.wait_for("not detected, restored");
    tmux.keys(&["q"]);
    tmux.wait_for("lesson learned");
    tmux.keys(&["Enter"]);
    tmux.wait_for("action item: what");
    tmux.keys(&["Enter"]);
    let end = tmux.wait_for("EXIT=");
    assert!(end.contains("EXIT=0"), "{end}");

    let record = the_record(&dir.path().join("reports"));
    assert_eq!(record.environment, EnvironmentKind::Tabletop);
    let written: Vec<String> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written.iter().any(|n| n.ends_with("_p1-dashboard-no-responde-service-down_tabletop.json")),
        "a room has no seed, and the name says what it holds: {written:?}"
    );
    let response = record.verdicts.iter().find(|v| v.step.as_deref() == Some("Diagnóstico")).expect("a step verdict");
    assert_eq!(response.status, firedrill::score::Status::Met, "{response:?}");
    assert_eq!(response.limit_s, 300.0);
    let diagnosed = record.metrics.steps[0].done.as_ref().expect("timed");
    assert!(matches!(diagnosed, Measurement::Declared { .. }), "{diagnosed:?}");
}

#[test]
fn without_a_terminal_it_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = firedrill()
        .args(["tabletop", "scenarios/db-failover.yaml", "--participants", "Ana:IC", "--runs", "10", "--reports"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("firedrill tabletop needs a terminal"), "{stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing is written");
}
