//! [`Output`]: the one writer of everything the command line prints, so that no line escapes
//! the scenarios' `redact:` lists and a closed stdout never ends the work half-way.

use std::cell::Cell;
use std::io::Write;

use firedrill::text::error_chain;

/// Prints to stdout and stderr, masking every line with the `redact:` lists of the scenarios
/// this invocation has read (and the secrets `redact::text` always masks).
///
/// A closed stdout (`firedrill run … | head -1`) is a normal end for a reader, not an error of
/// the command: what is printed after is dropped and the work goes on, so every drill still
/// writes its record and the exit code is the one the drills call for. A closed stderr is
/// ignored the same way.
#[derive(Default)]
pub struct Output {
    /// Every string listed under `redact:` in the scenarios read so far.
    secrets: Vec<String>,
    /// Whether a write to stdout found it closed.
    stdout_closed: Cell<bool>,
}

impl Output {
    /// Masks the strings a scenario lists under `redact:` in everything printed from now on.
    /// The lists of all scenarios read add up: a line about several scenarios (the summary
    /// of a run) masks the secrets of each.
    pub fn add_secrets(&mut self, listed: &[String]) {
        for secret in listed {
            if !self.secrets.contains(secret) {
                self.secrets.push(secret.clone());
            }
        }
    }

    /// The text with every secret masked.
    pub fn mask(&self, text: &str) -> String {
        firedrill::redact::text(text, &self.secrets)
    }

    /// Prints the text to stdout as it is (no newline added).
    pub fn print(&self, text: &str) {
        if self.stdout_closed.get() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // Any failure means nobody reads any more; the usual one is a closed pipe.
        if stdout.write_all(self.mask(text).as_bytes()).and_then(|()| stdout.flush()).is_err() {
            self.stdout_closed.set(true);
        }
    }

    /// Prints the text and a newline to stdout.
    pub fn println(&self, text: &str) {
        self.print(&format!("{text}\n"));
    }

    /// Prints the text and a newline to stderr: progress, notes and warnings.
    pub fn eprintln(&self, text: &str) {
        // Nowhere is left to say that stderr is closed; the work goes on.
        let _ = writeln!(std::io::stderr().lock(), "{}", self.mask(text));
    }

    /// Prints an error and its causes to stderr: `error: failed to …: cause`.
    pub fn error(&self, e: &dyn std::error::Error) {
        self.eprintln(&format!("error: {}", error_chain(e)));
    }
}
