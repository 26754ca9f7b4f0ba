//! What a drill report shows, gathered once from the record for every format (Markdown,
//! HTML): rows of text, not numbers to recompute. Probe samples are condensed into state
//! changes, which is what a reader of a timeline needs; every sample stays in the JSON record.

use crate::metrics::Measurement;
use crate::record::{ClockKind, DrillRecord, ProbeKind};
use crate::timeline::{EventKind, Micros, Phase};
use firedrill_core::score::{Status, TargetKind, Verdict};
use firedrill_core::text::{measurement, secs};

/// One line of the condensed timeline.
pub struct TimelineRow {
    /// Seconds relative to `t0` (`T-3.00 s`, `T+12.40 s`).
    pub rel: String,
    /// Wall-clock time.
    pub at: String,
    /// The same time as a value, for exports that carry it as one (OpenTelemetry).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub when: jiff::Timestamp,
    /// What happened.
    pub text: String,
}

/// A drill report's content.
pub struct View {
    /// `(label, value)` rows describing the drill.
    pub facts: Vec<(String, String)>,
    /// Metric, measured (or declared), target, verdict, margin.
    pub results: Vec<[String; 5]>,
    /// The results' second column: "Measured", or "Declared" for a tabletop exercise, whose
    /// times the room declared and no system measured.
    pub value_heading: &'static str,
    /// What the results' times mean, said under them.
    pub results_note: &'static str,
    /// #, step, kind, started, took, budget, status.
    pub steps: Vec<[String; 7]>,
    /// Probe, check, target, interval, samples, failed, measures.
    pub probes: Vec<[String; 7]>,
    /// Lost acknowledged writes, when there were any.
    pub data_loss: Option<String>,
    /// Warnings a reader must not miss: a failed revert, a system not steady before or after,
    /// a stop condition, the kill switch, an error.
    pub warnings: Vec<String>,
    /// The condensed timeline.
    pub timeline: Vec<TimelineRow>,
    /// What the system printed during the drill: (source, output, whether cut).
    pub evidence: Vec<(String, String, bool)>,
}

fn rel(t_us: Micros, t0: Option<Micros>) -> String {
    match t0 {
        Some(t0) if t_us >= t0 => format!("T+{}", secs((t_us - t0) as f64 / 1e6)),
        Some(t0) => format!("T-{}", secs((t0 - t_us) as f64 / 1e6)),
        None => secs(t_us as f64 / 1e6),
    }
}

impl View {
    /// The heading of one piece of evidence.
    pub fn evidence_heading(source: &str, text: &str, truncated: bool) -> String {
        let size = if text.is_empty() { "printed nothing".to_string() } else { format!("{} bytes", text.len()) };
        format!("Output of `{source}` during the drill ({size}{})", if truncated { ", older output cut" } else { "" })
    }

    /// Gathers the report's content from a record.
    pub fn of(r: &DrillRecord) -> Self {
        let t0 = r.timeline.t0();
        let tabletop = r.environment == crate::record::EnvironmentKind::Tabletop;
        // Virtual-time drills are stamped from the epoch: show them as elapsed virtual time.
        let virtual_clock = r.clock == ClockKind::Virtual;
        let stamp = |t: jiff::Timestamp| {
            if virtual_clock {
                t.strftime("%H:%M:%S%.3f (virtual)").to_string()
            } else {
                t.strftime("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
            }
        };
        let mut facts = vec![
            ("Scenario".into(), format!("{} ({})", r.scenario.name, r.scenario.file)),
            ("Scenario SHA-256".into(), r.scenario.sha256.clone()),
            ("Environment".into(), format!("{} ({} clock)", r.environment, r.clock)),
            ("firedrill version".into(), r.firedrill_version.clone()),
            ("Started".into(), stamp(r.started_at)),
            ("Ended".into(), stamp(r.ended_at)),
        ];
        if let Some(op) = &r.operator {
            facts.push(("Operator".into(), op.clone()));
        }
        // A room has no seed: it played the scenario once.
        if !tabletop {
            facts.push(("Seed, run".into(), format!("{}, run {}", r.seed, r.run)));
        }
        facts.extend([
            ("Fault".into(), r.scenario.fault_description.clone()),
            // The type picked the targets it was scored on; auditors file drills by it.
            ("Disruption".into(), r.scenario.disruption.map_or("not recorded".into(), |d| d.to_string())),
            ("Outcome".into(), r.outcome.describe().into()),
            ("Score".into(), r.score.map(|s| format!("{s}/100")).unwrap_or_else(|| "n/a (no targets)".into())),
        ]);
        if let Some(t0) = t0 {
            let at = r.timeline.events.iter().find(|e| e.t_us == t0).map(|e| stamp(e.at)).unwrap_or_default();
            let label = if tabletop { "Exercise started (T)" } else { "Fault confirmed active (T)" };
            facts.push((label.into(), at));
        }
        if !r.scenario.description.is_empty() {
            facts.insert(1, ("Description".into(), r.scenario.description.clone()));
        }

        let m = &r.metrics;
        let mut results = Vec::new();
        // With an alert watched, the MTTD judged is the alert's; the probes' stays beside it, so
        // the gap between users hurt and the team paged shows.
        let detection = if m.mttd_alert.is_some() { "MTTD (alert)" } else { "MTTD" };
        for (target, name, value) in [
            (TargetKind::Mttd, detection, m.detection()),
            (TargetKind::Rto, "RTO", &m.rto),
            (TargetKind::Rpo, "RPO", &m.rpo.measurement),
        ] {
            if target == TargetKind::Rto && m.mttd_alert.is_some() {
                let [limit, verdict, margin] = verdict_cells(None);
                results.push(["MTTD (probes)".into(), measurement(&m.mttd), limit, verdict, margin]);
            }
            let name = name.to_string();
            let v = r.verdicts.iter().find(|v| v.target == target);
            let mut measured = measurement(value);
            if target == TargetKind::Rpo && m.rpo.lost > 0 {
                measured += &format!(" ({} of {} acknowledged writes lost)", m.rpo.lost, m.rpo.acknowledged);
            }
            let [limit, verdict, margin] = verdict_cells(v);
            results.push([name, measured, limit, verdict, margin]);
        }
        for v in r.verdicts.iter().filter(|v| v.target == TargetKind::Step) {
            let measured = match step_done(r, v) {
                done @ (Measurement::Measured { .. } | Measurement::Declared { .. }) => {
                    format!("T+{}", measurement(&done))
                }
                other => measurement(&other),
            };
            let [limit, verdict, margin] = verdict_cells(Some(v));
            results.push([v.label(), measured, limit, verdict, margin]);
        }

        let steps = r
            .steps
            .iter()
            .zip(&m.steps)
            .map(|(info, t)| {
                let mut status = t.status.to_string();
                if t.over_budget {
                    status += ", over budget";
                }
                if t.escalated {
                    status += ", escalated";
                }
                [
                    (t.step + 1).to_string(),
                    info.name.clone(),
                    info.kind.to_string(),
                    t.started_s.map(|s| format!("T+{}", secs(s))).unwrap_or_else(|| "-".into()),
                    t.duration_s.map(secs).unwrap_or_else(|| "-".into()),
                    info.budget_s.map(secs).unwrap_or_else(|| "-".into()),
                    status,
                ]
            })
            .collect();

        let probes = r
            .probes
            .iter()
            .map(|p| {
                let (mut n, mut failed) = (0u64, 0u64);
                for e in &r.timeline.events {
                    match &e.kind {
                        EventKind::Sample { probe, ok, .. } | EventKind::LedgerWrite { probe, acked: ok, .. }
                            if *probe == p.name =>
                        {
                            n += 1;
                            failed += u64::from(!ok);
                        }
                        _ => {}
                    }
                }
                [
                    p.name.clone(),
                    p.kind.to_string(),
                    p.target.clone(),
                    secs(p.interval_s),
                    n.to_string(),
                    failed.to_string(),
                    if p.availability {
                        "availability"
                    } else if p.kind == ProbeKind::WriteLedger {
                        "data (RPO)"
                    } else {
                        "evidence"
                    }
                    .into(),
                ]
            })
            .collect();

        let data_loss = (m.rpo.lost > 0).then(|| {
            let shown: Vec<String> = m.rpo.lost_records.iter().map(u64::to_string).collect();
            let more = if m.rpo.lost as usize > shown.len() { format!(" and {} more", m.rpo.lost as usize - shown.len()) } else { String::new() };
            format!(
                "{} of {} acknowledged writes were missing after recovery ({} of them written after the fault). Missing records: {}{more}.",
                m.rpo.lost,
                m.rpo.acknowledged,
                m.rpo.lost_after_fault,
                shown.join(", ")
            )
        });

        let mut warnings = Vec::new();
        let mut timeline = Vec::new();
        let mut evidence = Vec::new();
        let mut failing: std::collections::HashMap<&str, (bool, u64)> = std::collections::HashMap::new();
        for e in &r.timeline.events {
            let text = match &e.kind {
                EventKind::Output { source, text, truncated } => {
                    evidence.push((source.clone(), text.clone(), *truncated));
                    continue;
                }
                EventKind::Sample { probe, ok, .. } | EventKind::LedgerWrite { probe, acked: ok, .. } => {
                    let entry = failing.entry(probe.as_str()).or_insert((false, 0));
                    let was_failing = entry.0;
                    if !ok {
                        entry.1 += 1;
                    }
                    entry.0 = !ok;
                    match (was_failing, *ok) {
                        (false, false) => {
                            let why = match &e.kind {
                                EventKind::Sample { detail: Some(d), .. } => format!(": {d}"),
                                EventKind::LedgerWrite { .. } => ": write not acknowledged".into(),
                                _ => String::new(),
                            };
                            format!("probe `{probe}` failing{why}")
                        }
                        (true, true) => {
                            let n = std::mem::take(&mut entry.1);
                            format!("probe `{probe}` ok again (after {n} failed)")
                        }
                        _ => continue,
                    }
                }
                EventKind::DrillStarted { scenario, environment } => {
                    format!("drill of `{scenario}` started in {environment}")
                }
                EventKind::SteadyState { phase, ok, detail } => {
                    let phase = if *phase == Phase::Before { "before the fault" } else { "after the revert" };
                    let text = match ok {
                        true => format!("steady state {phase}: ok"),
                        false => format!("steady state {phase}: NOT ok ({})", detail.as_deref().unwrap_or("")),
                    };
                    if !ok {
                        warnings.push(text.clone());
                    }
                    text
                }
                EventKind::FaultInjected { description, .. } => format!("fault injected: {description}"),
                EventKind::FaultActive => "fault confirmed active (T)".into(),
                EventKind::FaultReverted { reason } => format!("fault reverted ({reason})"),
                EventKind::RevertFailed { error } => {
                    let text = format!("REVERT FAILED: {error}");
                    warnings.push(text.clone());
                    text
                }
                EventKind::LedgerReadBack { probe, checked, missing } => {
                    format!("ledger `{probe}` read back: {} of {checked} acknowledged records missing", missing.len())
                }
                EventKind::Answered { source, text } => format!("{source}: {text}"),
                EventKind::LedgerReadFailed { probe, error } => {
                    format!("ledger `{probe}` could not be read back: {error}")
                }
                EventKind::StepStarted { step, name } => format!("step {} started: {name}", step + 1),
                EventKind::StepFinished { step, ok, detail } => format!(
                    "step {} {}{}",
                    step + 1,
                    if *ok { "finished" } else { "FAILED" },
                    detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
                ),
                EventKind::StepSkipped { step, reason } => format!("step {} skipped: {reason}", step + 1),
                EventKind::Escalation { step, after_us } => match step {
                    Some(s) => format!("ESCALATION: step {} ran past {}", s + 1, secs(*after_us as f64 / 1e6)),
                    None => format!("ESCALATION: the procedure ran past {}", secs(*after_us as f64 / 1e6)),
                },
                EventKind::RecoveryConfirmed => "recovery confirmed (stable healthy window)".into(),
                EventKind::StopConditionReached { probe, failing_for_us, breach } => {
                    let held = secs(*failing_for_us as f64 / 1e6);
                    let text = match breach {
                        None => format!("stop condition: `{probe}` failing for {held}; drill aborted"),
                        Some(breach) => {
                            format!(
                                "stop condition: `{probe}` over its safety limit for {held}: {breach}; drill aborted"
                            )
                        }
                    };
                    warnings.push(text.clone());
                    text
                }
                EventKind::KillSwitch { switch } => {
                    let text = format!("kill switch pulled ({switch}): drill stopped at once, fault reverted");
                    warnings.push(text.clone());
                    text
                }
                EventKind::DeadlineReached => "deadline reached without stable recovery".into(),
                EventKind::Cancelled => "drill interrupted by the operator".into(),
                EventKind::Error { message } => {
                    let text = format!("error: {message}");
                    warnings.push(text.clone());
                    text
                }
                EventKind::DrillEnded { outcome } => format!("drill ended: {}", outcome.describe()),
                EventKind::Participant { name, role } => format!("in the room: {name} ({role})"),
                EventKind::Detected => "the room declared the fault detected".into(),
                EventKind::Restored => "the room declared the service restored".into(),
                EventKind::Note { text } => format!("note: {text}"),
                EventKind::Decision { text } => format!("decision: {text}"),
                EventKind::Escalated { step, text } => match step {
                    Some(s) => format!("ESCALATED during step {}: {text}", s + 1),
                    None => format!("ESCALATED: {text}"),
                },
                EventKind::InjectShown { inject, text } => format!("inject {} shown: {text}", inject + 1),
                EventKind::Paused => "clock paused for a break".into(),
                EventKind::Resumed => "clock resumed".into(),
                EventKind::Lesson { text } => format!("lesson learned: {text}"),
                EventKind::ActionItem { what, owner, due } => format!("action item: {what} (owner {owner}, due {due})"),
            };
            timeline.push(TimelineRow { rel: rel(e.t_us, t0), at: stamp(e.at), when: e.at, text });
        }
        let (value_heading, results_note) = match tabletop {
            true => ("Declared", "T is the moment the exercise started. Every time here was declared by the room in a tabletop exercise; nothing was measured on a system."),
            false => ("Measured", "T is the moment the fault was confirmed active. RTO is known to within the stated uncertainty (half the gap between the last failed and the first healthy sample)."),
        };
        View { facts, results, value_heading, results_note, steps, probes, data_loss, warnings, timeline, evidence }
    }
}

/// What a step target's verdict was judged on: when its step was done, from the drill's
/// metrics. A record whose steps do not carry it (edited by hand) shows it as not measured,
/// as its verdict must say.
pub(super) fn step_done(r: &DrillRecord, v: &Verdict) -> Measurement {
    let index = r.steps.iter().position(|s| Some(&s.name) == v.step.as_ref());
    match index.and_then(|i| r.metrics.steps.get(i)).and_then(|t| t.done.clone()) {
        Some(done) => done,
        None => Measurement::NotMeasured { reason: "the record does not say when the step was done".into() },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::drill_once;
    use crate::report::{html, markdown, terminal};
    use crate::timeline::{Event, SloBreach, SloLimit};

    /// A real sim drill's record with `kind` appended at its end.
    fn record_with(kind: EventKind) -> DrillRecord {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/db-failover.yaml");
        let mut r = drill_once(&crate::scenario::load(&path).unwrap(), 42, 1, false, None).unwrap();
        let last = r.timeline.events.last().unwrap().clone();
        r.timeline.events.insert(r.timeline.events.len() - 1, Event { kind, ..last });
        r
    }

    /// Whether every drill report shows `text`, as a warning and in the timeline.
    fn shown_everywhere(r: &DrillRecord, text: &str) {
        let v = View::of(r);
        assert!(v.warnings.iter().any(|w| w == text), "{:?}", v.warnings);
        assert!(v.timeline.iter().any(|row| row.text == text));
        assert!(terminal::drill(r, 1).contains(text));
        assert!(markdown::render(r).contains(text));
        assert!(html::render(r).contains(&crate::text::xml_escape(text)));
    }

    #[test]
    fn an_slo_breach_is_shown_with_its_limit_and_the_value_measured() {
        let breach = SloBreach { limit: SloLimit::P95, measured: 912.4, max: 800.0 };
        let r = record_with(EventKind::StopConditionReached {
            probe: "users".into(),
            failing_for_us: 5_000_000,
            breach: Some(breach),
        });
        shown_everywhere(
            &r,
            "stop condition: `users` over its safety limit for 5.00 s: p95 latency 912 ms (limit 800 ms); drill aborted",
        );
        let errors = SloBreach { limit: SloLimit::ErrorPercent, measured: 31.25, max: 20.0 };
        assert_eq!(errors.to_string(), "31.2% of requests failed (limit 20%)");
    }

    #[test]
    fn the_kill_switch_is_shown_with_what_pulled_it() {
        let r = record_with(EventKind::KillSwitch { switch: "file /run/stop-drills".into() });
        shown_everywhere(&r, "kill switch pulled (file /run/stop-drills): drill stopped at once, fault reverted");
    }
}
