//! The timeline: the append-only list of timestamped events of one drill.
//!
//! Every metric is a pure function of it, and every report is drawn from it, so it records
//! what was observed, never a conclusion a metric could not recompute.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::word::{word_enum, EnvironmentKind, FaultKind};

/// Microseconds since the drill started, on the drill's monotonic (or virtual) clock.
pub type Micros = u64;

/// One timestamped event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic time since the drill started, in microseconds.
    pub t_us: Micros,
    /// Wall-clock time (virtual in `sim`).
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

word_enum! {
    /// The phase of a steady-state check.
    pub enum Phase {
        /// Before the fault is injected.
        Before = "before",
        /// After the fault is reverted.
        After = "after",
    }
}

word_enum! {
    /// A limit of an `slo_breach` stop condition.
    pub enum SloLimit {
        /// The share of failed requests, in percent.
        ErrorPercent = "error_percent",
        /// The 95th-percentile latency, in milliseconds.
        P95 = "p95",
        /// The 99th-percentile latency, in milliseconds.
        P99 = "p99",
    }
}

/// The limit an SLO probe's window breached, and by how much.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloBreach {
    /// Which limit.
    pub limit: SloLimit,
    /// The value measured in the window (percent or milliseconds, as the limit says).
    pub measured: f64,
    /// The most the stop condition allows, in the same unit.
    pub max: f64,
}

impl std::fmt::Display for SloBreach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let SloBreach { limit, measured, max } = self;
        match limit {
            SloLimit::ErrorPercent => write!(f, "{measured:.1}% of requests failed (limit {max}%)"),
            SloLimit::P95 | SloLimit::P99 => write!(f, "{limit} latency {measured:.0} ms (limit {max:.0} ms)"),
        }
    }
}

/// How a drill ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Stable recovery was observed and the procedure completed.
    Recovered,
    /// The deadline passed without stable recovery.
    DeadlineReached,
    /// A stop condition or the kill switch aborted the drill.
    Aborted,
    /// The operator interrupted the drill (Ctrl-C).
    Cancelled,
    /// The system was not healthy before the fault, so nothing was injected.
    NotSteady,
    /// The environment failed; see the error events.
    Error,
}

impl Outcome {
    /// The outcome in a few words for people (`deadline reached`); the record stores its serde
    /// name (`deadline_reached`).
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::DeadlineReached => "deadline reached",
            Outcome::Aborted => "aborted",
            Outcome::Cancelled => "cancelled",
            Outcome::NotSteady => "not steady before the fault",
            Outcome::Error => "error",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The drill began.
    DrillStarted {
        /// Scenario name.
        scenario: String,
        /// Where it runs.
        environment: EnvironmentKind,
    },
    /// A steady-state check finished.
    SteadyState {
        /// Before the fault or after the revert.
        phase: Phase,
        /// Whether every availability probe was healthy.
        ok: bool,
        /// What was wrong, when not ok.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The fault was injected.
    FaultInjected {
        /// The fault.
        fault: FaultKind,
        /// What was done.
        description: String,
    },
    /// The environment confirmed the fault is in effect: `t0` of every metric.
    FaultActive,
    /// The fault was reverted.
    FaultReverted {
        /// Why now.
        reason: String,
    },
    /// Reverting failed: the system may still be faulted. Reports must show this loudly.
    RevertFailed {
        /// The error.
        error: String,
    },
    /// One probe sample, stamped at the time the check started.
    Sample {
        /// Probe name.
        probe: String,
        /// Healthy or not.
        ok: bool,
        /// Time the check took (the timeout, for a check that hung).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latency_us: Option<Micros>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// An `alert` probe's sample that saw its alert firing (the fault detected), not one
        /// that failed to ask.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        firing: bool,
    },
    /// One write of a write ledger, stamped at the time it was sent.
    LedgerWrite {
        /// Probe name.
        probe: String,
        /// Record number.
        seq: u64,
        /// Whether the system acknowledged it.
        acked: bool,
    },
    /// The ledger's acknowledged records read back after recovery.
    LedgerReadBack {
        /// Probe name.
        probe: String,
        /// Acknowledged records looked for.
        checked: u64,
        /// Acknowledged records not found.
        missing: Vec<u64>,
    },
    /// What a part of the system printed during the drill (a container's log), as evidence.
    Output {
        /// Where it came from.
        source: String,
        /// The output (its last bytes, when it was longer than the limit).
        text: String,
        /// Whether older output was cut.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// What the system answered to a change the environment made, when it answered (an API
    /// server accepting an eviction, or refusing it for a disruption budget).
    Answered {
        /// Who answered.
        source: String,
        /// The answer, in words.
        text: String,
    },
    /// The ledger could not be read back.
    LedgerReadFailed {
        /// Probe name.
        probe: String,
        /// The error.
        error: String,
    },
    /// A procedure step began.
    StepStarted {
        /// Index in the procedure.
        step: usize,
        /// Step name.
        name: String,
    },
    /// A procedure step ended.
    StepFinished {
        /// Index in the procedure.
        step: usize,
        /// Whether it succeeded.
        ok: bool,
        /// What it said, or why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A procedure step was not run.
    StepSkipped {
        /// Index in the procedure.
        step: usize,
        /// Why.
        reason: String,
    },
    /// A step, or the whole procedure, ran past its escalation threshold.
    Escalation {
        /// The step, or `None` for the whole procedure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        /// The threshold passed, in microseconds.
        after_us: Micros,
    },
    /// The engine saw a stable healthy window and considers the system recovered.
    RecoveryConfirmed,
    /// A stop condition was reached.
    StopConditionReached {
        /// The probe watched.
        probe: String,
        /// How long the condition had held: the probe failing, or its window breaching a
        /// limit.
        failing_for_us: Micros,
        /// For an `slo_breach` condition, the limit breached at the last sample and the value
        /// measured; absent for `probe_failing`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        breach: Option<SloBreach>,
    },
    /// The kill switch was pulled: the drill stops at once and its fault is reverted.
    KillSwitch {
        /// What pulled it (the file that appeared, or the signal).
        switch: String,
    },
    /// The deadline passed.
    DeadlineReached,
    /// The operator interrupted the drill.
    Cancelled,
    /// Something failed in the environment.
    Error {
        /// The error.
        message: String,
    },
    /// Tabletop: a person taking part, and the role they play in the exercise.
    Participant {
        /// Their name.
        name: String,
        /// Their role (`IC`, `ops`).
        role: String,
    },
    /// Tabletop: the room declared the fault detected.
    Detected,
    /// Tabletop: the room declared the service restored.
    Restored,
    /// Tabletop: a note taken at this time.
    Note {
        /// What was said.
        text: String,
    },
    /// Tabletop: a decision the room took at this time.
    Decision {
        /// What was decided.
        text: String,
    },
    /// Tabletop: the room escalated (someone called up), unlike [`EventKind::Escalation`],
    /// which is a threshold passing.
    Escalated {
        /// The step under way, or `None` before the first or after the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        /// To whom, or why.
        text: String,
    },
    /// Tabletop: a scheduled inject was shown to the room.
    InjectShown {
        /// Its index in the scenario's `injects`.
        inject: usize,
        /// The new information.
        text: String,
    },
    /// Tabletop: the clock stopped for a break; event times leave breaks out.
    Paused,
    /// Tabletop: the clock started again after a break.
    Resumed,
    /// Tabletop: a lesson the room learned, typed in after the exercise.
    Lesson {
        /// The lesson.
        text: String,
    },
    /// Tabletop: a follow-up the room agreed on, typed in after the exercise.
    ActionItem {
        /// What is to be done.
        what: String,
        /// Who does it.
        owner: String,
        /// By when, as typed (`2026-12-15`).
        due: String,
    },
    /// The drill is over.
    DrillEnded {
        /// How.
        outcome: Outcome,
    },
}

impl EventKind {
    /// Order of events recorded at the same instant, so a timeline's order never depends on
    /// the order concurrent tasks were polled in.
    fn rank(&self) -> (u8, &str, u64) {
        match self {
            EventKind::DrillStarted { .. } => (0, "", 0),
            EventKind::SteadyState { .. } => (1, "", 0),
            EventKind::FaultInjected { .. } => (2, "", 0),
            EventKind::FaultActive => (3, "", 0),
            EventKind::Sample { probe, .. } => (4, probe, 0),
            EventKind::LedgerWrite { probe, seq, .. } => (5, probe, *seq),
            EventKind::StepStarted { step, .. } => (6, "", *step as u64),
            EventKind::StepFinished { step, .. } => (7, "", *step as u64),
            EventKind::StepSkipped { step, .. } => (7, "", *step as u64),
            EventKind::Escalation { step, .. } => (8, "", step.map_or(u64::MAX, |s| s as u64)),
            _ => (9, "", 0),
        }
    }
}

/// The events of one drill, in time order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline {
    /// The events.
    pub events: Vec<Event>,
}

impl Timeline {
    /// Puts events recorded concurrently into canonical order: by time, then by kind and
    /// source. Stable, so events of the same kind and instant keep their recorded order.
    pub fn canonicalize(&mut self) {
        self.events.sort_by(|a, b| a.t_us.cmp(&b.t_us).then_with(|| a.kind.rank().cmp(&b.kind.rank())));
    }

    /// `t0`: when the fault was confirmed active.
    pub fn t0(&self) -> Option<Micros> {
        self.events.iter().find(|e| e.kind == EventKind::FaultActive).map(|e| e.t_us)
    }

    /// What pulled the kill switch, if it stopped the drill.
    pub fn kill_switch(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::KillSwitch { switch } => Some(switch.as_str()),
            _ => None,
        })
    }

    /// How the drill ended, if it did.
    pub fn outcome(&self) -> Option<Outcome> {
        self.events.iter().rev().find_map(|e| match e.kind {
            EventKind::DrillEnded { outcome } => Some(outcome),
            _ => None,
        })
    }
}
