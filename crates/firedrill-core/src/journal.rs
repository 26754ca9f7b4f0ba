//! The revert journal: what a drill changed in a real system and how to undo it, on disk
//! before the change is made, so that a firedrill killed mid-drill (`kill -9`, a lost CI
//! runner, a power cut) leaves something that knows what to undo (`firedrill recover`).
//!
//! One journal per drill, one format for every environment: a file of JSON lines in
//! [`journal_dir`], `<run id>.jsonl`. The first line ([`Begin`]) says which drill; each
//! change is an [`Line::Apply`] written and synced *before* the change is made, and an
//! [`Line::Done`] once it is undone (or found gone). A drill that ends with every change
//! undone removes its journal; one that dies leaves it with open entries.
//!
//! The drill holds an exclusive lock on its journal while it runs (released by the kernel when
//! the process dies, however it dies), so a journal that can be locked belongs to no running
//! drill: that is what tells a leftover from a drill in progress.
//!
//! Layer: beside [`crate::record`]; file I/O only, no runtime.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::word::EnvironmentKind;

/// The journal format this firedrill writes.
pub const FORMAT: u32 = 1;

/// Why a journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file or folder of the journal could not be written.
    #[error("failed to write the revert journal {path}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A journal could not be read.
    #[error("failed to read the revert journal {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A journal's line is not one this firedrill understands.
    #[error("{path}:{line}: not a revert journal line: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A journal is written by a newer firedrill.
    #[error(
        "{path}: journal format {found} is newer than this firedrill's ({FORMAT}): use a newer firedrill to recover it"
    )]
    Newer {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: u32,
    },
    /// The journal has no whole first line: its drill died before it changed anything.
    #[error("{path}: no drill began in it (its firedrill died at once): nothing to undo")]
    NoBegin {
        /// The file.
        path: PathBuf,
    },
    /// Another firedrill holds the journal: its drill is still running.
    #[error("{path} is held by a running drill")]
    InUse {
        /// The file.
        path: PathBuf,
    },
}

/// How to undo one change, as data: what `firedrill recover` (or a dead man's switch) carries
/// out without the drill that made the change. Each undo is idempotent: undoing what is no
/// longer in effect does nothing. The Docker ones name containers by id or by the name
/// firedrill gave them; the Kubernetes ones name the kubeconfig context they were made in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Undo {
    /// Docker: start a container a fault stopped.
    StartContainer {
        /// Its id.
        container: String,
    },
    /// Docker: unpause a container a fault paused.
    UnpauseContainer {
        /// Its id.
        container: String,
    },
    /// Docker: connect a container again to the network a fault disconnected it from.
    ReconnectContainer {
        /// Its id.
        container: String,
        /// The network.
        network: String,
        /// Its names on that network.
        aliases: Vec<String>,
    },
    /// Docker: delete the iptables rules a blackhole added in a container's network namespace.
    DeleteIptablesRules {
        /// Its id.
        container: String,
        /// The rules, without `-I`/`-D`.
        rules: Vec<String>,
    },
    /// Docker: remove a container firedrill created.
    RemoveContainer {
        /// Its name.
        container: String,
    },
    /// Docker: remove a network firedrill created.
    RemoveNetwork {
        /// Its name.
        network: String,
    },
    /// Kubernetes: make a node firedrill cordoned schedulable again, and remove the
    /// annotations naming the run, but only while they still name the journal's run (a node
    /// someone cordoned since is theirs).
    Uncordon {
        /// The kubeconfig context of the cluster.
        context: String,
        /// The node.
        node: String,
    },
    /// Kubernetes: set a workload's replicas back to what they were before a `scale`, but only
    /// while they are still the count firedrill set (a count someone or an autoscaler changed
    /// since is theirs).
    RestoreReplicas {
        /// The kubeconfig context of the cluster.
        context: String,
        /// The workload's namespace.
        namespace: String,
        /// The workload, `deployment/NAME` or `statefulset/NAME`.
        workload: String,
        /// Its replicas before the scale.
        before: i32,
        /// The replicas firedrill set.
        set: i32,
    },
    /// Kubernetes: delete an object firedrill created (a blackhole's NetworkPolicy, the pod
    /// that confirms it), but only while it carries the run's `firedrill.run` label.
    DeleteKubeObject {
        /// The kubeconfig context of the cluster.
        context: String,
        /// The object's namespace.
        namespace: String,
        /// Its kind: `NetworkPolicy` or `Pod`.
        kind: String,
        /// Its name.
        name: String,
    },
    /// AWS: put a bucket's policy back as it was before an `s3_block` (or delete it, when it
    /// had none), but only while firedrill's deny (its `Sid` names the run) is still in it; a
    /// policy someone changed since keeps their change, and loses only firedrill's statement.
    RestoreBucketPolicy {
        /// The region the bucket was reached in.
        region: Option<String>,
        /// The emulator's endpoint the drill used, if any.
        endpoint_url: Option<String>,
        /// The bucket.
        bucket: String,
        /// Its policy before the block, exactly as S3 returned it; `None`: it had none.
        prior: Option<String>,
        /// The policy firedrill put, exactly.
        blocking: String,
    },
}

/// The first line: which drill the journal is of.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Begin {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The drill's run id (what its resources are labelled with).
    pub run: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file.
    pub path: PathBuf,
    /// Where the drill runs.
    pub environment: EnvironmentKind,
    /// When the drill started.
    pub started: Timestamp,
    /// The firedrill process, for the operator reading a listing.
    pub pid: u32,
}

/// One line of a journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The drill.
    Begin(Begin),
    /// A change about to be made.
    Apply {
        /// Its number in this journal, from 1.
        entry: u64,
        /// When it was journalled (just before the change).
        at: Timestamp,
        /// The change, in words.
        change: String,
        /// How to undo it.
        undo: Undo,
        /// When its dead man's switch lifts it, should the drill not be there to: a fault's end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lift_at: Option<Timestamp>,
    },
    /// A change undone, or found no longer in effect.
    Done {
        /// The entry.
        entry: u64,
        /// When.
        at: Timestamp,
        /// Who undid it and how ("reverted by the drill", "recovered: unpaused").
        by: String,
    },
}

/// A change a journal says is still to be undone.
#[derive(Clone, Debug)]
pub struct OpenEntry {
    /// Its number.
    pub entry: u64,
    /// When it was journalled.
    pub at: Timestamp,
    /// The change, in words.
    pub change: String,
    /// How to undo it.
    pub undo: Undo,
    /// When its dead man's switch lifts it.
    pub lift_at: Option<Timestamp>,
}

/// A journal as read back.
#[derive(Debug)]
pub struct Contents {
    /// Its file.
    pub path: PathBuf,
    /// The drill.
    pub begin: Begin,
    /// Changes not marked done, in the order they were made.
    pub open: Vec<OpenEntry>,
    /// A last line cut short: the process died while writing it, so its change was never
    /// made (entries are synced before the change).
    pub torn_tail: bool,
    /// The highest entry number, done or not, so a reopened journal numbers on from it.
    pub last_entry: u64,
}

/// The journal of a drill in progress, locked for its lifetime.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// The file, appended to and synced line by line; the mutex orders the lines of
    /// concurrent writers (a drain's evictions) and numbers entries.
    file: Mutex<(File, u64)>,
    /// Entries not yet done, and whether each has a `lift_at`; the journal is removed when
    /// the drill closes it with none.
    open: Mutex<BTreeMap<u64, bool>>,
}

/// Where the journals are: `<state dir>/journal`.
pub fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("journal")
}

/// firedrill's folder for state files, as the platform's conventions place it:
/// `$XDG_STATE_HOME/firedrill`, by default `~/.local/state/firedrill`; when neither variable
/// gives an absolute path, `firedrill-state` in the system's temporary folder.
pub fn default_state_dir() -> PathBuf {
    // The XDG base directory specification ignores a relative path.
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").and_then(absolute).map(|home| home.join(".local").join("state")))
        .map(|s| s.join("firedrill"))
        .unwrap_or_else(|| std::env::temp_dir().join("firedrill-state"))
}

impl Journal {
    /// Creates the journal of a drill in `dir`, locked, its first line synced to disk.
    pub fn create(dir: &Path, begin: Begin) -> Result<Journal, JournalError> {
        let write = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JournalError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write(dir))?;
        let path = dir.join(format!("{}.jsonl", begin.run));
        let file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(write(&path))?;
        file.try_lock().map_err(|_| JournalError::InUse { path: path.clone() })?;
        let journal = Journal { path, file: Mutex::new((file, 0)), open: Mutex::default() };
        journal.append(&Line::Begin(begin))?;
        // The file's name in its folder must survive a crash too.
        File::open(dir).and_then(|d| d.sync_all()).map_err(write(dir))?;
        Ok(journal)
    }

    /// Opens a leftover journal to record undos in it; [`JournalError::InUse`] when a running
    /// drill holds it.
    pub fn reopen(path: &Path) -> Result<(Journal, Contents), JournalError> {
        let write = |source| JournalError::Write { path: path.into(), source };
        let file = OpenOptions::new().append(true).read(true).open(path).map_err(write)?;
        file.try_lock().map_err(|_| JournalError::InUse { path: path.into() })?;
        let contents = read(path)?;
        if contents.torn_tail {
            // The torn line is cut off, so the next line starts on a line of its own.
            let text = std::fs::read(path).map_err(|source| JournalError::Read { path: path.into(), source })?;
            let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(whole as u64).and_then(|()| file.sync_data()).map_err(write)?;
        }
        let open = contents.open.iter().map(|e| (e.entry, e.lift_at.is_some())).collect();
        let journal =
            Journal { path: path.into(), file: Mutex::new((file, contents.last_entry)), open: Mutex::new(open) };
        Ok((journal, contents))
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals a change about to be made, synced to disk before it returns: the change may
    /// be made once this is `Ok`, and must not be otherwise.
    pub fn apply(&self, change: &str, undo: Undo, lift_at: Option<Timestamp>) -> Result<u64, JournalError> {
        let entry = {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.1 += 1;
            file.1
        };
        let lifted = lift_at.is_some();
        self.append(&Line::Apply { entry, at: Timestamp::now(), change: change.into(), undo, lift_at })?;
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(entry, lifted);
        Ok(entry)
    }

    /// Marks a change undone (or found no longer in effect), saying by whom.
    pub fn done(&self, entry: u64, by: &str) -> Result<(), JournalError> {
        self.append(&Line::Done { entry, at: Timestamp::now(), by: by.into() })?;
        self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(&entry);
        Ok(())
    }

    /// How many changes are still to be undone.
    pub fn open_entries(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many of them a dead man's switch is to lift (faults, not creations).
    pub fn open_lifts(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|lifted| **lifted).count()
    }

    /// Ends the drill's journal: removed when every change was undone, kept (and unlocked)
    /// otherwise, for `firedrill recover`. Returns the file when it was kept.
    pub fn close(self) -> Result<Option<PathBuf>, JournalError> {
        if self.open_entries() > 0 {
            return Ok(Some(self.path));
        }
        std::fs::remove_file(&self.path).map_err(|source| JournalError::Write { path: self.path.clone(), source })?;
        Ok(None)
    }

    fn append(&self, line: &Line) -> Result<(), JournalError> {
        let mut text = serde_json::to_string(line).expect("a journal line serializes");
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let written = file.0.write_all(text.as_bytes()).and_then(|()| file.0.sync_data());
        written.map_err(|source| JournalError::Write { path: self.path.clone(), source })
    }
}

/// Reads a journal: the drill and its open entries.
pub fn read(path: &Path) -> Result<Contents, JournalError> {
    let text = std::fs::read_to_string(path).map_err(|source| JournalError::Read { path: path.into(), source })?;
    parse(&text, path)
}

/// A journal's text, as [`read`] reads it (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Contents, JournalError> {
    let (torn_tail, lines) = parse_lines(text, path)?;
    let mut lines = lines.into_iter();
    let malformed =
        |line: usize, message: &str| JournalError::Malformed { path: path.into(), line, message: message.into() };
    let begin = match lines.next() {
        Some((_, Line::Begin(b))) if b.format > FORMAT => {
            return Err(JournalError::Newer { path: path.into(), found: b.format })
        }
        Some((_, Line::Begin(b))) => b,
        Some((n, _)) => return Err(malformed(n, "the first line must be `begin`")),
        // The drill died before its first line was whole: it changed nothing.
        None => return Err(JournalError::NoBegin { path: path.into() }),
    };
    let mut open: Vec<OpenEntry> = Vec::new();
    let mut last_entry = 0;
    for (n, line) in lines {
        match line {
            Line::Begin(_) => return Err(malformed(n, "a second `begin`")),
            Line::Apply { entry, at, change, undo, lift_at } => {
                last_entry = last_entry.max(entry);
                open.push(OpenEntry { entry, at, change, undo, lift_at })
            }
            Line::Done { entry, .. } => open.retain(|e| e.entry != entry),
        }
    }
    Ok(Contents { path: path.into(), begin, open, torn_tail, last_entry })
}

/// The journals in `dir` that no running drill holds and that have open entries, oldest
/// first; with the journals that could not be read, for the caller to report.
pub fn leftovers(dir: &Path) -> (Vec<Contents>, Vec<JournalError>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (Vec::new(), Vec::new()) };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if in_use(&path) {
            continue;
        }
        match read(&path) {
            Ok(c) if !c.open.is_empty() => found.push(c),
            Ok(_) => {}
            // Nothing was changed under it: it is not kept to be warned about forever.
            Err(JournalError::NoBegin { .. }) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => errors.push(e),
        }
    }
    found.sort_by_key(|c| c.begin.started);
    (found, errors)
}

/// The run ids of every journal in `dir`, held or not: what `recover` does not count as an
/// orphan when it looks for resources that carry firedrill's labels.
pub fn known_runs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect()
}

/// Whether a running drill holds the journal.
fn in_use(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

type NumberedLines = (bool, Vec<(usize, Line)>);

/// The journal's lines, numbered from 1; a last line cut short (no newline, not JSON) is
/// dropped and reported: its change was never made.
fn parse_lines(text: &str, path: &Path) -> Result<NumberedLines, JournalError> {
    let raw: Vec<&str> = text.split_inclusive('\n').collect();
    let mut lines = Vec::new();
    let mut torn = false;
    for (i, line) in raw.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(parsed) => lines.push((i + 1, parsed)),
            Err(_) if i + 1 == raw.len() && !line.ends_with('\n') => torn = true,
            Err(e) => return Err(JournalError::Malformed { path: path.into(), line: i + 1, message: e.to_string() }),
        }
    }
    Ok((torn, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(run: &str) -> Begin {
        Begin {
            format: FORMAT,
            run: run.into(),
            scenario: "pause".into(),
            path: "scenarios/pause.yaml".into(),
            environment: EnvironmentKind::Docker,
            started: Timestamp::now(),
            pid: std::process::id(),
        }
    }

    fn unpause(id: &str) -> Undo {
        Undo::UnpauseContainer { container: id.into() }
    }

    #[test]
    fn a_drill_that_undid_everything_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), begin("r1")).unwrap();
        let e = j.apply("pause web", unpause("abc"), None).unwrap();
        j.done(e, "reverted by the drill").unwrap();
        assert_eq!(j.close().unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_journal_is_a_leftover_only_once_its_drill_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), begin("r1")).unwrap();
        let a = j.apply("start web", Undo::RemoveContainer { container: "firedrill-r1-web".into() }, None).unwrap();
        let lift_at = Timestamp::now();
        j.apply("pause web", unpause("abc"), Some(lift_at)).unwrap();
        j.done(a, "removed").unwrap();
        // Held by the drill: not a leftover, but a known run.
        assert!(leftovers(dir.path()).0.is_empty());
        assert_eq!(known_runs(dir.path()), vec!["r1".to_string()]);
        let kept = j.close().unwrap().expect("kept with an open entry");
        let (found, errors) = leftovers(dir.path());
        assert!(errors.is_empty());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].begin.run, "r1");
        assert_eq!(found[0].open.len(), 1);
        assert_eq!(found[0].open[0].undo, unpause("abc"));
        assert_eq!(found[0].open[0].entry, 2);
        assert_eq!(found[0].open[0].lift_at, Some(lift_at));

        // Recovered: the undo is recorded in the same file, numbered on.
        let (again, contents) = Journal::reopen(&kept).unwrap();
        assert!(matches!(Journal::reopen(&kept), Err(JournalError::InUse { .. })));
        again.done(contents.open[0].entry, "recovered: unpaused").unwrap();
        assert_eq!(again.apply("x", unpause("y"), None).unwrap(), 3);
        drop(again);
        let text = std::fs::read_to_string(&kept).unwrap();
        assert!(text.contains("recovered: unpaused"), "{text}");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_a_change_never_made() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), begin("r2")).unwrap();
        j.apply("pause web", unpause("abc"), None).unwrap();
        let path = j.close().unwrap().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"line":"apply","entry":2,"at":"2026-"#).unwrap();
        let c = read(&path).unwrap();
        assert!(c.torn_tail);
        assert_eq!(c.open.len(), 1);
        // Reopened (by `recover`), the torn line is cut off and the next starts whole.
        let (again, _) = Journal::reopen(&path).unwrap();
        again.done(1, "recovered").unwrap();
        drop(again);
        let c = read(&path).unwrap();
        assert!(!c.torn_tail && c.open.is_empty(), "{c:?}");
        // A damaged line in the middle is an error naming the file and line.
        f.write_all(b"{\"line\":\"done\"}\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(":4: not a revert journal line"), "{e}");
    }

    #[test]
    fn a_journal_whose_drill_died_before_its_first_line_was_whole_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r4.jsonl"), r#"{"line":"begin","format":1,"ru"#).unwrap();
        std::fs::write(dir.path().join("r5.jsonl"), "").unwrap();
        let (found, errors) = leftovers(dir.path());
        assert!(found.is_empty() && errors.is_empty(), "{found:?} {errors:?}");
        assert!(known_runs(dir.path()).is_empty(), "both removed");
    }

    #[test]
    fn a_newer_journal_is_refused_with_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = begin("r3");
        b.format = FORMAT + 1;
        let j = Journal::create(dir.path(), b).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("journal format 2 is newer than this firedrill's (1)"), "{e}");
    }
}
