//! The dry run on the Docker Engine: the network and containers a drill would create, the
//! attached containers it would fault (looked up on the engine, read-only), its faults with
//! the containers each affects, its steps, probes and load. Nothing is created or changed:
//! only `ping`, `list`, and `inspect` calls are made.

use std::collections::BTreeSet;

use super::{DockerEnv, ANY_NODE};
use crate::env::dry_run::{each_fault, DryRun, TouchKind};
use crate::scenario::{statically_affected, Check, DockerStack, Fault, Scenario, StepAction};
use crate::text::error_chain;

impl DockerEnv {
    /// What a drill of `scenario` would touch; see the module docs.
    pub async fn dry_run(&self, scenario: &Scenario) -> DryRun {
        let inner = &self.inner;
        let stack = &inner.stack;
        let mut run = DryRun::default();
        let engine = match inner.docker() {
            Ok(docker) => docker.ping().await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(error_chain(&e)),
        };
        if let Err(e) = &engine {
            run.missing.push(format!("the Docker Engine is not reachable: {e}"));
        }
        if super::undo::local_socket().is_none() {
            run.missing.push(
                "the Docker Engine is reached over TCP (DOCKER_HOST), so no dead man's switch can run: the drill would refuse to start"
                    .into(),
            );
        }
        let journal = inner.drill.journal_dir.join(format!("{}.jsonl", inner.run_id));
        run.touch(
            TouchKind::Journal,
            format!("{}: each change written before it is made; removed once all are undone", journal.display()),
        );
        run.touch(TouchKind::Network, format!("{}: created for the drill, removed after it", inner.network));
        run.touch(
            TouchKind::Start,
            format!(
                "{}-deadman: the dead man's switch (image {}), lifts faults if firedrill dies; removed after",
                inner.network,
                super::undo::HELPER_IMAGE
            ),
        );
        for a in &stack.attach {
            let declared = a.selector();
            let found = match engine {
                Ok(()) => inner.inspect_attached(a).await.map_err(|e| error_chain(&e)),
                Err(_) => Err("not looked up".into()),
            };
            match found {
                Ok(c) => run.touch(
                    TouchKind::Attach,
                    format!(
                        "{} → {} {} ({}), by {declared}: faulted and reverted, never removed",
                        a.name,
                        short(&c.id),
                        c.name,
                        c.status
                    ),
                ),
                Err(e) => {
                    run.touch(TouchKind::Attach, format!("{} → {declared}: NOT FOUND ({e})", a.name));
                    run.missing.push(format!("attached container `{}` ({declared}): {e}", a.name));
                }
            }
        }
        let mut images = BTreeSet::from([super::undo::HELPER_IMAGE]);
        for c in &stack.containers {
            let node = match c.node.as_deref() {
                None => "on no node".to_string(),
                Some(ANY_NODE) => "on the least loaded node when it starts".to_string(),
                Some(node) => format!("on {node}"),
            };
            let (kind, when) = match c.standby {
                true => (TouchKind::Standby, format!("started only by a step (`start: {}`)", c.name)),
                false => (TouchKind::Start, "started with the stack".to_string()),
            };
            run.touch(
                kind,
                format!(
                    "{}: image {}, {node}, as {}-{}; {when}, removed after",
                    c.name, c.image, inner.network, c.name
                ),
            );
            images.insert(c.image.as_str());
        }
        if engine.is_ok() {
            for image in images {
                match inner.has_image(image).await {
                    Ok(true) => {}
                    Ok(false) => run
                        .missing
                        .push(format!("image {image} is not on the engine (firedrill never pulls; scripts/setup-docker builds firedrill/base)")),
                    Err(e) => run.missing.push(format!("image {image}: {}", error_chain(&e))),
                }
            }
        }
        for fault in each_fault(&scenario.fault) {
            run.touch(
                TouchKind::Fault,
                format!("{}: {}", fault.describe(), affects(stack, &scenario.environment, fault)),
            );
            match fault {
                Fault::TrafficSurge { url: Some(url), duration, .. } => {
                    run.touch(TouchKind::Load, format!("the surge's requests → {url} for {duration}"));
                }
                Fault::NetworkBlackhole { target, .. } => run.touch(
                    TouchKind::Start,
                    format!("a network helper in {target}'s network namespace sets its iptables rules (and again to lift them), removed at once"),
                ),
                _ => {}
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let what = match &step.action {
                StepAction::Run { argv, container: Some(c) } => format!("runs `{}` in container {c}", argv.join(" ")),
                StepAction::Run { argv, container: None } => format!("runs `{}` on this machine", argv.join(" ")),
                StepAction::Manual(text) => format!("asks the operator to confirm: {text}"),
                StepAction::Start(name) => format!("starts standby container {name}"),
                StepAction::Kube(action) => format!("{} (refused: docker has no cluster)", action.describe()),
            };
            run.touch(TouchKind::Step, format!("{} `{}`: {what}", i + 1, step.name));
        }
        for probe in &scenario.probes {
            let place = match &probe.check {
                Check::Command { .. } => ", run on this machine",
                Check::WriteLedger { .. } => ", writing numbered rows",
                _ => "",
            };
            let every = probe.interval;
            run.touch(
                TouchKind::Probe,
                format!("{}: {} {}{place}, every {every}", probe.name, probe.check.kind(), probe.check.target()),
            );
            if let Check::Slo { url, rate, .. } = &probe.check {
                run.touch(TouchKind::Load, format!("{rate} → {url} (probe `{}`), throughout the drill", probe.name));
            }
        }
        run.blast_radius = statically_affected(&scenario.environment, &scenario.fault);
        run
    }
}

/// What one fault affects: its container, or a drain's containers on the node (those placed
/// on `any` node may land there too).
fn affects(stack: &DockerStack, environment: &crate::scenario::EnvironmentSpec, fault: &Fault) -> String {
    let affected = statically_affected(environment, fault);
    let listed = if affected.is_empty() { "no container".to_string() } else { affected.join(", ") };
    let Fault::NodeDrain { .. } = fault else { return format!("affects {listed}") };
    let anywhere: Vec<&str> =
        stack.containers.iter().filter(|c| c.node.as_deref() == Some(ANY_NODE)).map(|c| c.name.as_str()).collect();
    match anywhere.is_empty() {
        true => format!("evicts {listed}"),
        false => format!("evicts {listed} (and {} if the scheduler places them there)", anywhere.join(", ")),
    }
}

/// A container id as `docker ps` shows it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
