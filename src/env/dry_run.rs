//! What a drill would touch, found without changing anything (`firedrill run --dry-run`).
//!
//! The main type is [`DryRun`]: each environment lists what one drill of a scenario would
//! create, attach to, fault and run, and what it is missing; the command line prints it.

use super::AnyEnvironment;
use crate::scenario::{statically_affected, Fault, Scenario};

/// What one drill of a scenario would touch, in the order the drill touches it.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Each thing touched.
    pub touches: Vec<Touch>,
    /// The containers the fault affects (in `sim`, the simulated ones), as far as known before
    /// the drill: its blast radius.
    pub blast_radius: Vec<String>,
    /// What the drill would need and is not there (an attached container, an image): it could
    /// not run.
    pub missing: Vec<String>,
}

/// One thing a drill would touch.
#[derive(Debug)]
pub struct Touch {
    /// What kind of thing.
    pub kind: TouchKind,
    /// What exactly, in one line.
    pub detail: String,
}

/// The kinds of things a drill touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchKind {
    /// Nothing outside firedrill's own process (the simulation).
    Process,
    /// A file firedrill writes outside the reports folder (the revert journal).
    Journal,
    /// A network created for the drill.
    Network,
    /// A container attached to: faulted and reverted, never removed.
    Attach,
    /// A container started for the drill and removed after it.
    Start,
    /// A container declared as spare capacity, started only by a step.
    Standby,
    /// A fault injected, with what it affects.
    Fault,
    /// A procedure step: what it runs, and where.
    Step,
    /// A probe: what it checks.
    Probe,
    /// Requests sent at a rate (an SLO probe's load, a traffic surge).
    Load,
}

impl TouchKind {
    /// The kind's word, as the dry run prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchKind::Process => "process",
            TouchKind::Journal => "journal",
            TouchKind::Network => "network",
            TouchKind::Attach => "attach",
            TouchKind::Start => "start",
            TouchKind::Standby => "standby",
            TouchKind::Fault => "fault",
            TouchKind::Step => "step",
            TouchKind::Probe => "probe",
            TouchKind::Load => "load",
        }
    }
}

impl DryRun {
    /// Adds one thing touched.
    pub(crate) fn touch(&mut self, kind: TouchKind, detail: impl Into<String>) {
        self.touches.push(Touch { kind, detail: detail.into() });
    }
}

impl AnyEnvironment {
    /// What a drill of `scenario` would touch here, found without changing anything: in
    /// `docker`, what the engine has is looked up (read-only) but nothing is created.
    pub fn dry_run(&self, scenario: &Scenario) -> DryRun {
        match self {
            AnyEnvironment::Sim(_) => sim_dry_run(scenario),
            #[cfg(feature = "docker")]
            AnyEnvironment::Docker(env) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(env.dry_run(scenario)),
                Err(e) => DryRun { missing: vec![format!("failed to start the runtime: {e}")], ..DryRun::default() },
            },
            #[cfg(feature = "kube")]
            AnyEnvironment::Kube(env) => env.dry_run(scenario),
            #[cfg(feature = "aws")]
            AnyEnvironment::Aws(env) => env.dry_run(scenario),
        }
    }
}

/// The faults a drill injects one after the other: a sequence's, or the one fault.
pub fn each_fault(fault: &Fault) -> Vec<&Fault> {
    match fault {
        Fault::Sequence { faults } => faults.iter().map(|e| &e.fault).collect(),
        one => vec![one],
    }
}

/// The simulation touches nothing outside the process: the fault and steps act on the model.
fn sim_dry_run(scenario: &Scenario) -> DryRun {
    let mut run = DryRun::default();
    run.touch(
        TouchKind::Process,
        "nothing outside this process: the stack is simulated in memory, and no command or request is run",
    );
    for fault in each_fault(&scenario.fault) {
        let affected = statically_affected(&scenario.environment, fault);
        let affects = if affected.is_empty() { "no simulated container".to_string() } else { affected.join(", ") };
        run.touch(TouchKind::Fault, format!("{} (simulated): affects {affects}", fault.describe()));
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        let effect = step.sim_effect.as_str();
        run.touch(TouchKind::Step, format!("{} `{}`: simulated (effect: {effect}); nothing is run", i + 1, step.name));
    }
    for probe in &scenario.probes {
        run.touch(TouchKind::Probe, format!("{}: {} (simulated)", probe.name, probe.check.kind()));
    }
    run.blast_radius = statically_affected(&scenario.environment, &scenario.fault);
    run
}
