//! `firedrill schema`: the JSON Schema of the scenario format.

use clap::Args;
use firedrill::scenario;
use firedrill::score::EXIT_OK;

use super::{CliError, Output};

/// Print the JSON Schema of the scenario format, for editors.
#[derive(Args)]
pub struct SchemaArgs {}

impl SchemaArgs {
    /// Prints the schema.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        out.println(&serde_json::to_string_pretty(&scenario::json_schema()).expect("plain JSON"));
        Ok(EXIT_OK)
    }
}
