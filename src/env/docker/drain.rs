//! `node_drain`: a node's workloads evicted and rescheduled on the others, as a cluster
//! scheduler would, and the node given back (uncordoned) on revert once every eviction has
//! settled.

use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::query_parameters::KillContainerOptions;

use super::error::DockerError;
use super::fault::wait_stopped;
use super::{Inner, Target, ANY_NODE};

/// Evicts the workloads of `node` (already cordoned) as `kubectl drain` does: each gets
/// SIGTERM now, and the drain is in effect. Then, in the background, each has its grace
/// period to exit (SIGKILL after it), and its replacement starts on the least loaded other
/// node. The replacement keeps the name (and so the host name), as a StatefulSet's pod does,
/// which is why it starts only once the old one is gone: two containers never answer to one
/// name. Its readiness is what the probes then see. The evictions under way are kept in
/// `inner.evictions`, even when a later SIGTERM fails, so the revert awaits them and the
/// teardown can cut them short.
pub(super) async fn drain(inner: &Rc<Inner>, node: &str, grace: Duration) -> Result<(), DockerError> {
    let docker = inner.docker()?;
    let workloads = inner.workloads_on(node);
    // Where each goes is decided first: nothing is evicted when one has nowhere to go.
    let mut moves = Vec::new();
    let mut pending = Vec::new();
    for (i, name) in workloads.into_iter().enumerate() {
        let old = inner.target(&name)?;
        let any = ANY_NODE.to_string();
        let to = inner.place(Some(&any), &pending).ok_or_else(|| DockerError::NoNodeLeft { name: name.clone() })?;
        pending.push(to.clone());
        moves.push((name, old, to, inner.provisioned.borrow().len() + i));
    }
    for (name, old, to, generation) in moves {
        let options = KillContainerOptions { signal: "SIGTERM".into() };
        docker
            .kill_container(&old.id, Some(options))
            .await
            .map_err(DockerError::api(format!("SIGTERM to `{name}`")))?;
        let eviction = tokio::task::spawn_local(evict(inner.clone(), name, old, to, generation, grace));
        inner.evictions.borrow_mut().push(eviction);
    }
    Ok(())
}

impl Inner {
    /// The containers running on `node` now, sorted: what draining it evicts.
    pub(super) fn workloads_on(&self, node: &str) -> Vec<String> {
        let mut workloads: Vec<String> = self
            .targets
            .borrow()
            .iter()
            .filter(|(_, t)| t.node.as_deref() == Some(node))
            .map(|(name, _)| name.clone())
            .collect();
        workloads.sort();
        workloads
    }
}

/// The rest of one eviction after its SIGTERM: the grace period to exit, SIGKILL after it,
/// then the replacement started on `to`. A replacement that fails to start has the old
/// container started again where it was, so a failed drain leaves the capacity it found.
async fn evict(
    inner: Rc<Inner>,
    name: String,
    old: Target,
    to: String,
    generation: usize,
    grace: Duration,
) -> Result<(), DockerError> {
    let docker = inner.docker()?;
    let mut exited = docker.wait_container(&old.id, None);
    if tokio::time::timeout(grace, exited.next()).await.is_err() {
        let options = KillContainerOptions { signal: "SIGKILL".into() };
        docker
            .kill_container(&old.id, Some(options))
            .await
            .map_err(DockerError::api(format!("SIGKILL to `{name}`")))?;
        wait_stopped(docker, &old.id).await?;
    }
    let spec = inner.spec(&name)?;
    let started = inner.start(spec, Some(to), generation, false).await;
    if started.is_err() {
        let _ = docker.start_container(&old.id, None).await;
    }
    inner.refresh_addresses().await;
    started.map_err(|e| DockerError::Replace { name, source: Box::new(e) })
}

/// Gives `node` back to the scheduler, once every eviction has settled (each old container
/// gone, its replacement started), so the drill goes on from a settled state.
pub(super) async fn uncordon(inner: &Inner, node: &str) -> Result<(), DockerError> {
    inner.cordoned.borrow_mut().retain(|n| n != node);
    let evictions: Vec<_> = inner.evictions.borrow_mut().drain(..).collect();
    let mut errors = Vec::new();
    for eviction in evictions {
        match eviction.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(DockerError::EvictionCut(e)),
        }
    }
    DockerError::all(errors)
}
