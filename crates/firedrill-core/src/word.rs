//! The words of a drill: closed sets of names (where it ran, what fault, what a probe checks,
//! how a step ended) that records and timelines store as text. Each is an enum declared with
//! [`word_enum!`], whose serde name and `Display` text are the same literal, so that the JSON,
//! every report and every comparison use one spelling.
//!
//! The scenario's own types carry configuration and name their kind with these words
//! (`Fault::kind`, `Check::kind`…); records carry only the word, so that a stored record stays
//! readable when a scenario type changes shape. Layer: a unit, before [`crate::scenario`].

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
        /// A Kubernetes cluster, through its API.
        Kube = "kube",
        /// An AWS account, through the AWS SDK.
        Aws = "aws",
        /// People in a room walking through the procedure (`firedrill tabletop`): every time
        /// in its record is one they marked.
        Tabletop = "tabletop",
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
        /// A DNS name's answer.
        Dns = "dns",
        /// A command's exit status.
        Command = "command",
        /// A service level objective under load.
        Slo = "slo",
        /// Numbered writes read back after recovery (RPO).
        WriteLedger = "write_ledger",
        /// A PromQL query against the team's Prometheus.
        Prometheus = "prometheus",
        /// A named Prometheus alert: detection, as the team's paging sees it.
        Alert = "alert",
        /// A Kubernetes Deployment's ready replicas.
        Deployment = "deployment",
        /// A Kubernetes Service's ready EndpointSlice addresses.
        Endpoints = "endpoints",
    }
}

word_enum! {
    /// What fault was injected.
    pub enum FaultKind {
        /// A node drained.
        NodeDrain = "node_drain",
        /// Pods killed (grace period 0).
        PodKill = "pod_kill",
        /// Pods deleted gracefully.
        PodDelete = "pod_delete",
        /// A workload scaled.
        Scale = "scale",
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

word_enum! {
    /// Who carries a procedure step out.
    pub enum StepKind {
        /// firedrill, by running a command or starting a container.
        Automated = "automated",
        /// A person, who confirms it.
        Manual = "manual",
    }
}

#[cfg(test)]
mod tests {
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
}
