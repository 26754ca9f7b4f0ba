//! `firedrill simulate` through the binary.

use crate::common::{run, texts, SHIPPED};

fn prediction(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    serde_json::from_slice(&out.stdout).expect("json output")
}

#[test]
fn every_shipped_scenario_simulates_deterministically_per_seed() {
    for name in SHIPPED {
        let path = format!("scenarios/{name}");
        let args = ["simulate", path.as_str(), "--runs", "5000", "--seed", "3", "--format", "json"];
        let a = prediction(&args);
        let b = prediction(&[&args[..], &["--threads", "1"]].concat());
        assert_eq!(a, b, "{name}: the same seed on another thread count");
        let p = &a[0]["prediction"];
        assert_eq!(p["runs"], 5000);
        assert!(p["rto"]["p50"].as_f64().unwrap() > 0.0, "{name} has an impact to recover from");
        let other = prediction(&["simulate", path.as_str(), "--runs", "5000", "--seed", "4", "--format", "json"]);
        assert_ne!(a, other, "{name}: another seed");
    }
}

#[test]
fn a_what_if_override_changes_the_prediction_and_compare_shows_both() {
    // Automating the confirmation step (1m–4m, triangular) to 10 s shortens the RTO.
    let args = ["simulate", "scenarios/db-failover.yaml", "--runs", "20000", "--seed", "1", "--format", "json"];
    let set = "procedure.steps[1].sim.duration=10s";
    let both = prediction(&[&args[..], &["--set", set, "--compare"]].concat());
    let (before, after) = (&both[0]["prediction"]["rto"]["mean"], &both[1]["prediction"]["rto"]["mean"]);
    assert_eq!((both[0]["variant"].as_str(), both[1]["variant"].as_str()), (Some("as is"), Some("with --set")));
    let saved = before.as_f64().unwrap() - after.as_f64().unwrap();
    assert!((90.0..150.0).contains(&saved), "mean triangular(1m, 1m, 4m) is 130 s, minus 10 s: saved {saved}");

    let out = run(&["simulate", "scenarios/db-failover.yaml", "--runs", "20000", "--set", set, "--compare"]);
    let (stdout, _) = texts(&out);
    assert!(stdout.contains("as is") && stdout.contains("with --set") && stdout.contains("P(RTO <= 15m)"), "{stdout}");
    assert!(stdout.contains("what drives the RTO") && stdout.contains("RTO distribution"));

    let out = run(&["simulate", "scenarios/db-failover.yaml", "--runs", "10", "--set", "procedure.steps[9].budget=1m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("there is no [9]"));
}

#[test]
fn a_runbook_with_budgets_only_is_simulated_around_its_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budgets.yaml");
    // Two manual steps with budgets and no sim durations: triangular(0.5b, 0.8b, 1.25b),
    // mean 0.85 b; the second promotes. RTO mean = 0.85 × (4m + 2m) + reconnect 3 s.
    std::fs::write(
        &path,
        r#"
name: budgets
environment: { kind: sim, database: { reconnect: 3s } }
fault: { kind: db_failover }
probes:
  - { name: orders, check: { kind: http, url: "http://x/orders" } }
procedure:
  kind: steps
  steps:
    - { name: page, manual: ack, budget: 4m }
    - { name: promote, manual: promote, budget: 2m, sim: { effect: promote_replica } }
targets: { rto: 10m }
"#,
    )
    .unwrap();
    let p = prediction(&["simulate", path.to_str().unwrap(), "--runs", "50000", "--seed", "2", "--format", "json"]);
    let mean = p[0]["prediction"]["rto"]["mean"].as_f64().unwrap();
    assert!((mean - (0.85 * 360.0 + 3.0)).abs() < 1.5, "mean RTO {mean}");
}
