//! The subresources firedrill drives: a Deployment's or ReplicaSet's `scale`, a pod's
//! `eviction` (the PodDisruptionBudget check, with the API's 429 and 500), and the
//! SelfSubjectAccessReviews that check what RBAC allows before a drill, and a pod's `exec` of an
//! HTTP check (`wget` or `curl` of a Service's URL) that NetworkPolicies can make fail, and a
//! pod's `portforward` to the local address the spec puts behind that pod's port.

use std::net::SocketAddr;
use std::time::Instant;

use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::api::policy::v1::Eviction;
use serde_json::{json, Value};

use super::api::{checked, delete, json_answer, merge, stored, Answer, Call};
use super::cluster::FakeSpec;
use super::controller::{budget, is_ready, is_terminating};
use super::selector::Selector;
use super::status::{success, ApiError};
use super::store::{text, through, Kind, State};

/// PATCH or PUT of a scale: the object's `spec.replicas` set from the new Scale's.
pub fn scale(state: &mut State, kind: &'static Kind, object: Value, call: &Call) -> Result<Answer, ApiError> {
    let name = text(&object, "/metadata/name").to_string();
    let mut scale = scale_of(&object);
    match call.request.method.as_str() {
        "PUT" => scale = call.json()?,
        _ => merge(&mut scale, &call.json()?),
    }
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0")));
    }
    let mut updated = object;
    updated["spec"]["replicas"] = json!(replicas);
    let updated = if call.dry_run() { updated } else { state.update(kind, updated) };
    Ok(json_answer(200, scale_of(&updated)))
}

/// An autoscaling/v1 Scale of a Deployment or ReplicaSet.
pub fn scale_of(object: &Value) -> Value {
    let selector = Selector::from_object(&object["spec"]["selector"]).unwrap_or_default();
    let metadata = &object["metadata"];
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": { "name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"], "creationTimestamp": metadata["creationTimestamp"] },
        "spec": { "replicas": object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": { "replicas": object.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0), "selector": selector.render() },
    })
}

/// POST pods/{name}/eviction, as the eviction subresource decides: 404 for a gone pod; a pod
/// that is pending, finished or already terminating is deleted without asking its budget; 500
/// when several PodDisruptionBudgets select the pod; an unready pod may go when its budget is
/// healthy; otherwise 429 with the budget's cause when no disruption is allowed. Then the pod is
/// deleted with the eviction's `deleteOptions` (grace period, preconditions, dry run), and the
/// answer is a 201 Success Status. A body with kube-rs's `delete_options` key is accepted, its
/// options dropped with a warning, as the API does.
pub fn evict(
    state: &mut State,
    spec: &FakeSpec,
    namespace: &str,
    name: &str,
    call: &Call,
    now: Instant,
) -> Result<Answer, ApiError> {
    let (body, warnings) = checked(through::<Eviction>, call.json()?)?;
    let eviction: Eviction = serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let named = eviction.metadata.name.as_deref().unwrap_or(name);
    if named != name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {name} != {named}"
        )));
    }
    let pods = Kind::named("pods");
    let pod = stored(state, pods, namespace, name)?;
    let ignores_budgets =
        is_terminating(&pod) || matches!(text(&pod, "/status/phase"), "Pending" | "Succeeded" | "Failed");
    if !ignores_budgets {
        let budgets: Vec<Value> = state
            .list("poddisruptionbudgets", Some(namespace))
            .into_iter()
            .filter(|pdb| {
                Selector::from_object(&pdb["spec"]["selector"]).is_some_and(|s| s.matches(&pod["metadata"]["labels"]))
            })
            .collect();
        if budgets.len() > 1 {
            return Err(ApiError::several_budgets());
        }
        if let Some(pdb) = budgets.first() {
            let budget = budget(state, pdb);
            let always_allow = pdb.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
            let unhealthy_may_go = !is_ready(&pod)
                && (always_allow || (budget.current_healthy >= budget.desired_healthy && budget.desired_healthy > 0));
            if !unhealthy_may_go && budget.disruptions_allowed == 0 {
                return Err(ApiError::disruption_budget(
                    text(pdb, "/metadata/name"),
                    budget.desired_healthy,
                    budget.current_healthy,
                ));
            }
        }
    }
    let options = eviction.delete_options.unwrap_or_default();
    delete(state, spec, pods, pod, &options, call.dry_run(), now)?;
    Ok(Answer::Json { code: 201, body: success(201, None), warnings })
}

/// POST selfsubjectaccessreviews: allowed unless the spec denies the (verb, resource,
/// namespace), where the resource is `pods/eviction` for a subresource.
pub fn access_review(spec: &FakeSpec, call: &Call) -> Result<Answer, ApiError> {
    let (body, warnings) = checked(through::<SelfSubjectAccessReview>, call.json()?)?;
    let mut review: SelfSubjectAccessReview =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let attributes = review.spec.resource_attributes.clone().unwrap_or_default();
    let resource = match attributes.subresource.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => format!("{}/{sub}", attributes.resource.unwrap_or_default()),
        None => attributes.resource.unwrap_or_default(),
    };
    let verb = attributes.verb.unwrap_or_default();
    let namespace = attributes.namespace.unwrap_or_default();
    let denied = spec.denied.iter().any(|d| d.verb == verb && d.resource == resource && d.namespace == namespace);
    review.status = Some(SubjectAccessReviewStatus {
        allowed: !denied,
        reason: (!denied).then(|| {
            "RBAC: allowed by ClusterRoleBinding \"fake-admin\" of ClusterRole \"cluster-admin\" to User \"fake\""
                .to_string()
        }),
        ..SubjectAccessReviewStatus::default()
    });
    let body = serde_json::to_value(review).expect("a review serializes");
    Ok(Answer::Json { code: 201, body, warnings })
}

/// What a command run in a pod printed and how it ended.
pub struct Exec {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its exit code.
    pub code: i32,
}

impl Exec {
    /// A command that failed with `code`, saying `why` on standard error.
    fn failed(code: i32, why: String) -> Exec {
        Exec { stdout: String::new(), stderr: why, code }
    }
}

/// GET/POST pods/{name}/exec. The fake runs one kind of command, the in-cluster check a drill
/// makes: `wget` or `curl` of `http://<service>[.<namespace>][:port]/...`. It succeeds when the
/// Service has a Ready endpoint that NetworkPolicies let this pod reach (its egress, the
/// endpoint's ingress; ports and ipBlocks are not evaluated), unless the spec's CNI fails open,
/// which ignores every policy; `wget -S` prints the answer's status line on stderr. Anything
/// else is "not found" (127), as in a shell.
pub fn exec(state: &State, spec: &FakeSpec, namespace: &str, name: &str, call: &Call) -> Result<Exec, ApiError> {
    let pod = stored(state, Kind::named("pods"), namespace, name)?;
    if !is_ready(&pod) {
        return Err(ApiError::bad_request(format!("unable to upgrade connection: pod {name} is not running")));
    }
    let command = call.params("command");
    let program = command.first().copied().unwrap_or_default();
    if !matches!(program, "wget" | "curl") {
        return Ok(Exec::failed(127, format!("sh: {program}: not found\n")));
    }
    let Some(host) =
        command.iter().find_map(|arg| arg.strip_prefix("http://")).and_then(|rest| rest.split(['/', ':']).next())
    else {
        return Ok(Exec::failed(1, format!("{program}: no URL given\n")));
    };
    let mut labels = host.split('.');
    let service_name = labels.next().unwrap_or_default();
    let service_namespace = labels.next().unwrap_or(namespace);
    if state.get("services", service_namespace, service_name).is_none() {
        return Ok(Exec::failed(1, format!("{program}: bad address '{host}'\n")));
    }
    let selector = format!("kubernetes.io/service-name={service_name}");
    let behind: Vec<Value> = state
        .list("endpointslices", Some(service_namespace))
        .iter()
        .filter(|slice| Selector::parse(&selector).is_some_and(|s| s.matches(&slice["metadata"]["labels"])))
        .flat_map(|slice| slice["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|endpoint| endpoint["conditions"]["ready"] == true)
        .filter_map(|endpoint| state.get("pods", service_namespace, endpoint["targetRef"]["name"].as_str()?).cloned())
        .collect();
    let reached = behind.iter().find(|target| {
        !spec.enforce_network_policies
            || (allows(state, &pod, target, Direction::Egress) && allows(state, target, &pod, Direction::Ingress))
    });
    // `wget -S` says the answer's status line on stderr, as busybox's does.
    let status = if command.contains(&"-S") { "  HTTP/1.1 200 OK\n" } else { "" };
    Ok(match reached {
        Some(target) => {
            Exec { stdout: format!("answered by {}\n", text(target, "/metadata/name")), stderr: status.into(), code: 0 }
        }
        None => Exec::failed(1, format!("{program}: download timed out\n")),
    })
}

/// The direction of traffic a NetworkPolicy rule governs.
#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

/// Whether NetworkPolicies let `subject` send to (egress) or receive from (ingress) `peer`: a pod
/// no policy of that direction selects is not isolated; an isolated one needs a rule of one of
/// its policies whose peers (all, when none are listed) include `peer`.
fn allows(state: &State, subject: &Value, peer: &Value, direction: Direction) -> bool {
    let (name, rules, peers) = match direction {
        Direction::Ingress => ("Ingress", "ingress", "from"),
        Direction::Egress => ("Egress", "egress", "to"),
    };
    let namespace = text(subject, "/metadata/namespace");
    let isolating: Vec<Value> = state
        .list("networkpolicies", Some(namespace))
        .into_iter()
        .filter(|policy| {
            Selector::from_object(&policy["spec"]["podSelector"])
                .is_some_and(|s| s.matches(&subject["metadata"]["labels"]))
        })
        .filter(|policy| match policy["spec"]["policyTypes"].as_array() {
            Some(types) => types.iter().any(|t| t == name),
            None => matches!(direction, Direction::Ingress) || policy["spec"].get(rules).is_some(),
        })
        .collect();
    isolating.is_empty()
        || isolating.iter().any(|policy| {
            policy["spec"][rules].as_array().into_iter().flatten().any(|rule| match rule[peers].as_array() {
                Some(listed) if !listed.is_empty() => listed.iter().any(|p| peer_matches(state, namespace, p, peer)),
                _ => true,
            })
        })
}

/// Whether a rule's peer (podSelector and/or namespaceSelector; ipBlocks match no pod here)
/// includes a pod.
fn peer_matches(state: &State, policy_namespace: &str, peer: &Value, pod: &Value) -> bool {
    let pod_namespace = text(pod, "/metadata/namespace");
    let namespace_selected = match peer.get("namespaceSelector") {
        Some(selector) => {
            let labels =
                state.get("namespaces", "", pod_namespace).map(|n| n["metadata"]["labels"].clone()).unwrap_or_default();
            Selector::from_object(selector).is_some_and(|s| s.matches(&labels))
        }
        None => peer.get("podSelector").is_some() && pod_namespace == policy_namespace,
    };
    let pod_selected = match peer.get("podSelector") {
        Some(selector) => Selector::from_object(selector).is_some_and(|s| s.matches(&pod["metadata"]["labels"])),
        None => true,
    };
    namespace_selected && pod_selected
}

/// A port-forward to serve: the pod (by uid: the forward dies with it), its port, and the local
/// address behind it (none: nothing listens, and the forward says "connection refused").
pub struct Forward {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's uid.
    pub uid: String,
    /// The pod's port.
    pub port: u16,
    /// Where connections to it go.
    pub target: Option<SocketAddr>,
}

/// GET/POST pods/{name}/portforward?ports=P, for one port of a running pod; its target is the
/// spec's address for the pod's name prefix and port.
pub fn forward(state: &State, spec: &FakeSpec, namespace: &str, name: &str, call: &Call) -> Result<Forward, ApiError> {
    let pod = stored(state, Kind::named("pods"), namespace, name)?;
    if !is_ready(&pod) {
        return Err(ApiError::bad_request(format!("unable to upgrade connection: pod {name} is not running")));
    }
    let ports: Vec<u16> =
        call.param("ports").unwrap_or_default().split(',').filter_map(|p| p.trim().parse().ok()).collect();
    let [port] = ports[..] else {
        return Err(ApiError::bad_request("the fake API server forwards exactly one port per request".to_string()));
    };
    let target = spec
        .forwards
        .iter()
        .find(|(prefix, p, _)| name.starts_with(prefix.as_str()) && *p == port)
        .map(|(_, _, address)| *address);
    let uid = text(&pod, "/metadata/uid").to_string();
    Ok(Forward { namespace: namespace.to_string(), pod: name.to_string(), uid, port, target })
}
