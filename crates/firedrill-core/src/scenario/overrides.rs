//! What-if overrides: `--set procedure.steps[2].sim.duration=30s` changes one value of a
//! scenario before it is validated, so "as is" and "step automated" are two commands apart.

use std::path::Path;

use serde_json::Value;

use super::error::{Pos, Problem, ScenarioError};

fn invalid(path: &Path, message: String) -> ScenarioError {
    ScenarioError::Invalid {
        path: path.to_path_buf(),
        problems: vec![Problem::new(Pos { line: 0, column: 0 }, message)],
    }
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
    for set in sets {
        let (key, raw) =
            set.split_once('=').ok_or_else(|| invalid(file, format!("--set `{set}`: expected path=value")))?;
        let value: Value = serde_saphyr::from_str_with_options(raw, options.clone())
            .map_err(|e| invalid(file, format!("--set {key}: value `{raw}` is not valid YAML: {e}")))?;
        let slot = locate(&mut doc, key).map_err(|why| invalid(file, format!("--set {key}: {why}")))?;
        *slot = value;
    }
    serde_saphyr::to_string(&doc).map_err(|e| invalid(file, format!("--set: failed to rebuild the scenario: {e}")))
}

/// The value at a path like `procedure.steps[2].sim.duration`, creating missing mapping keys.
fn locate<'a>(mut v: &'a mut Value, key: &str) -> Result<&'a mut Value, String> {
    for part in key.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            if v.is_null() {
                *v = Value::Object(Default::default());
            }
            let map = v.as_object_mut().ok_or_else(|| format!("`{name}` is not inside a mapping"))?;
            v = map.entry(name.to_string()).or_insert(Value::Null);
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let i: usize = index.trim_end_matches(']').parse().map_err(|_| format!("`[{index}` is not an index"))?;
            let list = v.as_array_mut().ok_or_else(|| format!("`{name}` is not a list"))?;
            let len = list.len();
            v = list.get_mut(i).ok_or_else(|| format!("`{name}` has {len} entries, there is no [{i}]"))?;
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
