//! The background load of `slo` probes: steady traffic at the probe's rate, started at its
//! first sample and kept running until teardown, whose last window each sample judges
//! against the objective. A traffic surge multiplies it.

use std::time::Duration;

use super::error::DockerError;
use super::Inner;
use crate::duration::Dur;
use crate::load::stats::Window;
use crate::load::{Background, Model, Plan};
use crate::sample::{Sample, SloWindow};

/// The steady load of an `slo` probe.
pub(super) struct SloLoad {
    /// The URL, its containers' names expanded.
    pub url: String,
    /// Requests per second.
    pub rate: f64,
    /// A request not answered within this fails.
    pub request_timeout: Duration,
    /// `https://`: the CA trusted instead of the platform's roots.
    pub ca: Option<std::path::PathBuf>,
}

/// What an `slo` probe asks of the requests of its window.
pub(super) struct Objective {
    /// The most p95 latency.
    pub p95: Option<Dur>,
    /// The most p99 latency.
    pub p99: Option<Dur>,
    /// The most failed requests, in percent.
    pub max_error_percent: f64,
    /// The window judged.
    pub window: Dur,
}

impl Inner {
    /// The requests completed in the last window of probe `probe`'s load on `url` (trusting
    /// `ca` over TLS). The load starts at the first sample, and again when the URL changed (a
    /// restart or reconnect may give its container a new address).
    pub(super) fn slo_window(
        &self,
        probe: usize,
        name: &str,
        load: SloLoad,
        window: Dur,
    ) -> Result<(Window, Option<String>), DockerError> {
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

    /// The requests per second the SLO probes send to `url`, their request timeout and the CA
    /// they trust: the baseline a traffic surge multiplies, and how it reaches the same URL.
    pub(super) fn slo_baseline(&self, url: &str) -> (f64, Duration, Option<std::path::PathBuf>) {
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
}

/// Whether the requests of the window met the objective (errors first, then latency), with
/// the window's numbers for the `slo_breach` stop conditions. Failed requests over TLS say why
/// the first handshake failed, when one did: a certificate problem is no overload.
pub(super) fn slo_sample(w: &Window, tls_failure: Option<&str>, objective: &Objective) -> Sample {
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
        let judge = |w: &Window| slo_sample(w, None, &objective);
        assert!(judge(&w(100, 1, 250.0)).ok);
        assert_eq!(judge(&w(100, 2, 250.0)).detail.unwrap(), "2.0% of requests failed (objective: under 1%)");
        assert_eq!(judge(&w(100, 0, 412.0)).detail.unwrap(), "p95 latency 412 ms (objective: under 300ms)");
        let none = Window { completed: 0, errors: 0, p95_ms: None, p99_ms: None };
        assert_eq!(judge(&none).detail.unwrap(), "no request completed in the last 5s");
        let untrusted = slo_sample(&w(100, 100, 1.0), Some("TLS handshake: unknown issuer"), &objective);
        assert_eq!(
            untrusted.detail.unwrap(),
            "100.0% of requests failed (objective: under 1%); first TLS failure: TLS handshake: unknown issuer"
        );
    }

    #[test]
    fn an_slo_sample_carries_its_window_for_the_stop_conditions() {
        let w = Window { completed: 40, errors: 10, p95_ms: Some(120.0), p99_ms: Some(900.0) };
        let objective = Objective { p95: None, p99: None, max_error_percent: 1.0, window: Dur::secs(5) };
        let sample = slo_sample(&w, None, &objective);
        assert!(!sample.ok);
        let measured = sample.slo.expect("the window's numbers");
        assert_eq!(measured, SloWindow { completed: 40, errors: 10, p95_ms: Some(120.0), p99_ms: Some(900.0) });
        assert_eq!(measured.error_percent(), Some(25.0));
    }
}
