//! The terminal rendering of drills and plans: tables of metrics, verdicts and steps.
//!
//! Renders what the record holds; it never recomputes a metric.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use super::view::{verdict_cells, View};
use crate::drill::ScenarioRun;
use crate::record::DrillRecord;
use crate::scenario::{Scenario, StopCondition};
use crate::text::measurement;

/// The summary of one drill.
pub fn drill(r: &DrillRecord, of: u32) -> String {
    let mut out = String::new();
    let score = r.score.map(|s| format!("{s}/100")).unwrap_or_else(|| "n/a (no targets)".into());
    let _ = writeln!(
        out,
        "{}  run {}/{}  seed {}  {} ({} time)  outcome: {}  score: {}",
        r.scenario.name,
        r.run,
        of,
        r.seed,
        r.environment,
        r.clock,
        r.outcome.describe(),
        score
    );
    let _ = writeln!(out, "fault: {}", r.scenario.fault_description);
    let v = View::of(r);
    let heading = v.value_heading.to_lowercase();
    let mut t = Builder::from_iter(v.results);
    t.insert_record(0, ["metric", heading.as_str(), "target", "verdict", "margin"]);
    let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    if !v.steps.is_empty() {
        let mut t = Builder::from_iter(v.steps);
        t.insert_record(0, ["#", "step", "kind", "started", "took", "budget", "status"]);
        let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    }
    if r.metrics.flaps > 0 {
        let _ = writeln!(out, "flapping: {} healthy window(s) broke before they were stable", r.metrics.flaps);
    }
    for w in &v.warnings {
        let _ = writeln!(out, "{w}");
    }
    out
}

/// One line per drill of a repeated run.
pub fn runs(run: &ScenarioRun) -> String {
    let Some((first, _)) = run.drills.first() else { return String::new() };
    let mut t = Builder::default();
    t.push_record(["run", "seed", "outcome", "MTTD", "RTO", "RPO", "lost", "score"]);
    for (r, _) in &run.drills {
        t.push_record([
            r.run.to_string(),
            r.seed.to_string(),
            r.outcome.describe().to_string(),
            measurement(r.metrics.detection()),
            measurement(&r.metrics.rto),
            measurement(&r.metrics.rpo.measurement),
            r.metrics.rpo.lost.to_string(),
            r.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        ]);
    }
    format!(
        "{}  {} ({} time)\n{}\n",
        first.scenario.name,
        first.environment,
        first.clock,
        t.build().with(Style::rounded())
    )
}

/// The MTTR line of a scenario's drills.
pub fn mttr(name: &str, run: &ScenarioRun) -> String {
    let from = if run.history > 0 {
        format!("{} drill(s) now + {} earlier", run.drills.len(), run.history)
    } else {
        format!("{} drill(s)", run.drills.len())
    };
    let verdict = match &run.mttr_verdict {
        Some(v) => {
            let [target, verdict, margin] = verdict_cells(Some(v));
            format!("  target {target}: {verdict} ({margin})")
        }
        None => String::new(),
    };
    format!("{name}: MTTR {} over {from}{verdict}\n", measurement(&run.mttr))
}

/// The plan of a scenario: what would be injected, probed and timed. Runs nothing.
pub fn plan(s: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {} ({})", s.name, s.path.display());
    if !s.description.is_empty() {
        let _ = writeln!(out, "  {}", s.description.replace('\n', "\n  "));
    }
    let _ = writeln!(out, "environment: {}", s.environment.kind());
    if let crate::scenario::EnvironmentSpec::Docker(stack) = &s.environment {
        for c in &stack.containers {
            let command = if c.command.is_empty() { String::new() } else { format!(": {}", c.command.join(" ")) };
            let _ = writeln!(out, "  start `{}` from {}{command}", c.name, c.image);
        }
        for a in &stack.attach {
            let which = match (&a.container, &a.compose) {
                (Some(name), _) => format!("container {name}"),
                (None, Some(c)) => format!("Compose service {}/{}", c.project, c.service),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "  attach `{}`: {which} (never removed)", a.name);
        }
    }
    let _ = writeln!(
        out,
        "\n1. steady state: every availability probe ok {} times in a row (waits up to {})",
        s.steady_state.samples, s.steady_state.timeout
    );
    let _ = writeln!(out, "2. inject: {}", s.fault.describe());
    if let Some(d) = s.fault.duration() {
        let _ = writeln!(out, "   the fault lifts by itself after {d}");
    }
    let _ = writeln!(out, "3. probes, sampled throughout:");
    let mut t = Builder::default();
    t.push_record(["probe", "check", "target", "interval", "timeout", "measures"]);
    for p in &s.probes {
        t.push_record([
            p.name.clone(),
            p.check.kind().to_string(),
            p.check.target(),
            p.interval.to_string(),
            p.timeout().to_string(),
            if p.is_availability() { "availability (MTTD, RTO)" } else { "data loss (RPO)" }.into(),
        ]);
    }
    let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    match s.steps.is_empty() {
        true => {
            let _ = writeln!(out, "4. procedure: automatic (self-healing; nobody acts)");
        }
        false => {
            let budget = s.procedure_budget.map(|b| format!(", budget {b}")).unwrap_or_default();
            let _ = writeln!(out, "4. procedure: {} steps in order{budget}", s.steps.len());
            let is_sim = matches!(s.environment, crate::scenario::EnvironmentSpec::Sim(_));
            let mut t = Builder::default();
            let mut header = vec!["#", "step", "action", "budget", "escalate after"];
            if is_sim {
                header.push("in sim");
            }
            t.push_record(header);
            for (i, st) in s.steps.iter().enumerate() {
                let action = st.action.describe();
                let sim = st
                    .sim_duration
                    .as_ref()
                    .map(|d| format!("takes {d}; effect {}", st.sim_effect.as_str()))
                    .unwrap_or_default();
                let mut row = vec![
                    (i + 1).to_string(),
                    st.name.clone(),
                    action,
                    st.budget.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                    st.escalate_after.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                ];
                if is_sim {
                    row.push(sim);
                }
                t.push_record(row);
            }
            let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
        }
    }
    let _ = writeln!(
        out,
        "5. recovered when every availability probe is ok {} times in a row for at least {}; gives up {} after the fault",
        s.stability.samples, s.stability.min_duration, s.deadline
    );
    for sc in &s.stop_conditions {
        let (probe, held) = (sc.probe(), sc.holds_for());
        let what = match sc {
            StopCondition::ProbeFailing { .. } => "fails".to_string(),
            StopCondition::SloBreach { max_error_percent, p95, p99, .. } => {
                let mut limits: Vec<String> = max_error_percent.iter().map(|m| format!("errors > {m}%")).collect();
                limits.extend(p95.map(|d| format!("p95 > {d}")));
                limits.extend(p99.map(|d| format!("p99 > {d}")));
                format!("has {}", limits.join(" or "))
            }
        };
        let _ = writeln!(out, "   stop condition: abort and revert if `{probe}` {what} for {held}");
    }
    let _ = writeln!(out, "6. revert the fault, read the write ledgers back, check the steady state again");
    let mut targets: Vec<String> = [("RTO", s.rto), ("RPO", s.rpo), ("MTTD", s.mttd), ("MTTR", s.mttr)]
        .iter()
        .filter_map(|(n, t)| t.map(|t| format!("{n} <= {t}")))
        .collect();
    targets.extend(s.steps.iter().filter_map(|st| st.target.map(|t| format!("step \"{}\" done <= T+{t}", st.name))));
    let disruption = crate::record::DisruptionInfo { kind: s.disruption, declared: s.disruption_declared };
    let _ = writeln!(out, "\ndisruption: {disruption}, which picks the targets");
    let _ = writeln!(out, "targets: {}", if targets.is_empty() { "none".into() } else { targets.join(", ") });
    crate::redact::text(&out, &s.redact)
}
