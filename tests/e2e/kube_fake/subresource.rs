//! The subresources firedrill drives: a Deployment's or ReplicaSet's `scale`, a pod's
//! `eviction` (the PodDisruptionBudget check, with the API's 429 and 500), and the
//! SelfSubjectAccessReviews that check what RBAC allows before a drill.

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
