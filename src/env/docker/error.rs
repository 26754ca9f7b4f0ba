//! Why a docker operation failed. The engine records an error as its chain
//! ([`crate::text::error_chain`]), so each variant says only its own part and keeps its cause
//! as a source: "container `web`: image `x` is not on this machine".

use std::sync::Arc;

use testcontainers::bollard::errors::Error as ApiError;
use testcontainers::TestcontainersError;

use super::expansion::ExpandError;
use crate::duration::Dur;
use crate::load::LoadError;
use crate::probe::postgres::DbError;
use crate::probe::NotReady;
use crate::process::CommandError;
use crate::word::FaultKind;

/// Why an operation of the docker environment failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The revert journal could not be written: no change is made that could not be undone
    /// after a crash.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A change was to be made before the journal was opened (a bug).
    #[error("no revert journal is open")]
    NoJournal,
    /// Changes are left in effect, or their undo is not confirmed, at the drill's end.
    #[error("changes of the drill are not all undone; see {path} and run `firedrill recover --run {run}`")]
    LeftInJournal {
        /// The journal.
        path: std::path::PathBuf,
        /// The run.
        run: String,
    },
    /// This executable's path is unknown, so no dead man's switch can run it.
    #[error("the path of this firedrill executable is unknown, so no dead man's switch can be started")]
    NoExecutable,
    /// The engine is reached over TCP, so no dead man's switch can be handed its socket.
    #[error(
        "the Docker Engine is not reached through a Unix socket (DOCKER_HOST), so no dead man's switch can reach it"
    )]
    NoDeadmanSocket,
    /// No client for the Docker Engine could be made (bad `DOCKER_HOST`). Shared, because it
    /// is found once and reported by every operation.
    #[error("cannot talk to the Docker Engine")]
    Client(#[source] Arc<ApiError>),
    /// The Docker Engine does not answer.
    #[error("cannot reach the Docker Engine; is dockerd running? scripts/setup-docker starts it")]
    Unreachable(#[source] ApiError),
    /// A call to the Docker Engine failed; `action` says which.
    #[error("{action}")]
    Api {
        /// What was asked, as the message shows it ("listing containers", "exec `pg_ctl …`").
        action: String,
        /// The engine's answer.
        #[source]
        source: ApiError,
    },
    /// Something went wrong with one attached container.
    #[error("attached container `{name}`")]
    Attached {
        /// Its name in the scenario.
        name: String,
        /// What.
        #[source]
        source: Box<DockerError>,
    },
    /// No running container belongs to the Compose service.
    #[error("no running container of Compose service {project}/{service}")]
    NoComposeContainer {
        /// The Compose project.
        project: String,
        /// The service.
        service: String,
    },
    /// More than one container belongs to the Compose service: which to fault is ambiguous.
    #[error("Compose service {project}/{service} has {count} running containers; name one with `container`")]
    ManyComposeContainers {
        /// The Compose project.
        project: String,
        /// The service.
        service: String,
        /// How many run.
        count: usize,
    },
    /// An attached container is not running.
    #[error("it is not running")]
    NotRunning,
    /// An attached container is on no network, so probes could not reach it.
    #[error("it is on no network")]
    NoNetwork,
    /// Something went wrong with one provisioned container.
    #[error("container `{name}`")]
    Container {
        /// Its name in the scenario.
        name: String,
        /// What.
        #[source]
        source: Box<DockerError>,
    },
    /// The image is not on this machine; testcontainers would try to pull it, which cannot
    /// work offline.
    #[error("image `{image}` is not on this machine (scripts/setup-docker builds firedrill/base)")]
    ImageMissing {
        /// The image reference.
        image: String,
    },
    /// testcontainers could not start a container.
    #[error(transparent)]
    Testcontainers(#[from] TestcontainersError),
    /// testcontainers could not remove a container.
    #[error("container {id}")]
    Remove {
        /// The container's id.
        id: String,
        /// Why.
        #[source]
        source: TestcontainersError,
    },
    /// A container's port did not accept connections within its readiness timeout.
    #[error("port {port} not ready within {within}")]
    PortNotReady {
        /// The port.
        port: u16,
        /// The readiness timeout.
        within: Dur,
        /// The last check's failure.
        #[source]
        source: NotReady,
    },
    /// A container's readiness command did not succeed within its readiness timeout.
    #[error("`{command}` did not succeed within {within}")]
    CommandNotReady {
        /// The command line.
        command: String,
        /// The readiness timeout.
        within: Dur,
        /// The last run's failure.
        #[source]
        source: NotReady,
    },
    /// A string names a container the environment does not have, or is malformed.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// No container of that name has been started or attached.
    #[error("no container `{name}`")]
    NoContainer {
        /// The name.
        name: String,
    },
    /// A `start` step names a container already running.
    #[error("container `{name}` is already started")]
    AlreadyStarted {
        /// The name.
        name: String,
    },
    /// A fault could not be injected; `kind` is the fault's YAML word.
    #[error("{kind}")]
    Fault {
        /// The fault's kind.
        kind: FaultKind,
        /// Why.
        #[source]
        source: Box<DockerError>,
    },
    /// A blackhole's peer has no address to block.
    #[error("container `{name}` has no address")]
    NoAddress {
        /// The peer.
        name: String,
    },
    /// The node is drained already.
    #[error("node `{node}` is already drained")]
    AlreadyDrained {
        /// The node.
        node: String,
    },
    /// A drain found no uncordoned node for a workload.
    #[error("no node left to run `{name}` on")]
    NoNodeLeft {
        /// The workload.
        name: String,
    },
    /// A drained node's container could not be replaced.
    #[error("replacing `{name}`")]
    Replace {
        /// The container.
        name: String,
        /// Why.
        #[source]
        source: Box<DockerError>,
    },
    /// An eviction's task ended before it finished (aborted or panicked).
    #[error("an eviction was cut short")]
    EvictionCut(#[source] tokio::task::JoinError),
    /// A traffic surge names no URL.
    #[error("no `url`")]
    NoSurgeUrl,
    /// A traffic surge could not start.
    #[error(transparent)]
    Surge(#[from] crate::env::load::SurgeError),
    /// A load (an SLO probe's, or a surge) could not start.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A sequence reached the environment; the engine injects its faults one by one.
    #[error("a sequence is injected by the engine, one fault at a time")]
    Sequence,
    /// A fault of the simulated stack reached the docker environment (refused on load).
    #[error("`{kind}` is not a container fault")]
    NotContainerFault {
        /// The fault's kind.
        kind: FaultKind,
    },
    /// A killed container did not stop.
    #[error("container {id} still runs 5 s after the kill")]
    StillRunning {
        /// The container's id.
        id: String,
    },
    /// The network helper's iptables script failed.
    #[error("`{script}` exited {code}: {last}")]
    HelperFailed {
        /// The script.
        script: String,
        /// Its exit code.
        code: i64,
        /// The last line it printed.
        last: String,
    },
    /// A command run in a container exited with another code than 0.
    #[error("exit {code}: {last}")]
    ExecFailed {
        /// Its exit code (-1 when unknown).
        code: i64,
        /// The last line it printed.
        last: String,
    },
    /// No operator confirmed a manual step.
    #[error(transparent)]
    Manual(#[from] crate::env::ManualStepError),
    /// A command run on this machine failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// An `s3` probe's CA file could not be read.
    #[error(transparent)]
    ProbeTls(#[from] crate::tls::TlsError),
    /// An `s3` probe without an `endpoint` reaches AWS through the AWS SDK's standard chain,
    /// which this build left out (refused at load).
    #[cfg(not(feature = "aws"))]
    #[error("an `s3` probe without `endpoint` needs the `aws` feature, which this firedrill is built without")]
    S3StandardChainNotBuiltIn,
    /// A probe that is not a write ledger was asked to write.
    #[error("not a write ledger")]
    NotALedger,
    /// The write ledger's database failed.
    #[error(transparent)]
    Ledger(#[from] DbError),
    /// What a probe left in a team's system could not be removed.
    #[error(transparent)]
    ProbeLeftover(crate::probe::ProbeError),
    /// A system did not answer the removal of what a probe left in it.
    #[error("failed to remove {what}: no answer within 5 s")]
    LeftoverTimedOut {
        /// What was to be removed.
        what: String,
    },
    /// Several removals failed; each is listed.
    #[error("{}", .0.iter().map(|e| crate::text::error_chain(e)).collect::<Vec<_>>().join("; "))]
    Several(Vec<DockerError>),
}

impl DockerError {
    /// A failed Docker Engine call, described by `action`.
    pub(super) fn api(action: impl Into<String>) -> impl FnOnce(ApiError) -> Self {
        let action = action.into();
        move |source| DockerError::Api { action, source }
    }

    /// `errors` as one error: none is `Ok`, one is itself, more are listed.
    pub(super) fn all(mut errors: Vec<DockerError>) -> Result<(), DockerError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(DockerError::Several(errors)),
        }
    }
}
