//! The words of a drill: closed sets of names (where it ran, what fault, what a probe checks,
//! how a step ended) that records and timelines store as text. Each is an enum declared with
//! [`word_enum!`], whose serde name and `Display` text are the same literal, so that the JSON,
//! every report and every comparison use one spelling.
//!
//! The scenario's own types carry configuration; these carry only the name, so that a stored
//! record stays readable when a scenario type changes shape. Layer: after [`crate::scenario`]
//! (they are made from its types), before [`crate::timeline`] (which stores them).

use crate::scenario::{Check, EnvironmentSpec, Fault, StepAction};

/// Declares a word enum: each variant is written `Variant = "word"`, and `"word"` is both its
/// serde name and what `as_str()` and `Display` give.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// The word, exactly as the record stores it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use word_enum;

word_enum! {
    /// Which clock stamped a drill.
    pub enum ClockKind {
        /// Simulated time (`sim`): a seed repeats the drill exactly.
        Virtual = "virtual",
        /// The wall clock.
        Real = "real",
    }
}

word_enum! {
    /// Where a drill ran.
    pub enum EnvironmentKind {
        /// The in-process model.
        Sim = "sim",
        /// Containers on a Docker Engine.
        Docker = "docker",
    }
}

impl From<&EnvironmentSpec> for EnvironmentKind {
    fn from(spec: &EnvironmentSpec) -> Self {
        match spec {
            EnvironmentSpec::Sim(_) => EnvironmentKind::Sim,
            EnvironmentSpec::Docker(_) => EnvironmentKind::Docker,
        }
    }
}

word_enum! {
    /// What a probe checks.
    pub enum ProbeKind {
        /// An HTTP request.
        Http = "http",
        /// A TCP connection.
        Tcp = "tcp",
        /// A SQL query.
        Sql = "sql",
        /// An object store request.
        S3 = "s3",
        /// A command's exit status.
        Command = "command",
        /// A service level objective under load.
        Slo = "slo",
        /// Numbered writes read back after recovery (RPO).
        WriteLedger = "write_ledger",
    }
}

impl From<&Check> for ProbeKind {
    fn from(check: &Check) -> Self {
        match check {
            Check::Http { .. } => ProbeKind::Http,
            Check::Tcp { .. } => ProbeKind::Tcp,
            Check::Sql { .. } => ProbeKind::Sql,
            Check::S3 { .. } => ProbeKind::S3,
            Check::Command { .. } => ProbeKind::Command,
            Check::Slo { .. } => ProbeKind::Slo,
            Check::WriteLedger { .. } => ProbeKind::WriteLedger,
        }
    }
}

word_enum! {
    /// What fault was injected.
    pub enum FaultKind {
        /// A node drained.
        NodeDrain = "node_drain",
        /// A traffic surge.
        TrafficSurge = "traffic_surge",
        /// The database primary failed.
        DbFailover = "db_failover",
        /// The object store blocked.
        S3Block = "s3_block",
        /// A container stopped.
        ContainerStop = "container_stop",
        /// A container sent a signal.
        ContainerKill = "container_kill",
        /// A container paused.
        ContainerPause = "container_pause",
        /// A container restarted.
        ContainerRestart = "container_restart",
        /// A container disconnected from its network.
        NetworkDisconnect = "network_disconnect",
        /// Traffic between containers dropped.
        NetworkBlackhole = "network_blackhole",
        /// Several faults in turn.
        Sequence = "sequence",
    }
}

impl From<&Fault> for FaultKind {
    fn from(fault: &Fault) -> Self {
        match fault {
            Fault::NodeDrain { .. } => FaultKind::NodeDrain,
            Fault::TrafficSurge { .. } => FaultKind::TrafficSurge,
            Fault::DbFailover { .. } => FaultKind::DbFailover,
            Fault::S3Block { .. } => FaultKind::S3Block,
            Fault::ContainerStop { .. } => FaultKind::ContainerStop,
            Fault::ContainerKill { .. } => FaultKind::ContainerKill,
            Fault::ContainerPause { .. } => FaultKind::ContainerPause,
            Fault::ContainerRestart { .. } => FaultKind::ContainerRestart,
            Fault::NetworkDisconnect { .. } => FaultKind::NetworkDisconnect,
            Fault::NetworkBlackhole { .. } => FaultKind::NetworkBlackhole,
            Fault::Sequence { .. } => FaultKind::Sequence,
        }
    }
}

word_enum! {
    /// Who carries a procedure step out.
    pub enum StepKind {
        /// firedrill, by running a command or starting a container.
        Automated = "automated",
        /// A person, who confirms it.
        Manual = "manual",
    }
}

impl From<&StepAction> for StepKind {
    fn from(action: &StepAction) -> Self {
        match action {
            StepAction::Run { .. } | StepAction::Start(_) => StepKind::Automated,
            StepAction::Manual(_) => StepKind::Manual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    word_enum! {
        /// A test word.
        pub enum Light {
            /// Go.
            Green = "green",
            /// Two words.
            NotLit = "not lit",
        }
    }

    #[test]
    fn the_serde_name_is_the_display_text() {
        for light in [Light::Green, Light::NotLit] {
            assert_eq!(serde_json::to_string(&light).unwrap(), format!("\"{light}\""));
            assert_eq!(serde_json::from_str::<Light>(&format!("\"{}\"", light.as_str())).unwrap(), light);
        }
    }
    /// The scenario's words and the record's are the same, until the scenario's `kind()`
    /// returns these enums.
    #[test]
    fn the_record_names_what_the_shipped_scenarios_name() {
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut files = crate::scenario::files(&shipped).unwrap();
        files.extend(crate::scenario::files(&shipped.join("docker")).unwrap());
        assert!(files.len() >= 8, "sim and docker scenarios: {files:?}");
        for file in files {
            let s = crate::scenario::load(&file).unwrap();
            assert_eq!(EnvironmentKind::from(&s.environment).as_str(), s.environment.kind());
            assert_eq!(FaultKind::from(&s.fault).as_str(), s.fault.kind());
            for p in &s.probes {
                assert_eq!(ProbeKind::from(&p.check).as_str(), p.check.kind());
            }
        }
    }
}
