//! What a probe answers and what a system printed: the observations environments hand to the
//! engine. They sit here, below both the probes that take them and the environments that pass
//! them on, so neither has to know the other.

/// One probe check's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Healthy or not.
    pub ok: bool,
    /// Why not, or what was seen.
    pub detail: Option<String>,
}

impl Sample {
    /// A healthy answer.
    pub fn ok() -> Self {
        Sample { ok: true, detail: None }
    }

    /// An unhealthy answer and why.
    pub fn fail(why: impl Into<String>) -> Self {
        Sample { ok: false, detail: Some(why.into()) }
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
