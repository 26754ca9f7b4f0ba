//! Label and field selectors as the API server reads them: the query-string form
//! (`app=shop,tier in (web,api),!canary`, `spec.nodeName=node-a`) and an object's
//! `LabelSelector` (a PodDisruptionBudget's, a NetworkPolicy's), with the same matching rules.

use serde_json::Value;

/// One requirement of a label selector. `k!=v` and `notin` also match objects without the label,
/// as in the API.
#[derive(Debug, Clone)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A label selector; the empty one matches every object.
#[derive(Debug, Clone, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// The query-string form; `None` when it is malformed (the API answers 400).
    pub fn parse(text: &str) -> Option<Selector> {
        let mut requirements = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let mut terms = Vec::new();
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    terms.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(&text[start..]);
        for term in terms.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            requirements.push(requirement(term)?);
        }
        Some(Selector(requirements))
    }

    /// A `LabelSelector` object. A null selector is `None`: it selects nothing (policy/v1), while
    /// the empty object selects everything.
    pub fn from_object(selector: &Value) -> Option<Selector> {
        let selector = selector.as_object()?;
        let mut requirements = Vec::new();
        for (key, value) in selector.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
            requirements.push(Requirement::In(key.clone(), vec![value.as_str().unwrap_or_default().to_string()]));
        }
        for expression in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = expression["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = expression["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            requirements.push(match expression["operator"].as_str() {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                _ => Requirement::DoesNotExist(key),
            });
        }
        Some(Selector(requirements))
    }

    /// A map of labels that must all be equal: a Service's `spec.selector`.
    pub fn from_labels(labels: &Value) -> Selector {
        Selector::from_object(&serde_json::json!({ "matchLabels": labels })).unwrap_or_default()
    }

    /// Whether an object with these labels (`metadata.labels`, possibly absent) is selected.
    pub fn matches(&self, labels: &Value) -> bool {
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => label(key).is_some_and(|v| values.iter().any(|w| w == v)),
            Requirement::NotIn(key, values) => label(key).is_none_or(|v| values.iter().all(|w| w != v)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
        })
    }

    /// The query-string form, as a Scale's `status.selector` carries it.
    pub fn render(&self) -> String {
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|requirement| match requirement {
                Requirement::In(key, values) if values.len() == 1 => format!("{key}={}", values[0]),
                Requirement::In(key, values) => format!("{key} in ({})", values.join(",")),
                Requirement::NotIn(key, values) => format!("{key} notin ({})", values.join(",")),
                Requirement::Exists(key) => key.clone(),
                Requirement::DoesNotExist(key) => format!("!{key}"),
            })
            .collect();
        terms.join(",")
    }
}

/// One term of the query-string form.
fn requirement(term: &str) -> Option<Requirement> {
    if let Some(key) = term.strip_prefix('!') {
        return Some(Requirement::DoesNotExist(key.trim().to_string()));
    }
    if let Some((key, rest)) = term.split_once(char::is_whitespace) {
        let rest = rest.trim_start();
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some(values) = rest.strip_prefix("notin").and_then(set) {
            return Some(Requirement::NotIn(key.to_string(), values));
        }
        if let Some(values) = rest.strip_prefix("in").and_then(set) {
            return Some(Requirement::In(key.to_string(), values));
        }
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Some(Requirement::NotIn(key.trim().to_string(), vec![value.trim().to_string()]));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Requirement::In(key.trim().to_string(), vec![value.trim().to_string()]));
    }
    (!term.contains(char::is_whitespace)).then(|| Requirement::Exists(term.to_string()))
}

/// A field selector: `path=value` and `path!=value` terms over the fields the API indexes.
#[derive(Debug, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// The query-string form for a resource, or the API's 400 message for a field it does not
    /// index (`field label not supported: spec.foo`).
    pub fn parse(plural: &str, text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = match term.split_once("!=") {
                Some((field, value)) => (field, false, value),
                None => {
                    let (field, value) = term
                        .split_once("==")
                        .or_else(|| term.split_once('='))
                        .ok_or(format!("invalid selector: '{text}'"))?;
                    (field, true, value)
                }
            };
            if !indexed(plural, field) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), equal, value.to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the object's fields satisfy every term; an absent field reads as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let found = field.split('.').try_fold(object, |v, part| v.get(part));
            let text = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (text == *value) == *equal
        })
    }
}

/// The fields the API server can select a resource by (every resource: its name and namespace).
fn indexed(plural: &str, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || match plural {
            "pods" => matches!(
                field,
                "spec.nodeName"
                    | "spec.restartPolicy"
                    | "spec.schedulerName"
                    | "spec.serviceAccountName"
                    | "status.phase"
                    | "status.podIP"
            ),
            "nodes" => field == "spec.unschedulable",
            "events" => field.starts_with("involvedObject.") || matches!(field, "reason" | "type" | "source"),
            _ => false,
        }
}
