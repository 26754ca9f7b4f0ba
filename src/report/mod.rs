//! Reports: the JSON record of a drill and its renderings (terminal, Markdown, HTML with an SVG
//! timeline, JUnit XML), and the compliance summary over stored records.

use std::path::Path;

use crate::drill::ScenarioRun;
use crate::record::{write_atomic, RecordError};

pub mod html;
pub mod junit;
pub mod markdown;
#[cfg(feature = "otel")]
pub mod otel;
pub mod prediction;
pub mod pushgateway;
pub mod summary;
pub mod svg;
pub mod terminal;
mod view;

#[cfg(test)]
mod tests;

/// A rendering of a drill record, written beside its JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Markdown (`.md`).
    Markdown,
    /// Self-contained HTML with the timeline chart (`.html`).
    Html,
    /// JUnit XML (`.xml`).
    Junit,
}

/// Writes each of `formats` beside every record of `run` that was written (same name, the
/// format's extension). Drills not written (`--no-write`) get no renderings either.
pub fn write_renderings(run: &ScenarioRun, formats: &[Format]) -> Result<(), RecordError> {
    let last = run.drills.len().saturating_sub(1);
    // The MTTR is the mean over this invocation's drills and the history it included.
    let mttr_drills = run.drills.len() + run.history;
    for (i, (record, path)) in run.drills.iter().enumerate() {
        let Some(path) = path else { continue };
        for format in formats {
            let (ext, text) = match format {
                Format::Markdown => ("md", markdown::render(record)),
                Format::Html => ("html", html::render(record)),
                // The MTTR verdict goes with the last drill of the scenario, which completes it.
                Format::Junit => {
                    let mttr_case =
                        run.mttr_verdict.as_ref().filter(|_| i == last).map(|v| (v, &run.mttr, mttr_drills));
                    ("xml", junit::render(record, mttr_case))
                }
            };
            let name = path.with_extension(ext);
            let name = name.file_name().and_then(|n| n.to_str()).unwrap_or("report");
            write_atomic(path.parent().unwrap_or(Path::new(".")), name, &text)?;
        }
    }
    Ok(())
}
