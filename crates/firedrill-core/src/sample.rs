//! What a probe answers and what a system printed: the observations environments hand to the
//! engine. They sit here, below both the probes that take them and the environments that pass
//! them on, so neither has to know the other.

use crate::duration::Dur;
use crate::timeline::{SloBreach, SloLimit};

/// One probe check's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Healthy or not.
    pub ok: bool,
    /// Why not, or what was seen.
    pub detail: Option<String>,
    /// What an `slo` probe measured over its window, so that `slo_breach` stop conditions are
    /// judged on the numbers, not on the pass or fail of the probe's own objective.
    pub slo: Option<SloWindow>,
    /// An `alert` probe saw its alert firing: the fault was detected. Only such a sample
    /// detects; a failure to ask Prometheus is no detection.
    pub firing: bool,
}

impl Sample {
    /// A healthy answer.
    pub fn ok() -> Self {
        Sample { ok: true, detail: None, slo: None, firing: false }
    }

    /// An unhealthy answer and why.
    pub fn fail(why: impl Into<String>) -> Self {
        Sample { ok: false, detail: Some(why.into()), slo: None, firing: false }
    }

    /// The answer with the window an `slo` probe measured.
    pub fn with_slo(self, window: SloWindow) -> Self {
        Sample { slo: Some(window), ..self }
    }
}

/// The requests of an `slo` probe's window: those answered (or timed out) in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SloWindow {
    /// How many completed.
    pub completed: u64,
    /// Of them, how many failed.
    pub errors: u64,
    /// 95th-percentile latency, in milliseconds; `None` when nothing completed.
    pub p95_ms: Option<f64>,
    /// 99th-percentile latency, in milliseconds; `None` when nothing completed.
    pub p99_ms: Option<f64>,
}

impl SloWindow {
    /// The share of failed requests, in percent; `None` when nothing completed, which is no
    /// evidence either way.
    pub fn error_percent(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.errors as f64 * 100.0 / self.completed as f64)
    }

    /// The first limit the window breaches, errors first, then p95, then p99, with the value
    /// measured. A limit not set, or a number not measured, is not breached.
    pub fn breach(&self, max_error_percent: Option<f64>, p95: Option<Dur>, p99: Option<Dur>) -> Option<SloBreach> {
        let ms = |d: Option<Dur>| d.map(|d| d.0.as_secs_f64() * 1000.0);
        [
            (SloLimit::ErrorPercent, self.error_percent(), max_error_percent),
            (SloLimit::P95, self.p95_ms, ms(p95)),
            (SloLimit::P99, self.p99_ms, ms(p99)),
        ]
        .into_iter()
        .find_map(|(limit, measured, max)| match (measured, max) {
            (Some(measured), Some(max)) if measured > max => Some(SloBreach { limit, measured, max }),
            _ => None,
        })
    }
}

/// What a part of the system printed during the drill, kept with the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// Where it came from (a container's name in the scenario).
    pub source: String,
    /// The output, its last bytes when it was longer than the limit.
    pub text: String,
    /// Whether older output was cut.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_breaches_its_first_limit_over_the_maximum() {
        let w = SloWindow { completed: 200, errors: 50, p95_ms: Some(900.0), p99_ms: Some(1500.0) };
        let breach = w.breach(Some(20.0), Some(Dur::millis(800)), None).unwrap();
        assert_eq!(breach, SloBreach { limit: SloLimit::ErrorPercent, measured: 25.0, max: 20.0 });
        let breach = w.breach(Some(30.0), Some(Dur::millis(800)), None).unwrap();
        assert_eq!(breach, SloBreach { limit: SloLimit::P95, measured: 900.0, max: 800.0 });
        let breach = w.breach(None, None, Some(Dur::secs(1))).unwrap();
        assert_eq!(breach, SloBreach { limit: SloLimit::P99, measured: 1500.0, max: 1000.0 });
        // At the limit is not over it.
        assert_eq!(w.breach(Some(25.0), Some(Dur::millis(900)), None), None);
    }

    #[test]
    fn an_empty_window_breaches_nothing() {
        let w = SloWindow { completed: 0, errors: 0, p95_ms: None, p99_ms: None };
        assert_eq!(w.error_percent(), None);
        assert_eq!(w.breach(Some(0.0), Some(Dur::millis(1)), Some(Dur::millis(1))), None);
    }
}
