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
    /// Its dead man's switch: the container's name and journal entry.
    deadman: Option<(String, u64)>,
}

impl Inner {
    /// Starts the drill's journal: before the engine is changed at all, so that a journal that
    /// cannot be written stops the drill before anything needs undoing.
    pub(super) fn open_journal(&self) -> Result<(), DockerError> {
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
        Ok(())
    }

    /// Journals `change` before it is made; `Ok` means it may be made.
    pub(super) fn journal(&self, change: &str, undo: Undo) -> Result<u64, DockerError> {
        let journal = self.journal.borrow();
        let journal = journal.as_ref().ok_or(DockerError::NoJournal)?;
        Ok(journal.apply(change, undo)?)
    }

    /// Marks a journal entry done.
    pub(super) fn journal_done(&self, entry: u64, by: &str) -> Result<(), DockerError> {
        let journal = self.journal.borrow();
        let journal = journal.as_ref().ok_or(DockerError::NoJournal)?;
        Ok(journal.done(entry, by)?)
    }

    /// Journals a change about to be made and, with `lift_after`, starts its dead man's switch
    /// first, so that there is no moment when the change is made and nothing would lift it.
    pub(super) async fn change(
        &self,
        description: &str,
        undo: Undo,
        lift_after: Option<Duration>,
    ) -> Result<Change, DockerError> {
        let deadman = match lift_after {
            Some(after) => Some(self.start_deadman(description, &undo, after).await?),
            None => None,
        };
        match self.journal(description, undo.clone()) {
            Ok(entry) => Ok(Change { entry, undo, deadman }),
            Err(e) => {
                if let Some(d) = &deadman {
                    let _ = self.cancel_deadman(d).await;
                }
                Err(e)
            }
        }
    }

    /// Settles a change whose making was tried: a guard to revert it when it was made; when it
    /// failed, its journal entry is closed and its switch removed, and the error returned.
    pub(super) async fn made(&self, change: Change, made: Result<(), DockerError>) -> Result<Change, DockerError> {
        match made {
            Ok(()) => Ok(change),
            Err(e) => {
                // What a failed call left is looked at, not assumed: undo it if it is there.
                let _ = self.undo_change(&change, "the change failed; undone").await;
                Err(e)
            }
        }
    }

    /// Undoes a journalled change (idempotently), records it, and removes its dead man's switch.
    pub(super) async fn undo_change(&self, change: &Change, by: &str) -> Result<(), DockerError> {
        let undone = undo::undo(self.docker()?, &self.run_id, &change.undo).await?;
        self.journal_done(change.entry, &format!("{by}: {undone}"))?;
        if let Some(d) = &change.deadman {
            self.cancel_deadman(d).await?;
        }
        Ok(())
    }

    /// Starts the dead man's switch of a change: journalled (as a container to remove), then
    /// started; its name and entry.
    async fn start_deadman(&self, description: &str, undo: &Undo, after: Duration) -> Result<(String, u64), DockerError> {
        let docker = self.docker()?;
        let exe = self.exe.as_deref().ok_or(DockerError::NoExecutable)?;
        let at = jiff::Timestamp::now() + after;
        let serial = self.deadmen.get() + 1;
        self.deadmen.set(serial);
        let name = format!("{}-deadman-{serial}", self.network);
        let entry = self.journal(
            &format!("start the dead man's switch {name}: at {at} it undoes `{description}`"),
            Undo::RemoveContainer { container: name.clone() },
        )?;
        let started = undo::start_deadman(docker, &self.run_id, &name, exe, at, undo).await;
        if let Err(e) = started {
            let _ = self.cancel_deadman(&(name, entry)).await;
            return Err(e);
        }
        Ok((name, entry))
    }

    /// Removes a dead man's switch whose change the drill undid itself.
    async fn cancel_deadman(&self, (name, entry): &(String, u64)) -> Result<(), DockerError> {
        let removed = undo::undo(self.docker()?, &self.run_id, &Undo::RemoveContainer { container: name.clone() }).await?;
        self.journal_done(*entry, &format!("dead man's switch cancelled by the drill: {removed}"))
    }
}
