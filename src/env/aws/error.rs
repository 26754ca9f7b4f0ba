//! Why the aws environment could not do what a drill asked.

use super::rds::RdsError;
use super::s3_block::S3BlockError;

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
    /// An RDS call or check failed.
    #[error(transparent)]
    Rds(#[from] RdsError),
    /// A bucket policy could not be read, blocked or restored.
    #[error(transparent)]
    S3Block(#[from] S3BlockError),
    /// The revert journal could not be written.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A probe's CA file could not be read.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A write ledger failed.
    #[error(transparent)]
    Ledger(#[from] crate::probe::postgres::DbError),
    /// An SDK configuration was needed before `prepare` made one.
    #[error("the aws environment is not prepared: no SDK configuration")]
    NotPrepared,
    /// A change was about to be made before the journal was open.
    #[error("the revert journal is not open: nothing may change before it is")]
    NoJournal,
    /// The fault is not one the aws environment has.
    #[error("`{kind}` is not supported in aws (db_failover and s3_block are)")]
    Unsupported {
        /// The fault's kind.
        kind: crate::word::FaultKind,
    },
    /// After the revert, the bucket's policy is not the one it had before the block.
    #[error("bucket {bucket}'s policy after the revert is not the one it had before (sha256 {before} before, {after} now): see the evidence and put it back by hand")]
    PolicyNotRestored {
        /// The bucket.
        bucket: String,
        /// The hash of the policy before the block (`none`: it had none).
        before: String,
        /// The hash of the policy now.
        after: String,
    },
    /// Changes are left in effect at the drill's end.
    #[error("changes of the drill are not all undone; see {path} and run `firedrill recover --run {run}`")]
    LeftInJournal {
        /// The journal.
        path: std::path::PathBuf,
        /// The run.
        run: String,
    },
}
