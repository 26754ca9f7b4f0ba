//! What-if overrides: `--set procedure.steps[2].sim.duration=30s` changes one value of a
//! scenario before it is validated, so "as is" and "step automated" are two commands apart.

use std::path::Path;

use serde_json::Value;

use super::error::{Pos, Problem, ScenarioError};

/// Why an override could not be applied. Its text becomes the one problem of the scenario,
/// at no position: the override is on the command line, not in the file.
#[derive(Debug, thiserror::Error)]
enum OverrideError {
    /// The override is not `path=value`.
    #[error("--set `{set}`: expected path=value")]
    NotPathValue {
        /// The override as given.
        set: String,
    },
    /// The value after `=` is not YAML.
    #[error("--set {key}: value `{raw}` is not valid YAML: {source}")]
    ValueNotYaml {
        /// The path before `=`.
        key: String,
        /// The value as given.
        raw: String,
        /// What the YAML parser said (boxed: it is large, and this is the rare path).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The path does not lead to a value of the scenario.
    #[error("--set {key}: {source}")]
    Path {
        /// The path before `=`.
        key: String,
        /// Where it went wrong.
        #[source]
        source: PathError,
    },
    /// The changed scenario could not be written back as YAML.
    #[error("--set: failed to rebuild the scenario: {source}")]
    Rebuild {
        /// What the YAML writer said.
        #[source]
        source: serde_saphyr::ser::Error,
    },
}

/// Why a path like `procedure.steps[2].sim.duration` leads nowhere in the scenario.
#[derive(Debug, thiserror::Error)]
enum PathError {
    /// A key under a value that is not a mapping.
    #[error("`{name}` is not inside a mapping")]
    NotInMapping {
        /// The key.
        name: String,
    },
    /// Brackets that hold no number.
    #[error("`[{index}` is not an index")]
    NotAnIndex {
        /// What the brackets hold, with the closing one.
        index: String,
    },
    /// An index into a value that is not a list.
    #[error("`{name}` is not a list")]
    NotAList {
        /// The key of the value indexed.
        name: String,
    },
    /// An index past the end of the list.
    #[error("`{name}` has {len} entries, there is no [{index}]")]
    NoSuchEntry {
        /// The key of the list.
        name: String,
        /// Its length.
        len: usize,
        /// The index asked for.
        index: usize,
    },
}

/// Applies `path=value` overrides to scenario text and returns the text to validate. The
/// value is read as YAML (`30s`, `5`, `true`, `{kind: uniform, min: 1s, max: 2s}`).
pub fn apply(text: &str, file: &Path, sets: &[String]) -> Result<String, ScenarioError> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let options = super::yaml_options();
    let mut doc: Value =
        serde_saphyr::from_str_with_options(text, options.clone()).map_err(|e| ScenarioError::parse(file, text, &e))?;
    apply_to(&mut doc, sets, &options).map_err(|e| ScenarioError::Invalid {
        path: file.to_path_buf(),
        problems: vec![Problem::new(Pos { line: 0, column: 0 }, e.to_string())],
    })
}

/// Sets each override's value in the parsed scenario and writes it back as YAML.
fn apply_to(doc: &mut Value, sets: &[String], options: &serde_saphyr::Options) -> Result<String, OverrideError> {
    for set in sets {
        let (key, raw) = set.split_once('=').ok_or_else(|| OverrideError::NotPathValue { set: set.clone() })?;
        let value: Value = serde_saphyr::from_str_with_options(raw, options.clone()).map_err(|source| {
            OverrideError::ValueNotYaml { key: key.to_string(), raw: raw.to_string(), source: Box::new(source) }
        })?;
        let slot = locate(doc, key).map_err(|source| OverrideError::Path { key: key.to_string(), source })?;
        *slot = value;
    }
    // Keys sorted, as serde_json's default maps keep them, whatever features its users turn on.
    serde_saphyr::to_string(&crate::text::sorted_keys(doc.clone())).map_err(|source| OverrideError::Rebuild { source })
}

/// The value at a path like `procedure.steps[2].sim.duration`, creating missing mapping keys.
fn locate<'a>(mut v: &'a mut Value, key: &str) -> Result<&'a mut Value, PathError> {
    for part in key.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            if v.is_null() {
                *v = Value::Object(Default::default());
            }
            let map = v.as_object_mut().ok_or_else(|| PathError::NotInMapping { name: name.to_string() })?;
            v = map.entry(name.to_string()).or_insert(Value::Null);
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let i: usize =
                index.trim_end_matches(']').parse().map_err(|_| PathError::NotAnIndex { index: index.to_string() })?;
            let list = v.as_array_mut().ok_or_else(|| PathError::NotAList { name: name.to_string() })?;
            let len = list.len();
            v = list.get_mut(i).ok_or_else(|| PathError::NoSuchEntry { name: name.to_string(), len, index: i })?;
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nested_values_and_reports_bad_paths() {
        let text = "name: x\nprocedure:\n  steps:\n    - name: a\n      budget: 5m\n";
        let out = apply(text, Path::new("x.yaml"), &["procedure.steps[0].sim.duration=30s".into()]).unwrap();
        let doc: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(doc["procedure"]["steps"][0]["sim"]["duration"], "30s");
        assert_eq!(doc["procedure"]["steps"][0]["budget"], "5m");
        let err = apply(text, Path::new("x.yaml"), &["procedure.steps[3].budget=1m".into()]).unwrap_err();
        assert!(err.to_string().contains("has 1 entries, there is no [3]"), "{err}");
        assert!(apply(text, Path::new("x.yaml"), &["nonsense".into()]).is_err());
    }
}
