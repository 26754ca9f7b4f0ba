//! The load-time checks of a docker scenario: every name it uses is a container (or node) of
//! the environment, and every fault is one the Docker Engine can carry out. Each problem
//! points at its place in the scenario file, so a typo fails before any container starts.

use super::expansion::expand;
use crate::scenario::{Check, DockerStack, Fault, Problem, Scenario, StepAction};

/// The problems of running `scenario` on `stack`; empty when it can run.
pub(super) fn check(stack: &DockerStack, scenario: &Scenario) -> Vec<Problem> {
    let names: Vec<&str> =
        stack.containers.iter().map(|c| c.name.as_str()).chain(stack.attach.iter().map(|a| a.name.as_str())).collect();
    let known = |name: &str| names.contains(&name);
    let unknown = |name: &str| {
        format!(
            "no container `{name}` in the environment; it has {}",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )
    };
    let mut problems = Vec::new();
    let at = scenario.positions.fault;
    let nodes = &stack.nodes;
    check_fault(&scenario.fault, false, &mut |why| problems.push(Problem::new(at, why)), &known, &unknown, nodes);
    problems.extend(crate::env::load::surge_problems(scenario, |url| {
        expand(url, |name| known(name).then(String::new)).err().map(|e| e.to_string())
    }));
    for (i, probe) in scenario.probes.iter().enumerate() {
        let at = scenario.positions.probes[i];
        if let Check::Deployment { .. } | Check::Endpoints { .. } = &probe.check {
            let why = format!("probe `{}`: `{}` probes are kube's", probe.name, probe.check.kind());
            problems.push(Problem::new(at, why));
        }
        #[cfg(not(feature = "aws"))]
        if let Check::S3 { endpoint: None, .. } = &probe.check {
            let why = format!(
                "probe `{}`: an `s3` probe without `endpoint` reaches AWS through the AWS SDK's standard chain, which is not built into this firedrill: build it with `--features aws`, or give an `endpoint`",
                probe.name
            );
            problems.push(Problem::new(at, why));
        }
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
                let standby = stack.containers.iter().any(|c| c.name == *name && c.standby);
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
            StepAction::Kube(action) => problems.push(Problem::new(
                at,
                format!(
                    "step `{}`: `{}` acts on a Kubernetes cluster, which needs `environment: {{kind: kube}}`; in docker, `run` a command (in a `container`)",
                    step.name,
                    action.describe()
                ),
            )),
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

/// The strings of a check that may name containers.
fn check_strings(check: &Check) -> Vec<&str> {
    match check {
        Check::Http { url, .. } => vec![url],
        Check::Tcp { address } => vec![address],
        Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. } => vec![dsn],
        Check::S3 { endpoint, .. } => endpoint.iter().map(String::as_str).collect(),
        Check::Dns { name, .. } => vec![name],
        Check::Slo { url, .. } | Check::Prometheus { url, .. } | Check::Alert { url, .. } => vec![url],
        Check::Command { argv } => argv.iter().map(String::as_str).collect(),
        Check::Deployment { .. } | Check::Endpoints { .. } => vec![],
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
        // Refused at load, where they are said to need the kube environment.
        Fault::TrafficSurge { .. } | Fault::PodKill { .. } | Fault::PodDelete { .. } | Fault::Scale { .. } => {}
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
    use crate::scenario::{parse, EnvironmentSpec};

    #[test]
    fn faults_and_steps_name_declared_containers_only() {
        let yaml = "name: s
environment:
  kind: docker
  containers: [{name: web}]
  attach: [{name: db, container: shop-db-1}]
fault:
  kind: sequence
  faults:
    - fault: {kind: network_blackhole, target: db, peer: cache}
    - fault: {kind: container_pause, target: shop-web-1}
procedure:
  kind: steps
  steps:
    - {name: look, run: [ls], container: shop-db-1, budget: 1m}
";
        let s = parse(yaml, std::path::Path::new("s.yaml")).expect("it parses");
        let EnvironmentSpec::Docker(stack) = &s.environment else { panic!("a docker scenario") };
        let problems: Vec<String> = super::check(stack, &s).into_iter().map(|p| p.message).collect();
        let problems = problems.join("\n");
        for name in ["cache", "shop-web-1", "shop-db-1"] {
            assert!(
                problems.contains(&format!("no container `{name}` in the environment; it has web, db")),
                "{name}: {problems}"
            );
        }
    }

    #[test]
    fn an_s3_probe_without_endpoint_needs_the_aws_feature() {
        let yaml = "name: s
environment: {kind: docker, containers: [{name: web}]}
fault: {kind: container_pause, target: web}
probes:
  - name: receipts
    check: {kind: s3, bucket: receipts}
";
        let s = parse(yaml, std::path::Path::new("s.yaml")).expect("it parses");
        let EnvironmentSpec::Docker(stack) = &s.environment else { panic!("a docker scenario") };
        let problems: Vec<String> = super::check(stack, &s)
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.pos.line, p.pos.column, p.message))
            .collect();
        if cfg!(feature = "aws") {
            assert_eq!(problems, Vec::<String>::new());
        } else {
            assert_eq!(problems, ["5:5: probe `receipts`: an `s3` probe without `endpoint` reaches AWS through the AWS SDK's standard chain, which is not built into this firedrill: build it with `--features aws`, or give an `endpoint`"]);
        }
    }

    #[test]
    fn a_kube_step_is_refused_at_its_line() {
        let yaml = "name: s
environment: {kind: docker, containers: [{name: web}]}
fault: {kind: container_pause, target: web}
procedure:
  kind: steps
  steps:
    - {name: scale, kube: {action: scale, workload: deployment/web, replicas: 2}, budget: 1m}
";
        let s = parse(yaml, std::path::Path::new("s.yaml")).expect("it parses");
        let EnvironmentSpec::Docker(stack) = &s.environment else { panic!("a docker scenario") };
        let problems: Vec<String> = super::check(stack, &s)
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.pos.line, p.pos.column, p.message))
            .collect();
        assert_eq!(
            problems,
            ["7:7: step `scale`: `kubectl scale deployment/web --replicas=2` acts on a Kubernetes cluster, which needs `environment: {kind: kube}`; in docker, `run` a command (in a `container`)"]
        );
    }
}
