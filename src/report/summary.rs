//! The compliance summary over stored drill records: per scenario, for a period, how often it
//! was drilled, MTTR, RTO percentiles, worst RPO, how often every target was met, whether
//! recovery got slower, and which scenarios were not drilled at all (the gaps an auditor asks
//! about), and per disruption type (Resilience Hub's software, hardware, AZ, region) whether
//! the RTO and RPO targets were met or breached. Also the integrity check of the records.
//!
//! Every value here is measured by a drill: a target that was not measured counts for
//! nothing, never as met.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

use super::html::{table, STYLE};
use super::svg::rto_history;
use crate::metrics::{self, Measurement};
use crate::record::{drilled_at, DisruptionInfo, DrillRecord, EnvironmentKind, Loaded};
use crate::scenario::Disruption;
use crate::score::{Status, TargetKind, Verdict};
use crate::text::{error_chain, xml_escape};
use crate::text::{measurement, secs};

/// Whether recovery got slower than before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Mean RTO more than 10% above the earlier drills'.
    Slower,
    /// Mean RTO more than 10% below.
    Faster,
    /// Within 10%.
    Steady,
    /// Not enough drills to compare.
    Unknown,
}

/// One drill in a scenario's history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    /// When.
    pub drilled_at: Timestamp,
    /// The record file.
    pub file: String,
    /// Where it ran.
    pub environment: EnvironmentKind,
    /// What it rehearsed; `None` for a record written before disruption types.
    pub disruption: Option<DisruptionInfo>,
    /// Outcome.
    pub outcome: String,
    /// RTO.
    pub rto: Measurement,
    /// RPO.
    pub rpo: Measurement,
    /// Whether every target was met.
    pub all_met: bool,
}

/// One scenario over the period.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioSummary {
    /// Scenario name.
    pub scenario: String,
    /// Drills in the period that measured a system (every figure below is theirs).
    pub drills: usize,
    /// Tabletop exercises in the period: in the history, but their times were declared by a
    /// room, so they are left out of every figure here.
    pub tabletop_exercises: usize,
    /// Neither drilled nor exercised in the period: a gap.
    pub gap: bool,
    /// Latest drill in the period (or ever, for a gap).
    pub last_drilled: Option<Timestamp>,
    /// Mean RTO of the period's drills.
    pub mttr: Measurement,
    /// Median RTO of the recovered drills, seconds.
    pub p50_rto_s: Option<f64>,
    /// 95th percentile RTO of the recovered drills, seconds.
    pub p95_rto_s: Option<f64>,
    /// Drills that never recovered.
    pub unrecovered: usize,
    /// Worst RPO, seconds.
    pub worst_rpo_s: Option<f64>,
    /// Acknowledged writes lost over the period.
    pub lost_writes: u64,
    /// Share of drills that met every target (0–1).
    pub compliance: Option<f64>,
    /// Against the previous period (or, without one, the earlier half of the drills).
    pub trend: Trend,
    /// The RTO target of the latest drill, seconds.
    pub rto_target_s: Option<f64>,
    /// Every drill and exercise of the period, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// How one disruption type stands against its targets, in Resilience Hub's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    /// Every drill judged against a target met it.
    Met,
    /// At least one drill missed its target.
    Breached,
    /// Measured, but no drill of the type had a target for it.
    NoTarget,
    /// Drilled, but no drill measured it.
    NotMeasured,
    /// No drill of the type in the period: a gap.
    NotDrilled,
}

/// One objective (RTO or RPO) over the drills of one disruption type.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectiveSummary {
    /// Drills that measured it; one that never recovered counts, as the worst.
    pub measured: usize,
    /// The worst measured value.
    pub worst: Option<Measurement>,
    /// The lowest and highest target the drills were judged against, seconds.
    pub target_s: Option<(f64, f64)>,
    /// Drills that met their target.
    pub met: usize,
    /// Drills that missed it.
    pub breached: usize,
    /// The verdict over the period.
    pub status: PolicyStatus,
}

/// One disruption type over the period.
#[derive(Clone, Debug, Serialize)]
pub struct DisruptionSummary {
    /// The type.
    pub disruption: Disruption,
    /// Drills of the type in the period.
    pub drills: usize,
    /// Recovery time.
    pub rto: ObjectiveSummary,
    /// Data loss.
    pub rpo: ObjectiveSummary,
}

/// One step target of one scenario over the period ("team response < 5 min").
#[derive(Clone, Debug, Serialize)]
pub struct StepTargetSummary {
    /// The scenario.
    pub scenario: String,
    /// The step timed, by name.
    pub step: String,
    /// When the step was done, from `t0`, against its target.
    pub done: ObjectiveSummary,
}

/// The compliance summary.
#[derive(Clone, Debug, Serialize)]
pub struct ComplianceSummary {
    /// Start of the period (inclusive).
    pub since: Option<Timestamp>,
    /// End of the period (exclusive).
    pub until: Option<Timestamp>,
    /// Per scenario, gaps included.
    pub scenarios: Vec<ScenarioSummary>,
    /// Per disruption type, every type, gaps included.
    pub by_disruption: Vec<DisruptionSummary>,
    /// Drills of the period recorded before disruption types: in no type's row.
    pub untyped_drills: usize,
    /// Per scenario, each step target its drills were judged on, in the order they judge them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub step_targets: Vec<StepTargetSummary>,
    /// Files that could not be read as records.
    pub unreadable: Vec<(String, String)>,
}

/// Summarizes the loaded records for a period. `only` keeps one scenario; `expected` names
/// scenarios that should have been drilled (listed as gaps when they were not).
pub fn summarize(
    loaded: &Loaded,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    only: Option<&str>,
    expected: &[String],
) -> ComplianceSummary {
    let in_period = |t: Timestamp| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u);
    let mut by_scenario: BTreeMap<String, Vec<(Timestamp, &PathBuf, &DrillRecord)>> = BTreeMap::new();
    // A virtual-time drill with the same scenario file and seed is the same drill run again:
    // it is counted once, as MTTR counts it.
    let mut seen = std::collections::HashSet::new();
    for (p, r) in &loaded.records {
        if r.replay_key().is_some_and(|k| !seen.insert(k)) {
            continue;
        }
        by_scenario.entry(r.scenario.name.clone()).or_default().push((drilled_at(p, r), p, r));
    }
    for name in expected {
        by_scenario.entry(name.clone()).or_default();
    }
    let mut scenarios = Vec::new();
    let mut in_period_records = Vec::new();
    for (name, mut drills) in by_scenario {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        drills.sort_by_key(|d| d.0);
        let held: Vec<_> = drills.iter().filter(|d| in_period(d.0)).collect();
        // A room's declared times are never mixed with measured ones.
        let current: Vec<_> = held.iter().copied().filter(|d| d.2.environment != EnvironmentKind::Tabletop).collect();
        in_period_records.extend(current.iter().map(|d| d.2));
        let previous: Vec<_> = match (since, until) {
            (Some(s), u) => {
                let len = u.unwrap_or_else(Timestamp::now).as_second() - s.as_second();
                let start = s - jiff::SignedDuration::from_secs(len.max(0));
                drills
                    .iter()
                    .filter(|d| d.0 >= start && d.0 < s && d.2.environment != EnvironmentKind::Tabletop)
                    .collect()
            }
            (None, _) => vec![],
        };
        let rtos: Vec<Measurement> = current.iter().map(|d| d.2.metrics.rto.clone()).collect();
        let mut recovered: Vec<f64> = rtos.iter().filter_map(Measurement::seconds).collect();
        recovered.sort_by(f64::total_cmp);
        let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
        let (earlier, later): (Vec<f64>, Vec<f64>) = if since.is_some() {
            (previous.iter().filter_map(|d| d.2.metrics.rto.seconds()).collect(), recovered.clone())
        } else {
            let all: Vec<f64> = current.iter().filter_map(|d| d.2.metrics.rto.seconds()).collect();
            let half = all.len() / 2;
            (all[..half].to_vec(), all[half..].to_vec())
        };
        let trend = match (mean(&earlier), mean(&later)) {
            (Some(a), Some(b)) if b > a * 1.1 + 1e-9 => Trend::Slower,
            (Some(a), Some(b)) if b < a * 0.9 - 1e-9 => Trend::Faster,
            (Some(_), Some(_)) => Trend::Steady,
            _ => Trend::Unknown,
        };
        let all_met = |r: &DrillRecord| {
            matches!(r.outcome, crate::timeline::Outcome::Recovered)
                && r.verdicts.iter().all(|v| v.status == Status::Met)
        };
        let scored: Vec<bool> = current.iter().map(|d| all_met(d.2)).collect();
        scenarios.push(ScenarioSummary {
            scenario: name.clone(),
            drills: current.len(),
            tabletop_exercises: held.len() - current.len(),
            gap: held.is_empty(),
            last_drilled: current.last().or(drills.last().as_ref()).map(|d| d.0),
            mttr: metrics::mttr(&rtos),
            p50_rto_s: metrics::percentile(&recovered, 50.0),
            p95_rto_s: metrics::percentile(&recovered, 95.0),
            unrecovered: rtos.iter().filter(|m| matches!(m, Measurement::Unmet { .. })).count(),
            worst_rpo_s: current
                .iter()
                .filter_map(|d| d.2.metrics.rpo.measurement.seconds())
                .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b)))),
            lost_writes: current.iter().map(|d| d.2.metrics.rpo.lost).sum(),
            compliance: (!scored.is_empty())
                .then(|| scored.iter().filter(|m| **m).count() as f64 / scored.len() as f64),
            trend,
            rto_target_s: current.last().or(drills.last().as_ref()).and_then(|d| d.2.targets.rto_s),
            history: held
                .iter()
                .map(|d| HistoryEntry {
                    drilled_at: d.0,
                    file: d.1.display().to_string(),
                    environment: d.2.environment,
                    disruption: d.2.scenario.disruption,
                    outcome: d.2.outcome.describe().into(),
                    rto: d.2.metrics.rto.clone(),
                    rpo: d.2.metrics.rpo.measurement.clone(),
                    all_met: all_met(d.2),
                })
                .collect(),
        });
    }
    ComplianceSummary {
        since,
        until,
        scenarios,
        by_disruption: Disruption::ALL.into_iter().map(|d| by_disruption(d, &in_period_records)).collect(),
        untyped_drills: in_period_records.iter().filter(|r| r.scenario.disruption.is_none()).count(),
        step_targets: step_targets(&in_period_records),
        unreadable: loaded.unreadable.iter().map(|s| (s.path.display().to_string(), error_chain(&s.error))).collect(),
    }
}

/// One disruption type over the period's drills of that type.
fn by_disruption(disruption: Disruption, records: &[&DrillRecord]) -> DisruptionSummary {
    let of_type: Vec<&DrillRecord> =
        records.iter().copied().filter(|r| r.scenario.disruption.is_some_and(|d| d.kind == disruption)).collect();
    let rto = objective(&of_type, |v| v.target == TargetKind::Rto, |r| Some(&r.metrics.rto));
    let rpo = objective(&of_type, |v| v.target == TargetKind::Rpo, |r| Some(&r.metrics.rpo.measurement));
    DisruptionSummary { disruption, drills: of_type.len(), rto, rpo }
}

/// Every step target the period's drills were judged on, per scenario, with its verdicts over
/// the scenario's drills.
fn step_targets(records: &[&DrillRecord]) -> Vec<StepTargetSummary> {
    let mut timed: Vec<(&str, &str)> = Vec::new();
    for r in records {
        for step in r.verdicts.iter().filter_map(|v| v.step.as_deref()) {
            if !timed.contains(&(r.scenario.name.as_str(), step)) {
                timed.push((r.scenario.name.as_str(), step));
            }
        }
    }
    timed.sort_by_key(|(scenario, _)| *scenario);
    timed
        .into_iter()
        .map(|(scenario, step)| {
            let drills: Vec<&DrillRecord> = records.iter().copied().filter(|r| r.scenario.name == scenario).collect();
            let done = objective(
                &drills,
                |v| v.target == TargetKind::Step && v.step.as_deref() == Some(step),
                |r| {
                    let i = r.steps.iter().position(|s| s.name == step)?;
                    r.metrics.steps.get(i)?.done.as_ref()
                },
            );
            StepTargetSummary { scenario: scenario.to_string(), step: step.to_string(), done }
        })
        .collect()
}

/// One objective over drills: measured values and the verdicts `judges` picks only, so that a
/// drill that measured nothing neither meets nor breaches anything.
fn objective(
    drills: &[&DrillRecord],
    judges: impl Fn(&Verdict) -> bool,
    measured: impl Fn(&DrillRecord) -> Option<&Measurement>,
) -> ObjectiveSummary {
    let values: Vec<&Measurement> =
        drills.iter().filter_map(|r| measured(r)).filter(|m| !matches!(m, Measurement::NotMeasured { .. })).collect();
    // Never recovered is worse than any time; between times, the longest.
    let worst = values
        .iter()
        .copied()
        .max_by(|a, b| match (a, b) {
            (Measurement::Unmet { .. }, Measurement::Unmet { .. }) => std::cmp::Ordering::Equal,
            (Measurement::Unmet { .. }, _) => std::cmp::Ordering::Greater,
            (_, Measurement::Unmet { .. }) => std::cmp::Ordering::Less,
            _ => a.seconds().unwrap_or(0.0).total_cmp(&b.seconds().unwrap_or(0.0)),
        })
        .cloned();
    let judged: Vec<&Verdict> =
        drills.iter().flat_map(|r| &r.verdicts).filter(|v| judges(v) && v.status != Status::NotMeasured).collect();
    let met = judged.iter().filter(|v| v.status == Status::Met).count();
    let breached = judged.len() - met;
    let target_s = judged
        .iter()
        .map(|v| v.limit_s)
        .fold(None, |range: Option<(f64, f64)>, l| Some(range.map_or((l, l), |(lo, hi)| (lo.min(l), hi.max(l)))));
    let status = if drills.is_empty() {
        PolicyStatus::NotDrilled
    } else if breached > 0 {
        PolicyStatus::Breached
    } else if met > 0 {
        PolicyStatus::Met
    } else if values.is_empty() {
        PolicyStatus::NotMeasured
    } else {
        PolicyStatus::NoTarget
    };
    ObjectiveSummary { measured: values.len(), worst, target_s, met, breached, status }
}

fn opt_secs(x: Option<f64>) -> String {
    x.map(secs).unwrap_or_else(|| "-".into())
}

fn day(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_else(|| "never".into())
}

fn period(s: &ComplianceSummary) -> String {
    match (s.since, s.until) {
        (None, None) => "all stored drills".into(),
        (a, b) => format!(
            "{} to {}",
            a.map(|t| day(Some(t))).unwrap_or_else(|| "the first drill".into()),
            b.map(|t| day(Some(t))).unwrap_or_else(|| "now".into())
        ),
    }
}

fn rows(s: &ComplianceSummary) -> Vec<Vec<String>> {
    s.scenarios
        .iter()
        .map(|c| {
            vec![
                c.scenario.clone(),
                match (c.gap, c.tabletop_exercises) {
                    (true, _) => "NOT DRILLED".into(),
                    (false, 0) => c.drills.to_string(),
                    (false, n) => format!("{} + {n} tabletop", c.drills),
                },
                day(c.last_drilled),
                if c.drills == 0 { "-".into() } else { measurement(&c.mttr) },
                opt_secs(c.p50_rto_s),
                opt_secs(c.p95_rto_s),
                c.unrecovered.to_string(),
                opt_secs(c.worst_rpo_s),
                c.compliance.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "-".into()),
                match c.trend {
                    Trend::Slower => "SLOWER".into(),
                    Trend::Faster => "faster".into(),
                    Trend::Steady => "steady".into(),
                    Trend::Unknown => "-".into(),
                },
            ]
        })
        .collect()
}

const HEAD: [&str; 10] = [
    "Scenario",
    "Drills",
    "Last drilled",
    "MTTR",
    "p50 RTO",
    "p95 RTO",
    "Unrecovered",
    "Worst RPO",
    "Targets met",
    "Trend",
];

/// The cells of one objective: target, worst measured (`never` when a drill never reached it),
/// verdict.
fn objective_cells(o: &ObjectiveSummary, never: &str) -> [String; 3] {
    let target = match o.target_s {
        Some((lo, hi)) if lo == hi => secs(lo),
        Some((lo, hi)) => format!("{} to {}", secs(lo), secs(hi)),
        None => "-".into(),
    };
    let worst = match &o.worst {
        Some(Measurement::Unmet { .. }) => never.into(),
        Some(m) => secs(m.seconds().unwrap_or(0.0)),
        None => "-".into(),
    };
    let judged = o.met + o.breached;
    let status = match o.status {
        PolicyStatus::Met => format!("met ({} of {judged})", o.met),
        PolicyStatus::Breached => format!("BREACHED ({} of {judged})", o.breached),
        PolicyStatus::NoTarget => "no target".into(),
        PolicyStatus::NotMeasured => "not measured".into(),
        PolicyStatus::NotDrilled => "-".into(),
    };
    [target, worst, status]
}

fn disruption_rows(s: &ComplianceSummary) -> Vec<Vec<String>> {
    s.by_disruption
        .iter()
        .map(|d| {
            let mut row =
                vec![d.disruption.to_string(), if d.drills == 0 { "NOT DRILLED".into() } else { d.drills.to_string() }];
            row.extend(objective_cells(&d.rto, "not recovered"));
            row.extend(objective_cells(&d.rpo, "not recovered"));
            row
        })
        .collect()
}

const DISRUPTION_HEAD: [&str; 8] =
    ["Disruption", "Drills", "RTO target", "Worst RTO", "RTO", "RPO target", "Worst RPO", "RPO"];

fn step_target_rows(s: &ComplianceSummary) -> Vec<Vec<String>> {
    s.step_targets
        .iter()
        .map(|t| {
            let mut row = vec![t.scenario.clone(), t.step.clone()];
            row.extend(objective_cells(&t.done, "not done"));
            row
        })
        .collect()
}

const STEP_TARGET_HEAD: [&str; 5] = ["Scenario", "Step", "Done within", "Latest done (worst)", "Verdict"];

/// What the step-target table counts, said under it.
const STEP_TARGET_NOTE: &str = "Each time runs from T, the fault confirmed active, to the step done. A step that failed, was skipped or was not done by its target breaches it; a drill stopped before its target passed measured nothing.";

/// What the per-type table counts, said under it.
fn disruption_note(s: &ComplianceSummary) -> String {
    let mut note =
        "Measured by drills, never estimated: a drill that did not measure an objective neither meets nor breaches it."
            .to_string();
    if s.untyped_drills > 0 {
        let _ = write!(note, " {} drill(s) recorded before disruption types are in no row.", s.untyped_drills);
    }
    note
}

fn history_rows(c: &ScenarioSummary) -> Vec<Vec<String>> {
    c.history
        .iter()
        .map(|h| {
            vec![
                h.drilled_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                h.environment.to_string(),
                h.disruption.map_or("-".into(), |d| d.to_string()),
                h.outcome.clone(),
                measurement(&h.rto),
                measurement(&h.rpo),
                if h.all_met { "met".into() } else { "MISSED".into() },
                h.file.clone(),
            ]
        })
        .collect()
}

/// Said wherever tabletop exercises are counted beside drills.
const TABLETOP_NOTE: &str = "Tabletop exercises are listed in each scenario's history: their times were declared by the room, not measured on a system, so they are left out of every figure above and of the tables below.";

const HISTORY_HEAD: [&str; 8] = ["Drilled", "Environment", "Disruption", "Outcome", "RTO", "RPO", "Targets", "Record"];

/// The summary as Markdown.
pub fn render_md(s: &ComplianceSummary) -> String {
    let mut out = format!("# DR drill compliance summary\n\nPeriod: {}.\n\n", period(s));
    let md_table = |out: &mut String, head: &[&str], rows: &[Vec<String>]| {
        let _ = writeln!(out, "| {} |\n|{}", head.join(" | "), "---|".repeat(head.len()));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
        }
        out.push('\n');
    };
    md_table(&mut out, &HEAD, &rows(s));
    if s.scenarios.iter().any(|c| c.tabletop_exercises > 0) {
        let _ = writeln!(out, "{TABLETOP_NOTE}\n");
    }
    let gaps: Vec<&str> = s.scenarios.iter().filter(|c| c.gap).map(|c| c.scenario.as_str()).collect();
    if !gaps.is_empty() {
        let _ = writeln!(out, "**Not drilled in this period:** {}.\n", gaps.join(", "));
    }
    let _ = writeln!(out, "## By disruption type\n");
    md_table(&mut out, &DISRUPTION_HEAD, &disruption_rows(s));
    let _ = writeln!(out, "{}\n", disruption_note(s));
    if !s.step_targets.is_empty() {
        let _ = writeln!(out, "## Step targets\n");
        md_table(&mut out, &STEP_TARGET_HEAD, &step_target_rows(s));
        let _ = writeln!(out, "{STEP_TARGET_NOTE}\n");
    }
    for c in s.scenarios.iter().filter(|c| !c.gap) {
        let _ = writeln!(out, "## {}\n", c.scenario);
        md_table(&mut out, &HISTORY_HEAD, &history_rows(c));
    }
    if !s.unreadable.is_empty() {
        let _ = writeln!(out, "## Files that could not be read\n");
        for (p, e) in &s.unreadable {
            let _ = writeln!(out, "- `{p}`: {e}");
        }
    }
    out
}

/// The summary as a self-contained HTML page, with an RTO chart per scenario.
pub fn render_html(s: &ComplianceSummary) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>DR drill compliance summary</title><style>{STYLE}</style></head><body><h1>DR drill compliance summary</h1><p>Period: {}.</p>",
        xml_escape(&period(s))
    );
    table(&mut out, &HEAD, &rows(s));
    if s.scenarios.iter().any(|c| c.tabletop_exercises > 0) {
        let _ = write!(out, "<p>{}</p>", xml_escape(TABLETOP_NOTE));
    }
    let gaps: Vec<&str> = s.scenarios.iter().filter(|c| c.gap).map(|c| c.scenario.as_str()).collect();
    if !gaps.is_empty() {
        let _ = write!(
            out,
            "<div class=\"warning\"><strong>Not drilled in this period:</strong> {}</div>",
            xml_escape(&gaps.join(", "))
        );
    }
    out.push_str("<h2>By disruption type</h2>");
    table(&mut out, &DISRUPTION_HEAD, &disruption_rows(s));
    let _ = write!(out, "<p>{}</p>", xml_escape(&disruption_note(s)));
    if !s.step_targets.is_empty() {
        out.push_str("<h2>Step targets</h2>");
        table(&mut out, &STEP_TARGET_HEAD, &step_target_rows(s));
        let _ = write!(out, "<p>{}</p>", xml_escape(STEP_TARGET_NOTE));
    }
    for c in s.scenarios.iter().filter(|c| !c.gap) {
        let _ = write!(out, "<h2>{}</h2><div class=\"chart\">", xml_escape(&c.scenario));
        let points: Vec<(String, Option<f64>)> = c
            .history
            .iter()
            .filter(|h| h.environment != EnvironmentKind::Tabletop)
            .map(|h| (h.drilled_at.strftime("%Y-%m-%d %H:%M").to_string(), h.rto.seconds()))
            .collect();
        out.push_str(&rto_history(&points, c.rto_target_s));
        out.push_str("</div>");
        table(&mut out, &HISTORY_HEAD, &history_rows(c));
    }
    if !s.unreadable.is_empty() {
        out.push_str("<h2>Files that could not be read</h2><ul>");
        for (p, e) in &s.unreadable {
            let _ = write!(out, "<li><code>{}</code>: {}</li>", xml_escape(p), xml_escape(e));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}
