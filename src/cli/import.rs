//! `firedrill import`: turns a Markdown runbook into scenario files and says what it read.

use std::path::PathBuf;

use clap::Args;
use firedrill::import::{self, Import};
use firedrill::score::EXIT_OK;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::{CliError, Output};

/// Turn Markdown runbooks into one scenario file per procedure (commands stay manual).
#[derive(Args)]
pub struct ImportArgs {
    /// The runbooks (Markdown, Spanish or English).
    #[arg(required = true)]
    runbooks: Vec<PathBuf>,
    /// Folder for the scenarios; with several runbooks, one folder per runbook inside it.
    /// Default: a folder named after the runbook, in the current folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ImportArgs {
    /// Writes each runbook's scenarios and prints its summary: repairs, one row per scenario,
    /// and the lines that looked like times but were not used.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let several = self.runbooks.len() > 1;
        for runbook in &self.runbooks {
            let imported = import::read(runbook)?;
            let named = PathBuf::from(runbook.file_stem().unwrap_or(runbook.as_os_str()));
            let dir = match &self.out {
                Some(dir) if several => dir.join(named),
                Some(dir) => dir.clone(),
                None => named,
            };
            let written = import::write_all(&dir, &imported.scenarios)?;
            out.println(&format!("{}:", runbook.display()));
            out.print(&summary(&imported));
            out.println(&format!("wrote {} scenario(s) to {}", written.len(), dir.display()));
        }
        Ok(EXIT_OK)
    }
}

/// The summary printed after an import.
fn summary(imported: &Import) -> String {
    let mut text = String::new();
    for r in &imported.repairs {
        text.push_str(&format!(
            "repaired: {} line(s), {} character(s) had been read as {} and saved again\n",
            r.lines, r.characters, r.encoding
        ));
    }
    let mut table = Builder::default();
    table.push_record(["scenario", "steps (budget)", "RTO", "RPO", "response (step 1)", "escalation"]);
    let time = |t: &Option<import::Timed>| t.as_ref().map_or("-".to_string(), |t| t.value.to_string());
    for (scenario, procedure) in imported.scenarios.iter().zip(&imported.runbook.procedures) {
        let steps: Vec<String> = procedure
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}. {} ({})",
                    i + 1,
                    s.title,
                    s.budget.as_ref().map_or("no time".to_string(), |b| b.value.to_string())
                )
            })
            .collect();
        let escalation = procedure.escalations.iter().map(|e| e.value).min().map_or("-".to_string(), |d| d.to_string());
        table.push_record([
            scenario.name.clone(),
            steps.join("\n"),
            time(&procedure.rto),
            time(&procedure.rpo),
            time(&procedure.response),
            escalation,
        ]);
    }
    text.push_str(&format!("{}\n", table.build().with(Style::rounded())));
    for s in &imported.runbook.service_targets {
        let t = |d: Option<firedrill::duration::Dur>| d.map_or("-".to_string(), |d| d.to_string());
        text.push_str(&format!("per service, line {}: {}: RTO {}, RPO {}\n", s.line, s.service, t(s.rto), t(s.rpo)));
    }
    if !imported.runbook.unused.is_empty() {
        text.push_str("lines with a time that were not used:\n");
        for m in &imported.runbook.unused {
            text.push_str(&format!("  {:>4}: {}\n", m.line, m.text));
        }
    }
    text
}
