//! The contracts every environment keeps, checked by one test body over
//! [`Environment`] and run against each environment firedrill has: `sim` on the paused clock
//! and `docker` against the real engine. A new environment (kube, aws) adds its run here.
//!
//! The contracts: after `prepare` the availability probes are healthy; `inject` returns only
//! once the fault is in effect, so a sample taken right after it already shows a fault that
//! breaks a probe; `revert` undoes it, and doing it again does nothing; the probes are healthy
//! again afterwards; `evidence` and then `teardown` succeed, a second `teardown` does nothing,
//! and nothing the environment created is left.

use std::future::Future;
use std::time::Duration;

use firedrill::env::{AnyEnvironment, Environment, FaultGuard, Sample};
use firedrill::scenario::{Probe, Scenario};
use tokio::time::{sleep, timeout, Instant};

use crate::common::{scenario, shipped};

/// Consecutive healthy samples of each probe that count as healthy.
const HEALTHY_RUN: usize = 3;

/// The longest any one environment call may take before the suite calls it hung; the engine
/// bounds every call, so an environment need not (and per the trait does not) bound its own.
const CALL_LIMIT: Duration = Duration::from_secs(120);

/// What the suite is told about one run besides the environment.
struct Subject<'a> {
    /// The scenario whose fault is injected and whose availability probes are sampled.
    scenario: &'a Scenario,
    /// Whether the fault breaks an availability probe, so that a sample right after `inject`
    /// must fail; a fault that only degrades (a drained node of many) need not show at once.
    breaks_a_probe: bool,
    /// What the environment left after its teardown, in words; empty when nothing.
    leftovers: &'a dyn Fn() -> Vec<String>,
}

/// The contracts, for any environment.
async fn keeps_the_contracts<E: Environment>(env: &E, subject: Subject<'_>) {
    let s = subject.scenario;
    let problems = env.check(s);
    assert!(problems.is_empty(), "{}: the scenario cannot run here: {problems:?}", s.name);

    bounded("prepare", env.prepare()).await.unwrap_or_else(|e| panic!("{}: prepare failed: {e}", s.name));
    for round in 0..HEALTHY_RUN {
        for (i, probe) in availability(s) {
            let sample = sample(env, i, probe).await;
            assert!(
                sample.ok,
                "{}: probe `{}` unhealthy after prepare (sample {round}): {sample:?}",
                s.name, probe.name
            );
        }
    }

    let mut guard =
        bounded("inject", env.inject(&s.fault)).await.unwrap_or_else(|e| panic!("{}: inject failed: {e}", s.name));
    if subject.breaks_a_probe {
        let mut seen = Vec::new();
        for (i, probe) in availability(s) {
            seen.push((probe.name.as_str(), sample(env, i, probe).await));
        }
        assert!(
            seen.iter().any(|(_, sample)| !sample.ok),
            "{}: every probe healthy right after inject returned, so it returned before the fault was in effect: {seen:?}",
            s.name
        );
    }

    bounded("revert", guard.revert()).await.unwrap_or_else(|e| panic!("{}: revert failed: {e}", s.name));
    bounded("second revert", guard.revert())
        .await
        .unwrap_or_else(|e| panic!("{}: a second revert failed: {e}", s.name));
    for (i, probe) in availability(s) {
        healthy_again(env, s, i, probe).await;
    }

    bounded("evidence", env.evidence()).await;
    bounded("teardown", env.teardown()).await.unwrap_or_else(|e| panic!("{}: teardown failed: {e}", s.name));
    bounded("second teardown", env.teardown())
        .await
        .unwrap_or_else(|e| panic!("{}: a second teardown failed: {e}", s.name));
    let left = (subject.leftovers)();
    assert!(left.is_empty(), "{}: left behind after teardown: {left:?}", s.name);
}

/// The availability probes of a scenario, with the index the environment knows them by.
fn availability(s: &Scenario) -> impl Iterator<Item = (usize, &Probe)> {
    s.probes.iter().enumerate().filter(|(_, p)| p.is_availability())
}

/// One sample, bounded by the probe's timeout as the engine bounds it: no answer is a failure.
async fn sample<E: Environment>(env: &E, i: usize, probe: &Probe) -> Sample {
    let limit = probe.timeout().0;
    timeout(limit, env.sample(i, probe)).await.unwrap_or_else(|_| Sample::fail(format!("timed out after {limit:?}")))
}

/// Waits, sampling at the probe's interval, for a run of healthy samples within the scenario's
/// deadline: recovery after a revert may take the system a while (a reconnect, a retry backoff).
async fn healthy_again<E: Environment>(env: &E, s: &Scenario, i: usize, probe: &Probe) {
    let deadline = Instant::now() + s.deadline.0;
    let mut run = 0;
    let mut last = None;
    while run < HEALTHY_RUN {
        assert!(
            Instant::now() < deadline,
            "{}: probe `{}` not healthy again within {:?} of the revert; last sample: {last:?}",
            s.name,
            probe.name,
            s.deadline.0
        );
        let sample = sample(env, i, probe).await;
        run = if sample.ok { run + 1 } else { 0 };
        last = Some(sample);
        sleep(probe.interval.0).await;
    }
}

/// An environment call that must answer within [`CALL_LIMIT`].
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    timeout(CALL_LIMIT, call).await.unwrap_or_else(|_| panic!("{what} did not return within {CALL_LIMIT:?}"))
}

/// Runs the suite's body on the clock the environment asks for, as `drill::drill_in` does: a
/// paused clock for virtual time, and a local task set for work an environment carries on
/// between calls.
fn on_its_clock<E: Environment>(env: &E, body: impl Future<Output = ()>) {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if env.virtual_time() {
        builder.enable_time().start_paused(true);
    } else {
        builder.enable_all();
    }
    let runtime = builder.build().expect("a runtime");
    runtime.block_on(tokio::task::LocalSet::new().run_until(body));
}

#[test]
fn the_sim_environment_keeps_the_contracts() {
    // The faults that take a probe down at once, and those that only degrade the stack.
    for (file, breaks_a_probe) in
        [("db-failover.yaml", true), ("s3-block.yaml", true), ("node-drain.yaml", false), ("traffic-surge.yaml", false)]
    {
        let s = firedrill::scenario::load(&shipped(file)).unwrap_or_else(|e| panic!("{file} does not load:\n{e}"));
        let Ok(AnyEnvironment::Sim(env)) =
            AnyEnvironment::for_scenario(&s, 42, std::path::Path::new("unused: sim journals nothing"))
        else {
            panic!("{file}: a sim environment")
        };
        // In-process: nothing outside the process to leave behind.
        let leftovers = Vec::new;
        on_its_clock(&env, keeps_the_contracts(&env, Subject { scenario: &s, breaks_a_probe, leftovers: &leftovers }));
    }
}

/// A web server in one container, probed over HTTP.
const WEB: &str = r#"
environment:
  kind: docker
  containers:
    - name: web
      command: [python3, -m, http.server, "8080"]
      ready: {port: 8080}
probes:
  - name: web
    check: {kind: http, url: "http://${web:8080}/"}
    interval: 200ms
    timeout: 2s
deadline: 30s
"#;

#[test]
fn the_docker_environment_keeps_the_contracts() {
    let Some(_engine) = crate::docker::engine() else { return };
    for fault in ["{kind: container_pause, target: web}", "{kind: container_stop, target: web, grace_period: 1s}"] {
        let s = scenario(&format!("name: conformance\n{WEB}\nfault: {fault}\n"));
        let state = tempfile::tempdir().expect("a state folder");
        let Ok(AnyEnvironment::Docker(env)) = AnyEnvironment::for_scenario(&s, 1, state.path()) else {
            panic!("a docker environment")
        };
        let label = format!("label=firedrill.run={}", env.run_id());
        let network = format!("firedrill-{}", env.run_id());
        let leftovers = || {
            let mut left = crate::docker::docker(&["ps", "-a", "--filter", &label, "--format", "container {{.Names}}"]);
            left.extend(
                crate::docker::docker(&["network", "ls", "--format", "{{.Name}}"])
                    .into_iter()
                    .filter(|n| *n == network)
                    .map(|n| format!("network {n}")),
            );
            // A drill that undid everything keeps no revert journal.
            let journals = firedrill::journal::known_runs(&firedrill::journal::journal_dir(state.path()));
            left.extend(journals.into_iter().map(|run| format!("journal of run {run}")));
            left
        };
        on_its_clock(
            &env,
            keeps_the_contracts(&env, Subject { scenario: &s, breaks_a_probe: true, leftovers: &leftovers }),
        );
    }
}
