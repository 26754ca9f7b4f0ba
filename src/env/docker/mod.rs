//! The `docker` environment: real containers on this machine's Docker Engine.
//!
//! Provisioned containers are started through testcontainers on a private network made for
//! the drill, and removed afterwards; attached containers (by name or Compose service) are
//! only ever faulted and reverted, never removed. Probes reach containers at their addresses
//! on their network, looked up again after every fault and revert, because a container that is
//! reconnected or restarted may come back elsewhere; a published port would not survive a
//! network disconnect.

mod fault;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::query_parameters::{ListContainersOptions, LogsOptions, RemoveContainerOptions};
use testcontainers::bollard::Docker;
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

pub use fault::DockerGuard;

use super::{EnvError, Environment, Evidence, Sample};
use crate::probe::{self, ledger::Ledger};
use crate::scenario::{Check, ContainerSpec, DockerStack, Fault, Probe, Problem, ResolvedStep, Scenario, StepAction};
use crate::text::error_chain;

/// The label on every container firedrill creates, with the drill's run id: what it created
/// is found (and removed) by it.
pub const RUN_LABEL: &str = "firedrill.run";
/// The image of the helper containers that change a target's network rules.
const HELPER_IMAGE: &str = "firedrill/base:latest";
/// Evidence kept per container when the scenario sets no `log_limit`.
const DEFAULT_LOG_LIMIT: u64 = 64 * 1024;
/// Where this firedrill executable is found inside provisioned containers.
pub const EXE_IN_CONTAINER: &str = "/usr/local/bin/firedrill";
/// A container's `node` when the scheduler picks it.
pub const ANY_NODE: &str = "any";
/// The label naming the node a provisioned container runs on.
pub const NODE_LABEL: &str = "firedrill.node";

/// Real containers; see the module docs.
pub struct DockerEnv {
    inner: Rc<Inner>,
}

/// A container the drill targets.
#[derive(Clone, Debug)]
struct Target {
    id: String,
    /// The network its address is on.
    network: String,
    /// Its names on that network, restored when it is reconnected.
    aliases: Vec<String>,
    /// The node it runs on, if nodes are declared.
    node: Option<String>,
}

/// What faults and their guards share with the environment.
struct Inner {
    stack: DockerStack,
    /// This firedrill executable, mounted into every provisioned container at
    /// [`EXE_IN_CONTAINER`], so the reference stack's service runs the build that drills it.
    exe: Option<std::path::PathBuf>,
    docker: Result<Docker, String>,
    run_id: String,
    network: String,
    targets: RefCell<HashMap<String, Target>>,
    addresses: RefCell<HashMap<String, String>>,
    provisioned: RefCell<Vec<ContainerAsync<GenericImage>>>,
    ledgers: RefCell<HashMap<usize, Rc<Ledger>>>,
    s3: RefCell<HashMap<usize, (String, probe::S3Client)>>,
    /// The background load of each SLO probe, the URL it loads and the probe's name.
    slo: RefCell<HashMap<usize, (String, String, crate::load::Background)>>,
    started: RefCell<Option<i64>>,
    /// Nodes nothing is scheduled on (drained).
    cordoned: RefCell<Vec<String>>,
    /// Containers replaced by others of the same name (a drained node's), kept for evidence.
    retired: RefCell<Vec<(String, Target)>>,
    /// The traffic surges injected, running or done.
    surges: RefCell<Vec<crate::load::Detached>>,
    /// Evictions under way (a drained node's containers, each stopping, then replaced).
    evictions: RefCell<Vec<tokio::task::JoinHandle<Result<(), String>>>>,
}

impl DockerEnv {
    /// An environment for `stack`; `run_id` names what it creates (`firedrill-<run_id>`).
    pub fn new(stack: DockerStack, run_id: &str) -> Self {
        let docker = Docker::connect_with_local_defaults().map_err(|e| e.to_string());
        let inner = Inner {
            stack,
            exe: std::env::current_exe().ok(),
            docker,
            run_id: run_id.to_string(),
            network: format!("firedrill-{run_id}"),
            targets: RefCell::default(),
            addresses: RefCell::default(),
            provisioned: RefCell::default(),
            ledgers: RefCell::default(),
            s3: RefCell::default(),
            slo: RefCell::default(),
            started: RefCell::default(),
            cordoned: RefCell::default(),
            retired: RefCell::default(),
            surges: RefCell::default(),
            evictions: RefCell::default(),
        };
        DockerEnv { inner: Rc::new(inner) }
    }

    /// The id its containers are labelled with (`firedrill.run`).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    async fn attach(&self, docker: &Docker) -> Result<(), EnvError> {
        for a in &self.inner.stack.attach {
            let fail = |why: String| EnvError::Prepare(format!("attached container `{}`: {why}", a.name));
            let id = match (&a.container, &a.compose) {
                (Some(name), _) => name.clone(),
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
                        .map_err(|e| fail(e.to_string()))?;
                    match found.as_slice() {
                        [one] => one.id.clone().unwrap_or_default(),
                        [] => {
                            return Err(fail(format!(
                                "no running container of Compose service {}/{}",
                                c.project, c.service
                            )))
                        }
                        many => {
                            return Err(fail(format!(
                                "Compose service {}/{} has {} running containers; name one with `container`",
                                c.project,
                                c.service,
                                many.len()
                            )))
                        }
                    }
                }
                (None, None) => unreachable!("checked on load"),
            };
            let info = docker.inspect_container(&id, None).await.map_err(|e| fail(e.to_string()))?;
            if !info.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                return Err(fail("it is not running".into()));
            }
            let networks = info.network_settings.and_then(|n| n.networks).unwrap_or_default();
            let Some((network, endpoint)) = networks.into_iter().next() else {
                return Err(fail("it is on no network".into()));
            };
            let target = Target {
                id: info.id.unwrap_or(id),
                network,
                aliases: endpoint.aliases.unwrap_or_default(),
                node: None,
            };
            self.inner.targets.borrow_mut().insert(a.name.clone(), target);
        }
        Ok(())
    }

    /// The probe's ledger and its connection string as of now.
    fn ledger(&self, probe: usize, spec: &Probe) -> Result<(Rc<Ledger>, String), String> {
        let Check::WriteLedger { table, dsn } = &spec.check else { return Err("not a write ledger".into()) };
        let ledger = self
            .inner
            .ledgers
            .borrow_mut()
            .entry(probe)
            .or_insert_with(|| Rc::new(Ledger::new(table, &self.inner.run_id)))
            .clone();
        Ok((ledger, self.inner.expand(dsn)?))
    }
}

impl Inner {
    /// `s` with every `${name}` replaced by that container's address and `${name:port}` by
    /// its address and port.
    fn expand(&self, s: &str) -> Result<String, String> {
        let addresses = self.addresses.borrow();
        expand(s, |name| addresses.get(name).cloned())
    }

    /// Each of `args` expanded (see [`Self::expand`]).
    fn expand_all(&self, args: &[String]) -> Result<Vec<String>, String> {
        args.iter().map(|a| self.expand(a)).collect()
    }

    /// Starts the container `spec` on `node`, named `<network>-<name>` and, for a replacement
    /// (`generation` > 0), `<network>-<name>-<generation>`. With `wait_ready` it returns once
    /// the container is ready; without, once it runs, as a scheduler's replacement would be
    /// started: the probes see when it is ready.
    async fn start(
        &self,
        spec: &ContainerSpec,
        node: Option<String>,
        generation: usize,
        wait_ready: bool,
    ) -> Result<(), String> {
        let fail = |why: String| format!("container `{}`: {why}", spec.name);
        let docker = self.docker()?;
        let (repo, tag) = split_image(&spec.image);
        // testcontainers would try to pull a missing image, which cannot work offline.
        if docker.inspect_image(&spec.image).await.is_err() {
            return Err(fail(format!(
                "image `{}` is not on this machine (scripts/setup-docker builds firedrill/base)",
                spec.image
            )));
        }
        let mut image = GenericImage::new(repo, tag);
        if let (Some(text), true) = (&spec.ready.log, wait_ready) {
            image = image.with_wait_for(WaitFor::message_on_either_std(text.as_bytes()));
        }
        let name = match generation {
            0 => format!("{}-{}", self.network, spec.name),
            n => format!("{}-{}-{n}", self.network, spec.name),
        };
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
        let container = request.start().await.map_err(|e| fail(e.to_string()))?;
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
        let every = Duration::from_millis(200);
        if let Some(port) = spec.ready.port {
            let address = self.expand(&format!("${{{}:{port}}}", spec.name)).map_err(fail)?;
            probe::until_ok(limit, every, || probe::tcp(&address))
                .await
                .map_err(|e| fail(format!("port {port} not ready within {}: {e}", spec.ready.timeout)))?;
        }
        if let Some(argv) = &spec.ready.command {
            probe::until_ok(limit, every, || async {
                match fault::exec(docker, &target.id, argv).await {
                    Ok(_) => Sample::ok(),
                    Err(e) => Sample::fail(e),
                }
            })
            .await
            .map_err(|e| fail(format!("`{}` did not succeed within {}: {e}", argv.join(" "), spec.ready.timeout)))?;
        }
        Ok(())
    }

    /// The node a new container goes on: none when it declares none, the declared one, or for
    /// `any` the uncordoned node with the fewest containers, counting those about to start
    /// there (`pending`), the first declared among equals.
    fn place(&self, declared: Option<&String>, pending: &[String]) -> Option<String> {
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

    /// The declared container `name`.
    fn spec(&self, name: &str) -> Result<&ContainerSpec, String> {
        self.stack.containers.iter().find(|c| c.name == name).ok_or_else(|| format!("no container `{name}`"))
    }

    /// Removes every container labelled with this drill's run id, and its network.
    async fn sweep(&self) -> Result<(), String> {
        let docker = self.docker()?;
        let filters = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={}", self.run_id)])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let left = docker.list_containers(Some(options)).await.map_err(|e| format!("listing containers: {e}"))?;
        let mut errors = Vec::new();
        for c in left {
            let id = c.id.unwrap_or_default();
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            if let Err(e) = docker.remove_container(&id, Some(options)).await {
                errors.push(format!("container {id}: {e}"));
            }
        }
        match docker.remove_network(&self.network).await {
            Ok(())
            | Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => errors.push(format!("network {}: {e}", self.network)),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn docker(&self) -> Result<&Docker, String> {
        self.docker.as_ref().map_err(|e| format!("cannot talk to the Docker Engine: {e}"))
    }

    fn target(&self, name: &str) -> Result<Target, String> {
        self.targets.borrow().get(name).cloned().ok_or_else(|| format!("no container `{name}`"))
    }

    /// Looks every target's address up again. A container that is down keeps its last known
    /// address, so probes fail against it rather than on a missing name.
    async fn refresh_addresses(&self) {
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
}

impl Environment for DockerEnv {
    type Guard = DockerGuard;

    fn virtual_time(&self) -> bool {
        false
    }

    fn check(&self, scenario: &Scenario) -> Vec<Problem> {
        let names: Vec<&str> = self
            .inner
            .stack
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .chain(self.inner.stack.attach.iter().map(|a| a.name.as_str()))
            .collect();
        let known = |name: &str| names.contains(&name);
        let unknown = |name: &str| {
            format!(
                "no container `{name}` in the environment; it has {}",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )
        };
        let mut problems = Vec::new();
        let at = scenario.positions.fault;
        let nodes = &self.inner.stack.nodes;
        check_fault(&scenario.fault, false, &mut |why| problems.push(Problem::new(at, why)), &known, &unknown, nodes);
        if let Fault::TrafficSurge { url, multiplier, .. } = &scenario.fault {
            match url {
                None => problems.push(Problem::new(
                    at,
                    "traffic_surge: `url` is needed in docker: the URL the surge's requests go to",
                )),
                Some(url) => {
                    if let Err(e) = expand(url, |name| known(name).then(String::new)) {
                        problems.push(Problem::new(at, format!("traffic_surge: {e}")));
                    }
                    let baseline =
                        scenario.probes.iter().any(|p| matches!(&p.check, Check::Slo { url: u, .. } if u == url));
                    if multiplier.is_some() && !baseline {
                        problems.push(Problem::new(at, format!("traffic_surge: a `multiplier` applies to the rate of an `slo` probe loading `{url}`, and there is none; add one or give `rate`")));
                    }
                }
            }
        }
        for (i, probe) in scenario.probes.iter().enumerate() {
            let at = scenario.positions.probes[i];
            for text in check_strings(&probe.check) {
                let missing = expand(text, |name| known(name).then(String::new));
                if let Err(e) = missing {
                    problems.push(Problem::new(at, format!("probe `{}`: {e}", probe.name)));
                }
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let at = scenario.positions.steps[i];
            match &step.action {
                StepAction::Run { container: Some(c), .. } if !known(c) => {
                    problems.push(Problem::new(at, format!("step `{}`: {}", step.name, unknown(c))));
                }
                StepAction::Start(name) => {
                    let standby = self.inner.stack.containers.iter().any(|c| c.name == *name && c.standby);
                    if !standby {
                        problems.push(Problem::new(
                            at,
                            format!(
                                "step `{}`: `start: {name}` needs a container `{name}` declared with `standby: true`",
                                step.name
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        if names.is_empty() {
            problems.push(Problem::new(
                scenario.positions.environment,
                "the docker environment declares no `containers` and no `attach`: there is nothing to drill",
            ));
        }
        problems
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        let docker = self.inner.docker().map_err(EnvError::Prepare)?;
        docker.ping().await.map_err(|e| {
            EnvError::Prepare(format!(
                "cannot reach the Docker Engine ({e}); is dockerd running? scripts/setup-docker starts it"
            ))
        })?;
        *self.inner.started.borrow_mut() = Some(jiff::Timestamp::now().as_second());
        self.attach(docker).await?;
        for spec in self.inner.stack.containers.iter().filter(|c| !c.standby) {
            let node = self.inner.place(spec.node.as_ref(), &[]);
            self.inner.start(spec, node, 0, true).await.map_err(EnvError::Prepare)?;
        }
        self.inner.refresh_addresses().await;
        Ok(())
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        let sample = async {
            Ok::<_, String>(match &spec.check {
                Check::Http { url, method, expect_status, body_contains, max_latency } => {
                    let url = self.inner.expand(url)?;
                    probe::http(method.as_str(), &url, *expect_status, body_contains.as_deref(), *max_latency).await
                }
                Check::Tcp { address } => probe::tcp(&self.inner.expand(address)?).await,
                Check::Sql { dsn, query } => probe::sql(&self.inner.expand(dsn)?, query).await,
                Check::Command { argv } => probe::command(&self.inner.expand_all(argv)?).await,
                Check::S3 { endpoint, bucket, region } => {
                    let endpoint = self.inner.expand(endpoint)?;
                    let client = {
                        let mut clients = self.inner.s3.borrow_mut();
                        let entry = clients
                            .entry(probe)
                            .or_insert_with(|| (endpoint.clone(), probe::s3_client(&endpoint, region)));
                        if entry.0 != endpoint {
                            *entry = (endpoint.clone(), probe::s3_client(&endpoint, region));
                        }
                        entry.1.clone()
                    };
                    probe::s3(&client, bucket).await
                }
                Check::Slo { url, rate, p95, p99, max_error_percent, window, request_timeout } => {
                    // Started at the first sample, and again when the URL's container has
                    // moved (a restart or reconnect may give it a new address).
                    let url = self.inner.expand(url)?;
                    let current = self.inner.slo.borrow().get(&probe).is_some_and(|(u, _, _)| *u == url);
                    if !current {
                        // Until the drill ends, which stops it: the longest drill is a week.
                        let week = Duration::from_secs(8 * 86400);
                        let plan = crate::load::Plan::steady(&url, rate.per_sec(), week, 256, request_timeout.0);
                        let load = crate::load::Background::start(&plan, window.0).map_err(|e| e.to_string())?;
                        self.inner.slo.borrow_mut().insert(probe, (url, spec.name.clone(), load));
                    }
                    let w = self.inner.slo.borrow()[&probe].2.window();
                    slo_sample(&w, *p95, *p99, *max_error_percent, *window)
                }
                Check::WriteLedger { .. } => Sample::fail("a write ledger is written, not sampled"),
            })
        };
        sample.await.unwrap_or_else(Sample::fail)
    }

    async fn write(&self, probe: usize, spec: &Probe, seq: u64) -> Result<(), String> {
        let (ledger, dsn) = self.ledger(probe, spec)?;
        ledger.write(&dsn, seq).await.map_err(|e| error_chain(&e))
    }

    async fn read_back(&self, probe: usize, spec: &Probe, acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        let (ledger, dsn) = self.ledger(probe, spec).map_err(EnvError::ReadBack)?;
        ledger.missing(&dsn, acked).await.map_err(|e| EnvError::ReadBack(error_chain(&e)))
    }

    async fn inject(&self, fault: &Fault) -> Result<DockerGuard, EnvError> {
        let guard = fault::inject(&self.inner, fault).await;
        self.inner.refresh_addresses().await;
        guard
    }

    async fn run_step(&self, _index: usize, step: &ResolvedStep) -> Result<Option<String>, String> {
        match &step.action {
            StepAction::Run { argv, container: Some(name) } => {
                let target = self.inner.target(name)?;
                fault::exec(self.inner.docker()?, &target.id, argv).await
            }
            StepAction::Run { argv, container: None } => {
                firedrill_net::process::run(&self.inner.expand_all(argv)?).await.map_err(|e| error_chain(&e))
            }
            StepAction::Manual(text) => super::confirm_manual(&step.name, text).await,
            StepAction::Start(name) => {
                let spec = self.inner.spec(name)?;
                if self.inner.targets.borrow().contains_key(name) {
                    return Err(format!("container `{name}` is already started"));
                }
                let node = self.inner.place(spec.node.as_ref(), &[]);
                self.inner.start(spec, node.clone(), 0, true).await?;
                Ok(Some(match node {
                    Some(node) => format!("{name} ready on {node}"),
                    None => format!("{name} ready"),
                }))
            }
        }
    }

    async fn evidence(&self) -> Vec<Evidence> {
        let Ok(docker) = self.inner.docker() else { return Vec::new() };
        let since = self.inner.started.borrow().unwrap_or(0);
        let limit = self.inner.stack.log_limit.unwrap_or(DEFAULT_LOG_LIMIT) as usize;
        let mut names: Vec<(String, Target)> =
            self.inner.targets.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        names.extend(self.inner.retired.borrow().iter().cloned());
        names.sort_by(|a, b| a.0.cmp(&b.0));
        // Where it ran, when nodes are declared: a drain's evidence shows the move.
        let names = names.into_iter().map(|(name, t)| match &t.node {
            Some(node) => (format!("{name} ({node})"), t),
            None => (name, t),
        });
        let mut evidence = Vec::new();
        for (name, target) in names {
            let options = LogsOptions {
                stdout: true,
                stderr: true,
                since: since as i32,
                tail: "all".into(),
                ..Default::default()
            };
            let mut stream = docker.logs(&target.id, Some(options));
            let mut bytes = Vec::new();
            let mut truncated = false;
            while let Some(Ok(chunk)) = stream.next().await {
                bytes.extend_from_slice(&chunk.into_bytes());
                if bytes.len() > 2 * limit {
                    bytes.drain(..bytes.len() - limit);
                    truncated = true;
                }
            }
            if bytes.len() > limit {
                bytes.drain(..bytes.len() - limit);
                truncated = true;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            evidence.push(Evidence { source: name, text, truncated });
        }
        // What the users' traffic met, second by second: the SLO probes' steady load and the
        // surges on top of it.
        let mut slo: Vec<_> = self
            .inner
            .slo
            .borrow()
            .iter()
            .map(|(i, (_, name, load))| {
                let report = load.report();
                // It ran until now, not for the week it was planned for.
                let mut plan = load.plan().clone();
                if let crate::load::Model::Open(stages) = &mut plan.model {
                    for stage in stages {
                        stage.duration = stage.duration.min(Duration::from_secs_f64(report.elapsed_s));
                    }
                }
                (*i, name.clone(), crate::load::describe(&plan, &report))
            })
            .collect();
        slo.sort_by_key(|s| s.0);
        for (_, name, text) in slo {
            evidence.push(Evidence { source: format!("load of probe `{name}`"), text, truncated: false });
        }
        for surge in self.inner.surges.borrow_mut().iter_mut() {
            let report = surge.stop();
            let text = crate::load::describe(surge.plan(), &report);
            evidence.push(Evidence { source: "traffic_surge".into(), text, truncated: false });
        }
        evidence
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        self.inner.slo.borrow_mut().clear();
        // An eviction cut short leaves at most a labelled container, which the sweep removes.
        for eviction in self.inner.evictions.borrow_mut().drain(..) {
            eviction.abort();
        }
        let containers: Vec<_> = self.inner.provisioned.borrow_mut().drain(..).collect();
        let mut errors = Vec::new();
        for container in containers.into_iter().rev() {
            let id = container.id().to_string();
            if let Err(e) = container.rm().await {
                errors.push(format!("container {id}: {e}"));
            }
        }
        // Then whatever else carries this drill's label: a container whose start was cut
        // short by Ctrl-C, a network helper whose removal failed.
        if let Err(e) = self.inner.sweep().await {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EnvError::Teardown(errors.join("; ")))
        }
    }
}

impl Drop for Inner {
    /// A drill that did not reach its teardown (a panic) still removes what it started:
    /// testcontainers removes a container when its handle drops, which needs a runtime.
    fn drop(&mut self) {
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

/// Whether the requests of the window met the objective.
fn slo_sample(
    w: &crate::load::stats::Window,
    p95: Option<crate::duration::Dur>,
    p99: Option<crate::duration::Dur>,
    max_error_percent: f64,
    window: crate::duration::Dur,
) -> Sample {
    if w.completed == 0 {
        return Sample::fail(format!("no request completed in the last {window}"));
    }
    let errors = w.errors as f64 * 100.0 / w.completed as f64;
    if errors > max_error_percent {
        return Sample::fail(format!("{errors:.1}% of requests failed (objective: under {max_error_percent}%)"));
    }
    for (name, objective, measured) in [("p95", p95, w.p95_ms), ("p99", p99, w.p99_ms)] {
        if let (Some(objective), Some(ms)) = (objective, measured) {
            if ms > objective.0.as_secs_f64() * 1000.0 {
                return Sample::fail(format!("{name} latency {ms:.0} ms (objective: under {objective})"));
            }
        }
    }
    Sample::ok()
}

/// `image:tag` split, `latest` when no tag is given (a `:` in a registry host is no tag).
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// Replaces `${name}` and `${name:port}` using `address`; an unknown name is an error.
fn expand(s: &str, address: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("`{s}`: `${{` is not closed by `}}`"))?;
        let (name, port) = match after[..end].split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (&after[..end], None),
        };
        let ip = address(name).ok_or_else(|| format!("`{s}` names no container `{name}` of the environment"))?;
        out.push_str(&ip);
        if let Some(port) = port {
            out.push(':');
            out.push_str(port);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The strings of a check that may name containers.
fn check_strings(check: &Check) -> Vec<&str> {
    match check {
        Check::Http { url, .. } => vec![url],
        Check::Tcp { address } => vec![address],
        Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. } => vec![dsn],
        Check::S3 { endpoint, .. } => vec![endpoint],
        Check::Slo { url, .. } => vec![url],
        Check::Command { argv } => argv.iter().map(String::as_str).collect(),
    }
}

/// Problems with a fault in this environment: a simulated-stack fault, an unknown container,
/// a duration inside a sequence.
fn check_fault(
    fault: &Fault,
    in_sequence: bool,
    problem: &mut dyn FnMut(String),
    known: &dyn Fn(&str) -> bool,
    unknown: &dyn Fn(&str) -> String,
    nodes: &[String],
) {
    let kind = fault.kind();
    match fault {
        Fault::ContainerStop { target, .. }
        | Fault::ContainerKill { target, .. }
        | Fault::ContainerPause { target, .. }
        | Fault::ContainerRestart { target, .. }
        | Fault::NetworkDisconnect { target, .. } => {
            if !known(target) {
                problem(format!("{kind}: {}", unknown(target)));
            }
        }
        Fault::NetworkBlackhole { target, peer, .. } => {
            for name in std::iter::once(target).chain(peer) {
                if !known(name) {
                    problem(format!("{kind}: {}", unknown(name)));
                }
            }
        }
        Fault::Sequence { faults } => {
            if faults.is_empty() {
                problem("sequence: `faults` is empty".into());
            }
            for entry in faults {
                check_fault(&entry.fault, true, problem, known, unknown, nodes);
            }
        }
        Fault::NodeDrain { node, .. } => {
            if !nodes.contains(node) {
                let declared =
                    if nodes.is_empty() { "declares none".to_string() } else { format!("has {}", nodes.join(", ")) };
                problem(format!("node_drain: no node `{node}` in the environment's `nodes`; it {declared}"));
            } else if nodes.len() < 2 {
                problem(format!("node_drain: `{node}` is the only node; its workloads would have nowhere to go"));
            }
        }
        Fault::TrafficSurge { .. } => {}
        Fault::DbFailover { .. } | Fault::S3Block { .. } => {
            problem(format!("`{kind}` acts on the simulated stack; in docker the database's or object store's container is faulted: container_kill (a crashed primary), network_blackhole (an unreachable store)"));
        }
    }
    if in_sequence && fault.duration().is_some() {
        problem(format!(
            "{kind} in a sequence: `duration` is not supported there; the sequence's faults are reverted together"
        ));
    }
    if let Fault::ContainerKill { signal, .. } = fault {
        if !signal.chars().all(|c| c.is_ascii_alphanumeric()) || signal.is_empty() {
            problem(format!("container_kill: `{signal}` is not a signal name"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_spreads_over_uncordoned_nodes() {
        let nodes = ["node-a", "node-b", "node-c"].map(String::from).to_vec();
        let env = DockerEnv::new(DockerStack { nodes, ..Default::default() }, "test");
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
    fn expands_container_addresses() {
        let addr = |n: &str| (n == "db").then(|| "172.20.0.5".to_string());
        assert_eq!(expand("host=${db} port=5432", addr).unwrap(), "host=172.20.0.5 port=5432");
        assert_eq!(expand("http://${db:8080}/health", addr).unwrap(), "http://172.20.0.5:8080/health");
        assert_eq!(expand("plain", addr).unwrap(), "plain");
        assert!(expand("${web:80}", addr).unwrap_err().contains("no container `web`"));
        assert!(expand("${db", addr).unwrap_err().contains("not closed"));
    }

    #[test]
    fn an_slo_sample_judges_errors_then_latency() {
        use crate::duration::Dur;
        use crate::load::stats::Window;
        let w = |completed, errors, p95| Window { completed, errors, p95_ms: Some(p95), p99_ms: Some(p95 * 2.0) };
        let judge = |w: &Window| slo_sample(w, Some(Dur::millis(300)), None, 1.0, Dur::secs(5));
        assert!(judge(&w(100, 1, 250.0)).ok);
        assert_eq!(judge(&w(100, 2, 250.0)).detail.unwrap(), "2.0% of requests failed (objective: under 1%)");
        assert_eq!(judge(&w(100, 0, 412.0)).detail.unwrap(), "p95 latency 412 ms (objective: under 300ms)");
        let none = Window { completed: 0, errors: 0, p95_ms: None, p99_ms: None };
        assert_eq!(judge(&none).detail.unwrap(), "no request completed in the last 5s");
    }

    #[test]
    fn splits_image_references() {
        assert_eq!(split_image("firedrill/base:latest"), ("firedrill/base".into(), "latest".into()));
        assert_eq!(split_image("firedrill/base"), ("firedrill/base".into(), "latest".into()));
        assert_eq!(split_image("localhost:5000/app"), ("localhost:5000/app".into(), "latest".into()));
    }
}
