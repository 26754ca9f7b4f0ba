//! When each request of an open-model run is due: the arrival-rate stages turned into send
//! times, fixed in advance so that a slow server cannot slow the load down (no coordinated
//! omission).

use std::time::Duration;

/// One stretch of the load: `rate` requests per second for `duration`, rising or falling
/// linearly to `to` when it is given (a ramp).
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Requests per second at the start.
    pub rate: f64,
    /// Requests per second at the end (a ramp); `None`: constant.
    pub to: Option<f64>,
    /// How long the stage lasts.
    pub duration: Duration,
}

impl Stage {
    /// A constant rate.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        Stage { rate, to: None, duration }
    }
}

/// The send times of a sequence of stages, as offsets from the run's start.
pub struct Schedule<'a> {
    stages: &'a [Stage],
    /// Index of the current stage, its start offset, and requests already due in it.
    stage: usize,
    stage_start: f64,
    count: u64,
}

impl<'a> Schedule<'a> {
    /// The schedule of `stages`, in order.
    pub fn new(stages: &'a [Stage]) -> Self {
        Schedule { stages, stage: 0, stage_start: 0.0, count: 0 }
    }
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let stage = self.stages.get(self.stage)?;
            let length = stage.duration.as_secs_f64();
            // The k-th request (from 0) of the stage is due when the integral of the rate
            // reaches k: r0·t + (r1 − r0)·t²/(2T) = k.
            let k = self.count as f64;
            let r0 = stage.rate;
            let r1 = stage.to.unwrap_or(r0);
            let t = if (r1 - r0).abs() < 1e-12 {
                if r0 > 0.0 {
                    k / r0
                } else {
                    f64::INFINITY
                }
            } else {
                let a = (r1 - r0) / (2.0 * length);
                let disc = r0 * r0 + 4.0 * a * k;
                if disc < 0.0 {
                    f64::INFINITY
                } else {
                    (disc.sqrt() - r0) / (2.0 * a)
                }
            };
            if t.is_finite() && t < length {
                self.count += 1;
                return Some(Duration::from_secs_f64(self.stage_start + t));
            }
            self.stage += 1;
            self.stage_start += length;
            self.count = 0;
        }
    }
}

/// The total length of the stages.
pub fn total(stages: &[Stage]) -> Duration {
    stages.iter().map(|s| s.duration).sum()
}

/// The requests the stages call for: their rate integrated over time.
pub fn expected_requests(stages: &[Stage]) -> f64 {
    stages.iter().map(|s| (s.rate + s.to.unwrap_or(s.rate)) / 2.0 * s.duration.as_secs_f64()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let stages = [Stage::constant(4.0, Duration::from_secs(1))];
        let times: Vec<f64> = Schedule::new(&stages).map(|d| d.as_secs_f64()).collect();
        assert_eq!(times, vec![0.0, 0.25, 0.5, 0.75]);
    }

    #[test]
    fn a_surge_is_three_stages() {
        let s = Duration::from_secs(1);
        let stages = [Stage::constant(200.0, s * 10), Stage::constant(2000.0, s * 60), Stage::constant(200.0, s * 10)];
        let times: Vec<Duration> = Schedule::new(&stages).collect();
        assert_eq!(times.len(), 2000 + 120_000 + 2000);
        assert_eq!(times[2000], s * 10);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(expected_requests(&stages), 124_000.0);
    }

    #[test]
    fn a_ramp_integrates_its_rate() {
        // 0 → 100/s over 10 s: 500 requests, a quarter of them in the first half.
        let stages = [Stage { rate: 0.0, to: Some(100.0), duration: Duration::from_secs(10) }];
        let times: Vec<f64> = Schedule::new(&stages).map(|d| d.as_secs_f64()).collect();
        assert_eq!(times.len(), 500);
        assert_eq!(times.iter().filter(|&&t| t < 5.0).count(), 125);
        let down = [Stage { rate: 100.0, to: Some(0.0), duration: Duration::from_secs(10) }];
        assert_eq!(Schedule::new(&down).count(), 500);
    }
}
