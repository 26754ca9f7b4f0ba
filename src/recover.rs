//! Recovering what killed or interrupted drills left applied: the open entries of revert
//! journals no running drill holds ([`crate::journal::leftovers`]), and resources that carry
//! firedrill's run label with no journal at all (a journal lost with a machine's disk).
//!
//! Each undo is idempotent and looks first: a change someone already undid by hand is
//! reported as no longer in effect and marked done. Every undo is recorded: in the drill's
//! own journal, which moves to `journal/recovered/` once nothing in it is open; for orphans, in
//! a journal made for them there.

use std::path::{Path, PathBuf};

use crate::journal::{self, Contents, JournalError, OpenEntry, Undo};
use crate::word::EnvironmentKind;

/// Why recovering could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// A journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The async runtime could not start.
    #[error("failed to start the runtime")]
    Runtime(#[source] std::io::Error),
}

/// Whether a journalled change is still in effect.
#[derive(Debug)]
pub enum EntryState {
    /// It is: recovering will undo it.
    InEffect,
    /// It is not (someone undid it, or what it changed is gone): recovering only marks it.
    NotInEffect(String),
    /// It could not be looked at.
    Unknown(String),
}

/// A run that left something behind.
#[derive(Debug)]
pub struct LeftRun {
    /// Its journal, when it has one.
    pub journal: Option<Contents>,
    /// The run id.
    pub run: String,
    /// Its open entries, newest first (the order they are undone in), with their state.
    pub entries: Vec<(OpenEntry, EntryState)>,
    /// Containers carrying its run label, by name.
    pub labelled: Vec<String>,
    /// Its network, when it is still there.
    pub network: Option<String>,
}

/// What killed or interrupted drills left.
#[derive(Debug, Default)]
pub struct Survey {
    /// The runs, oldest journal first, then runs known only by their labels.
    pub runs: Vec<LeftRun>,
    /// Journals that could not be read.
    pub unreadable: Vec<JournalError>,
    /// Why the Docker Engine could not be asked for labelled resources, if it could not.
    pub docker_unavailable: Option<String>,
}

/// One undo carried out by [`recover`].
#[derive(Debug)]
pub struct Undid {
    /// The run.
    pub run: String,
    /// What was changed, in words.
    pub change: String,
    /// What the undo found and did, or why it failed.
    pub result: Result<String, String>,
}

/// Finds what killed or interrupted drills left, under `state_dir` and on the engines
/// firedrill can reach. Journals held by running drills are not leftovers.
pub fn survey(state_dir: &Path) -> Result<Survey, RecoverError> {
    runtime()?.block_on(survey_async(state_dir))
}

/// Undoes what the runs (all with `None`) left: journalled changes newest first, then
/// labelled resources. Returns every undo, done or failed.
pub fn recover(state_dir: &Path, runs: Option<&[String]>) -> Result<Vec<Undid>, RecoverError> {
    runtime()?.block_on(async {
        let survey = survey_async(state_dir).await?;
        let mut undid = Vec::new();
        for left in survey.runs.iter().filter(|l| runs.is_none_or(|r| r.contains(&l.run))) {
            recover_run(state_dir, left, &mut undid).await?;
        }
        Ok(undid)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, RecoverError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RecoverError::Runtime)
}

async fn survey_async(state_dir: &Path) -> Result<Survey, RecoverError> {
    let dir = journal::journal_dir(state_dir);
    let (journals, unreadable) = journal::leftovers(&dir);
    let mut survey = Survey { unreadable, ..Default::default() };
    let labels = labelled_resources().await;
    let (mut labelled, mut networks, alive) = match labels {
        Ok(found) => found,
        Err(why) => {
            survey.docker_unavailable = Some(why);
            Default::default()
        }
    };
    for contents in journals {
        let run = contents.begin.run.clone();
        let mut entries = Vec::new();
        for entry in contents.open.iter().rev() {
            let state = entry_state(&contents, &entry.undo).await;
            entries.push((entry.clone(), state));
        }
        survey.runs.push(LeftRun {
            labelled: labelled.remove(&run).unwrap_or_default(),
            network: networks.remove(&run),
            journal: Some(contents),
            run,
            entries,
        });
    }
    // What carries a run label but has no journal here, held or left: orphans. A run whose
    // dead man's switch still runs is alive somewhere (another state folder, another user)
    // or has faults yet to lift: not this recover's to remove.
    let mut known = journal::known_runs(&dir);
    known.extend(alive);
    let orphans: std::collections::BTreeSet<String> =
        labelled.keys().chain(networks.keys()).filter(|r| !known.contains(r)).cloned().collect();
    for run in orphans {
        survey.runs.push(LeftRun {
            journal: None,
            labelled: labelled.remove(&run).unwrap_or_default(),
            network: networks.remove(&run),
            run,
            entries: Vec::new(),
        });
    }
    Ok(survey)
}

/// Undoes one run's leftovers, recording each undo.
async fn recover_run(state_dir: &Path, left: &LeftRun, undid: &mut Vec<Undid>) -> Result<(), RecoverError> {
    let recovered_dir = journal::journal_dir(state_dir).join("recovered");
    let (journal, environment) = match &left.journal {
        Some(contents) => match journal::Journal::reopen(&contents.path) {
            Ok((j, _)) => (j, contents.begin.environment),
            // Its dead man's switch is lifting a fault this moment, or another `recover` runs:
            // said, not skipped in silence, so that this recover does not pass for complete.
            Err(JournalError::InUse { .. }) => {
                let why = "its journal is held (its dead man's switch is at work, or another recover): try again";
                undid.push(Undid { run: left.run.clone(), change: "(the whole run)".into(), result: Err(why.into()) });
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            let begin = journal::Begin {
                format: journal::FORMAT,
                run: left.run.clone(),
                scenario: "(unknown: no journal was found; recovered by its labels)".into(),
                path: PathBuf::new(),
                environment: EnvironmentKind::Docker,
                started: jiff::Timestamp::now(),
                pid: std::process::id(),
            };
            // Orphans of a run recovered before (a removal that failed then) add to its file.
            let earlier = recovered_dir.join(format!("{}.jsonl", left.run));
            let journal = match earlier.exists() {
                true => journal::Journal::reopen(&earlier)?.0,
                false => journal::Journal::create(&recovered_dir, begin)?,
            };
            (journal, EnvironmentKind::Docker)
        }
    };
    let mut undos: Vec<(Option<u64>, String, Undo)> =
        left.entries.iter().map(|(e, _)| (Some(e.entry), e.change.clone(), e.undo.clone())).collect();
    // Labelled containers the journal does not name (network helpers), and the network.
    for name in &left.labelled {
        let named = undos.iter().any(|(_, _, u)| matches!(u, Undo::RemoveContainer { container } if container == name));
        if !named {
            undos.push((
                None,
                format!("container {name} (labelled with the run)"),
                Undo::RemoveContainer { container: name.clone() },
            ));
        }
    }
    if let Some(network) = &left.network {
        let named = undos.iter().any(|(_, _, u)| matches!(u, Undo::RemoveNetwork { network: n } if n == network));
        if !named {
            undos.push((None, format!("network {network}"), Undo::RemoveNetwork { network: network.clone() }));
        }
    }
    // Networks last: a network is removed once its containers are.
    undos.sort_by_key(|(_, _, u)| matches!(u, Undo::RemoveNetwork { .. }));
    for (entry, change, undo) in undos {
        let entry = match entry {
            Some(e) => e,
            None => journal.apply(&change, undo.clone(), None)?,
        };
        let result = undo_change(environment, &left.run, &undo).await;
        if let Ok(done) = &result {
            journal.done(entry, &format!("recovered: {done}"))?;
        }
        undid.push(Undid { run: left.run.clone(), change, result });
    }
    if journal.open_entries() == 0 {
        let from = journal.path().to_path_buf();
        drop(journal);
        std::fs::create_dir_all(&recovered_dir)
            .map_err(|source| JournalError::Write { path: recovered_dir.clone(), source })?;
        let to = recovered_dir.join(from.file_name().unwrap_or_default());
        if from != to {
            std::fs::rename(&from, &to).map_err(|source| JournalError::Write { path: to, source })?;
        }
    }
    Ok(())
}

/// Undoes one change in its environment; what the undo found and did, or why it failed.
async fn undo_change(environment: EnvironmentKind, run: &str, undo: &Undo) -> Result<String, String> {
    match environment {
        #[cfg(feature = "docker")]
        EnvironmentKind::Docker => {
            let docker = docker_client().map_err(|e| crate::text::error_chain(&e))?;
            crate::env::docker::undo::undo(&docker, run, undo)
                .await
                .map(|u| u.to_string())
                .map_err(|e| crate::text::error_chain(&e))
        }
        #[cfg(feature = "kube")]
        EnvironmentKind::Kube => crate::env::kube::undo(run, undo).await.map_err(|e| crate::text::error_chain(&e)),
        #[cfg(feature = "aws")]
        EnvironmentKind::Aws => crate::env::aws::undo(run, undo).await.map_err(|e| crate::text::error_chain(&e)),
        other => {
            let _ = (run, undo);
            Err(format!("the `{other}` environment is not built into this firedrill"))
        }
    }
}

/// Whether a journalled change is still in effect.
async fn entry_state(contents: &Contents, undo: &Undo) -> EntryState {
    match contents.begin.environment {
        #[cfg(feature = "docker")]
        EnvironmentKind::Docker => {
            let docker = match docker_client() {
                Ok(d) => d,
                Err(e) => return EntryState::Unknown(crate::text::error_chain(&e)),
            };
            match crate::env::docker::undo::in_effect(&docker, &contents.begin.run, undo).await {
                Ok(Ok(())) => EntryState::InEffect,
                Ok(Err(why)) => EntryState::NotInEffect(why),
                Err(e) => EntryState::Unknown(crate::text::error_chain(&e)),
            }
        }
        #[cfg(feature = "kube")]
        EnvironmentKind::Kube => match crate::env::kube::in_effect(&contents.begin.run, undo).await {
            Ok(Ok(())) => EntryState::InEffect,
            Ok(Err(why)) => EntryState::NotInEffect(why),
            Err(e) => EntryState::Unknown(crate::text::error_chain(&e)),
        },
        #[cfg(feature = "aws")]
        EnvironmentKind::Aws => match crate::env::aws::in_effect(&contents.begin.run, undo).await {
            Ok(Ok(())) => EntryState::InEffect,
            Ok(Err(why)) => EntryState::NotInEffect(why),
            Err(e) => EntryState::Unknown(crate::text::error_chain(&e)),
        },
        other => {
            let _ = undo;
            EntryState::Unknown(format!("the `{other}` environment is not built into this firedrill"))
        }
    }
}

#[cfg(feature = "docker")]
fn docker_client() -> Result<testcontainers::bollard::Docker, testcontainers::bollard::errors::Error> {
    testcontainers::bollard::Docker::connect_with_local_defaults()
}

type Labelled =
    (std::collections::BTreeMap<String, Vec<String>>, std::collections::BTreeMap<String, String>, Vec<String>);

/// Containers carrying firedrill's run label and networks named after a run, by run, and the
/// runs whose dead man's switch is running; why they could not be listed (no engine), if so.
async fn labelled_resources() -> Result<Labelled, String> {
    #[cfg(feature = "docker")]
    {
        let docker = docker_client().map_err(|e| crate::text::error_chain(&e))?;
        docker.ping().await.map_err(|e| format!("the Docker Engine does not answer ({e})"))?;
        let containers = crate::env::docker::undo::labelled(&docker).await.map_err(|e| crate::text::error_chain(&e))?;
        let networks =
            crate::env::docker::undo::drill_networks(&docker).await.map_err(|e| crate::text::error_chain(&e))?;
        let alive = crate::env::docker::undo::switched_runs(&docker).await.map_err(|e| crate::text::error_chain(&e))?;
        Ok((containers, networks, alive))
    }
    #[cfg(not(feature = "docker"))]
    Err("this firedrill is built without the `docker` environment".into())
}

/// The dead man's switch of a drill, as its helper container runs it: every 100 ms, while
/// the journal is there, each open change whose `lift_at` has passed is undone, but only when
/// the journal can be locked, that is when its drill is dead (a live drill holds it and lifts
/// its own faults) and no `recover` is at work. Each lift is recorded in the journal. Ends when
/// the journal is gone (the drill ended, or it was recovered), or its drill is dead and no
/// change is left for it to lift.
pub fn deadman(journal: &Path) -> Result<Vec<Undid>, RecoverError> {
    let every = std::time::Duration::from_millis(100);
    runtime()?.block_on(async {
        let mut lifted = Vec::new();
        while journal.exists() {
            let now = jiff::Timestamp::now();
            let due = |e: &&OpenEntry| e.lift_at.is_some_and(|at| at <= now);
            let contents = journal::read(journal)?;
            let pending = contents.open.iter().any(|e| e.lift_at.is_some());
            if !pending || contents.open.iter().any(|e| due(&e)) {
                match journal::Journal::reopen(journal) {
                    // Dead, and nothing of its to lift, ever: done.
                    Ok(_) if !pending => break,
                    Ok((held, contents)) => {
                        for e in contents.open.iter().rev().filter(due) {
                            let result = undo_change(contents.begin.environment, &contents.begin.run, &e.undo).await;
                            if let Ok(done) = &result {
                                held.done(e.entry, &format!("lifted by the dead man's switch: {done}"))?;
                            }
                            lifted.push(Undid { run: contents.begin.run.clone(), change: e.change.clone(), result });
                        }
                    }
                    Err(JournalError::InUse { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tokio::time::sleep(every).await;
        }
        Ok(lifted)
    })
}
