//! The command line: clap subcommands over the library, one module each, with their arguments
//! (`…Args`) and an `exec`. Parses, calls, prints through one [`Output`]; nothing else.

#[cfg(feature = "aws")]
mod aws;
mod dry_run;
mod error;
mod import;
#[cfg(feature = "kube")]
mod kube;
#[cfg(feature = "live")]
mod load;
mod output;
mod plan;
mod recover;
mod report;
mod run;
mod scenarios;
mod schema;
mod simulate;
#[cfg(feature = "docker")]
mod stack;
mod tabletop;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};

pub use error::CliError;
pub use output::Output;

/// Disaster-recovery drills: inject a fault, time the recovery, score it against RTO, RPO,
/// MTTD and MTTR targets.
#[derive(Parser)]
#[command(name = "firedrill", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Report(report::ReportArgs),
    Validate(validate::ValidateArgs),
    Import(import::ImportArgs),
    Plan(plan::PlanArgs),
    Simulate(simulate::SimulateArgs),
    Schema(schema::SchemaArgs),
    Tabletop(tabletop::TabletopArgs),
    Recover(recover::RecoverArgs),
    #[command(hide = true)]
    Deadman(recover::DeadmanArgs),
    #[cfg(feature = "live")]
    Load(load::LoadArgs),
    #[cfg(feature = "docker")]
    Stack(stack::StackArgs),
    #[cfg(feature = "kube")]
    Kube(kube::KubeArgs),
    #[cfg(feature = "aws")]
    Aws(aws::AwsArgs),
}

/// How `simulate` and `load` print their result.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

impl Cli {
    /// Runs the subcommand; the exit code is one of `score::EXIT_*`.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        match self.command {
            Command::Run(args) => args.exec(out),
            Command::Report(args) => args.exec(out),
            Command::Validate(args) => args.exec(out),
            Command::Import(args) => args.exec(out),
            Command::Plan(args) => args.exec(out),
            Command::Simulate(args) => args.exec(out),
            Command::Schema(args) => args.exec(out),
            Command::Tabletop(args) => args.exec(out),
            Command::Recover(args) => args.exec(out),
            Command::Deadman(args) => args.exec(out),
            #[cfg(feature = "live")]
            Command::Load(args) => args.exec(out),
            #[cfg(feature = "docker")]
            Command::Stack(args) => args.exec(out),
            #[cfg(feature = "kube")]
            Command::Kube(args) => args.exec(out),
            #[cfg(feature = "aws")]
            Command::Aws(args) => args.exec(out),
        }
    }
}
