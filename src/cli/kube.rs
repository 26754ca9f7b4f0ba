//! `firedrill kube`: commands of the kube environment (`kube rbac`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use firedrill::env::kube::access;
use firedrill::scenario::EnvironmentSpec;
use firedrill::score::{EXIT_INVALID, EXIT_OK};

use super::scenarios::load_one;
use super::{CliError, Output};

/// Kubernetes helpers: what a kube scenario needs from its cluster.
#[derive(Args)]
pub struct KubeArgs {
    #[command(subcommand)]
    command: KubeCommand,
}

#[derive(Subcommand)]
enum KubeCommand {
    /// Print the minimal ClusterRole and Roles a kube scenario's drill needs, as YAML for
    /// `kubectl apply -f -` (bind them to the user or service account that runs drills).
    Rbac {
        /// Scenario file.
        path: PathBuf,
    },
}

impl KubeArgs {
    /// Runs the subcommand.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        match self.command {
            KubeCommand::Rbac { path } => {
                let s = load_one(&path, out)?;
                let EnvironmentSpec::Kube(cluster) = &s.environment else {
                    out.eprintln(&format!(
                        "error: {} runs in `{}`, not `kube`: it needs no Kubernetes permissions",
                        path.display(),
                        s.environment.kind()
                    ));
                    return Ok(EXIT_INVALID);
                };
                out.print(&access::rbac_yaml(&s.name, &access::needed_by_scenario(cluster, &s)));
                Ok(EXIT_OK)
            }
        }
    }
}
