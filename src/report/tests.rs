//! Tests of every rendering, made from real sim drills.

use std::path::Path;

use quick_xml::events::Event as Xml;

use super::summary::{self, Trend};
use super::{html, junit, markdown};
use crate::drill::drill_once;
use crate::record::{self, write_atomic, ClockKind, DrillRecord, Integrity};
use crate::scenario;

fn shipped(name: &str) -> scenario::Scenario {
    scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.yaml"))).unwrap()
}

/// The shipped db-failover scenario with its text changed, e.g. a tighter target.
fn db_failover_with(from: &str, to: &str) -> scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/db-failover.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    scenario::parse(&text.replace(from, to), &path).unwrap()
}

struct Case {
    name: String,
    failure: Option<(String, String)>,
}

type Attrs = Vec<(String, String)>;

/// Parses JUnit XML with a real XML parser: (testsuites attrs, testsuite attrs, cases).
fn parse_junit(xml: &str) -> (Attrs, Attrs, Vec<Case>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let attrs = |e: &quick_xml::events::BytesStart| -> Attrs {
        e.attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().into_owned(),
                )
            })
            .collect()
    };
    let (mut suites, mut suite, mut cases) = (vec![], vec![], Vec::<Case>::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) | Xml::Empty(e) => match e.name().as_ref() {
                b"testsuites" => suites = attrs(&e),
                b"testsuite" => suite = attrs(&e),
                b"testcase" => {
                    let a = attrs(&e);
                    let name = a.iter().find(|(k, _)| k == "name").unwrap().1.clone();
                    assert!(a.iter().any(|(k, _)| k == "classname") && a.iter().any(|(k, _)| k == "time"));
                    cases.push(Case { name, failure: None });
                }
                b"failure" | b"error" => {
                    let a = attrs(&e);
                    let get = |k: &str| a.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
                    cases.last_mut().unwrap().failure = Some((get("type"), get("message")));
                }
                _ => {}
            },
            Xml::Eof => break,
            _ => {}
        }
    }
    (suites, suite, cases)
}

fn attr<'a>(a: &'a [(String, String)], k: &str) -> &'a str {
    &a.iter().find(|(key, _)| key == k).unwrap_or_else(|| panic!("attribute {k}")).1
}

#[test]
fn junit_has_one_case_per_target_and_names_the_missed_one() {
    let met = drill_once(&shipped("db-failover"), 42, 1, false, None).unwrap();
    let (suites, suite, cases) = parse_junit(&junit::render(&met, None));
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let acknowledged = "step \"Acknowledge the page and open the incident channel\" done <= 5m";
    assert_eq!(names, ["RTO <= 15m", "RPO <= 5m", "MTTD <= 1m", acknowledged]);
    assert!(cases.iter().all(|c| c.failure.is_none()));
    assert_eq!((attr(&suites, "tests"), attr(&suites, "failures")), ("4", "0"));
    assert_eq!(attr(&suite, "name"), "db-failover (run 1, seed 42)");

    let tight = db_failover_with("rto: 15m", "rto: 30s");
    let missed = drill_once(&tight, 42, 1, false, None).unwrap();
    let (suites, suite, cases) = parse_junit(&junit::render(&missed, None));
    assert_eq!((attr(&suites, "failures"), attr(&suite, "failures")), ("1", "1"));
    let rto = cases.iter().find(|c| c.name == "RTO <= 30.00 s").unwrap();
    let (kind, message) = rto.failure.as_ref().expect("the RTO case fails");
    assert_eq!(kind, "target_missed");
    let measured = missed.metrics.rto.seconds().unwrap();
    assert!(message.contains(&crate::text::secs(measured)), "{message} lacks the measured RTO {measured}");
}

#[test]
fn junit_stays_well_formed_with_quotes_ampersands_and_control_characters() {
    let s = db_failover_with("name: checkout-orders", "name: \"ord\\u0001ers \\\"&<x>\\u000b\"");
    let r = drill_once(&s, 42, 1, false, None).unwrap();
    let xml = junit::render(&r, None);
    let (_, _, cases) = parse_junit(&xml);
    assert_eq!(cases.len(), 4);
    assert!(!xml.contains('\u{1}') && !xml.contains('\u{b}'));
}

#[test]
fn junit_counts_a_drill_that_could_not_run_as_an_error() {
    // Overloaded from the start: never steady, so nothing is injected.
    let s = db_failover_with("traffic: 300/s", "traffic: 5000/s");
    let r = drill_once(&s, 1, 1, false, None).unwrap();
    assert_eq!(r.outcome, crate::timeline::Outcome::NotSteady);
    let (suites, _, cases) = parse_junit(&junit::render(&r, None));
    assert_eq!(attr(&suites, "errors"), "1");
    assert_eq!(cases[0].failure.as_ref().unwrap().0, "drill_error");
    // The targets were not measured: failures, never passes.
    assert!(cases[1..].iter().all(|c| c.failure.as_ref().is_some_and(|f| f.0 == "not_measured")));
}

#[test]
fn html_is_self_contained_and_has_the_timeline_chart() {
    let r = drill_once(&shipped("s3-block"), 7, 1, false, None).unwrap();
    let page = html::render(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg") && page.contains("</svg>"));
    for fetch in ["<script", "<link", "src=", "href=", "url(", "@import", "@font-face"] {
        assert!(!page.contains(fetch), "the page fetches something: {fetch}");
    }
    // The chart shows the fault window, a lane per probe and step, and the markers.
    for text in ["fault active", "media-objects", "Switch object reads", "RTO target 15m", "recovered T+"] {
        assert!(page.contains(text), "chart lacks {text}");
    }
    assert!(page.contains("<table>") && page.contains("Drill report: s3-block"));
}

#[test]
fn markdown_reads_as_a_report_with_evidence() {
    let r = drill_once(&shipped("db-failover"), 42, 1, false, None).unwrap();
    assert!(r.metrics.rpo.lost > 0, "seed 42 loses writes");
    let md = markdown::render(&r);
    for section in [
        "# Drill report: db-failover",
        "## Results",
        "## Procedure",
        "## Data loss evidence",
        "## Probes",
        "## Timeline",
    ] {
        assert!(md.contains(section), "{section}");
    }
    assert!(md.contains(&crate::text::measurement(&r.metrics.rto)), "RTO with its uncertainty");
    assert!(md.contains(r.scenario.sha256.as_str()));
    assert!(md.contains("fault confirmed active (T)") && md.contains("fault reverted"));
    assert!(md.contains(&format!("{} of {} acknowledged writes", r.metrics.rpo.lost, r.metrics.rpo.acknowledged)));
}

#[test]
fn secrets_never_reach_any_format() {
    let s = db_failover_with(
        "tags: [tier-1, database, checkout]",
        "tags: [tier-1, database, checkout]\nredact: [orders-db, checkout.internal, sure]",
    );
    let r = drill_once(&s, 42, 1, false, None).unwrap();
    let outputs = [r.to_json(), markdown::render(&r), html::render(&r), junit::render(&r, None)];
    for out in &outputs {
        for secret in ["secret@", "orders-db", "checkout.internal"] {
            assert!(!out.contains(secret), "`{secret}` leaked");
        }
    }
    // `sure` is inside the word `measured` of the format: masking it there would break the
    // record, so words of the format are left alone and the record stays whole.
    let back: DrillRecord = serde_json::from_str(&outputs[0]).unwrap();
    assert!(matches!(back.metrics.rto, crate::metrics::Measurement::Measured { .. }));
    assert!(outputs[0].contains("firedrill:***@"));
}

#[test]
fn verify_catches_an_edited_record_and_tolerates_junk() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = vec![];
    for seed in [1, 2] {
        let r = drill_once(&shipped("node-drain"), seed, 1, false, None).unwrap();
        let name = r.file_name(jiff::Timestamp::now());
        write_atomic(dir.path(), &name, &r.to_json()).unwrap();
        names.push(name);
    }
    let all = record::verify(dir.path()).unwrap();
    assert!(all.iter().all(|(_, s)| *s == Integrity::Intact), "{all:?}");

    // Someone improves an RTO after the fact.
    let edited = dir.path().join(&names[1]);
    let text = std::fs::read_to_string(&edited).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["metrics"]["rto"]["seconds"] = serde_json::json!(1.0);
    std::fs::write(&edited, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::write(dir.path().join("junk.json"), "{ not json").unwrap();

    let checked = record::verify(dir.path()).unwrap();
    let status = |n: &str| checked.iter().find(|(p, _)| p.ends_with(n)).unwrap().1.clone();
    assert_eq!(status(&names[0]), Integrity::Intact);
    assert!(matches!(status(&names[1]), Integrity::Tampered { .. }));
    assert!(matches!(status("junk.json"), Integrity::Unreadable { .. }));

    // The summary reads what it can and reports the rest.
    let loaded = record::load_dir(dir.path()).unwrap();
    assert_eq!((loaded.records.len(), loaded.unreadable.len()), (2, 1));
}

#[test]
fn summary_lists_gaps_and_flags_slower_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let base = drill_once(&shipped("node-drain"), 3, 1, false, None).unwrap();
    // Four drills on successive days, each recovering more slowly.
    for (day, rto) in [(1, 20.0), (2, 22.0), (3, 40.0), (4, 45.0)] {
        let mut r: DrillRecord = base.clone();
        r.clock = ClockKind::Real;
        r.started_at = format!("2026-03-0{day}T10:00:00Z").parse().unwrap();
        r.metrics.rto = crate::metrics::Measurement::Measured { seconds: rto, uncertainty: 0.25, note: None };
        write_atomic(dir.path(), &format!("d{day}.json"), &r.to_json()).unwrap();
    }
    let loaded = record::load_dir(dir.path()).unwrap();
    let expected = vec!["node-drain".to_string(), "db-failover".to_string()];
    let s = summary::summarize(&loaded, None, None, None, &expected);
    let drain = s.scenarios.iter().find(|c| c.scenario == "node-drain").unwrap();
    assert_eq!(drain.drills, 4);
    assert_eq!(drain.trend, Trend::Slower);
    assert_eq!(drain.mttr.seconds(), Some(31.75));
    assert_eq!((drain.p50_rto_s, drain.p95_rto_s), (Some(22.0), Some(45.0)));
    let gap = s.scenarios.iter().find(|c| c.scenario == "db-failover").unwrap();
    assert!(gap.gap && gap.drills == 0);

    // A period that holds only the last two drills, compared with the two before it.
    let since = "2026-03-03T00:00:00Z".parse().ok();
    let until = "2026-03-05T00:00:00Z".parse().ok();
    let s = summary::summarize(&loaded, since, until, Some("node-drain"), &[]);
    assert_eq!(s.scenarios.len(), 1);
    assert_eq!((s.scenarios[0].drills, s.scenarios[0].trend), (2, Trend::Slower));
    let md = summary::render_md(&s);
    assert!(md.contains("SLOWER") && md.contains("2026-03-03 to 2026-03-05"));
    let page = summary::render_html(&s);
    assert!(page.contains("<svg") && !page.contains("src=") && !page.contains("href="));
}

#[test]
fn summary_judges_each_disruption_type_from_measured_values_only() {
    use crate::metrics::Measurement;
    use crate::scenario::Disruption;
    use summary::PolicyStatus;

    let dir = tempfile::tempdir().unwrap();
    // An AZ drill held to an RTO no failover meets; its RPO falls back to the plain 5m.
    let az = db_failover_with(
        "targets:\n  rto: 15m",
        "disruption: az\ntargets:\n  by_disruption: {az: {rto: 1s}}\n  rto: 15m",
    );
    let az = drill_once(&az, 1, 1, false, None).unwrap();
    assert_eq!(az.targets.rto_s, Some(1.0), "the type's target scored the drill");
    let region = drill_once(&shipped("s3-block"), 2, 1, false, None).unwrap();
    // The same region drill again, but aborted before it measured anything: it counts as a
    // drill and neither meets nor breaches.
    let mut unmeasured = region.clone();
    unmeasured.clock = ClockKind::Real;
    unmeasured.metrics.rto = Measurement::NotMeasured { reason: "aborted".into() };
    unmeasured.verdicts.iter_mut().for_each(|v| v.status = crate::score::Status::NotMeasured);
    // A record written before disruption types: in no row.
    let mut old = drill_once(&shipped("node-drain"), 3, 1, false, None).unwrap();
    old.scenario.disruption = None;
    for (i, r) in [&az, &region, &unmeasured, &old].into_iter().enumerate() {
        write_atomic(dir.path(), &format!("r{i}.json"), &r.to_json()).unwrap();
    }
    let s = summary::summarize(&record::load_dir(dir.path()).unwrap(), None, None, None, &[]);
    let row = |d: Disruption| s.by_disruption.iter().find(|r| r.disruption == d).unwrap();
    assert_eq!(s.by_disruption.len(), 4);
    assert_eq!(s.untyped_drills, 1);
    assert_eq!((row(Disruption::Az).drills, row(Disruption::Az).rto.status), (1, PolicyStatus::Breached));
    assert_eq!(row(Disruption::Az).rto.target_s, Some((1.0, 1.0)));
    assert_eq!(row(Disruption::Az).rto.worst, Some(az.metrics.rto.clone()));
    assert_eq!(row(Disruption::Hardware).drills, 0, "the old node-drain record is not guessed at");
    assert_eq!(row(Disruption::Software).rto.status, PolicyStatus::NotDrilled);
    let r = row(Disruption::Region);
    assert_eq!((r.drills, r.rto.measured, r.rto.met + r.rto.breached), (2, 1, 1));

    let md = summary::render_md(&s);
    assert!(md.contains("## By disruption type"), "{md}");
    assert!(md.contains("| az | 1 | 1.00 s |") && md.contains("| BREACHED (1 of 1) |"), "{md}");
    assert!(md.contains("| software | NOT DRILLED | - |"), "{md}");
    assert!(md.contains("1 drill(s) recorded before disruption types are in no row."), "{md}");
    // Each drill's row in its scenario's history says its type, and whether it was inferred.
    assert!(md.contains("| sim | az | recovered |") && md.contains("| sim | region (inferred) |"), "{md}");
    assert!(md.contains("| sim | - | recovered |"), "{md}");
    let page = summary::render_html(&s);
    assert!(page.contains("<h2>By disruption type</h2>") && page.contains("BREACHED (1 of 1)"), "{page}");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["by_disruption"][2]["disruption"], "az");
    assert_eq!(json["by_disruption"][2]["rto"]["status"], "breached");
}

/// Opens the HTML report in a real headless browser and reads back the DOM it built. Needs
/// Debian's `chromium`; CI installs it, so there a missing browser is a failure.
#[test]
fn html_opens_in_a_real_browser_with_its_chart() {
    let Some(browser) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium for this test");
        eprintln!("skipped: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let r = drill_once(&shipped("traffic-surge"), 3, 1, false, None).unwrap();
    let page = write_atomic(dir.path(), "report.html", &html::render(&r)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    // Bounded: a browser that hangs must fail the test, not stall the suite.
    let out = std::process::Command::new("timeout")
        .args([
            "120",
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<title>Drill report: traffic-surge</title>"), "the page did not load: {dom:.300}");
    let svg = dom.split("<svg").nth(1).expect("the browser built the chart");
    assert!(svg.matches("<rect").count() > 10, "the chart has its lanes and bars");
    assert!(svg.contains("storefront-home") && svg.contains("RTO target"));
}
