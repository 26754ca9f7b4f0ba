//! Reports: the JSON record of a drill and its renderings (terminal, Markdown, HTML with an SVG
//! timeline, JUnit XML), and the compliance summary over stored records.

use std::path::PathBuf;
use std::time::Duration;

use crate::drill::ScenarioRun;
use crate::record::DrillRecord;
use crate::word::ClockKind;

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

/// How long pushing or exporting a run's results may take, connecting included: a monitoring
/// endpoint that hangs delays the end of a run by this much at most.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a drill's stamps go on a dashboard's or a tracing backend's time axis. A `sim` drill's
/// virtual clock starts at the Unix epoch, which none of them shows, so it is moved to end at
/// the moment it is pushed or exported; a real drill stays when it happened.
pub struct Placement(jiff::SignedDuration);

impl Placement {
    /// The placement of `record`, pushed or exported at `now`.
    pub fn of(record: &DrillRecord, now: jiff::Timestamp) -> Self {
        Placement(match record.clock {
            ClockKind::Virtual => now.duration_since(record.ended_at),
            ClockKind::Real => jiff::SignedDuration::ZERO,
        })
    }

    /// A recorded stamp, placed.
    pub fn at(&self, t: jiff::Timestamp) -> jiff::Timestamp {
        t.checked_add(self.0).unwrap_or(t)
    }
}

/// A word's name as the record stores it (`not_measured`), so a label or an attribute reads as
/// the JSON does.
fn serde_name<T: serde::Serialize>(word: &T) -> String {
    serde_json::to_value(word).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

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

/// Each of `formats` of every record of `run` that was written, with the path beside the record
/// it goes to (same name, the format's extension), for the record's store to write. Drills not
/// written (`--no-write`) get no renderings either.
pub fn renderings(run: &ScenarioRun, formats: &[Format]) -> Vec<(PathBuf, String)> {
    let mut renderings = Vec::new();
    // The MTTR is the mean over this invocation's drills and the history it included.
    let mttr_drills = run.drills.len() + run.history;
    for (record, path, mttr) in run.drills_with_mttr() {
        let Some(path) = path else { continue };
        for format in formats {
            let (ext, text) = match format {
                Format::Markdown => ("md", markdown::render(record)),
                Format::Html => ("html", html::render(record)),
                Format::Junit => ("xml", junit::render(record, mttr.map(|(v, m)| (v, m, mttr_drills)))),
            };
            renderings.push((path.with_extension(ext), text));
        }
    }
    renderings
}
