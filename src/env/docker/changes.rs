//! The drill's changes to the engine, journalled before they are made ([`crate::journal`]):
//! the containers and network it creates, and each fault with its dead man's switch.

use std::time::Duration;

use super::error::DockerError;
use super::{undo, Inner};
use crate::journal::{Begin, Journal, Undo, FORMAT};
use crate::word::EnvironmentKind;

/// A journalled change in effect.
#[derive(Debug)]
pub(super) struct Change {
    /// Its journal entry.
    entry: u64,
    /// How to undo it.
    undo: Undo,
}

impl Inner {
    /// Starts the drill's journal and its dead man's switch, before the engine is changed at
    /// all: a journal that cannot be written, or a switch that cannot start, stops the drill
    /// before anything needs undoing.
    pub(super) async fn open_journal(&self) -> Result<(), DockerError> {
        let begin = Begin {
            format: FORMAT,
            run: self.run_id.clone(),
            scenario: self.drill.scenario.clone(),
            path: self.drill.path.clone(),
            environment: EnvironmentKind::Docker,
            started: jiff::Timestamp::now(),
            pid: std::process::id(),
        };
        let journal = Journal::create(&self.drill.journal_dir, begin)?;
        *self.journal.borrow_mut() = Some(journal);
        let name = self.deadman_name();
        let removal = Undo::RemoveContainer { container: name.clone() };
        let entry = self.journal(&format!("start the dead man's switch {name}"), removal.clone(), None)?;
        self.created.borrow_mut().push((entry, removal));
        let exe = self.exe.as_deref().ok_or(DockerError::NoExecutable)?;
        undo::start_deadman(self.docker()?, &self.run_id, &name, exe, &self.drill.journal_dir).await
    }

    /// The name of the drill's dead man's switch.
    pub(super) fn deadman_name(&self) -> String {
        format!("{}-deadman", self.network)
    }

    /// Journals `change` before it is made, with when its dead man's switch lifts it; `Ok`
    /// means it may be made.
    pub(super) fn journal(
        &self,
        change: &str,
        undo: Undo,
        lift_at: Option<jiff::Timestamp>,
    ) -> Result<u64, DockerError> {
        let journal = self.journal.borrow();
        let journal = journal.as_ref().ok_or(DockerError::NoJournal)?;
        Ok(journal.apply(change, undo, lift_at)?)
    }

    /// Marks a journal entry done.
    pub(super) fn journal_done(&self, entry: u64, by: &str) -> Result<(), DockerError> {
        let journal = self.journal.borrow();
        let journal = journal.as_ref().ok_or(DockerError::NoJournal)?;
        Ok(journal.done(entry, by)?)
    }

    /// Journals a change about to be made, to be lifted by the dead man's switch `lift_after`
    /// from now should this firedrill be dead by then.
    pub(super) fn change(&self, description: &str, undo: Undo, lift_after: Duration) -> Result<Change, DockerError> {
        let entry = self.journal(description, undo.clone(), Some(jiff::Timestamp::now() + lift_after))?;
        Ok(Change { entry, undo })
    }

    /// Settles a change whose making was tried: kept to be reverted when it was made. When
    /// it failed, its entry is closed: a single call that failed changed nothing (undoing
    /// then would undo what was so before, a container the team had paused); a change of
    /// several steps (`atomic` false: a kill and its wait, a chain of rules) is undone as far
    /// as it is found in effect.
    pub(super) async fn made(
        &self,
        change: Change,
        made: Result<(), DockerError>,
        atomic: bool,
    ) -> Result<Change, DockerError> {
        let Err(e) = made else { return Ok(change) };
        let _ = match atomic {
            true => self.journal_done(change.entry, "not made: the call failed"),
            false => self.undo_change(&change, "the change failed part way; undone").await,
        };
        Err(e)
    }

    /// Undoes a journalled change (idempotently) and records it.
    pub(super) async fn undo_change(&self, change: &Change, by: &str) -> Result<(), DockerError> {
        let undone = undo::undo(self.docker()?, &self.run_id, &change.undo).await?;
        self.journal_done(change.entry, &format!("{by}: {undone}"))
    }
}
