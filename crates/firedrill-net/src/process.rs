//! Commands on this machine: runbook steps, `command` probes and readiness checks all run a
//! program the same way, killed if the caller stops waiting.

use crate::cause::IoCause;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command line is empty.
    #[error("no program")]
    NoProgram,
    /// The program could not be started (not found, not executable).
    #[error("run `{program}`")]
    Start {
        /// The program.
        program: String,
        /// Why it could not start.
        #[source]
        source: IoCause,
    },
    /// The program exited with another status than 0; `last` is the last line of its
    /// standard error, which usually says why.
    #[error("{status} ({last})")]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// The last line it printed on standard error.
        last: String,
    },
}

/// Runs `argv` on this machine, killed if dropped: the last line it printed when it exits 0;
/// its exit status and last error line otherwise, or why it could not start.
pub async fn run(argv: &[String]) -> Result<Option<String>, CommandError> {
    run_with(argv, &[]).await
}

/// [`run`] with `vars` added to the environment the program inherits (a step's `KUBECONFIG`).
pub async fn run_with(argv: &[String], vars: &[(&str, &std::ffi::OsStr)]) -> Result<Option<String>, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::NoProgram)?;
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| CommandError::Start { program: program.clone(), source: IoCause(e) })?;
    if output.status.success() {
        Ok(Some(last_line(&output.stdout)).filter(|l| !l.is_empty()))
    } else {
        Err(CommandError::Exited { status: output.status, last: last_line(&output.stderr) })
    }
}

/// The last non-empty line a program printed, for a one-line reason.
pub fn last_line(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
