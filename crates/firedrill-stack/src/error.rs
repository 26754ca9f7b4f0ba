//! Why a part of the stack could not run.

/// Why a part of the stack could not start. Once serving, a part never fails: a broken
/// dependency is answered per request and logged.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// A backend is not `HOST:PORT`.
    #[error("backend `{address}`: expected HOST:PORT, e.g. `web-1:8080`")]
    Backend {
        /// The backend as given.
        address: String,
    },
    /// The listening address could not be bound.
    #[error("failed to listen on {address}: {source}")]
    Listen {
        /// The address as given.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("failed to start the runtime: {0}")]
    Runtime(std::io::Error),
    /// SIGTERM and SIGINT could not be caught, so a drain would be impossible.
    #[error("failed to install the signal handlers: {0}")]
    Signals(std::io::Error),
}
