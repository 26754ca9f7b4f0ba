//! The `docker` environment: real containers on this machine's Docker Engine.
//!
//! Provisioned containers are started through testcontainers on a private network made for
//! the drill, and removed afterwards; attached containers (by name or Compose service) are
//! only ever faulted and reverted, never removed. Probes reach containers at their addresses
//! on their network, looked up again after every fault and revert, because a container that is
//! reconnected or restarted may come back elsewhere; a published port would not survive a
//! network disconnect.
//!
//! [`DockerEnv`] holds the drill's state in one `Inner`, shared with the fault guards, so that
//! a guard can revert after the environment moved on; each seam of the work is a module of
//! its own: `checks` (load time), `containers` (start, attach, place, remove), `expansion`
//! (`${name}`), `probes` (the SLO probes' load is [`crate::env::load`]'s), `fault` (with `drain`), `blast`
//! (`max_blast_radius`), `dry_run` and `evidence`.

mod blast;
mod changes;
mod checks;
mod containers;
mod drain;
mod dry_run;
mod error;
mod evidence;
mod expansion;
mod fault;
mod probes;
pub mod undo;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use testcontainers::bollard::Docker;
use testcontainers::{ContainerAsync, GenericImage};

pub use error::DockerError;
pub use expansion::ExpandError;
pub use fault::DockerGuard;

use super::{Answered, EnvError, Environment, Evidence, Sample};
use crate::probe::{self, ledger::Ledger};
use crate::scenario::{ContainerSpec, DockerStack, Fault, Probe, Problem, ResolvedStep, Scenario, StepAction};

pub use super::RUN_LABEL;
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

/// The drill an environment is for, as its journal names it.
pub struct DrillInfo {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file.
    pub path: std::path::PathBuf,
    /// The drill's deadline: when a fault without a duration is lifted by its dead man's
    /// switch if firedrill is no longer there to lift it.
    pub deadline: std::time::Duration,
    /// Where the revert journal is written.
    pub journal_dir: std::path::PathBuf,
}

#[cfg(test)]
impl DrillInfo {
    /// A drill for unit tests that never reach the engine, so never journal.
    pub(super) fn unused() -> Self {
        DrillInfo {
            scenario: "test".into(),
            path: "test.yaml".into(),
            deadline: std::time::Duration::from_secs(60),
            journal_dir: std::env::temp_dir(),
        }
    }
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
    drill: DrillInfo,
    /// The revert journal, from the start of `prepare`.
    journal: RefCell<Option<crate::journal::Journal>>,
    /// What the drill created (containers, its network): journal entries undone at teardown.
    created: RefCell<Vec<(u64, crate::journal::Undo)>>,
    /// This firedrill executable, mounted into every provisioned container at
    /// [`EXE_IN_CONTAINER`], so the reference stack's service runs the build that drills it.
    exe: Option<std::path::PathBuf>,
    docker: Result<Docker, Arc<testcontainers::bollard::errors::Error>>,
    run_id: String,
    network: String,
    targets: RefCell<HashMap<String, Target>>,
    addresses: RefCell<HashMap<String, String>>,
    provisioned: RefCell<Vec<ContainerAsync<GenericImage>>>,
    ledgers: RefCell<HashMap<usize, Rc<Ledger>>>,
    /// The `dns` probes' watches and the pooled `sql` probes' connections.
    held: probe::held::HeldProbes,
    /// Each `s3` probe's client, the endpoint it was made for, and the bucket it probes.
    s3: RefCell<HashMap<usize, (String, String, probe::S3Client)>>,
    /// The SLO probes' steady load and the traffic surges.
    loads: crate::env::load::Loads,
    started: RefCell<Option<i64>>,
    /// Nodes nothing is scheduled on (drained).
    cordoned: RefCell<Vec<String>>,
    /// Containers replaced by others of the same name (a drained node's), kept for evidence.
    retired: RefCell<Vec<(String, Target)>>,
    /// Evictions under way (a drained node's containers, each stopping, then replaced).
    evictions: RefCell<Vec<tokio::task::JoinHandle<Result<(), DockerError>>>>,
    /// `max_blast_radius` and what the drill has affected.
    blast: blast::BlastRadius,
}

impl DockerEnv {
    /// An environment for `stack`; `run_id` names what it creates (`firedrill-<run_id>`).
    pub fn new(stack: DockerStack, run_id: &str, drill: DrillInfo) -> Self {
        let inner = Inner {
            stack,
            drill,
            journal: RefCell::default(),
            created: RefCell::default(),
            exe: std::env::current_exe().ok(),
            docker: Docker::connect_with_local_defaults().map_err(Arc::new),
            run_id: run_id.to_string(),
            network: format!("firedrill-{run_id}"),
            targets: RefCell::default(),
            addresses: RefCell::default(),
            provisioned: RefCell::default(),
            ledgers: RefCell::default(),
            held: Default::default(),
            s3: RefCell::default(),
            loads: Default::default(),
            started: RefCell::default(),
            cordoned: RefCell::default(),
            retired: RefCell::default(),
            evictions: RefCell::default(),
            blast: blast::BlastRadius::default(),
        };
        DockerEnv { inner: Rc::new(inner) }
    }

    /// Refuses faults that would bring the containers the drill affects to more than `limit`.
    pub fn with_max_blast_radius(self, limit: Option<u32>) -> Self {
        self.inner.blast.limit.set(limit);
        self
    }

    /// The id its containers are labelled with (`firedrill.run`).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }
}

impl Inner {
    /// The Docker Engine's client, or why there is none.
    fn docker(&self) -> Result<&Docker, DockerError> {
        self.docker.as_ref().map_err(|e| DockerError::Client(e.clone()))
    }

    /// The container `name` as it runs now.
    fn target(&self, name: &str) -> Result<Target, DockerError> {
        self.targets.borrow().get(name).cloned().ok_or_else(|| DockerError::NoContainer { name: name.into() })
    }

    /// The declared container `name`.
    fn spec(&self, name: &str) -> Result<&ContainerSpec, DockerError> {
        self.stack
            .containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| DockerError::NoContainer { name: name.into() })
    }

    /// Pings the engine, opens the journal, attaches, and starts every container that is not
    /// a standby, each ready before the next.
    async fn prepare(&self) -> Result<(), DockerError> {
        self.docker()?.ping().await.map_err(DockerError::Unreachable)?;
        self.open_journal().await?;
        *self.started.borrow_mut() = Some(jiff::Timestamp::now().as_second());
        self.attach().await?;
        let network = crate::journal::Undo::RemoveNetwork { network: self.network.clone() };
        let entry = self.journal(&format!("create network {}", self.network), network.clone(), None)?;
        self.created.borrow_mut().push((entry, network));
        for spec in self.stack.containers.iter().filter(|c| !c.standby) {
            let node = self.place(spec.node.as_ref(), &[]);
            self.start(spec, node, 0, true).await?;
        }
        self.refresh_addresses().await;
        Ok(())
    }

    /// Carries out a procedure step: a command in a container or on this machine, a manual
    /// step confirmed, or a standby started.
    async fn run_step(&self, step: &ResolvedStep) -> Result<Option<String>, DockerError> {
        match &step.action {
            StepAction::Run { argv, container: Some(name) } => {
                fault::exec(self.docker()?, &self.target(name)?.id, argv).await
            }
            StepAction::Run { argv, container: None } => {
                Ok(firedrill_net::process::run(&self.expand_all(argv)?).await?)
            }
            StepAction::Manual(text) => Ok(super::confirm_manual(&step.name, text).await?),
            StepAction::Start(name) => {
                let spec = self.spec(name)?;
                if self.targets.borrow().contains_key(name) {
                    return Err(DockerError::AlreadyStarted { name: name.clone() });
                }
                let node = self.place(spec.node.as_ref(), &[]);
                self.start(spec, node.clone(), 0, true).await?;
                Ok(Some(match node {
                    Some(node) => format!("{name} ready on {node}"),
                    None => format!("{name} ready"),
                }))
            }
            // Refused by `check`: a `kube` step acts on a cluster.
            StepAction::Kube(_) => Ok(None),
        }
    }
}

impl Environment for DockerEnv {
    type Guard = DockerGuard;

    fn virtual_time(&self) -> bool {
        false
    }

    fn check(&self, scenario: &Scenario) -> Vec<Problem> {
        checks::check(&self.inner.stack, scenario)
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        self.inner.prepare().await.map_err(|e| EnvError::Prepare(Box::new(e)))
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        self.inner.sample(probe, spec).await
    }

    async fn write(&self, probe: usize, spec: &Probe, seq: u64) -> Result<(), EnvError> {
        let written = async {
            let (ledger, dsn) = self.inner.ledger(probe, spec)?;
            Ok::<_, DockerError>(ledger.write(&dsn, seq).await?)
        };
        written.await.map_err(|e| EnvError::Write(Box::new(e)))
    }

    async fn read_back(&self, probe: usize, spec: &Probe, acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        let read = async {
            let (ledger, dsn) = self.inner.ledger(probe, spec)?;
            Ok::<_, DockerError>(ledger.missing(&dsn, acked).await?)
        };
        read.await.map_err(|e| EnvError::ReadBack(Box::new(e)))
    }

    async fn inject(&self, fault: &Fault) -> Result<DockerGuard, EnvError> {
        let guard = fault::inject(&self.inner, fault).await;
        self.inner.refresh_addresses().await;
        guard
    }

    async fn run_step(&self, _index: usize, step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        self.inner.run_step(step).await.map_err(|e| EnvError::Step(Box::new(e)))
    }

    async fn evidence(&self) -> Vec<Evidence> {
        self.inner.evidence().await
    }

    fn answers(&self) -> Vec<Answered> {
        let changes = self.inner.held.take_changes().into_iter();
        changes.map(|c| Answered { at: c.at, source: c.source, text: c.text }).collect()
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        self.inner.teardown().await.map_err(|e| EnvError::Teardown(Box::new(e)))
    }
}
