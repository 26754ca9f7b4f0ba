//! The `firedrill` command: parse the arguments, call the library, exit with its code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, before anything connects.
    #[cfg(feature = "live")]
    firedrill::tls::install_crypto_provider();
    let mut out = cli::Output::default();
    let code = cli::Cli::parse().exec(&mut out).unwrap_or_else(|e| {
        out.error(&e);
        e.exit_code()
    });
    // Every code is one of `score::EXIT_*` (0, 1, 2).
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
