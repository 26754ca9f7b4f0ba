//! `firedrill simulate`: predictions by Monte Carlo over the sim model.

use std::path::PathBuf;

use clap::Args;
use firedrill::drill;
use firedrill::report::prediction;
use firedrill::scenario::{self, Scenario, ScenarioError};
use firedrill::score::EXIT_OK;
use firedrill::simulate::{simulate, Prediction};

use super::scenarios::load_checked;
use super::{CliError, Output, TextOrJson};

/// Predict a scenario's RTO, RPO and MTTD by Monte Carlo over the sim model: percentiles,
/// the chance of meeting each target, and the steps that drive the RTO.
#[derive(Args)]
pub struct SimulateArgs {
    /// Scenario files or folders (environment `sim`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Simulated drills per scenario.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Master seed; the same seed gives the same prediction on any number of threads.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// What-if override, `path=value` (e.g. `procedure.steps[2].sim.duration=30s`).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// Print the scenario as is and with the overrides side by side.
    #[arg(long)]
    compare: bool,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

impl SimulateArgs {
    /// Predicts every scenario, as is and (with `--set`) changed; stops at the first that
    /// cannot be predicted.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let threads = self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut files = Vec::new();
        for path in &self.paths {
            files.extend(scenario::files(path)?);
        }
        let mut json = Vec::new();
        for file in files {
            // Masked from the start: a problem in the file may quote what it lists.
            out.add_secrets(&scenario::redact_list(&file));
            let base = (self.compare || self.sets.is_empty()).then(|| load_checked(&file));
            let changed = (!self.sets.is_empty()).then(|| load_changed(&file, &self.sets));
            let mut predictions: Vec<(&str, Prediction)> = Vec::new();
            for (label, loaded) in [("as is", base), ("with --set", changed)] {
                let Some(loaded) = loaded else { continue };
                let s = loaded?;
                out.add_secrets(&s.redact);
                predictions.push((label, simulate(&s, self.runs, self.seed, threads)?));
            }
            match self.format {
                TextOrJson::Text => {
                    let refs: Vec<(&str, &Prediction)> = predictions.iter().map(|(l, p)| (*l, p)).collect();
                    out.println(&prediction::render(&refs));
                }
                TextOrJson::Json => json.extend(predictions.into_iter().map(|(label, p)| {
                    serde_json::json!({ "variant": label, "prediction": serde_json::to_value(&p).expect("plain data") })
                })),
            }
        }
        if self.format == TextOrJson::Json {
            out.println(&serde_json::to_string_pretty(&json).expect("plain data"));
        }
        Ok(EXIT_OK)
    }
}

/// The scenario with the `--set` overrides applied, checked; problems name the overrides.
fn load_changed(file: &std::path::Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
    let s = scenario::load_with(file, sets)?;
    drill::check(&s).map_err(|e| scenario::with_overrides(e, file, sets))?;
    Ok(s)
}
