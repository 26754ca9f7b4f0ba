//! The fake API server's state: each object as the API serves it (JSON that has been through its
//! k8s-openapi type, so unknown fields are dropped as the server prunes them), one counter for
//! uids and resourceVersions, and the log of changes that watches replay.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use super::controller::Timers;
use super::status::ApiError;

/// A resource the fake serves: where it is in the API and which type checks its objects.
pub struct Kind {
    /// The API group, "" for the core group.
    pub group: &'static str,
    /// The version of the group.
    pub version: &'static str,
    /// The resource's name in paths.
    pub plural: &'static str,
    /// The object's `kind`.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Reads a body as the resource's k8s-openapi type and writes it back: what the API keeps.
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
}

/// A body through a k8s-openapi type and back.
pub fn through<K: serde::de::DeserializeOwned + serde::Serialize>(value: Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<K>(value)?)
}

/// Every resource the fake serves.
pub static KINDS: [Kind; 14] = [
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        normalize: through::<Namespace>,
    },
    Kind { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false, normalize: through::<Node> },
    Kind { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, normalize: through::<Pod> },
    Kind {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        normalize: through::<Service>,
    },
    Kind { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, normalize: through::<Event> },
    Kind {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        normalize: through::<Deployment>,
    },
    Kind {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        kind: "ReplicaSet",
        namespaced: true,
        normalize: through::<ReplicaSet>,
    },
    Kind {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        kind: "DaemonSet",
        namespaced: true,
        normalize: through::<DaemonSet>,
    },
    Kind { group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true, normalize: through::<Job> },
    Kind {
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        normalize: through::<HorizontalPodAutoscaler>,
    },
    Kind {
        group: "postgresql.cnpg.io",
        version: "v1",
        plural: "clusters",
        kind: "Cluster",
        namespaced: true,
        normalize: as_sent,
    },
    Kind {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        normalize: through::<PodDisruptionBudget>,
    },
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
        normalize: through::<EndpointSlice>,
    },
    Kind {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        kind: "NetworkPolicy",
        namespaced: true,
        normalize: through::<NetworkPolicy>,
    },
];

/// A custom resource kept as sent: no k8s-openapi type describes it.
fn as_sent(value: Value) -> Result<Value, serde_json::Error> {
    Ok(value)
}

impl Kind {
    /// The resource served at `/api[s]/{group}/{version}/{plural}`.
    pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// The resource of an object's `kind`.
    pub fn of(kind: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.kind == kind)
    }

    /// The resource by its plural (the fake serves each plural once).
    pub fn named(plural: &str) -> &'static Kind {
        KINDS.iter().find(|k| k.plural == plural).expect("a resource the fake serves")
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as the API names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Where an object is kept: its resource, namespace ("" for cluster objects) and name.
pub type Key = (&'static str, String, String);

/// The key of a stored object of a resource.
pub fn key_of(kind: &Kind, object: &Value) -> Key {
    (kind.plural, text(object, "/metadata/namespace").to_string(), text(object, "/metadata/name").to_string())
}

/// A string field by JSON pointer, "" when absent.
pub fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// What a watch reports: `ADDED`, `MODIFIED` or `DELETED`, and the object after the change.
pub struct Change {
    /// The revision the change made.
    pub revision: u64,
    /// The resource changed.
    pub plural: &'static str,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (for `DELETED`, its last state with the deletion's revision).
    pub object: Value,
    /// The object before the change, so that a watch with a selector can tell an object that
    /// entered or left its selection (which it reports as `ADDED` or `DELETED`, as the API does).
    pub previous: Option<Value>,
}

/// One request the fake served, as it came: for tests that pin what a client sends.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The Content-Type header.
    pub content_type: String,
    /// The body as text.
    pub body: String,
}

/// Everything the fake knows, behind one lock.
#[derive(Default)]
pub struct State {
    revision: u64,
    objects: BTreeMap<Key, Value>,
    changes: Vec<Change>,
    /// Every request served, in order.
    pub requests: Vec<RecordedRequest>,
    /// The fake controller's clocks.
    pub timers: Timers,
    /// The programs Job pods run (`FakeSpec::run_jobs`), by pod (namespace, name).
    pub processes: BTreeMap<(String, String), super::jobs::Process>,
    /// The Jobs whose pods were made, by (namespace, name).
    pub jobs_started: BTreeSet<(String, String)>,
}

/// The API's timestamp form, to the second.
pub fn now_stamp() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl State {
    /// The newest revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The next revision of the one counter.
    fn next(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// A fresh uid, shaped as the API's.
    pub fn uid(&mut self) -> String {
        format!("0f1d2e3c-0000-4000-8000-{:012x}", self.next())
    }

    /// A stored object.
    pub fn get(&self, plural: &'static str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(plural, namespace.to_string(), name.to_string()))
    }

    /// The objects of a resource, in one namespace or in all, in the API's order (namespace, name).
    pub fn list(&self, plural: &'static str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((p, ns, _), _)| *p == plural && namespace.is_none_or(|n| n == ns))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Stores a new object with the API's metadata (uid, resourceVersion, creationTimestamp,
    /// generation, a name from `generateName`); 409 when the name is taken.
    pub fn create(&mut self, kind: &'static Kind, namespace: &str, mut object: Value) -> Result<Value, ApiError> {
        if text(&object, "/metadata/name").is_empty() {
            let prefix = text(&object, "/metadata/generateName").to_string();
            let suffix = short_name(self.revision + 1);
            object["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
        }
        let name = text(&object, "/metadata/name").to_string();
        if kind.namespaced {
            object["metadata"]["namespace"] = json!(namespace);
        }
        if self.get(kind.plural, if kind.namespaced { namespace } else { "" }, &name).is_some() {
            return Err(ApiError::already_exists(kind, &name));
        }
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let uid = self.uid();
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(uid);
        metadata["creationTimestamp"] = json!(now_stamp());
        metadata["generation"] = json!(1);
        let object = (kind.normalize)(object).map_err(|e| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                kind.kind, kind.version, kind.kind
            ))
        })?;
        Ok(self.put(kind, "ADDED", object))
    }

    /// Stores a changed object under a new resourceVersion, its generation bumped when its spec
    /// changed; nothing happens (and no watch hears of it) when nothing changed.
    pub fn update(&mut self, kind: &'static Kind, mut object: Value) -> Value {
        let key = key_of(kind, &object);
        let Some(old) = self.objects.get(&key) else { return object };
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = old.get("spec") != object.get("spec");
        object["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        object["metadata"]["generation"] = json!(if spec_changed { generation + 1 } else { generation });
        if *old == object {
            return object;
        }
        self.put(kind, "MODIFIED", object)
    }

    /// Removes an object; watches hear `DELETED` with its last state.
    pub fn remove(&mut self, kind: &'static Kind, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self.objects.remove(&(kind.plural, namespace.to_string(), name.to_string()))?;
        let revision = self.next();
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        let previous = Some(object.clone());
        self.changes.push(Change { revision, plural: kind.plural, kind: "DELETED", object: object.clone(), previous });
        Some(object)
    }

    /// Keeps an object under the next revision and logs the change.
    fn put(&mut self, kind: &'static Kind, change: &'static str, mut object: Value) -> Value {
        let revision = self.next();
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        let previous = self.objects.insert(key_of(kind, &object), object.clone());
        self.changes.push(Change { revision, plural: kind.plural, kind: change, object: object.clone(), previous });
        object
    }

    /// The changes of a resource after a revision, oldest first.
    pub fn changes_after(&self, plural: &'static str, revision: u64) -> impl Iterator<Item = &Change> {
        let start = self.changes.partition_point(|c| c.revision <= revision);
        self.changes[start..].iter().filter(move |c| c.plural == plural)
    }
}

/// Five characters from the alphabet the API server's generated names use, unique per number.
pub fn short_name(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut name = String::new();
    for _ in 0..5 {
        name.push(char::from(ALPHABET[(n % ALPHABET.len() as u64) as usize]));
        n /= ALPHABET.len() as u64;
    }
    name
}
