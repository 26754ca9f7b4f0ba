//! Stored records: old formats keep loading, verifying and rendering, and a file that cannot
//! be read is said, never skipped in silence.

use std::path::{Path, PathBuf};

use firedrill::record::{self, DisruptionInfo, DrillRecord, Integrity, LoadError};
use firedrill::report::{html, junit, markdown, terminal};
use firedrill::scenario::Disruption;

use crate::common::{repo, run, texts};

/// The checked-in records, one per older format, each byte for byte as a released firedrill
/// wrote it.
fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/records")
}

/// A record of format 0 (before records carried a format), written by firedrill at aae3393:
/// `db-failover`, seed 1, sim, with an RPO, lost writes and procedure steps.
///
/// This test must keep passing in every later version of firedrill: records are evidence
/// kept for years, so a newer firedrill reads, verifies and renders every older record. Never
/// edit the fixture or loosen this test to make a change pass; change the change.
#[test]
fn a_format_0_record_still_loads_verifies_and_renders() {
    let loaded = record::load_dir(&fixtures()).unwrap();
    assert!(loaded.unreadable.is_empty(), "{:?}", loaded.unreadable);
    let path = fixtures().join("format-0-db-failover.json");
    let (_, r) = loaded.records.iter().find(|(p, _)| *p == path).expect("the format 0 fixture loads");
    assert_eq!(r.format, 0);
    assert_eq!((r.scenario.name.as_str(), r.seed, r.run), ("db-failover", 1, 1));
    assert_eq!((r.metrics.rpo.lost, r.metrics.rpo.acknowledged), (1, 317));

    let checked = record::verify(&fixtures()).unwrap();
    assert!(checked.iter().any(|(p, _)| *p == path));
    assert!(checked.iter().all(|(_, status)| *status == Integrity::Intact), "{checked:?}");
    let out = run(&["report", fixtures().to_str().unwrap(), "--verify"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(" 0 failed verification"), "{stdout}");

    let rto = "3m 16.5s ± 0.50 s";
    let lost = "1 of 317 acknowledged writes lost";
    for (format, text) in
        [("terminal", terminal::drill(r, 1)), ("Markdown", markdown::render(r)), ("HTML", html::render(r))]
    {
        for fact in ["db-failover", rto, lost] {
            assert!(text.contains(fact), "the {format} rendering lacks `{fact}`:\n{text}");
        }
    }
    let xml = junit::render(r, None);
    for fact in ["db-failover", "RTO", "196.46"] {
        assert!(xml.contains(fact), "the JUnit rendering lacks `{fact}`:\n{xml}");
    }
}

/// This build's record: `format` first, hashed with the rest, and read back the same.
#[test]
fn a_new_record_leads_with_its_format_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = fixture_record();
    r.format = record::FORMAT;
    let written = record::write_atomic(dir.path(), "new.json", &r.to_json()).unwrap();
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.starts_with(&format!("{{\n  \"format\": {},\n", record::FORMAT)), "{text}");
    assert_eq!(DrillRecord::from_json(&text).unwrap().format, record::FORMAT);
    assert_eq!(record::verify(dir.path()).unwrap(), [(written, Integrity::Intact)]);
}

/// The disruption type: a new record keeps it through writing and reading; a record written
/// before it (format 0, or format 1 before the field) loads and verifies with none.
#[test]
fn the_disruption_type_round_trips_and_older_records_have_none() {
    assert_eq!(fixture_record().scenario.disruption, None);
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["run", "scenarios/s3-block.yaml", "--seed", "1", "--reports", dir.path().to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", texts(&out));
    let written = crate::common::json_files(dir.path());
    assert_eq!(written.len(), 1, "{written:?}");
    let text = std::fs::read_to_string(&written[0]).unwrap();
    let r = DrillRecord::from_json(&text).unwrap();
    assert_eq!(r.scenario.disruption, Some(DisruptionInfo { kind: Disruption::Region, declared: false }));
    assert_eq!(r.to_json(), text, "read and written back byte for byte");

    // The same record as a firedrill before disruption types wrote it: no field, its own hash.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["scenario"].as_object_mut().unwrap().remove("disruption").unwrap();
    value["record_sha256"] = DrillRecord::canonical_sha256(&value).into();
    let older = write(dir.path(), "older.json", &serde_json::to_string_pretty(&value).unwrap());
    let loaded = record::load_dir(dir.path()).unwrap();
    let (_, r) = loaded.records.iter().find(|(p, _)| *p == older).expect("the older record loads");
    assert_eq!(r.scenario.disruption, None);
    assert!(record::verify(dir.path()).unwrap().iter().all(|(_, status)| *status == Integrity::Intact));
}

/// A record from a newer firedrill is refused by number, naming both formats.
#[test]
fn a_record_of_a_newer_format_is_refused_with_both_numbers() {
    let newer = newer_record_text();
    match DrillRecord::from_json(&newer) {
        Err(e @ LoadError::NewerFormat { found: 99, supported: record::FORMAT }) => {
            let text = e.to_string();
            assert!(text.contains("99") && text.contains(&record::FORMAT.to_string()), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

/// Unreadable files in the reports folder: the MTTR history of `run` (of every scenario) and
/// the summary of `report` pass over them, say so once per file on stderr, and still succeed.
#[test]
fn unreadable_records_are_warned_about_not_skipped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(dir.path(), "junk.json", "this is not JSON");
    let newer = write(dir.path(), "newer.json", &newer_record_text());
    let reports = dir.path().to_str().unwrap();

    let out =
        run(&["run", "scenarios/db-failover.yaml", "scenarios/node-drain.yaml", "--seed", "1", "--reports", reports]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_skipped(&stderr, &junk, &newer);

    let out = run(&["report", reports]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_skipped(&stderr, &junk, &newer);
}

fn assert_skipped(stderr: &str, junk: &Path, newer: &Path) {
    let warning = |path: &Path, why: &str| format!("warning: skipped {}: {why}", path.display());
    let junk = warning(junk, "failed to parse as a drill record: ");
    let newer = warning(
        newer,
        &format!("failed to read record format 99: this firedrill reads formats up to {}\n", record::FORMAT),
    );
    for line in [junk, newer] {
        assert_eq!(stderr.matches(&line).count(), 1, "once: {line}\n{stderr}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn fixture_record() -> DrillRecord {
    DrillRecord::from_json(&std::fs::read_to_string(fixtures().join("format-0-db-failover.json")).unwrap()).unwrap()
}

/// The fixture as a future firedrill might write it: format 99, and a field renamed.
fn newer_record_text() -> String {
    let mut value: serde_json::Value = serde_json::to_value(fixture_record()).unwrap();
    value["format"] = 99.into();
    let steps = value.as_object_mut().unwrap().remove("steps").unwrap();
    value["procedure"] = steps;
    serde_json::to_string_pretty(&value).unwrap()
}
