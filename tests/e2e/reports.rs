//! Reports through the binary: renderings beside the records, the compliance summary, and
//! `--verify` catching an edited record.

use crate::common::{json_files, run, texts};

#[test]
fn run_writes_every_rendering_and_report_summarizes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().to_str().unwrap();
    let out = run(&[
        "run",
        "scenarios/db-failover.yaml",
        "scenarios/node-drain.yaml",
        "--seed",
        "4",
        "--reports",
        reports,
        "--report",
        "md,html,junit",
        "--operator",
        "On-call SRE",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let records = json_files(dir.path());
    assert_eq!(records.len(), 2);
    for r in &records {
        for ext in ["md", "html", "xml"] {
            let rendering = r.with_extension(ext);
            let text =
                std::fs::read_to_string(&rendering).unwrap_or_else(|_| panic!("{} missing", rendering.display()));
            assert!(text.contains("On-call SRE") || ext == "xml", "{ext} names the operator");
        }
    }

    let out = run(&["report", reports, "--format", "md,html,json", "--expect", "scenarios/"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("| db-failover | 1 |") && stdout.contains("| node-drain | 1 |"), "{stdout}");
    // Expected but never drilled: listed as gaps.
    assert!(stdout.contains("Not drilled in this period:** s3-block, traffic-surge"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("compliance-summary.summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["scenarios"].as_array().unwrap().len(), 4);
    assert!(dir.path().join("compliance-summary.html").exists());
    // The summary files are not mistaken for drill results.
    let out = run(&["report", reports]);
    assert!(!texts(&out).1.contains("warning: skipped"), "{:?}", texts(&out));

    // A period with no drills lists every scenario as a gap.
    let out = run(&["report", reports, "--since", "2001-01-01", "--until", "2001-02-01"]);
    assert!(texts(&out).0.contains("Not drilled in this period:** db-failover, node-drain"), "{:?}", texts(&out));
    let out = run(&["report", reports, "--since", "yesterday-ish"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("--since `yesterday-ish`"));

    let out = run(&["report", reports, "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("2 result(s) checked, 0 failed verification"));

    // Edit a score after the fact: caught, and named.
    let edited = &records[1];
    let text = std::fs::read_to_string(edited).unwrap();
    std::fs::write(edited, text.replacen("\"score\": ", "\"score\": 1", 1)).unwrap();
    let out = run(&["report", reports, "--verify"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains(&edited.display().to_string()) && stderr.contains("EDITED"), "{stderr}");
    assert!(stdout.contains("2 result(s) checked, 1 failed verification"));
}

/// Sim drills of three disruption types, one declared with its own target, then the summary:
/// a row per type, judged from what the drills measured.
#[test]
fn the_summary_has_a_row_per_disruption_type_after_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let shipped = std::fs::read_to_string(crate::common::repo().join("scenarios/db-failover.yaml")).unwrap();
    assert!(shipped.contains("targets:\n  rto: 15m"));
    let az = dir.path().join("rds-failover.yaml");
    std::fs::write(
        &az,
        shipped
            .replace("name: db-failover", "name: rds-failover")
            .replace("targets:\n  rto: 15m", "disruption: az\ntargets:\n  by_disruption: {az: {rto: 1s}}\n  rto: 15m"),
    )
    .unwrap();
    let out = run(&[
        "run",
        az.to_str().unwrap(),
        "scenarios/node-drain.yaml",
        "scenarios/s3-block.yaml",
        "--seed",
        "4",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    // The AZ drill's 1 s RTO cannot be met: exit 1, and the summary says so.
    assert_eq!(out.status.code(), Some(1), "{:?}", texts(&out));
    let records = json_files(&reports);
    let az_record = records.iter().find(|p| p.display().to_string().contains("rds-failover")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(az_record).unwrap()).unwrap();
    assert_eq!(record["scenario"]["disruption"], serde_json::json!({"kind": "az", "declared": true}));
    assert_eq!(record["targets"]["rto_s"], 1.0);

    let out = run(&["report", reports.to_str().unwrap(), "--format", "md,html,json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("## By disruption type"), "{stdout}");
    assert!(stdout.contains("| software | NOT DRILLED |"), "{stdout}");
    assert!(stdout.contains("| hardware | 1 | 2m |"), "{stdout}");
    assert!(stdout.contains("| az | 1 | 1.00 s |") && stdout.contains("BREACHED (1 of 1)"), "{stdout}");
    assert!(stdout.contains("| region | 1 |"), "{stdout}");
    let html = std::fs::read_to_string(reports.join("compliance-summary.html")).unwrap();
    assert!(html.contains("By disruption type") && html.contains("BREACHED (1 of 1)"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("compliance-summary.summary.json")).unwrap())
            .unwrap();
    let types: Vec<&str> =
        summary["by_disruption"].as_array().unwrap().iter().map(|t| t["disruption"].as_str().unwrap()).collect();
    assert_eq!(types, ["software", "hardware", "az", "region"]);
    assert_eq!(summary["by_disruption"][2]["rto"]["status"], "breached");
}

/// A sim drill through the binary with two step targets, one met and one breached: exit 1,
/// a JUnit case for each (the breached one failing), and a compliance-summary row for each.
#[test]
fn step_targets_are_judged_in_the_exit_code_junit_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let shipped = std::fs::read_to_string(crate::common::repo().join("scenarios/db-failover.yaml")).unwrap();
    let acknowledge = "    Acknowledge the page and open the incident channel: 5m\n";
    assert!(shipped.contains(acknowledge));
    let scenario = dir.path().join("db-failover.yaml");
    // Seed 42 confirms the failure 3m 25s after T: a 1 minute target is breached.
    let confirm = "    Confirm the primary is down and the replica is healthy: 1m\n";
    std::fs::write(&scenario, shipped.replace(acknowledge, &format!("{acknowledge}{confirm}"))).unwrap();
    let out = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "42",
        "--reports",
        reports.to_str().unwrap(),
        "--report",
        "junit",
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "a breached step target fails the run: {stdout}{stderr}");
    assert!(
        stdout.contains("│ step \"Confirm the primary is down and the replica is healthy\" done │ T+3m 25.3s"),
        "{stdout}"
    );

    let records = json_files(&reports);
    let record = crate::common::load_record(&records[0]);
    use firedrill::score::Status;
    let steps: Vec<_> = record.verdicts.iter().filter_map(|v| Some((v.step.as_deref()?, v.status))).collect();
    assert_eq!(
        steps,
        [
            ("Acknowledge the page and open the incident channel", Status::Met),
            ("Confirm the primary is down and the replica is healthy", Status::Missed)
        ]
    );
    let junit = std::fs::read_to_string(records[0].with_extension("xml")).unwrap();
    assert!(
        junit.contains(r#"<testcase name="step &quot;Acknowledge the page and open the incident channel&quot; done &lt;= 5m" classname="firedrill.db-failover" time="53.6"#),
        "{junit}"
    );
    let breached = junit.split("<testcase").find(|c| c.contains("Confirm the primary")).unwrap();
    assert!(
        breached.contains(r#"type="target_missed""#) && breached.contains("exceeds the target of 1m"),
        "{breached}"
    );

    let out = run(&["report", reports.to_str().unwrap(), "--format", "md,json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("## Step targets"), "{stdout}");
    assert!(
        stdout.contains(
            "| db-failover | Acknowledge the page and open the incident channel | 5m | 53.62 s | met (1 of 1) |"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("| db-failover | Confirm the primary is down and the replica is healthy | 1m | 3m 25.3s | BREACHED (1 of 1) |"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("compliance-summary.summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["step_targets"][1]["done"]["status"], "breached");
    assert_eq!(summary["scenarios"][0]["compliance"], 0.0, "a breached step target is a drill that missed a target");
}
