//! Records on disk: written atomically, read back as a folder, checked against their hashes,
//! and picked out as the history of one drill.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use super::{ClockKind, DrillRecord, RecordError, FORMAT};

/// Why a file was not read as a record.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file (or the folder) could not be read.
    #[error("failed to read")]
    Read(#[source] std::io::Error),
    /// The file is not the JSON of a drill record.
    #[error("failed to parse as a drill record")]
    Parse(#[source] serde_json::Error),
    /// A newer firedrill wrote it, in a format this one does not know: reading it anyway could
    /// misread it.
    #[error("failed to read record format {found}: this firedrill reads formats up to {supported}")]
    NewerFormat {
        /// The format the file declares.
        found: u64,
        /// The newest format this build reads ([`FORMAT`]).
        supported: u32,
    },
}

/// A file that was passed over, and why: said to the user, never dropped silently.
#[derive(Debug)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it was not read.
    pub error: LoadError,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.path.display(), crate::text::error_chain(&self.error))
    }
}

impl DrillRecord {
    /// Reads a record from its JSON, checking its format first: a record from a newer
    /// firedrill is refused by number rather than misread or refused for a missing field.
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        /// Just the format: the fields may have changed in any other way in a newer format.
        #[derive(serde::Deserialize)]
        struct Header {
            #[serde(default)]
            format: u64,
        }
        let Header { format } = serde_json::from_str(text).map_err(LoadError::Parse)?;
        if format > u64::from(FORMAT) {
            return Err(LoadError::NewerFormat { found: format, supported: FORMAT });
        }
        serde_json::from_str(text).map_err(LoadError::Parse)
    }
}

/// Earlier drills of one drill, read for its MTTR, and the files that could not be read.
#[derive(Debug)]
pub struct History {
    /// The earlier drills' records.
    pub records: Vec<DrillRecord>,
    /// Files of the folder that could not be read as records, or the folder itself.
    pub skipped: Vec<Skipped>,
}

/// Writes `contents` to `dir/name` through a temporary file and a rename, so that a crash
/// never leaves half a record, then syncs the folder, so that a power cut cannot undo the
/// rename and lose a record that was reported written.
pub fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, RecordError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(err(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(err(&tmp))?;
    f.sync_all().map_err(err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(err(&target))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))?;
    Ok(target)
}

/// Checks that records can be written to `dir` before a drill changes anything: creates the
/// folder if it is missing, then writes and removes a probe file the way records are written,
/// so that a drill that took the team an afternoon does not end in a record with nowhere to go.
pub fn check_writable(dir: &Path) -> Result<(), RecordError> {
    let name = format!(".write-check-{}", std::process::id());
    let unwritable = |source| RecordError::Unwritable { dir: dir.to_path_buf(), source: Box::new(source) };
    let probe = write_atomic(dir, &name, "").map_err(unwritable)?;
    std::fs::remove_file(&probe).map_err(|source| unwritable(RecordError::Write { path: probe, source }))
}

/// Where a record that could not be written to its folder is kept instead, in order: the
/// platform's folder for state files, `$XDG_STATE_HOME/firedrill/unsaved` (by default
/// `~/.local/state/firedrill/unsaved`), then `firedrill-unsaved` in the system's temporary folder.
pub fn fallback_dirs() -> Vec<PathBuf> {
    vec![crate::journal::default_state_dir().join("unsaved"), std::env::temp_dir().join("firedrill-unsaved")]
}

/// Where a record was written. `E` is why its place could not take it: a folder's
/// [`RecordError`], or the error of another store (an S3 prefix, in the root crate).
#[derive(Debug)]
pub enum Saved<E = RecordError> {
    /// In the folder it was meant for.
    InPlace(PathBuf),
    /// Elsewhere, because its folder could not be written.
    Fallback {
        /// The file it was written to.
        path: PathBuf,
        /// Why it could not be written to its folder.
        error: E,
    },
}

impl<E> Saved<E> {
    /// The file the record was written to, wherever that is.
    pub fn path(&self) -> &Path {
        match self {
            Saved::InPlace(path) | Saved::Fallback { path, .. } => path,
        }
    }
}

/// Writes a record to `dir`, or, when that fails, to the first of `fallbacks` that can be
/// written ([`fallback_dirs`]): a record is evidence of a drill that cannot be run again for
/// free, so it is kept somewhere it can be found rather than lost. Fails with the error of
/// `dir` when no folder could be written.
pub fn write_record(dir: &Path, name: &str, contents: &str, fallbacks: &[PathBuf]) -> Result<Saved, RecordError> {
    let error = match write_atomic(dir, name, contents) {
        Ok(path) => return Ok(Saved::InPlace(path)),
        Err(e) => e,
    };
    match fallbacks.iter().find_map(|f| write_atomic(f, name, contents).ok()) {
        Some(path) => Ok(Saved::Fallback { path, error }),
        None => Err(error),
    }
}

/// Earlier records in `dir` of the drill `of` ran (same scenario file, by its SHA-256, and
/// environment), for MTTR: a changed runbook is another drill. A virtual-time drill that
/// repeats one of `current` or of the history is counted once. Unreadable files are skipped,
/// and listed: history is evidence, not a precondition, but a lost piece of it is said.
pub fn load_history(dir: &Path, of: &DrillRecord, exclude: &[PathBuf], current: &[&DrillRecord]) -> History {
    let loaded = load_dir(dir).map_err(|e| Skipped { path: dir.into(), error: LoadError::Read(e) });
    history_in(loaded, of, exclude, current)
}

/// [`load_history`] over records read from anywhere (a folder, an S3 prefix), or the one
/// reason none could be read (the folder, or the listing, that failed).
pub fn history_in(
    loaded: Result<Loaded, Skipped>,
    of: &DrillRecord,
    exclude: &[PathBuf],
    current: &[&DrillRecord],
) -> History {
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(skipped) => return History { records: vec![], skipped: vec![skipped] },
    };
    let owned = |(sha, seed): (&str, u64)| (sha.to_string(), seed);
    let mut seen: HashSet<(String, u64)> = current.iter().filter_map(|r| r.replay_key()).map(owned).collect();
    let records = loaded
        .records
        .into_iter()
        .filter(|(p, _)| !exclude.contains(p))
        .map(|(_, r)| r)
        .filter(|r| r.scenario.sha256 == of.scenario.sha256 && r.scenario.name == of.scenario.name)
        .filter(|r| r.environment == of.environment)
        .filter(|r| r.replay_key().is_none_or(|k| seen.insert(owned(k))))
        .collect();
    History { records, skipped: loaded.unreadable }
}

/// The records of a folder, and the files that could not be read as records.
pub struct Loaded {
    /// Readable records with their files.
    pub records: Vec<(PathBuf, DrillRecord)>,
    /// Files that are not records, and why.
    pub unreadable: Vec<Skipped>,
}

impl Loaded {
    /// The records among `files` (each with its text, or why it could not be read). Unreadable
    /// files are listed, never fatal.
    pub fn parse(files: impl IntoIterator<Item = (PathBuf, std::io::Result<String>)>) -> Self {
        let mut loaded = Loaded { records: Vec::new(), unreadable: Vec::new() };
        for (p, text) in files {
            match text.map_err(LoadError::Read).and_then(|t| DrillRecord::from_json(&t)) {
                Ok(r) => loaded.records.push((p, r)),
                Err(error) => loaded.unreadable.push(Skipped { path: p, error }),
            }
        }
        loaded
    }
}

/// The result files of `dir` ([`is_result`]), sorted.
pub fn result_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_result))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads every `.json` record in `dir`. Unreadable files are listed, never fatal.
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    Ok(Loaded::parse(result_files(dir)?.into_iter().map(|p| {
        let text = std::fs::read_to_string(&p);
        (p, text)
    })))
}

/// Whether a file of this name is a drill result: a `.json` file, but not a temporary file of
/// an atomic write, a written summary nor a tabletop's action items. Any store of records lists by this rule.
pub fn is_result(name: &str) -> bool {
    name.ends_with(".json")
        && !name.starts_with('.')
        && !name.ends_with(".summary.json")
        && !name.ends_with(".actions.json")
}

/// The integrity of one record file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Integrity {
    /// Its content matches its hash.
    Intact,
    /// Its content does not match its hash: it was edited after it was written.
    Tampered {
        /// The hash it carries.
        recorded: String,
        /// The hash of its content now.
        actual: String,
    },
    /// It carries no hash.
    Unsigned,
    /// It is not readable JSON.
    Unreadable {
        /// Why.
        error: String,
    },
}

/// Checks every `.json` file in `dir` against the hash it carries.
pub fn verify(dir: &Path) -> std::io::Result<Vec<(PathBuf, Integrity)>> {
    let paths = result_files(dir)?;
    Ok(paths
        .into_iter()
        .map(|p| {
            let status = Integrity::of(std::fs::read_to_string(&p));
            (p, status)
        })
        .collect())
}

impl Integrity {
    /// The integrity of a record's text (or why it could not be read), wherever it was read.
    pub fn of(text: std::io::Result<String>) -> Self {
        let value = text
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        match value {
            Err(error) => Integrity::Unreadable { error },
            Ok(value) => match value.get("record_sha256").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
                None => Integrity::Unsigned,
                Some(recorded) => {
                    let actual = DrillRecord::canonical_sha256(&value);
                    if actual == recorded {
                        Integrity::Intact
                    } else {
                        Integrity::Tampered { recorded: recorded.into(), actual }
                    }
                }
            },
        }
    }
}

/// When a drill took place. Real-clock drills carry it; a virtual-time drill's stamps start at
/// the epoch (so that a seed gives identical records), and its date is the real time it was
/// written, which its file name carries.
pub fn drilled_at(path: &Path, r: &DrillRecord) -> Timestamp {
    if r.clock != ClockKind::Virtual {
        return r.started_at;
    }
    let from_name = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('_').next()).and_then(|stamp| {
        // `YYYYmmddTHHMMSSmmmZ`
        let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() < 14 {
            return None;
        }
        let iso = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &digits[0..4],
            &digits[4..6],
            &digits[6..8],
            &digits[8..10],
            &digits[10..12],
            &digits[12..14]
        );
        iso.parse::<Timestamp>().ok()
    });
    from_name
        .or_else(|| std::fs::metadata(path).ok()?.modified().ok().and_then(|t| Timestamp::try_from(t).ok()))
        .unwrap_or(r.started_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A format 0 record, as firedrill wrote it before records carried a format.
    const FORMAT_0: &str = include_str!("../../../../tests/fixtures/records/format-0-db-failover.json");

    #[test]
    fn history_says_which_files_it_could_not_read_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let record = DrillRecord::from_json(FORMAT_0).unwrap();
        write_atomic(dir.path(), "earlier.json", FORMAT_0).unwrap();
        write_atomic(dir.path(), "junk.json", "{").unwrap();
        let history = load_history(dir.path(), &record, &[], &[]);
        assert_eq!(history.records, std::slice::from_ref(&record));
        let [skipped] = history.skipped.as_slice() else { panic!("{:?}", history.skipped) };
        assert_eq!(skipped.path, dir.path().join("junk.json"));
        assert!(matches!(skipped.error, LoadError::Parse(_)), "{skipped}");

        let gone = dir.path().join("gone");
        let history = load_history(&gone, &record, &[], &[]);
        assert!(history.records.is_empty());
        assert!(matches!(history.skipped.as_slice(), [Skipped { path, error: LoadError::Read(_) }] if *path == gone));
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_refused_by_the_check_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        check_writable(&reports).unwrap();
        assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 0, "the probe file is removed");

        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let under_a_file = file.join("reports");
        let err = check_writable(&under_a_file).unwrap_err();
        assert!(matches!(&err, RecordError::Unwritable { dir, .. } if *dir == under_a_file), "{err}");
        let text = crate::text::error_chain(&err);
        assert!(text.contains(&under_a_file.display().to_string()) && text.contains("Not a directory"), "{text}");
    }

    #[test]
    fn a_record_its_folder_cannot_take_is_kept_in_the_first_fallback_that_can() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let fallback = dir.path().join("state").join("firedrill").join("unsaved");
        let fallbacks = [file.join("also-unwritable"), fallback.clone()];
        let saved = write_record(&file.join("reports"), "drill.json", FORMAT_0, &fallbacks).unwrap();
        let Saved::Fallback { path, error } = saved else { panic!("{saved:?}") };
        assert_eq!(path, fallback.join("drill.json"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FORMAT_0);
        assert!(matches!(&error, RecordError::Write { path, .. } if path.starts_with(&file)), "{error}");

        let saved = write_record(&dir.path().join("reports"), "drill.json", FORMAT_0, &fallbacks).unwrap();
        assert!(
            matches!(&saved, Saved::InPlace(p) if *p == dir.path().join("reports").join("drill.json")),
            "{saved:?}"
        );

        let nowhere = write_record(&file.join("reports"), "drill.json", FORMAT_0, &fallbacks[..1]).unwrap_err();
        assert!(nowhere.to_string().contains("reports"), "{nowhere}");
    }
}
