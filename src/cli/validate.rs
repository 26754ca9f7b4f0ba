//! `firedrill validate`: checks scenario files and lists every problem.

use std::path::PathBuf;

use clap::Args;
use firedrill::score::{EXIT_INVALID, EXIT_OK};

use super::scenarios::load_all;
use super::{CliError, Output};

/// Check scenario files and print every problem with file:line:column.
#[derive(Args)]
pub struct ValidateArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl ValidateArgs {
    /// Lists every file as `ok` (with what it drills) or `invalid` (with its problems).
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let listed = load_all(&self.paths, out, |out, file, loaded| match loaded {
            Some(s) => out.println(&format!(
                "ok      {}  ({}: {} in {}, {} probes, {} steps)",
                file.display(),
                s.name,
                s.fault.kind(),
                s.environment.kind(),
                s.probes.len(),
                s.steps.len()
            )),
            None => out.println(&format!("invalid {}", file.display())),
        });
        Ok(if listed.is_ok() { EXIT_OK } else { EXIT_INVALID })
    }
}
