//! JUnit XML for CI gates: one test suite per drill, one test case per target, so a CI system
//! shows exactly which objective failed, with the measured value in the failure message.
//! A target that was not measured is a failure too: it was not shown to be met.
//!
//! The XML is written by `quick-junit`, the writer nextest uses, which escapes and drops what
//! XML cannot carry.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::view::step_done;
use crate::metrics::Measurement;
use crate::record::DrillRecord;
use crate::score::{Status, TargetKind, Verdict};
use crate::text::{measurement, secs};
use crate::timeline::{EventKind, Outcome};

/// Renders one drill as a JUnit `<testsuites>` document with one `<testsuite>`; `mttr` adds
/// the MTTR verdict over several drills (with the number of drills) as a further case.
pub fn render(r: &DrillRecord, mttr: Option<(&Verdict, &Measurement, usize)>) -> String {
    let m = &r.metrics;
    let class = format!("firedrill.{}", r.scenario.name);
    let mut suite = TestSuite::new(format!("{} (run {}, seed {})", r.scenario.name, r.run, r.seed));
    let duration = r.ended_at.duration_since(r.started_at).try_into().unwrap_or_default();
    suite.set_time(duration);
    if let Some(started) = chrono::DateTime::from_timestamp_millis(r.started_at.as_millisecond()) {
        suite.set_timestamp(started);
    }
    suite.add_properties(
        [
            ("scenario.file", r.scenario.file.as_str()),
            ("scenario.sha256", r.scenario.sha256.as_str()),
            ("environment", r.environment.as_str()),
            ("clock", r.clock.as_str()),
            ("outcome", r.outcome.describe()),
            ("fault", r.scenario.fault_description.as_str()),
        ]
        .map(|(name, value)| Property::new(name, value)),
    );
    // A drill that could not take place is an error, not a set of failed targets.
    if matches!(r.outcome, Outcome::NotSteady | Outcome::Error) {
        let why = r
            .timeline
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Error { message } => Some(message.clone()),
                EventKind::SteadyState { ok: false, detail, .. } => detail.clone(),
                _ => None,
            })
            .unwrap_or_default();
        let status = non_success(NonSuccessKind::Error, "drill_error", format!("{}: {why}", r.outcome.describe()));
        suite.add_test_case(case("drill ran".into(), &class, 0.0, status));
    }
    for v in &r.verdicts {
        let done;
        let value = match v.target {
            TargetKind::Rto => &m.rto,
            TargetKind::Rpo => &m.rpo.measurement,
            TargetKind::Mttd | TargetKind::Mttr => m.detection(),
            TargetKind::Step => {
                done = step_done(r, v);
                &done
            }
        };
        suite.add_test_case(verdict_case(v, value, &v.label(), "", &class));
    }
    if let Some((v, value, n)) = mttr {
        suite.add_test_case(verdict_case(v, value, "MTTR", &format!(" (mean of {n} drills)"), &class));
    }
    let mut report = Report::new("firedrill");
    report.set_time(duration);
    report.add_test_suite(suite);
    report.to_string().expect("writing XML into memory does not fail")
}

/// The case of one target: passed when met, failed with the measured value otherwise.
fn verdict_case(v: &Verdict, value: &Measurement, label: &str, suffix: &str, class: &str) -> TestCase {
    let name = format!("{label} <= {}{suffix}", secs(v.limit_s));
    let shown = measurement(value);
    let status = match v.status {
        Status::Met => TestCaseStatus::success(),
        Status::Missed => non_success(
            NonSuccessKind::Failure,
            "target_missed",
            format!("{label} {shown} exceeds the target of {}", secs(v.limit_s)),
        ),
        Status::NotMeasured => non_success(NonSuccessKind::Failure, "not_measured", format!("{label} {shown}")),
    };
    case(name, class, v.measured_s.unwrap_or(0.0), status)
}

/// A failure or error whose message is also its text, for CI systems that show only one.
fn non_success(kind: NonSuccessKind, ty: &str, message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty).set_message(message.as_str()).set_description(message);
    status
}

fn case(name: String, class: &str, seconds: f64, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(class).set_time(Duration::try_from_secs_f64(seconds).unwrap_or_default());
    case
}
