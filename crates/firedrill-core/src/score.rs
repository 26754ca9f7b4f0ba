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
        Verdict { target, limit_s, status, measured_s, margin_s: measured_s.map(|v| limit_s - v), detail }
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

/// The verdicts of one drill's targets (RTO, RPO, MTTD; MTTR is judged over several drills).
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
    out
}

/// The drill's score from 0 to 100: the weighted mean of the verdicts' credits, plus the share
/// of procedure steps that finished ok within budget. `None` when there is nothing to score.
pub fn score(verdicts: &[Verdict], m: &Metrics) -> Option<u32> {
    let mut total = 0.0;
    let mut weight = 0.0;
    for v in verdicts {
        let w = WEIGHTS.iter().find(|(t, _)| *t == v.target).map_or(1.0, |(_, w)| *w);
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
    fn exit_codes_follow_the_worst_drill() {
        let met = [Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(1.0))];
        let missed = [Verdict::check(TargetKind::Rto, Dur::secs(60), &measured(100.0))];
        assert_eq!(exit_code([(Outcome::Recovered, &met[..])]), EXIT_OK);
        assert_eq!(exit_code([(Outcome::Recovered, &met[..]), (Outcome::Recovered, &missed[..])]), EXIT_TARGET_MISSED);
        assert_eq!(exit_code([(Outcome::NotSteady, &met[..]), (Outcome::Recovered, &missed[..])]), EXIT_INVALID);
        assert_eq!(exit_code([(Outcome::Cancelled, &met[..])]), EXIT_TARGET_MISSED);
    }
}
