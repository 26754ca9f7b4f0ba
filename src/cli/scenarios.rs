//! Loading the scenarios that command-line paths name, the same way for every subcommand.

use std::path::{Path, PathBuf};

use firedrill::drill;
use firedrill::scenario::{self, Scenario, ScenarioError};

use super::Output;

/// Loads one scenario file and checks that it can run in its environment.
pub fn load_checked(path: &Path) -> Result<Scenario, ScenarioError> {
    let s = scenario::load(path)?;
    drill::check(&s)?;
    Ok(s)
}

/// Loads one scenario file for a subcommand that stops at its first problem. Its secrets are
/// masked in everything printed after, the error included.
pub fn load_one(path: &Path, out: &mut Output) -> Result<Scenario, ScenarioError> {
    let loaded = load_checked(path);
    out.add_secrets(&match &loaded {
        Ok(s) => s.redact.clone(),
        Err(_) => scenario::redact_list(path),
    });
    loaded
}

/// Loads every scenario the paths name and prints every problem of every file, masked with
/// that file's `redact:` list even when the file is invalid. `each` sees every file and its
/// scenario (`None` when invalid), before its problems are printed. Fails with the number of
/// paths and files that did not load.
pub fn load_all(
    paths: &[PathBuf],
    out: &mut Output,
    mut each: impl FnMut(&Output, &Path, Option<&Scenario>),
) -> Result<Vec<Scenario>, usize> {
    let mut scenarios = Vec::new();
    let mut failures = 0;
    for path in paths {
        let files = match scenario::files(path) {
            Ok(f) => f,
            Err(e) => {
                out.error(&e);
                failures += 1;
                continue;
            }
        };
        for file in files {
            match load_one(&file, out) {
                Ok(s) => {
                    each(out, &file, Some(&s));
                    scenarios.push(s);
                }
                Err(e) => {
                    each(out, &file, None);
                    out.error(&e);
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 {
        Err(failures)
    } else {
        Ok(scenarios)
    }
}
