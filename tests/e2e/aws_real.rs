//! The aws drills against a real account, when `FIREDRILL_AWS_E2E=1` and
//! `FIREDRILL_AWS_SCENARIOS` lists the user's scenario files (copies of scenarios/aws/*.yaml
//! naming their own tagged, throwaway resources; README "First real drill on AWS"); the
//! credentials come from the standard chain as for `firedrill run`. No AWS account exists
//! here, so this test is skipped here, saying so; moto (aws_run.rs) and the mocked control
//! plane (aws_mock.rs) stand in.

use crate::common::{firedrill, json_files, load_record, texts};
use firedrill::timeline::EventKind;

#[test]
fn the_aws_scenarios_drill_a_real_account_when_asked() {
    let listed = std::env::var("FIREDRILL_AWS_SCENARIOS").unwrap_or_default();
    let paths: Vec<&str> = listed.split(':').filter(|p| !p.is_empty()).collect();
    if std::env::var("FIREDRILL_AWS_E2E").as_deref() != Ok("1") || paths.is_empty() {
        eprintln!(
            "skipped: set FIREDRILL_AWS_E2E=1 and FIREDRILL_AWS_SCENARIOS=a.yaml:b.yaml to drill a real AWS account"
        );
        return;
    }
    let mut failed = Vec::new();
    for path in paths {
        let dir = tempfile::tempdir().unwrap();
        let out = firedrill()
            .args(["run", path, "--reports"])
            .arg(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        let files = json_files(dir.path());
        let [record] = &files[..] else {
            failed.push(format!("{path}: no record\n{stdout}\n{stderr}"));
            continue;
        };
        let record = load_record(record);
        let answers: Vec<&str> = record
            .timeline
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Answered { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        // A real failover is confirmed by the control plane, and a real block is put back.
        let confirmed = answers
            .iter()
            .any(|a| a.contains("confirmed by the control plane") || a.contains("restored byte for byte"));
        match (out.status.code(), confirmed) {
            (Some(0 | 1), true) => eprintln!(
                "{path}: {:?}, RTO {:?} s, lost {} write(s)\n{}",
                record.outcome,
                record.metrics.rto.seconds(),
                record.metrics.rpo.lost,
                answers.join("\n")
            ),
            _ => {
                failed.push(format!("{path}: exit {:?}\n{stdout}\n{stderr}\n{}", out.status.code(), answers.join("\n")))
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
