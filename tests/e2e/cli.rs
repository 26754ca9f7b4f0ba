//! The command line, run through the real binary: output, files written and exit codes.

use std::path::Path;
use std::time::{Duration, Instant};

use firedrill::metrics::Measurement;
use firedrill::timeline::{EventKind, Outcome};
use tempfile::TempDir;

use crate::common::{
    firedrill, has, json_files, line_of, load_record, replace_once, run, shipped_text, texts, SHIPPED,
};

fn tmp() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// Writes `text` as `name` in `dir` and returns its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a temporary scenario");
    path.display().to_string()
}

#[test]
fn run_one_scenario_prints_the_metrics_and_writes_one_recovered_record() {
    let reports = tmp();
    let out =
        run(&["run", "scenarios/db-failover.yaml", "--seed", "42", "--reports", reports.path().to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("seed 42"), "{stdout}");
    assert!(stdout.contains("outcome: recovered"), "{stdout}");
    for row in ["MTTD", "RTO", "RPO"] {
        assert!(stdout.lines().any(|l| l.contains(&format!("│ {row}"))), "no {row} row in:\n{stdout}");
    }
    // The four runbook steps are listed with their status (in the steps table, not the row of
    // the first one's step target).
    for step in ["Acknowledge the page", "Confirm the primary is down", "Promote the replica", "Verify orders"] {
        let in_steps = |l: &&str| l.contains(step) && !l.contains("│ step \"");
        let line = stdout.lines().find(in_steps).unwrap_or_else(|| panic!("no step `{step}`:\n{stdout}"));
        assert!(line.contains("│ ok"), "{line}");
    }
    assert!(stdout.contains("MTTR"), "{stdout}");

    let files = json_files(reports.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(stdout.contains(&format!("result: {}", files[0].display())), "{stdout}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with("_db-failover_seed42_run1.json"), "{name}");

    let record = load_record(&files[0]);
    assert_eq!(record.outcome, Outcome::Recovered);
    assert_eq!(record.seed, 42);
    assert_eq!(record.clock, firedrill::record::ClockKind::Virtual);
    assert_eq!(record.scenario.name, "db-failover");
    assert_eq!(record.scenario.fault, firedrill::record::FaultKind::DbFailover);
    let Measurement::Measured { seconds, uncertainty, .. } = record.metrics.rto else {
        panic!("RTO should be measured, got {:?}", record.metrics.rto)
    };
    assert!(seconds > 0.0 && seconds <= 15.0 * 60.0, "RTO {seconds}");
    assert!(uncertainty > 0.0 && uncertainty <= 1.0, "uncertainty {uncertainty}");
    assert!(record.verdicts.iter().any(|v| v.target == firedrill::score::TargetKind::Rto), "{:?}", record.verdicts);
    assert_eq!(record.timeline.outcome(), Some(Outcome::Recovered));
}

#[test]
fn run_a_folder_repeated_runs_every_scenario_and_prints_mttr_per_scenario() {
    let reports = tmp();
    let out =
        run(&["run", "scenarios/", "--repeat", "2", "--seed", "42", "--reports", reports.path().to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("4 scenario(s), 2 run(s) each, seed 42"), "{stdout}");

    let files = json_files(reports.path());
    assert_eq!(files.len(), 8, "{files:?}");
    let mut seen: Vec<(String, u64, u32)> = files
        .iter()
        .map(|f| {
            let r = load_record(f);
            (r.scenario.name, r.seed, r.run)
        })
        .collect();
    seen.sort();
    let mut expected = Vec::new();
    for file in SHIPPED {
        let name = file.trim_end_matches(".yaml").to_string();
        expected.push((name.clone(), 42, 1));
        expected.push((name, 43, 2));
    }
    expected.sort();
    assert_eq!(seen, expected);

    for file in SHIPPED {
        let name = file.trim_end_matches(".yaml");
        let mttr = format!("{name}: MTTR ");
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with(&mttr)).collect();
        assert_eq!(lines.len(), 1, "one MTTR line for {name} in:\n{stdout}");
        assert!(lines[0].contains("over 2 drill(s)"), "{}", lines[0]);
        assert!(lines[0].contains("met"), "{}", lines[0]);
        assert!(
            stdout.lines().any(|l| l.starts_with(name) && l.ends_with("all targets met")),
            "summary line for {name} in:\n{stdout}"
        );
    }
}

#[test]
fn the_same_seed_gives_byte_identical_records_and_another_seed_does_not() {
    let run_into = |seed: &str| {
        let dir = tmp();
        let out =
            run(&["run", "scenarios/db-failover.yaml", "--seed", seed, "--reports", dir.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
        let files = json_files(dir.path());
        assert_eq!(files.len(), 1);
        (std::fs::read(&files[0]).unwrap(), files[0].clone(), dir)
    };
    let (a, path_a, _keep_a) = run_into("7");
    let (b, path_b, _keep_b) = run_into("7");
    assert_ne!(path_a, path_b, "two runs go to two different folders");
    assert!(a == b, "the same seed must give byte-identical records");
    let (c, _, _keep_c) = run_into("8");
    assert!(a != c, "another seed must give another record");
    let (ra, rc) = (load_record(&path_a), serde_json::from_slice::<firedrill::record::DrillRecord>(&c).unwrap());
    assert_eq!((ra.seed, rc.seed), (7, 8));
    assert_ne!(ra.timeline, rc.timeline, "the timelines themselves differ, not just the seed field");
}

#[test]
fn a_missed_target_exits_1_and_says_missed() {
    let dir = tmp();
    let text = replace_once(&shipped_text("db-failover.yaml"), "  rto: 15m", "  rto: 30s");
    let path = write(dir.path(), "tight.yaml", &text);
    let reports = dir.path().join("reports");
    let out = run(&["run", &path, "--seed", "42", "--reports", reports.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let rto_row = stdout.lines().find(|l| l.contains("│ RTO")).expect("an RTO row");
    assert!(rto_row.contains("MISSED"), "{rto_row}");
    assert!(rto_row.contains("30.00 s"), "{rto_row}");
    let record = load_record(&json_files(&reports)[0]);
    assert_eq!(record.outcome, Outcome::Recovered, "the drill recovered, only too slowly");
    let rto = record.verdicts.iter().find(|v| v.target == firedrill::score::TargetKind::Rto).unwrap();
    assert_eq!(rto.status, firedrill::score::Status::Missed);
    assert!(rto.margin_s.unwrap() < 0.0);
}

/// The `(line, column)` of every problem reported for `path` in `stderr`.
fn positions(stderr: &str, path: &str) -> Vec<(u64, u64, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("error: ").unwrap_or(l).strip_prefix(path)?.strip_prefix(':')?;
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            Some((line, column, parts.next()?.trim().to_string()))
        })
        .collect()
}

/// Asserts that `validate` and `run` both reject the scenario with exit code 2 and a problem at
/// `line` (and `column`, when given) whose message contains every one of `words`.
fn assert_rejected(text: &str, line: usize, column: Option<u64>, words: &[&str]) {
    let dir = tmp();
    let path = write(dir.path(), "bad.yaml", text);
    let reports = dir.path().join("reports");
    for args in [vec!["validate", &path], vec!["run", &path, "--seed", "1", "--reports", reports.to_str().unwrap()]] {
        let out = run(&args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let found = positions(&stderr, &path);
        let hit = found.iter().find(|(l, _, m)| *l == line as u64 && words.iter().all(|w| m.contains(w)));
        let Some((_, col, _)) = hit else {
            panic!("{args:?}: no problem at {path}:{line}: mentioning {words:?}; stderr:\n{stderr}")
        };
        if let Some(c) = column {
            assert_eq!(*col, c, "{args:?}: column; stderr:\n{stderr}");
        }
        if args[0] == "validate" {
            assert!(stdout.contains(&format!("invalid {path}")), "{stdout}");
        } else {
            assert!(stderr.contains("nothing was run"), "{stderr}");
            assert!(!stdout.contains("outcome:"), "nothing may run:\n{stdout}");
        }
    }
    assert!(!reports.exists() || json_files(&reports).is_empty(), "an invalid scenario writes no record");
}

#[test]
fn an_unknown_field_is_rejected_at_its_line_and_column() {
    let text = replace_once(
        &shipped_text("db-failover.yaml"),
        "    interval: 1s\n    timeout: 2s",
        "    intervl: 1s\n    timeout: 2s",
    );
    let line = line_of(&text, "intervl");
    assert_rejected(&text, line, Some(5), &["unknown field", "intervl"]);
}

#[test]
fn a_yaml_syntax_error_is_rejected_at_its_line() {
    let text = replace_once(&shipped_text("db-failover.yaml"), "  mode: crash\n", "  mode: crash\n   extra: 1\n");
    let line = line_of(&text, "extra: 1");
    assert_rejected(&text, line, None, &["mapping values are not allowed"]);
}

#[test]
fn a_duplicate_probe_name_is_rejected_at_the_second_probe() {
    let text =
        replace_once(&shipped_text("db-failover.yaml"), "  - name: checkout-health", "  - name: checkout-orders");
    let line = text.lines().position(|l| l == "  - name: checkout-orders").unwrap();
    let second = text.lines().skip(line + 1).position(|l| l == "  - name: checkout-orders").unwrap() + line + 2;
    assert_rejected(&text, second, Some(5), &["duplicate probe name", "checkout-orders"]);
}

#[test]
fn a_step_budget_longer_than_the_deadline_is_rejected_at_the_budget() {
    let text = replace_once(
        &shipped_text("db-failover.yaml"),
        "      budget: 3m\n      sim: { duration: { kind: triangular",
        "      budget: 45m\n      sim: { duration: { kind: triangular",
    );
    let line = line_of(&text, "budget: 45m");
    assert_rejected(&text, line, Some(15), &["budget 45m is longer than the deadline (30m)"]);
}

#[test]
fn an_rto_target_without_an_availability_probe_is_rejected_at_the_target() {
    let text = "name: no-availability
fault: { kind: db_failover }
probes:
  - name: ledger
    check: { kind: write_ledger, dsn: \"postgres://db/orders\" }
procedure: { kind: automatic }
targets:
  rpo: 1m
  rto: 5m
";
    assert_rejected(text, line_of(text, "rto: 5m"), Some(8), &["`rto`", "no availability probe"]);
}

#[test]
fn an_rpo_target_without_a_write_ledger_is_rejected_at_the_target() {
    let text = "name: no-ledger
fault: { kind: db_failover }
probes:
  - name: orders
    check: { kind: http, url: \"http://shop/orders\" }
targets:
  rto: 5m
  rpo: 1m
";
    assert_rejected(text, line_of(text, "rpo: 1m"), Some(8), &["`rpo`", "write_ledger"]);
}

#[test]
fn draining_a_node_the_simulated_stack_lacks_is_rejected_at_the_fault() {
    let text = replace_once(&shipped_text("node-drain.yaml"), "  node: node-2", "  node: node-9");
    // The problem points at the fault section (its first key).
    assert_rejected(&text, line_of(&text, "kind: node_drain"), Some(3), &["node-9", "node-1 … node-3"]);
}

#[test]
fn an_http_probe_on_a_path_the_simulated_app_lacks_is_rejected_at_the_probe() {
    let text = replace_once(
        &shipped_text("db-failover.yaml"),
        "url: \"http://checkout.internal/orders\"",
        "url: \"http://checkout.internal/ordrs\"",
    );
    assert_rejected(&text, line_of(&text, "- name: checkout-orders"), Some(5), &["checkout-orders", "`/ordrs`"]);
}

#[test]
fn validate_a_folder_lists_every_shipped_scenario_as_ok() {
    let out = run(&["validate", "scenarios/"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    for file in SHIPPED {
        let line = stdout.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{file} not listed:\n{stdout}"));
        assert!(line.starts_with("ok "), "{line}");
    }
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 4, "{stdout}");
    assert!(stdout.contains("db-failover: db_failover in sim, 3 probes, 4 steps"), "{stdout}");
}

#[test]
fn validate_reports_bad_files_among_good_ones_and_exits_2() {
    let dir = tmp();
    write(dir.path(), "a-good.yaml", &shipped_text("node-drain.yaml"));
    let bad = write(
        dir.path(),
        "b-bad.yaml",
        &replace_once(&shipped_text("node-drain.yaml"), "name: node-drain", "name: node drain"),
    );
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("ok ") && l.contains("a-good.yaml")), "{stdout}");
    assert!(stdout.contains(&format!("invalid {bad}")), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "{bad}:{}:7: `name` must be",
            line_of(&shipped_text("node-drain.yaml"), "name: node-drain")
        )),
        "{stderr}"
    );
}

#[test]
fn plan_shows_the_fault_the_probes_and_the_targets() {
    let out = run(&["plan", "scenarios/node-drain.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("scenario: node-drain"), "{stdout}");
    assert!(stdout.contains("inject: drain node node-2 (grace period 30s)"), "{stdout}");
    for probe in ["catalog-health", "catalog-objects"] {
        assert!(stdout.contains(probe), "{probe} missing:\n{stdout}");
    }
    assert!(stdout.contains("GET http://catalog.internal/objects → 200"), "{stdout}");
    assert!(stdout.contains("procedure: automatic"), "{stdout}");
    assert!(stdout.contains("stop condition: abort and revert if `catalog-health` fails for 3m"), "{stdout}");
    assert!(stdout.contains("targets: RTO <= 2m, MTTD <= 30s, MTTR <= 2m"), "{stdout}");
    assert!(stdout.contains("disruption: hardware (inferred), which picks the targets"), "{stdout}");
    // A plan runs nothing.
    assert!(!stdout.contains("outcome:"), "{stdout}");
}

#[test]
fn schema_is_json_naming_every_fault_kind() {
    let out = run(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the schema is valid JSON");
    assert_eq!(schema["title"], "firedrill scenario");
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(required.contains(&"name") && required.contains(&"fault"), "{required:?}");
    // Collect every `const` and `enum` value: the words a scenario may use.
    fn words(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("const", serde_json::Value::String(s)) => out.push(s.clone()),
                        ("enum", serde_json::Value::Array(a)) => {
                            out.extend(a.iter().filter_map(|s| s.as_str().map(String::from)))
                        }
                        _ => words(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| words(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    words(&schema, &mut found);
    for kind in ["node_drain", "traffic_surge", "db_failover", "s3_block"] {
        assert!(found.iter().any(|w| w == kind), "fault kind {kind} not in the schema's values: {found:?}");
    }
    for disruption in ["software", "hardware", "az", "region"] {
        assert!(found.iter().any(|w| w == disruption), "disruption type {disruption} not in the schema: {found:?}");
    }
    let by_type = &schema["$defs"]["DisruptionTargets"]["properties"];
    assert!(["software", "hardware", "az", "region"].iter().all(|t| by_type.get(t).is_some()), "{by_type}");
}

#[test]
fn run_on_a_missing_path_exits_2_with_a_clear_message() {
    let dir = tmp();
    let missing = dir.path().join("no-such-scenario.yaml");
    let missing = missing.to_str().unwrap();
    let reports = dir.path().join("reports");
    let out = run(&["run", missing, "--seed", "1", "--reports", reports.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains(&format!("error: failed to read {missing}: no such file or folder")), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert!(!reports.exists(), "no reports folder is created when nothing ran");
}

/// A live tabletop drill, interrupted with Ctrl-C while the manual step is still underway.
#[cfg(unix)]
#[test]
fn ctrl_c_during_a_real_time_drill_cancels_it_and_reverts_the_fault() {
    let dir = tmp();
    let text = "name: live-failover
environment: { kind: sim }
fault: { kind: db_failover, mode: crash }
probes:
  - name: orders
    check: { kind: http, url: \"http://shop.internal/orders\" }
    interval: 100ms
  - name: ledger
    check: { kind: write_ledger, dsn: \"postgres://db/orders\" }
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
    let path = write(dir.path(), "live.yaml", text);
    let reports = dir.path().join("reports");
    let started = Instant::now();
    let drill = crate::common::Running::start(firedrill().args([
        "run",
        &path,
        "--pace",
        "real",
        "--seed",
        "1",
        "--reports",
        reports.to_str().unwrap(),
    ]));
    // Ctrl-C only once the fault is active and the manual step is underway, about 2.5 s in.
    drill.wait_for_line("step 1: Promote the replica by hand");
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    let sent = Instant::now();
    let kill =
        std::process::Command::new("kill").args(["-INT", &drill.child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let (status, stdout, stderr) = drill.finish(sent);
    assert!(sent.elapsed() < Duration::from_secs(5), "took {:?} to stop", sent.elapsed());
    assert_eq!(status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("outcome: cancelled"), "{stdout}");
    assert!(stdout.contains("real time"), "{stdout}");
    assert!(stderr.contains("interrupted: reverting"), "{stderr}");
    assert!(stderr.contains("fault reverted (cancelled)"), "{stderr}");

    let files = json_files(&reports);
    assert_eq!(files.len(), 1);
    let record = load_record(&files[0]);
    assert_eq!(record.outcome, Outcome::Cancelled);
    assert_eq!(record.clock, firedrill::record::ClockKind::Real);
    let events = &record.timeline.events;
    let at = |pick: fn(&EventKind) -> bool| events.iter().position(|e| pick(&e.kind));
    let cancelled = at(|k| *k == EventKind::Cancelled).expect("a cancelled event");
    let reverted = at(|k| matches!(k, EventKind::FaultReverted { .. })).expect("a fault_reverted event");
    let active = at(|k| *k == EventKind::FaultActive).expect("the fault became active");
    assert!(active < cancelled && cancelled <= reverted, "{events:#?}");
    assert!(
        matches!(&events[reverted].kind, EventKind::FaultReverted { reason } if reason == "cancelled"),
        "{:?}",
        events[reverted]
    );
    // Interrupted about 2.5 s in, long before the 60 s step could finish.
    let t = events[cancelled].t_us;
    assert!((1_500_000..6_000_000).contains(&t), "cancelled at {t} µs");
    assert!(!has(events, |k| matches!(k, EventKind::StepFinished { .. })), "the step never finished");
    assert!(!has(events, |k| *k == EventKind::RecoveryConfirmed));
    assert!(matches!(record.metrics.rto, Measurement::NotMeasured { .. }), "{:?}", record.metrics.rto);
}

/// A drill whose system recovers only when the fault is reverted at the deadline fails the CI
/// gate (exit 1): the samples after that revert are not a recovery.
#[test]
fn a_drill_that_reached_its_deadline_never_passes_the_gate() {
    let dir = tmp();
    let text = "name: never-recovers
environment:
  kind: sim
  autoscaler: { enabled: false }
fault: { kind: traffic_surge, multiplier: 5, duration: 10m }
probes:
  - name: home
    check: { kind: http, url: \"http://shop.internal/health\" }
    interval: 1s
targets:
  rto: 115500ms
deadline: 115500ms
";
    let path = write(dir.path(), "never.yaml", text);
    let out = run(&["run", &path, "--seed", "1", "--no-write"]);
    let (stdout, stderr) = texts(&out);
    assert!(stdout.contains("outcome: deadline reached"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// A slow availability probe's sample completing after a faster probe's later one neither
/// crashes the binary nor loses the record; see
/// `engine::availability_samples_completing_out_of_order_do_not_break_recovery`.
#[test]
fn a_slow_probe_does_not_crash_the_drill() {
    let dir = tmp();
    let text = "name: slow-front
environment:
  kind: sim
  traffic: 590/s
  autoscaler: { enabled: false }
  database: { auto_failover: 10s }
fault: { kind: db_failover }
probes:
  - name: db
    check: { kind: sql, dsn: \"postgres://db/app\" }
    interval: 1s
  - name: front
    check: { kind: http, url: \"http://shop.internal/health\" }
    interval: 1s
    timeout: 3s
stability: { samples: 1, min_duration: 1s }
targets: { rto: 5m }
deadline: 10m
";
    let path = write(dir.path(), "slow-front.yaml", text);
    let reports = dir.path().join("reports");
    let out = run(&["run", &path, "--seed", "1", "--reports", reports.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(load_record(&json_files(&reports)[0]).outcome, Outcome::Recovered);
}

#[test]
fn absurd_sizes_and_durations_are_rejected_not_crashed_on() {
    let dir = tmp();
    let base = shipped_text("node-drain.yaml");
    for (from, to, words) in [
        ("replicas: 6", "replicas: 4000000000", "at most 10000"),
        (
            "interval: 500ms\n    timeout: 1s\n  - name: catalog-objects",
            "interval: 1ms\n    timeout: 1s\n  - name: catalog-objects",
            "at least 10ms",
        ),
        ("deadline: 10m", "deadline: 5000000000000000h", "longer than a year"),
        ("deadline: 10m", "deadline: 30d", "at most 7d"),
    ] {
        let path = write(dir.path(), "absurd.yaml", &replace_once(&base, from, to));
        for cmd in ["validate", "run"] {
            let out = run(&[cmd, &path, "--no-write"][..if cmd == "run" { 3 } else { 2 }]);
            let (_, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd} {to}: {stderr}");
            assert!(stderr.contains(words), "{cmd} {to}: {stderr}");
        }
    }
}

#[test]
fn plan_masks_secrets() {
    let dir = tmp();
    let text = replace_once(
        &shipped_text("db-failover.yaml"),
        "tags: [tier-1, database, checkout]",
        "tags: [tier-1, database, checkout]\nredact: [orders-db-1]",
    );
    let text = replace_once(
        &text,
        "http://checkout.internal/orders\"",
        "http://checkout.internal/orders?token=abc&token=def\"",
    );
    let path = write(dir.path(), "secret.yaml", &text);
    let out = run(&["plan", &path]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(0));
    for secret in ["orders-db-1", "abc", "def", "secret@"] {
        assert!(!stdout.contains(secret), "`{secret}` in the plan:\n{stdout}");
    }
    assert!(stdout.contains("token=***&token=***"));
}

/// `firedrill run scenarios/ | head -1`: a reader that stops reading ends the printing, not
/// the drills, which all run and write their records and renderings.
#[test]
fn a_closed_stdout_stops_the_printing_but_not_the_drills() {
    let reports = tmp();
    let mut child = firedrill()
        .args(["run", "scenarios/", "--seed", "1", "--report", "md", "--reports", reports.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("one line");
    assert!(first.starts_with("firedrill "), "{first}");
    // Like `head -1`: the drills have only begun, their tables are still to be printed.
    drop(stdout);
    let out = child.wait_with_output().expect("waiting for the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let files = json_files(reports.path());
    assert_eq!(files.len(), SHIPPED.len(), "{files:?}");
    for f in &files {
        assert!(f.with_extension("md").exists(), "no Markdown beside {}", f.display());
    }
}

/// A scenario listing `orders-db-1` under `redact:` and naming it in a step.
fn secret_scenario(extra_step_line: &str) -> String {
    format!(
        "name: live-secret
redact: [orders-db-1]
environment: {{ kind: sim }}
fault: {{ kind: db_failover, mode: crash }}
probes:
  - name: orders
    check: {{ kind: http, url: \"http://shop.internal/orders\" }}
    interval: 100ms
procedure:
  kind: steps
  steps:
    - name: Promote orders-db-1 by hand
      manual: Promote it.
{extra_step_line}      sim: {{ duration: 500ms, effect: promote_replica }}
steady_state: {{ samples: 2, timeout: 10s }}
stability: {{ samples: 2, min_duration: 200ms }}
targets: {{ rto: 5m }}
deadline: 10m
"
    )
}

#[test]
fn real_time_progress_lines_mask_the_scenarios_secrets() {
    let dir = tmp();
    let path = write(dir.path(), "live.yaml", &secret_scenario(""));
    let out = run(&["run", &path, "--pace", "real", "--seed", "1", "--no-write"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("step 1: Promote *** by hand"), "{stderr}");
    assert!(!stderr.contains("orders-db-1"), "{stderr}");
    assert!(!stdout.contains("orders-db-1"), "{stdout}");
}

#[test]
fn problems_in_a_scenario_mask_its_secrets() {
    let dir = tmp();
    // A budget longer than the deadline: the problem names the step, secret and all.
    let path = write(dir.path(), "bad.yaml", &secret_scenario("      budget: 45m\n"));
    for args in [vec!["validate", &path], vec!["run", &path, "--no-write"]] {
        let out = run(&args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(stderr.contains("step `Promote *** by hand`: budget 45m is longer than the deadline"), "{stderr}");
        assert!(!stderr.contains("orders-db-1"), "{args:?}: {stderr}");
    }
}

/// A reports folder that cannot be written is found before anything is injected: the
/// invocation is refused, naming the folder and the cause, and no drill runs.
#[test]
fn a_reports_folder_that_cannot_be_written_is_refused_before_any_drill() {
    let dir = tmp();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let reports = file.join("reports");
    let out = run(&["run", "scenarios/db-failover.yaml", "--seed", "1", "--reports", reports.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains(&format!("failed to write records to {}; nothing was run", reports.display())), "{stderr}");
    assert!(stderr.contains("Not a directory"), "{stderr}");
    assert!(!stdout.contains("outcome"), "no drill ran:\n{stdout}");
    assert!(!stdout.contains("results written to"), "{stdout}");
}

/// A reports folder that vanishes while a drill runs (here replaced by a file) does not lose
/// the drill's record: it is kept under `$XDG_STATE_HOME/firedrill/unsaved/`, stderr says
/// where and why, the exit code is 2, and nothing claims the results were written.
#[cfg(unix)]
#[test]
fn a_record_its_folder_cannot_take_after_the_drill_is_kept_in_the_state_folder() {
    let dir = tmp();
    let text = "name: vanishing-reports
environment: { kind: sim }
fault: { kind: db_failover, mode: crash }
probes:
  - name: orders
    check: { kind: http, url: \"http://shop.internal/orders\" }
    interval: 100ms
procedure:
  kind: steps
  steps:
    - name: Promote the replica
      manual: Promote it.
      sim: { duration: 2s, effect: promote_replica }
steady_state: { samples: 2, timeout: 10s }
stability: { samples: 2, min_duration: 200ms }
targets: { rto: 5m }
deadline: 10m
";
    let path = write(dir.path(), "vanishing.yaml", text);
    let reports = dir.path().join("reports");
    let state = dir.path().join("state");
    let mut child = firedrill()
        .args(["run", &path, "--pace", "real", "--seed", "1", "--reports", reports.to_str().unwrap()])
        .env("XDG_STATE_HOME", &state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            all += &line;
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    let mut stdout = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut all);
        all
    });
    // The check before the drill made the folder; once the fault is active, take it away.
    loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("the fault becomes active");
        if line.contains("fault active") {
            break;
        }
    }
    assert!(reports.is_dir(), "the check creates the reports folder");
    std::fs::remove_dir_all(&reports).unwrap();
    std::fs::write(&reports, "not a folder").unwrap();
    let status = child.wait().expect("waiting for the drill");
    let (stdout, stderr) = (stdout_reader.join().unwrap(), stderr_reader.join().unwrap());
    assert_eq!(status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("outcome: recovered"), "{stdout}");
    assert!(!stdout.contains("results written to"), "{stdout}");

    let unsaved = state.join("firedrill").join("unsaved");
    let files = json_files(&unsaved);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(load_record(&files[0]).outcome, Outcome::Recovered);
    let kept = format!("the record was kept at {} instead", files[0].display());
    assert!(stderr.contains(&kept), "{stderr}");
    assert!(stderr.contains(&format!("failed to write {}", reports.display())), "{stderr}");
    assert!(stdout.contains(&format!("result: {}", files[0].display())), "{stdout}");
}
