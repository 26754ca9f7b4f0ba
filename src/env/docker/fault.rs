//! What each container fault means on the Docker Engine, and how it is undone. Every fault
//! goes through the Docker API; the network rules of a blackhole are set by a short-lived
//! helper container in the target's network namespace, so the target's image needs no tools.

use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::models::NetworkDisconnectRequest;
use testcontainers::bollard::query_parameters::{KillContainerOptions, StopContainerOptions};
use testcontainers::bollard::Docker;

use super::changes::Change;
use super::error::DockerError;
use super::{drain, undo, Inner};
use crate::env::{EnvError, FaultGuard};
use crate::journal::Undo;
use crate::scenario::{BlockMode, Fault};

/// How to undo one injected fault.
#[derive(Debug)]
enum Revert {
    /// A change to the engine, journalled: undone as `firedrill recover` would.
    Change(Change),
    /// A cordon, which lives in this process only.
    Uncordon(String),
    /// A surge, whose load runs on this process's threads.
    StopSurge(usize),
}

/// A fault in effect.
pub struct DockerGuard {
    inner: Rc<Inner>,
    /// What undoes it; taken once it succeeded, so a second revert does nothing.
    revert: Option<Revert>,
}

impl FaultGuard for DockerGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        let Some(revert) = &self.revert else { return Ok(()) };
        let result = revert_one(&self.inner, revert).await;
        if result.is_ok() {
            self.revert = None;
        }
        self.inner.refresh_addresses().await;
        result.map_err(|e| EnvError::Revert(Box::new(e)))
    }
}

pub(super) async fn inject(inner: &Rc<Inner>, fault: &Fault) -> Result<DockerGuard, EnvError> {
    // `max_blast_radius`: refused before anything changes.
    inner.admit(fault).map_err(|e| EnvError::Inject(Box::new(e)))?;
    let revert = inject_one(inner, fault).await.map_err(|e| EnvError::Inject(Box::new(e)))?;
    Ok(DockerGuard { inner: inner.clone(), revert })
}

/// Injects one fault; what undoes it, if anything does. Each change is journalled before it
/// is made, and settled by [`Inner::made`] when making it failed.
async fn inject_one(inner: &Rc<Inner>, fault: &Fault) -> Result<Option<Revert>, DockerError> {
    let docker = inner.docker()?;
    let kind = fault.kind();
    let api = DockerError::api(kind.as_str());
    let failed = |e: DockerError| DockerError::Fault { kind, source: Box::new(e) };
    // Journals the change, with when the dead man's switch is to lift it.
    let change = |undo: Undo| inner.journal_change(fault, undo);
    match fault {
        Fault::ContainerStop { target, grace_period, keep_stopped, .. } => {
            let t = inner.target(target)?;
            let options = StopContainerOptions { t: Some(secs(grace_period.0)), ..Default::default() };
            if *keep_stopped {
                docker.stop_container(&t.id, Some(options)).await.map_err(api)?;
                return Ok(None);
            }
            let c = change(Undo::StartContainer { container: t.id.clone() })?;
            let made = docker.stop_container(&t.id, Some(options)).await.map_err(api);
            inner.made(c, made, true).await.map(|c| Some(Revert::Change(c)))
        }
        Fault::ContainerKill { target, signal, keep_stopped, .. } => {
            let t = inner.target(target)?;
            let kill = async {
                docker
                    .kill_container(&t.id, Some(KillContainerOptions { signal: signal.clone() }))
                    .await
                    .map_err(DockerError::api(kind.as_str()))?;
                // A kill is in effect once the process is gone; other signals once delivered.
                if signal == "SIGKILL" || signal == "KILL" || signal == "9" {
                    wait_stopped(docker, &t.id).await?;
                }
                Ok(())
            };
            if *keep_stopped {
                kill.await?;
                return Ok(None);
            }
            let c = change(Undo::StartContainer { container: t.id.clone() })?;
            inner.made(c, kill.await, false).await.map(|c| Some(Revert::Change(c)))
        }
        Fault::ContainerPause { target, .. } => {
            let t = inner.target(target)?;
            let c = change(Undo::UnpauseContainer { container: t.id.clone() })?;
            let made = docker.pause_container(&t.id).await.map_err(api);
            inner.made(c, made, true).await.map(|c| Some(Revert::Change(c)))
        }
        // A restart is a stop whose revert (the start) is due at once: t0 is when the container
        // is down, and the recovery timed is its start and readiness.
        Fault::ContainerRestart { target, grace_period } => {
            let t = inner.target(target)?;
            let options = StopContainerOptions { t: Some(secs(grace_period.0)), ..Default::default() };
            let c = change(Undo::StartContainer { container: t.id.clone() })?;
            let made = docker.stop_container(&t.id, Some(options)).await.map_err(api);
            inner.made(c, made, true).await.map(|c| Some(Revert::Change(c)))
        }
        Fault::NetworkDisconnect { target, .. } => {
            let t = inner.target(target)?;
            let undo =
                Undo::ReconnectContainer { container: t.id.clone(), network: t.network.clone(), aliases: t.aliases };
            let c = change(undo)?;
            let request = NetworkDisconnectRequest { container: t.id.clone(), force: Some(true) };
            let made = docker.disconnect_network(&t.network, request).await.map_err(api);
            inner.made(c, made, true).await.map(|c| Some(Revert::Change(c)))
        }
        Fault::NetworkBlackhole { target, peer, mode, .. } => {
            let t = inner.target(target)?;
            let peer_ip = match peer {
                Some(p) => Some(
                    inner
                        .addresses
                        .borrow()
                        .get(p)
                        .cloned()
                        .ok_or_else(|| failed(DockerError::NoAddress { name: p.clone() }))?,
                ),
                None => None,
            };
            let rules = block_rules(peer_ip.as_deref(), *mode);
            let c = change(Undo::DeleteIptablesRules { container: t.id.clone(), rules: rules.clone() })?;
            let script = rules.iter().map(|r| format!("iptables -I {r}")).collect::<Vec<_>>().join(" && ");
            let made = inner.iptables(&t.id, &script).await.map_err(failed);
            inner.made(c, made, false).await.map(|c| Some(Revert::Change(c)))
        }
        Fault::NodeDrain { node, grace_period, .. } => {
            if inner.cordoned.borrow().contains(node) {
                return Err(failed(DockerError::AlreadyDrained { node: node.clone() }));
            }
            inner.cordoned.borrow_mut().push(node.clone());
            match drain::drain(inner, node, grace_period.0).await {
                Ok(()) => Ok(Some(Revert::Uncordon(node.clone()))),
                Err(e) => {
                    inner.cordoned.borrow_mut().retain(|n| n != node);
                    Err(failed(e))
                }
            }
        }
        Fault::TrafficSurge { multiplier, rate, duration, url, .. } => {
            let url = inner.expand(url.as_deref().ok_or_else(|| failed(DockerError::NoSurgeUrl))?)?;
            let plan = inner.loads.surge_plan(&url, *multiplier, *rate, duration.0).map_err(|e| failed(e.into()))?;
            let surge = inner.loads.surge(&plan).map_err(|e| failed(e.into()))?;
            Ok(Some(Revert::StopSurge(surge)))
        }
        Fault::Sequence { .. } => Err(DockerError::Sequence),
        // Refused at load: `pod_kill`, `pod_delete` and `scale` need the kube environment.
        Fault::DbFailover { .. }
        | Fault::S3Block { .. }
        | Fault::PodKill { .. }
        | Fault::PodDelete { .. }
        | Fault::Scale { .. } => Err(DockerError::NotContainerFault { kind }),
    }
}

async fn revert_one(inner: &Inner, revert: &Revert) -> Result<(), DockerError> {
    match revert {
        Revert::Change(change) => inner.undo_change(change, "reverted by the drill").await?,
        Revert::Uncordon(node) => drain::uncordon(inner, node).await?,
        Revert::StopSurge(i) => {
            inner.loads.stop_surge(*i);
        }
    }
    Ok(())
}

impl Inner {
    /// Journals a change `fault` is about to make, for the dead man's switch to lift when the
    /// fault's `duration` is over (or, for a fault without one, when the drill's deadline is),
    /// should this firedrill be dead by then.
    fn journal_change(&self, fault: &Fault, undo: Undo) -> Result<Change, DockerError> {
        // The switch acts only once the drill is dead (its journal unlocked), so it needs no
        // margin over the drill's own revert. The time runs from before the change, so a
        // stop's grace period is still to come.
        let grace = match fault {
            Fault::ContainerStop { grace_period, .. } | Fault::ContainerRestart { grace_period, .. } => grace_period.0,
            _ => Duration::ZERO,
        };
        let lift_after = fault.duration().map_or(self.drill.deadline, |d| d.0) + grace;
        self.change(&fault.describe(), undo, lift_after)
    }

    /// Runs `script` (iptables commands) in container `id`'s network namespace, from a helper
    /// container labelled with the run (so a recovery of the run removes one left behind).
    pub(super) async fn iptables(&self, id: &str, script: &str) -> Result<(), DockerError> {
        undo::iptables(self.docker()?, &self.run_id, id, script).await
    }
}

/// iptables rules (without the `-I`/`-D`) that drop or refuse the traffic of a container, all
/// of it but loopback, or only with one peer.
fn block_rules(peer: Option<&str>, mode: BlockMode) -> Vec<String> {
    // Refusing resets incoming TCP and refuses outgoing connection attempts; the outgoing
    // rule matches only SYNs so that the resets themselves get out.
    let (input, output) = match mode {
        BlockMode::Blackhole => ("-j DROP", "-j DROP"),
        BlockMode::Refuse => {
            ("-p tcp -j REJECT --reject-with tcp-reset", "-p tcp --syn -j REJECT --reject-with tcp-reset")
        }
    };
    match peer {
        Some(ip) => vec![format!("INPUT -s {ip} {input}"), format!("OUTPUT -d {ip} {output}")],
        None => vec![format!("INPUT ! -i lo {input}"), format!("OUTPUT ! -o lo {output}")],
    }
}

/// Runs `argv` inside container `id`: the last line it printed when it exits 0; its exit code
/// and last line otherwise (as [`firedrill_net::process::run`] does on this machine).
pub(super) async fn exec(docker: &Docker, id: &str, argv: &[String]) -> Result<Option<String>, DockerError> {
    let api = || DockerError::api(format!("exec `{}`", argv.join(" ")));
    let options = CreateExecOptions {
        cmd: Some(argv.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.map_err(api())?;
    let mut text = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&created.id, None).await.map_err(api())? {
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } =
                chunk
            {
                text.extend_from_slice(&message);
            }
        }
    }
    let inspected = docker.inspect_exec(&created.id).await.map_err(api())?;
    let last = firedrill_net::process::last_line(&text);
    match inspected.exit_code.unwrap_or(-1) {
        0 => Ok(Some(last).filter(|l| !l.is_empty())),
        code => Err(DockerError::ExecFailed { code, last }),
    }
}

/// Waits until container `id` is no longer running (a kill takes effect asynchronously).
pub(super) async fn wait_stopped(docker: &Docker, id: &str) -> Result<(), DockerError> {
    for _ in 0..200 {
        let running = docker.inspect_container(id, None).await.ok().and_then(|i| i.state).and_then(|s| s.running);
        if running != Some(true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(DockerError::StillRunning { id: id.into() })
}

fn secs(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}
