//! Scoring: each target becomes a verdict, the verdicts a score and an exit code.
//!
//! The main type is [`Verdict`]. A target that could not be measured is never a pass.

use serde::{Deserialize, Serialize};

use crate::duration::Dur;
use crate::metrics::{Measurement, Metrics, StepStatus};
use crate::scenario::Scenario;
use crate::timeline::Outcome;

/// Every target met.
pub const EXIT_OK: i32 = 0;
/// A target missed, or not measured (an aborted or interrupted drill measures nothing).
pub const EXIT_TARGET_MISSED: i32 = 1;
/// Invalid input, or an environment that could not be used (including a system that was not
/// healthy before the fault, so no drill took place).
pub const EXIT_INVALID: i32 = 2;

/// Weights of the score; see the README's formula.
const WEIGHTS: [(TargetKind, f64); 3] = [(TargetKind::Rto, 4.0), (TargetKind::Rpo, 3.0), (TargetKind::Mttd, 2.0)];
/// Weight of the procedure's discipline (steps within budget).
const PROCEDURE_WEIGHT: f64 = 1.0;
/// Weight of the step targets together, shared equally between them: the team's response
/// counts as much as detection, however many steps a runbook times, so that timing one more
/// step never outweighs recovery.
const STEP_TARGETS_WEIGHT: f64 = 2.0;

/// The result of checking one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Within the limit.
    Met,
    /// Over the limit, or never reached.
    Missed,
    /// Could not be measured: never a pass.
    NotMeasured,
}

crate::word::word_enum! {
    /// What a target limits.
    pub enum TargetKind {
        /// Recovery time.
        Rto = "rto",
        /// Data loss, in time.
        Rpo = "rpo",
        /// Time to detect.
        Mttd = "mttd",
        /// Mean recovery time over several drills.
        Mttr = "mttr",
        /// A named step done within a time of `t0` (team response, stakeholders notified).
        Step = "step",
    }
}

/// One target checked against its measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The target checked.
    pub target: TargetKind,
    /// The limit, in seconds.
    pub limit_s: f64,
    /// The outcome.
    pub status: Status,
    /// The measured value, in seconds, when there is one.
    pub measured_s: Option<f64>,
    /// Limit minus measured: positive is headroom, negative is how much it was missed by.
    pub margin_s: Option<f64>,
    /// The measurement's note or the reason it is missing.
    pub detail: String,
    /// The step a `step` target times, by name; absent for every other target (and in
    /// records written before step targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl Verdict {
    /// Checks a measurement against a limit.
    pub fn check(target: TargetKind, limit: Dur, m: &Measurement) -> Verdict {
        let limit_s = limit.as_secs_f64();
        let (status, measured_s, detail) = match m {
            Measurement::Measured { seconds, uncertainty, note } => {
                let status = if *seconds <= limit_s { Status::Met } else { Status::Missed };
                let mut detail = note.clone().unwrap_or_default();
                if (seconds - limit_s).abs() <= *uncertainty && *uncertainty > 0.0 {
                    detail = format!(
                        "{detail}{}within measurement uncertainty of the limit",
                        if detail.is_empty() { "" } else { "; " }
                    );
                }
                (status, Some(*seconds), detail)
            }
            Measurement::NoImpact => (Status::Met, Some(0.0), "no impact observed".into()),
            Measurement::Unmet { reason } => (Status::Missed, None, reason.clone()),
            Measurement::NotMeasured { reason } => (Status::NotMeasured, None, reason.clone()),
            Measurement::Declared { seconds } => {
                let status = if *seconds <= limit_s { Status::Met } else { Status::Missed };
                (status, Some(*seconds), "declared by the room, not measured on a system".into())
            }
        };
        Verdict { target, limit_s, status, measured_s, margin_s: measured_s.map(|v| limit_s - v), detail, step: None }
    }

    /// Checks when a step was done (from `t0`) against its time target.
    pub fn check_step(name: &str, limit: Dur, done: &Measurement) -> Verdict {
        Verdict { step: Some(name.to_string()), ..Verdict::check(TargetKind::Step, limit, done) }
    }

    /// What the verdict judges, as reports and CI cases name it: `RTO`, or a step target's
    /// `step "Acknowledge the page" done`.
    pub fn label(&self) -> String {
        match &self.step {
            Some(name) => format!("step \"{name}\" done"),
            None => self.target.as_str().to_uppercase(),
        }
    }

    /// Credit towards the score: 1 when met; when missed by a fraction `x` of the limit,
    /// `0.5 × (1 − x)` down to 0; nothing when never reached or not measured.
    fn credit(&self) -> f64 {
        match (self.status, self.measured_s) {
            (Status::Met, _) => 1.0,
            (Status::Missed, Some(v)) if self.limit_s > 0.0 => 0.5 * (1.0 - (v - self.limit_s) / self.limit_s).max(0.0),
            _ => 0.0,
        }
    }
}

/// The verdicts of one drill's targets (RTO, RPO, MTTD, then the step targets in procedure
/// order; MTTR is judged over several drills).
pub fn verdicts(scenario: &Scenario, m: &Metrics) -> Vec<Verdict> {
    let mut out = Vec::new();
    if let Some(l) = scenario.rto {
        out.push(Verdict::check(TargetKind::Rto, l, &m.rto));
    }
    if let Some(l) = scenario.rpo {
        out.push(Verdict::check(TargetKind::Rpo, l, &m.rpo.measurement));
    }
    if let Some(l) = scenario.mttd {
        out.push(Verdict::check(TargetKind::Mttd, l, m.detection()));
    }
    for (step, timing) in scenario.steps.iter().zip(&m.steps) {
        if let (Some(limit), Some(done)) = (step.target, &timing.done) {
            out.push(Verdict::check_step(&step.name, limit, done));
        }
    }
    out
}

/// The drill's score from 0 to 100: the weighted mean of the verdicts' credits, plus the share
/// of procedure steps that finished ok within budget. `None` when there is nothing to score.
pub fn score(verdicts: &[Verdict], m: &Metrics) -> Option<u32> {
    let mut total = 0.0;
    let mut weight = 0.0;
    let step_targets = verdicts.iter().filter(|v| v.target == TargetKind::Step).count();
    for v in verdicts {
        let w = match v.target {
            TargetKind::Step => STEP_TARGETS_WEIGHT / step_targets as f64,
            target => WEIGHTS.iter().find(|(t, _)| *t == target).map_or(1.0, |(_, w)| *w),
        };
        total += w * v.credit();
        weight += w;
    }
    if !m.steps.is_empty() {
        let disciplined = m.steps.iter().filter(|s| s.status == StepStatus::Ok && !s.over_budget).count();
        total += PROCEDURE_WEIGHT * disciplined as f64 / m.steps.len() as f64;
        weight += PROCEDURE_WEIGHT;
    }
    (weight > 0.0).then(|| (100.0 * total / weight).round() as u32)
}

/// The exit code of a set of drills: the worst of their outcomes and verdicts.
pub fn exit_code<'a>(drills: impl IntoIterator<Item = (Outcome, &'a [Verdict])>) -> i32 {
    let mut code = EXIT_OK;
    for (outcome, verdicts) in drills {
        let c = match outcome {
            Outcome::NotSteady | Outcome::Error => EXIT_INVALID,
            Outcome::Aborted | Outcome::Cancelled => EXIT_TARGET_MISSED,
            _ if verdicts.iter().any(|v| v.status != Status::Met) => EXIT_TARGET_MISSED,
            _ => EXIT_OK,
        };
        code = code.max(c);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(s: f64) -> Measurement {
        Measurement::Measured { seconds: s, uncertainty: 0.5, note: None }
    }

    #[test]
    fn verdicts_have_margins_and_never_pass_a_missing_measurement() {
        let v = Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(45.0));
        assert_eq!((v.status, v.margin_s), (Status::Met, Some(15.0)));
        let v = Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(90.0));
        assert_eq!((v.status, v.margin_s), (Status::Missed, Some(-30.0)));
        assert_eq!(v.credit(), 0.25);
        let v = Verdict::check(TargetKind::Rto, Dur::secs(60), &Measurement::Unmet { reason: "never".into() });
        assert_eq!((v.status, v.credit()), (Status::Missed, 0.0));
        let v = Verdict::check(TargetKind::Rto, Dur::secs(60), &Measurement::NotMeasured { reason: "x".into() });
        assert_eq!((v.status, v.credit()), (Status::NotMeasured, 0.0));
        let v = Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(60.3));
        assert!(v.detail.contains("uncertainty"));
    }

    #[test]
    fn step_targets_are_judged_named_and_share_one_weight_in_the_score() {
        let ack = Verdict::check_step("Acknowledge the page", Dur::secs(300), &measured(200.0));
        assert_eq!((ack.target, ack.status, ack.margin_s), (TargetKind::Step, Status::Met, Some(100.0)));
        assert_eq!(ack.label(), "step \"Acknowledge the page\" done");
        let unmet = Measurement::Unmet { reason: "the step was skipped: an earlier step failed".into() };
        let notify = Verdict::check_step("Notify stakeholders", Dur::secs(600), &unmet);
        assert_eq!((notify.status, notify.credit()), (Status::Missed, 0.0));
        let rto = Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(30.0));
        assert_eq!(rto.label(), "RTO");
        let m = Metrics {
            mttd: Measurement::NoImpact,
            mttd_alert: None,
            rto: Measurement::NoImpact,
            rpo: crate::metrics::Rpo {
                measurement: Measurement::NoImpact,
                acknowledged: 0,
                lost: 0,
                lost_after_fault: 0,
                lost_records: vec![],
            },
            flaps: 0,
            steps: vec![],
            procedure_s: None,
            escalations: 0,
        };
        // RTO weighs 4, the two step targets 2 together: (4 + 1) / 6.
        assert_eq!(score(&[rto.clone(), ack.clone(), notify.clone()], &m), Some(83));
        assert_eq!(exit_code([(Outcome::Recovered, &[rto.clone(), ack.clone()][..])]), EXIT_OK);
        assert_eq!(exit_code([(Outcome::Recovered, &[rto, ack, notify][..])]), EXIT_TARGET_MISSED);
    }

    #[test]
    fn a_verdict_recorded_before_step_targets_still_loads() {
        let old = r#"{"target":"rto","limit_s":60.0,"status":"met","measured_s":1.0,"margin_s":59.0,"detail":""}"#;
        let v: Verdict = serde_json::from_str(old).unwrap();
        assert_eq!((v.target, v.step.as_deref()), (TargetKind::Rto, None));
        assert_eq!(serde_json::to_string(&v).unwrap(), old, "and is written back the same");
    }

    #[test]
    fn exit_codes_follow_the_worst_drill() {
        let met = [Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(1.0))];
        let missed = [Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(100.0))];
        assert_eq!(exit_code([(Outcome::Recovered, &met[..])]), EXIT_OK);
        assert_eq!(exit_code([(Outcome::Recovered, &met[..]), (Outcome::Recovered, &missed[..])]), EXIT_TARGET_MISSED);
        assert_eq!(exit_code([(Outcome::NotSteady, &met[..]), (Outcome::Recovered, &missed[..])]), EXIT_INVALID);
        assert_eq!(exit_code([(Outcome::Cancelled, &met[..])]), EXIT_TARGET_MISSED);
    }
}
