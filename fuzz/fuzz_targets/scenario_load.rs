//! Scenario YAML text → a scenario or problems, never a panic; every problem names the file
//! and, when it is at a place in the text, its line.
#![no_main]

use std::path::Path;

use firedrill_core::scenario::{self, ScenarioError};
use libfuzzer_sys::fuzz_target;

/// A folder that does not exist: a relative `environment.docker.from` then fails to read
/// instead of reading whatever lies beside the fuzzer.
const PATH: &str = "/nonexistent-firedrill-fuzz/scenario.yaml";

fuzz_target!(|text: &str| {
    match scenario::parse(text, Path::new(PATH)) {
        Ok(_) | Err(ScenarioError::Io { .. }) => {}
        Err(e) => {
            let problems = e.problems();
            assert!(!problems.is_empty(), "an error without a problem: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(PATH), "an error that does not name its file: {shown}");
        }
    }
});
