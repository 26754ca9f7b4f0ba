//! Revert journal text → a drill's open changes or an error (what `recover`, `run` and the dead
//! man's switch read, after any crash); every undo read writes itself out and reads back the same.
#![no_main]

use std::path::Path;

use firedrill_core::journal::{self, Undo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(contents) = journal::parse(text, Path::new("fuzz.jsonl")) {
        for entry in &contents.open {
            let written = serde_json::to_string(&entry.undo).expect("an undo serializes");
            let again: Undo = serde_json::from_str(&written).expect("an undo's own JSON reads back");
            assert_eq!(again, entry.undo);
        }
    }
});
