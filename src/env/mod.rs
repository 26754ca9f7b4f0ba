//! Environments: where a drill runs. The engine knows them only through [`Environment`].
//!
//! The scenario's `environment.kind` picks the implementation through the closed enum
//! [`AnyEnvironment`]: `sim` always, `docker` with the `docker` feature, `kube` with the
//! `kube` feature.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "docker")]
pub mod docker;
pub mod dry_run;
#[cfg(feature = "live")]
pub mod here;
#[cfg(feature = "kube")]
pub mod kube;
#[cfg(feature = "live")]
pub mod load;
pub mod sim;

use std::future::Future;

pub use crate::sample::{Evidence, Sample};
use crate::scenario::{EnvironmentSpec, Fault, Probe, Problem, ResolvedStep, Scenario};

/// The label every container, network or Kubernetes object firedrill creates carries, naming
/// the run: what `firedrill recover` finds a dead drill's leftovers by.
pub const RUN_LABEL: &str = "firedrill.run";

/// The cause of an [`EnvError`]: each environment has its own error type, and the engine
/// records the chain ([`crate::text::error_chain`]), so the cause is kept whole rather than
/// flattened to text.
pub type EnvCause = Box<dyn std::error::Error + Send + Sync>;

/// Why an environment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The environment could not be set up or reached.
    #[error("failed to prepare the environment")]
    Prepare(#[source] EnvCause),
    /// The fault could not be injected.
    #[error("failed to inject the fault")]
    Inject(#[source] EnvCause),
    /// The fault could not be reverted: the system may still be faulted.
    #[error("failed to revert the fault")]
    Revert(#[source] EnvCause),
    /// A write ledger's record was not acknowledged (the engine counts it as unacknowledged).
    #[error("failed to write the ledger record")]
    Write(#[source] EnvCause),
    /// A procedure step failed. The message is the cause's own, since a step's detail in the
    /// timeline reads as the command or the operator put it ("exit status: 1 (…)").
    #[error("{0}")]
    Step(#[source] EnvCause),
    /// A write ledger could not be read back.
    #[error("failed to read the write ledger back")]
    ReadBack(#[source] EnvCause),
    /// What the environment created could not all be removed.
    #[error("failed to remove what the drill created")]
    Teardown(#[source] EnvCause),
}

/// What the system answered to a change the environment made, and when: a timeline event at
/// its own time ([`Environment::answers`]).
#[derive(Clone, Debug)]
pub struct Answered {
    /// When the answer came.
    pub at: tokio::time::Instant,
    /// Who answered ("kube API").
    pub source: String,
    /// The answer, in words.
    pub text: String,
}

/// A fault in effect. Reverting is explicit and async because undoing a real fault is I/O;
/// it must be safe to call more than once.
pub trait FaultGuard {
    /// Undoes the fault. Calling it again after success does nothing.
    fn revert(&mut self) -> impl Future<Output = Result<(), EnvError>>;
}

/// What the engine needs from a place a drill runs in.
///
/// Methods take `&self` because probes, writes and steps run concurrently; implementations
/// keep their mutable state inside. None of them adds a timeout: the engine bounds every call.
pub trait Environment {
    /// The injected-fault handle.
    type Guard: FaultGuard;

    /// Whether the environment runs in virtual time (the engine then runs on a paused clock).
    fn virtual_time(&self) -> bool;

    /// Problems with running this scenario here (an unsupported probe, an unknown node), with
    /// positions in the scenario file. Empty when the scenario can run.
    fn check(&self, scenario: &Scenario) -> Vec<Problem>;

    /// Provisions or attaches to what the drill needs.
    fn prepare(&self) -> impl Future<Output = Result<(), EnvError>>;

    /// Takes one sample of an availability probe.
    fn sample(&self, probe: usize, spec: &Probe) -> impl Future<Output = Sample>;

    /// Writes ledger record `seq`; `Ok` means the system acknowledged it.
    fn write(&self, probe: usize, spec: &Probe, seq: u64) -> impl Future<Output = Result<(), EnvError>>;

    /// Reads the ledger back and returns which of the `acked` records are missing.
    fn read_back(&self, probe: usize, spec: &Probe, acked: &[u64]) -> impl Future<Output = Result<Vec<u64>, EnvError>>;

    /// Injects the fault and returns once it is confirmed active. On error nothing may stay
    /// injected: an implementation undoes its partial work before it returns the error, since
    /// without a guard the engine has nothing to revert.
    fn inject(&self, fault: &Fault) -> impl Future<Output = Result<Self::Guard, EnvError>>;

    /// Carries out a procedure step; `Ok` with what it printed, `Err` with why it failed.
    fn run_step(&self, index: usize, step: &ResolvedStep) -> impl Future<Output = Result<Option<String>, EnvError>>;

    /// What the system printed during the drill (container logs), taken before teardown.
    fn evidence(&self) -> impl Future<Output = Vec<Evidence>>;

    /// What the system answered to the changes the environment made (injecting, reverting),
    /// each at its time, taken before teardown; the engine records them in the timeline. An
    /// environment whose changes are not answered by a system of their own has none.
    fn answers(&self) -> Vec<Answered> {
        Vec::new()
    }

    /// Removes everything the environment created. Never removes what it did not create.
    fn teardown(&self) -> impl Future<Output = Result<(), EnvError>>;
}

/// The environments firedrill has, chosen by the scenario.
pub enum AnyEnvironment {
    /// The simulated stack.
    Sim(sim::SimEnv),
    /// Real containers.
    #[cfg(feature = "docker")]
    Docker(docker::DockerEnv),
    /// A Kubernetes cluster.
    #[cfg(feature = "kube")]
    Kube(kube::KubeEnv),
    /// An AWS account and region.
    #[cfg(feature = "aws")]
    Aws(aws::AwsEnv),
}

impl AnyEnvironment {
    /// The environment a scenario asks for, seeded for reproducible randomness, journalling
    /// its changes under `state_dir` ([`crate::journal`]); a problem at the scenario's
    /// `environment` when this build of firedrill does not have it.
    pub fn for_scenario(scenario: &Scenario, seed: u64, state_dir: &std::path::Path) -> Result<Self, Problem> {
        match &scenario.environment {
            EnvironmentSpec::Sim(stack) => Ok(AnyEnvironment::Sim(sim::SimEnv::new(stack.clone(), seed))),
            #[cfg(feature = "docker")]
            EnvironmentSpec::Docker(stack) => {
                let drill = docker::DrillInfo {
                    scenario: scenario.name.clone(),
                    path: scenario.path.clone(),
                    deadline: scenario.deadline.0,
                    // Absolute: the dead man's switch gets it as a bind mount.
                    journal_dir: std::path::absolute(crate::journal::journal_dir(state_dir))
                        .unwrap_or_else(|_| crate::journal::journal_dir(state_dir)),
                };
                let env = docker::DockerEnv::new(stack.clone(), &run_id(seed), drill);
                Ok(AnyEnvironment::Docker(env.with_max_blast_radius(scenario.max_blast_radius)))
            }
            #[cfg(not(feature = "docker"))]
            EnvironmentSpec::Docker(_) => {
                let _ = state_dir;
                Err(not_built_in(scenario, "docker"))
            }
            #[cfg(feature = "kube")]
            EnvironmentSpec::Kube(cluster) => {
                let journal_dir = crate::journal::journal_dir(state_dir);
                Ok(AnyEnvironment::Kube(kube::KubeEnv::new(cluster.clone(), scenario, &run_id(seed), journal_dir)))
            }
            #[cfg(not(feature = "kube"))]
            EnvironmentSpec::Kube(_) => Err(not_built_in(scenario, "kube")),
            #[cfg(feature = "aws")]
            EnvironmentSpec::Aws(account) => {
                let journal_dir = crate::journal::journal_dir(state_dir);
                Ok(AnyEnvironment::Aws(aws::AwsEnv::new(account.clone(), scenario, &run_id(seed), journal_dir)))
            }
            #[cfg(not(feature = "aws"))]
            EnvironmentSpec::Aws(_) => Err(not_built_in(scenario, "aws")),
        }
    }
}

/// The problem of a scenario whose environment was left out of this build.
#[allow(dead_code, reason = "used only when a feature is off")]
fn not_built_in(scenario: &Scenario, kind: &str) -> Problem {
    Problem::new(
        scenario.positions.environment,
        format!("the `{kind}` environment is not built into this firedrill: build it with `--features {kind}`"),
    )
}

/// A short id, unique on this machine for practical purposes, naming what one drill creates.
#[cfg(any(feature = "docker", feature = "kube", feature = "aws"))]
fn run_id(seed: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut rng = crate::rng::Rng::new(seed ^ nanos as u64 ^ (std::process::id() as u64) << 32);
    format!("{:08x}", rng.next_u64() as u32)
}

/// Why a manual step was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ManualStepError {
    /// Standard input is closed: nobody is there to confirm, and waiting would hang.
    #[error("no operator confirmed the step (standard input is closed)")]
    NoOperator,
    /// The operator typed `fail`.
    #[error("the operator reported the step failed")]
    Failed,
}

/// Shows a manual step's instruction and waits for the operator to confirm it on standard
/// input; with no operator there (input closed), the step fails rather than hangs.
pub async fn confirm_manual(name: &str, text: &str) -> Result<Option<String>, ManualStepError> {
    use tokio::io::AsyncBufReadExt;
    eprintln!("\nMANUAL STEP `{name}`: {text}\n  press Enter when done (type `fail` and Enter if it failed)");
    let mut line = String::new();
    let read = tokio::io::BufReader::new(tokio::io::stdin()).read_line(&mut line).await;
    match read {
        Ok(0) | Err(_) => Err(ManualStepError::NoOperator),
        Ok(_) if line.trim().eq_ignore_ascii_case("fail") => Err(ManualStepError::Failed),
        Ok(_) => Ok(Some("confirmed by the operator".into())),
    }
}
