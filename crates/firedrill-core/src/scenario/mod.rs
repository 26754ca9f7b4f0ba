//! Scenarios: parsing and validating the YAML that says what a drill does.
//!
//! Loading happens in two stages: [`model::RawScenario`] mirrors the file with source
//! positions, then [`Scenario`] is the validated, fully resolved form with defaults applied.
//! Every problem names the file, line and column.

mod check;
pub mod dsn;
mod error;
pub mod model;
mod overrides;
mod resolve;

pub use error::{Pos, Problem, ScenarioError};
pub use model::*;
pub use resolve::{Positions, ResolvedStep, Scenario, StepAction};

use std::path::{Path, PathBuf};

/// The largest scenario or stack file read: far above any runbook, far below what would stall
/// a load.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads a scenario or stack file. Only a regular file of at most [`MAX_FILE_BYTES`] is read,
/// so that a path naming a device (`from: /dev/zero`) or a huge file is an error at once
/// rather than a load that never ends.
fn read_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let io = |source| ScenarioError::Io { path: path.to_path_buf(), source };
    let refuse = |why: String| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(refuse(format!("larger than {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(text)
}

/// Loads and validates one scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = read_text(path)?;
    parse(&text, path)
}

/// Loads a scenario with what-if overrides (`path=value`) applied before validation.
pub fn load_with(path: &Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
    let text = read_text(path)?;
    let changed = overrides::apply(&text, path, sets)?;
    parse(&changed, path).map_err(|e| with_overrides(e, path, sets))
}

/// Restates an error found in overridden text: its positions point into the rewritten text,
/// not the file, so it names the overrides instead.
pub fn with_overrides(e: ScenarioError, path: &Path, sets: &[String]) -> ScenarioError {
    if sets.is_empty() || matches!(e, ScenarioError::Io { .. }) {
        return e;
    }
    let mut message = e.problems().iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; ");
    if message.contains("unknown field `duration`") {
        message += " (a step's simulated time is `sim.duration`, e.g. procedure.steps[2].sim.duration=30s)";
    }
    let problem = Problem::new(Pos { line: 0, column: 0 }, format!("with --set {}: {message}", sets.join(" --set ")));
    ScenarioError::Invalid { path: path.to_path_buf(), problems: vec![problem] }
}

/// Parses and validates scenario text; `path` is only used in messages and the record.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let mut raw: RawScenario =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| ScenarioError::parse(path, text, &e))?;
    if let EnvironmentSpec::Docker(stack) = &mut raw.environment {
        include_stack(stack, path)?;
    }
    resolve::resolve(raw, text, path)
}

/// How scenario and stack files are read: `yes`/`no` are not booleans, and errors carry
/// positions rather than snippets (the caret display is ours).
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true, with_snippet: false }
}

/// Puts the stack file named by `from` first in `stack`: its nodes, containers and
/// attachments, then the scenario's own. Problems in the stack file name that file.
fn include_stack(stack: &mut DockerStack, scenario: &Path) -> Result<(), ScenarioError> {
    let Some(from) = &stack.from else { return Ok(()) };
    let path = relative_to(scenario, Path::new(from));
    let text = read_text(&path)?;
    let base: DockerStack = serde_saphyr::from_str_with_options(&text, yaml_options())
        .map_err(|e| ScenarioError::parse(&path, &text, &e))?;
    if base.from.is_some() {
        let at = Pos { line: 1, column: 1 };
        let problem = Problem::new(at, "a stack file cannot itself use `from`; list its containers in it");
        return Err(ScenarioError::Invalid { path, problems: vec![problem] });
    }
    let own = std::mem::take(stack);
    *stack = DockerStack {
        from: Some(path.display().to_string()),
        nodes: base.nodes.into_iter().chain(own.nodes).collect(),
        containers: base.containers.into_iter().chain(own.containers).collect(),
        attach: base.attach.into_iter().chain(own.attach).collect(),
        log_limit: own.log_limit.or(base.log_limit),
    };
    Ok(())
}

/// The scenario files a path names: the file itself, or the `.yaml`/`.yml` files directly in
/// a folder, sorted so runs are reproducible.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(ScenarioError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| ScenarioError::Io { path: path.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ScenarioError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no .yaml scenario files in this folder"),
        });
    }
    Ok(files)
}

/// The `redact:` list of a scenario file that may not load, so that the problems found in it
/// can be shown masked. Empty when the file cannot be read or is not YAML at all.
pub fn redact_list(path: &Path) -> Vec<String> {
    /// The one field read, whatever else the file holds.
    #[derive(serde::Deserialize)]
    struct Listed {
        #[serde(default)]
        redact: Vec<String>,
    }
    let Ok(text) = read_text(path) else { return Vec::new() };
    serde_saphyr::from_str_with_options::<Listed>(&text, yaml_options()).map(|l| l.redact).unwrap_or_default()
}

/// The JSON Schema of the scenario format, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawScenario)).expect("a schema is plain JSON")
}

/// A path a scenario names, found from the scenario's folder when it is relative.
pub(crate) fn relative_to(scenario: &Path, named: &Path) -> PathBuf {
    scenario.parent().unwrap_or(Path::new(".")).join(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `path` on a thread of its own, so that a load that never ends fails the test
    /// instead of hanging it; the error as text.
    fn load_within_10s(path: PathBuf) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(load(&path).map(drop).map_err(|e| e.to_string())));
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the load ends")
    }

    #[test]
    fn a_device_is_refused_as_a_scenario_and_as_a_stack_file() {
        let err = load_within_10s(PathBuf::from("/dev/zero")).unwrap_err();
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "name: s\nenvironment: {kind: docker, from: /dev/zero}\nfault: {kind: container_stop, target: web}\n",
        )
        .unwrap();
        let err = load_within_10s(path).unwrap_err();
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
    }
}
