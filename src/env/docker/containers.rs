//! The containers of a drill: attached ones found by name or Compose service, provisioned
//! ones started through testcontainers on the drill's network (on a node, when nodes are
//! declared), their addresses looked up, and all of the drill's own removed at the end.

use std::collections::HashMap;
use std::time::Duration;

use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use testcontainers::bollard::Docker;
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::error::DockerError;
use super::{fault, Inner, Target, ANY_NODE, EXE_IN_CONTAINER, NODE_LABEL, RUN_LABEL};
use crate::probe;
use crate::sample::Sample;
use crate::scenario::ContainerSpec;
use crate::text::error_chain;

impl Inner {
    /// Finds each attached container and its network. They are only ever faulted and
    /// reverted, never removed.
    pub(super) async fn attach(&self) -> Result<(), DockerError> {
        for a in &self.stack.attach {
            let target = self
                .find_attached(a)
                .await
                .map_err(|e| DockerError::Attached { name: a.name.clone(), source: Box::new(e) })?;
            self.targets.borrow_mut().insert(a.name.clone(), target);
        }
        Ok(())
    }

    async fn find_attached(&self, a: &crate::scenario::Attach) -> Result<Target, DockerError> {
        let docker = self.docker()?;
        let id = self.attached_id(a).await?;
        let info = docker.inspect_container(&id, None).await.map_err(DockerError::api(format!("inspecting {id}")))?;
        if !info.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            return Err(DockerError::NotRunning);
        }
        let networks = info.network_settings.and_then(|n| n.networks).unwrap_or_default();
        let Some((network, endpoint)) = networks.into_iter().next() else {
            return Err(DockerError::NoNetwork);
        };
        Ok(Target { id: info.id.unwrap_or(id), network, aliases: endpoint.aliases.unwrap_or_default(), node: None })
    }

    /// The id (or name) of attached container `a`, looked up without changing anything: a
    /// Compose service must match exactly one container.
    async fn attached_id(&self, a: &crate::scenario::Attach) -> Result<String, DockerError> {
        let docker = self.docker()?;
        match (&a.container, &a.compose) {
            (Some(name), _) => Ok(name.clone()),
            (None, Some(c)) => {
                let filters = HashMap::from([(
                    "label".to_string(),
                    vec![
                        format!("com.docker.compose.project={}", c.project),
                        format!("com.docker.compose.service={}", c.service),
                    ],
                )]);
                let found = docker
                    .list_containers(Some(ListContainersOptions { filters: Some(filters), ..Default::default() }))
                    .await
                    .map_err(DockerError::api("listing containers"))?;
                match found.as_slice() {
                    [one] => Ok(one.id.clone().unwrap_or_default()),
                    [] => {
                        Err(DockerError::NoComposeContainer { project: c.project.clone(), service: c.service.clone() })
                    }
                    many => Err(DockerError::ManyComposeContainers {
                        project: c.project.clone(),
                        service: c.service.clone(),
                        count: many.len(),
                    }),
                }
            }
            (None, None) => unreachable!("checked on load"),
        }
    }

    /// Attached container `a` as it is now (id, Docker name, state), looked up without changing
    /// anything; an error when the drill could not attach to it.
    pub(super) async fn inspect_attached(&self, a: &crate::scenario::Attach) -> Result<AttachedState, DockerError> {
        let docker = self.docker()?;
        let id = self.attached_id(a).await?;
        let info = docker.inspect_container(&id, None).await.map_err(DockerError::api(format!("inspecting {id}")))?;
        let state = info.state.unwrap_or_default();
        let found = AttachedState {
            id: info.id.unwrap_or(id),
            name: info.name.unwrap_or_default().trim_start_matches('/').to_string(),
            status: state.status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
        };
        match state.running {
            Some(true) => Ok(found),
            _ => Err(DockerError::NotRunning),
        }
    }

    /// Whether `image` is on the engine (firedrill never pulls one).
    pub(super) async fn has_image(&self, image: &str) -> Result<bool, DockerError> {
        Ok(self.docker()?.inspect_image(image).await.is_ok())
    }

    /// Starts the container `spec` on `node`, named `<network>-<name>` and, for a replacement
    /// (`generation` > 0), `<network>-<name>-<generation>`. With `wait_ready` it returns once
    /// the container is ready; without, once it runs, as a scheduler's replacement would be
    /// started: the probes see when it is ready.
    pub(super) async fn start(
        &self,
        spec: &ContainerSpec,
        node: Option<String>,
        generation: usize,
        wait_ready: bool,
    ) -> Result<(), DockerError> {
        self.start_container(spec, node, generation, wait_ready)
            .await
            .map_err(|e| DockerError::Container { name: spec.name.clone(), source: Box::new(e) })
    }

    async fn start_container(
        &self,
        spec: &ContainerSpec,
        node: Option<String>,
        generation: usize,
        wait_ready: bool,
    ) -> Result<(), DockerError> {
        let docker = self.docker()?;
        let (repo, tag) = split_image(&spec.image);
        // testcontainers would try to pull a missing image, which cannot work offline.
        if !self.has_image(&spec.image).await? {
            return Err(DockerError::ImageMissing { image: spec.image.clone() });
        }
        let mut image = GenericImage::new(repo, tag);
        if let (Some(text), true) = (&spec.ready.log, wait_ready) {
            image = image.with_wait_for(WaitFor::message_on_either_std(text.as_bytes()));
        }
        let name = match generation {
            0 => format!("{}-{}", self.network, spec.name),
            n => format!("{}-{}-{n}", self.network, spec.name),
        };
        let removal = crate::journal::Undo::RemoveContainer { container: name.clone() };
        let entry = self.journal(&format!("start container {name} ({})", spec.image), removal.clone(), None)?;
        self.created.borrow_mut().push((entry, removal));
        let mut request = image
            .with_network(self.network.clone())
            .with_container_name(name)
            .with_hostname(spec.name.clone())
            .with_label(RUN_LABEL, self.run_id.clone())
            .with_startup_timeout(spec.ready.timeout.0);
        if let Some(exe) = &self.exe {
            let mount = Mount::bind_mount(exe.display().to_string(), EXE_IN_CONTAINER);
            request = request.with_mount(mount.with_access_mode(AccessMode::ReadOnly));
        }
        if let Some(node) = &node {
            request = request.with_label(NODE_LABEL, node.clone());
        }
        if !spec.command.is_empty() {
            request = request.with_cmd(spec.command.clone());
        }
        if let Some(user) = &spec.user {
            request = request.with_user(user.clone());
        }
        for (k, v) in &spec.env {
            request = request.with_env_var(k.clone(), v.clone());
        }
        let container = request.start().await?;
        let id = container.id().to_string();
        self.provisioned.borrow_mut().push(container);
        let target = Target { id, network: self.network.clone(), aliases: vec![spec.name.clone()], node };
        if let Some(old) = self.targets.borrow_mut().insert(spec.name.clone(), target.clone()) {
            self.retired.borrow_mut().push((format!("{}, replaced", spec.name), old));
        }
        self.refresh_addresses().await;
        if !wait_ready {
            return Ok(());
        }

        let limit = spec.ready.timeout.0;
        let within = spec.ready.timeout;
        let every = Duration::from_millis(200);
        if let Some(port) = spec.ready.port {
            let address = self.expand(&format!("${{{}:{port}}}", spec.name))?;
            probe::until_ok(limit, every, || probe::tcp(&address))
                .await
                .map_err(|source| DockerError::PortNotReady { port, within, source })?;
        }
        if let Some(argv) = &spec.ready.command {
            probe::until_ok(limit, every, || async {
                match fault::exec(docker, &target.id, argv).await {
                    Ok(_) => Sample::ok(),
                    Err(e) => Sample::fail(error_chain(&e)),
                }
            })
            .await
            .map_err(|source| DockerError::CommandNotReady { command: argv.join(" "), within, source })?;
        }
        Ok(())
    }

    /// The node a new container goes on: none when it declares none, the declared one, or for
    /// `any` the uncordoned node with the fewest containers, counting those about to start
    /// there (`pending`), the first declared among equals.
    pub(super) fn place(&self, declared: Option<&String>, pending: &[String]) -> Option<String> {
        match declared.map(String::as_str) {
            None => return None,
            Some(ANY_NODE) => {}
            Some(node) => return Some(node.to_string()),
        }
        let targets = self.targets.borrow();
        let cordoned = self.cordoned.borrow();
        let load = |n: &String| {
            targets.values().filter(|t| t.node.as_ref() == Some(n)).count() + pending.iter().filter(|p| *p == n).count()
        };
        self.stack.nodes.iter().filter(|n| !cordoned.contains(n)).min_by_key(|n| load(n)).cloned()
    }

    /// Looks every target's address up again. A container that is down keeps its last known
    /// address, so probes fail against it rather than on a missing name.
    pub(super) async fn refresh_addresses(&self) {
        let Ok(docker) = self.docker() else { return };
        let targets: Vec<(String, Target)> =
            self.targets.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, target) in targets {
            let Ok(info) = docker.inspect_container(&target.id, None).await else { continue };
            let ip = info
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(&target.network))
                .and_then(|e| e.ip_address)
                .filter(|ip| !ip.is_empty());
            if let Some(ip) = ip {
                self.addresses.borrow_mut().insert(name, ip);
            }
        }
    }

    /// Removes what the drill started: the provisioned containers, then whatever else carries
    /// its label. Every removal is tried; the failures are reported together.
    pub(super) async fn teardown(&self) -> Result<(), DockerError> {
        self.loads.end();
        // An eviction cut short leaves at most a labelled container, which the sweep removes.
        for eviction in self.evictions.borrow_mut().drain(..) {
            eviction.abort();
        }
        let mut errors = self.remove_probe_leftovers().await;
        let containers: Vec<_> = self.provisioned.borrow_mut().drain(..).collect();
        for container in containers.into_iter().rev() {
            let id = container.id().to_string();
            if let Err(e) = container.rm().await {
                errors.push(DockerError::Remove { id, source: e });
            }
        }
        // A fault whose revert failed stays open in the journal, and its dead man's switch
        // stays to lift it.
        let keep = self.journal.borrow().as_ref().is_some_and(|j| j.open_lifts() > 0).then(|| self.deadman_name());
        // Then whatever else carries this drill's label: a container whose start was cut
        // short by Ctrl-C, a network helper whose removal failed.
        if let Err(e) = self.sweep(keep.as_deref()).await {
            errors.push(e);
        }
        // Each creation journalled is settled by looking: removed, or found gone.
        let created: Vec<_> = self.created.borrow_mut().drain(..).collect();
        for (entry, removal) in created.into_iter().rev() {
            if matches!(&removal, crate::journal::Undo::RemoveContainer { container } if Some(container) == keep.as_ref())
            {
                continue;
            }
            let settled = match super::undo::undo(self.docker()?, &self.run_id, &removal).await {
                Ok(undone) => self.journal_done(entry, &format!("teardown: {undone}")),
                Err(e) => Err(e),
            };
            if let Err(e) = settled {
                errors.push(e);
            }
        }
        if let Some(journal) = self.journal.borrow_mut().take() {
            match journal.close() {
                Ok(None) => {}
                Ok(Some(path)) => errors.push(DockerError::LeftInJournal { path, run: self.run_id.clone() }),
                Err(e) => errors.push(e.into()),
            }
        }
        DockerError::all(errors)
    }

    /// Removes every container labelled with this drill's run id but `keep`, and its network.
    async fn sweep(&self, keep: Option<&str>) -> Result<(), DockerError> {
        let docker = self.docker()?;
        let filters = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={}", self.run_id)])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let left = docker.list_containers(Some(options)).await.map_err(DockerError::api("listing containers"))?;
        let mut errors = Vec::new();
        for c in left {
            let named = |n: &String| Some(n.trim_start_matches('/')) == keep;
            if c.names.as_ref().is_some_and(|names| names.iter().any(named)) {
                continue;
            }
            let id = c.id.unwrap_or_default();
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            if let Err(e) = docker.remove_container(&id, Some(options)).await {
                errors.push(DockerError::api(format!("container {id}"))(e));
            }
        }
        match docker.remove_network(&self.network).await {
            Ok(())
            | Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => errors.push(DockerError::api(format!("network {}", self.network))(e)),
        }
        DockerError::all(errors)
    }
}

impl Drop for Inner {
    /// A drill that did not reach its teardown (a panic) still removes what it started:
    /// testcontainers removes a container when its handle drops, which needs a runtime.
    fn drop(&mut self) {
        // The dead man's switch is no testcontainers handle: it is removed on a thread of its
        // own, with a client and runtime of its own, since this may run inside a runtime; but
        // not while a fault it is to lift is still open: that is what it is for.
        if self.journal.get_mut().as_ref().is_some_and(|j| j.open_lifts() == 0) {
            let name = self.deadman_name();
            let removed = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                let docker = Docker::connect_with_local_defaults().ok()?;
                let options = RemoveContainerOptions { force: true, ..Default::default() };
                rt.block_on(docker.remove_container(&name, Some(options))).ok()
            });
            let _ = removed.join();
        }
        let containers: Vec<_> = self.provisioned.get_mut().drain(..).collect();
        if containers.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(containers);
        } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async move { drop(containers) });
        }
    }
}

/// An attached container as the engine reports it.
pub(super) struct AttachedState {
    /// The full container id.
    pub(super) id: String,
    /// Its Docker name.
    pub(super) name: String,
    /// `running`, `paused`, …
    pub(super) status: String,
}

/// `image:tag` split, `latest` when no tag is given (a `:` in a registry host is no tag).
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::docker::DockerEnv;
    use crate::scenario::DockerStack;

    #[test]
    fn the_scheduler_spreads_over_uncordoned_nodes() {
        let nodes = ["node-a", "node-b", "node-c"].map(String::from).to_vec();
        let drill = crate::env::docker::DrillInfo::unused();
        let env = DockerEnv::new(DockerStack { nodes, ..Default::default() }, "test", drill);
        let inner = &env.inner;
        let (any, b) = (ANY_NODE.to_string(), "node-b".to_string());
        let on =
            |node: &str| Target { id: String::new(), network: String::new(), aliases: vec![], node: Some(node.into()) };
        // No node declared: on no node, so no drain moves it; a declared one is kept.
        assert_eq!(inner.place(None, &[]), None);
        assert_eq!(inner.place(Some(&b), &[]).as_deref(), Some("node-b"));
        // `any`: the least loaded, the first declared among equals.
        assert_eq!(inner.place(Some(&any), &[]).as_deref(), Some("node-a"));
        inner.targets.borrow_mut().insert("web-1".into(), on("node-a"));
        assert_eq!(inner.place(Some(&any), &[]).as_deref(), Some("node-b"));
        // Containers about to start count, so one drain spreads its workloads.
        assert_eq!(inner.place(Some(&any), std::slice::from_ref(&b)).as_deref(), Some("node-c"));
        // A cordoned node gets nothing, however empty.
        inner.cordoned.borrow_mut().push("node-c".into());
        assert_eq!(inner.place(Some(&any), std::slice::from_ref(&b)).as_deref(), Some("node-a"));
        inner.cordoned.borrow_mut().extend(["node-a".to_string(), b]);
        assert_eq!(inner.place(Some(&any), &[]), None);
    }

    #[test]
    fn splits_image_references() {
        assert_eq!(split_image("firedrill/base:latest"), ("firedrill/base".into(), "latest".into()));
        assert_eq!(split_image("firedrill/base"), ("firedrill/base".into(), "latest".into()));
        assert_eq!(split_image("localhost:5000/app"), ("localhost:5000/app".into(), "latest".into()));
    }
}
