//! What each container fault means on the Docker Engine, and how it is undone. Every fault
//! goes through the Docker API; the network rules of a blackhole are set by a short-lived
//! helper container in the target's network namespace, so the target's image needs no tools.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkDisconnectRequest,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, RemoveContainerOptions, StopContainerOptions,
};
use testcontainers::bollard::Docker;

use super::{Inner, Target, HELPER_IMAGE, RUN_LABEL};
use crate::env::{EnvError, FaultGuard};
use crate::scenario::{BlockMode, Fault};

/// How to undo one injected fault.
#[derive(Debug)]
enum Undo {
    Start(String),
    Unpause(String),
    Reconnect(Target),
    Unblock { id: String, rules: Vec<String> },
}

/// A fault in effect.
pub struct DockerGuard {
    inner: Rc<Inner>,
    /// What undoes it; taken once it succeeded, so a second revert does nothing.
    undo: Option<Undo>,
}

impl FaultGuard for DockerGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        let Some(undo) = &self.undo else { return Ok(()) };
        let result = undo_one(&self.inner, undo).await;
        if result.is_ok() {
            self.undo = None;
        }
        self.inner.refresh_addresses().await;
        result.map_err(EnvError::Revert)
    }
}

pub(super) async fn inject(inner: &Rc<Inner>, fault: &Fault) -> Result<DockerGuard, EnvError> {
    let undo = inject_one(inner, fault).await.map_err(EnvError::Inject)?;
    Ok(DockerGuard { inner: inner.clone(), undo })
}

/// Injects one fault; what undoes it, if anything does. Each fault is one Docker call (or one
/// helper run), so a failed inject has nothing to undo.
async fn inject_one(inner: &Inner, fault: &Fault) -> Result<Option<Undo>, String> {
    let docker = inner.docker()?;
    let kind = fault.kind();
    let api = |e: testcontainers::bollard::errors::Error| format!("{kind}: {e}");
    match fault {
        Fault::ContainerStop { target, grace_period, keep_stopped, .. } => {
            let t = inner.target(target)?;
            let options = StopContainerOptions { t: Some(secs(grace_period.0)), ..Default::default() };
            docker.stop_container(&t.id, Some(options)).await.map_err(api)?;
            Ok((!keep_stopped).then_some(Undo::Start(t.id)))
        }
        Fault::ContainerKill { target, signal, keep_stopped, .. } => {
            let t = inner.target(target)?;
            docker.kill_container(&t.id, Some(KillContainerOptions { signal: signal.clone() })).await.map_err(api)?;
            // A kill is in effect once the process is gone; other signals once delivered.
            if signal == "SIGKILL" || signal == "KILL" || signal == "9" {
                wait_stopped(docker, &t.id).await?;
            }
            Ok((!keep_stopped).then_some(Undo::Start(t.id)))
        }
        Fault::ContainerPause { target, .. } => {
            let t = inner.target(target)?;
            docker.pause_container(&t.id).await.map_err(api)?;
            Ok(Some(Undo::Unpause(t.id)))
        }
        // A restart is a stop whose revert (the start) is due at once: t0 is when the container
        // is down, and the recovery timed is its start and readiness.
        Fault::ContainerRestart { target, grace_period } => {
            let t = inner.target(target)?;
            let options = StopContainerOptions { t: Some(secs(grace_period.0)), ..Default::default() };
            docker.stop_container(&t.id, Some(options)).await.map_err(api)?;
            Ok(Some(Undo::Start(t.id)))
        }
        Fault::NetworkDisconnect { target, .. } => {
            let t = inner.target(target)?;
            let request = NetworkDisconnectRequest { container: t.id.clone(), force: Some(true) };
            docker.disconnect_network(&t.network, request).await.map_err(api)?;
            Ok(Some(Undo::Reconnect(t)))
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
                        .ok_or_else(|| format!("{kind}: container `{p}` has no address"))?,
                ),
                None => None,
            };
            let rules = block_rules(peer_ip.as_deref(), *mode);
            run_helper(inner, &t.id, &rules, "-I").await.map_err(|e| format!("{kind}: {e}"))?;
            Ok(Some(Undo::Unblock { id: t.id, rules }))
        }
        Fault::Sequence { .. } => Err("a sequence is injected by the engine, one fault at a time".into()),
        Fault::NodeDrain { .. } | Fault::TrafficSurge { .. } | Fault::DbFailover { .. } | Fault::S3Block { .. } => {
            Err(format!("`{kind}` is not a container fault"))
        }
    }
}

async fn undo_one(inner: &Inner, undo: &Undo) -> Result<(), String> {
    let docker = inner.docker()?;
    match undo {
        Undo::Start(id) => {
            let running = docker.inspect_container(id, None).await.ok().and_then(|i| i.state).and_then(|s| s.running);
            if running != Some(true) {
                docker.start_container(id, None).await.map_err(|e| format!("start {id}: {e}"))?;
            }
        }
        Undo::Unpause(id) => docker.unpause_container(id).await.map_err(|e| format!("unpause {id}: {e}"))?,
        Undo::Reconnect(t) => {
            let request = NetworkConnectRequest {
                container: t.id.clone(),
                endpoint_config: Some(EndpointSettings { aliases: Some(t.aliases.clone()), ..Default::default() }),
            };
            docker.connect_network(&t.network, request).await.map_err(|e| format!("reconnect {}: {e}", t.id))?;
        }
        Undo::Unblock { id, rules } => run_helper(inner, id, rules, "-D").await?,
    }
    Ok(())
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

/// Runs `iptables <op> <rule>` for each rule in the network namespace of container `id`, from
/// a helper container that is removed afterwards.
async fn run_helper(inner: &Inner, id: &str, rules: &[String], op: &str) -> Result<(), String> {
    let docker = inner.docker()?;
    let script = rules.iter().map(|r| format!("iptables {op} {r}")).collect::<Vec<_>>().join(" && ");
    let body = ContainerCreateBody {
        image: Some(HELPER_IMAGE.into()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.clone()]),
        labels: Some(HashMap::from([(RUN_LABEL.to_string(), inner.run_id.clone())])),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{id}")),
            cap_add: Some(vec!["NET_ADMIN".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(|e| format!("creating the network helper ({HELPER_IMAGE}; scripts/setup-docker builds it): {e}"))?;
    let result = async {
        docker.start_container(&created.id, None).await.map_err(|e| format!("starting the network helper: {e}"))?;
        let mut wait = docker.wait_container(&created.id, None);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(format!("waiting for the network helper: {e}")),
            None => -1,
        };
        if code != 0 {
            let mut logs = docker.logs(
                &created.id,
                Some(testcontainers::bollard::query_parameters::LogsOptions {
                    stdout: true,
                    stderr: true,
                    tail: "all".into(),
                    ..Default::default()
                }),
            );
            let mut text = Vec::new();
            while let Some(Ok(chunk)) = logs.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
            return Err(format!("`{script}` exited {code}: {}", crate::probe::last_line(&text)));
        }
        Ok(())
    }
    .await;
    let removed =
        docker.remove_container(&created.id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
    result?;
    removed.map_err(|e| format!("removing the network helper: {e}"))
}

/// Runs `argv` inside container `id`: the last line it printed when it exits 0; its exit code
/// and last line otherwise (as [`crate::probe::run`] does on this machine).
pub(super) async fn exec(docker: &Docker, id: &str, argv: &[String]) -> Result<Option<String>, String> {
    let options = CreateExecOptions {
        cmd: Some(argv.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.map_err(|e| format!("exec `{}`: {e}", argv.join(" ")))?;
    let mut text = Vec::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await.map_err(|e| format!("exec `{}`: {e}", argv.join(" ")))?
    {
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } =
                chunk
            {
                text.extend_from_slice(&message);
            }
        }
    }
    let inspected = docker.inspect_exec(&created.id).await.map_err(|e| format!("exec `{}`: {e}", argv.join(" ")))?;
    let last = crate::probe::last_line(&text);
    match inspected.exit_code.unwrap_or(-1) {
        0 => Ok(Some(last).filter(|l| !l.is_empty())),
        code => Err(format!("exit {code}: {last}")),
    }
}

/// Waits until container `id` is no longer running (a kill takes effect asynchronously).
async fn wait_stopped(docker: &Docker, id: &str) -> Result<(), String> {
    for _ in 0..200 {
        let running = docker.inspect_container(id, None).await.ok().and_then(|i| i.state).and_then(|s| s.running);
        if running != Some(true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("container {id} still runs 5 s after the kill"))
}

fn secs(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}
