//! The terminal rendering of drills and plans: tables of metrics, verdicts and steps.
//!
//! Renders what the record holds; it never recomputes a metric.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use super::view::View;
use super::DrillRecord;
use crate::drill::ScenarioRun;
use crate::duration::Dur;
use crate::metrics::Measurement;
use crate::scenario::{Scenario, StepAction};
use crate::score::{Status, Verdict};

/// Seconds as people read them: `12.40 s`, or `8m 12.4s` (`15m`) past a minute.
pub fn secs(s: f64) -> String {
    if s < 60.0 {
        return format!("{s:.2} s");
    }
    let m = (s / 60.0).floor();
    let rest = s - m * 60.0;
    if rest < 0.05 {
        format!("{m}m")
    } else {
        format!("{m}m {rest:.1}s")
    }
}

/// A measurement with its uncertainty, or why there is none.
pub fn measurement(m: &Measurement) -> String {
    match m {
        Measurement::Measured { seconds, uncertainty, note } => {
            let mut s = secs(*seconds);
            if *uncertainty > 0.0 {
                s += &format!(" ± {}", secs(*uncertainty));
            }
            if let Some(n) = note {
                s += &format!(" ({n})");
            }
            s
        }
        Measurement::NoImpact => "0 s (no impact observed)".into(),
        Measurement::Unmet { reason } => format!("unmet: {reason}"),
        Measurement::NotMeasured { reason } => format!("not measured: {reason}"),
    }
}

/// A verdict as target, verdict word and signed margin, the same in every format.
pub(super) fn verdict_cells(v: Option<&Verdict>) -> [String; 3] {
    match v {
        None => ["-".into(), "-".into(), "-".into()],
        Some(v) => [
            secs(v.limit_s),
            match v.status {
                Status::Met => "met".into(),
                Status::Missed => "MISSED".into(),
                Status::NotMeasured => "NOT MEASURED".into(),
            },
            v.margin_s
                .map(|m| format!("{}{}", if m >= 0.0 { "+" } else { "-" }, secs(m.abs())))
                .unwrap_or_else(|| "-".into()),
        ],
    }
}

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
        r.outcome.as_str(),
        score
    );
    let _ = writeln!(out, "fault: {}", r.scenario.fault_description);
    let v = View::of(r);
    let mut t = Builder::from_iter(v.results);
    t.insert_record(0, ["metric", "measured", "target", "verdict", "margin"]);
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
            r.outcome.as_str().to_string(),
            measurement(&r.metrics.mttd),
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
    if let crate::scenario::Environment::Docker(stack) = &s.environment {
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
            p.check.kind().into(),
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
            let is_sim = matches!(s.environment, crate::scenario::Environment::Sim(_));
            let mut t = Builder::default();
            let mut header = vec!["#", "step", "action", "budget", "escalate after"];
            if is_sim {
                header.push("in sim");
            }
            t.push_record(header);
            for (i, st) in s.steps.iter().enumerate() {
                let action = match &st.action {
                    StepAction::Run { argv, container: None } => format!("run: {}", argv.join(" ")),
                    StepAction::Run { argv, container: Some(c) } => format!("run in {c}: {}", argv.join(" ")),
                    StepAction::Manual(text) => format!("manual: {text}"),
                    StepAction::Start(name) => format!("start: {name}"),
                };
                let sim = st
                    .sim_duration
                    .as_ref()
                    .map(|d| format!("takes {d}; effect {}", format!("{:?}", st.sim_effect).to_lowercase()))
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
        let crate::scenario::StopCondition::ProbeFailing { probe, for_ } = sc;
        let _ = writeln!(out, "   stop condition: abort and revert if `{probe}` fails for {for_}");
    }
    let _ = writeln!(out, "6. revert the fault, read the write ledgers back, check the steady state again");
    let targets: Vec<String> = [("RTO", s.rto), ("RPO", s.rpo), ("MTTD", s.mttd), ("MTTR", s.mttr)]
        .iter()
        .filter_map(|(n, t)| t.map(|t| format!("{n} <= {t}")))
        .collect();
    let _ = writeln!(out, "\ntargets: {}", if targets.is_empty() { "none".into() } else { targets.join(", ") });
    crate::redact::text(&out, &s.redact)
}

/// The summary of a load run, for the terminal.
pub fn load(plan: &crate::load::Plan, r: &crate::load::Report) -> String {
    let mut out = String::new();
    let model = match &plan.model {
        crate::load::Model::Open(stages) => {
            let parts: Vec<String> = stages
                .iter()
                .map(|s| match s.to {
                    Some(to) => format!("{:.0}/s..{to:.0}/s for {}", s.rate, Dur(s.duration)),
                    None => format!("{:.0}/s for {}", s.rate, Dur(s.duration)),
                })
                .collect();
            format!("open model, {}", parts.join(", then "))
        }
        crate::load::Model::Closed { users, duration } => format!("closed model, {users} users for {}", Dur(*duration)),
    };
    let protocol = if plan.http2 { "HTTP/2" } else { "HTTP/1.1" };
    let _ = writeln!(
        out,
        "load: {model}; {} target(s), {protocol}, up to {} connections",
        plan.targets.len(),
        plan.connections
    );
    let s = &r.summary;
    let requested = r.requested_rate.map(|q| format!(" (requested {q:.1}/s)")).unwrap_or_default();
    let _ = writeln!(out, "sent {} in {:.2} s: {:.1}/s{requested}; {} ok", s.sent, r.elapsed_s, s.send_rate, s.ok);
    if !s.errors.is_empty() {
        let errors: Vec<String> =
            s.errors.iter().map(|(c, n)| format!("{} {n}", format!("{c:?}").to_lowercase())).collect();
        let _ = writeln!(out, "errors: {}", errors.join(", "));
    }
    let p = |p: &crate::load::stats::Percentiles| {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        format!(
            "mean {} | p50 {} | p90 {} | p95 {} | p99 {} | p99.9 {} | max {} ms",
            f(p.mean_ms),
            f(p.p50_ms),
            f(p.p90_ms),
            f(p.p95_ms),
            f(p.p99_ms),
            f(p.p999_ms),
            f(p.max_ms)
        )
    };
    let _ = writeln!(out, "latency (from when due): {}", p(&s.latency));
    let _ = writeln!(out, "service time (from send): {}", p(&s.service_time));
    let _ = writeln!(
        out,
        "connections opened: {}; CPU {:.2} s, {:.1} µs per request",
        r.connections, r.cpu_s, r.cpu_us_per_request
    );
    let mut t = Builder::default();
    t.push_record(["t", "sent", "errors", "p50 ms", "p95 ms", "p99 ms"]);
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for b in &s.buckets {
        t.push_record([
            format!("{:.0}s", b.start_s),
            b.sent.to_string(),
            format!("{} ({:.1}%)", b.errors, b.error_rate * 100.0),
            f(b.p50_ms),
            f(b.p95_ms),
            f(b.p99_ms),
        ]);
    }
    let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    out
}
