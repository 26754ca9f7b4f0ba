//! JUnit XML for CI gates: one test suite per drill, one test case per target, so a CI system
//! shows exactly which objective failed, with the measured value in the failure message.
//! A target that was not measured is a failure too: it was not shown to be met.

use std::fmt::Write;

use crate::metrics::Measurement;
use crate::record::DrillRecord;
use crate::score::{Status, TargetKind, Verdict};
use crate::text::xml_escape;
use crate::text::{measurement, secs};
use crate::timeline::Outcome;

/// Renders one drill as a JUnit `<testsuites>` document with one `<testsuite>`; `mttr` adds
/// the MTTR verdict over several drills (with the number of drills) as a further case.
pub fn render(r: &DrillRecord, mttr: Option<(&Verdict, &Measurement, usize)>) -> String {
    let m = &r.metrics;
    let mut cases = Vec::new();
    // A drill that could not take place is an error, not a set of failed targets.
    if matches!(r.outcome, Outcome::NotSteady | Outcome::Error) {
        let why = r
            .timeline
            .events
            .iter()
            .find_map(|e| match &e.kind {
                crate::timeline::EventKind::Error { message } => Some(message.clone()),
                crate::timeline::EventKind::SteadyState { ok: false, detail, .. } => detail.clone(),
                _ => None,
            })
            .unwrap_or_default();
        cases.push(Case {
            name: "drill ran".into(),
            time: 0.0,
            outcome: CaseOutcome::Error(format!("{}: {why}", r.outcome.as_str())),
        });
    }
    for v in &r.verdicts {
        let value = match v.target {
            TargetKind::Rto => &m.rto,
            TargetKind::Rpo => &m.rpo.measurement,
            TargetKind::Mttd | TargetKind::Mttr => &m.mttd,
        };
        cases.push(case(v, value, &v.target.as_str().to_uppercase(), None));
    }
    if let Some((v, value, n)) = mttr {
        cases.push(case(v, value, "MTTR", Some(format!(" (mean of {n} drills)"))));
    }
    let failures = cases.iter().filter(|c| matches!(c.outcome, CaseOutcome::Failure(..))).count();
    let errors = cases.iter().filter(|c| matches!(c.outcome, CaseOutcome::Error(..))).count();
    let duration = (r.ended_at.as_millisecond() - r.started_at.as_millisecond()) as f64 / 1000.0;
    let suite = format!("{} (run {}, seed {})", r.scenario.name, r.run, r.seed);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="firedrill" tests="{}" failures="{failures}" errors="{errors}" time="{duration:.3}">"#,
        cases.len()
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="0" time="{duration:.3}" timestamp="{}">"#,
        xml_escape(&suite),
        cases.len(),
        r.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    );
    out.push_str("    <properties>\n");
    for (k, v) in [
        ("scenario.file", r.scenario.file.as_str()),
        ("scenario.sha256", r.scenario.sha256.as_str()),
        ("environment", r.environment.as_str()),
        ("clock", r.clock.as_str()),
        ("outcome", r.outcome.as_str()),
        ("fault", r.scenario.fault_description.as_str()),
    ] {
        let _ = writeln!(out, r#"      <property name="{k}" value="{}"/>"#, xml_escape(v));
    }
    out.push_str("    </properties>\n");
    let class = format!("firedrill.{}", r.scenario.name);
    for c in &cases {
        let _ = write!(
            out,
            r#"    <testcase name="{}" classname="{}" time="{:.3}""#,
            xml_escape(&c.name),
            xml_escape(&class),
            c.time
        );
        match &c.outcome {
            CaseOutcome::Pass => out.push_str("/>\n"),
            CaseOutcome::Failure(kind, msg) => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(msg),
                    xml_escape(msg)
                );
            }
            CaseOutcome::Error(msg) => {
                let _ = writeln!(
                    out,
                    ">\n      <error type=\"drill_error\" message=\"{}\">{}</error>\n    </testcase>",
                    xml_escape(msg),
                    xml_escape(msg)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

struct Case {
    name: String,
    time: f64,
    outcome: CaseOutcome,
}

enum CaseOutcome {
    Pass,
    Failure(&'static str, String),
    Error(String),
}

fn case(v: &Verdict, value: &Measurement, label: &str, suffix: Option<String>) -> Case {
    let name = format!("{label} <= {}{}", secs(v.limit_s), suffix.unwrap_or_default());
    let shown = measurement(value);
    let outcome = match v.status {
        Status::Met => CaseOutcome::Pass,
        Status::Missed => {
            CaseOutcome::Failure("target_missed", format!("{label} {shown} exceeds the target of {}", secs(v.limit_s)))
        }
        Status::NotMeasured => CaseOutcome::Failure("not_measured", format!("{label} {shown}")),
    };
    Case { name, time: v.measured_s.unwrap_or(0.0), outcome }
}
