//! What a drill may touch in a cluster: the permissions its fault needs (asked of the API
//! server with a SelfSubjectAccessReview each before anything changes, and printed as the
//! minimal Role and ClusterRole by `firedrill kube rbac`), and which pods a drain may evict.

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};

use super::error::KubeError;
use crate::env::dry_run::each_fault;
use crate::scenario::{
    Check, FailoverMode, Fault, KubeAction, KubeCluster, Probe, Scenario, StepAction, Workload, WorkloadKind,
};

/// One permission a drill needs: a verb on a resource, in one namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// The verb (`get`, `patch`, `list`, `create`).
    pub verb: &'static str,
    /// The API group (`""`: the core group).
    pub group: &'static str,
    /// The resource, plural (`nodes`, `pods`).
    pub resource: &'static str,
    /// Its subresource (`eviction`), if any.
    pub subresource: Option<&'static str>,
    /// The namespace; `None`: cluster-wide (a cluster-scoped resource, or every namespace).
    pub namespace: Option<String>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource_name())?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => f.write_str(" (cluster-wide)"),
        }
    }
}

impl Permission {
    fn cluster(verb: &'static str, resource: &'static str) -> Self {
        Permission { verb, group: "", resource, subresource: None, namespace: None }
    }

    /// The resource as RBAC rules name it (`pods/eviction`).
    fn resource_name(&self) -> String {
        match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        }
    }
}

/// The permissions `fault` and `probes` need in `cluster`, and those the evidence's reads
/// need, sorted, each once. A drain reads and patches its node (cordon, annotations), lists
/// the pods on it in every namespace (to refuse a node carrying pods outside the scenario's),
/// and creates evictions in the scenario's namespaces; a pod kill or delete lists and deletes pods in its namespace; a
/// scale reads and patches its workload's scale subresource; a blackhole lists its pods,
/// creates, reads and deletes its policies and probe pod, and execs the check in it; a
/// surge reads its Deployment and autoscalers, and its workers' Job, pods and logs; a
/// `db_failover` reads its CloudNativePG Cluster, then deletes the primary's pod (`crash`) or
/// patches the Cluster's status (`graceful`, after listing its instances). A `deployment`
/// probe reads its Deployment, an `endpoints` probe lists and watches its Service's
/// EndpointSlices, a `sql` or `write_ledger` probe of a Service lists them to find its pod and
/// forwards a port of it, and an `http` probe `in_cluster` starts, reads and removes its probe
/// pod and execs in it.
pub fn needed(cluster: &KubeCluster, fault: &Fault, probes: &[Probe]) -> Vec<Permission> {
    let mut needed = Vec::new();
    let at = |verb, group, resource, subresource, namespace: &Option<String>| Permission {
        verb,
        group,
        resource,
        subresource,
        namespace: Some(namespace.clone().unwrap_or_else(|| cluster.namespace.clone())),
    };
    let own = None;
    for probe in probes {
        match &probe.check {
            Check::Deployment { namespace, .. } => needed.push(at("get", "apps", "deployments", None, namespace)),
            Check::Endpoints { namespace, .. } => {
                for verb in ["list", "watch"] {
                    needed.push(at(verb, "discovery.k8s.io", "endpointslices", None, namespace));
                }
            }
            Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. } => {
                let Some(target) = super::forward::service_in(dsn) else { continue };
                let namespace = Some(target.namespace);
                needed.push(at("list", "discovery.k8s.io", "endpointslices", None, &namespace));
                // kube-rs opens a forward as a WebSocket GET, authorized as `get`; API servers
                // that also authorize the upgrade as a `create` (as kubectl's POST is) need both.
                for verb in ["get", "create"] {
                    needed.push(at(verb, "", "pods", Some("portforward"), &namespace));
                }
            }
            Check::Http { in_cluster: true, .. } => {
                // Its probe pod, started, watched until Ready and removed, and each sample's exec
                // (a websocket exec asks `create` since Kubernetes 1.35, `get` before).
                for verb in ["create", "get", "delete"] {
                    needed.push(at(verb, "", "pods", None, &own));
                }
                needed.push(at("create", "", "pods", Some("exec"), &own));
                needed.push(at("get", "", "pods", Some("exec"), &own));
            }
            _ => {}
        }
    }
    for fault in each_fault(fault) {
        match fault {
            Fault::NodeDrain { .. } => {
                needed.push(Permission::cluster("get", "nodes"));
                needed.push(Permission::cluster("patch", "nodes"));
                needed.push(Permission::cluster("list", "pods"));
                for namespace in &cluster.namespaces {
                    needed.push(at("create", "", "pods", Some("eviction"), &Some(namespace.clone())));
                }
            }
            Fault::PodKill { namespace, .. } | Fault::PodDelete { namespace, .. } => {
                needed.push(at("list", "", "pods", None, namespace));
                needed.push(at("delete", "", "pods", None, namespace));
            }
            Fault::Scale { workload, namespace, .. } => {
                let resource = match Workload::parse(workload).map(|w| w.kind) {
                    Some(WorkloadKind::StatefulSet) => "statefulsets",
                    _ => "deployments",
                };
                needed.push(at("get", "apps", resource, Some("scale"), namespace));
                needed.push(at("patch", "apps", resource, Some("scale"), namespace));
            }
            Fault::NetworkBlackhole { namespace, .. } => {
                needed.push(at("list", "", "pods", None, namespace));
                for verb in ["create", "get", "delete"] {
                    needed.push(at(verb, "", "pods", None, namespace));
                    needed.push(at(verb, "networking.k8s.io", "networkpolicies", None, namespace));
                }
                needed.push(at("create", "", "pods", Some("exec"), namespace));
                needed.push(at("get", "", "pods", Some("exec"), namespace));
            }
            Fault::TrafficSurge { deployment, workers, .. } => {
                if deployment.is_some() {
                    needed.push(at("get", "apps", "deployments", None, &own));
                    needed.push(at("list", "autoscaling", "horizontalpodautoscalers", None, &own));
                }
                if workers.is_some() {
                    // The Job created, read (its label checked) and deleted; its pods listed and
                    // their logs followed.
                    for verb in ["create", "get", "delete"] {
                        needed.push(at(verb, "batch", "jobs", None, &own));
                    }
                    needed.push(at("list", "", "pods", None, &own));
                    needed.push(at("get", "", "pods", Some("log"), &own));
                }
            }
            Fault::DbFailover { mode, patroni: Some(_), .. } => {
                // The members listed, their REST API reached through a port-forward (`get` and
                // `create`, as for a forwarded probe).
                needed.push(at("list", "", "pods", None, &own));
                for verb in ["get", "create"] {
                    needed.push(at(verb, "", "pods", Some("portforward"), &own));
                }
                if *mode == FailoverMode::Crash {
                    needed.push(at("get", "", "pods", None, &own));
                    needed.push(at("delete", "", "pods", None, &own));
                }
            }
            Fault::DbFailover { mode, cluster: Some(_), .. } => {
                needed.push(at("get", "postgresql.cnpg.io", "clusters", None, &own));
                match mode {
                    FailoverMode::Crash => {
                        needed.push(at("get", "", "pods", None, &own));
                        needed.push(at("delete", "", "pods", None, &own));
                    }
                    FailoverMode::Graceful => {
                        needed.push(at("list", "", "pods", None, &own));
                        needed.push(at("patch", "postgresql.cnpg.io", "clusters", Some("status"), &own));
                    }
                }
            }
            _ => {}
        }
    }
    // The evidence every drill keeps: each node's cordon state, the namespaces' Events, and
    // the logs of the workloads' pods (listed to find them).
    needed.push(Permission::cluster("list", "nodes"));
    for namespace in &cluster.namespaces {
        let at = |verb, resource, subresource| Permission {
            verb,
            group: "",
            resource,
            subresource,
            namespace: Some(namespace.clone()),
        };
        needed.push(at("list", "events", None));
        needed.push(at("list", "pods", None));
        needed.push(at("get", "pods", Some("log")));
    }
    tidy(needed)
}

/// Sorted, each once, and none asked in a namespace that a cluster-wide one already holds
/// (asking for it there too is noise).
fn tidy(mut needed: Vec<Permission>) -> Vec<Permission> {
    needed.sort();
    needed.dedup();
    let cluster_wide: Vec<Permission> = needed.iter().filter(|p| p.namespace.is_none()).cloned().collect();
    needed.retain(|p| p.namespace.is_none() || !cluster_wide.contains(&Permission { namespace: None, ..p.clone() }));
    needed
}

/// The permissions a whole scenario needs: its fault's and probes' ([`needed`]) and its `kube`
/// steps': a scale reads and patches the scale subresource, a restart patches the workload,
/// an uncordon patches the node, an exec creates (websocket, Kubernetes 1.35 on) or gets
/// (before) `pods/exec`, a delete deletes pods; a pod picked by selector is listed, one named
/// is read.
pub fn needed_by_scenario(cluster: &KubeCluster, scenario: &Scenario) -> Vec<Permission> {
    let mut needed = needed(cluster, &scenario.fault, &scenario.probes);
    for step in &scenario.steps {
        let StepAction::Kube(action) = &step.action else { continue };
        let namespace = Some(action.namespace().unwrap_or(&cluster.namespace).to_string());
        let at = |verb, group, resource, subresource| Permission {
            verb,
            group,
            resource,
            subresource,
            namespace: namespace.clone(),
        };
        let workload_resource = |workload: &str| match Workload::parse(workload).map(|w| w.kind) {
            Some(WorkloadKind::StatefulSet) => "statefulsets",
            _ => "deployments",
        };
        let find = |pod: &Option<String>| match pod {
            Some(_) => at("get", "", "pods", None),
            None => at("list", "", "pods", None),
        };
        match action {
            KubeAction::Scale { workload, .. } => {
                needed.push(at("get", "apps", workload_resource(workload), Some("scale")));
                needed.push(at("patch", "apps", workload_resource(workload), Some("scale")));
            }
            KubeAction::RolloutRestart { workload, .. } => {
                needed.push(at("patch", "apps", workload_resource(workload), None))
            }
            KubeAction::Uncordon { .. } => needed.push(Permission::cluster("patch", "nodes")),
            KubeAction::Exec { pod, .. } => {
                needed.push(find(pod));
                needed.push(at("create", "", "pods", Some("exec")));
                needed.push(at("get", "", "pods", Some("exec")));
            }
            KubeAction::DeletePod { pod, .. } => {
                needed.push(find(pod));
                needed.push(at("delete", "", "pods", None));
            }
        }
    }
    tidy(needed)
}

/// Asks the API server whether the context's user holds each permission (one
/// SelfSubjectAccessReview each, which any authenticated user may create), and fails with
/// every one denied, so that one change to the Role fixes them all.
pub async fn preflight(client: &Client, needed: &[Permission]) -> Result<(), KubeError> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for permission in needed {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.into()),
                    group: Some(permission.group.into()),
                    resource: Some(permission.resource.into()),
                    subresource: permission.subresource.map(Into::into),
                    namespace: permission.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(KubeError::api(format!("ask whether the user may {permission}")))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(permission.clone());
        }
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(KubeError::Forbidden { missing }),
    }
}

/// The verbs of one Role's rules, by API group and resource.
type Rules<'a> = BTreeMap<(&'a str, String), Vec<&'a str>>;

/// The minimal RBAC for `needed`, as YAML for `kubectl apply -f`: a ClusterRole for what is
/// cluster-wide (nodes are cluster-scoped) and a Role in each namespace for the rest, all named
/// `firedrill-<scenario>`. Bindings are left to the reader: who runs drills is theirs to say.
pub fn rbac_yaml(scenario: &str, needed: &[Permission]) -> String {
    let mut by_namespace: BTreeMap<Option<&str>, Rules> = BTreeMap::new();
    for p in needed {
        let verbs =
            by_namespace.entry(p.namespace.as_deref()).or_default().entry((p.group, p.resource_name())).or_default();
        if !verbs.contains(&p.verb) {
            verbs.push(p.verb);
        }
    }
    let quoted = |items: &[&str]| items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let mut documents = Vec::new();
    for (namespace, rules) in by_namespace {
        let mut doc = String::from("apiVersion: rbac.authorization.k8s.io/v1\n");
        match namespace {
            None => doc += &format!("kind: ClusterRole\nmetadata:\n  name: firedrill-{scenario}\n"),
            Some(ns) => doc += &format!("kind: Role\nmetadata:\n  name: firedrill-{scenario}\n  namespace: {ns}\n"),
        }
        doc += "rules:\n";
        for ((group, resource), verbs) in rules {
            doc += &format!(
                "  - apiGroups: [{}]\n    resources: [{}]\n    verbs: [{}]\n",
                quoted(&[group]),
                quoted(&[resource.as_str()]),
                quoted(&verbs)
            );
        }
        documents.push(doc);
    }
    format!(
        "# What firedrill needs to drill scenario {scenario}: bind these to the drill's user or service account.\n{}",
        documents.join("---\n")
    )
}

/// Why a pod on a drained node is left where it is, or `None` when it is evicted. DaemonSet
/// pods would be recreated on the same node at once, and mirror pods are the kubelet's own
/// (the API cannot evict them): `kubectl drain --ignore-daemonsets` leaves both. Finished pods
/// hold no workload, and a terminating pod is already going.
pub fn left_on_node(pod: &Pod) -> Option<&'static str> {
    let meta = &pod.metadata;
    if meta.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")) {
        return Some("a mirror pod");
    }
    let daemon = |o: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference| {
        o.kind == "DaemonSet" && o.controller == Some(true)
    };
    if meta.owner_references.as_ref().is_some_and(|owners| owners.iter().any(daemon)) {
        return Some("a DaemonSet's pod");
    }
    if matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
        return Some("finished");
    }
    if meta.deletion_timestamp.is_some() {
        return Some("already terminating");
    }
    None
}

/// `namespace/name` of a pod.
pub fn pod_name(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or(""))
}

/// The pods a drain would evict that are outside `namespaces`, as `namespace/name`: a drain
/// with any is refused before the node is touched.
pub fn outside(evicted: &[Pod], namespaces: &[String]) -> Vec<String> {
    evicted
        .iter()
        .filter(|p| !p.metadata.namespace.as_ref().is_some_and(|ns| namespaces.contains(ns)))
        .map(pod_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> KubeCluster {
        KubeCluster {
            context: "kind-drill".into(),
            namespace: "shop".into(),
            namespaces: vec!["shop".into(), "db".into()],
        }
    }

    #[test]
    fn a_drain_needs_its_node_the_pods_on_it_and_evictions_and_what_the_evidence_reads() {
        let drain = Fault::NodeDrain { node: "n1".into(), grace_period: crate::duration::Dur::secs(5), deadline: None };
        let probe: Probe = serde_json::from_value(
            serde_json::json!({"name": "web", "check": {"kind": "deployment", "deployment": "web"}}),
        )
        .unwrap();
        let needed: Vec<String> = needed(&cluster(), &drain, &[probe]).iter().map(ToString::to_string).collect();
        assert_eq!(
            needed,
            [
                "create pods/eviction in namespace db",
                "create pods/eviction in namespace shop",
                "get nodes (cluster-wide)",
                "get pods/log in namespace db",
                "get pods/log in namespace shop",
                "get deployments in namespace shop",
                "list events in namespace db",
                "list events in namespace shop",
                "list nodes (cluster-wide)",
                "list pods (cluster-wide)",
                "patch nodes (cluster-wide)",
            ]
        );
        let yaml = rbac_yaml("node-drain", &super::needed(&cluster(), &drain, &[]));
        assert!(yaml.contains("kind: ClusterRole\nmetadata:\n  name: firedrill-node-drain\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"nodes\"]\n    verbs: [\"get\", \"list\", \"patch\"]\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: [\"list\"]\n"), "{yaml}");
        assert!(yaml.contains("kind: Role\nmetadata:\n  name: firedrill-node-drain\n  namespace: shop\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"events\"]\n    verbs: [\"list\"]\n  - apiGroups: [\"\"]\n    resources: [\"pods/eviction\"]\n    verbs: [\"create\"]\n  - apiGroups: [\"\"]\n    resources: [\"pods/log\"]\n    verbs: [\"get\"]\n"), "{yaml}");
        assert_eq!(yaml.matches("---\n").count(), 2, "one ClusterRole and a Role per namespace: {yaml}");
    }

    #[test]
    fn an_endpoints_probe_lists_and_watches_its_services_slices() {
        let drain = Fault::NodeDrain { node: "n1".into(), grace_period: crate::duration::Dur::secs(5), deadline: None };
        let probe: Probe = serde_json::from_value(
            serde_json::json!({"name": "rw", "check": {"kind": "endpoints", "service": "pg-rw", "namespace": "db"}}),
        )
        .unwrap();
        let needed = needed(&cluster(), &drain, &[probe]);
        let slices: Vec<String> =
            needed.iter().filter(|p| p.group == "discovery.k8s.io").map(ToString::to_string).collect();
        assert_eq!(slices, ["list endpointslices in namespace db", "watch endpointslices in namespace db"]);
    }

    #[test]
    fn a_patroni_failover_lists_its_members_forwards_to_them_and_deletes_the_leader_only_on_a_crash() {
        let failover = |mode: &str| -> Vec<String> {
            let fault: Fault = serde_json::from_value(serde_json::json!({
                "kind": "db_failover", "mode": mode, "patroni": {"selector": "application=spilo"}
            }))
            .unwrap();
            let needed = needed(&cluster(), &fault, &[]);
            needed.iter().filter(|p| p.resource == "pods").map(ToString::to_string).collect()
        };
        let graceful = [
            "create pods/portforward in namespace shop",
            "get pods/portforward in namespace shop",
            "list pods in namespace shop",
        ];
        assert!(graceful.iter().all(|p| failover("graceful").iter().any(|n| n == p)), "{:?}", failover("graceful"));
        assert!(!failover("graceful").iter().any(|n| n.starts_with("delete")), "{:?}", failover("graceful"));
        let crash = failover("crash");
        let wanted = ["delete pods in namespace shop", "get pods in namespace shop"];
        assert!(graceful.iter().chain(&wanted).all(|p| crash.iter().any(|n| n == p)), "{crash:?}");
    }

    #[test]
    fn daemonset_mirror_finished_and_terminating_pods_stay() {
        let pod = |extra: serde_json::Value| -> Pod {
            let mut base = serde_json::json!({"metadata": {"name": "p", "namespace": "shop"}});
            if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
                for (k, v) in extra {
                    base.insert(k.clone(), v.clone());
                }
            }
            serde_json::from_value(base).unwrap()
        };
        assert_eq!(left_on_node(&pod(serde_json::json!({}))), None);
        let daemon = serde_json::json!({"metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u", "controller": true}]}});
        assert_eq!(left_on_node(&pod(daemon)), Some("a DaemonSet's pod"));
        let mirror =
            serde_json::json!({"metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}}});
        assert_eq!(left_on_node(&pod(mirror)), Some("a mirror pod"));
        assert_eq!(left_on_node(&pod(serde_json::json!({"status": {"phase": "Succeeded"}}))), Some("finished"));
        let outside_pod = pod(serde_json::json!({"metadata": {"name": "q", "namespace": "kube-system"}}));
        assert_eq!(outside(&[pod(serde_json::json!({})), outside_pod], &cluster().namespaces), ["kube-system/q"]);
    }
}
