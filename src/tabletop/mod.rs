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
    /// The facilitator pressed Ctrl-C: nothing is written.
    #[error("the exercise was interrupted (Ctrl-C); nothing was written")]
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

/// The after-action report: the drill report of the record (timeline, steps against their
/// budgets, declared times), then what only a room has: who was there, the notes and
/// decisions, the lessons, the action items, and the declared times beside the prediction.
pub fn after_action_markdown(record: &DrillRecord, prediction: Result<&Prediction, &str>) -> String {
    let mut out = crate::report::markdown::render(record);
    let _ = writeln!(out, "\n## Tabletop exercise\n");
    let _ = writeln!(out, "Times below were declared by the room, not measured on a system.\n");
    let mut section = |title: &str, rows: Vec<String>| {
        if !rows.is_empty() {
            let _ = writeln!(out, "### {title}\n");
            rows.iter().for_each(|r| {
                let _ = writeln!(out, "- {r}");
            });
            let _ = writeln!(out);
        }
    };
    let t0 = record.timeline.t0().unwrap_or(0);
    let at = |t: u64| session::clock(t.saturating_sub(t0));
    let events = &record.timeline.events;
    let pick = |f: &dyn Fn(&EventKind) -> Option<String>| -> Vec<String> {
        events.iter().filter_map(|e| f(&e.kind).map(|s| s.replace("{T}", &at(e.t_us)))).collect()
    };
    section(
        "Participants",
        pick(&|k| match k {
            EventKind::Participant { name, role } => Some(format!("{name} ({role})")),
            _ => None,
        }),
    );
    section(
        "Injects",
        pick(&|k| match k {
            EventKind::InjectShown { text, .. } => Some(format!("T+{{T}}: {text}")),
            _ => None,
        }),
    );
    section(
        "Notes, decisions and escalations",
        pick(&|k| match k {
            EventKind::Note { text } => Some(format!("T+{{T}} note: {text}")),
            EventKind::Decision { text } => Some(format!("T+{{T}} decision: {text}")),
            EventKind::Escalated { text, .. } => Some(format!("T+{{T}} escalated: {text}")),
            _ => None,
        }),
    );
    section(
        "Lessons learned",
        pick(&|k| match k {
            EventKind::Lesson { text } => Some(text.clone()),
            _ => None,
        }),
    );
    let items = pick(&|k| match k {
        EventKind::ActionItem { what, owner, due } => Some(format!("| {what} | {owner} | {due} |")),
        _ => None,
    });
    if !items.is_empty() {
        let _ = writeln!(out, "### Action items\n\n| What | Owner | Due |\n|---|---|---|\n{}\n", items.join("\n"));
    }
    let _ = writeln!(out, "### Declared and predicted\n");
    let _ = writeln!(out, "- RTO declared: {}", crate::text::measurement(&record.metrics.rto));
    let _ = writeln!(out, "- MTTD declared: {}", crate::text::measurement(&record.metrics.mttd));
    let _ = writeln!(out, "- Simulation: {}", predicted(prediction));
    out
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
        html: put(format!("{stem}.html"), &crate::report::html::render(record))?,
        actions: put(
            format!("{stem}.actions.json"),
            &(serde_json::to_string_pretty(&action_items(record)).expect("plain JSON") + "\n"),
        )?,
    })
}
