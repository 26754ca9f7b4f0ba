//! The kube drills against a real cluster: every scenarios/kube/*.yaml run through
//! `firedrill run`, as the README's CI example gates on them, when `FIREDRILL_KUBE_E2E=1` and
//! `FIREDRILL_KUBE_CONTEXT` names a context of the user's kubeconfig that holds the reference
//! stack (stacks/kube, README "Drill your kind cluster"). No API server can be installed here,
//! so this test is skipped here, saying so; the wire tests and the fake API server stand in.

use std::path::Path;

use crate::common::{firedrill, json_files, load_record, texts};

/// The context the shipped kube scenarios name: replaced by the one given, so that a cluster
/// named otherwise than the README's is drilled all the same.
const SHIPPED_CONTEXT: &str = "context: kind-firedrill";

#[test]
fn the_kube_scenarios_drill_a_real_cluster_when_asked() {
    let context = std::env::var("FIREDRILL_KUBE_CONTEXT").ok().filter(|c| !c.is_empty());
    let (true, Some(context)) = (std::env::var("FIREDRILL_KUBE_E2E").as_deref() == Ok("1"), context) else {
        eprintln!("skipped: set FIREDRILL_KUBE_E2E=1 and FIREDRILL_KUBE_CONTEXT to drill a real cluster");
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir("scenarios/kube")
        .expect("scenarios/kube")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no kube scenario to drill");
    let mut failed = Vec::new();
    for path in &paths {
        match drill(path, &context) {
            Ok(summary) => eprintln!("{summary}"),
            Err(why) => failed.push(why),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// Runs one scenario against `context` (its folder's relative paths kept by writing the copy
/// beside it): what it measured, or why it failed.
fn drill(path: &Path, context: &str) -> Result<String, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copy = path.with_file_name(format!(".kube-real-{}-{name}", std::process::id()));
    std::fs::write(&copy, text.replace(SHIPPED_CONTEXT, &format!("context: {context}"))).map_err(|e| e.to_string())?;
    let out = firedrill()
        .args(["run", copy.to_str().unwrap_or_default(), "--context", context, "--reports"])
        .arg(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output();
    let _ = std::fs::remove_file(&copy);
    let out = out.map_err(|e| format!("{name}: {e}"))?;
    let (stdout, stderr) = texts(&out);
    let files = json_files(dir.path());
    let [record] = &files[..] else { return Err(format!("{name}: no record\n{stdout}\n{stderr}")) };
    let record = load_record(record);
    match out.status.code() {
        Some(0) => Ok(format!(
            "{name}: {:?}, RTO {:?} s, RPO lost {} of {}",
            record.outcome,
            record.metrics.rto.seconds(),
            record.metrics.rpo.lost,
            record.metrics.rpo.acknowledged
        )),
        code => Err(format!("{name}: exit {code:?}, {:?}\n{stdout}\n{stderr}", record.outcome)),
    }
}
