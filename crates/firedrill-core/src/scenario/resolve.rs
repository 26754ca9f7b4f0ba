//! The second stage of loading: a raw scenario that passed [`super::check`] resolved, every
//! default applied, into the [`Scenario`] the engine runs.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::check;
use super::error::{Pos, ScenarioError};
use super::model::*;
use crate::dist::Dist;
use crate::duration::Dur;
use crate::word::StepKind;

/// The default deadline: long enough for a tier-1 RTO of 15 minutes to be missed visibly.
const DEFAULT_DEADLINE: Dur = Dur::secs(30 * 60);

/// A validated scenario, every default applied.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, so a result names exactly what ran.
    pub sha256: String,
    /// Identifier.
    pub name: String,
    /// What the drill proves.
    pub description: String,
    /// Labels.
    pub tags: Vec<String>,
    /// Where it runs.
    pub environment: EnvironmentSpec,
    /// What the fault rehearses: declared, or inferred from the fault.
    pub disruption: Disruption,
    /// Whether `disruption` was written in the scenario rather than inferred.
    pub disruption_declared: bool,
    /// What is injected.
    pub fault: Fault,
    /// The probes, availability and data.
    pub probes: Vec<Probe>,
    /// `Automatic` (self-healing) or `Steps`.
    pub procedure_kind: ProcedureKind,
    /// Budget of the whole procedure.
    pub procedure_budget: Option<Dur>,
    /// Escalation threshold of the whole procedure (defaults to its budget).
    pub procedure_escalate_after: Option<Dur>,
    /// The ordered steps.
    pub steps: Vec<ResolvedStep>,
    /// RTO target: the disruption type's, else the plain one.
    pub rto: Option<Dur>,
    /// RPO target: the disruption type's, else the plain one.
    pub rpo: Option<Dur>,
    /// MTTD target.
    pub mttd: Option<Dur>,
    /// MTTR target.
    pub mttr: Option<Dur>,
    /// What counts as recovered.
    pub stability: Stability,
    /// How long after the fault recovery is awaited.
    pub deadline: Dur,
    /// The steady state before and after.
    pub steady_state: SteadyState,
    /// Safety limits.
    pub stop_conditions: Vec<StopCondition>,
    /// The most containers the drill may affect (`max_blast_radius`).
    pub max_blast_radius: Option<u32>,
    /// New information for a tabletop exercise's room, at set times.
    pub injects: Vec<Inject>,
    /// Strings masked in every output.
    pub redact: Vec<String>,
    /// Where things are in the file, for checks made later (by an environment).
    pub positions: Positions,
}

/// Source positions kept for diagnostics made after loading.
#[derive(Clone, Debug, Default)]
pub struct Positions {
    /// Of the `environment` section.
    pub environment: Pos,
    /// Of the `fault` section.
    pub fault: Pos,
    /// Of each probe, in order.
    pub probes: Vec<Pos>,
    /// Of each step, in order.
    pub steps: Vec<Pos>,
}

/// A procedure step, resolved.
#[derive(Clone, Debug)]
pub struct ResolvedStep {
    /// What the step does.
    pub name: String,
    /// Automated or manual.
    pub action: StepAction,
    /// Time budget.
    pub budget: Option<Dur>,
    /// Escalation threshold (defaults to the budget).
    pub escalate_after: Option<Dur>,
    /// Kill-after for automated steps.
    pub timeout: Option<Dur>,
    /// Its time target (`targets.steps`): done within this long of `t0`.
    pub target: Option<Dur>,
    /// How long it takes in the simulation: declared, or triangular around the budget (from
    /// half of it to a quarter over it); `None` when neither is known.
    pub sim_duration: Option<Dist>,
    /// What it does to the simulated stack.
    pub sim_effect: Effect,
    /// Replicas for `scale_out`.
    pub sim_replicas: u32,
}

/// How a step is carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// A command (argv), run on this machine or inside a container.
    Run {
        /// Program and arguments.
        argv: Vec<String>,
        /// The container it runs in (`docker`); `None`: this machine.
        container: Option<String>,
    },
    /// An instruction a person confirms.
    Manual(String),
    /// A standby container started (`docker`), done when it is ready.
    Start(String),
    /// A `kubectl`-shaped action (`kube`), through the API.
    Kube(KubeAction),
}

impl StepAction {
    /// Who carries the step out, as records store it.
    pub fn kind(&self) -> StepKind {
        match self {
            StepAction::Run { .. } | StepAction::Start(_) | StepAction::Kube(_) => StepKind::Automated,
            StepAction::Manual(_) => StepKind::Manual,
        }
    }

    /// The action in words, as reports and the tabletop console show it.
    pub fn describe(&self) -> String {
        match self {
            StepAction::Run { argv, container: None } => format!("run: {}", argv.join(" ")),
            StepAction::Run { argv, container: Some(c) } => format!("run in {c}: {}", argv.join(" ")),
            StepAction::Manual(text) => format!("manual: {text}"),
            StepAction::Start(name) => format!("start: {name}"),
            StepAction::Kube(action) => format!("kube: {}", action.describe()),
        }
    }
}

/// The simulated duration of a step that declares only a budget: triangular between half the
/// budget and a quarter over it, most likely at 80% of it. Runbook budgets are usually set
/// with some slack, and are sometimes overrun.
fn default_sim_duration(budget: Dur) -> Dist {
    let b = budget.0;
    Dist::Triangular { min: Dur(b.mul_f64(0.5)), mode: Dur(b.mul_f64(0.8)), max: Dur(b.mul_f64(1.25)) }
}

/// The deadline: declared, or [`DEFAULT_DEADLINE`].
pub(super) fn declared_or_default_deadline(raw: &RawScenario) -> Dur {
    raw.deadline.as_ref().map(|d| d.value).unwrap_or(DEFAULT_DEADLINE)
}

/// The scenario's disruption type: declared, or inferred from its fault.
pub(super) fn disruption(raw: &RawScenario) -> Disruption {
    raw.disruption.as_ref().map_or_else(|| raw.fault.value.disruption(), |d| d.value)
}

/// The RTO and RPO targets that score a drill of this disruption type: the type's block's,
/// each falling back to the plain target when the block leaves it out.
pub(super) fn scoring_rto_rpo(
    targets: &Targets,
    disruption: Disruption,
) -> (Option<&Spanned<Dur>>, Option<&Spanned<Dur>>) {
    let block = targets.by_disruption.get(disruption).map(|b| &b.value);
    (
        block.and_then(|b| b.rto.as_ref()).or(targets.rto.as_ref()),
        block.and_then(|b| b.rpo.as_ref()).or(targets.rpo.as_ref()),
    )
}

/// How a step is carried out; `None` unless it has exactly one of `run`, `manual`, `start` and
/// `kube`.
pub(super) fn step_action(step: &Step) -> Option<StepAction> {
    match (&step.run, &step.manual, &step.start, &step.kube) {
        (Some(argv), None, None, None) => {
            Some(StepAction::Run { argv: argv.clone(), container: step.container.clone() })
        }
        (None, Some(text), None, None) => Some(StepAction::Manual(text.clone())),
        (None, None, Some(name), None) => Some(StepAction::Start(name.clone())),
        (None, None, None, Some(action)) => Some(StepAction::Kube(action.clone())),
        _ => None,
    }
}

/// How long a step takes in the simulation: declared, or around its budget; `None` when
/// neither is known.
pub(super) fn sim_duration(step: &Step) -> Option<Dist> {
    let declared = step.sim.as_ref().and_then(|s| s.duration.as_ref()).map(|d| d.0.clone());
    declared.or(step.budget.as_ref().map(|b| default_sim_duration(b.value)))
}

/// Checks a raw scenario and, when nothing is wrong, resolves it: defaults applied, positions
/// kept for the checks an environment makes later.
pub(super) fn resolve(raw: RawScenario, text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    check::check(&raw, text, path)?;
    let deadline = declared_or_default_deadline(&raw);
    let disruption = disruption(&raw);
    let (rto, rpo) = scoring_rto_rpo(&raw.targets, disruption);
    let (rto, rpo) = (rto.map(|t| t.value), rpo.map(|t| t.value));
    let steps = raw.procedure.steps.iter().map(|s| resolve_step(&s.value, &raw.targets)).collect();
    let positions = Positions {
        environment: Pos::key(text, "environment"),
        fault: Pos::spanned(&raw.fault),
        probes: raw.probes.iter().map(Pos::spanned).collect(),
        steps: raw.procedure.steps.iter().map(Pos::spanned).collect(),
    };
    Ok(Scenario {
        path: path.to_path_buf(),
        sha256: crate::text::sha256(text.as_bytes()),
        name: raw.name.value,
        description: raw.description.trim().to_string(),
        tags: raw.tags,
        environment: resolve_environment(raw.environment),
        disruption,
        disruption_declared: raw.disruption.is_some(),
        fault: raw.fault.value,
        probes: raw.probes.into_iter().map(|p| resolve_probe(p.value, path)).collect(),
        procedure_kind: raw.procedure.kind,
        procedure_budget: raw.procedure.budget,
        procedure_escalate_after: raw.procedure.escalate_after.or(raw.procedure.budget),
        steps,
        rto,
        rpo,
        mttd: raw.targets.mttd.map(|t| t.value),
        mttr: raw.targets.mttr.map(|t| t.value),
        stability: raw.stability,
        deadline,
        steady_state: raw.steady_state,
        stop_conditions: raw.stop_conditions.into_iter().map(|s| s.value).collect(),
        max_blast_radius: raw.max_blast_radius.map(|m| m.value),
        injects: raw.injects.into_iter().map(|i| i.value).collect(),
        redact: raw.redact.into_iter().filter(|r| !r.is_empty()).collect(),
        positions,
    })
}

/// The environment with its defaults applied: a kube cluster's `namespaces` is at least its
/// `namespace`.
fn resolve_environment(environment: EnvironmentSpec) -> EnvironmentSpec {
    match environment {
        EnvironmentSpec::Kube(mut cluster) if cluster.namespaces.is_empty() => {
            cluster.namespaces = vec![cluster.namespace.clone()];
            EnvironmentSpec::Kube(cluster)
        }
        other => other,
    }
}

/// A probe with its files found from the scenario's folder.
fn resolve_probe(mut probe: Probe, scenario: &Path) -> Probe {
    match &mut probe.check {
        Check::Http { ca: Some(ca), .. }
        | Check::Slo { ca: Some(ca), .. }
        | Check::S3 { ca: Some(ca), .. }
        | Check::Prometheus { ca: Some(ca), .. }
        | Check::Alert { ca: Some(ca), .. } => {
            *ca = super::relative_to(scenario, ca);
        }
        Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. } => {
            *dsn = super::dsn::map_files(dsn, |file| super::relative_to(scenario, file));
        }
        _ => {}
    }
    probe
}

/// A checked step with its defaults applied, and its time target when `targets.steps` names it.
fn resolve_step(step: &Step, targets: &Targets) -> ResolvedStep {
    let budget = step.budget.as_ref().map(|b| b.value);
    let sim = step.sim.as_ref();
    ResolvedStep {
        name: step.name.clone(),
        action: step_action(step).expect("checked: a step has exactly one action"),
        budget,
        escalate_after: step.escalate_after.or(budget),
        timeout: step.timeout,
        target: targets.steps.get(&step.name).map(|t| t.value),
        sim_duration: sim_duration(step),
        sim_effect: sim.map(|s| s.effect).unwrap_or_default(),
        sim_replicas: sim.and_then(|s| s.replicas).unwrap_or(0),
    }
}

impl Scenario {
    /// The availability probes, with their indexes.
    pub fn availability_probes(&self) -> impl Iterator<Item = (usize, &Probe)> {
        self.probes.iter().enumerate().filter(|(_, p)| p.is_availability())
    }
}
