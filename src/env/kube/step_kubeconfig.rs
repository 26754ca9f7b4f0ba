//! The kubeconfig a drill's `run:` steps get, so that a runbook's own `kubectl` lines act on
//! the scenario's context, whatever the user's `current-context` is, without firedrill
//! copying a credential: a file holding only `current-context: <context>`, put first in
//! `KUBECONFIG` before the user's own files. kubectl merges the files of `KUBECONFIG` in
//! order, and "the first file to set a particular value or map key wins ... Example: Preserve
//! the context of the first file to set `current-context`" (kubernetes.io, Organizing Cluster
//! Access Using kubeconfig Files, "Merging kubeconfig files"; client-go's
//! tools/clientcmd/loader.go: "The first file to set a particular map key wins and map key's
//! value is never changed"); kube-rs's `Kubeconfig::merge` follows the same rule. The
//! clusters, users and credentials all come from the user's files, as they are.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::connect::kubeconfig_files;
use super::error::KubeError;

/// The steps' kubeconfig, in a folder of the drill's own, removed at teardown.
#[derive(Debug)]
pub struct StepKubeconfig {
    dir: PathBuf,
    value: OsString,
}

impl StepKubeconfig {
    /// Writes the file for `context` (readable by its owner only) in a folder of its own in
    /// the system's temporary folder, named after the run and this process (and a count, as
    /// one process may run several drills), and the `KUBECONFIG` that lists it first.
    pub fn write(context: &str, run: &str) -> Result<StepKubeconfig, KubeError> {
        static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("firedrill-kube-{run}-{}-{n}", std::process::id()));
        let file = dir.join("kubeconfig");
        let failed = |source| KubeError::StepKubeconfig { action: "write", path: file.clone(), source };
        // A new folder, its owner's alone: never one someone else made in the shared folder.
        let mut folder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(&dir).map_err(failed)?;
        // The context's name is a YAML string whatever its characters.
        let text = format!(
            "# firedrill: the context of the drill's steps; the rest is the user's kubeconfig\napiVersion: v1\nkind: Config\ncurrent-context: {}\n",
            serde_json::Value::String(context.into())
        );
        write_private(&file, &text).map_err(failed)?;
        let listed = std::iter::once(file.clone()).chain(kubeconfig_files());
        let value = std::env::join_paths(listed).map_err(|e| failed(std::io::Error::other(e)))?;
        Ok(StepKubeconfig { dir, value })
    }

    /// The `KUBECONFIG` the steps get: the file, then the user's kubeconfig files.
    pub fn value(&self) -> &std::ffi::OsStr {
        &self.value
    }

    /// Removes the file and its folder, saying why when it cannot.
    pub fn remove(self) -> Result<(), KubeError> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| KubeError::StepKubeconfig {
            action: "remove",
            path: self.dir.join("kubeconfig"),
            source,
        })
    }
}

impl Drop for StepKubeconfig {
    /// A drill that ends without its teardown (a test's, a panic) leaves no file behind; after
    /// [`StepKubeconfig::remove`] there is nothing left to remove.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `text` to `path`, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
