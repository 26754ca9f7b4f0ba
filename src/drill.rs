//! Drills: runs a scenario one or more times, scores each run, writes the records and judges
//! MTTR over the runs and the stored history. The command line is a thin layer over this; the
//! renderings of the records (`report::renderings`) are written above it, by the caller.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::engine::{self, Clock, DrillOptions, Interrupt};
use crate::env::{AnyEnvironment, Environment};
use crate::metrics::{self, Measurement, MetricSpec};
use crate::record::{ClockKind, DrillRecord, RecordError, Saved, Skipped};
use crate::scenario::{Scenario, ScenarioError};
use crate::score::{self, TargetKind, Verdict};
use crate::store::{Reports, StoreError};
use crate::timeline::{Event, Outcome};

/// Why drills could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The scenario cannot run in its environment.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A record could not be made.
    #[error(transparent)]
    Report(#[from] RecordError),
    /// A record could not be written, nor kept anywhere else.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The async runtime could not start.
    #[error("failed to start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// How to run a scenario.
pub struct RunOptions<'a> {
    /// Seed of the first run; run `i` (from 0) uses `seed + i`.
    pub seed: u64,
    /// How many times to run it.
    pub repeat: u32,
    /// Where records are written and history is read; `None` writes nothing.
    pub reports: Option<Reports>,
    /// Whether MTTR includes the stored history of earlier drills.
    pub history: bool,
    /// Play `sim` drills out on the wall clock (a live tabletop exercise) instead of in
    /// virtual time; Ctrl-C then interrupts the drill, which reverts the fault.
    pub real_time: bool,
    /// Called with every event as it is recorded.
    pub on_event: Option<&'a dyn Fn(&Event)>,
    /// Who runs the drills, recorded in each result.
    pub operator: Option<String>,
    /// firedrill's state folder, where drills journal their changes ([`crate::journal`]).
    pub state_dir: PathBuf,
    /// A file whose appearance stops the drill in progress at once, its fault reverted, and
    /// the drills after it (`run --kill-switch`). SIGUSR1 does the same in real-time drills.
    pub kill_switch: Option<PathBuf>,
}

/// The drills of one scenario in one invocation.
pub struct ScenarioRun {
    /// Each drill's record, and the file it was written to.
    pub drills: Vec<(DrillRecord, Option<PathBuf>)>,
    /// MTTR over these drills and the history.
    pub mttr: Measurement,
    /// How many earlier drills the MTTR includes.
    pub history: usize,
    /// The MTTR verdict, when the scenario has an MTTR target.
    pub mttr_verdict: Option<Verdict>,
    /// Files of the reports folder the history could not read, for the caller to report.
    pub skipped: Vec<Skipped>,
    /// Records the reports folder could not take, where each was kept instead and why, for
    /// the caller to report: the invocation did not do what was asked.
    pub unsaved: Vec<(PathBuf, StoreError)>,
}

impl ScenarioRun {
    /// Each drill, the file it was written to, and the scenario's MTTR verdict and value with
    /// the last drill, which completes the run: every rendering and export reports them so.
    pub fn drills_with_mttr(
        &self,
    ) -> impl Iterator<Item = (&DrillRecord, Option<&Path>, Option<(&Verdict, &Measurement)>)> {
        let last = self.drills.len().saturating_sub(1);
        self.drills.iter().enumerate().map(move |(i, (record, path))| {
            let mttr = self.mttr_verdict.as_ref().filter(|_| i == last).map(|v| (v, &self.mttr));
            (record, path.as_deref(), mttr)
        })
    }

    /// The exit code these drills call for.
    pub fn exit_code(&self) -> i32 {
        let drills = self.drills.iter().map(|(r, _)| (r.outcome, r.verdicts.as_slice()));
        let mttr = self.mttr_verdict.iter().map(|v| (Outcome::Recovered, std::slice::from_ref(v)));
        score::exit_code(drills.chain(mttr))
    }
}

/// Checks that a scenario can run in its environment, with positions in the file.
pub fn check(scenario: &Scenario) -> Result<(), ScenarioError> {
    let problems = match AnyEnvironment::for_scenario(scenario, 0, &crate::journal::default_state_dir()) {
        Ok(AnyEnvironment::Sim(env)) => env.check(scenario),
        #[cfg(feature = "docker")]
        Ok(AnyEnvironment::Docker(env)) => env.check(scenario),
        #[cfg(feature = "kube")]
        Ok(AnyEnvironment::Kube(env)) => env.check(scenario),
        #[cfg(feature = "aws")]
        Ok(AnyEnvironment::Aws(env)) => env.check(scenario),
        Err(problem) => vec![problem],
    };
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ScenarioError::Invalid { path: scenario.path.clone(), problems })
    }
}

/// Runs a scenario `repeat` times, writes each record (a result is never lost, whatever
/// happens after: a record its location cannot take is kept elsewhere, [`Reports::write_record`]), and
/// judges MTTR.
pub fn run_scenario(scenario: &Scenario, opts: &RunOptions<'_>) -> Result<ScenarioRun, DrillError> {
    check(scenario)?;
    let mut drills = Vec::new();
    let mut unsaved = Vec::new();
    for i in 0..opts.repeat.max(1) {
        let seed = opts.seed.wrapping_add(i as u64);
        let mut record = drill_with(
            scenario,
            seed,
            i + 1,
            opts.real_time,
            opts.on_event,
            &opts.state_dir,
            opts.kill_switch.as_deref(),
        )?;
        record.operator = opts.operator.clone();
        let path = match &opts.reports {
            Some(reports) => match reports.write_record(
                &record.file_name(Timestamp::now()),
                &record.to_json(),
                &reports.fallbacks(),
            )? {
                Saved::InPlace(path) => Some(path),
                Saved::Fallback { path, error } => {
                    unsaved.push((path.clone(), error));
                    Some(path)
                }
            },
            None => None,
        };
        let interrupted = record.outcome == Outcome::Cancelled || record.timeline.kill_switch().is_some();
        drills.push((record, path));
        // Ctrl-C or the kill switch ends the invocation, not just the drill it interrupted.
        if interrupted {
            break;
        }
    }
    let mut rtos: Vec<Measurement> = drills.iter().map(|(r, _)| r.metrics.rto.clone()).collect();
    let mut history = 0;
    let mut skipped = Vec::new();
    if let (true, Some(reports), Some((first, _))) = (opts.history, &opts.reports, drills.first()) {
        let written: Vec<PathBuf> = drills.iter().filter_map(|(_, p)| p.clone()).collect();
        let current: Vec<&DrillRecord> = drills.iter().map(|(r, _)| r).collect();
        let earlier = reports.history(first, &written, &current);
        for h in earlier.records {
            rtos.push(h.metrics.rto);
            history += 1;
        }
        skipped = earlier.skipped;
    }
    let mttr = metrics::mttr(&rtos);
    let mttr_verdict = scenario.mttr.map(|limit| Verdict::check(TargetKind::Mttr, limit, &mttr));
    Ok(ScenarioRun { drills, mttr, history, mttr_verdict, skipped, unsaved })
}

/// How often the kill-switch file is looked for in a real-time drill.
const KILL_SWITCH_POLL: Duration = Duration::from_millis(250);

/// Runs one drill and scores it, journalling its changes in the default state folder
/// ([`crate::journal::default_state_dir`]). A real-time drill stops, reverting its fault, on
/// Ctrl-C, SIGTERM or SIGUSR1.
pub fn drill_once(
    scenario: &Scenario,
    seed: u64,
    run: u32,
    real_time: bool,
    on_event: Option<&dyn Fn(&Event)>,
) -> Result<DrillRecord, DrillError> {
    drill_with(scenario, seed, run, real_time, on_event, &crate::journal::default_state_dir(), None)
}

/// [`drill_once`], journalling in `state_dir`, and also stopped at once when `kill_switch`
/// exists.
#[allow(clippy::too_many_arguments, reason = "the one place every drill option meets")]
fn drill_with(
    scenario: &Scenario,
    seed: u64,
    run: u32,
    real_time: bool,
    on_event: Option<&dyn Fn(&Event)>,
    state_dir: &Path,
    kill_switch: Option<&Path>,
) -> Result<DrillRecord, DrillError> {
    let environment = AnyEnvironment::for_scenario(scenario, seed, state_dir)
        .map_err(|problem| ScenarioError::Invalid { path: scenario.path.clone(), problems: vec![problem] })?;
    match environment {
        AnyEnvironment::Sim(env) => {
            drill_in(scenario, &env.real_time(real_time), seed, run, on_event, interrupted(real_time, kill_switch))
        }
        #[cfg(feature = "docker")]
        AnyEnvironment::Docker(env) => drill_in(scenario, &env, seed, run, on_event, interrupted(true, kill_switch)),
        #[cfg(feature = "kube")]
        AnyEnvironment::Kube(env) => drill_in(scenario, &env, seed, run, on_event, interrupted(true, kill_switch)),
        #[cfg(feature = "aws")]
        AnyEnvironment::Aws(env) => drill_in(scenario, &env, seed, run, on_event, interrupted(true, kill_switch)),
    }
}

/// What stops a drill from outside. Ctrl-C, or SIGTERM from a CI job being cancelled, cancel
/// it; SIGUSR1 or the kill-switch file appearing abort it at once. Either way the fault is
/// reverted and what the drill created is removed. Signals are listened for only in a
/// real-time drill (a virtual-time one lasts milliseconds, on a runtime without signal
/// handling), and the file looked for every [`KILL_SWITCH_POLL`]; a virtual-time drill looks
/// for it once, at its start.
async fn interrupted(real_time: bool, kill_switch: Option<&Path>) -> Interrupt {
    let file = async {
        let Some(path) = kill_switch else { return std::future::pending().await };
        loop {
            if path.exists() {
                return Interrupt::KillSwitch { switch: format!("file {}", path.display()) };
            }
            if !real_time {
                return std::future::pending().await;
            }
            tokio::time::sleep(KILL_SWITCH_POLL).await;
        }
    };
    if !real_time {
        return file.await;
    }
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn next(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => Interrupt::Cancel,
        () = next(signal(SignalKind::terminate()).ok()) => Interrupt::Cancel,
        () = next(signal(SignalKind::user_defined1()).ok()) => Interrupt::KillSwitch { switch: "signal SIGUSR1".into() },
        kill = file => kill,
    }
}

/// Runs one drill in a given environment, stopped by `cancel` ([`Interrupt`], or `()` for a
/// plain cancellation), and scores it.
/// Virtual-time environments run on a paused clock whose wall-clock stamps start at the Unix
/// epoch, so that a seed gives byte-identical records.
pub fn drill_in<E: Environment>(
    scenario: &Scenario,
    env: &E,
    seed: u64,
    run: u32,
    on_event: Option<&dyn Fn(&Event)>,
    cancel: impl Future<Output = impl Into<Interrupt>>,
) -> Result<DrillRecord, DrillError> {
    let virtual_time = env.virtual_time();
    let runtime = if virtual_time {
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .map_err(DrillError::Runtime)?;
    // A local task set, so an environment can carry on work that outlives one call (a node
    // drain's evictions) on this thread, where its state lives.
    let timeline = runtime.block_on(tokio::task::LocalSet::new().run_until(async {
        let wall = if virtual_time { Timestamp::UNIX_EPOCH } else { Timestamp::now() };
        let opts = DrillOptions { clock: Clock::starting_at(wall), on_event };
        engine::run(scenario, env, opts, cancel).await
    }));
    let metrics = metrics::compute(&timeline, &MetricSpec::of(scenario));
    let verdicts = score::verdicts(scenario, &metrics);
    let score = score::score(&verdicts, &metrics);
    let clock = if virtual_time { ClockKind::Virtual } else { ClockKind::Real };
    Ok(DrillRecord::new(scenario, seed, run, clock, timeline, metrics, verdicts, score)?)
}
