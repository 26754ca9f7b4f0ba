//! Errors of loading a scenario, each pointing at file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a scenario file (1-based line and column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Pos {
    pub(crate) fn of(loc: serde_saphyr::Location) -> Self {
        Pos { line: loc.line(), column: loc.column() }
    }

    /// Where a value is written.
    pub(crate) fn spanned<T>(s: &serde_saphyr::Spanned<T>) -> Self {
        Pos::of(s.referenced)
    }

    /// Where a top-level key starts, for problems about a section as a whole (or the first
    /// line when the key is absent and a default is at fault).
    pub(crate) fn key(text: &str, key: &str) -> Self {
        let line = text.lines().position(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':'))).unwrap_or(0);
        Pos { line: line as u64 + 1, column: 1 }
    }
}

/// One thing wrong with a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub pos: Pos,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Problem {
    /// A problem at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Problem { pos, message: message.into() }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not match the scenario format.
    #[error("{}", render(path, std::slice::from_ref(problem), source_line))]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        problem: Problem,
        /// The text of the offending line, for the caret display.
        source_line: Option<String>,
    },
    /// The file parsed but says something impossible; every such problem is listed.
    #[error("{}", render(path, problems, &None))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ScenarioError {
    pub(crate) fn parse(path: &Path, text: &str, e: &serde_saphyr::Error) -> Self {
        let pos = e.location().map(Pos::of).unwrap_or(Pos { line: 1, column: 1 });
        let full = e.to_string();
        // serde-saphyr appends " at line L, column C"; the position is rendered our way.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        let source_line = text.lines().nth(pos.line.saturating_sub(1) as usize).map(str::to_string);
        ScenarioError::Parse { path: path.to_path_buf(), problem: Problem::new(pos, message), source_line }
    }

    /// The problems, with positions, whatever the kind of error.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ScenarioError::Io { .. } => vec![],
            ScenarioError::Parse { problem, .. } => vec![problem.clone()],
            ScenarioError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

fn render(path: &Path, problems: &[Problem], source_line: &Option<String>) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Line 0 means the problem is not at a place in the file (a command-line override).
        out += &match p.pos.line {
            0 => format!("{}: {}", path.display(), p.message),
            line => format!("{}:{line}:{}: {}", path.display(), p.pos.column, p.message),
        };
    }
    if let (Some(line), [p]) = (source_line, problems) {
        out += &format!(
            "\n  {:>4} | {line}\n  {:>4} | {}^",
            p.pos.line,
            "",
            " ".repeat(p.pos.column.saturating_sub(1) as usize)
        );
    }
    out
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}
