//! The API's answers that are not objects: a `meta/v1 Status` with the code, reason, message and
//! details the real API server gives in each case, so that a client's error handling meets the
//! same shapes it will meet on a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde_json::Value;

use super::store::Kind;

/// A failed request: its HTTP code and the Status the API sends with it.
#[derive(Debug)]
pub struct ApiError {
    code: u16,
    reason: Option<&'static str>,
    message: String,
    /// Boxed: a `StatusDetails` is large, and every handler returns this type.
    details: Option<Box<StatusDetails>>,
}

/// The details naming one object of a resource.
fn naming(kind: &Kind, name: &str) -> Box<StatusDetails> {
    Box::new(StatusDetails {
        name: Some(name.to_string()),
        group: (!kind.group.is_empty()).then(|| kind.group.to_string()),
        kind: Some(kind.plural.to_string()),
        ..StatusDetails::default()
    })
}

impl ApiError {
    /// 404: `pods "x" not found`.
    pub fn not_found(kind: &Kind, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", kind.qualified());
        ApiError { code: 404, reason: Some("NotFound"), message, details: Some(naming(kind, name)) }
    }

    /// 404 for a path the API does not serve.
    pub fn no_such_path() -> Self {
        let message = "the server could not find the requested resource".to_string();
        ApiError { code: 404, reason: Some("NotFound"), message, details: Some(Box::default()) }
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        let message = "the server does not allow this method on the requested resource".to_string();
        ApiError { code: 405, reason: Some("MethodNotAllowed"), message, details: Some(Box::default()) }
    }

    /// 409 on create: `pods "x" already exists`.
    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", kind.qualified());
        ApiError { code: 409, reason: Some("AlreadyExists"), message, details: Some(naming(kind, name)) }
    }

    /// 409 for a failed precondition or a stale resourceVersion.
    pub fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        let message = format!("Operation cannot be fulfilled on {} \"{name}\": {why}", kind.qualified());
        ApiError { code: 409, reason: Some("Conflict"), message, details: Some(naming(kind, name)) }
    }

    /// 400 for a body or query the API cannot read.
    pub fn bad_request(message: String) -> Self {
        ApiError { code: 400, reason: Some("BadRequest"), message, details: None }
    }

    /// 422 for an object the API's validation rejects.
    pub fn invalid(message: String) -> Self {
        ApiError { code: 422, reason: Some("Invalid"), message, details: None }
    }

    /// 415 for a patch type the fake does not implement (JSON patch), loud rather than wrong.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        let message = format!("the fake API server does not implement {content_type} patches");
        ApiError { code: 415, reason: Some("UnsupportedMediaType"), message, details: None }
    }

    /// 429 for an eviction that would break a PodDisruptionBudget, with the cause the eviction
    /// subresource gives (pkg/registry/core/pod/storage/eviction.go).
    pub fn disruption_budget(budget: &str, desired_healthy: i64, current_healthy: i64) -> Self {
        let cause = StatusCause {
            reason: Some("DisruptionBudget".to_string()),
            message: Some(format!("The disruption budget {budget} needs {desired_healthy} healthy pods and has {current_healthy} currently")),
            field: None,
        };
        ApiError {
            code: 429,
            reason: Some("TooManyRequests"),
            message: "Cannot evict pod as it would violate the pod's disruption budget.".to_string(),
            details: Some(Box::new(StatusDetails { causes: Some(vec![cause]), ..StatusDetails::default() })),
        }
    }

    /// 500 for an eviction of a pod that more than one PodDisruptionBudget selects, which the
    /// eviction subresource refuses whatever the budgets allow (no reason, as the API sends it).
    pub fn several_budgets() -> Self {
        let message =
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                .to_string();
        ApiError { code: 500, reason: None, message, details: None }
    }

    /// The HTTP code and the Status object.
    pub fn answer(self) -> (u16, Value) {
        let status = Status {
            code: Some(i32::from(self.code)),
            details: self.details.map(|details| *details),
            message: Some(self.message),
            reason: self.reason.map(str::to_string),
            status: Some("Failure".to_string()),
            ..Status::default()
        };
        (self.code, serde_json::to_value(status).expect("a Status serializes"))
    }
}

/// A successful Status: what an eviction (201) and a delete of most resources (200) answer.
pub fn success(code: u16, details: Option<(&Kind, &str, &str)>) -> Value {
    let status = Status {
        code: Some(i32::from(code)),
        details: details.map(|(kind, name, uid)| StatusDetails { uid: Some(uid.to_string()), ..*naming(kind, name) }),
        status: Some("Success".to_string()),
        ..Status::default()
    };
    serde_json::to_value(status).expect("a Status serializes")
}
