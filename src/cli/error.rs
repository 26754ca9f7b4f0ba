//! [`CliError`]: why a subcommand stopped, and the one place errors become exit codes.

use firedrill::drill::DrillError;
#[cfg(feature = "live")]
use firedrill::duration::UnitError;
#[cfg(feature = "live")]
use firedrill::load::LoadError;
use firedrill::record::RecordError;
use firedrill::scenario::ScenarioError;
use firedrill::score::EXIT_INVALID;
use firedrill::simulate::SimulateError;
#[cfg(feature = "docker")]
use firedrill::stack::StackError;

/// Why a subcommand stopped before doing what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A scenario file could not be read or is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A scenario's drills could not be run.
    #[error(transparent)]
    Drill(#[from] DrillError),
    /// A scenario could not be simulated.
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    /// A report could not be written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A runbook could not be imported.
    #[error(transparent)]
    Import(#[from] firedrill::import::ImportError),
    /// Drill results could not be read or written where they are kept.
    #[error(transparent)]
    Store(#[from] firedrill::store::StoreError),
    /// `--since` or `--until` is neither a date nor a timestamp.
    #[error("--{flag} `{text}`: expected a date (2026-01-01) or a timestamp (2026-01-01T00:00:00Z)")]
    Time {
        /// The flag, without its dashes.
        flag: &'static str,
        /// What was given.
        text: String,
    },
    /// `load` was given both models.
    #[cfg(feature = "live")]
    #[error("--users (closed model) and --stages (open model) exclude each other")]
    BothModels,
    /// A `--stages` part is not `RATE:DURATION`.
    #[cfg(feature = "live")]
    #[error("--stages: `{part}`: expected RATE:DURATION, e.g. `200/s:10s`")]
    StageForm {
        /// The part.
        part: String,
    },
    /// A rate or duration in `--stages` does not read.
    #[cfg(feature = "live")]
    #[error("--stages: `{part}`: {source}")]
    StageValue {
        /// The part.
        part: String,
        /// What is wrong with it.
        #[source]
        source: UnitError,
    },
    /// `--method` is not an HTTP method.
    #[cfg(feature = "live")]
    #[error("--method: `{0}` is not an HTTP method")]
    Method(String),
    /// The weight of a `N*URL` load target does not fit.
    #[cfg(feature = "live")]
    #[error("`{target}`: the weight `{weight}` is too large")]
    Weight {
        /// The target as given.
        target: String,
        /// Its weight.
        weight: String,
    },
    /// The load could not be sent.
    #[cfg(feature = "live")]
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Recovering what earlier drills left failed.
    #[error(transparent)]
    Recover(#[from] firedrill::recover::RecoverError),
    /// Earlier drills left changes applied, and `run` was not asked to recover them.
    #[error("{count} earlier drill(s) left changes applied (listed above): run `firedrill recover --all`, or `firedrill run --recover`, first")]
    Leftovers {
        /// How many runs.
        count: usize,
    },
    /// Revert journals of earlier drills cannot be read, so what they left is unknown.
    #[error("{count} revert journal(s) cannot be read (above): what they left applied is unknown; look at them, recover by hand, then remove them")]
    UnreadableJournals {
        /// How many.
        count: usize,
    },
    /// The async runtime could not start.
    #[cfg(feature = "live")]
    #[error("failed to start the runtime")]
    Runtime(#[source] std::io::Error),
    /// The Pushgateway could not be reached.
    #[cfg(feature = "live")]
    #[error("failed to push the drill's metrics to {url}")]
    Push {
        /// The group's URL.
        url: String,
        /// Why.
        #[source]
        source: firedrill::probe::ProbeError,
    },
    /// The Pushgateway did not answer in time.
    #[error("failed to push the drill's metrics to {url}: no answer within {}s", firedrill::report::EXPORT_TIMEOUT.as_secs())]
    #[cfg(feature = "live")]
    PushTimedOut {
        /// The group's URL.
        url: String,
    },
    /// The Pushgateway refused the metrics.
    #[cfg(feature = "live")]
    #[error("the Pushgateway at {url} answered HTTP {status}: {answer}")]
    PushRefused {
        /// The group's URL.
        url: String,
        /// Its status.
        status: u16,
        /// What it said.
        answer: String,
    },
    /// A tabletop exercise could not be facilitated.
    #[error(transparent)]
    Tabletop(firedrill::tabletop::TabletopError),
    /// A part of the reference stack failed.
    #[cfg(feature = "docker")]
    #[error(transparent)]
    Stack(#[from] StackError),
}

impl CliError {
    /// The exit code of a command that stopped on this error. Every error is invalid input or
    /// an environment that could not be used (2): a missed target is a result, not an error.
    pub fn exit_code(&self) -> i32 {
        EXIT_INVALID
    }
}
