//! Metrics: pure functions of a drill's timeline, exactly as the design defines them.
//!
//! The main type is [`Metrics`]; [`compute`] derives it from a [`Timeline`] and the few facts
//! of the scenario it needs ([`MetricSpec`]). The engine uses the same [`RecoveryTracker`] to
//! decide when a drill has recovered, so what it waits for and what the report says can never
//! disagree.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::scenario::{Check, Scenario};
use crate::timeline::{EventKind, Micros, Timeline};

/// A measured value, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Measurement {
    /// A value in seconds, known to within ± `uncertainty` seconds.
    Measured {
        /// The value.
        seconds: f64,
        /// Half-width of the interval the true value lies in.
        uncertainty: f64,
        /// Qualification (e.g. "at least").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The fault had no visible impact: nothing to detect or recover from.
    NoImpact,
    /// The limit was never reached in the drill: e.g. never recovered before the deadline.
    Unmet {
        /// Why.
        reason: String,
    },
    /// Could not be measured.
    NotMeasured {
        /// Why.
        reason: String,
    },
    /// Marked by the people of a tabletop exercise ("service restored" at 12 minutes): what
    /// the room said, never observed on a system, so every rendering must say so.
    Declared {
        /// The value.
        seconds: f64,
    },
}

impl Measurement {
    fn exact(seconds: f64) -> Self {
        Measurement::Measured { seconds, uncertainty: 0.0, note: None }
    }

    /// The value in seconds when there is one (`NoImpact` is 0).
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Measurement::Measured { seconds, .. } | Measurement::Declared { seconds } => Some(*seconds),
            Measurement::NoImpact => Some(0.0),
            _ => None,
        }
    }
}

/// Data loss measured by the write ledgers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rpo {
    /// Time of data lost before the fault.
    pub measurement: Measurement,
    /// Acknowledged records checked after recovery.
    pub acknowledged: u64,
    /// Acknowledged records missing after recovery.
    pub lost: u64,
    /// Of those, how many were written after `t0`.
    pub lost_after_fault: u64,
    /// The missing record numbers (the first 100), the evidence.
    pub lost_records: Vec<u64>,
}

/// How one procedure step went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// Index in the procedure.
    pub step: usize,
    /// Seconds since `t0` the step started, if it ran.
    pub started_s: Option<f64>,
    /// How long it took, if it finished.
    pub duration_s: Option<f64>,
    /// Its budget.
    pub budget_s: Option<f64>,
    /// Whether it ran past its budget.
    pub over_budget: bool,
    /// Whether an escalation was recorded for it.
    pub escalated: bool,
    /// How it ended.
    pub status: StepStatus,
    /// When it was done, from `t0`: measured only for a step with a time target
    /// (`targets.steps`), so records of other steps keep their shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<Measurement>,
}

crate::word::word_enum! {
    /// How a procedure step ended.
    pub enum StepStatus {
        /// It finished and succeeded.
        Ok = "ok",
        /// It finished and failed.
        Failed = "failed",
        /// It was skipped; its timeline event says why.
        Skipped = "skipped",
        /// It started and never finished.
        Unfinished = "unfinished",
        /// It never started.
        NotRun = "not run",
    }
}

/// Everything measured in one drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Time to detect, from the probes: when users were first seen hurt.
    pub mttd: Measurement,
    /// Time to detect, from the team's alerts: when the first `alert` probe saw its alert
    /// firing. Present only when the scenario watches an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttd_alert: Option<Measurement>,
    /// Recovery time.
    pub rto: Measurement,
    /// Data loss.
    pub rpo: Rpo,
    /// Healthy windows that broke before they were stable (flapping recovery).
    pub flaps: u32,
    /// The procedure's steps.
    pub steps: Vec<StepTiming>,
    /// Seconds from the first step's start to the last step's end.
    pub procedure_s: Option<f64>,
    /// Escalations recorded, steps and procedure.
    pub escalations: u32,
}

impl Metrics {
    /// The MTTD the drill is judged on: from the alert when the scenario watches one (what
    /// "detected" means to a team that is paged), else from the probes.
    pub fn detection(&self) -> &Measurement {
        self.mttd_alert.as_ref().unwrap_or(&self.mttd)
    }
}

/// The facts of a scenario the metrics need.
#[derive(Clone, Debug)]
pub struct MetricSpec {
    /// Names of the availability probes.
    pub availability: Vec<String>,
    /// Names of the `alert` probes.
    pub alerts: Vec<String>,
    /// Consecutive ok samples per probe for a stable window.
    pub stable_samples: u32,
    /// Shortest stable window.
    pub stable_min_us: Micros,
    /// Budget of each step, in order.
    pub step_budgets_us: Vec<Option<Micros>>,
    /// Time target of each step (done within this long of `t0`), in order.
    pub step_targets_us: Vec<Option<Micros>>,
}

impl MetricSpec {
    /// The spec of a scenario.
    pub fn of(s: &Scenario) -> Self {
        MetricSpec {
            availability: s.availability_probes().map(|(_, p)| p.name.clone()).collect(),
            alerts: s
                .probes
                .iter()
                .filter(|p| matches!(p.check, Check::Alert { .. }))
                .map(|p| p.name.clone())
                .collect(),
            stable_samples: s.stability.samples,
            stable_min_us: s.stability.min_duration.0.as_micros() as Micros,
            step_budgets_us: s.steps.iter().map(|st| st.budget.map(|b| b.0.as_micros() as Micros)).collect(),
            step_targets_us: s.steps.iter().map(|st| st.target.map(|t| t.0.as_micros() as Micros)).collect(),
        }
    }
}

fn secs(us: Micros) -> f64 {
    us as f64 / 1e6
}

/// Follows availability samples after `t0` and finds the first stable healthy window.
///
/// Fed one sample at a time, in time order, by both [`compute`] and the engine.
#[derive(Clone, Debug)]
pub struct RecoveryTracker {
    probes: Vec<String>,
    samples: u32,
    min_us: Micros,
    latest_ok: Vec<Option<bool>>,
    in_window: Vec<u32>,
    /// First failed sample at or after `t0`.
    pub first_failure: Option<Micros>,
    last_failure: Option<Micros>,
    window_start: Option<Micros>,
    /// Healthy windows broken before they were stable.
    pub flaps: u32,
    /// `(last failed sample, start of the stable window)` once recovered.
    pub recovered: Option<(Micros, Micros)>,
}

impl RecoveryTracker {
    /// A tracker for the spec's availability probes.
    pub fn new(spec: &MetricSpec) -> Self {
        let n = spec.availability.len();
        RecoveryTracker {
            probes: spec.availability.clone(),
            samples: spec.stable_samples.max(1),
            min_us: spec.stable_min_us,
            latest_ok: vec![None; n],
            in_window: vec![0; n],
            first_failure: None,
            last_failure: None,
            window_start: None,
            flaps: 0,
            recovered: None,
        }
    }

    /// Records one sample taken at or after `t0`; returns true when it completes the first
    /// stable window. Samples of other probes are ignored.
    pub fn observe(&mut self, probe: &str, t: Micros, ok: bool) -> bool {
        let Some(i) = self.probes.iter().position(|p| p == probe) else { return false };
        if self.recovered.is_some() {
            return false;
        }
        self.latest_ok[i] = Some(ok);
        if !ok {
            self.first_failure.get_or_insert(t);
            self.last_failure = Some(t);
            if self.window_start.take().is_some() {
                self.flaps += 1;
            }
            self.in_window.iter_mut().for_each(|c| *c = 0);
            return false;
        }
        let Some(last_failure) = self.last_failure else { return false };
        match self.window_start {
            None if self.latest_ok.iter().all(|o| *o != Some(false)) => {
                self.window_start = Some(t);
                self.in_window.iter_mut().for_each(|c| *c = 0);
                self.in_window[i] = 1;
            }
            None => return false,
            Some(_) => self.in_window[i] += 1,
        }
        let start = self.window_start.expect("set above");
        if self.in_window.iter().all(|&c| c >= self.samples) && t.saturating_sub(start) >= self.min_us {
            self.recovered = Some((last_failure, start));
            return true;
        }
        false
    }
}

/// Derives the drill's metrics from its timeline.
pub fn compute(timeline: &Timeline, spec: &MetricSpec) -> Metrics {
    let Some(t0) = timeline.t0() else {
        let mut steps = step_timings(timeline, spec, 0);
        for (timing, target) in steps.iter_mut().zip(&spec.step_targets_us) {
            timing.done = target.map(|_| Measurement::NotMeasured {
                reason: "the fault never became active, so there was no T to time the step from".into(),
            });
        }
        let none =
            |what: &str| Measurement::NotMeasured { reason: format!("the fault never became active, so {what}") };
        return Metrics {
            mttd: none("there was nothing to detect"),
            mttd_alert: (!spec.alerts.is_empty()).then(|| none("there was nothing to detect")),
            rto: none("there was nothing to recover from"),
            rpo: Rpo {
                measurement: none("no data could be lost"),
                acknowledged: 0,
                lost: 0,
                lost_after_fault: 0,
                lost_records: vec![],
            },
            flaps: 0,
            steps,
            procedure_s: None,
            escalations: 0,
        };
    };
    let (mttd, rto, flaps) = availability(timeline, spec, t0);
    let mttd_alert = (!spec.alerts.is_empty()).then(|| alert_detection(timeline, spec, t0, &mttd));
    let steps = timed_steps(timeline, spec, t0, Measurement::exact);
    let procedure_s = procedure_span(timeline);
    let escalations = timeline.events.iter().filter(|e| matches!(e.kind, EventKind::Escalation { .. })).count() as u32;
    Metrics { mttd, mttd_alert, rto, rpo: rpo(timeline, t0), flaps, steps, procedure_s, escalations }
}

/// The metrics of a tabletop exercise: detection and recovery are the times the room marked
/// "detected" and "restored" after `t0` (the exercise's start), declared rather than measured;
/// the steps are timed as a drill's. Nothing observes data, so there is no RPO.
pub fn declared(timeline: &Timeline, spec: &MetricSpec) -> Metrics {
    let t0 = timeline.t0().unwrap_or(0);
    let mark = |is_mark: fn(&EventKind) -> bool, what: &str| {
        timeline.events.iter().find(|e| is_mark(&e.kind)).map_or_else(
            || Measurement::NotMeasured { reason: format!("the room never declared the service {what}") },
            |e| Measurement::Declared { seconds: secs(e.t_us.saturating_sub(t0)) },
        )
    };
    let escalations = timeline
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Escalation { .. } | EventKind::Escalated { .. }))
        .count() as u32;
    Metrics {
        mttd: mark(|k| matches!(k, EventKind::Detected), "detected"),
        mttd_alert: None,
        rto: mark(|k| matches!(k, EventKind::Restored), "restored"),
        rpo: Rpo {
            measurement: Measurement::NotMeasured { reason: "a tabletop exercise writes no data".into() },
            acknowledged: 0,
            lost: 0,
            lost_after_fault: 0,
            lost_records: vec![],
        },
        flaps: 0,
        steps: timed_steps(timeline, spec, t0, |seconds| Measurement::Declared { seconds }),
        procedure_s: procedure_span(timeline),
        escalations,
    }
}

/// Recovery and detection are looked for only while the drill waited: once it gave up
/// (deadline, stop condition, kill switch, interruption) the fault is reverted, and what
/// follows is the revert's doing.
fn gave_up(timeline: &Timeline) -> Micros {
    timeline
        .events
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EventKind::DeadlineReached
                    | EventKind::StopConditionReached { .. }
                    | EventKind::KillSwitch { .. }
                    | EventKind::Cancelled
            )
        })
        .map_or(Micros::MAX, |e| e.t_us)
}

/// When the fault's injection began: samples from then on show its effect, not the baseline.
fn injected(timeline: &Timeline, t0: Micros) -> Micros {
    timeline.events.iter().find(|e| matches!(e.kind, EventKind::FaultInjected { .. })).map_or(t0, |e| e.t_us)
}

/// MTTD from the `alert` probes: from `t0` to the first sample that saw an alert firing, the
/// same estimate as the probes' MTTD (the first sample that saw users hurt), so the gap between
/// the two is the team's. Only a firing alert detects: a sample that could not ask Prometheus
/// is no evidence either way. An alert that never fired while users were hurt is a detection
/// that failed, which is what a drill is there to find.
fn alert_detection(timeline: &Timeline, spec: &MetricSpec, t0: Micros, probe_mttd: &Measurement) -> Measurement {
    /// What an alert probe's latest sample said.
    enum Seen<'a> {
        Quiet,
        Firing,
        Unreadable(&'a str),
    }
    let (injected, gave_up) = (injected(timeline, t0), gave_up(timeline));
    let mut before: HashMap<&str, Seen> = HashMap::new();
    let mut unreadable_after: Option<(&str, &str)> = None;
    let mut first: Option<Micros> = None;
    for e in &timeline.events {
        let EventKind::Sample { probe, ok, detail, firing, .. } = &e.kind else { continue };
        if !spec.alerts.contains(probe) {
            continue;
        }
        let seen = match (ok, firing) {
            (true, _) => Seen::Quiet,
            (false, true) => Seen::Firing,
            (false, false) => Seen::Unreadable(detail.as_deref().unwrap_or("no reason given")),
        };
        if e.t_us < injected {
            before.insert(probe, seen);
        } else if e.t_us >= t0 && e.t_us < gave_up {
            match seen {
                Seen::Firing => first = Some(first.map_or(e.t_us, |t| t.min(e.t_us))),
                Seen::Unreadable(why) => unreadable_after = Some((probe, why)),
                Seen::Quiet => {}
            }
        }
    }
    for name in &spec.alerts {
        let reason = match before.get(name.as_str()) {
            Some(Seen::Firing) => format!("the alert of probe `{name}` was already firing before the fault"),
            Some(Seen::Unreadable(why)) => format!("probe `{name}` could not read the alerts before the fault: {why}"),
            _ => continue,
        };
        return Measurement::NotMeasured { reason };
    }
    match (first, unreadable_after) {
        (Some(t), _) => Measurement::exact(secs(t - t0)),
        (None, Some((name, why))) => Measurement::NotMeasured {
            reason: format!("no alert was seen firing, but probe `{name}` could not always read the alerts: {why}"),
        },
        (None, None) if *probe_mttd == Measurement::NoImpact => Measurement::NoImpact,
        (None, None) => match stopped_early(timeline) {
            Some(why) => Measurement::NotMeasured { reason: format!("{why} before any alert fired") },
            None => Measurement::Unmet {
                reason: format!(
                    "no alert fired while the drill waited ({}): the fault went undetected",
                    spec.alerts.join(", ")
                ),
            },
        },
    }
}

fn availability(timeline: &Timeline, spec: &MetricSpec, t0: Micros) -> (Measurement, Measurement, u32) {
    if spec.availability.is_empty() {
        let m = || Measurement::NotMeasured { reason: "the scenario has no availability probe".into() };
        return (m(), m(), 0);
    }
    // The state of each probe just before t0: a probe already failing makes the drill's
    // availability numbers meaningless, because the fault did not cause that failure.
    let mut before: HashMap<&str, bool> = HashMap::new();
    let mut tracker = RecoveryTracker::new(spec);
    let mut last_t = t0;
    let gave_up = gave_up(timeline);
    // Like the engine, the measurement starts at t0.
    let injected = injected(timeline, t0);
    for e in &timeline.events {
        let EventKind::Sample { probe, ok, .. } = &e.kind else { continue };
        if e.t_us < injected {
            before.insert(probe, *ok);
        } else if e.t_us >= t0 && e.t_us < gave_up {
            last_t = last_t.max(e.t_us);
            tracker.observe(probe, e.t_us, *ok);
        }
    }
    if let Some(name) = spec.availability.iter().find(|p| before.get(p.as_str()) == Some(&false)) {
        let reason = format!("probe `{name}` was already failing before the fault: the baseline was not healthy");
        return (
            Measurement::NotMeasured { reason: reason.clone() },
            Measurement::NotMeasured { reason },
            tracker.flaps,
        );
    }
    // A drill stopped early saw no impact only for as long as it looked: that is no evidence
    // that the fault has none.
    let unseen = || match stopped_early(timeline) {
        Some(why) => Measurement::NotMeasured {
            reason: format!("{why} {:.1} s after the fault, before any impact was seen", secs(last_t - t0)),
        },
        None => Measurement::NoImpact,
    };
    let mttd = match tracker.first_failure {
        Some(t) => Measurement::exact(secs(t - t0)),
        None => unseen(),
    };
    let rto = match (tracker.first_failure, tracker.recovered) {
        (None, _) => unseen(),
        (Some(_), Some((last_fail, start))) => {
            // Recovery happened between the last failed sample and the first ok one of the
            // stable window: report the middle, and half the gap as the uncertainty.
            let mid = (last_fail + start) as f64 / 2.0;
            Measurement::Measured {
                seconds: (mid - t0 as f64) / 1e6,
                uncertainty: secs(start - last_fail) / 2.0,
                note: None,
            }
        }
        // A drill stopped early did not wait its deadline: the recovery time is unknown,
        // not unmet.
        (Some(_), None) => match stopped_early(timeline) {
            Some(why) => Measurement::NotMeasured {
                reason: format!("{why} {:.1} s after the fault, before a stable recovery", secs(last_t - t0)),
            },
            None => Measurement::Unmet {
                reason: format!("no stable recovery observed in the {:.1} s after the fault", secs(last_t - t0)),
            },
        },
    };
    (mttd, rto, tracker.flaps)
}

/// Why the drill stopped before its deadline, if it did.
fn stopped_early(timeline: &Timeline) -> Option<String> {
    timeline.events.iter().find_map(|e| match &e.kind {
        EventKind::Cancelled => Some("the drill was interrupted".to_string()),
        EventKind::StopConditionReached { probe, .. } => {
            Some(format!("the drill was aborted by the stop condition on `{probe}`"))
        }
        EventKind::KillSwitch { .. } => Some("the drill was stopped by the kill switch".to_string()),
        _ => None,
    })
}

fn rpo(timeline: &Timeline, t0: Micros) -> Rpo {
    // Per ledger: seq -> (time written, acked), and the read-back result.
    let mut writes: BTreeMap<&str, BTreeMap<u64, (Micros, bool)>> = BTreeMap::new();
    let mut missing: BTreeMap<&str, &Vec<u64>> = BTreeMap::new();
    let mut failed_reads = Vec::new();
    for e in &timeline.events {
        match &e.kind {
            EventKind::LedgerWrite { probe, seq, acked } => {
                writes.entry(probe).or_default().insert(*seq, (e.t_us, *acked));
            }
            EventKind::LedgerReadBack { probe, missing: m, .. } => {
                missing.insert(probe, m);
            }
            EventKind::LedgerReadFailed { probe, error } => failed_reads.push(format!("`{probe}`: {error}")),
            _ => {}
        }
    }
    let mut out = Rpo {
        measurement: Measurement::NotMeasured { reason: "the scenario has no write ledger".into() },
        acknowledged: 0,
        lost: 0,
        lost_after_fault: 0,
        lost_records: vec![],
    };
    if writes.is_empty() {
        return out;
    }
    if !failed_reads.is_empty() || missing.len() < writes.len() {
        let why =
            if failed_reads.is_empty() { "the ledger was not read back".to_string() } else { failed_reads.join("; ") };
        out.measurement = Measurement::NotMeasured { reason: why };
        return out;
    }
    let mut worst: f64 = 0.0;
    let mut lower_bound = false;
    for (probe, ledger) in &writes {
        let lost: Vec<u64> = missing[probe].iter().copied().filter(|s| ledger.get(s).is_some_and(|w| w.1)).collect();
        out.acknowledged += ledger.values().filter(|w| w.1).count() as u64;
        out.lost += lost.len() as u64;
        out.lost_after_fault += lost.iter().filter(|s| ledger[s].0 >= t0).count() as u64;
        out.lost_records.extend(lost.iter().take(100 - out.lost_records.len().min(100)));
        let Some(oldest_lost) = lost.iter().map(|s| ledger[s].0).filter(|&t| t < t0).min() else { continue };
        // The recovery point is the newest survivor older than the first loss: a write sent
        // just before t0 may have been acknowledged by the new primary after the failover, and
        // survive without being a point the system recovered to.
        let lost_set: HashSet<u64> = lost.iter().copied().collect();
        let newest_survivor =
            ledger.iter().filter(|(s, w)| w.1 && w.0 < oldest_lost && !lost_set.contains(s)).map(|(_, w)| w.0).max();
        let rpo = match newest_survivor {
            Some(t) => secs(t0 - t),
            None => {
                // Nothing written before the fault survived: the loss reaches back at least to
                // the ledger's first write.
                lower_bound = true;
                secs(t0 - ledger.values().map(|w| w.0).min().unwrap_or(t0))
            }
        };
        worst = worst.max(rpo);
    }
    out.measurement = Measurement::Measured {
        seconds: worst,
        uncertainty: 0.0,
        note: lower_bound.then(|| "at least: no record written before the fault survived".into()),
    };
    out
}

/// The steps' timings, each targeted step with the time it was done; `time` says how that time
/// was known (measured by the engine, or declared by a tabletop's room).
fn timed_steps(timeline: &Timeline, spec: &MetricSpec, t0: Micros, time: fn(f64) -> Measurement) -> Vec<StepTiming> {
    let mut steps = step_timings(timeline, spec, t0);
    for (timing, target) in steps.iter_mut().zip(&spec.step_targets_us) {
        timing.done = target.map(|limit| step_done(timeline, timing.step, t0, limit, time));
    }
    steps
}

fn step_timings(timeline: &Timeline, spec: &MetricSpec, t0: Micros) -> Vec<StepTiming> {
    let mut steps: Vec<StepTiming> = spec
        .step_budgets_us
        .iter()
        .enumerate()
        .map(|(i, b)| StepTiming {
            step: i,
            started_s: None,
            duration_s: None,
            budget_s: b.map(secs),
            over_budget: false,
            escalated: false,
            status: StepStatus::NotRun,
            done: None,
        })
        .collect();
    let mut started: HashMap<usize, Micros> = HashMap::new();
    for e in &timeline.events {
        match &e.kind {
            EventKind::StepStarted { step, .. } if *step < steps.len() => {
                started.insert(*step, e.t_us);
                steps[*step].started_s = Some(secs(e.t_us.saturating_sub(t0)));
                steps[*step].status = StepStatus::Unfinished;
            }
            EventKind::StepFinished { step, ok, .. } if *step < steps.len() => {
                let s = &mut steps[*step];
                if let Some(begin) = started.get(step) {
                    let d = e.t_us - begin;
                    s.duration_s = Some(secs(d));
                    s.over_budget = spec.step_budgets_us[*step].is_some_and(|b| d > b);
                }
                s.status = if *ok { StepStatus::Ok } else { StepStatus::Failed };
            }
            EventKind::StepSkipped { step, .. } if *step < steps.len() => steps[*step].status = StepStatus::Skipped,
            EventKind::Escalation { step: Some(step), .. } if *step < steps.len() => steps[*step].escalated = true,
            _ => {}
        }
    }
    steps
}

/// When a step with a time target of `limit` was done, from `t0`: the moment it finished ok.
/// A step that failed or was skipped was never done, which misses its target whatever the
/// limit. A step that never finished misses it too once the drill watched past the limit
/// (steps stop at the deadline, which is never shorter than the target); a drill that ended
/// sooner (stopped, interrupted, an error) did not see whether it would have been met, so it
/// measured nothing.
fn step_done(timeline: &Timeline, step: usize, t0: Micros, limit: Micros, time: fn(f64) -> Measurement) -> Measurement {
    for e in &timeline.events {
        match &e.kind {
            EventKind::StepFinished { step: s, ok: true, .. } if *s == step => {
                return time(secs(e.t_us.saturating_sub(t0)));
            }
            EventKind::StepFinished { step: s, ok: false, detail } if *s == step => {
                let why = detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
                return Measurement::Unmet { reason: format!("the step failed{why}") };
            }
            EventKind::StepSkipped { step: s, reason } if *s == step => {
                return Measurement::Unmet { reason: format!("the step was skipped: {reason}") };
            }
            _ => {}
        }
    }
    let ended = gave_up(timeline).min(timeline.events.last().map_or(t0, |e| e.t_us));
    let watched = ended.saturating_sub(t0);
    if watched >= limit {
        Measurement::Unmet {
            reason: format!("the step was not done in the {:.1} s the drill ran after T", secs(watched)),
        }
    } else {
        Measurement::NotMeasured {
            reason: format!("the drill ended {:.1} s after T, before the step was done", secs(watched)),
        }
    }
}

fn procedure_span(timeline: &Timeline) -> Option<f64> {
    let first = timeline.events.iter().find(|e| matches!(e.kind, EventKind::StepStarted { .. }))?.t_us;
    let last = timeline.events.iter().rev().find(|e| matches!(e.kind, EventKind::StepFinished { .. }))?.t_us;
    (last >= first).then(|| secs(last - first))
}

/// MTTR: the mean RTO over repeated drills. A drill that never recovered makes the mean
/// unbounded, so it is unmet; drills whose RTO could not be measured are left out and counted.
pub fn mttr(rtos: &[Measurement]) -> Measurement {
    let unmet = rtos.iter().filter(|m| matches!(m, Measurement::Unmet { .. })).count();
    if unmet > 0 {
        return Measurement::Unmet { reason: format!("{unmet} of {} drills did not recover", rtos.len()) };
    }
    let values: Vec<(f64, f64)> = rtos
        .iter()
        .filter_map(|m| match m {
            Measurement::Measured { seconds, uncertainty, .. } => Some((*seconds, *uncertainty)),
            Measurement::NoImpact => Some((0.0, 0.0)),
            _ => None,
        })
        .collect();
    if values.is_empty() {
        return Measurement::NotMeasured { reason: format!("no RTO was measured in {} drills", rtos.len()) };
    }
    let n = values.len() as f64;
    let skipped = rtos.len() - values.len();
    Measurement::Measured {
        seconds: values.iter().map(|v| v.0).sum::<f64>() / n,
        uncertainty: values.iter().map(|v| v.1).sum::<f64>() / n,
        note: Some(if skipped > 0 {
            format!("mean of {} drills; {skipped} without a measured RTO left out", values.len())
        } else {
            format!("mean of {} drills", values.len())
        }),
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Event;

    const S: Micros = 1_000_000;

    /// Builds timelines by hand: `fault(t)`, `sample(probe, t, ok)`, …
    #[derive(Default)]
    struct T(Timeline);

    impl T {
        fn push(mut self, t: Micros, kind: EventKind) -> Self {
            self.0.events.push(Event { t_us: t, at: jiff::Timestamp::UNIX_EPOCH, kind });
            self
        }
        fn fault(self, t: Micros) -> Self {
            self.push(t, EventKind::FaultActive)
        }
        fn sample(self, probe: &str, t: Micros, ok: bool) -> Self {
            self.push(t, EventKind::Sample { probe: probe.into(), ok, latency_us: None, detail: None, firing: false })
        }
        /// Samples of `probe` every `every` from `from` to `to` (exclusive) with state `ok`.
        fn samples(mut self, probe: &str, from: Micros, to: Micros, every: Micros, ok: bool) -> Self {
            let mut t = from;
            while t < to {
                self = self.sample(probe, t, ok);
                t += every;
            }
            self
        }
        fn write(self, t: Micros, seq: u64, acked: bool) -> Self {
            self.push(t, EventKind::LedgerWrite { probe: "ledger".into(), seq, acked })
        }
        fn read_back(self, t: Micros, checked: u64, missing: Vec<u64>) -> Self {
            self.push(t, EventKind::LedgerReadBack { probe: "ledger".into(), checked, missing })
        }
        fn done(mut self) -> Timeline {
            self.0.canonicalize();
            self.0
        }
    }

    fn spec(probes: &[&str]) -> MetricSpec {
        MetricSpec {
            availability: probes.iter().map(|p| p.to_string()).collect(),
            alerts: vec![],
            stable_samples: 3,
            stable_min_us: S,
            step_budgets_us: vec![],
            step_targets_us: vec![],
        }
    }

    fn measured(m: &Measurement) -> (f64, f64) {
        match m {
            Measurement::Measured { seconds, uncertainty, .. } => (*seconds, *uncertainty),
            other => panic!("expected a value, got {other:?}"),
        }
    }

    /// `api` fails from 3 s to 8 s after a fault at 3 s; `paging` (an alert) is sampled every
    /// second and fires from `fires` on, if ever.
    fn paged(fires: Option<Micros>) -> (Timeline, MetricSpec) {
        let t = T::default().samples("api", 0, 3 * S, S / 2, true).samples("api", 3 * S, 8 * S, S / 2, false);
        let t = t.samples("api", 8 * S, 12 * S, S / 2, true).fault(3 * S);
        let fires = fires.unwrap_or(Micros::MAX);
        let mut t = t.samples("paging", 0, fires.min(12 * S), S, true);
        let mut at = fires;
        while at < 12 * S {
            t = t.push(
                at,
                EventKind::Sample { probe: "paging".into(), ok: false, latency_us: None, detail: None, firing: true },
            );
            at += S;
        }
        (t.done(), MetricSpec { alerts: vec!["paging".into()], ..spec(&["api"]) })
    }

    #[test]
    fn the_alert_gives_its_own_mttd_beside_the_probes_and_is_the_one_judged() {
        let (tl, watched) = paged(Some(6 * S));
        let m = compute(&tl, &watched);
        assert_eq!(measured(&m.mttd), (0.0, 0.0), "the probes saw users hurt at once");
        // Seen firing at 6 s, 3 s after the fault, as the probes' MTTD is their first failure.
        assert_eq!(measured(m.mttd_alert.as_ref().expect("an alert is watched")), (3.0, 0.0));
        assert_eq!(m.detection(), m.mttd_alert.as_ref().unwrap());
        assert_eq!(compute(&tl, &spec(&["api"])).mttd_alert, None, "no alert watched, no alert MTTD");
    }

    #[test]
    fn an_alert_that_never_fires_is_a_failed_detection_and_one_firing_before_the_fault_measures_nothing() {
        let (tl, watched) = paged(None);
        let m = compute(&tl, &watched);
        let Some(Measurement::Unmet { reason }) = &m.mttd_alert else { panic!("{:?}", m.mttd_alert) };
        assert!(reason.contains("went undetected") && reason.contains("paging"), "{reason}");

        let (tl, watched) = paged(Some(S));
        let Some(Measurement::NotMeasured { reason }) = compute(&tl, &watched).mttd_alert else { panic!() };
        assert!(reason.contains("already firing before the fault"), "{reason}");
    }

    #[test]
    fn a_prometheus_that_cannot_be_asked_detects_nothing() {
        let unreadable = || EventKind::Sample {
            probe: "paging".into(),
            ok: false,
            latency_us: None,
            detail: Some("connect: refused".into()),
            firing: false,
        };
        let (tl, watched) = paged(None);
        let mut during = tl.clone();
        during.events.push(Event { t_us: 5 * S, at: jiff::Timestamp::UNIX_EPOCH, kind: unreadable() });
        during.canonicalize();
        let Some(Measurement::NotMeasured { reason }) = compute(&during, &watched).mttd_alert else { panic!() };
        assert!(reason.contains("could not always read the alerts: connect: refused"), "{reason}");
        let mut before = tl;
        before.events.push(Event { t_us: 2 * S + S / 2, at: jiff::Timestamp::UNIX_EPOCH, kind: unreadable() });
        before.canonicalize();
        let Some(Measurement::NotMeasured { reason }) = compute(&before, &watched).mttd_alert else { panic!() };
        assert!(reason.contains("could not read the alerts before the fault"), "{reason}");
    }

    #[test]
    fn no_impact_gives_rto_zero_and_says_so() {
        let tl = T::default().samples("api", 0, 10 * S, S, true).fault(3 * S).done();
        let m = compute(&tl, &spec(&["api"]));
        assert_eq!(m.rto, Measurement::NoImpact);
        assert_eq!(m.mttd, Measurement::NoImpact);
        assert_eq!(m.rto.seconds(), Some(0.0));
    }

    #[test]
    fn outage_gives_mttd_and_rto_with_half_interval_uncertainty() {
        // Fault at 10 s; failing samples 11..=20 s; ok from 21 s on, every second.
        let tl = T::default()
            .samples("api", 0, 11 * S, S, true)
            .fault(10 * S)
            .samples("api", 11 * S, 21 * S, S, false)
            .samples("api", 21 * S, 30 * S, S, true)
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert_eq!(measured(&m.mttd), (1.0, 0.0));
        // Last failure at 20 s, first ok at 21 s: recovery at 20.5 ± 0.5 s, i.e. 10.5 s after t0.
        assert_eq!(measured(&m.rto), (10.5, 0.5));
        assert_eq!(m.flaps, 0);
    }

    #[test]
    fn never_recovered_is_unmet_not_a_number() {
        let tl =
            T::default().samples("api", 0, 5 * S, S, true).fault(5 * S).samples("api", 6 * S, 60 * S, S, false).done();
        let m = compute(&tl, &spec(&["api"]));
        assert!(
            matches!(m.rto, Measurement::Unmet { ref reason } if reason.contains("no stable recovery")),
            "{:?}",
            m.rto
        );
        assert_eq!(m.rto.seconds(), None);
    }

    #[test]
    fn flapping_recovery_counts_only_the_stable_window() {
        // Down 1..5 s, up for two samples (shorter than the 3-sample window), down again,
        // then up for good from 12 s.
        let tl = T::default()
            .fault(0)
            .samples("api", S, 5 * S, S, false)
            .samples("api", 5 * S, 7 * S, S, true)
            .samples("api", 7 * S, 12 * S, S, false)
            .samples("api", 12 * S, 20 * S, S, true)
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert_eq!(measured(&m.rto), (11.5, 0.5));
        assert_eq!(m.flaps, 1);
    }

    #[test]
    fn stability_needs_every_probe_and_the_minimum_duration() {
        // Two probes at 100 ms; `db` recovers 2 s after `api`. The window starts when both are ok.
        let ms = 1_000;
        let tl = T::default()
            .fault(0)
            .samples("api", 100 * ms, 3 * S, 100 * ms, false)
            .samples("api", 3 * S, 10 * S, 100 * ms, true)
            .samples("db", 100 * ms, 5 * S, 100 * ms, false)
            .samples("db", 5 * S, 10 * S, 100 * ms, true)
            .done();
        let m = compute(&tl, &spec(&["api", "db"]));
        let (rto, u) = measured(&m.rto);
        assert!((rto - 4.95).abs() < 1e-9 && (u - 0.05).abs() < 1e-9, "{rto} ± {u}");
    }

    #[test]
    fn a_window_shorter_than_the_minimum_duration_is_not_recovery() {
        // Three ok samples 100 ms apart (200 ms) are not the 1 s minimum; a failure then breaks it.
        let ms = 1_000;
        let tl = T::default()
            .fault(0)
            .sample("api", 100 * ms, false)
            .samples("api", 200 * ms, 600 * ms, 100 * ms, true)
            .sample("api", 600 * ms, false)
            .samples("api", 700 * ms, 3 * S, 100 * ms, true)
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert_eq!(m.flaps, 1);
        let (rto, _) = measured(&m.rto);
        assert!((rto - 0.65).abs() < 1e-9, "{rto}");
    }

    #[test]
    fn health_after_giving_up_is_not_a_recovery() {
        // Down from 1 s; the deadline passes at 30 s and the revert brings the system back.
        let tl = T::default()
            .fault(0)
            .samples("api", S, 30 * S, S, false)
            .push(30 * S, EventKind::DeadlineReached)
            .samples("api", 31 * S, 40 * S, S, true)
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert!(matches!(m.rto, Measurement::Unmet { .. }), "{:?}", m.rto);
    }

    #[test]
    fn a_drill_stopped_early_has_no_rto_rather_than_an_unmet_one() {
        let tl = T::default()
            .fault(0)
            .samples("api", S, 10 * S, S, false)
            .push(10 * S, EventKind::StopConditionReached { probe: "api".into(), failing_for_us: 9 * S, breach: None })
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert!(matches!(m.rto, Measurement::NotMeasured { ref reason } if reason.contains("aborted")), "{:?}", m.rto);
    }

    #[test]
    fn a_drill_stopped_early_before_any_impact_measured_nothing() {
        let tl = T::default()
            .fault(0)
            .samples("api", S, 3 * S, S, true)
            .push(3 * S, EventKind::KillSwitch { switch: "signal SIGUSR1".into() })
            .done();
        let m = compute(&tl, &spec(&["api"]));
        for measured in [&m.mttd, &m.rto] {
            assert!(
                matches!(measured, Measurement::NotMeasured { reason } if reason == "the drill was stopped by the kill switch 2.0 s after the fault, before any impact was seen"),
                "{measured:?}"
            );
        }
    }

    #[test]
    fn a_drill_stopped_by_the_kill_switch_has_no_rto_and_ignores_the_health_after_it() {
        let tl = T::default()
            .fault(0)
            .samples("api", S, 10 * S, S, false)
            .push(10 * S, EventKind::KillSwitch { switch: "signal SIGUSR1".into() })
            .samples("api", 11 * S, 20 * S, S, true)
            .done();
        let m = compute(&tl, &spec(&["api"]));
        assert!(
            matches!(m.rto, Measurement::NotMeasured { ref reason } if reason.contains("kill switch")),
            "{:?}",
            m.rto
        );
    }

    #[test]
    fn a_probe_failing_before_the_fault_makes_availability_unmeasurable() {
        let tl =
            T::default().samples("api", 0, 5 * S, S, false).fault(5 * S).samples("api", 5 * S, 20 * S, S, true).done();
        let m = compute(&tl, &spec(&["api"]));
        assert!(matches!(m.rto, Measurement::NotMeasured { ref reason } if reason.contains("already failing")));
        assert!(matches!(m.mttd, Measurement::NotMeasured { .. }));
    }

    #[test]
    fn an_early_failure_that_recovered_before_the_fault_does_not_count() {
        let tl = T::default()
            .sample("api", 0, false)
            .samples("api", S, 5 * S, S, true)
            .fault(5 * S)
            .samples("api", 5 * S, 9 * S, S, true)
            .done();
        assert_eq!(compute(&tl, &spec(&["api"])).rto, Measurement::NoImpact);
    }

    #[test]
    fn lost_acknowledged_writes_give_rpo_and_count() {
        // Writes every 250 ms from 0; fault at 10 s. The last 2 s of acknowledged writes
        // before the fault (seq 32..=39) and a write after it (seq 41) are lost.
        let ms = 1_000;
        let mut t = T::default();
        for seq in 0..60u64 {
            let at = seq * 250 * ms;
            let acked = !(40..44).contains(&seq) || seq == 41; // unavailable while failing over
            t = t.write(at, seq, acked);
        }
        let missing: Vec<u64> = (32..40).chain([41]).collect();
        let tl = t.fault(10 * S).read_back(20 * S, 57, missing).done();
        let m = compute(&tl, &spec(&["api"]));
        // Newest survivor written before t0 is seq 31 at 7.75 s: RPO = 2.25 s.
        assert_eq!(measured(&m.rpo.measurement), (2.25, 0.0));
        assert_eq!(m.rpo.lost, 9);
        assert_eq!(m.rpo.lost_after_fault, 1);
        assert_eq!(m.rpo.acknowledged, 57);
        assert_eq!(m.rpo.lost_records.len(), 9);
    }

    #[test]
    fn a_write_acknowledged_by_the_new_primary_is_not_the_recovery_point() {
        // Writes every 100 ms; 1..=5 are lost in the cut-off window; 6, sent just before the
        // fault at 650 ms, was acknowledged after the failover and survived.
        let ms = 1_000;
        let mut t = T::default();
        for seq in 0..7u64 {
            t = t.write(seq * 100 * ms, seq, true);
        }
        let tl = t.fault(650 * ms).read_back(2 * S, 7, (1..=5).collect()).done();
        let m = compute(&tl, &spec(&["api"]));
        // The recovery point is seq 0 at 0 ms, not seq 6 at 600 ms.
        assert_eq!(measured(&m.rpo.measurement), (0.65, 0.0));
        assert_eq!(m.rpo.lost, 5);
    }

    #[test]
    fn no_lost_writes_is_rpo_zero_and_no_read_back_is_not_measured() {
        let t = T::default().write(0, 0, true).write(S, 1, true).fault(2 * S);
        let without = compute(&t.0.clone(), &spec(&["api"]));
        assert!(
            matches!(without.rpo.measurement, Measurement::NotMeasured { ref reason } if reason.contains("not read back"))
        );
        let tl = t.read_back(5 * S, 2, vec![]).done();
        assert_eq!(measured(&compute(&tl, &spec(&["api"])).rpo.measurement), (0.0, 0.0));
    }

    #[test]
    fn mttr_is_the_mean_and_unmet_when_any_drill_never_recovered() {
        let m = |s| Measurement::Measured { seconds: s, uncertainty: 0.5, note: None };
        let mean = mttr(&[m(10.0), m(20.0), Measurement::NoImpact]);
        assert_eq!(mean.seconds(), Some(10.0));
        let unmet = mttr(&[m(10.0), Measurement::Unmet { reason: "x".into() }]);
        assert!(matches!(unmet, Measurement::Unmet { ref reason } if reason.contains("1 of 2")));
        assert!(matches!(mttr(&[]), Measurement::NotMeasured { .. }));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(10.0));
        assert_eq!(percentile(&xs, 95.0), Some(19.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn step_timings_compare_with_budgets() {
        let tl = T::default()
            .fault(0)
            .push(S, EventKind::StepStarted { step: 0, name: "a".into() })
            .push(4 * S, EventKind::StepFinished { step: 0, ok: true, detail: None })
            .push(4 * S, EventKind::StepStarted { step: 1, name: "b".into() })
            .push(6 * S, EventKind::Escalation { step: Some(1), after_us: 2 * S })
            .push(9 * S, EventKind::StepFinished { step: 1, ok: false, detail: None })
            .push(9 * S, EventKind::StepSkipped { step: 2, reason: "previous step failed".into() })
            .done();
        let mut sp = spec(&["api"]);
        sp.step_budgets_us = vec![Some(5 * S), Some(2 * S), None];
        let m = compute(&tl, &sp);
        assert_eq!(m.steps[0].duration_s, Some(3.0));
        assert!(!m.steps[0].over_budget);
        assert!(m.steps[1].over_budget && m.steps[1].escalated);
        assert_eq!(m.steps[1].status, StepStatus::Failed);
        assert_eq!(m.steps[2].status, StepStatus::Skipped);
        assert_eq!(m.procedure_s, Some(8.0));
        assert_eq!(m.escalations, 1);
    }

    /// A fault at 3 s and two steps with targets (the first of 1 min, the second of 2 min) and
    /// one without: the first finishes 47 s after T (ok or not), then `rest` happens.
    fn steps_of(first_ok: bool, rest: impl FnOnce(T) -> T) -> Metrics {
        let t = T::default()
            .fault(3 * S)
            .push(3 * S, EventKind::StepStarted { step: 0, name: "Acknowledge the page".into() })
            .push(50 * S, EventKind::StepFinished { step: 0, ok: first_ok, detail: Some("no pager".into()) });
        let tl = rest(t).done();
        let mut sp = spec(&[]);
        sp.step_budgets_us = vec![None; 3];
        sp.step_targets_us = vec![Some(60 * S), Some(120 * S), None];
        compute(&tl, &sp)
    }

    #[test]
    fn a_step_target_is_timed_from_t0_to_the_step_done() {
        let m = steps_of(true, |t| {
            t.push(50 * S, EventKind::StepStarted { step: 1, name: "Notify stakeholders".into() })
                .push(200 * S, EventKind::StepFinished { step: 1, ok: true, detail: None })
                .push(200 * S, EventKind::StepStarted { step: 2, name: "Promote".into() })
                .push(210 * S, EventKind::StepFinished { step: 2, ok: true, detail: None })
        });
        assert_eq!(m.steps[0].done, Some(Measurement::exact(47.0)), "finished 47 s after T, not after its start");
        assert_eq!(m.steps[1].done, Some(Measurement::exact(197.0)), "late is a time; the verdict misses it");
        assert_eq!(m.steps[2].done, None, "a step without a target measures nothing more");
    }

    #[test]
    fn a_step_failed_or_skipped_was_never_done() {
        let m = steps_of(false, |t| {
            t.push(50 * S, EventKind::StepSkipped { step: 1, reason: "an earlier step failed".into() })
        });
        let Some(Measurement::Unmet { reason }) = &m.steps[0].done else { panic!("{:?}", m.steps[0].done) };
        assert_eq!(reason, "the step failed: no pager");
        let Some(Measurement::Unmet { reason }) = &m.steps[1].done else { panic!("{:?}", m.steps[1].done) };
        assert_eq!(reason, "the step was skipped: an earlier step failed");
    }

    #[test]
    fn a_step_not_reached_misses_its_target_only_when_the_drill_watched_past_it() {
        // Interrupted 90 s after T: past the first target (1 min), before the second (2 min).
        let m = steps_of(false, |t| t.push(93 * S, EventKind::Cancelled));
        let m2 = steps_of(true, |t| t.push(93 * S, EventKind::Cancelled));
        assert!(matches!(m.steps[0].done, Some(Measurement::Unmet { .. })));
        let Some(Measurement::NotMeasured { reason }) = &m2.steps[1].done else { panic!("{:?}", m2.steps[1].done) };
        assert_eq!(reason, "the drill ended 90.0 s after T, before the step was done");
        let m = steps_of(true, |t| t.push(150 * S, EventKind::DeadlineReached).push(160 * S, EventKind::Cancelled));
        let Some(Measurement::Unmet { reason }) = &m.steps[1].done else { panic!("{:?}", m.steps[1].done) };
        assert_eq!(reason, "the step was not done in the 147.0 s the drill ran after T");
    }

    #[test]
    fn a_step_target_without_t0_is_not_measured() {
        let tl = T::default().push(S, EventKind::Cancelled).done();
        let mut sp = spec(&[]);
        sp.step_budgets_us = vec![None];
        sp.step_targets_us = vec![Some(60 * S)];
        assert!(matches!(compute(&tl, &sp).steps[0].done, Some(Measurement::NotMeasured { .. })));
    }

    #[test]
    fn a_tabletop_declares_detection_and_recovery_from_the_rooms_marks() {
        let tl = T::default()
            .fault(0)
            .push(S, EventKind::StepStarted { step: 0, name: "a".into() })
            .push(2 * S, EventKind::Detected)
            .push(3 * S, EventKind::Escalated { step: Some(0), text: "DBA on call".into() })
            .push(4 * S, EventKind::StepFinished { step: 0, ok: true, detail: None })
            .push(9 * S, EventKind::Restored)
            .done();
        let mut sp = spec(&[]);
        sp.step_budgets_us = vec![Some(2 * S)];
        sp.step_targets_us = vec![Some(5 * S)];
        let m = declared(&tl, &sp);
        assert_eq!(m.mttd, Measurement::Declared { seconds: 2.0 });
        assert_eq!(m.rto, Measurement::Declared { seconds: 9.0 });
        assert!(m.steps[0].over_budget);
        assert_eq!(m.steps[0].done, Some(Measurement::Declared { seconds: 4.0 }), "a step target's time is the room's");
        assert_eq!(m.escalations, 1);
        assert_eq!(crate::text::measurement(&m.rto), "9.00 s (declared by the room, not measured)");
        let unmarked = declared(&T::default().fault(0).done(), &sp);
        assert!(matches!(unmarked.rto, Measurement::NotMeasured { .. }));
    }

    /// Properties over generated timelines: a healthy baseline, a fault at `t0`, one outage of
    /// random start and length, samples at random (cycled) intervals; and ledgers with a lost
    /// window around `t0`.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        const MS: Micros = 1_000;

        /// How a drill was sampled: the fault's time and the gaps between samples, cycled.
        #[derive(Clone, Debug)]
        struct Sampling {
            t0: Micros,
            gaps: Vec<Micros>,
        }

        impl Sampling {
            /// The sample times from 0 up to `end` (exclusive).
            fn times(&self, end: Micros) -> Vec<Micros> {
                let mut out = vec![];
                let mut t = 0;
                for gap in self.gaps.iter().cycle() {
                    if t >= end {
                        break;
                    }
                    out.push(t);
                    t += gap;
                }
                out
            }

            fn largest_gap(&self) -> Micros {
                self.gaps.iter().copied().max().unwrap_or(0)
            }

            /// A drill whose probe fails during `[start, end)` and is sampled long enough after
            /// `end` to see a stable window (3 samples and 1 s, see `spec`).
            fn drill(&self, start: Micros, end: Micros) -> Timeline {
                let horizon = end + 2 * S + 4 * self.largest_gap();
                let mut t = T::default().fault(self.t0);
                for at in self.times(horizon) {
                    t = t.sample("api", at, !(start..end).contains(&at));
                }
                t.done()
            }
        }

        fn sampling() -> impl Strategy<Value = Sampling> {
            (0..30 * S, prop::collection::vec(10 * MS..2 * S, 1..8)).prop_map(|(t0, gaps)| Sampling { t0, gaps })
        }

        /// `(delay after t0, length)` of an outage.
        fn outage() -> impl Strategy<Value = (Micros, Micros)> {
            (0..10 * S, 1..60 * S)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn rto_is_never_before_t0_nor_negative(sampling in sampling(), (delay, length) in outage()) {
                let start = sampling.t0 + delay;
                let m = compute(&sampling.drill(start, start + length), &spec(&["api"]));
                if let Measurement::Measured { seconds, uncertainty, .. } = m.rto {
                    prop_assert!(seconds >= 0.0 && uncertainty >= 0.0, "{seconds} ± {uncertainty}");
                    prop_assert!(seconds - uncertainty >= 0.0, "recovery before t0: {seconds} ± {uncertainty}");
                }
                if let Measurement::Measured { seconds, .. } = m.mttd {
                    prop_assert!(seconds >= 0.0, "{seconds}");
                }
            }

            #[test]
            fn rto_grows_with_the_outage(
                sampling in sampling(),
                (delay, length) in outage(),
                longer_by in 0..30 * S,
            ) {
                let start = sampling.t0 + delay;
                let spec = spec(&["api"]);
                let short = compute(&sampling.drill(start, start + length), &spec).rto;
                let long = compute(&sampling.drill(start, start + length + longer_by), &spec).rto;
                let (Some(a), Some(b)) = (short.seconds(), long.seconds()) else {
                    return Err(TestCaseError::fail(format!("unrecovered: {short:?}, {long:?}")));
                };
                prop_assert!(a <= b, "an outage {longer_by} µs longer recovered sooner: {short:?} then {long:?}");
            }

            #[test]
            fn an_outage_that_ends_is_recovered_within_the_sampling_gap(
                sampling in sampling(),
                (delay, length) in outage(),
            ) {
                let (start, end) = (sampling.t0 + delay, sampling.t0 + delay + length);
                let m = compute(&sampling.drill(start, end), &spec(&["api"]));
                let seen = sampling.times(end).iter().any(|t| (start..end).contains(t));
                if !seen {
                    // The outage fell between two samples: nothing to see, nothing to recover.
                    prop_assert_eq!(m.rto, Measurement::NoImpact);
                    return Ok(());
                }
                let (rto, uncertainty) = match m.rto {
                    Measurement::Measured { seconds, uncertainty, .. } => (seconds, uncertainty),
                    other => return Err(TestCaseError::fail(format!("an outage that ended gave {other:?}"))),
                };
                let truth = secs(end - sampling.t0);
                prop_assert!(uncertainty <= secs(sampling.largest_gap()) / 2.0 + 1e-9, "± {uncertainty}");
                prop_assert!((rto - truth).abs() <= uncertainty + 1e-9, "{rto} ± {uncertainty}, truly {truth}");
                prop_assert_eq!(m.flaps, 0);
            }

            #[test]
            fn rpo_is_bounded_by_the_lost_window(
                gaps in prop::collection::vec(MS..S, 2..80),
                acked in prop::collection::vec(prop::bool::weighted(0.8), 80),
                fault_at in 0usize..80,
                (lost_from, lost_len) in (0usize..80, 0usize..40),
            ) {
                // Writes at cumulative gaps from 0; the fault lands just after write `fault_at`;
                // writes `lost_from..lost_from + lost_len` are missing on read-back.
                let times: Vec<Micros> = std::iter::once(0).chain(gaps.iter().scan(0, |t, g| { *t += g; Some(*t) })).collect();
                let t0 = times[fault_at.min(times.len() - 1)] + 1;
                let window = lost_from..lost_from + lost_len;
                let mut t = T::default().fault(t0);
                for (seq, at) in times.iter().enumerate() {
                    t = t.write(*at, seq as u64, acked[seq]);
                }
                let missing: Vec<u64> = window.clone().filter(|s| *s < times.len()).map(|s| s as u64).collect();
                let m = compute(&t.read_back(times[times.len() - 1] + S, times.len() as u64, missing).done(), &spec(&["api"]));
                let rpo = m.rpo.measurement.seconds().expect("read back, so measured");

                let lost: Vec<usize> = (0..times.len()).filter(|s| window.contains(s) && acked[*s]).collect();
                prop_assert_eq!(m.rpo.lost, lost.len() as u64);
                prop_assert_eq!(m.rpo.lost_after_fault, lost.iter().filter(|s| times[**s] >= t0).count() as u64);
                prop_assert!((0.0..=secs(t0)).contains(&rpo), "{rpo} outside 0..={}", secs(t0));
                match lost.iter().map(|s| times[*s]).filter(|t| *t < t0).min() {
                    // Only writes after the fault were lost: no point before it was lost.
                    None => prop_assert_eq!(rpo, 0.0),
                    Some(oldest_lost) => {
                        // The loss reaches back to the oldest lost write, and no further than
                        // the newest acknowledged write before the lost window.
                        prop_assert!(rpo >= secs(t0 - oldest_lost), "{rpo} < {}", secs(t0 - oldest_lost));
                        let before = (0..lost_from.min(times.len())).rev().find(|s| acked[*s]).map_or(0, |s| times[s]);
                        prop_assert!(rpo <= secs(t0 - before) + 1e-9, "{rpo} > {}", secs(t0 - before));
                    }
                }
            }
        }
    }
}
