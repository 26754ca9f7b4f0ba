//! Commands on this machine: runbook steps, `command` probes and readiness checks all run a
//! program the same way, killed if the caller stops waiting.

use crate::probe::io_error;

/// Runs `argv` on this machine, killed if dropped: the last line it printed when it exits 0;
/// its exit status and last error line otherwise, or why it could not start.
pub async fn run(argv: &[String]) -> Result<Option<String>, String> {
    let (program, args) = argv.split_first().ok_or("no program")?;
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| io_error(&format!("run `{program}`"), &e))?;
    if output.status.success() {
        Ok(Some(last_line(&output.stdout)).filter(|l| !l.is_empty()))
    } else {
        Err(format!("{} ({})", output.status, last_line(&output.stderr)))
    }
}

/// The last non-empty line a program printed, for a one-line reason.
pub fn last_line(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
