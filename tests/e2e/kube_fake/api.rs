//! The fake's HTTP API: one request in, one answer out, with the API server's paths, verbs,
//! codes and bodies for the subset firedrill uses (lists with selectors, get, create, replace,
//! merge and strategic-merge patches, deletes with preconditions and grace periods, the
//! eviction and scale subresources, SelfSubjectAccessReviews, watches).

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use serde_json::{json, Value};

use super::cluster::FakeSpec;
use super::controller::{is_terminating, start_termination};
use super::selector::{FieldSelector, Selector};
use super::status::{success, ApiError};
use super::store::{text, Kind, RecordedRequest, State};
use super::subresource::{access_review, evict, exec, forward, scale, scale_of, Exec, Forward};

/// An HTTP request as the fake reads it.
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The Content-Type header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What the fake answers.
pub enum Answer {
    /// A JSON body with its code and the `Warning` headers the API adds (unknown fields).
    Json { code: u16, body: Value, warnings: Vec<String> },
    /// A plain-text 200: a pod's log.
    Text(String),
    /// A plain-text 200 streamed: the log of a Job pod's program, followed or not.
    Log {
        /// What it printed.
        output: super::jobs::Output,
        /// Whether to send what it prints next, until it ends.
        follow: bool,
    },
    /// An exec's outcome, streamed over a WebSocket (`v4.channel.k8s.io`).
    Exec(Exec),
    /// A port-forward, streamed over a WebSocket (`v4.channel.k8s.io`).
    Forward(Forward),
    /// A watch: newline-delimited events, streamed by the server.
    Watch(WatchRequest),
}

/// A watch to stream: which objects, from which revision, until when.
pub struct WatchRequest {
    /// The resource watched.
    pub kind: &'static Kind,
    /// Its namespace, or all.
    pub namespace: Option<String>,
    /// The label selector.
    pub labels: Selector,
    /// The field selector.
    pub fields: FieldSelector,
    /// Changes after this revision are sent.
    pub after: u64,
    /// Objects sent first as `ADDED` (a watch from resourceVersion 0 or none).
    pub initial: Vec<Value>,
    /// When the server ends the watch (`timeoutSeconds`).
    pub timeout: Duration,
}

impl WatchRequest {
    /// Whether an object is one this watch reports.
    fn selects(&self, object: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == text(object, "/metadata/namespace"))
            && self.labels.matches(&object["metadata"]["labels"])
            && self.fields.matches(object)
    }

    /// The event lines due since the last call, and moves past them. An object's change that
    /// takes it into the selection is `ADDED`, out of it `DELETED`, as the API's watch cache says.
    pub fn next_lines(&mut self, state: &State) -> Vec<String> {
        let mut lines: Vec<String> =
            std::mem::take(&mut self.initial).into_iter().map(|object| event_line("ADDED", &object)).collect();
        lines.extend(state.changes_after(self.kind.plural, self.after).filter_map(|change| {
            let selected = self.selects(&change.object);
            let was_selected = change.previous.as_ref().is_some_and(|previous| self.selects(previous));
            // A change that moves an object into or out of the selection is its ADDED or DELETED.
            let kind = match (change.kind, was_selected, selected) {
                ("MODIFIED", false, true) => "ADDED",
                ("MODIFIED", true, false) => "DELETED",
                (kind, _, true) => kind,
                _ => return None,
            };
            Some(event_line(kind, &change.object))
        }));
        self.after = state.revision();
        lines
    }
}

/// One watch event as the API streams it.
fn event_line(kind: &str, object: &Value) -> String {
    format!("{}\n", json!({ "type": kind, "object": object }))
}

/// The query's parameters, decoded.
fn parameters(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match s.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The request as the fake reads it, with its decoded query.
pub struct Call<'a> {
    /// The request.
    pub request: &'a Request,
    query: Vec<(String, String)>,
}

impl Call<'_> {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (`command=a&command=b`).
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// `?dryRun=All`.
    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// The body as JSON; 400 when it is not.
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.request.body)
            .map_err(|e| ApiError::bad_request(format!("the request body could not be decoded: {e}")))
    }

    /// The selectors of a list, watch or delete-collection.
    fn selectors(&self, kind: &Kind) -> Result<(Selector, FieldSelector), ApiError> {
        let labels = self.param("labelSelector").unwrap_or_default();
        let labels = Selector::parse(labels)
            .ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: {labels}")))?;
        let fields = FieldSelector::parse(kind.plural, self.param("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }
}

/// The body through a type, with the API's warnings for the fields it dropped: a real API server
/// (field validation "Warn") accepts a body with unknown fields and says so only in a header.
pub fn checked(
    normalize: fn(Value) -> Result<Value, serde_json::Error>,
    sent: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let kept = normalize(sent.clone())
        .map_err(|e| ApiError::bad_request(format!("the request body could not be decoded: {e}")))?;
    let mut warnings = Vec::new();
    unknown_fields(&sent, &kept, "", &mut warnings);
    Ok((kept, warnings))
}

/// `unknown field "a.b"` for each key sent that the type did not keep.
fn unknown_fields(sent: &Value, kept: &Value, prefix: &str, out: &mut Vec<String>) {
    let (Value::Object(sent), Value::Object(kept)) = (sent, kept) else { return };
    for (key, value) in sent {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match kept.get(key) {
            Some(kept) => unknown_fields(value, kept, &path, out),
            None if !value.is_null() => out.push(format!("unknown field \"{path}\"")),
            None => {}
        }
    }
}

/// A JSON merge patch (RFC 7386). Strategic merge is the same for what firedrill patches (maps
/// and scalars: a node's `spec.unschedulable`, labels, annotations, replicas).
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().expect("an object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// An object as a list carries it: without its own kind and apiVersion.
fn list_item(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    object
}

/// A list of objects of a resource at the current revision.
fn list_of(state: &State, kind: &Kind, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": kind.api_version(),
        "kind": format!("{}List", kind.kind),
        "metadata": { "resourceVersion": state.revision().to_string() },
        "items": items.into_iter().map(list_item).collect::<Vec<_>>(),
    })
}

/// A JSON answer without warnings.
pub fn json_answer(code: u16, body: Value) -> Answer {
    Answer::Json { code, body, warnings: Vec::new() }
}

/// Serves one request, recording it first.
pub fn handle(state: &mut State, spec: &FakeSpec, request: &Request, now: Instant) -> Answer {
    state.requests.push(RecordedRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        content_type: request.content_type.clone(),
        body: String::from_utf8_lossy(&request.body).into_owned(),
    });
    let call = Call { request, query: parameters(&request.query) };
    route(state, spec, &call, now).unwrap_or_else(|e| {
        let (code, body) = e.answer();
        json_answer(code, body)
    })
}

/// Finds the resource and the verb a path and method name.
fn route(state: &mut State, spec: &FakeSpec, call: &Call, now: Instant) -> Result<Answer, ApiError> {
    let segments: Vec<&str> = call.request.path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => {
            let info = json!({ "major": "1", "minor": "35", "gitVersion": "v1.35.0-firedrill-fake", "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64" });
            return Ok(json_answer(200, info));
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_such_path()),
    };
    if (group, version, rest, call.request.method.as_str())
        == ("authorization.k8s.io", "v1", &["selfsubjectaccessreviews"][..], "POST")
    {
        return access_review(spec, call);
    }
    let (namespace, rest) = match rest {
        ["namespaces", namespace, tail @ ..] if !tail.is_empty() => (Some(*namespace), tail),
        _ => (None, rest),
    };
    let [plural, tail @ ..] = rest else { return Err(ApiError::no_such_path()) };
    let kind = Kind::find(group, version, plural).ok_or_else(ApiError::no_such_path)?;
    let across_namespaces = namespace.is_none() && kind.namespaced;
    if (namespace.is_some() && !kind.namespaced)
        || (across_namespaces && !(tail.is_empty() && call.request.method == "GET"))
    {
        return Err(ApiError::no_such_path());
    }
    let scope = namespace.unwrap_or_default();
    let scalable = matches!(kind.plural, "deployments" | "replicasets");
    match (call.request.method.as_str(), tail) {
        ("GET", []) if matches!(call.param("watch"), Some("true" | "1")) => watch(state, kind, namespace, call),
        ("GET", []) => {
            let (labels, fields) = call.selectors(kind)?;
            let items = state
                .list(kind.plural, namespace)
                .into_iter()
                .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
                .collect();
            Ok(json_answer(200, list_of(state, kind, items)))
        }
        ("POST", []) => create(state, kind, scope, call),
        ("DELETE", []) => {
            let (labels, fields) = call.selectors(kind)?;
            let options = delete_options(call)?;
            let doomed: Vec<Value> = state
                .list(kind.plural, namespace)
                .into_iter()
                .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
                .collect();
            let mut deleted = Vec::new();
            // The list answered holds the objects (a pod as its delete left it), never Statuses.
            for object in doomed {
                let answer = delete(state, spec, kind, object.clone(), &options, call.dry_run(), now)?;
                deleted.push(if kind.plural == "pods" { answer } else { object });
            }
            Ok(json_answer(200, list_of(state, kind, deleted)))
        }
        ("GET", [name] | [name, "status"]) => Ok(json_answer(200, stored(state, kind, scope, name)?)),
        ("PUT", [name]) => write(state, kind, stored(state, kind, scope, name)?, call.json()?, false, call.dry_run()),
        ("PUT", [name, "status"]) => {
            write(state, kind, stored(state, kind, scope, name)?, call.json()?, true, call.dry_run())
        }
        ("PATCH", [name]) => patch(state, kind, scope, name, call, false),
        ("PATCH", [name, "status"]) => patch(state, kind, scope, name, call, true),
        ("DELETE", [name]) => {
            let object = stored(state, kind, scope, name)?;
            let options = delete_options(call)?;
            let body = delete(state, spec, kind, object, &options, call.dry_run(), now)?;
            Ok(json_answer(200, body))
        }
        ("GET", [name, "scale"]) if scalable => Ok(json_answer(200, scale_of(&stored(state, kind, scope, name)?))),
        ("PATCH" | "PUT", [name, "scale"]) if scalable => scale(state, kind, stored(state, kind, scope, name)?, call),
        ("GET", [name, "log"]) if kind.plural == "pods" => {
            let pod = stored(state, kind, scope, name)?;
            if let Some(process) = state.processes.get(&(scope.to_string(), name.to_string())) {
                return Ok(Answer::Log {
                    output: process.output.clone(),
                    follow: call.param("follow") == Some("true"),
                });
            }
            let started = text(&pod, "/status/startTime");
            Ok(Answer::Text(format!(
                "{started} fake kubelet: {scope}/{name} running on {}\n",
                text(&pod, "/spec/nodeName")
            )))
        }
        ("GET" | "POST", [name, "exec"]) if kind.plural == "pods" => {
            Ok(Answer::Exec(exec(state, spec, scope, name, call)?))
        }
        ("GET" | "POST", [name, "portforward"]) if kind.plural == "pods" => {
            Ok(Answer::Forward(forward(state, spec, scope, name, call)?))
        }
        ("POST", [name, "eviction"]) if kind.plural == "pods" => evict(state, spec, scope, name, call, now),
        (_, [] | [_] | [_, "status"]) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::no_such_path()),
    }
}

/// A stored object, or 404.
pub fn stored(state: &State, kind: &Kind, namespace: &str, name: &str) -> Result<Value, ApiError> {
    state.get(kind.plural, namespace, name).cloned().ok_or_else(|| ApiError::not_found(kind, name))
}

/// A watch from `resourceVersion` (or from now, with the current objects as `ADDED`).
fn watch(state: &State, kind: &'static Kind, namespace: Option<&str>, call: &Call) -> Result<Answer, ApiError> {
    let (labels, fields) = call.selectors(kind)?;
    let timeout = Duration::from_secs(call.param("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800));
    let mut watch = WatchRequest {
        kind,
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        after: state.revision(),
        initial: Vec::new(),
        timeout,
    };
    match call.param("resourceVersion").unwrap_or_default() {
        "" | "0" => {
            watch.initial = state.list(kind.plural, namespace).into_iter().filter(|o| watch.selects(o)).collect()
        }
        version => {
            watch.after =
                version.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version \"{version}\"")))?
        }
    }
    Ok(Answer::Watch(watch))
}

/// POST to a collection: the object stored with the API's metadata, status dropped (the API
/// ignores a status sent on create; a pod starts Pending).
fn create(state: &mut State, kind: &'static Kind, namespace: &str, call: &Call) -> Result<Answer, ApiError> {
    let mut object = call.json()?;
    let sent_namespace = text(&object, "/metadata/namespace");
    if kind.namespaced && !sent_namespace.is_empty() && sent_namespace != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request".to_string(),
        ));
    }
    if kind.namespaced && state.get("namespaces", "", namespace).is_none() {
        return Err(ApiError::not_found(Kind::named("namespaces"), namespace));
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if kind.plural == "pods" {
        object["status"] = json!({ "phase": "Pending" });
    }
    let (kept, warnings) = checked(kind.normalize, object)?;
    let body = if call.dry_run() {
        let name = text(&kept, "/metadata/name");
        if state.get(kind.plural, namespace, name).is_some() {
            return Err(ApiError::already_exists(kind, name));
        }
        kept
    } else {
        state.create(kind, namespace, kept)?
    };
    Ok(Answer::Json { code: 201, body, warnings })
}

/// PUT, or the end of a PATCH: the new object keeps the stored identity; a write to the main
/// resource keeps the stored status and a write to `/status` changes only the status; a stale
/// `resourceVersion` is a 409.
fn write(
    state: &mut State,
    kind: &'static Kind,
    old: Value,
    mut new: Value,
    status_only: bool,
    dry_run: bool,
) -> Result<Answer, ApiError> {
    let name = text(&old, "/metadata/name").to_string();
    let sent_version = text(&new, "/metadata/resourceVersion");
    if !sent_version.is_empty() && sent_version != text(&old, "/metadata/resourceVersion") {
        return Err(ApiError::conflict(
            kind,
            &name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    if status_only {
        let status = new["status"].take();
        new = old.clone();
        new["status"] = status;
    } else if let Some(status) = old.get("status") {
        new["status"] = status.clone();
    }
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(field) {
            Some(value) => new["metadata"][field] = value.clone(),
            None => {
                new["metadata"].as_object_mut().map(|m| m.remove(field));
            }
        }
    }
    new["apiVersion"] = json!(kind.api_version());
    new["kind"] = json!(kind.kind);
    let (kept, warnings) = checked(kind.normalize, new)?;
    let body = if dry_run { kept } else { state.update(kind, kept) };
    Ok(Answer::Json { code: 200, body, warnings })
}

/// PATCH: merge and strategic merge (as a merge: see [`merge`]), and server-side apply as a
/// create-or-merge of the applied object (not the API's field ownership); JSON patches are
/// refused with 415 rather than applied wrongly.
fn patch(
    state: &mut State,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    call: &Call,
    status_only: bool,
) -> Result<Answer, ApiError> {
    let content_type = call.request.content_type.split(';').next().unwrap_or_default().trim();
    let body = call.json()?;
    match content_type {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {}
        "application/apply-patch+yaml" => {
            if call.param("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_string()));
            }
            if state.get(kind.plural, namespace, name).is_none() {
                return create(state, kind, namespace, call);
            }
        }
        "application/json-patch+json" => return Err(ApiError::unsupported_media_type(content_type)),
        other => return Err(ApiError::bad_request(format!("the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"))),
    }
    let old = stored(state, kind, namespace, name)?;
    let mut new = old.clone();
    merge(&mut new, &body);
    // The patch's own resourceVersion, if it sent one, is checked against the stored one.
    new["metadata"]["resourceVersion"] = body.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    write(state, kind, old, new, status_only, call.dry_run())
}

/// The delete options of a DELETE: its body (`DeleteOptions`), then the query's parameters.
fn delete_options(call: &Call) -> Result<DeleteOptions, ApiError> {
    let mut options: DeleteOptions = if call.request.body.is_empty() {
        DeleteOptions::default()
    } else {
        serde_json::from_value(call.json()?)
            .map_err(|e| ApiError::bad_request(format!("the request body could not be decoded: {e}")))?
    };
    if let Some(grace) = call.param("gracePeriodSeconds") {
        options.grace_period_seconds =
            Some(grace.parse().map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {grace}")))?);
    }
    Ok(options)
}

/// Deletes an object after checking the preconditions (409 when the uid or resourceVersion
/// differs). A pod is deleted gracefully: its grace period is the request's, else its spec's;
/// 0 for a pod never scheduled or finished; already terminating, it keeps its deadline unless
/// the new grace is 0. A pod's delete answers the pod; other resources answer a Status.
pub fn delete(
    state: &mut State,
    spec: &FakeSpec,
    kind: &'static Kind,
    object: Value,
    options: &DeleteOptions,
    dry_run: bool,
    now: Instant,
) -> Result<Value, ApiError> {
    let name = text(&object, "/metadata/name").to_string();
    let uid = text(&object, "/metadata/uid").to_string();
    if let Some(preconditions) = &options.preconditions {
        if let Some(wanted) = preconditions.uid.as_deref().filter(|w| *w != uid) {
            return Err(ApiError::conflict(
                kind,
                &name,
                &format!("Precondition failed: UID in precondition: {wanted}, UID in object meta: {uid}"),
            ));
        }
        let version = text(&object, "/metadata/resourceVersion");
        if let Some(wanted) = preconditions.resource_version.as_deref().filter(|w| *w != version) {
            return Err(ApiError::conflict(kind, &name, &format!("Precondition failed: ResourceVersion in precondition: {wanted}, ResourceVersion in object meta: {version}")));
        }
    }
    let dry_run = dry_run || options.dry_run.as_ref().is_some_and(|d| d.iter().any(|v| v == "All"));
    if kind.plural != "pods" {
        if !dry_run {
            state.remove(kind, text(&object, "/metadata/namespace"), &name);
        }
        return Ok(success(200, Some((kind, &name, &uid))));
    }
    let unscheduled_or_finished =
        text(&object, "/spec/nodeName").is_empty() || matches!(text(&object, "/status/phase"), "Succeeded" | "Failed");
    let grace = match options.grace_period_seconds {
        _ if unscheduled_or_finished => 0,
        Some(grace) => grace,
        None => object
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(spec.grace_period_seconds),
    };
    if dry_run || (is_terminating(&object) && grace > 0) {
        return Ok(object);
    }
    Ok(start_termination(state, object, grace, now))
}
