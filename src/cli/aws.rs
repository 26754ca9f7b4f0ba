//! `firedrill aws`: commands of the aws environment (`aws policy`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use firedrill::env::aws::iam;
use firedrill::scenario::EnvironmentSpec;
use firedrill::score::{EXIT_INVALID, EXIT_OK};

use super::scenarios::load_one;
use super::{CliError, Output};

/// AWS helpers: what an aws scenario needs from the account.
#[derive(Args)]
pub struct AwsArgs {
    #[command(subcommand)]
    command: AwsCommand,
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Print the minimal IAM policy an aws scenario's drill needs, as JSON for
    /// `aws iam create-policy --policy-document file://...` (attach it to the role that runs
    /// drills); the actions that change something are allowed only on resources carrying the
    /// scenario's allow-tag.
    Policy {
        /// Scenario file.
        path: PathBuf,
    },
}

impl AwsArgs {
    /// Runs the subcommand.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        match self.command {
            AwsCommand::Policy { path } => {
                let s = load_one(&path, out)?;
                let EnvironmentSpec::Aws(account) = &s.environment else {
                    out.eprintln(&format!(
                        "error: {} runs in `{}`, not `aws`: it needs no IAM permissions",
                        path.display(),
                        s.environment.kind()
                    ));
                    return Ok(EXIT_INVALID);
                };
                out.println(&iam::policy_document(&iam::needed(account, &s), &account.allow_tag));
                Ok(EXIT_OK)
            }
        }
    }
}
