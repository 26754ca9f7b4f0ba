//! Distributions of durations: how long a recovery behaviour or a procedure step takes.
//!
//! Written in a scenario either as a plain duration (`30s`, a fixed time) or as a mapping
//! with a `kind`. Lognormal is given by its median and 95th percentile because that is what
//! teams know about their own incidents; nobody knows their μ and σ.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::Dur;
use crate::rng::Rng;

/// The z-score of the 95th percentile of a standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// A distribution of durations, sampled in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always the same time.
    Fixed {
        /// The time.
        value: Dur,
    },
    /// Any time between `min` and `max`, equally likely.
    Uniform {
        /// Shortest time.
        min: Dur,
        /// Longest time.
        max: Dur,
    },
    /// A bell curve, cut at zero.
    Normal {
        /// Mean time.
        mean: Dur,
        /// Standard deviation.
        stddev: Dur,
    },
    /// A long-tailed time, the usual shape of human and recovery delays.
    Lognormal {
        /// Half of the times are shorter than this.
        median: Dur,
        /// 95% of the times are shorter than this.
        p95: Dur,
    },
    /// Between `min` and `max`, most often near `mode`.
    Triangular {
        /// Shortest time.
        min: Dur,
        /// Most likely time.
        mode: Dur,
        /// Longest time.
        max: Dur,
    },
}

/// Why a distribution's parameters are impossible; each message names the offending field,
/// and the scenario check puts it after the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    /// A uniform distribution whose shortest time is longer than its longest.
    #[error("`min` ({min}) is greater than `max` ({max})")]
    MinAboveMax {
        /// Shortest time.
        min: Dur,
        /// Longest time.
        max: Dur,
    },
    /// A lognormal distribution with a zero median: its logarithm does not exist.
    #[error("`median` must be greater than zero")]
    ZeroMedian,
    /// A lognormal distribution whose 95th percentile is below its median.
    #[error("`p95` ({p95}) is smaller than `median` ({median})")]
    P95BelowMedian {
        /// The 95th percentile.
        p95: Dur,
        /// The median.
        median: Dur,
    },
    /// A triangular distribution whose most likely time is outside its range.
    #[error("expected min <= mode <= max, got {min}, {mode}, {max}")]
    ModeOutsideRange {
        /// Shortest time.
        min: Dur,
        /// Most likely time.
        mode: Dur,
        /// Longest time.
        max: Dur,
    },
}

/// A distribution as written in a scenario: a plain duration (`30s`, fixed) or a mapping
/// with a `kind`. A newtype so the short form works without `untagged`, which would ruin the
/// error messages.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Delay(pub Dist);

impl std::ops::Deref for Delay {
    type Target = Dist;
    fn deref(&self) -> &Dist {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Delay;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30s`, or a distribution mapping with `kind`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Delay, E> {
                Ok(Delay(Dist::Fixed { value: v.parse().map_err(E::custom)? }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Delay, A::Error> {
                Dist::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Delay)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Delay {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Delay".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A fixed duration (`30s`) or a distribution with a `kind`.",
            "anyOf": [g.subschema_for::<Dur>(), g.subschema_for::<Dist>()]
        })
    }
}

impl Dist {
    /// A fixed distribution.
    pub fn fixed(d: Dur) -> Self {
        Dist::Fixed { value: d }
    }

    /// Checks the parameters make sense; the error names the offending field.
    pub fn check(&self) -> Result<(), DistError> {
        match *self {
            Dist::Fixed { .. } => Ok(()),
            Dist::Uniform { min, max } if min > max => Err(DistError::MinAboveMax { min, max }),
            Dist::Uniform { .. } => Ok(()),
            Dist::Normal { .. } => Ok(()),
            Dist::Lognormal { median, .. } if median.is_zero() => Err(DistError::ZeroMedian),
            Dist::Lognormal { median, p95 } if p95 < median => Err(DistError::P95BelowMedian { p95, median }),
            Dist::Lognormal { .. } => Ok(()),
            Dist::Triangular { min, mode, max } if !(min <= mode && mode <= max) => {
                Err(DistError::ModeOutsideRange { min, mode, max })
            }
            Dist::Triangular { .. } => Ok(()),
        }
    }

    /// One sample, in seconds, never negative.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let v = match *self {
            Dist::Fixed { value } => value.as_secs_f64(),
            Dist::Uniform { min, max } => {
                let (a, b) = (min.as_secs_f64(), max.as_secs_f64());
                a + (b - a) * rng.f64()
            }
            Dist::Normal { mean, stddev } => mean.as_secs_f64() + stddev.as_secs_f64() * rng.std_normal(),
            Dist::Lognormal { median, p95 } => {
                let mu = median.as_secs_f64().ln();
                let sigma = (p95.as_secs_f64() / median.as_secs_f64()).ln() / Z95;
                (mu + sigma * rng.std_normal()).exp()
            }
            Dist::Triangular { min, mode, max } => {
                let (a, c, b) = (min.as_secs_f64(), mode.as_secs_f64(), max.as_secs_f64());
                if b <= a {
                    return a;
                }
                let u = rng.f64();
                let fc = (c - a) / (b - a);
                if u < fc {
                    a + (u * (b - a) * (c - a)).sqrt()
                } else {
                    b - ((1.0 - u) * (b - a) * (b - c)).sqrt()
                }
            }
        };
        v.max(0.0)
    }

    /// The mean in seconds (exact, ignoring the cut at zero of `normal`), used by plans and by
    /// the analytic checks of the simulation.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed { value } => value.as_secs_f64(),
            Dist::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
            Dist::Normal { mean, .. } => mean.as_secs_f64(),
            Dist::Lognormal { median, p95 } => {
                let sigma = (p95.as_secs_f64() / median.as_secs_f64()).ln() / Z95;
                median.as_secs_f64() * (sigma * sigma / 2.0).exp()
            }
            Dist::Triangular { min, mode, max } => (min.as_secs_f64() + mode.as_secs_f64() + max.as_secs_f64()) / 3.0,
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Fixed { value } => write!(f, "{value}"),
            Dist::Uniform { min, max } => write!(f, "uniform {min}..{max}"),
            Dist::Normal { mean, stddev } => write!(f, "normal {mean} ± {stddev}"),
            Dist::Lognormal { median, p95 } => write!(f, "lognormal median {median}, p95 {p95}"),
            Dist::Triangular { min, mode, max } => write!(f, "triangular {min}/{mode}/{max}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dur {
        s.parse().unwrap()
    }

    fn mean_and_p95(dist: &Dist) -> (f64, f64) {
        let mut rng = Rng::new(1);
        let mut xs: Vec<f64> = (0..100_000).map(|_| dist.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        (xs.iter().sum::<f64>() / xs.len() as f64, xs[95_000])
    }

    #[test]
    fn samples_match_the_declared_shape() {
        let (m, _) = mean_and_p95(&Dist::Uniform { min: d("10s"), max: d("30s") });
        assert!((m - 20.0).abs() < 0.1, "{m}");
        let ln = Dist::Lognormal { median: d("60s"), p95: d("180s") };
        let (m, p95) = mean_and_p95(&ln);
        assert!((p95 - 180.0).abs() < 3.0, "{p95}");
        assert!((m - ln.mean()).abs() / ln.mean() < 0.02, "{m} vs {}", ln.mean());
        let tri = Dist::Triangular { min: d("1m"), mode: d("2m"), max: d("6m") };
        let (m, _) = mean_and_p95(&tri);
        assert!((m - 180.0).abs() < 1.0, "{m}");
        assert_eq!(Dist::fixed(d("5s")).sample(&mut Rng::new(0)), 5.0);
    }

    #[test]
    fn rejects_impossible_parameters() {
        let message = |dist: Dist| dist.check().unwrap_err().to_string();
        assert_eq!(message(Dist::Uniform { min: d("2s"), max: d("1s") }), "`min` (2s) is greater than `max` (1s)");
        assert_eq!(message(Dist::Lognormal { median: d("0s"), p95: d("1s") }), "`median` must be greater than zero");
        assert_eq!(
            message(Dist::Lognormal { median: d("2s"), p95: d("1s") }),
            "`p95` (1s) is smaller than `median` (2s)"
        );
        assert_eq!(
            message(Dist::Triangular { min: d("1s"), mode: d("5s"), max: d("2s") }),
            "expected min <= mode <= max, got 1s, 5s, 2s"
        );
        assert!(Dist::Normal { mean: d("1s"), stddev: d("5s") }.check().is_ok());
    }
}
