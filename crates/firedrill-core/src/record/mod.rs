//! The JSON record of a drill: what ran, what was seen, what it means. Written atomically to
//! `reports/`; the input of every other report.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::scenario::{Disruption, Scenario};
use crate::score::Verdict;
use crate::timeline::{Outcome, Timeline};

mod store;

pub use crate::word::{ClockKind, EnvironmentKind, FaultKind, ProbeKind, StepKind};
pub use store::{
    check_writable, drilled_at, fallback_dirs, history_in, is_result, load_dir, load_history, result_files, verify,
    write_atomic, write_record, History, Integrity, LoadError, Loaded, Saved, Skipped,
};

/// The record format this build writes and the newest it reads. Raise it when a change to
/// [`DrillRecord`] would make an older firedrill misread a newer record; records without the
/// field are format 0 (before versioning) and read the same as format 1.
pub const FORMAT: u32 = 1;

/// Why a record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Masking secrets left a record that is no longer valid; nothing is written.
    #[error("failed to mask secrets in the record ({0}); nothing was written")]
    Redaction(String),
    /// Writing failed.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The reports folder cannot take records: found before a drill, so nothing was run.
    #[error("failed to write records to {}; nothing was run", dir.display())]
    Unwritable {
        /// The reports folder.
        dir: PathBuf,
        /// Why it cannot be written.
        #[source]
        source: Box<RecordError>,
    },
}

/// One drill's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The record format it was written in (see [`FORMAT`]); 0 when it predates the field.
    #[serde(default)]
    pub format: u32,
    /// SHA-256 of the record's canonical content (this field left out): `report --verify`
    /// recomputes it to catch a record edited after the fact. Set by [`DrillRecord::to_json`].
    #[serde(default)]
    pub record_sha256: String,
    /// The firedrill version that ran it.
    pub firedrill_version: String,
    /// What ran.
    pub scenario: ScenarioInfo,
    /// Where it ran.
    pub environment: EnvironmentKind,
    /// Which clock stamped it.
    pub clock: ClockKind,
    /// The seed of this run: `--seed` with `--repeat 1` reproduces it in `sim`.
    pub seed: u64,
    /// Run number within its invocation, from 1.
    pub run: u32,
    /// Who ran the drill (`--operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Wall-clock start (virtual in `sim`).
    pub started_at: Timestamp,
    /// Wall-clock end (virtual in `sim`).
    pub ended_at: Timestamp,
    /// How it ended.
    pub outcome: Outcome,
    /// The targets, in seconds.
    pub targets: TargetsInfo,
    /// What was measured.
    pub metrics: Metrics,
    /// Targets checked.
    pub verdicts: Vec<Verdict>,
    /// 0–100, `None` when there was nothing to score.
    pub score: Option<u32>,
    /// The probes that observed it.
    pub probes: Vec<ProbeInfo>,
    /// The procedure's steps.
    pub steps: Vec<StepInfo>,
    /// Every event.
    pub timeline: Timeline,
}

/// What ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// File, as given.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The fault injected.
    pub fault: FaultKind,
    /// What the fault does.
    pub fault_description: String,
    /// The disruption type the drill rehearsed, which picked the targets that scored it;
    /// `None` in records written before disruption types, which are not guessed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<DisruptionInfo>,
}

/// The disruption type of a drill, as its record keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisruptionInfo {
    /// The type.
    pub kind: Disruption,
    /// Written in the scenario (`true`) or inferred from its fault.
    pub declared: bool,
}

impl std::fmt::Display for DisruptionInfo {
    /// `hardware`, or `hardware (inferred)` when the scenario did not say.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.declared {
            true => write!(f, "{}", self.kind),
            false => write!(f, "{} (inferred)", self.kind),
        }
    }
}

/// The targets, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetsInfo {
    /// RTO.
    pub rto_s: Option<f64>,
    /// RPO.
    pub rpo_s: Option<f64>,
    /// MTTD.
    pub mttd_s: Option<f64>,
    /// MTTR.
    pub mttr_s: Option<f64>,
    /// Deadline.
    pub deadline_s: f64,
}

/// A probe, as the report names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// Name.
    pub name: String,
    /// What it checks.
    pub kind: ProbeKind,
    /// What it checks (secrets masked).
    pub target: String,
    /// Interval, seconds.
    pub interval_s: f64,
    /// Whether it makes up availability.
    pub availability: bool,
}

/// A step, as the report names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Name.
    pub name: String,
    /// Who carries it out.
    pub kind: StepKind,
    /// Budget, seconds.
    pub budget_s: Option<f64>,
}

impl DrillRecord {
    /// Assembles the record; `metrics`, `verdicts` and `score` come from their modules.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        run: u32,
        clock: ClockKind,
        timeline: Timeline,
        metrics: Metrics,
        verdicts: Vec<Verdict>,
        score: Option<u32>,
    ) -> Result<Self, RecordError> {
        let secs = |d: Option<crate::duration::Dur>| d.map(|d| d.as_secs_f64());
        let first = timeline.events.first().map(|e| e.at).unwrap_or(Timestamp::UNIX_EPOCH);
        let last = timeline.events.last().map(|e| e.at).unwrap_or(first);
        let record = DrillRecord {
            format: FORMAT,
            record_sha256: String::new(),
            firedrill_version: env!("CARGO_PKG_VERSION").into(),
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                file: scenario.path.display().to_string(),
                sha256: scenario.sha256.clone(),
                description: scenario.description.clone(),
                tags: scenario.tags.clone(),
                fault: scenario.fault.kind(),
                fault_description: scenario.fault.describe(),
                disruption: Some(DisruptionInfo { kind: scenario.disruption, declared: scenario.disruption_declared }),
            },
            environment: scenario.environment.kind(),
            clock,
            seed,
            run,
            operator: None,
            started_at: first,
            ended_at: last,
            outcome: timeline.outcome().unwrap_or(crate::timeline::Outcome::Error),
            targets: TargetsInfo {
                rto_s: secs(scenario.rto),
                rpo_s: secs(scenario.rpo),
                mttd_s: secs(scenario.mttd),
                mttr_s: secs(scenario.mttr),
                deadline_s: scenario.deadline.as_secs_f64(),
            },
            metrics,
            verdicts,
            score,
            probes: scenario
                .probes
                .iter()
                .map(|p| ProbeInfo {
                    name: p.name.clone(),
                    kind: p.check.kind(),
                    target: p.check.target(),
                    interval_s: p.interval.as_secs_f64(),
                    availability: p.is_availability(),
                })
                .collect(),
            steps: scenario
                .steps
                .iter()
                .map(|s| StepInfo {
                    name: s.name.clone(),
                    kind: s.action.kind(),
                    budget_s: s.budget.map(|b| b.as_secs_f64()),
                })
                .collect(),
            timeline,
        };
        record.redacted(&scenario.redact)
    }

    /// A virtual-time drill is fixed by its scenario file and seed: running it again repeats
    /// the same drill and adds no evidence. This is the key it repeats under; `None` for a
    /// real-clock drill, which never repeats.
    pub fn replay_key(&self) -> Option<(&str, u64)> {
        (self.clock == ClockKind::Virtual).then_some((self.scenario.sha256.as_str(), self.seed))
    }

    /// The record with every secret masked in every string it holds, so that no format
    /// rendered from it can show one.
    fn redacted(self, listed: &[String]) -> Result<Self, RecordError> {
        /// Fields whose values are words of the format (tags, enums) or stamps, never text a
        /// secret could be in: masking a listed string that happens to be inside one would
        /// break the record. (`target` is not one: a probe's target is text; a verdict's
        /// target word masked by an absurd listed secret fails the record, never leaks.)
        const STRUCTURAL: [&str; 13] = [
            "event",
            "status",
            "outcome",
            "phase",
            "clock",
            "environment",
            "fault",
            "kind",
            "at",
            "started_at",
            "ended_at",
            "sha256",
            "record_sha256",
        ];
        fn walk(v: &mut serde_json::Value, listed: &[String]) {
            match v {
                serde_json::Value::String(s) => *s = crate::redact::text(s, listed),
                serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, listed)),
                serde_json::Value::Object(map) => {
                    map.iter_mut().filter(|(k, _)| !STRUCTURAL.contains(&k.as_str())).for_each(|(_, i)| walk(i, listed))
                }
                _ => {}
            }
        }
        let mut value = serde_json::to_value(&self).expect("a record is plain data");
        walk(&mut value, listed);
        // Never fall back to the unmasked record: no record is better than a leaking one.
        serde_json::from_value(value).map_err(|e| RecordError::Redaction(e.to_string()))
    }

    /// The SHA-256 of the canonical form of a record's JSON: keys sorted, no whitespace, the
    /// `record_sha256` field left out.
    pub fn canonical_sha256(value: &serde_json::Value) -> String {
        let mut value = crate::text::sorted_keys(value.clone());
        if let Some(map) = value.as_object_mut() {
            map.retain(|key, _| key != "record_sha256");
        }
        let canonical = serde_json::to_string(&value).expect("plain JSON");
        crate::text::sha256(canonical.as_bytes())
    }

    /// The record as pretty JSON with its integrity hash, the bytes written to disk: `format`
    /// first, so that a reader (or a person) sees which format it is before anything else,
    /// then the other fields in sorted order.
    pub fn to_json(&self) -> String {
        /// `format`, then the content.
        #[derive(Serialize)]
        struct Stored<'a> {
            format: u32,
            #[serde(flatten)]
            content: &'a serde_json::Value,
        }
        let mut value = crate::text::sorted_keys(serde_json::to_value(self).expect("a record is plain data"));
        let digest = Self::canonical_sha256(&value);
        value["record_sha256"] = serde_json::Value::String(digest);
        if let Some(map) = value.as_object_mut() {
            map.remove("format");
        }
        let mut s = serde_json::to_string_pretty(&Stored { format: self.format, content: &value }).expect("plain JSON");
        s.push('\n');
        s
    }

    /// A file name that sorts by real time of writing and says what it holds: a drill's seed
    /// and run, or that a room played it (a tabletop exercise has neither).
    pub fn file_name(&self, written_at: Timestamp) -> String {
        let stamp = written_at.strftime("%Y%m%dT%H%M%S%.3fZ").to_string().replace('.', "");
        match self.environment {
            EnvironmentKind::Tabletop => format!("{stamp}_{}_tabletop.json", self.scenario.name),
            _ => format!("{stamp}_{}_seed{}_run{}.json", self.scenario.name, self.seed, self.run),
        }
    }
}
