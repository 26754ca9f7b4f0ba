//! `firedrill plan`: what a scenario would do, without doing it.

use std::path::PathBuf;

use clap::Args;
use firedrill::report::terminal;
use firedrill::score::EXIT_OK;

use super::scenarios::load_one;
use super::{CliError, Output};

/// Show what a scenario would inject, probe and time, without running anything.
#[derive(Args)]
pub struct PlanArgs {
    /// Scenario file.
    path: PathBuf,
}

impl PlanArgs {
    /// Prints the plan of the scenario.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let s = load_one(&self.path, out)?;
        out.print(&terminal::plan(&s));
        #[cfg(feature = "kube")]
        if let firedrill::scenario::EnvironmentSpec::Kube(cluster) = &s.environment {
            out.println("");
            for line in kube_lines(&s, cluster) {
                out.println(&line);
            }
        }
        #[cfg(feature = "aws")]
        if let firedrill::scenario::EnvironmentSpec::Aws(account) = &s.environment {
            out.println("");
            for line in firedrill::env::aws::plan::lines(&s, account) {
                out.println(&line);
            }
        }
        Ok(EXIT_OK)
    }
}

/// The kube part of the plan ([`firedrill::env::kube::plan`]): the cluster is asked, read-only
/// and briefly, which pods a drain would evict.
#[cfg(feature = "kube")]
fn kube_lines(s: &firedrill::scenario::Scenario, cluster: &firedrill::scenario::KubeCluster) -> Vec<String> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(firedrill::env::kube::plan::lines(s, cluster)),
        Err(e) => vec![format!("kube: the cluster is not asked: failed to start the runtime: {e}")],
    }
}
