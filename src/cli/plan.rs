//! `firedrill plan`: what a scenario would do, without doing it.

use std::path::PathBuf;

use clap::Args;
use firedrill::report::terminal;
use firedrill::score::EXIT_OK;

use super::scenarios::load_one;
use super::{CliError, Output};

/// Show what a scenario would inject, probe and time, without running anything.
#[derive(Args)]
pub struct PlanArgs {
    /// Scenario file.
    path: PathBuf,
}

impl PlanArgs {
    /// Prints the plan of the scenario.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let s = load_one(&self.path, out)?;
        out.print(&terminal::plan(&s));
        Ok(EXIT_OK)
    }
}
