//! Undoing a journalled change on the Docker Engine, without the drill that made it: one
//! piece of code for the drill's own revert, for `firedrill recover` and for the dead man's
//! switch. Every undo first looks at what is there, so undoing twice, or undoing what someone
//! already undid by hand, does nothing and says so.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use testcontainers::bollard::errors::Error as ApiError;
use testcontainers::bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use testcontainers::bollard::Docker;

use super::error::DockerError;
use super::RUN_LABEL;
use crate::journal::Undo;

/// The image of the helper containers that change a target's network rules, and of the dead
/// man's switch.
pub(super) const HELPER_IMAGE: &str = "firedrill/base:latest";

/// What an undo found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Undone {
    /// It undid the change.
    Undone(String),
    /// The change was no longer in effect: nothing to do.
    NotInEffect(String),
}

impl std::fmt::Display for Undone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undone::Undone(what) => f.write_str(what),
            Undone::NotInEffect(why) => write!(f, "nothing to do: {why}"),
        }
    }
}

/// Whether a journalled change is still in effect, and if not, why.
pub async fn in_effect(docker: &Docker, run: &str, undo: &Undo) -> Result<Result<(), String>, DockerError> {
    Ok(match undo {
        Undo::StartContainer { container } => match container_state(docker, container).await? {
            None => Err("the container is gone".into()),
            Some(s) if s.running => Err("the container is running".into()),
            Some(_) => Ok(()),
        },
        Undo::UnpauseContainer { container } => match container_state(docker, container).await? {
            None => Err("the container is gone".into()),
            Some(s) if !s.paused => Err("the container is not paused".into()),
            Some(_) => Ok(()),
        },
        Undo::ReconnectContainer { container, network, .. } => match container_state(docker, container).await? {
            None => Err("the container is gone".into()),
            Some(s) if s.networks.contains(network) => Err(format!("the container is on network {network}")),
            Some(_) => Ok(()),
        },
        Undo::DeleteIptablesRules { container, rules } => match container_state(docker, container).await? {
            None => Err("the container is gone".into()),
            // A container's rules live in its network namespace, which ends when it stops.
            Some(s) if !s.running => Err("the container is not running, so its network rules are gone".into()),
            Some(_) => {
                let check = rules.iter().map(|r| format!("iptables -C {r} 2>/dev/null")).collect::<Vec<_>>();
                match iptables(docker, run, container, &format!("{{ {}; }} || exit 3", check.join(" || "))).await {
                    Ok(()) => Ok(()),
                    Err(DockerError::HelperFailed { code: 3, .. }) => Err("the rules are no longer there".into()),
                    Err(e) => return Err(e),
                }
            }
        },
        Undo::RemoveContainer { container } => match container_state(docker, container).await? {
            None => Err("the container is gone".into()),
            Some(_) => Ok(()),
        },
        Undo::RemoveNetwork { network } => match docker.inspect_network(network, None).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Err("the network is gone".into()),
            Err(e) => return Err(DockerError::api(format!("inspecting network {network}"))(e)),
        },
        Undo::Uncordon { .. }
        | Undo::RestoreReplicas { .. }
        | Undo::DeleteKubeObject { .. }
        | Undo::RestoreBucketPolicy { .. } => Err("not a change of the Docker Engine".into()),
    })
}

/// Undoes a journalled change if it is still in effect. A call that fails is judged by what
/// it left: someone else (the drill, its dead man's switch, an operator) undoing the same
/// change at the same moment is no failure.
pub async fn undo(docker: &Docker, run: &str, change: &Undo) -> Result<Undone, DockerError> {
    if let Err(why) = in_effect(docker, run, change).await? {
        return Ok(Undone::NotInEffect(why));
    }
    match undo_in_effect(docker, run, change).await {
        Ok(undone) => Ok(undone),
        Err(e) => match in_effect(docker, run, change).await {
            Ok(Err(why)) => Ok(Undone::NotInEffect(why)),
            _ => Err(e),
        },
    }
}

/// Undoes a change found in effect.
async fn undo_in_effect(docker: &Docker, run: &str, undo: &Undo) -> Result<Undone, DockerError> {
    let api = |action: String| DockerError::api(action);
    Ok(Undone::Undone(match undo {
        Undo::StartContainer { container } => {
            docker.start_container(container, None).await.map_err(api(format!("start {container}")))?;
            "started".into()
        }
        Undo::UnpauseContainer { container } => {
            docker.unpause_container(container).await.map_err(api(format!("unpause {container}")))?;
            "unpaused".into()
        }
        Undo::ReconnectContainer { container, network, aliases } => {
            let request = NetworkConnectRequest {
                container: container.clone(),
                endpoint_config: Some(EndpointSettings { aliases: Some(aliases.clone()), ..Default::default() }),
            };
            docker.connect_network(network, request).await.map_err(api(format!("reconnect {container}")))?;
            format!("reconnected to {network}")
        }
        Undo::DeleteIptablesRules { container, rules } => {
            // Every copy of each rule, so a rule added twice is gone too.
            let script = rules.iter().map(|r| format!("while iptables -C {r} 2>/dev/null; do iptables -D {r}; done"));
            iptables(docker, run, container, &script.collect::<Vec<_>>().join("; ")).await?;
            format!("{} network rule(s) deleted", rules.len())
        }
        Undo::RemoveContainer { container } => {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(container, Some(options)).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => return Ok(Undone::NotInEffect("the container is gone".into())),
                Err(e) => return Err(api(format!("remove container {container}"))(e)),
            }
            "removed".into()
        }
        Undo::RemoveNetwork { network } => {
            match docker.remove_network(network).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => return Ok(Undone::NotInEffect("the network is gone".into())),
                Err(e) => return Err(api(format!("remove network {network}"))(e)),
            }
            "removed".into()
        }
        Undo::Uncordon { .. }
        | Undo::RestoreReplicas { .. }
        | Undo::DeleteKubeObject { .. }
        | Undo::RestoreBucketPolicy { .. } => {
            return Ok(Undone::NotInEffect("not a change of the Docker Engine".into()))
        }
    }))
}

/// The containers carrying firedrill's run label, by run: their names.
pub async fn labelled(docker: &Docker) -> Result<BTreeMap<String, Vec<String>>, DockerError> {
    let filters = HashMap::from([("label".to_string(), vec![RUN_LABEL.to_string()])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let found = docker.list_containers(Some(options)).await.map_err(DockerError::api("listing containers"))?;
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in found {
        let run = c.labels.and_then(|mut l| l.remove(RUN_LABEL)).unwrap_or_default();
        let name = c.names.and_then(|n| n.into_iter().next()).map(|n| n.trim_start_matches('/').to_string());
        runs.entry(run).or_default().push(name.or(c.id).unwrap_or_default());
    }
    Ok(runs)
}

/// The runs whose dead man's switch (`firedrill-<run>-deadman`) is running.
pub async fn switched_runs(docker: &Docker) -> Result<Vec<String>, DockerError> {
    let filters = HashMap::from([
        ("label".to_string(), vec![RUN_LABEL.to_string()]),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let options = ListContainersOptions { filters: Some(filters), ..Default::default() };
    let found = docker.list_containers(Some(options)).await.map_err(DockerError::api("listing containers"))?;
    Ok(found
        .into_iter()
        .filter(|c| c.names.iter().flatten().any(|n| n.ends_with("-deadman")))
        .filter_map(|c| c.labels.and_then(|mut l| l.remove(RUN_LABEL)))
        .collect())
}

/// The networks firedrill made for drills (`firedrill-<run id>`), by run.
pub async fn drill_networks(docker: &Docker) -> Result<BTreeMap<String, String>, DockerError> {
    let filters = HashMap::from([("name".to_string(), vec!["firedrill-".to_string()])]);
    let options = ListNetworksOptions { filters: Some(filters) };
    let found = docker.list_networks(Some(options)).await.map_err(DockerError::api("listing networks"))?;
    Ok(found
        .into_iter()
        .filter_map(|n| n.name)
        .filter_map(|name| {
            let run = name.strip_prefix("firedrill-")?;
            let is_run_id = run.len() == 8 && run.bytes().all(|b| b.is_ascii_hexdigit());
            is_run_id.then(|| (run.to_string(), name.clone()))
        })
        .collect())
}

/// What an undo needs to know of a container.
struct ContainerState {
    running: bool,
    paused: bool,
    networks: Vec<String>,
}

/// The container's state, `None` when there is no such container.
async fn container_state(docker: &Docker, id: &str) -> Result<Option<ContainerState>, DockerError> {
    match docker.inspect_container(id, None).await {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            let networks = info.network_settings.and_then(|n| n.networks).unwrap_or_default();
            Ok(Some(ContainerState {
                running: state.running.unwrap_or(false),
                paused: state.paused.unwrap_or(false),
                networks: networks.into_keys().collect(),
            }))
        }
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(DockerError::api(format!("inspecting {id}"))(e)),
    }
}

fn not_found(e: &ApiError) -> bool {
    matches!(e, ApiError::DockerResponseServerError { status_code: 404, .. })
}

/// Runs `script` (iptables commands) in the network namespace of container `id`, from a
/// helper container labelled with the run, removed afterwards.
pub(super) async fn iptables(docker: &Docker, run: &str, id: &str, script: &str) -> Result<(), DockerError> {
    let body = ContainerCreateBody {
        image: Some(HELPER_IMAGE.into()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        labels: Some(HashMap::from([(RUN_LABEL.to_string(), run.to_string())])),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{id}")),
            cap_add: Some(vec!["NET_ADMIN".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<testcontainers::bollard::query_parameters::CreateContainerOptions>, body)
        .await
        .map_err(DockerError::api(format!(
            "creating the network helper ({HELPER_IMAGE}; scripts/setup-docker builds it)"
        )))?;
    let result = async {
        docker.start_container(&created.id, None).await.map_err(DockerError::api("starting the network helper"))?;
        let code = wait_exit(docker, &created.id).await?;
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
            return Err(DockerError::HelperFailed {
                script: script.into(),
                code,
                last: firedrill_net::process::last_line(&text),
            });
        }
        Ok(())
    }
    .await;
    let removed =
        docker.remove_container(&created.id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
    result?;
    removed.map_err(DockerError::api("removing the network helper"))
}

/// Waits for a container to exit; its exit code.
async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, DockerError> {
    let mut wait = docker.wait_container(id, None);
    Ok(match wait.next().await {
        Some(Ok(r)) => r.status_code,
        Some(Err(ApiError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(DockerError::api("waiting for the network helper")(e)),
        None => -1,
    })
}

/// Starts a drill's dead man's switch: a container, labelled with the run, that runs this
/// firedrill executable (mounted read-only) with the engine's socket and the journal folder,
/// and lifts each journalled fault when its time is up if the drill's journal is no longer
/// held, that is if the drill is dead (`firedrill deadman`). It ends with the journal, or once
/// its drill is dead and nothing is left to lift.
pub(super) async fn start_deadman(
    docker: &Docker,
    run: &str,
    name: &str,
    exe: &std::path::Path,
    journal_dir: &std::path::Path,
) -> Result<(), DockerError> {
    let socket = local_socket().ok_or(DockerError::NoDeadmanSocket)?;
    let body = ContainerCreateBody {
        image: Some(HELPER_IMAGE.into()),
        cmd: Some(vec![
            super::EXE_IN_CONTAINER.into(),
            "deadman".into(),
            "--journal".into(),
            format!("/journal/{run}.jsonl"),
        ]),
        labels: Some(HashMap::from([(RUN_LABEL.to_string(), run.to_string())])),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:{}:ro", exe.display(), super::EXE_IN_CONTAINER),
                format!("{}:/var/run/docker.sock", socket.display()),
                format!("{}:/journal", journal_dir.display()),
            ]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(DockerError::api(format!("creating the dead man's switch ({HELPER_IMAGE})")))?;
    docker.start_container(&created.id, None).await.map_err(DockerError::api("starting the dead man's switch"))
}

/// The Unix socket this process reaches the engine through, which the dead man's switch is
/// given: `DOCKER_HOST` when it is a `unix://` path, the default socket otherwise; `None`
/// for an engine reached over TCP, which a container cannot be handed.
pub(super) fn local_socket() -> Option<std::path::PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => host.strip_prefix("unix://").map(Into::into),
        _ => Some("/var/run/docker.sock".into()),
    }
}
