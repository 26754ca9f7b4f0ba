//! `firedrill tabletop`: facilitates a tabletop exercise of a scenario in the terminal and
//! writes its record, after-action report and action items.

use std::path::PathBuf;

use clap::Args;
use firedrill::scenario;
use firedrill::score::EXIT_OK;
use firedrill::simulate::simulate;
use firedrill::tabletop::console::{self, Brief};
use firedrill::tabletop::session::Session;
use firedrill::tabletop::{self as tabletop, TabletopError};

use super::{CliError, Output};

/// Facilitate a tabletop exercise: the room walks through the scenario's procedure while the
/// console keeps time, shows injects and records what the room marks.
#[derive(Args)]
pub struct TabletopArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Who is in the room, `Name:role,Name:role` (asked on screen when absent).
    #[arg(long, value_name = "NAME:ROLE,...")]
    participants: Option<String>,
    /// Folder the record, the after-action report and the action items are written to.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    reports: PathBuf,
    /// Simulated runs behind the prediction shown before the exercise.
    #[arg(long, default_value_t = 2000)]
    runs: u64,
    /// Seed of the prediction.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl TabletopArgs {
    /// Runs the exercise and prints where it was written.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        out.add_secrets(&scenario::redact_list(&self.scenario));
        let s = scenario::load(&self.scenario)?;
        out.add_secrets(&s.redact);
        let participants: Vec<(String, String)> = self
            .participants
            .iter()
            .flat_map(|p| p.split(','))
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (name, role) = p.split_once(':').unwrap_or((p, "participant"));
                (name.trim().to_string(), role.trim().to_string())
            })
            .collect();
        let prediction = simulate(&s, self.runs, self.seed, 1).map_err(|e| e.to_string());
        let prediction = prediction.as_ref().map_err(String::as_str);
        let mut lines = vec![];
        if !s.description.is_empty() {
            lines.push(s.description.clone());
        }
        lines.push(format!("Fault: {}", s.fault.describe()));
        let brief = Brief { lines, prediction: tabletop::predicted(prediction) };
        let mut session = Session::new(&s, &participants, jiff::Timestamp::now());
        console::run(&mut session, &brief)?;
        let record = tabletop::record(&s, &session)?;
        let written = tabletop::write(&self.reports, &record, prediction)?;
        out.println(&format!("record        {}", written.record.display()));
        out.println(&format!("report        {}", written.markdown.display()));
        out.println(&format!("report (html) {}", written.html.display()));
        out.println(&format!("action items  {}", written.actions.display()));
        Ok(EXIT_OK)
    }
}

impl From<TabletopError> for CliError {
    fn from(e: TabletopError) -> Self {
        CliError::Tabletop(e)
    }
}
