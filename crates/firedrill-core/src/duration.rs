//! Human-written durations (`250ms`, `30s`, `1h30m`) and rates (`300/s`), the two units every
//! scenario is full of.
//!
//! The types parse strictly: a bare number is rejected because `30` could mean seconds or
//! minutes, and a drill timed in the wrong unit is worse than a drill not run.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time written as people write it: `250ms`, `30s`, `15m`, `1h30m`, `2h`, `1d`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of whole seconds, for defaults written in code.
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    /// A duration of whole milliseconds, for defaults written in code.
    pub const fn millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    /// The duration in (fractional) seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// Why a duration or rate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{text}`: {why}")]
pub struct UnitError {
    what: &'static str,
    text: String,
    why: &'static str,
}

const DURATION_HINT: &str = "expected a number with a unit (ms, s, m, h, d), e.g. `250ms`, `30s`, `1h30m`";

impl FromStr for Dur {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let err = |why| UnitError { what: "duration", text: text.to_string(), why };
        let s = text.trim();
        if s.is_empty() {
            return Err(err(DURATION_HINT));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(err(DURATION_HINT));
            }
            let number: f64 = rest[..num_len].parse().map_err(|_| err(DURATION_HINT))?;
            rest = &rest[num_len..];
            let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let unit_secs = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                "" => {
                    return Err(UnitError {
                        what: "duration",
                        text: text.to_string(),
                        why: "a number needs a unit (ms, s, m, h, d): alone it could be seconds or minutes",
                    });
                }
                _ => return Err(err(DURATION_HINT)),
            };
            rest = rest[unit_len..].trim_start();
            let part = Duration::try_from_secs_f64(number * unit_secs).map_err(|_| err("out of range"))?;
            total = total.checked_add(part).ok_or_else(|| err("out of range"))?;
        }
        // Nothing a drill times is longer than a year, and the bound keeps every sum of
        // instants and durations far from overflowing.
        if total > Duration::from_secs(365 * 86400) {
            return Err(err("longer than a year: nothing a drill times is that long"));
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    /// Prints the shortest exact form (`1h30m`, `250ms`, `1m0.5s` as `60500ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut secs = ms / 1000;
        let parts = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")];
        for (size, unit) in parts {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with units: `250ms`, `30s`, `15m`, `1h30m`, `1d`.",
            "pattern": r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h|d)\s*)+$"
        })
    }
}

/// A rate of events per second, written `300/s`, `18000/m` or `2/ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Rate(pub f64);

impl Rate {
    /// Events per second.
    pub fn per_sec(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let err = |why| UnitError { what: "rate", text: text.to_string(), why };
        let hint = "expected a count per unit, e.g. `300/s` or `18000/m`";
        let (count, unit) = text.trim().split_once('/').ok_or_else(|| err(hint))?;
        let count: f64 = count.trim().parse().map_err(|_| err(hint))?;
        if !count.is_finite() || count < 0.0 {
            return Err(err("the count must be a finite number, zero or more"));
        }
        let per = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err(hint)),
        };
        let per_sec = count / per;
        if !per_sec.is_finite() {
            return Err(err("out of range: too many per second for a number"));
        }
        Ok(Rate(per_sec))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A rate: count per unit, e.g. `300/s`, `18000/m`.",
            "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*(ms|s|m|h)\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let cases = [
            ("250ms", 250),
            ("30s", 30_000),
            ("15m", 900_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1_500),
            ("1h 30m", 5_400_000),
            ("1d", 86_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(text.parse::<Dur>().unwrap().0.as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn rejects_ambiguous_and_malformed_durations() {
        for text in ["30", "", "s", "5q", "1h30", "-5s", "1..5s", "400d", "5000000000000000h"] {
            let e = text.parse::<Dur>().unwrap_err().to_string();
            assert!(e.contains("invalid duration"), "{text}: {e}");
        }
        assert!("30".parse::<Dur>().unwrap_err().to_string().contains("needs a unit"));
    }

    #[test]
    fn parts_whose_sum_overflows_are_out_of_range_not_a_panic() {
        // Each part alone fits a `Duration`; their sum does not.
        let e = "10000000000000000000s10000000000000000000s".parse::<Dur>().unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn a_rate_too_large_for_a_number_is_refused() {
        // The count is finite, the count per second is not.
        let count = "9".repeat(308);
        let e = format!("{count}/ms").parse::<Rate>().unwrap_err().to_string();
        assert!(e.contains("invalid rate"), "{e}");
    }

    #[test]
    fn displays_the_shortest_exact_form_and_round_trips() {
        for text in ["250ms", "30s", "15m", "1h30m", "1d2h", "0s", "1500ms"] {
            let d: Dur = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(d.to_string().parse::<Dur>().unwrap(), d);
        }
    }

    #[test]
    fn parses_rates() {
        assert_eq!("300/s".parse::<Rate>().unwrap().per_sec(), 300.0);
        assert_eq!("18000/m".parse::<Rate>().unwrap().per_sec(), 300.0);
        assert_eq!("2/ms".parse::<Rate>().unwrap().per_sec(), 2000.0);
        for text in ["300", "x/s", "300/y", "-1/s"] {
            assert!(text.parse::<Rate>().is_err(), "{text}");
        }
    }
}
