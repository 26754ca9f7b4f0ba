//! The `firedrill` command: parse the arguments, call the library, exit with its code.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
