//! The load a live environment sends from this machine: the steady traffic of `slo` probes,
//! started at a probe's first sample and kept running until the drill ends, whose last window
//! each sample judges against the objective; and traffic surges on top of it, which a
//! `multiplier` applies to. Docker and Kubernetes drills send it alike.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use crate::duration::{Dur, Rate};
use crate::load::stats::Window;
use crate::load::{describe, Background, Detached, LoadError, Model, Plan};
use crate::sample::{Evidence, Sample, SloWindow};
use crate::scenario::{Check, Fault, Problem, Scenario};

/// The steady load of an `slo` probe.
struct SloLoad {
    /// The URL (its containers' names expanded, in docker).
    pub url: String,
    /// Requests per second.
    pub rate: f64,
    /// A request not answered within this fails.
    pub request_timeout: Duration,
    /// `https://`: the CA trusted instead of the platform's roots.
    pub ca: Option<std::path::PathBuf>,
}

/// What an `slo` probe asks of the requests of its window.
struct Objective {
    /// The most p95 latency.
    pub p95: Option<Dur>,
    /// The most p99 latency.
    pub p99: Option<Dur>,
    /// The most failed requests, in percent.
    pub max_error_percent: f64,
    /// The window judged.
    pub window: Dur,
}

/// Why a traffic surge could not start.
#[derive(Debug, thiserror::Error)]
pub enum SurgeError {
    /// It would add no requests to the load already there.
    #[error("the surge adds no requests to the {baseline:.0}/s already loading {url} (a multiplier applies to an `slo` probe's rate)")]
    AddsNothing {
        /// The requests per second already loading the URL.
        baseline: f64,
        /// The URL.
        url: String,
    },
    /// Its load could not start.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The load a drill sends from this machine, until it ends.
#[derive(Default)]
pub struct Loads {
    /// Each `slo` probe's load, by probe index: its URL, its probe's name, the load.
    slo: RefCell<HashMap<usize, (String, String, Background)>>,
    /// The traffic surges injected, running or done.
    surges: RefCell<Vec<Detached>>,
}

impl Loads {
    /// The requests completed in the last window of probe `probe`'s load on `url` (trusting
    /// `ca` over TLS). The load starts at the first sample, and again when the URL changed (a
    /// restart or reconnect may give its container a new address).
    fn slo_window(
        &self,
        probe: usize,
        name: &str,
        load: SloLoad,
        window: Dur,
    ) -> Result<(Window, Option<String>), LoadError> {
        let SloLoad { url, rate, request_timeout, ca } = load;
        let current = self.slo.borrow().get(&probe).is_some_and(|(u, _, _)| *u == url);
        if !current {
            // Until the drill ends, which stops it: the longest drill is a week.
            let week = Duration::from_secs(8 * 86400);
            let mut plan = Plan::steady(&url, rate, week, 256, request_timeout);
            plan.ca = ca;
            let load = Background::start(&plan, window.0)?;
            self.slo.borrow_mut().insert(probe, (url, name.to_string(), load));
        }
        let slo = self.slo.borrow();
        let load = &slo[&probe].2;
        Ok((load.window(), load.tls_failure().map(str::to_string)))
    }

    /// A sample of `slo` probe `probe` (named `name`), whose load goes to `url`: the last
    /// window of its steady load judged against its objective.
    pub fn slo_sample(&self, probe: usize, name: &str, check: &Check, url: String) -> Sample {
        let Check::Slo { rate, p95, p99, max_error_percent, window, request_timeout, ca, .. } = check else {
            return Sample::fail("not an `slo` probe");
        };
        let load = SloLoad { url, rate: rate.per_sec(), request_timeout: request_timeout.0, ca: ca.clone() };
        match self.slo_window(probe, name, load, *window) {
            Ok((w, tls_failure)) => {
                let objective =
                    Objective { p95: *p95, p99: *p99, max_error_percent: *max_error_percent, window: *window };
                judged(&w, tls_failure.as_deref(), &objective)
            }
            Err(e) => Sample::fail(crate::text::error_chain(&e)),
        }
    }

    /// The plan of a surge on `url` for `duration`: `multiplier` times the `slo` probes' rate on
    /// it, or `rate` in all; the surge sends what the probes do not, with their request
    /// timeout and CA.
    pub fn surge_plan(
        &self,
        url: &str,
        multiplier: Option<f64>,
        rate: Option<Rate>,
        duration: Duration,
    ) -> Result<Plan, SurgeError> {
        let (baseline, timeout, ca) = self.slo_baseline(url);
        let extra = match (multiplier, rate) {
            (Some(m), _) => (m - 1.0) * baseline,
            (None, Some(r)) => r.per_sec() - baseline,
            (None, None) => 0.0,
        };
        if extra <= 0.0 {
            return Err(SurgeError::AddsNothing { baseline, url: url.into() });
        }
        let mut plan = Plan::steady(url, extra, duration, 1024, timeout);
        plan.ca = ca;
        Ok(plan)
    }

    /// Starts a surge from this machine: its number, to stop it.
    pub fn surge(&self, plan: &Plan) -> Result<usize, SurgeError> {
        let load = Detached::start(plan)?;
        let mut surges = self.surges.borrow_mut();
        surges.push(load);
        Ok(surges.len() - 1)
    }

    /// Stops every load: the drill is over.
    pub fn end(&self) {
        self.slo.borrow_mut().clear();
        self.surges.borrow_mut().clear();
    }

    /// Stops surge `i`, if still running.
    pub fn stop_surge(&self, i: usize) {
        if let Some(surge) = self.surges.borrow_mut().get_mut(i) {
            surge.stop();
        }
    }

    /// The requests per second the SLO probes send to `url`, their request timeout and the CA
    /// they trust: the baseline a traffic surge multiplies, and how it reaches the same URL.
    fn slo_baseline(&self, url: &str) -> (f64, Duration, Option<std::path::PathBuf>) {
        self.slo.borrow().values().filter(|(u, _, _)| u == url).fold(
            (0.0, Duration::from_secs(2), None),
            |(rate, _, _), (_, _, load)| {
                let plan = load.plan();
                let r = match &plan.model {
                    Model::Open(stages) => stages.first().map_or(0.0, |s| s.rate),
                    Model::Closed { .. } => 0.0,
                };
                (rate + r, plan.timeout, plan.ca.clone())
            },
        )
    }

    /// What the users' traffic met, second by second: the SLO probes' steady load, in probe
    /// order, and the surges on top of it (stopped now, if still running).
    pub fn evidence(&self) -> Vec<Evidence> {
        let mut slo: Vec<_> = self
            .slo
            .borrow()
            .iter()
            .map(|(i, (_, name, load))| {
                let report = load.report();
                // It ran until now, not for the week it was planned for.
                let mut plan = load.plan().clone();
                if let Model::Open(stages) = &mut plan.model {
                    for stage in stages {
                        stage.duration = stage.duration.min(Duration::from_secs_f64(report.elapsed_s));
                    }
                }
                (*i, name.clone(), describe(&plan, &report))
            })
            .collect();
        slo.sort_by_key(|s| s.0);
        let mut evidence: Vec<Evidence> = slo
            .into_iter()
            .map(|(_, name, text)| Evidence { source: format!("load of probe `{name}`"), text, truncated: false })
            .collect();
        for surge in self.surges.borrow_mut().iter_mut() {
            let report = surge.stop();
            let text = describe(surge.plan(), &report);
            evidence.push(Evidence { source: "traffic_surge".into(), text, truncated: false });
        }
        evidence
    }
}

/// What is wrong, at load time, with a scenario's `traffic_surge` sent from this machine: it
/// needs a `url`, and a `multiplier` needs an `slo` probe loading the same URL to multiply.
/// `url_problem` says what else the environment finds wrong with the URL.
pub fn surge_problems(scenario: &Scenario, url_problem: impl Fn(&str) -> Option<String>) -> Vec<Problem> {
    let Fault::TrafficSurge { url, multiplier, .. } = &scenario.fault else { return Vec::new() };
    let at = scenario.positions.fault;
    let Some(url) = url else {
        return vec![Problem::new(at, "traffic_surge: `url` is needed: the URL the surge's requests go to")];
    };
    let mut problems: Vec<Problem> =
        url_problem(url).into_iter().map(|why| Problem::new(at, format!("traffic_surge: {why}"))).collect();
    let baseline = scenario.probes.iter().any(|p| matches!(&p.check, Check::Slo { url: u, .. } if u == url));
    if multiplier.is_some() && !baseline {
        problems.push(Problem::new(at, format!("traffic_surge: a `multiplier` applies to the rate of an `slo` probe loading `{url}`, and there is none; add one or give `rate`")));
    }
    problems
}

/// Whether the requests of the window met the objective (errors first, then latency), with
/// the window's numbers for the `slo_breach` stop conditions. Failed requests over TLS say why
/// the first handshake failed, when one did: a certificate problem is no overload.
fn judged(w: &Window, tls_failure: Option<&str>, objective: &Objective) -> Sample {
    let window = SloWindow { completed: w.completed, errors: w.errors, p95_ms: w.p95_ms, p99_ms: w.p99_ms };
    let mut sample = judge(&window, objective);
    if let (Some(detail), Some(why), true) = (&mut sample.detail, tls_failure, w.errors > 0) {
        detail.push_str(&format!("; first TLS failure: {why}"));
    }
    sample.with_slo(window)
}

fn judge(w: &SloWindow, objective: &Objective) -> Sample {
    let Objective { p95, p99, max_error_percent, window } = objective;
    let Some(errors) = w.error_percent() else {
        return Sample::fail(format!("no request completed in the last {window}"));
    };
    if errors > *max_error_percent {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_slo_sample_judges_errors_then_latency() {
        let w = |completed, errors, p95| Window { completed, errors, p95_ms: Some(p95), p99_ms: Some(p95 * 2.0) };
        let objective =
            Objective { p95: Some(Dur::millis(300)), p99: None, max_error_percent: 1.0, window: Dur::secs(5) };
        let judge = |w: &Window| judged(w, None, &objective);
        assert!(judge(&w(100, 1, 250.0)).ok);
        assert_eq!(judge(&w(100, 2, 250.0)).detail.unwrap(), "2.0% of requests failed (objective: under 1%)");
        assert_eq!(judge(&w(100, 0, 412.0)).detail.unwrap(), "p95 latency 412 ms (objective: under 300ms)");
        let none = Window { completed: 0, errors: 0, p95_ms: None, p99_ms: None };
        assert_eq!(judge(&none).detail.unwrap(), "no request completed in the last 5s");
        let untrusted = judged(&w(100, 100, 1.0), Some("TLS handshake: unknown issuer"), &objective);
        assert_eq!(
            untrusted.detail.unwrap(),
            "100.0% of requests failed (objective: under 1%); first TLS failure: TLS handshake: unknown issuer"
        );
    }

    #[test]
    fn an_slo_sample_carries_its_window_for_the_stop_conditions() {
        let w = Window { completed: 40, errors: 10, p95_ms: Some(120.0), p99_ms: Some(900.0) };
        let objective = Objective { p95: None, p99: None, max_error_percent: 1.0, window: Dur::secs(5) };
        let sample = judged(&w, None, &objective);
        assert!(!sample.ok);
        let measured = sample.slo.expect("the window's numbers");
        assert_eq!(measured, SloWindow { completed: 40, errors: 10, p95_ms: Some(120.0), p99_ms: Some(900.0) });
        assert_eq!(measured.error_percent(), Some(25.0));
    }
}
