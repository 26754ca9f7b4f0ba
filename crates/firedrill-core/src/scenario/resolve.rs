//! The second stage of loading: checks that the parts of a scenario agree with each other and
//! resolves defaults, giving the [`Scenario`] the engine runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::error::{Pos, Problem, ScenarioError};
use super::model::*;
use crate::dist::Dist;
use crate::duration::Dur;
use crate::text::hex;

/// The default deadline: long enough for a tier-1 RTO of 15 minutes to be missed visibly.
const DEFAULT_DEADLINE: Dur = Dur::secs(30 * 60);
/// A drill longer than a week is not a drill; the bound also bounds a drill's timeline.
const MAX_DEADLINE: Dur = Dur::secs(7 * 86400);
/// The fastest probe: below this firedrill measures itself.
const MIN_INTERVAL: Dur = Dur::millis(10);
/// The most nodes or replicas the simulated stack has.
const MAX_SIM_SIZE: u32 = 10_000;

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
    /// RTO target.
    pub rto: Option<Dur>,
    /// RPO target.
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
    /// How long it takes in the simulation: declared, or around the budget (see
    /// [`default_sim_duration`]); `None` when neither is known.
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
}

/// The simulated duration of a step that declares only a budget: triangular between half the
/// budget and a quarter over it, most likely at 80% of it. Runbook budgets are usually set
/// with some slack, and are sometimes overrun.
pub fn default_sim_duration(budget: Dur) -> Dist {
    let b = budget.0;
    Dist::Triangular { min: Dur(b.mul_f64(0.5)), mode: Dur(b.mul_f64(0.8)), max: Dur(b.mul_f64(1.25)) }
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::of(s.referenced)
}

/// Where a top-level key starts, for problems about a section as a whole (or the first line
/// when the key is absent and a default is at fault).
fn key_pos(text: &str, key: &str) -> Pos {
    let line = text.lines().position(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':'))).unwrap_or(0);
    Pos { line: line as u64 + 1, column: 1 }
}

pub(super) fn resolve(raw: RawScenario, text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let mut problems = Vec::new();
    let mut problem = |p: Pos, m: String| problems.push(Problem::new(p, m));

    let name = raw.name.value.clone();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problem(pos(&raw.name), format!("`name` must be letters, digits, `-` or `_`, got `{name}`"));
    }

    // Probes.
    let mut seen = HashSet::new();
    for p in &raw.probes {
        let probe = &p.value;
        if !seen.insert(probe.name.as_str()) {
            problem(pos(p), format!("duplicate probe name `{}`: probe names must be unique", probe.name));
        }
        if probe.interval < MIN_INTERVAL {
            problem(
                pos(p),
                format!("probe `{}`: `interval` must be at least {MIN_INTERVAL}: faster probing measures firedrill, not the system", probe.name),
            );
        }
        if probe.timeout.is_some_and(Dur::is_zero) {
            problem(pos(p), format!("probe `{}`: `timeout` must be greater than zero", probe.name));
        }
        match &probe.check {
            Check::Command { argv } if argv.is_empty() => {
                problem(pos(p), format!("probe `{}`: `argv` must name a program", probe.name));
            }
            Check::Slo { rate, max_error_percent, window, request_timeout, .. } => {
                if rate.per_sec() <= 0.0 {
                    problem(pos(p), format!("probe `{}`: an SLO probe needs a `rate` above zero", probe.name));
                }
                if !(0.0..=100.0).contains(max_error_percent) {
                    problem(pos(p), format!("probe `{}`: `max_error_percent` must be between 0 and 100", probe.name));
                }
                if window.is_zero() || request_timeout.is_zero() {
                    problem(
                        pos(p),
                        format!("probe `{}`: `window` and `request_timeout` must be above zero", probe.name),
                    );
                }
            }
            Check::WriteLedger { table, .. } if !is_identifier(table) => problem(
                pos(p),
                format!(
                    "probe `{}`: `table` must be a plain SQL name (letters, digits, `_`), got `{table}`",
                    probe.name
                ),
            ),
            _ => {}
        }
    }
    let has_availability = raw.probes.iter().any(|p| p.value.is_availability());
    let has_ledger = raw.probes.iter().any(|p| matches!(p.value.check, Check::WriteLedger { .. }));

    // Targets need something to measure them.
    let t = &raw.targets;
    for (target, word) in [(&t.rto, "rto"), (&t.mttd, "mttd"), (&t.mttr, "mttr")] {
        if let Some(target) = target {
            if !has_availability {
                problem(
                    pos(target),
                    format!("target `{word}` cannot be measured: the scenario has no availability probe"),
                );
            }
        }
    }
    if let Some(rpo) = &t.rpo {
        if !has_ledger {
            problem(pos(rpo), "target `rpo` cannot be measured: the scenario has no `write_ledger` probe".into());
        }
    }

    // Deadline against targets and budgets.
    let deadline = raw.deadline.as_ref().map(|d| d.value).unwrap_or(DEFAULT_DEADLINE);
    let deadline_pos = raw.deadline.as_ref().map(pos);
    if deadline.is_zero() || deadline > MAX_DEADLINE {
        problem(
            deadline_pos.unwrap_or(key_pos(text, "deadline")),
            format!("`deadline` must be greater than zero and at most {MAX_DEADLINE}"),
        );
    }
    match &raw.environment {
        EnvironmentSpec::Sim(stack) => {
            for (field, value) in [
                ("nodes", stack.nodes),
                ("replicas", stack.replicas),
                ("autoscaler.max_replicas", stack.autoscaler.max_replicas),
            ] {
                if value > MAX_SIM_SIZE {
                    problem(
                        key_pos(text, "environment"),
                        format!(
                            "environment.{field}: {value} is more than the simulation models (at most {MAX_SIM_SIZE})"
                        ),
                    );
                }
            }
        }
        EnvironmentSpec::Docker(stack) => {
            let at = key_pos(text, "environment");
            let mut names = HashSet::new();
            let declared = stack.containers.iter().map(|c| &c.name).chain(stack.attach.iter().map(|a| &a.name));
            for name in declared {
                if !is_hostname(name) {
                    problem(at, format!("environment: container name `{name}` must be letters, digits and `-`"));
                }
                if !names.insert(name.as_str()) {
                    problem(at, format!("environment: duplicate container name `{name}`"));
                }
            }
            for a in &stack.attach {
                if a.container.is_some() == a.compose.is_some() {
                    problem(
                        at,
                        format!("environment.attach `{}`: needs exactly one of `container` or `compose`", a.name),
                    );
                }
            }
            for c in &stack.containers {
                if let Some(node) = c.node.as_ref().filter(|n| !stack.nodes.contains(n) && *n != "any") {
                    problem(
                        at,
                        format!(
                            "environment.containers `{}`: node `{node}` is not one of the environment's `nodes` ({})",
                            c.name,
                            if stack.nodes.is_empty() { "none declared".into() } else { stack.nodes.join(", ") }
                        ),
                    );
                }
                if c.ready.timeout.is_zero() {
                    problem(
                        at,
                        format!("environment.containers `{}`: `ready.timeout` must be greater than zero", c.name),
                    );
                }
            }
        }
    }

    for (target, word) in [(&t.rto, "rto"), (&t.mttd, "mttd"), (&t.mttr, "mttr")] {
        if let Some(target) = target {
            if target.value > deadline {
                problem(
                    pos(target),
                    format!(
                        "target `{word}` ({}) is longer than the deadline ({deadline}): a recovery that meets it could not be observed; raise `deadline`",
                        target.value
                    ),
                );
            }
        }
    }

    // Procedure.
    let proc = &raw.procedure;
    match (proc.kind, proc.steps.is_empty()) {
        (ProcedureKind::Steps, true) => {
            problem(key_pos(text, "procedure"), "procedure of kind `steps` has no steps".into());
        }
        (ProcedureKind::Automatic, false) => {
            problem(pos(&proc.steps[0]), "procedure of kind `automatic` cannot have steps: set `kind: steps`".into())
        }
        _ => {}
    }
    if let Some(budget) = proc.budget {
        if budget > deadline {
            problem(
                key_pos(text, "procedure"),
                format!("procedure `budget` ({budget}) is longer than the deadline ({deadline})"),
            );
        }
    }
    let is_sim = matches!(raw.environment, EnvironmentSpec::Sim(_));
    let mut steps = Vec::new();
    for s in &proc.steps {
        let step = &s.value;
        let at = pos(s);
        let action = match (&step.run, &step.manual, &step.start) {
            (Some(argv), None, None) => {
                if argv.is_empty() {
                    problem(at, format!("step `{}`: `run` must name a program", step.name));
                }
                StepAction::Run { argv: argv.clone(), container: step.container.clone() }
            }
            (None, Some(text), None) => StepAction::Manual(text.clone()),
            (None, None, Some(name)) => StepAction::Start(name.clone()),
            _ => {
                problem(
                    at,
                    format!("step `{}` needs exactly one of `run` or `start` (automated) or `manual`", step.name),
                );
                StepAction::Manual(String::new())
            }
        };
        if step.container.is_some() && step.run.is_none() {
            problem(at, format!("step `{}`: `container` applies to `run` steps only", step.name));
        }
        let budget = step.budget.as_ref().map(|b| b.value);
        if let Some(b) = &step.budget {
            if b.value > deadline {
                problem(
                    pos(b),
                    format!("step `{}`: budget {} is longer than the deadline ({deadline})", step.name, b.value),
                );
            }
        }
        let sim = step.sim.clone();
        let sim_duration =
            sim.as_ref().and_then(|s| s.duration.as_ref().map(|d| d.0.clone())).or(budget.map(default_sim_duration));
        if let Some(Err(e)) = sim.as_ref().and_then(|s| s.duration.as_ref()).map(|d| d.check()) {
            problem(at, format!("step `{}`: sim duration: {e}", step.name));
        }
        if is_sim && sim_duration.is_none() {
            problem(
                at,
                format!("step `{}` has neither a `budget` nor a `sim.duration`: the simulation cannot know how long it takes", step.name),
            );
        }
        let effect = sim.as_ref().map(|s| s.effect).unwrap_or_default();
        let replicas = sim.as_ref().and_then(|s| s.replicas);
        if effect == Effect::ScaleOut && replicas.unwrap_or(0) == 0 {
            problem(at, format!("step `{}`: effect `scale_out` needs `replicas` (at least 1)", step.name));
        }
        steps.push(ResolvedStep {
            name: step.name.clone(),
            action,
            budget,
            escalate_after: step.escalate_after.or(budget),
            timeout: step.timeout,
            sim_duration,
            sim_effect: effect,
            sim_replicas: replicas.unwrap_or(0),
        });
    }

    // Fault parameters.
    if let Fault::TrafficSurge { multiplier, rate, duration, .. } = &raw.fault.value {
        let at = pos(&raw.fault);
        match (multiplier, rate) {
            (Some(m), None) if !(m.is_finite() && *m > 0.0) => {
                problem(at, format!("traffic_surge: `multiplier` must be a positive number, got {m}"))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => problem(at, "traffic_surge needs exactly one of `multiplier` or `rate`".into()),
        }
        if duration.is_zero() {
            problem(at, "traffic_surge: `duration` must be greater than zero".into());
        }
    }

    // Stop conditions name probes.
    for sc in &raw.stop_conditions {
        let StopCondition::ProbeFailing { probe, .. } = &sc.value;
        if !raw.probes.iter().any(|p| &p.value.name == probe) {
            problem(pos(sc), format!("stop condition names probe `{probe}`, which the scenario does not define"));
        }
    }

    if raw.stability.samples == 0 {
        problem(key_pos(text, "stability"), "`stability.samples` must be at least 1".into());
    }
    if raw.steady_state.samples == 0 {
        problem(key_pos(text, "steady_state"), "`steady_state.samples` must be at least 1".into());
    }

    if !problems.is_empty() {
        problems.sort_by_key(|p| p.pos);
        return Err(ScenarioError::Invalid { path: path.to_path_buf(), problems });
    }

    let positions = Positions {
        environment: key_pos(text, "environment"),
        fault: pos(&raw.fault),
        probes: raw.probes.iter().map(pos).collect(),
        steps: raw.procedure.steps.iter().map(pos).collect(),
    };
    Ok(Scenario {
        path: path.to_path_buf(),
        sha256: hex(&Sha256::digest(text.as_bytes())),
        name,
        description: raw.description.trim().to_string(),
        tags: raw.tags,
        environment: raw.environment,
        fault: raw.fault.value,
        probes: raw.probes.into_iter().map(|p| p.value).collect(),
        procedure_kind: raw.procedure.kind,
        procedure_budget: raw.procedure.budget,
        procedure_escalate_after: raw.procedure.escalate_after.or(raw.procedure.budget),
        steps,
        rto: raw.targets.rto.map(|t| t.value),
        rpo: raw.targets.rpo.map(|t| t.value),
        mttd: raw.targets.mttd.map(|t| t.value),
        mttr: raw.targets.mttr.map(|t| t.value),
        stability: raw.stability,
        deadline,
        steady_state: raw.steady_state,
        stop_conditions: raw.stop_conditions.into_iter().map(|s| s.value).collect(),
        redact: raw.redact.into_iter().filter(|r| !r.is_empty()).collect(),
        positions,
    })
}

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name other containers can resolve: a DNS label.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Scenario {
    /// The availability probes, with their indexes.
    pub fn availability_probes(&self) -> impl Iterator<Item = (usize, &Probe)> {
        self.probes.iter().enumerate().filter(|(_, p)| p.is_availability())
    }
}
