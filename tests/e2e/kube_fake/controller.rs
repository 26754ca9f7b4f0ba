//! The fake's controllers, one pass at a time: Deployments own one ReplicaSet each (no rollouts),
//! ReplicaSets and DaemonSets replace missing pods after the spec's `recreate_delay`, the
//! scheduler binds pending pods to the schedulable node with the fewest pods, pods turn Ready
//! `ready_delay` after they are bound, terminating pods vanish when their grace period ends,
//! EndpointSlices follow the pods' readiness and PodDisruptionBudgets' status follows their pods.
//! HorizontalPodAutoscalers report their target's replicas (they do not scale: the fake has no
//! metrics). Each creation, binding and kill is recorded as an Event, as the real components
//! record them. The PostgreSQL operator is in `operator.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cluster::FakeSpec;
use super::operator;
use super::selector::Selector;
use super::store::{now_stamp, short_name, text, Kind, State};

/// The controllers' clocks: what is due when.
#[derive(Default)]
pub struct Timers {
    /// Pods that turn Ready at the instant, by (namespace, name).
    ready_at: BTreeMap<(String, String), Instant>,
    /// Terminating pods that are removed at the instant, by (namespace, name).
    remove_at: BTreeMap<(String, String), Instant>,
    /// Since when a condition has held: an owner lacking pods (a ReplicaSet's uid, a DaemonSet's
    /// uid and a node, a PostgreSQL cluster's uid and an instance), a primary gone or switching.
    since: BTreeMap<String, Instant>,
}

impl Timers {
    /// Removes a terminating pod when its grace period ends.
    pub fn remove_pod_at(&mut self, namespace: &str, name: &str, at: Instant) {
        self.remove_at.insert((namespace.to_string(), name.to_string()), at);
    }
}

/// Whether a pod's Ready condition is true.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Whether a pod is being deleted.
pub fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// Whether a pod's phase is final.
pub fn has_finished(pod: &Value) -> bool {
    matches!(text(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// The uid of the object that controls a pod (its ReplicaSet or DaemonSet).
fn controller_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?.as_array()?.iter().find(|r| r["controller"] == true)?["uid"].as_str()
}

/// The state of a PodDisruptionBudget, computed as the disruption controller does.
pub struct Budget {
    /// The pods the budget expects (from its pods, or from their controllers' scale).
    pub expected: i64,
    /// Ready pods that are not being deleted.
    pub current_healthy: i64,
    /// The healthy pods the budget requires.
    pub desired_healthy: i64,
    /// How many more pods may be disrupted now.
    pub disruptions_allowed: i64,
}

/// A PodDisruptionBudget's numbers from the pods it selects now.
pub fn budget(state: &State, pdb: &Value) -> Budget {
    let namespace = text(pdb, "/metadata/namespace");
    let pods: Vec<Value> = match Selector::from_object(&pdb["spec"]["selector"]) {
        Some(selector) => state
            .list("pods", Some(namespace))
            .into_iter()
            .filter(|p| selector.matches(&p["metadata"]["labels"]))
            .collect(),
        None => Vec::new(),
    };
    let current_healthy = pods.iter().filter(|p| is_ready(p) && !is_terminating(p)).count() as i64;
    // Percentages and maxUnavailable count against the controllers' scale.
    let mut owners: Vec<&str> = Vec::new();
    let mut scale = 0;
    for pod in &pods {
        match controller_uid(pod) {
            Some(uid) if owners.contains(&uid) => {}
            Some(uid) => {
                owners.push(uid);
                let owner = ["replicasets", "daemonsets"]
                    .into_iter()
                    .flat_map(|plural| state.list(plural, Some(namespace)))
                    .find(|o| text(o, "/metadata/uid") == uid);
                // A DaemonSet wants a pod on every node.
                let nodes = state.list("nodes", None).len() as i64;
                scale += owner.map_or(1, |o| o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(nodes));
            }
            None => scale += 1,
        }
    }
    let scaled = |value: &Value, of: i64| match value {
        Value::String(percent) => {
            let percent: i64 = percent.trim_end_matches('%').parse().unwrap_or(0);
            (percent * of + 99) / 100
        }
        other => other.as_i64().unwrap_or(0),
    };
    let (expected, desired_healthy) = match (&pdb["spec"]["minAvailable"], &pdb["spec"]["maxUnavailable"]) {
        (Value::Number(n), _) => (pods.len() as i64, n.as_i64().unwrap_or(0)),
        (min @ Value::String(_), _) => (scale, scaled(min, scale)),
        (Value::Null, max) if !max.is_null() => (scale, (scale - scaled(max, scale)).max(0)),
        _ => (pods.len() as i64, 0),
    };
    let disruptions_allowed = if expected <= 0 { 0 } else { (current_healthy - desired_healthy).max(0) };
    Budget { expected, current_healthy, desired_healthy, disruptions_allowed }
}

/// The cluster the spec describes, settled: its namespaces, nodes, Deployments with their
/// ReplicaSets and Ready pods on the named nodes, DaemonSets with a Ready pod on every node,
/// static pods' mirror pods (owned by their node), and the other objects as given. Panics on an object its type rejects: a broken test.
pub fn seed(state: &mut State, spec: &FakeSpec, now: Instant) {
    let mut namespaces: Vec<&str> = vec!["default", "kube-system"];
    namespaces.extend(spec.deployments.iter().map(|d| d.namespace.as_str()));
    namespaces.extend(spec.daemon_sets.iter().map(|(ns, _)| ns.as_str()));
    namespaces.extend(spec.databases.iter().map(|d| d.namespace.as_str()));
    namespaces.extend(spec.objects.iter().map(|o| text(o, "/metadata/namespace")).filter(|ns| !ns.is_empty()));
    namespaces.sort_unstable();
    namespaces.dedup();
    for namespace in namespaces {
        let labels = json!({ "kubernetes.io/metadata.name": namespace });
        let object = json!({ "metadata": { "name": namespace, "labels": labels }, "status": { "phase": "Active" } });
        state.create(Kind::named("namespaces"), "", object).expect("a namespace");
    }
    for (i, node) in spec.nodes.iter().enumerate() {
        let object = json!({
            "metadata": { "name": node, "labels": { "kubernetes.io/hostname": node, "kubernetes.io/os": "linux" } },
            "spec": {},
            "status": {
                "addresses": [{ "type": "InternalIP", "address": format!("172.18.0.{}", i + 2) }, { "type": "Hostname", "address": node }],
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status" }],
            },
        });
        state.create(Kind::named("nodes"), "", object).expect("a node");
    }
    for deployment in &spec.deployments {
        let object = json!({
            "metadata": { "name": deployment.name, "labels": { "app": deployment.name } },
            "spec": {
                "replicas": deployment.nodes.len(),
                "selector": { "matchLabels": { "app": deployment.name } },
                "template": template(&deployment.name, spec.grace_period_seconds),
            },
        });
        state.create(Kind::named("deployments"), &deployment.namespace, object).expect("a deployment");
        deployments(state);
        let replica_set = state
            .list("replicasets", Some(&deployment.namespace))
            .into_iter()
            .find(|rs| owned_by(rs, &deployment.name))
            .expect("its ReplicaSet");
        for node in &deployment.nodes {
            new_pod(state, spec, &replica_set, Some(node.as_str()), now, true);
        }
    }
    for (namespace, name) in &spec.daemon_sets {
        let object = json!({
            "metadata": { "name": name, "labels": { "app": name } },
            "spec": { "selector": { "matchLabels": { "app": name } }, "template": template(name, spec.grace_period_seconds) },
        });
        let daemon_set = state.create(Kind::named("daemonsets"), namespace, object).expect("a daemon set");
        for node in &spec.nodes {
            new_pod(state, spec, &daemon_set, Some(node.as_str()), now, true);
        }
    }
    for (namespace, name, node) in &spec.static_pods {
        let node_object =
            state.get("nodes", "", node).cloned().unwrap_or_else(|| panic!("{node} is not a node of the spec"));
        let pod_name = format!("{name}-{node}");
        let object = json!({
            "metadata": {
                "name": pod_name,
                "labels": { "component": name, "tier": "control-plane" },
                "annotations": { "kubernetes.io/config.mirror": short_name(state.revision()), "kubernetes.io/config.source": "file" },
                "ownerReferences": owner_reference(&node_object),
            },
            "spec": { "nodeName": node, "containers": [{ "name": name, "image": format!("registry.k8s.io/{name}:v1.35.0") }] },
            "status": { "phase": "Pending" },
        });
        state.create(Kind::named("pods"), namespace, object).expect("a mirror pod");
        place(state, spec, namespace, &pod_name, Some(node.as_str()), now, true);
    }
    for database in &spec.databases {
        operator::seed(state, spec, database, now);
    }
    for object in &spec.objects {
        let kind = Kind::of(text(object, "/kind")).unwrap_or_else(|| panic!("the fake does not serve {object}"));
        state
            .create(kind, text(object, "/metadata/namespace"), object.clone())
            .unwrap_or_else(|e| panic!("{object}: {e:?}"));
    }
    reconcile(state, spec, now);
}

/// A pod template with one container and the app's label.
fn template(app: &str, grace_period_seconds: i64) -> Value {
    json!({
        "metadata": { "labels": { "app": app } },
        "spec": {
            "containers": [{ "name": app, "image": format!("firedrill/{app}:latest"), "ports": [{ "containerPort": 8080 }] }],
            "terminationGracePeriodSeconds": grace_period_seconds,
        },
    })
}

/// Whether an object's controller is the named object.
fn owned_by(object: &Value, owner: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true && r["name"] == owner))
}

/// The reference an owned object carries to its controller.
pub fn owner_reference(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// Creates a pod from its owner's template, bound to `node` (or pending until the scheduler
/// binds it), Ready at once or `ready_delay` later.
fn new_pod(state: &mut State, spec: &FakeSpec, owner: &Value, node: Option<&str>, now: Instant, ready: bool) {
    let namespace = text(owner, "/metadata/namespace").to_string();
    let name = format!("{}-{}", text(owner, "/metadata/name"), short_name(state.revision() + 1));
    let template = &owner["spec"]["template"];
    let object = json!({
        "metadata": { "name": name, "labels": template["metadata"]["labels"], "ownerReferences": owner_reference(owner) },
        "spec": template["spec"],
        "status": { "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable" }] },
    });
    state.create(Kind::named("pods"), &namespace, object).expect("a pod from its template");
    let component = if owner["kind"] == "DaemonSet" { "daemonset-controller" } else { "replicaset-controller" };
    record_event(state, owner, "SuccessfulCreate", format!("Created pod: {name}"), component);
    place(state, spec, &namespace, &name, node, now, ready);
}

/// Binds a new pod to `node` when given (else the scheduler will), Ready at once when `ready`.
pub fn place(
    state: &mut State,
    spec: &FakeSpec,
    namespace: &str,
    name: &str,
    node: Option<&str>,
    now: Instant,
    ready: bool,
) {
    if let Some(node) = node {
        bind(state, spec, namespace, name, node, now);
    }
    if ready {
        state.timers.ready_at.insert((namespace.to_string(), name.to_string()), now);
        make_ready(state, now);
    }
}

/// Records a core/v1 Event about an object, as the component that acted does (the namespace's
/// Events are a drill's evidence).
pub fn record_event(state: &mut State, object: &Value, reason: &str, message: String, component: &str) {
    let namespace = match text(object, "/metadata/namespace") {
        "" => "default".to_string(),
        namespace => namespace.to_string(),
    };
    let stamp = now_stamp();
    let metadata = &object["metadata"];
    let event = json!({
        "metadata": { "name": format!("{}.{:x}", text(object, "/metadata/name"), state.revision() + 1) },
        "involvedObject": { "apiVersion": object["apiVersion"], "kind": object["kind"], "namespace": metadata["namespace"], "name": metadata["name"], "uid": metadata["uid"] },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": { "component": component },
        "reportingComponent": component,
    });
    state.create(Kind::named("events"), &namespace, event).expect("an event");
}

/// Binds a pending pod to a node: it gets the node, an IP, and its Ready clock starts.
fn bind(state: &mut State, spec: &FakeSpec, namespace: &str, name: &str, node: &str, now: Instant) {
    let Some(mut pod) = state.get("pods", namespace, name).cloned() else { return };
    let index = spec.nodes.iter().position(|n| n == node).unwrap_or(0);
    pod["spec"]["nodeName"] = json!(node);
    pod["status"] = json!({
        "phase": "Pending",
        "hostIP": format!("172.18.0.{}", index + 2),
        "podIP": format!("10.244.{index}.{}", state.revision() % 250 + 2),
        "conditions": [
            { "type": "PodScheduled", "status": "True", "lastTransitionTime": now_stamp() },
            { "type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now_stamp() },
        ],
    });
    let pod = state.update(Kind::named("pods"), pod);
    record_event(
        state,
        &pod,
        "Scheduled",
        format!("Successfully assigned {namespace}/{name} to {node}"),
        "default-scheduler",
    );
    state.timers.ready_at.insert((namespace.to_string(), name.to_string()), now + spec.ready_delay);
}

/// The schedulable node with the fewest pods (by name on a tie), as a spreading scheduler picks.
fn pick_node(state: &State) -> Option<String> {
    let pods = state.list("pods", None);
    state
        .list("nodes", None)
        .iter()
        .filter(|n| n.pointer("/spec/unschedulable") != Some(&json!(true)))
        .map(|n| text(n, "/metadata/name").to_string())
        .min_by_key(|node| {
            (pods.iter().filter(|p| text(p, "/spec/nodeName") == node && !has_finished(p)).count(), node.clone())
        })
}

/// Pods whose Ready clock has run out turn Running and Ready.
fn make_ready(state: &mut State, now: Instant) {
    let due: Vec<(String, String)> =
        state.timers.ready_at.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
    for (namespace, name) in due {
        state.timers.ready_at.remove(&(namespace.clone(), name.clone()));
        let Some(mut pod) = state.get("pods", &namespace, &name).cloned() else { continue };
        let stamp = now_stamp();
        pod["status"]["phase"] = json!("Running");
        pod["status"]["startTime"] = json!(stamp);
        pod["status"]["conditions"] = json!(["PodScheduled", "Initialized", "ContainersReady", "Ready"]
            .map(|kind| json!({ "type": kind, "status": "True", "lastTransitionTime": stamp })));
        state.update(Kind::named("pods"), pod);
    }
}

/// One pass of every controller.
pub fn reconcile(state: &mut State, spec: &FakeSpec, now: Instant) {
    let due: Vec<(String, String)> =
        state.timers.remove_at.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
    for (namespace, name) in due {
        state.timers.remove_at.remove(&(namespace.clone(), name.clone()));
        state.remove(Kind::named("pods"), &namespace, &name);
    }
    deployments(state);
    replica_sets(state, spec, now);
    daemon_sets(state, spec, now);
    operator::reconcile(state, spec, now);
    super::jobs::reconcile(state, spec, now);
    for pod in state.list("pods", None) {
        let key = (text(&pod, "/metadata/namespace").to_string(), text(&pod, "/metadata/name").to_string());
        if text(&pod, "/spec/nodeName").is_empty() && !is_terminating(&pod) {
            if let Some(node) = pick_node(state) {
                bind(state, spec, &key.0, &key.1, &node, now);
            }
        } else if text(&pod, "/status/phase") == "Pending"
            && !state.timers.ready_at.contains_key(&key)
            && !is_terminating(&pod)
        {
            state.timers.ready_at.insert(key, now + spec.ready_delay);
        }
    }
    make_ready(state, now);
    endpoint_slices(state);
    autoscalers(state);
    for pdb in state.list("poddisruptionbudgets", None) {
        let budget = budget(state, &pdb);
        let mut updated = pdb.clone();
        updated["status"] = json!({
            "observedGeneration": pdb["metadata"]["generation"],
            "expectedPods": budget.expected,
            "currentHealthy": budget.current_healthy,
            "desiredHealthy": budget.desired_healthy,
            "disruptionsAllowed": budget.disruptions_allowed,
        });
        state.update(Kind::named("poddisruptionbudgets"), updated);
    }
}

/// Each Deployment gets one ReplicaSet with its template and its replicas; its status counts
/// the ReplicaSet's pods.
fn deployments(state: &mut State) {
    for deployment in state.list("deployments", None) {
        let namespace = text(&deployment, "/metadata/namespace");
        let name = text(&deployment, "/metadata/name");
        let replicas = deployment.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let replica_set = state.list("replicasets", Some(namespace)).into_iter().find(|rs| owned_by(rs, name));
        let replica_set = match replica_set {
            Some(mut rs) => {
                rs["spec"]["replicas"] = json!(replicas);
                state.update(Kind::named("replicasets"), rs)
            }
            None => {
                let hash = format!("{}{}", short_name(state.revision()), short_name(state.revision() / 7));
                let mut template = deployment["spec"]["template"].clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = deployment["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let object = json!({
                    "metadata": { "name": format!("{name}-{hash}"), "labels": template["metadata"]["labels"], "ownerReferences": owner_reference(&deployment) },
                    "spec": { "replicas": replicas, "selector": selector, "template": template },
                });
                state.create(Kind::named("replicasets"), namespace, object).expect("a ReplicaSet")
            }
        };
        let mut updated = deployment.clone();
        let status = &replica_set["status"];
        updated["status"] = json!({
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": status["replicas"].as_i64().unwrap_or(0),
            "updatedReplicas": status["replicas"].as_i64().unwrap_or(0),
            "readyReplicas": status["readyReplicas"].as_i64().unwrap_or(0),
            "availableReplicas": status["availableReplicas"].as_i64().unwrap_or(0),
            "unavailableReplicas": (replicas - status["availableReplicas"].as_i64().unwrap_or(0)).max(0),
        });
        state.update(Kind::named("deployments"), updated);
    }
}

/// The pods an owner controls that count as its replicas: not finished, not being deleted.
fn active_pods(state: &State, namespace: &str, owner_uid: &str) -> Vec<Value> {
    state
        .list("pods", Some(namespace))
        .into_iter()
        .filter(|p| controller_uid(p) == Some(owner_uid) && !is_terminating(p) && !has_finished(p))
        .collect()
}

/// Whether a condition (an owner lacking a pod, a primary gone) has lasted `delay`; its clock
/// starts when it begins and stops when it ends or is acted on.
pub fn lasted(state: &mut State, key: String, holds: bool, delay: Duration, now: Instant) -> bool {
    if !holds {
        state.timers.since.remove(&key);
        return false;
    }
    let since = *state.timers.since.entry(key.clone()).or_insert(now);
    let due = now >= since + delay;
    if due {
        state.timers.since.remove(&key);
    }
    due
}

/// ReplicaSets: missing pods come back after `recreate_delay`, surplus pods (unready first, then
/// newest) are deleted with their grace period; the status counts ready pods.
fn replica_sets(state: &mut State, spec: &FakeSpec, now: Instant) {
    for replica_set in state.list("replicasets", None) {
        let namespace = text(&replica_set, "/metadata/namespace").to_string();
        let uid = text(&replica_set, "/metadata/uid").to_string();
        let replicas = replica_set.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let mut active = active_pods(state, &namespace, &uid);
        let missing = replicas - active.len() as i64;
        if lasted(state, uid.clone(), missing > 0, spec.recreate_delay, now) {
            for _ in 0..missing {
                new_pod(state, spec, &replica_set, None, now, false);
            }
        }
        if missing < 0 {
            active
                .sort_by_key(|p| (is_ready(p), std::cmp::Reverse(text(p, "/metadata/creationTimestamp").to_string())));
            for pod in active.iter().take(missing.unsigned_abs() as usize) {
                let grace = pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
                start_termination(state, pod.clone(), grace, now);
            }
        }
        let active = active_pods(state, &namespace, &uid);
        let ready = active.iter().filter(|p| is_ready(p)).count();
        let mut updated = replica_set.clone();
        updated["status"] = json!({
            "observedGeneration": replica_set["metadata"]["generation"],
            "replicas": active.len(),
            "fullyLabeledReplicas": active.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
        });
        state.update(Kind::named("replicasets"), updated);
    }
}

/// Marks a pod terminating for `grace` seconds, or removes it now when `grace` is 0, as the API
/// does on a delete or an eviction.
pub fn start_termination(state: &mut State, mut pod: Value, grace: i64, now: Instant) -> Value {
    let namespace = text(&pod, "/metadata/namespace").to_string();
    let name = text(&pod, "/metadata/name").to_string();
    state.timers.ready_at.remove(&(namespace.clone(), name.clone()));
    let container = text(&pod, "/spec/containers/0/name").to_string();
    record_event(state, &pod, "Killing", format!("Stopping container {container}"), "kubelet");
    if grace <= 0 {
        state.timers.remove_at.remove(&(namespace.clone(), name.clone()));
        return state.remove(Kind::named("pods"), &namespace, &name).unwrap_or(pod);
    }
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
    pod["metadata"]["deletionTimestamp"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    state.timers.remove_pod_at(&namespace, &name, now + std::time::Duration::from_secs(grace.unsigned_abs()));
    state.update(Kind::named("pods"), pod)
}

/// DaemonSets: a pod on every node, cordoned or not (they tolerate it), replaced after
/// `recreate_delay`.
fn daemon_sets(state: &mut State, spec: &FakeSpec, now: Instant) {
    let nodes: Vec<String> = state.list("nodes", None).iter().map(|n| text(n, "/metadata/name").to_string()).collect();
    for daemon_set in state.list("daemonsets", None) {
        let namespace = text(&daemon_set, "/metadata/namespace").to_string();
        let uid = text(&daemon_set, "/metadata/uid").to_string();
        for node in &nodes {
            let present = active_pods(state, &namespace, &uid).iter().any(|p| text(p, "/spec/nodeName") == node);
            if lasted(state, format!("{uid}/{node}"), !present, spec.recreate_delay, now) {
                new_pod(state, spec, &daemon_set, Some(node.as_str()), now, false);
            }
        }
        let active = active_pods(state, &namespace, &uid);
        let ready = active.iter().filter(|p| is_ready(p)).count();
        let mut updated = daemon_set.clone();
        updated["status"] = json!({
            "observedGeneration": daemon_set["metadata"]["generation"],
            "desiredNumberScheduled": nodes.len(),
            "currentNumberScheduled": active.len(),
            "updatedNumberScheduled": active.len(),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
        });
        state.update(Kind::named("daemonsets"), updated);
    }
}

/// Each Service with a selector has one EndpointSlice of its pods that have an IP: `ready` when
/// the pod is Ready and not terminating, `serving` when Ready, `terminating` when being deleted.
/// Slices of Services that are gone are removed.
fn endpoint_slices(state: &mut State) {
    let slices = Kind::named("endpointslices");
    for slice in state.list("endpointslices", None) {
        let service = text(&slice, "/metadata/labels/kubernetes.io~1service-name");
        if state.get("services", text(&slice, "/metadata/namespace"), service).is_none() {
            state.remove(slices, text(&slice, "/metadata/namespace"), text(&slice, "/metadata/name"));
        }
    }
    for service in state.list("services", None) {
        let Some(labels) = service.pointer("/spec/selector").filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        else {
            continue;
        };
        let selector = Selector::from_labels(labels);
        let namespace = text(&service, "/metadata/namespace");
        let name = text(&service, "/metadata/name");
        let endpoints: Vec<Value> = state
            .list("pods", Some(namespace))
            .iter()
            .filter(|p| selector.matches(&p["metadata"]["labels"]) && !text(p, "/status/podIP").is_empty() && !has_finished(p))
            .map(|pod| {
                json!({
                    "addresses": [text(pod, "/status/podIP")],
                    "conditions": { "ready": is_ready(pod) && !is_terminating(pod), "serving": is_ready(pod), "terminating": is_terminating(pod) },
                    "nodeName": text(pod, "/spec/nodeName"),
                    "targetRef": { "kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"] },
                })
            })
            .collect();
        let ports: Vec<Value> = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let port = p["targetPort"].as_i64().or_else(|| p["port"].as_i64());
                json!({ "name": p.get("name").cloned().unwrap_or(json!("")), "port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP")) })
            })
            .collect();
        let existing = state
            .list("endpointslices", Some(namespace))
            .into_iter()
            .find(|s| text(s, "/metadata/labels/kubernetes.io~1service-name") == name);
        match existing {
            Some(mut slice) => {
                slice["endpoints"] = json!(endpoints);
                slice["ports"] = json!(ports);
                state.update(slices, slice);
            }
            None => {
                let object = json!({
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "labels": { "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" },
                        "ownerReferences": owner_reference(&service),
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                state.create(slices, namespace, object).expect("an EndpointSlice");
            }
        }
    }
}

/// Each HorizontalPodAutoscaler's status reports its target Deployment's replicas: what the
/// real one reports, without its decisions (there are no metrics to decide on).
fn autoscalers(state: &mut State) {
    for autoscaler in state.list("horizontalpodautoscalers", None) {
        let namespace = text(&autoscaler, "/metadata/namespace");
        let Some(target) = state.get("deployments", namespace, text(&autoscaler, "/spec/scaleTargetRef/name")) else {
            continue;
        };
        let mut updated = autoscaler.clone();
        updated["status"] = json!({
            "observedGeneration": autoscaler["metadata"]["generation"],
            "currentReplicas": target.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "desiredReplicas": target.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1),
        });
        state.update(Kind::named("horizontalpodautoscalers"), updated);
    }
}
