//! Tabletop exercises: people in a room walk through a scenario's procedure while a
//! facilitator keeps time, drops in injects and writes down what the room marks. The
//! [`session`] is the exercise as a pure state machine, the [`console`] its terminal screen,
//! and [`write`] turns a finished session into a record (`environment: tabletop`, every time
//! declared by the room), an after-action report and action items for trackers.

pub mod console;
pub mod session;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::metrics::{self, MetricSpec};
use crate::record::{self, ClockKind, DrillRecord, EnvironmentKind, RecordError};
use crate::scenario::Scenario;
use crate::score::{self, TargetKind};
use crate::simulate::Prediction;
use crate::timeline::EventKind;
use session::Session;

/// Why an exercise could not be facilitated.
#[derive(Debug, thiserror::Error)]
pub enum TabletopError {
    /// Standard input or output is not a terminal (a pipe, a CI job): there is no room to show.
    #[error("firedrill tabletop needs a terminal: run it in an interactive terminal, not through a pipe")]
    NoTerminal,
    /// The terminal could not be set up, drawn on or read.
    #[error("failed to use the terminal")]
    Terminal(#[source] std::io::Error),
    /// The facilitator pressed Ctrl-C before `t0`: nothing ran, nothing is written.
    #[error("the exercise was interrupted (Ctrl-C) before it started; nothing was written")]
    Interrupted,
}

/// The files a finished exercise was written to.
#[derive(Debug)]
pub struct Written {
    /// The JSON record.
    pub record: PathBuf,
    /// The after-action report in Markdown.
    pub markdown: PathBuf,
    /// The after-action report in HTML.
    pub html: PathBuf,
    /// The action items as JSON.
    pub actions: PathBuf,
}

/// The record of a finished exercise: the drill record of its timeline, with detection and
/// recovery declared by the room rather than measured.
pub fn record(scenario: &Scenario, session: &Session) -> Result<DrillRecord, RecordError> {
    let timeline = session.timeline();
    let metrics = metrics::declared(&timeline, &MetricSpec::of(scenario));
    let verdicts = score::verdicts(scenario, &metrics);
    let score = score::score(&verdicts, &metrics);
    let mut record = DrillRecord::new(scenario, 0, 1, ClockKind::Real, timeline, metrics, verdicts, score)?;
    record.environment = EnvironmentKind::Tabletop;
    // The scenario's probes are for live drills: none observed a room.
    record.probes.clear();
    Ok(record)
}

/// The action items of a record, as JSON for trackers: `[{what, owner, due}]`.
pub fn action_items(record: &DrillRecord) -> serde_json::Value {
    let items = record.timeline.events.iter().filter_map(|e| match &e.kind {
        EventKind::ActionItem { what, owner, due } => {
            Some(serde_json::json!({ "what": what, "owner": owner, "due": due }))
        }
        _ => None,
    });
    serde_json::json!({ "scenario": record.scenario.name, "exercised_at": record.started_at, "items": items.collect::<Vec<_>>() })
}

/// One part of what only a room has, as a table.
struct Section {
    title: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

/// Who was there, the injects, the notes and decisions, the lessons, the action items, and
/// the declared times beside the prediction; empty parts left out.
fn sections(record: &DrillRecord, prediction: Result<&Prediction, &str>) -> Vec<Section> {
    let t0 = record.timeline.t0().unwrap_or(0);
    let events = &record.timeline.events;
    let pick = |f: &dyn Fn(String, &EventKind) -> Option<Vec<String>>| -> Vec<Vec<String>> {
        events.iter().filter_map(|e| f(format!("T+{}", session::clock(e.t_us.saturating_sub(t0))), &e.kind)).collect()
    };
    let sections = [
        Section {
            title: "Participants",
            columns: &["Name", "Role"],
            rows: pick(&|_, k| match k {
                EventKind::Participant { name, role } => Some(vec![name.clone(), role.clone()]),
                _ => None,
            }),
        },
        Section {
            title: "Injects",
            columns: &["T", "Inject"],
            rows: pick(&|t, k| match k {
                EventKind::InjectShown { text, .. } => Some(vec![t, text.clone()]),
                _ => None,
            }),
        },
        Section {
            title: "Notes, decisions and escalations",
            columns: &["T", "", "What was said"],
            rows: pick(&|t, k| match k {
                EventKind::Note { text } => Some(vec![t, "note".into(), text.clone()]),
                EventKind::Decision { text } => Some(vec![t, "decision".into(), text.clone()]),
                EventKind::Escalated { text, .. } => Some(vec![t, "escalated".into(), text.clone()]),
                _ => None,
            }),
        },
        Section {
            title: "Lessons learned",
            columns: &["Lesson"],
            rows: pick(&|_, k| match k {
                EventKind::Lesson { text } => Some(vec![text.clone()]),
                _ => None,
            }),
        },
        Section {
            title: "Action items",
            columns: &["What", "Owner", "Due"],
            rows: pick(&|_, k| match k {
                EventKind::ActionItem { what, owner, due } => Some(vec![what.clone(), owner.clone(), due.clone()]),
                _ => None,
            }),
        },
        Section {
            title: "Declared and predicted",
            columns: &["", ""],
            rows: vec![
                vec!["RTO declared".into(), crate::text::measurement(&record.metrics.rto)],
                vec!["MTTD declared".into(), crate::text::measurement(&record.metrics.mttd)],
                vec!["Simulation".into(), predicted(prediction)],
            ],
        },
    ];
    sections.into_iter().filter(|s| !s.rows.is_empty()).collect()
}

/// Said before the room's own sections, in both formats.
const DECLARED: &str = "Times below were declared by the room, not measured on a system.";

/// The after-action report in Markdown: the drill report of the record (timeline, steps
/// against their budgets, declared times), then what only a room has.
pub fn after_action_markdown(record: &DrillRecord, prediction: Result<&Prediction, &str>) -> String {
    let cell = |c: &str| c.replace('|', "\\|").replace('\n', " ");
    let mut out = crate::report::markdown::render(record);
    let _ = writeln!(out, "\n## Tabletop exercise\n\n{DECLARED}\n");
    for s in sections(record, prediction) {
        let _ = writeln!(out, "### {}\n\n| {} |\n|{}", s.title, s.columns.join(" | "), "---|".repeat(s.columns.len()));
        for row in &s.rows {
            let _ = writeln!(out, "| {} |", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        }
        let _ = writeln!(out);
    }
    out
}

/// The after-action report in HTML: the drill report, then the same sections as the Markdown.
pub fn after_action_html(record: &DrillRecord, prediction: Result<&Prediction, &str>) -> String {
    let esc = crate::text::xml_escape;
    let mut part = format!("<h2>Tabletop exercise</h2>\n<p>{DECLARED}</p>\n");
    for s in sections(record, prediction) {
        let head: String = s.columns.iter().map(|c| format!("<th>{}</th>", esc(c))).collect();
        let _ = write!(part, "<h3>{}</h3>\n<table><tr>{head}</tr>", esc(s.title));
        for row in &s.rows {
            let cells: String = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
            let _ = write!(part, "<tr>{cells}</tr>");
        }
        part.push_str("</table>\n");
    }
    let html = crate::report::html::render(record);
    match html.rfind("</body>") {
        Some(end) => format!("{}{part}{}", &html[..end], &html[end..]),
        None => html + &part,
    }
}

/// The prediction in one line, as the brief and the report say it.
pub fn predicted(prediction: Result<&Prediction, &str>) -> String {
    match prediction {
        Err(why) => format!("no prediction ({why})"),
        Ok(p) => {
            let median = p.rto.p50.map_or("not recovered".into(), crate::text::secs);
            match p.odds.iter().find(|o| o.target == TargetKind::Rto) {
                Some(o) => format!(
                    "P(meet RTO {}) = {:.0}% (95% {:.0}–{:.0}%), median RTO {median}, over {} simulated runs",
                    crate::text::secs(o.limit_s),
                    o.probability * 100.0,
                    o.low * 100.0,
                    o.high * 100.0,
                    p.runs
                ),
                None => format!("median RTO {median} over {} simulated runs (no RTO target)", p.runs),
            }
        }
    }
}

/// Writes the record, the after-action report (Markdown and HTML) and the action items into
/// `dir`, under one stem.
pub fn write(dir: &Path, record: &DrillRecord, prediction: Result<&Prediction, &str>) -> Result<Written, RecordError> {
    let name = record.file_name(jiff::Timestamp::now());
    let stem = name.trim_end_matches(".json").to_string();
    let put = |file: String, text: &str| record::write_atomic(dir, &file, text);
    Ok(Written {
        record: put(name, &record.to_json())?,
        markdown: put(format!("{stem}.md"), &after_action_markdown(record, prediction))?,
        html: put(format!("{stem}.html"), &after_action_html(record, prediction))?,
        actions: put(
            format!("{stem}.actions.json"),
            &(serde_json::to_string_pretty(&action_items(record)).expect("plain JSON") + "\n"),
        )?,
    })
}
