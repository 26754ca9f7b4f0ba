//! The reference stack for a kind cluster (`stacks/kube/`), checked without a cluster: every
//! manifest is read into its k8s-openapi type and must write back to what the file says, since
//! those types ignore a field they do not know (a misspelt `readinesProbe` would otherwise pass
//! here and be found only by a cluster's API server); the objects refer to one another, to the
//! kind config and to the images the README builds by names that exist; and the kube scenarios
//! and the CI example name objects the stack has. What a cluster alone can tell (the operator's
//! webhook, the scheduler, the images' contents) is not checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::repo;

/// The folder of the stack, relative to the repository root.
const STACK: &str = "stacks/kube";
/// The kind cluster's configuration, in [`STACK`]: not a cluster object.
const KIND_CONFIG: &str = "kind.yaml";
/// The kustomization `kubectl apply -k stacks/kube/` reads, in [`STACK`]: not a cluster object.
const KUSTOMIZATION: &str = "kustomization.yaml";
/// The images the README and the CI example build and `kind load` into the nodes.
const LOADED_IMAGES: [&str; 2] = ["firedrill/base:latest", "firedrill/firedrill:latest"];
/// The CI example.
const CI_EXAMPLE: &str = "examples/github-actions/kube-drills.yml";
/// CloudNativePG's Cluster, which has no k8s-openapi type.
const CNPG_API_VERSION: &str = "postgresql.cnpg.io/v1";
/// The Services the CloudNativePG operator makes for a Cluster, by suffix of its name.
const CNPG_SERVICES: [&str; 3] = ["-rw", "-ro", "-r"];

/// A CloudNativePG Cluster, by the fields firedrill reads (its `db_failover` finds the pods
/// and the `-rw` Service by the name, and expects `instances` of them) and the one the stack
/// refers to (the owner's Secret).
struct PostgresCluster {
    name: String,
    namespace: String,
    instances: u64,
    owner_secret: Option<String>,
    node_selector: BTreeMap<String, String>,
}

/// Every object of the stack's manifests, by kind.
#[derive(Default)]
struct Stack {
    namespaces: Vec<Namespace>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    secrets: Vec<Secret>,
    budgets: Vec<PodDisruptionBudget>,
    autoscalers: Vec<HorizontalPodAutoscaler>,
    network_policies: Vec<NetworkPolicy>,
    databases: Vec<PostgresCluster>,
}

/// The part of kind's `kind.x-k8s.io/v1alpha4` Cluster the stack uses; any other field is an
/// error here, so that a typo in kind.yaml is one too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KindCluster {
    kind: String,
    api_version: String,
    name: String,
    nodes: Vec<KindNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KindNode {
    role: String,
    #[serde(default)]
    extra_port_mappings: Vec<PortMapping>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PortMapping {
    container_port: u16,
    host_port: u16,
    listen_address: String,
    protocol: String,
}

impl KindCluster {
    /// The nodes' names as kind makes them: `<name>-control-plane`, `<name>-worker`,
    /// `<name>-worker2`, ...
    fn node_names(&self) -> Vec<String> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut names = Vec::new();
        for node in &self.nodes {
            let n = seen.entry(node.role.as_str()).or_default();
            *n += 1;
            let suffix = if *n == 1 { String::new() } else { n.to_string() };
            names.push(format!("{}-{}{suffix}", self.name, node.role));
        }
        names
    }

    /// The kubeconfig context `kind create cluster` writes for it.
    fn context(&self) -> String {
        format!("kind-{}", self.name)
    }

    /// The NodePorts published on this machine, as (node port, host port).
    fn published(&self) -> Vec<(u16, u16)> {
        self.nodes.iter().flat_map(|n| &n.extra_port_mappings).map(|m| (m.container_port, m.host_port)).collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    resources: Vec<String>,
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The YAML documents of a file, as JSON values (booleans only `true` and `false`, as the
/// API server's YAML reads them).
fn documents(file: &str, yaml: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple_with_options(yaml, serde_saphyr::options! { strict_booleans: true })
        .map_err(|e| format!("{file}: not YAML: {e}"))
}

fn kind_config() -> KindCluster {
    let path = repo().join(STACK).join(KIND_CONFIG);
    serde_saphyr::from_str(&text(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifests of the stack: every YAML file of [`STACK`] but the kind config and the
/// kustomization, as (file name, text), by name.
fn manifest_files() -> Vec<(String, String)> {
    let dir = repo().join(STACK);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| (p.file_name().expect("a file name").to_string_lossy().into_owned(), text(&p)))
        .filter(|(name, _)| name != KIND_CONFIG && name != KUSTOMIZATION)
        .collect();
    files.sort();
    files
}

/// Where `written` (a manifest's document) and `read_back` (it read into its type and
/// written again) differ, as JSON pointers: a field the type does not have, or a value it
/// reads differently (a quantity, a port).
fn differences(path: &str, written: &Value, read_back: &Value, found: &mut Vec<String>) {
    match (written, read_back) {
        (Value::Object(w), Value::Object(r)) => {
            for (key, value) in w {
                let at = format!("{path}/{key}");
                match r.get(key) {
                    Some(again) => differences(&at, value, again, found),
                    None => found.push(format!("{at} is not a field of it")),
                }
            }
            for key in r.keys().filter(|k| !w.contains_key(*k)) {
                found.push(format!("{path}/{key} appears when it is written back"));
            }
        }
        (Value::Array(w), Value::Array(r)) if w.len() == r.len() => {
            for (i, (value, again)) in w.iter().zip(r).enumerate() {
                differences(&format!("{path}/{i}"), value, again, found);
            }
        }
        _ if written == read_back => {}
        _ => found.push(format!("{path} is {written} in the file but {read_back} once read")),
    }
}

/// A document read into its k8s-openapi type, which must write back to the same document.
fn typed<K: Resource + DeserializeOwned + Serialize>(whence: &str, doc: &Value) -> Result<K, String> {
    let object: K = serde_json::from_value(doc.clone()).map_err(|e| format!("{whence}: not a {}: {e}", K::KIND))?;
    let again = serde_json::to_value(&object).expect("a k8s-openapi object serializes");
    let mut found = Vec::new();
    differences("", doc, &again, &mut found);
    if found.is_empty() {
        Ok(object)
    } else {
        Err(format!("{whence}: not a {} as written: {}", K::KIND, found.join("; ")))
    }
}

fn is<K: Resource>(api_version: &str, kind: &str) -> bool {
    api_version == K::API_VERSION && kind == K::KIND
}

/// Reads a CloudNativePG Cluster's fields firedrill and the stack rely on.
fn postgres_cluster(whence: &str, doc: &Value) -> Result<PostgresCluster, String> {
    let field = |pointer: &str| doc.pointer(pointer).ok_or_else(|| format!("{whence}: a Cluster without {pointer}"));
    let string = |pointer: &str| {
        field(pointer)?.as_str().map(str::to_string).ok_or_else(|| format!("{whence}: {pointer} is not a string"))
    };
    Ok(PostgresCluster {
        name: string("/metadata/name")?,
        namespace: string("/metadata/namespace")?,
        instances: field("/spec/instances")?
            .as_u64()
            .ok_or_else(|| format!("{whence}: /spec/instances is not a count"))?,
        owner_secret: doc.pointer("/spec/bootstrap/initdb/secret/name").and_then(Value::as_str).map(str::to_string),
        node_selector: doc.pointer("/spec/affinity/nodeSelector").and_then(selector_of).unwrap_or_default(),
    })
}

impl Stack {
    /// The objects of the manifests, or every problem found in them.
    fn read(files: &[(String, String)]) -> Result<Stack, Vec<String>> {
        let mut stack = Stack::default();
        let mut problems = Vec::new();
        for (file, yaml) in files {
            let docs = match documents(file, yaml) {
                Ok(docs) => docs,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            for (i, doc) in docs.iter().enumerate() {
                if let Err(e) = stack.add(&format!("{file} document {}", i + 1), doc) {
                    problems.push(e);
                }
            }
        }
        if problems.is_empty() {
            Ok(stack)
        } else {
            Err(problems)
        }
    }

    /// Adds one document, by its apiVersion and kind.
    fn add(&mut self, whence: &str, doc: &Value) -> Result<(), String> {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        if is::<Namespace>(api_version, kind) {
            self.namespaces.push(typed(whence, doc)?);
        } else if is::<Deployment>(api_version, kind) {
            self.deployments.push(typed(whence, doc)?);
        } else if is::<Service>(api_version, kind) {
            self.services.push(typed(whence, doc)?);
        } else if is::<Secret>(api_version, kind) {
            self.secrets.push(typed(whence, doc)?);
        } else if is::<PodDisruptionBudget>(api_version, kind) {
            self.budgets.push(typed(whence, doc)?);
        } else if is::<HorizontalPodAutoscaler>(api_version, kind) {
            self.autoscalers.push(typed(whence, doc)?);
        } else if is::<NetworkPolicy>(api_version, kind) {
            self.network_policies.push(typed(whence, doc)?);
        } else if api_version == CNPG_API_VERSION && kind == "Cluster" {
            self.databases.push(postgres_cluster(whence, doc)?);
        } else {
            return Err(format!(
                "{whence}: {api_version} {kind} is not a kind this test reads (add its k8s-openapi type)"
            ));
        }
        Ok(())
    }

    fn deployment(&self, wanted: &str) -> &Deployment {
        self.deployments.iter().find(|d| name(*d) == wanted).unwrap_or_else(|| panic!("no Deployment {wanted}"))
    }

    fn templates(&self) -> impl Iterator<Item = (&str, &PodTemplateSpec)> {
        self.deployments.iter().map(|d| (name(d), &d.spec.as_ref().expect("a Deployment's spec").template))
    }

    /// Every Service name a client can use: the manifests' and the operator's.
    fn service_names(&self) -> BTreeSet<String> {
        let made =
            self.databases.iter().flat_map(|db| CNPG_SERVICES.iter().map(move |suffix| format!("{}{suffix}", db.name)));
        self.services.iter().map(|s| name(s).to_string()).chain(made).collect()
    }

    /// Whether `selector` picks pods of the stack: a Deployment's, or a database's instances
    /// (which the operator labels `cnpg.io/cluster=<name>`, `cnpg.io/instanceRole=...`).
    fn selects_pods(&self, selector: &BTreeMap<String, String>) -> bool {
        let of_a_deployment = self.templates().any(|(_, t)| matches(selector, labels(t.metadata.as_ref())));
        let of_a_database =
            selector.get("cnpg.io/cluster").is_some_and(|c| self.databases.iter().any(|db| &db.name == c))
                && selector.keys().all(|k| k.starts_with("cnpg.io/"));
        !selector.is_empty() && (of_a_deployment || of_a_database)
    }
}

fn name<K: Metadata<Ty = ObjectMeta>>(object: &K) -> &str {
    object.metadata().name.as_deref().unwrap_or_default()
}

fn namespace<K: Metadata<Ty = ObjectMeta>>(object: &K) -> &str {
    object.metadata().namespace.as_deref().unwrap_or_default()
}

fn labels(meta: Option<&ObjectMeta>) -> BTreeMap<String, String> {
    meta.and_then(|m| m.labels.clone()).unwrap_or_default()
}

/// Whether every label the selector asks for is on the object.
fn matches(selector: &BTreeMap<String, String>, labels: BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn stack() -> Stack {
    Stack::read(&manifest_files()).unwrap_or_else(|problems| panic!("the stack's manifests:\n{}", problems.join("\n")))
}

#[test]
fn every_manifest_reads_into_its_kubernetes_type_and_writes_back_the_same() {
    let stack = stack();
    assert_eq!(stack.namespaces.iter().map(name).collect::<Vec<_>>(), ["shop"]);
    let mut deployments: Vec<&str> = stack.deployments.iter().map(name).collect();
    deployments.sort();
    assert_eq!(deployments, ["s3", "shop"]);

    let shop = stack.deployment("shop").spec.as_ref().expect("the shop's spec");
    assert_eq!(shop.replicas, Some(3));
    let pod = shop.template.spec.as_ref().expect("the shop's pod spec");
    let container = &pod.containers[0];
    assert!(container.readiness_probe.is_some(), "the shop has a readiness probe");
    let requests = container.resources.as_ref().and_then(|r| r.requests.as_ref()).expect("the shop requests resources");
    assert!(requests.contains_key("cpu"), "the autoscaler's utilisation is a share of the CPU request");

    let budget = stack.budgets.iter().find(|b| name(*b) == "shop").expect("the shop's PodDisruptionBudget");
    assert_eq!(budget.spec.as_ref().and_then(|s| s.min_available.clone()), Some(IntOrString::Int(2)));

    let autoscaler = stack
        .autoscalers
        .iter()
        .find(|a| name(*a) == "shop")
        .expect("the shop's autoscaler")
        .spec
        .as_ref()
        .expect("its spec");
    let on_cpu = autoscaler.metrics.iter().flatten().filter_map(|m| m.resource.as_ref()).any(|r| r.name == "cpu");
    assert!(on_cpu, "the autoscaler scales on CPU");

    let [db] = &stack.databases[..] else { panic!("one CloudNativePG Cluster, not {}", stack.databases.len()) };
    assert_eq!((db.name.as_str(), db.instances), ("shop-db", 2), "a primary and a replica to fail over to");
    let services = stack.service_names();
    for expected in ["shop", "s3", "shop-db-rw"] {
        assert!(services.contains(expected), "no Service {expected}: {services:?}");
    }
}

/// What the check above is worth: a misspelt field, which k8s-openapi's types drop without a
/// word, fails it, and so do a value of the wrong type and a misspelt kind. (A value of the
/// right type the API server would refuse, `minAvailable: two`, passes: only a cluster knows.)
#[test]
fn a_misspelt_field_fails_the_check() {
    let files = manifest_files();
    let with = |file: &str, from: &str, to: &str| -> Vec<String> {
        let broken: Vec<(String, String)> = files
            .iter()
            .map(|(name, yaml)| {
                let yaml = if name == file {
                    assert!(yaml.contains(from), "{file} has {from}");
                    yaml.replacen(from, to, 1)
                } else {
                    yaml.clone()
                };
                (name.clone(), yaml)
            })
            .collect();
        Stack::read(&broken).err().unwrap_or_else(|| panic!("{file} with {to} passed the check"))
    };

    let problems = with("shop.yaml", "readinessProbe:", "readinesProbe:");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("shop.yaml document 1: not a Deployment as written: "), "{problems:?}");
    assert!(
        problems[0].contains("/spec/template/spec/containers/0/readinesProbe is not a field of it"),
        "{problems:?}"
    );

    let problems = with("shop.yaml", "replicas: 3", "replicas: three");
    assert!(
        problems[0].starts_with("shop.yaml document 1: not a Deployment: invalid type: string \"three\""),
        "{problems:?}"
    );

    let problems = with("s3.yaml", "kind: Service", "kind: Servce");
    assert!(problems[0].contains("s3.yaml document 2: v1 Servce is not a kind this test reads"), "{problems:?}");
}

#[test]
fn the_kustomization_applies_every_manifest_and_only_them() {
    let path = repo().join(STACK).join(KUSTOMIZATION);
    let kustomization: Kustomization =
        serde_saphyr::from_str(&text(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (kustomization.api_version.as_str(), kustomization.kind.as_str()),
        ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    );
    let manifests: Vec<String> = manifest_files().into_iter().map(|(name, _)| name).collect();
    let mut resources = kustomization.resources;
    resources.sort();
    assert_eq!(resources, manifests, "`kubectl apply -k {STACK}` must apply every manifest of the folder");
}

#[test]
fn the_kind_cluster_has_two_workers_and_publishes_the_shop_on_loopback() {
    let kind = kind_config();
    assert_eq!((kind.kind.as_str(), kind.api_version.as_str()), ("Cluster", "kind.x-k8s.io/v1alpha4"));
    assert_eq!(kind.context(), "kind-firedrill");
    assert_eq!(kind.node_names(), ["firedrill-control-plane", "firedrill-worker", "firedrill-worker2"]);
    for mapping in kind.nodes.iter().flat_map(|n| &n.extra_port_mappings) {
        assert_eq!(
            (mapping.listen_address.as_str(), mapping.protocol.as_str()),
            ("127.0.0.1", "TCP"),
            "published on loopback only"
        );
    }
    // The mapping is on a node no drill drains.
    let mapped: Vec<&str> =
        kind.nodes.iter().filter(|n| !n.extra_port_mappings.is_empty()).map(|n| n.role.as_str()).collect();
    assert_eq!(mapped, ["control-plane"]);
}

#[test]
fn the_objects_refer_to_objects_that_exist() {
    let stack = stack();
    let kind = kind_config();
    let namespaces: BTreeSet<&str> = stack.namespaces.iter().map(name).collect();
    let namespaced = stack
        .deployments
        .iter()
        .map(|o| (Deployment::KIND, name(o), namespace(o)))
        .chain(stack.services.iter().map(|o| (Service::KIND, name(o), namespace(o))))
        .chain(stack.secrets.iter().map(|o| (Secret::KIND, name(o), namespace(o))))
        .chain(stack.budgets.iter().map(|o| (PodDisruptionBudget::KIND, name(o), namespace(o))))
        .chain(stack.autoscalers.iter().map(|o| (HorizontalPodAutoscaler::KIND, name(o), namespace(o))))
        .chain(stack.network_policies.iter().map(|o| (NetworkPolicy::KIND, name(o), namespace(o))))
        .chain(stack.databases.iter().map(|o| ("Cluster", o.name.as_str(), o.namespace.as_str())));
    for (what, object, its_namespace) in namespaced {
        assert!(
            namespaces.contains(its_namespace),
            "{what} {object} is in namespace {its_namespace:?}, which the stack does not make"
        );
    }

    // A pod that selects nodes selects a node the cluster has.
    let placed = |selector: &BTreeMap<String, String>| {
        selector.is_empty() || kind.nodes.iter().any(|n| matches(selector, n.labels.clone()))
    };
    for (deployment, template) in stack.templates() {
        let pod = template.spec.as_ref().expect("a pod spec");
        let selector = pod.node_selector.clone().unwrap_or_default();
        assert!(placed(&selector), "{deployment}: no node of {KIND_CONFIG} has the labels {selector:?}");
        for container in &pod.containers {
            let image = container.image.as_deref().unwrap_or_default();
            assert!(
                LOADED_IMAGES.contains(&image),
                "{deployment}: image {image} is not one kind loads ({LOADED_IMAGES:?})"
            );
            // `:latest` is pulled by default, and these are in no registry.
            assert_eq!(
                container.image_pull_policy.as_deref(),
                Some("Never"),
                "{deployment}: a loaded image is never pulled"
            );
            for secret in container.env.iter().flatten().filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
            {
                let found = stack.secrets.iter().find(|s| name(*s) == secret.name);
                let keys = found.and_then(|s| s.string_data.clone()).unwrap_or_default();
                assert!(
                    keys.contains_key(&secret.key),
                    "{deployment}: no Secret {} with key {}",
                    secret.name,
                    secret.key
                );
            }
        }
    }
    for db in &stack.databases {
        if let Some(secret) = &db.owner_secret {
            assert!(stack.secrets.iter().any(|s| name(s) == secret), "Cluster {}: no Secret {secret}", db.name);
        }
        assert!(
            placed(&db.node_selector),
            "Cluster {}: no node of {KIND_CONFIG} has the labels {:?}",
            db.name,
            db.node_selector
        );
    }

    let published = kind.published();
    for service in &stack.services {
        let spec = service.spec.as_ref().expect("a Service's spec");
        let selector = spec.selector.clone().unwrap_or_default();
        let backends: Vec<&PodTemplateSpec> = stack
            .templates()
            .filter(|(_, t)| matches(&selector, labels(t.metadata.as_ref())))
            .map(|(_, t)| t)
            .collect();
        assert!(!selector.is_empty() && !backends.is_empty(), "Service {} selects no pods of the stack", name(service));
        for port in spec.ports.iter().flatten() {
            let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
            let served = backends
                .iter()
                .flat_map(|t| &t.spec.as_ref().expect("a pod spec").containers)
                .flat_map(|c| c.ports.iter().flatten())
                .any(|p| match &target {
                    IntOrString::Int(n) => p.container_port == *n,
                    IntOrString::String(s) => p.name.as_deref() == Some(s),
                });
            assert!(served, "Service {}: no container port {target:?}", name(service));
            if let Some(node_port) = port.node_port {
                assert!(
                    published.iter().any(|(on_node, _)| i32::from(*on_node) == node_port),
                    "Service {}: NodePort {node_port} is not published by {KIND_CONFIG} ({published:?})",
                    name(service)
                );
            }
        }
    }

    for budget in &stack.budgets {
        let selector = budget
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        assert!(stack.selects_pods(&selector), "PodDisruptionBudget {} selects no pods of the stack", name(budget));
    }
    for autoscaler in &stack.autoscalers {
        let target = &autoscaler.spec.as_ref().expect("an autoscaler's spec").scale_target_ref;
        assert_eq!(target.kind, Deployment::KIND);
        let pod =
            stack.deployment(&target.name).spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("a pod spec");
        for container in &pod.containers {
            let requests = container.resources.as_ref().and_then(|r| r.requests.clone()).unwrap_or_default();
            assert!(
                requests.contains_key("cpu"),
                "{}: a CPU autoscaler needs the CPU request of every container",
                target.name
            );
        }
    }
}

/// Every value of a map key `key` anywhere in `doc`, with its JSON pointer.
fn values_of<'a>(doc: &'a Value, key: &str, at: String, found: &mut Vec<(String, &'a Value)>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{k}");
                if k == key {
                    found.push((here.clone(), v));
                }
                values_of(v, key, here, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                values_of(v, key, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// A string value's text; anything else is no name.
fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A label selector as a scenario writes it: a map, or `key=value,key=value`.
fn selector_of(value: &Value) -> Option<BTreeMap<String, String>> {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
        Value::String(s) => s
            .split(',')
            .map(|pair| pair.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect(),
        _ => None,
    }
}

/// The ports of this machine's loopback named in the strings of `doc` (URLs).
fn loopback_ports(doc: &Value, found: &mut Vec<u16>) {
    match doc {
        Value::String(s) => {
            for (_, rest) in s.match_indices("127.0.0.1:").map(|(i, m)| s.split_at(i + m.len())) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                found.extend(digits.parse::<u16>().ok());
            }
        }
        Value::Object(map) => map.values().for_each(|v| loopback_ports(v, found)),
        Value::Array(items) => items.iter().for_each(|v| loopback_ports(v, found)),
        _ => {}
    }
}

/// What a kube scenario names that the stack does not have: its context must be the kind
/// cluster's, and every namespace, Deployment, Service (also as a connection string's
/// `host=NAME.NAMESPACE.svc`), database, node, selector, image and loopback port it names one
/// the stack has. The scenario is read as plain YAML, not as a
/// scenario, so that a fault or probe added later is checked as soon as it names one of these.
fn scenario_problems(stack: &Stack, kind: &KindCluster, file: &str, scenario: &Value) -> Vec<String> {
    let namespaces: BTreeSet<&str> = stack.namespaces.iter().map(name).collect();
    let deployments: BTreeSet<&str> = stack.deployments.iter().map(name).collect();
    let services = stack.service_names();
    let databases: BTreeSet<&str> = stack.databases.iter().map(|db| db.name.as_str()).collect();
    let nodes = kind.node_names();
    let context = kind.context();
    let mut problems = Vec::new();
    let mut check = |key: &str, ok: &dyn Fn(&Value) -> bool| {
        let mut found = Vec::new();
        values_of(scenario, key, String::new(), &mut found);
        for (at, value) in found {
            let values = value.as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
            for value in values.iter().filter(|v| !ok(v)) {
                problems.push(format!("{file}: {at} is {value}, which the stack does not have"));
            }
        }
    };
    check("context", &|v| text_of(v) == context);
    check("namespace", &|v| namespaces.contains(text_of(v)));
    check("namespaces", &|v| namespaces.contains(text_of(v)));
    check("deployment", &|v| deployments.contains(text_of(v)));
    check("service", &|v| services.contains(text_of(v)));
    check("cluster", &|v| databases.contains(text_of(v)));
    check("node", &|v| nodes.iter().any(|node| node == text_of(v)));
    check("image", &|v| LOADED_IMAGES.contains(&text_of(v)));
    check("selector", &|v| selector_of(v).is_some_and(|s| stack.selects_pods(&s)));
    // A connection string whose host is `NAME.NAMESPACE.svc` is port-forwarded to that Service.
    check("dsn", &|v| {
        firedrill::env::kube::forward::service_in(text_of(v))
            .is_none_or(|t| services.contains(t.service.as_str()) && namespaces.contains(t.namespace.as_str()))
    });
    let host_ports: Vec<u16> = kind.published().into_iter().map(|(_, on_host)| on_host).collect();
    let mut ports = Vec::new();
    loopback_ports(scenario, &mut ports);
    for port in ports.into_iter().filter(|p| !host_ports.contains(p)) {
        problems.push(format!("{file}: 127.0.0.1:{port} is not a port {KIND_CONFIG} publishes ({host_ports:?})"));
    }
    problems
}

#[test]
fn the_kube_scenarios_name_objects_of_the_stack() {
    let (stack, kind) = (stack(), kind_config());
    let dir = repo().join("scenarios/kube");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no {}: no kube scenario to check", dir.display());
        return;
    };
    let mut paths: Vec<_> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut problems = Vec::new();
    for path in &paths {
        let file = path.strip_prefix(repo()).unwrap_or(path).display().to_string();
        let scenario: Value = serde_saphyr::from_str(&text(path)).unwrap_or_else(|e| panic!("{file}: {e}"));
        problems.extend(scenario_problems(&stack, &kind, &file, &scenario));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("{} kube scenario(s) checked against the stack", paths.len());
}

/// A scenario written for another cluster is caught, each name it gets wrong said.
#[test]
fn a_scenario_naming_what_the_stack_lacks_is_caught() {
    let scenario = r#"
environment: {kind: kube, context: kind-kind, namespace: shop, namespaces: [shop, default]}
fault: {kind: node_drain, node: kind-worker}
probes:
  - {name: users, check: {kind: http, url: "http://127.0.0.1:8080/catalog"}}
  - {name: web, check: {kind: deployment, deployment: web, namespace: shop}}
  - {name: db, check: {kind: endpoints, service: shop-db-rw, min_ready: 1}}
  - {name: pods, check: {kind: pods, selector: "app=web"}}
  - {name: ledger, check: {kind: write_ledger, dsn: "host=pg-rw.shop.svc user=shop"}}
"#;
    let scenario: Value = serde_saphyr::from_str(scenario).expect("YAML");
    let problems = scenario_problems(&stack(), &kind_config(), "wrong.yaml", &scenario);
    assert_eq!(
        problems,
        [
            "wrong.yaml: /environment/context is \"kind-kind\", which the stack does not have",
            "wrong.yaml: /environment/namespaces is \"default\", which the stack does not have",
            "wrong.yaml: /probes/1/check/deployment is \"web\", which the stack does not have",
            "wrong.yaml: /fault/node is \"kind-worker\", which the stack does not have",
            "wrong.yaml: /probes/3/check/selector is \"app=web\", which the stack does not have",
            "wrong.yaml: /probes/4/check/dsn is \"host=pg-rw.shop.svc user=shop\", which the stack does not have",
            "wrong.yaml: 127.0.0.1:8080 is not a port kind.yaml publishes ([30080])",
        ]
    );
}

/// The cluster commands of a shell script (kind, kubectl, docker build and the image folder),
/// each on one line with single spaces, comments left out.
fn cluster_commands(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(|line| line.split(" #").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| ["kind ", "kubectl ", "docker build ", "mkdir "].iter().any(|p| line.starts_with(p)))
        .collect()
}

/// The CI example is valid YAML, sets up the cluster with the README's commands (flags may be
/// added) and gates on the kube drills: it can only be read here, not run.
#[test]
fn the_ci_example_sets_up_the_readme_stack_and_gates_on_the_kube_drills() {
    let path = repo().join(CI_EXAMPLE);
    let workflow: Value = serde_saphyr::from_str(&text(&path)).unwrap_or_else(|e| panic!("{CI_EXAMPLE}: {e}"));
    let mut runs = Vec::new();
    values_of(&workflow, "run", String::new(), &mut runs);
    let script: String = runs.iter().filter_map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("\n");
    let in_ci = cluster_commands(&script);

    let readme = text(&repo().join("README.md"));
    let section =
        readme.split("\n## Drill your kind cluster\n").nth(1).expect("the README's section").split("\n## ").next();
    let setup = section.and_then(|s| s.split("```").nth(1)).expect("the section's setup commands");
    let in_readme = cluster_commands(setup);
    assert!(in_readme.len() >= 10, "the README's setup: {in_readme:?}");
    for command in &in_readme {
        assert!(in_ci.iter().any(|c| c.starts_with(command.as_str())), "{CI_EXAMPLE} does not run `{command}`");
    }

    let gate = format!("firedrill run scenarios/kube/ --context {} --report junit", kind_config().context());
    assert!(script.contains(&gate), "{CI_EXAMPLE} does not gate on `{gate}`");
    let mut uses = Vec::new();
    values_of(&workflow, "uses", String::new(), &mut uses);
    assert!(
        uses.iter().any(|(_, v)| v.as_str().is_some_and(|u| u.contains("junit"))),
        "{CI_EXAMPLE} publishes the JUnit reports"
    );
}
