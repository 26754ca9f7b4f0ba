//! `firedrill import`: a Markdown runbook, as a team wrote it, becomes one scenario file per
//! procedure, so a drill or a tabletop exercise starts from the runbook instead of a retyping.
//! Repair, parse and write are pure functions over text; only [`read`] and [`write_all`] touch
//! the disk.
//!
//! Nothing an import writes runs a command: a runbook's commands stay in its steps' `manual`
//! text, because a runbook mixes read-only checks with restarts and deletions, and no parser
//! can tell which step is safe to automate.

mod parse;
mod repair;
mod write;

use std::path::{Path, PathBuf};

pub use parse::{durations, parse, Mention, Procedure, Runbook, ServiceTarget, Step, Timed};
pub use repair::{repair, Repair};
pub use write::{scenarios, ScenarioFile};

/// A runbook read, repaired and turned into scenarios.
#[derive(Clone, Debug)]
pub struct Import {
    /// The repairs made before reading (none: the text was not damaged).
    pub repairs: Vec<Repair>,
    /// What was read.
    pub runbook: Runbook,
    /// A scenario per procedure, in the runbook's order.
    pub scenarios: Vec<ScenarioFile>,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The runbook could not be read.
    #[error("failed to read the runbook {}", path.display())]
    Read {
        /// The runbook.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A scenario file or its folder could not be written.
    #[error("failed to write {}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Imports a runbook's text; `source` names it in the scenarios' comments.
pub fn import(text: &str, source: &str) -> Import {
    let (text, repairs) = repair(text);
    let runbook = parse(&text);
    let scenarios = scenarios(&runbook, &repairs, source);
    Import { repairs, runbook, scenarios }
}

/// Reads and imports a runbook file.
pub fn read(path: &Path) -> Result<Import, ImportError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.to_path_buf(), source })?;
    let source = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(import(&text, &source))
}

/// Writes every scenario as `NAME.yaml` in `dir` (created when missing); the paths written.
pub fn write_all(dir: &Path, scenarios: &[ScenarioFile]) -> Result<Vec<PathBuf>, ImportError> {
    std::fs::create_dir_all(dir).map_err(|source| ImportError::Write { path: dir.to_path_buf(), source })?;
    scenarios
        .iter()
        .map(|s| {
            let path = dir.join(format!("{}.yaml", s.name));
            std::fs::write(&path, &s.text).map_err(|source| ImportError::Write { path: path.clone(), source })?;
            Ok(path)
        })
        .collect()
}
