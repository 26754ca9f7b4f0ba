//! `firedrill run --dry-run`: what each scenario's drill would touch, printed; nothing is
//! created, changed or written. The environments find it ([`AnyEnvironment::dry_run`]).

use firedrill::env::AnyEnvironment;
use firedrill::scenario::Scenario;
use firedrill::score::{EXIT_INVALID, EXIT_OK};

use super::Output;

/// Prints what each scenario's drill would touch; [`EXIT_INVALID`] when one of them is
/// missing something it needs (it could not run), [`EXIT_OK`] otherwise.
pub fn print(scenarios: &[Scenario], out: &Output, state_dir: &std::path::Path) -> i32 {
    let mut could_not_run = 0;
    for s in scenarios {
        out.println(&format!(
            "{} ({}), environment {}: dry run, nothing is changed",
            s.name,
            s.path.display(),
            s.environment.kind()
        ));
        let run = match AnyEnvironment::for_scenario(s, 0, state_dir) {
            Ok(env) => env.dry_run(s),
            Err(problem) => firedrill::env::dry_run::DryRun { missing: vec![problem.message], ..Default::default() },
        };
        for touch in &run.touches {
            out.println(&format!("  {:<8} {}", touch.kind.as_str(), touch.detail));
        }
        let affected = match run.blast_radius.as_slice() {
            [] => String::new(),
            names => format!(" ({})", names.join(", ")),
        };
        let limit = s.max_blast_radius.map_or("no max_blast_radius".to_string(), |m| format!("max_blast_radius {m}"));
        out.println(&format!("  blast radius: {} container(s){affected}; {limit}", run.blast_radius.len()));
        for missing in &run.missing {
            out.println(&format!("  MISSING  {missing}"));
        }
        could_not_run += usize::from(!run.missing.is_empty());
        out.println("");
    }
    if could_not_run == 0 {
        return EXIT_OK;
    }
    out.eprintln(&format!("{could_not_run} scenario(s) could not run: see MISSING above"));
    EXIT_INVALID
}
