//! `firedrill recover`: lists what killed or interrupted drills left applied, and undoes it;
//! and `firedrill deadman`, the dead man's switch a fault's helper container runs.

use std::path::{Path, PathBuf};

use clap::Args;
use firedrill::recover::{self, EntryState, Survey};
use firedrill::score::{EXIT_INVALID, EXIT_OK};

use super::{CliError, Output};

/// List what killed or interrupted drills left applied (paused or stopped containers, network
/// rules, containers firedrill started) and undo it with `--run` or `--all`.
///
/// Exit code: 0 listed (or all of it undone), 2 something could not be undone or read.
#[derive(Args)]
pub struct RecoverArgs {
    /// Undo what this run left (its id, as listed); may be repeated.
    #[arg(long = "run", value_name = "ID", conflicts_with = "all")]
    runs: Vec<String>,
    /// Undo what every listed run left.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    state: StateDirArg,
}

/// Where firedrill keeps its state (the revert journals).
#[derive(Args)]
pub struct StateDirArg {
    /// firedrill's state folder, where drills journal their changes; default
    /// `$XDG_STATE_HOME/firedrill` (`~/.local/state/firedrill`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

impl StateDirArg {
    /// The folder given, or the platform's default; absolute, since the dead man's switch is
    /// handed the journal folder as a bind mount, which Docker takes only as an absolute path.
    pub fn dir(&self) -> PathBuf {
        let dir = self.state_dir.clone().unwrap_or_else(firedrill::journal::default_state_dir);
        std::path::absolute(&dir).unwrap_or(dir)
    }
}

impl RecoverArgs {
    /// Lists, or undoes what was asked.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let dir = self.state.dir();
        let survey = recover::survey(&dir)?;
        print_survey(out, &survey, &dir);
        if !self.all && self.runs.is_empty() {
            return Ok(if survey.unreadable.is_empty() { EXIT_OK } else { EXIT_INVALID });
        }
        let unknown: Vec<&String> = self.runs.iter().filter(|r| !survey.runs.iter().any(|l| &l.run == *r)).collect();
        for run in &unknown {
            out.eprintln(&format!("error: run {run} left nothing to recover (see the list above)"));
        }
        let selected = (!self.all).then_some(self.runs.as_slice());
        Ok(undo(out, &dir, selected)?.max(if unknown.is_empty() { EXIT_OK } else { EXIT_INVALID }))
    }
}

/// Undoes what the runs (all with `None`) left, printing each undo; the exit code.
pub fn undo(out: &Output, state_dir: &Path, runs: Option<&[String]>) -> Result<i32, CliError> {
    let undid = recover::recover(state_dir, runs)?;
    let mut code = EXIT_OK;
    for u in &undid {
        match &u.result {
            Ok(done) => out.println(&format!("  {}  {}: {done}", u.run, u.change)),
            Err(why) => {
                out.eprintln(&format!("error: {}  {}: {why}", u.run, u.change));
                code = EXIT_INVALID;
            }
        }
    }
    let failed = undid.iter().filter(|u| u.result.is_err()).count();
    out.println(&format!("recovered: {} undo(s), {failed} failed", undid.len()));
    Ok(code)
}

/// Prints what was left, run by run.
pub fn print_survey(out: &Output, survey: &Survey, state_dir: &Path) {
    for e in &survey.unreadable {
        out.eprintln(&format!("warning: {}", firedrill::text::error_chain(e)));
    }
    if let Some(why) = &survey.docker_unavailable {
        out.println(&format!("(labelled containers not looked for: {why})"));
    }
    if survey.runs.is_empty() {
        out.println(&format!(
            "nothing left by earlier drills (journals in {})",
            firedrill::journal::journal_dir(state_dir).display()
        ));
        return;
    }
    for left in &survey.runs {
        match &left.journal {
            Some(j) => out.println(&format!(
                "run {}  scenario {} ({})  started {}  by pid {}  {} environment",
                left.run,
                j.begin.scenario,
                j.begin.path.display(),
                j.begin.started,
                j.begin.pid,
                j.begin.environment
            )),
            None => out.println(&format!("run {}  NO JOURNAL: found by firedrill's run label only", left.run)),
        }
        for (entry, state) in &left.entries {
            let state = match state {
                EntryState::InEffect => "STILL IN EFFECT".to_string(),
                EntryState::NotInEffect(why) => format!("no longer in effect ({why})"),
                EntryState::Unknown(why) => format!("unknown ({why})"),
            };
            out.println(&format!("  #{:<3} {}  {}: {state}", entry.entry, entry.at, entry.change));
        }
        if !left.labelled.is_empty() {
            out.println(&format!("  labelled containers: {}", left.labelled.join(", ")));
        }
        if let Some(n) = &left.network {
            out.println(&format!("  network: {n}"));
        }
    }
    let runs = survey.runs.len();
    out.println(&format!("{runs} run(s) left something: `firedrill recover --all` (or `--run ID`) undoes it"));
}

/// The dead man's switch of a drill, as its helper container runs it (not for people).
#[derive(Args)]
pub struct DeadmanArgs {
    /// The drill's revert journal.
    #[arg(long)]
    journal: PathBuf,
}

impl DeadmanArgs {
    /// Watches the journal until its drill ends; prints each lift.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let mut code = EXIT_OK;
        for u in recover::deadman(&self.journal)? {
            match &u.result {
                Ok(done) => out.println(&format!("lifted: {}: {done}", u.change)),
                Err(why) => {
                    out.eprintln(&format!("error: {}: {why}", u.change));
                    code = EXIT_INVALID;
                }
            }
        }
        Ok(code)
    }
}
