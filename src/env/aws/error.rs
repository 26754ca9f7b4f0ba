//! Why the aws environment could not do what a drill asked.

/// An aws environment's failure.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// STS could not say whose credentials these are (none found, expired, no network).
    #[error("failed to ask STS which account the credentials are of")]
    CallerIdentity(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The credentials are of an account the scenario does not list.
    #[error("the credentials are of account {account}, which the scenario's `accounts` ({allowed}) does not list: nothing was changed")]
    AccountNotAllowed {
        /// The caller's account.
        account: String,
        /// The scenario's accounts, listed.
        allowed: String,
    },
}
