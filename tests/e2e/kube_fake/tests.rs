//! What the fake promises, checked through a real `kube::Client` built from the kubeconfig it
//! writes: the kube environment's drills run against these behaviours.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::{Eviction, PodDisruptionBudget};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta};
use kube::api::{
    Api, AttachParams, DeleteParams, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams, Preconditions,
    WatchEvent, WatchParams,
};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, Status};
use kube::ResourceExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FakeCluster, FakeSpec};

/// Three nodes; the shop's two pods both on node-a, a budget of one available pod and a
/// Service over them, and an autoscaler; kindnet on every node; etcd's mirror pod on node-a;
/// RBAC denying node patches.
fn shop() -> FakeSpec {
    FakeSpec::new(&["node-a", "node-b", "node-c"])
        .deployment("shop", "shop", &["node-a", "node-a"])
        .daemon_set("kube-system", "kindnet")
        .static_pod("kube-system", "etcd", "node-a")
        .object(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "shop" }, "minReplicas": 2, "maxReplicas": 6 },
        }))
        .object(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": "shop" } } },
        }))
        .object(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": { "selector": { "app": "shop" }, "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
        }))
        .deny("patch", "nodes", "")
}

/// A client from the kubeconfig the fake writes, without kube's retries of 429 (which would
/// hide a blocked eviction), as the kube environment builds its own.
async fn client(cluster: &FakeCluster, dir: &Path) -> kube::Client {
    firedrill::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig(dir)).expect("the kubeconfig reads");
    let options = kube::config::KubeConfigOptions { context: Some("fake".to_string()), ..Default::default() };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.expect("a config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("a client")
}

/// The Status of a refused request.
fn refusal(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("not an API answer: {other}"),
    }
}

/// Posts a policy/v1 Eviction with grace period 0, as the kube environment does.
async fn evict(pods: &Api<Pod>, name: &str, dry_run: bool) -> Result<Status, kube::Error> {
    let eviction = Eviction {
        metadata: ObjectMeta { name: Some(name.to_string()), ..ObjectMeta::default() },
        delete_options: Some(DeleteOptions { grace_period_seconds: Some(0), ..DeleteOptions::default() }),
    };
    pods.create_subresource("eviction", name, &PostParams { dry_run, ..PostParams::default() }, &eviction).await
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

/// The shop's pods, by name.
async fn shop_pods(pods: &Api<Pod>) -> Vec<Pod> {
    let mut listed = pods.list(&ListParams::default().labels("app=shop")).await.expect("pods").items;
    listed.sort_by_key(|p| p.name_any());
    listed
}

#[tokio::test]
async fn nodes_are_listed_and_cordoned_by_merge_and_strategic_patches() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let nodes: Api<Node> = Api::all(client(&cluster, dir.path()).await);
    let listed = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.iter().map(|n| n.name_any()).collect::<Vec<_>>(), ["node-a", "node-b", "node-c"]);
    assert!(listed.items.iter().all(|n| n.spec.as_ref().and_then(|s| s.unschedulable).is_none()));
    let before = listed.items[0].resource_version().unwrap();

    let params = PatchParams::default();
    let cordoned =
        nodes.patch("node-a", &params, &Patch::Merge(json!({ "spec": { "unschedulable": true } }))).await.unwrap();
    assert_eq!(cordoned.spec.as_ref().unwrap().unschedulable, Some(true));
    assert!(cordoned.resource_version().unwrap().parse::<u64>().unwrap() > before.parse::<u64>().unwrap());
    let annotation = json!({ "metadata": { "annotations": { "firedrill.run/cordoned": "r1" } } });
    let annotated = nodes.patch("node-a", &params, &Patch::Strategic(annotation)).await.unwrap();
    assert_eq!(annotated.annotations().get("firedrill.run/cordoned").map(String::as_str), Some("r1"));
    assert_eq!(annotated.spec.as_ref().unwrap().unschedulable, Some(true), "a patch keeps what it does not name");

    let stale = json!({ "metadata": { "resourceVersion": before }, "spec": { "unschedulable": false } });
    let refused = refusal(nodes.patch("node-a", &params, &Patch::Merge(stale)).await.unwrap_err());
    assert_eq!((refused.code, refused.reason.as_str()), (409, "Conflict"));

    let undo =
        json!({ "metadata": { "annotations": { "firedrill.run/cordoned": null } }, "spec": { "unschedulable": null } });
    let uncordoned = nodes.patch("node-a", &params, &Patch::Merge(undo)).await.unwrap();
    assert!(uncordoned.annotations().is_empty());
    assert_eq!(uncordoned.spec.as_ref().unwrap().unschedulable, None);
    let missing = refusal(nodes.get("node-z").await.unwrap_err());
    assert_eq!((missing.code, missing.message.as_str()), (404, "nodes \"node-z\" not found"));
}

#[tokio::test]
async fn pods_are_listed_by_node_and_by_label_with_their_owners_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let client = client(&cluster, dir.path()).await;
    let everywhere: Api<Pod> = Api::all(client.clone());
    let on_a = everywhere.list(&ListParams::default().fields("spec.nodeName=node-a")).await.unwrap().items;
    let app = |p: &Pod| p.labels().get("app").or(p.labels().get("component")).cloned().unwrap_or_default();
    let mut owners: Vec<(String, String)> =
        on_a.iter().map(|p| (p.owner_references()[0].kind.clone(), app(p))).collect();
    owners.sort();
    let expected = [("DaemonSet", "kindnet"), ("Node", "etcd"), ("ReplicaSet", "shop"), ("ReplicaSet", "shop")];
    assert_eq!(owners, expected.map(|(kind, app)| (kind.to_string(), app.to_string())));
    let mirror = on_a.iter().find(|p| p.owner_references()[0].kind == "Node").unwrap();
    assert_eq!(mirror.name_any(), "etcd-node-a");
    assert!(mirror.annotations().contains_key("kubernetes.io/config.mirror"), "a mirror pod, which a drain skips");
    assert!(on_a.iter().all(|p| is_ready(p) && node_of(p) == "node-a" && p.uid().is_some()));
    assert_eq!(everywhere.list(&ListParams::default().fields("spec.nodeName=node-b")).await.unwrap().items.len(), 1);

    let shop: Api<Pod> = Api::namespaced(client, "shop");
    let count = |selector: &'static str| {
        let shop = shop.clone();
        async move { shop.list(&ListParams::default().labels(selector)).await.unwrap().items.len() }
    };
    assert_eq!(count("app=shop").await, 2);
    assert_eq!(count("app in (shop,web),!canary").await, 2);
    assert_eq!(count("app!=shop").await, 0);
    let name = on_a.iter().find(|p| app(p) == "shop").unwrap().name_any();
    let log = shop.logs(&name, &LogParams::default()).await.unwrap();
    assert!(log.ends_with(&format!("fake kubelet: shop/{name} running on node-a\n")), "{log}");
    let refused = refusal(everywhere.list(&ListParams::default().fields("spec.host=node-a")).await.unwrap_err());
    assert_eq!((refused.code, refused.message.as_str()), (400, "field label not supported: spec.host"));
}

#[tokio::test]
async fn an_eviction_blocked_by_the_budget_is_accepted_once_the_replacement_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let spec = shop();
    let (recreate, ready) = (spec.recreate_delay, spec.ready_delay);
    let cluster = FakeCluster::start(spec);
    let client = client(&cluster, dir.path()).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch("node-a", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "unschedulable": true } })))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let names: Vec<String> = shop_pods(&pods).await.iter().map(|p| p.name_any()).collect();

    let accepted = evict(&pods, &names[0], false).await.unwrap();
    assert_eq!(accepted.code, 201);
    let evicted_at = Instant::now();
    for dry_run in [false, true] {
        let blocked = refusal(evict(&pods, &names[1], dry_run).await.unwrap_err());
        assert_eq!((blocked.code, blocked.reason.as_str()), (429, "TooManyRequests"));
        assert_eq!(blocked.message, "Cannot evict pod as it would violate the pod's disruption budget.");
        let cause = &blocked.details.expect("details").causes[0];
        assert_eq!(cause.reason, "DisruptionBudget");
        assert_eq!(cause.message, "The disruption budget shop needs 1 healthy pods and has 1 currently");
    }

    let replacement = loop {
        let fresh = shop_pods(&pods).await.into_iter().find(|p| !names.contains(&p.name_any()) && is_ready(p));
        if let Some(pod) = fresh {
            break pod;
        }
        assert!(evicted_at.elapsed() < Duration::from_secs(5), "no replacement became Ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let waited = evicted_at.elapsed();
    assert!(
        waited >= recreate + ready - Duration::from_millis(50) && waited < recreate + ready + Duration::from_secs(1),
        "Ready after {waited:?}"
    );
    assert_ne!(node_of(&replacement), "node-a", "not on the cordoned node");

    assert_eq!(evict(&pods, &names[1], false).await.unwrap().code, 201);
    assert_eq!(refusal(pods.get(&names[1]).await.unwrap_err()).code, 404, "gone at once with grace 0");
    // The budget's status follows within a controller pass (the next replacement is not Ready yet).
    let budgets = Api::<PodDisruptionBudget>::namespaced(client, "shop");
    let settled = Instant::now();
    loop {
        let budget = budgets.get("shop").await.unwrap().status.unwrap();
        if (budget.desired_healthy, budget.current_healthy, budget.disruptions_allowed) == (1, 1, 0) {
            break;
        }
        assert!(settled.elapsed() < Duration::from_millis(900), "the budget's status stayed {budget:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_eviction_answers_404_for_a_gone_pod_and_500_when_two_budgets_select_it() {
    let dir = tempfile::tempdir().unwrap();
    let second_budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": { "name": "shop-too", "namespace": "shop" },
        "spec": { "maxUnavailable": "50%", "selector": { "matchExpressions": [{ "key": "app", "operator": "In", "values": ["shop"] }] } },
    });
    let cluster = FakeCluster::start(shop().object(second_budget));
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let name = shop_pods(&pods).await[0].name_any();
    let refused = refusal(evict(&pods, &name, false).await.unwrap_err());
    assert_eq!(refused.code, 500);
    assert_eq!(
        refused.message,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    let gone = refusal(evict(&pods, "shop-gone", false).await.unwrap_err());
    assert_eq!(
        (gone.code, gone.reason.as_str(), gone.message.as_str()),
        (404, "NotFound", "pods \"shop-gone\" not found")
    );
}

#[tokio::test]
async fn kube_rs_evict_sends_its_delete_options_under_a_key_the_api_drops() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let name = shop_pods(&pods).await[0].name_any();
    let params = EvictParams {
        delete_options: Some(DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }),
        post_options: PostParams { dry_run: true, ..PostParams::default() },
    };
    assert_eq!(pods.evict(&name, &params).await.unwrap().code, 201, "accepted, as the API accepts it");
    evict(&pods, &name, true).await.unwrap();
    let evictions: Vec<_> = cluster.requests().into_iter().filter(|r| r.path.ends_with("/eviction")).collect();
    assert_eq!(evictions.len(), 2);
    for request in &evictions {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", format!("/api/v1/namespaces/shop/pods/{name}/eviction").as_str())
        );
        assert!(request.query.split('&').any(|p| p == "dryRun=All"), "{}", request.query);
        assert_eq!(request.content_type, "application/json");
    }
    assert!(
        evictions[0].body.contains("\"delete_options\"") && !evictions[0].body.contains("deleteOptions"),
        "{}",
        evictions[0].body
    );
    assert!(evictions[1].body.contains("\"deleteOptions\":{\"gracePeriodSeconds\":0}"), "{}", evictions[1].body);
    assert!(is_ready(&pods.get(&name).await.unwrap()), "a dry run changes nothing");

    // The API accepts the misnamed key and says so only in a header, which kube-rs logs.
    let answer = raw_post(&cluster.url(), &format!("{}?dryRun=All", evictions[0].path), &evictions[0].body);
    assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"), "{answer}");
    assert!(answer.contains("\r\nwarning: 299 - \"unknown field \\\"delete_options\\\"\"\r\n"), "{answer}");
}

/// POSTs a JSON body over a bare connection; the whole answer, head and body.
fn raw_post(url: &str, path: &str, body: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("the fake listens");
    let head = format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    stream.write_all(format!("{head}{body}").as_bytes()).expect("the request is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    answer
}

#[tokio::test]
async fn a_delete_with_a_uid_precondition_spares_a_pod_recreated_under_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let first = shop_pods(&pods).await.remove(0);
    let (name, uid) = (first.name_any(), first.uid().unwrap());
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    pods.delete(&name, &now).await.unwrap();

    // Recreated under the same name, as a StatefulSet's controller does.
    let again: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": "ledger" } },
        "spec": { "containers": [{ "name": "ledger", "image": "firedrill/ledger:latest" }] },
    }))
    .unwrap();
    let new_uid = pods.create(&PostParams::default(), &again).await.unwrap().uid().unwrap();
    assert_ne!(new_uid, uid);
    let precondition = |uid: &str| DeleteParams {
        preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..now.clone()
    };
    let refused = refusal(pods.delete(&name, &precondition(&uid)).await.unwrap_err());
    assert_eq!((refused.code, refused.reason.as_str()), (409, "Conflict"));
    let expected = format!("Operation cannot be fulfilled on pods \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {new_uid}");
    assert_eq!(refused.message, expected);
    assert_eq!(pods.get(&name).await.unwrap().uid(), Some(new_uid.clone()), "spared");

    let deleted = pods.delete(&name, &precondition(&new_uid)).await.unwrap();
    assert_eq!(deleted.left().map(|p| p.uid()), Some(Some(new_uid)), "a pod's delete answers the pod");
    assert_eq!(refusal(pods.get(&name).await.unwrap_err()).code, 404);
}

/// The next watch event, within the time a replacement takes and some.
async fn next<K>(events: &mut (impl Stream<Item = Result<WatchEvent<K>, kube::Error>> + Unpin)) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event in time")
        .expect("the watch goes on")
        .expect("an event")
}

/// The resourceVersion of an event's object.
fn version<K: kube::Resource>(event: &WatchEvent<K>) -> u64 {
    match event {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            o.resource_version().unwrap().parse().unwrap()
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn watches_see_a_pod_leave_and_its_replacement_become_ready_with_increasing_versions() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let client = client(&cluster, dir.path()).await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let of_shop = "kubernetes.io/service-name=shop";
    let listed = slices.list(&ListParams::default().labels(of_shop)).await.unwrap();
    let ready = |slice: &EndpointSlice| -> Vec<(String, bool)> {
        let mut endpoints: Vec<(String, bool)> = slice
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_default(),
                    e.conditions.as_ref().and_then(|c| c.ready) == Some(true),
                )
            })
            .collect();
        endpoints.sort();
        endpoints
    };
    let victims: Vec<String> = shop_pods(&pods).await.iter().map(|p| p.name_any()).collect();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(ready(&listed.items[0]), victims.iter().map(|v| (v.clone(), true)).collect::<Vec<_>>());
    let since = listed.metadata.resource_version.unwrap();
    let mut slice_events = slices.watch(&WatchParams::default().labels(of_shop), &since).await.unwrap().boxed();
    let mut pod_events = pods.watch(&WatchParams::default().labels("app=shop"), &since).await.unwrap().boxed();

    pods.delete(&victims[0], &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
    let mut states = Vec::new();
    let mut last = 0;
    loop {
        let event = next(&mut slice_events).await;
        assert!(version(&event) > last, "resourceVersions increase");
        last = version(&event);
        let WatchEvent::Modified(slice) = event else { panic!("the slice is modified") };
        states.push(ready(&slice));
        if states.last().unwrap().iter().filter(|(_, r)| *r).count() == 2 {
            break;
        }
    }
    let replacement =
        states.last().unwrap().iter().find(|(p, _)| !victims.contains(p)).expect("a new endpoint").0.clone();
    assert_eq!(states[0], [(victims[1].clone(), true)], "the deleted pod leaves first");
    assert!(
        states.iter().any(|s| s.contains(&(replacement.clone(), false))),
        "the new pod is listed before it is Ready: {states:?}"
    );

    let mut seen = Vec::new();
    let mut last = 0;
    while !matches!(seen.last(), Some((_, ref name, true)) if *name == replacement) {
        let event = next(&mut pod_events).await;
        assert!(version(&event) > last, "resourceVersions increase");
        last = version(&event);
        let (kind, pod) = match event {
            WatchEvent::Added(p) => ("ADDED", p),
            WatchEvent::Modified(p) => ("MODIFIED", p),
            WatchEvent::Deleted(p) => ("DELETED", p),
            other => panic!("unexpected {other:?}"),
        };
        seen.push((kind, pod.name_any(), is_ready(&pod)));
    }
    assert_eq!(seen[0], ("DELETED", victims[0].clone(), true));
    assert_eq!(seen[1], ("ADDED", replacement.clone(), false));

    // What the components did, as the namespace's Events tell it.
    let events = Api::<Event>::namespaced(client, "shop").list(&ListParams::default()).await.unwrap().items;
    let told = |reason: &str, message: &str| {
        events.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref() == Some(message))
    };
    assert!(told("Killing", "Stopping container shop"), "{events:?}");
    assert!(told("SuccessfulCreate", &format!("Created pod: {replacement}")));
    assert!(events
        .iter()
        .any(|e| e.reason.as_deref() == Some("Scheduled")
            && e.involved_object.name.as_deref() == Some(replacement.as_str())));
}

#[tokio::test]
async fn a_graceful_delete_leaves_the_pod_terminating_unready_and_unhealthy_until_its_grace_period_ends() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let client = client(&cluster, dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let slices: Api<EndpointSlice> = Api::namespaced(client, "shop");
    let names: Vec<String> = shop_pods(&pods).await.iter().map(|p| p.name_any()).collect();
    let graceful = DeleteParams { grace_period_seconds: Some(1), ..DeleteParams::default() };
    let answered = pods.delete(&names[0], &graceful).await.unwrap().left().expect("the pod");
    let deleted_at = Instant::now();
    assert!(answered.metadata.deletion_timestamp.is_some());
    assert_eq!(answered.metadata.deletion_grace_period_seconds, Some(1));

    let terminating = loop {
        let slice = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=shop"))
            .await
            .unwrap()
            .items
            .remove(0);
        let endpoint = slice
            .endpoints
            .into_iter()
            .find(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(names[0].as_str()));
        if let Some(conditions) = endpoint.and_then(|e| e.conditions).filter(|c| c.terminating == Some(true)) {
            break conditions;
        }
        assert!(deleted_at.elapsed() < Duration::from_millis(500), "the endpoint never showed the pod terminating");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((terminating.ready, terminating.serving), (Some(false), Some(true)));
    let blocked = refusal(evict(&pods, &names[1], false).await.unwrap_err());
    let cause = &blocked.details.expect("details").causes[0];
    assert_eq!(
        cause.message, "The disruption budget shop needs 1 healthy pods and has 1 currently",
        "a terminating pod is not healthy"
    );

    let longer = DeleteParams { grace_period_seconds: Some(30), ..DeleteParams::default() };
    pods.delete(&names[0], &longer).await.unwrap();
    while pods.get_opt(&names[0]).await.unwrap().is_some() {
        assert!(deleted_at.elapsed() < Duration::from_secs(3), "the pod outlived its grace period");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone_after = deleted_at.elapsed();
    assert!(gone_after >= Duration::from_millis(950), "gone after {gone_after:?}, before its grace period ended");
}

#[tokio::test]
async fn the_scale_subresource_reads_and_patches_a_deployments_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let client = client(&cluster, dir.path()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let scale = deployments.get_scale("shop").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    let status = scale.status.unwrap();
    assert_eq!((status.replicas, status.selector.as_deref()), (2, Some("app=shop")));

    let patched = deployments
        .patch_scale("shop", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "replicas": 3 } })))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(3));
    let negative = Patch::Merge(json!({ "spec": { "replicas": -1 } }));
    let refused = refusal(deployments.patch_scale("shop", &PatchParams::default(), &negative).await.unwrap_err());
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    let started = Instant::now();
    while deployments.get("shop").await.unwrap().status.unwrap().ready_replicas != Some(3) {
        assert!(started.elapsed() < Duration::from_secs(5), "the third replica never became Ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let autoscaler = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "shop").get("shop").await.unwrap();
    let counts = autoscaler.status.unwrap();
    assert_eq!(
        (counts.current_replicas, counts.desired_replicas),
        (Some(3), 3),
        "the autoscaler's status follows its target"
    );
    let replica_sets = Api::<ReplicaSet>::namespaced(client, "shop").list(&ListParams::default()).await.unwrap().items;
    assert_eq!(replica_sets.len(), 1);
    assert_eq!(replica_sets[0].spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(replica_sets[0].owner_references()[0].name, "shop");
}

#[tokio::test]
async fn network_policies_are_created_listed_by_label_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let policies: Api<NetworkPolicy> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let deny: NetworkPolicy = serde_json::from_value(json!({
        "metadata": { "name": "firedrill-blackhole", "labels": { "firedrill.run": "r1" } },
        "spec": { "podSelector": { "matchLabels": { "app": "shop" } }, "policyTypes": ["Ingress", "Egress"] },
    }))
    .unwrap();
    let created = policies.create(&PostParams::default(), &deny).await.unwrap();
    assert!(created.uid().is_some() && created.resource_version().is_some());
    let again = refusal(policies.create(&PostParams::default(), &deny).await.unwrap_err());
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));

    let labelled = ListParams::default().labels("firedrill.run=r1");
    let listed = policies.list(&labelled).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec, deny.spec);
    let answer =
        policies.delete("firedrill-blackhole", &DeleteParams::default()).await.unwrap().right().expect("a Status");
    let details = answer.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.group.as_str(), details.kind.as_str()),
        ("firedrill-blackhole", "networking.k8s.io", "networkpolicies")
    );
    assert!(policies.list(&labelled).await.unwrap().items.is_empty());

    // Server-side apply creates, then changes; without a field manager the API refuses it.
    let partition = |types: &[&str]| {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": { "name": "firedrill-partition", "labels": { "firedrill.run": "r1" } },
            "spec": { "podSelector": {}, "policyTypes": types },
        })
    };
    let unmanaged = PatchParams::default();
    let refused = refusal(
        policies.patch("firedrill-partition", &unmanaged, &Patch::Apply(partition(&["Ingress"]))).await.unwrap_err(),
    );
    assert_eq!(refused.code, 400);
    let managed = PatchParams::apply("firedrill");
    let first = policies.patch("firedrill-partition", &managed, &Patch::Apply(partition(&["Ingress"]))).await.unwrap();
    let second = policies
        .patch("firedrill-partition", &managed, &Patch::Apply(partition(&["Ingress", "Egress"])))
        .await
        .unwrap();
    assert_eq!(first.uid(), second.uid());
    assert_eq!(second.spec.unwrap().policy_types, Some(vec!["Ingress".to_string(), "Egress".to_string()]));
    policies.create(&PostParams::default(), &deny).await.unwrap();
    let removed = policies
        .delete_collection(&DeleteParams::default(), &labelled)
        .await
        .unwrap()
        .left()
        .expect("the list removed");
    assert_eq!(
        removed.items.iter().map(|p| p.name_any()).collect::<Vec<_>>(),
        ["firedrill-blackhole", "firedrill-partition"]
    );
    assert!(policies.list(&labelled).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn access_reviews_allow_what_the_spec_does_not_deny_and_unknown_paths_answer_404() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let client = client(&cluster, dir.path()).await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review =
        |verb: &str, resource: &str, subresource: Option<&str>, namespace: Option<&str>| SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: subresource.map(str::to_string),
                    namespace: namespace.map(str::to_string),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
    let allowed = reviews
        .create(&PostParams::default(), &review("create", "pods", Some("eviction"), Some("shop")))
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(allowed.allowed && allowed.reason.unwrap().starts_with("RBAC: allowed by"));
    let denied =
        reviews.create(&PostParams::default(), &review("patch", "nodes", None, None)).await.unwrap().status.unwrap();
    assert!(!denied.allowed);

    let unknown = hyper::Request::get("/apis/example.com/v1/widgets").body(Vec::new()).unwrap();
    let refused = refusal(client.request::<serde_json::Value>(unknown).await.unwrap_err());
    assert_eq!(
        (refused.code, refused.reason.as_str(), refused.message.as_str()),
        (404, "NotFound", "the server could not find the requested resource")
    );
}

/// The pods a Service's EndpointSlice lists as ready.
async fn ready_behind(slices: &Api<EndpointSlice>, service: &str) -> Vec<String> {
    let selector = format!("kubernetes.io/service-name={service}");
    let listed = slices.list(&ListParams::default().labels(&selector)).await.unwrap().items;
    let mut ready: Vec<String> = listed
        .into_iter()
        .flat_map(|slice| slice.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .filter_map(|e| e.target_ref.and_then(|r| r.name))
        .collect();
    ready.sort();
    ready
}

#[tokio::test]
async fn the_postgres_operator_fails_over_after_a_crash_and_switches_over_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = FakeSpec::new(&["node-a", "node-b", "node-c"]).postgres("db", "pg", &["node-a", "node-b", "node-c"]);
    let failover = spec.failover_delay;
    let cluster = FakeCluster::start(spec);
    let client = client(&cluster, dir.path()).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster"));
    let clusters: Api<DynamicObject> = Api::namespaced_with(client.clone(), "db", &resource);
    let primary =
        || async { clusters.get("pg").await.unwrap().data["status"]["currentPrimary"].as_str().unwrap().to_string() };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let slices: Api<EndpointSlice> = Api::namespaced(client, "db");
    assert_eq!(primary().await, "pg-1");
    assert_eq!(ready_behind(&slices, "pg-rw").await, ["pg-1"]);
    assert_eq!(ready_behind(&slices, "pg-ro").await, ["pg-2", "pg-3"]);

    // A watch on the primary's label sees each instance enter and leave the role.
    let primaries = WatchParams::default().labels("cnpg.io/instanceRole=primary");
    let since = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut primary_events = pods.watch(&primaries, &since).await.unwrap().boxed();

    // The primary crashes: deleted at once, with a uid precondition as the db_failover fault does.
    let uid = pods.get("pg-1").await.unwrap().uid().unwrap();
    let crash = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    pods.delete("pg-1", &crash).await.unwrap();
    let crashed_at = Instant::now();
    while !ready_behind(&slices, "pg-rw").await.is_empty() {
        assert!(crashed_at.elapsed() < Duration::from_millis(450), "the crashed primary stayed behind pg-rw");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while ready_behind(&slices, "pg-rw").await != ["pg-2"] {
        assert!(crashed_at.elapsed() < Duration::from_secs(5), "no failover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let promoted_after = crashed_at.elapsed();
    assert!(
        promoted_after >= failover - Duration::from_millis(50) && promoted_after < failover + Duration::from_secs(1),
        "promoted after {promoted_after:?}"
    );
    assert_eq!(primary().await, "pg-2");
    loop {
        let back = pods.get_opt("pg-1").await.unwrap().filter(is_ready);
        if let Some(back) = back {
            assert_ne!(back.uid(), Some(uid.clone()), "a new instance under the old name");
            assert_eq!(back.labels()["cnpg.io/instanceRole"], "replica");
            break;
        }
        assert!(crashed_at.elapsed() < Duration::from_secs(5), "pg-1 never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A switchover, as `kubectl cnpg promote pg pg-3` asks for it.
    let promote = Patch::Merge(json!({ "status": { "targetPrimary": "pg-3" } }));
    clusters.patch_status("pg", &PatchParams::default(), &promote).await.unwrap();
    let asked_at = Instant::now();
    while ready_behind(&slices, "pg-rw").await != ["pg-3"] {
        assert!(asked_at.elapsed() < Duration::from_secs(5), "no switchover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(asked_at.elapsed() >= failover - Duration::from_millis(50), "switched over after {:?}", asked_at.elapsed());
    assert_eq!(primary().await, "pg-3");
    assert_eq!(ready_behind(&slices, "pg-ro").await, ["pg-1", "pg-2"]);
    let mut roles = Vec::new();
    while roles.len() < 4 {
        match next(&mut primary_events).await {
            WatchEvent::Added(pod) => roles.push(format!("+{}", pod.name_any())),
            WatchEvent::Deleted(pod) => roles.push(format!("-{}", pod.name_any())),
            other => panic!("only entries and exits: {other:?}"),
        }
    }
    assert_eq!(roles, ["-pg-1", "+pg-2", "-pg-2", "+pg-3"]);
    let status = clusters.get("pg").await.unwrap().data["status"].clone();
    assert_eq!(
        (status["phase"].as_str(), status["readyInstances"].as_u64()),
        (Some("Cluster in healthy state"), Some(3))
    );
}

/// Runs a command in a pod through exec, as an in-cluster probe does: its output and its exit
/// code, read from the Status the API ends the exec with.
async fn run_in(pods: &Api<Pod>, pod: &str, command: &[&str]) -> (String, i32) {
    let params = AttachParams::default().stdout(true).stderr(true);
    let mut process = pods.exec(pod, command.to_vec(), &params).await.expect("an exec");
    let mut output = String::new();
    process.stdout().expect("stdout").read_to_string(&mut output).await.expect("the output");
    let status = process.take_status().expect("a status").await.expect("the outcome");
    process.join().await.expect("the exec ends");
    if status.status.as_deref() == Some("Success") {
        return (output, 0);
    }
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"), "{status:?}");
    let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
    (output, causes[0].message.as_deref().and_then(|code| code.parse().ok()).expect("an exit code"))
}

#[tokio::test]
async fn an_exec_check_fails_under_a_deny_network_policy_unless_the_cni_fails_open() {
    let wget = |url: &'static str| ["wget", "-q", "-T", "1", "-O-", url];
    for enforced in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let spec = shop().deployment("shop", "probe", &["node-b"]);
        let cluster = FakeCluster::start(if enforced { spec } else { spec.cni_fails_open() });
        let client = client(&cluster, dir.path()).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
        let probe = pods.list(&ListParams::default().labels("app=probe")).await.unwrap().items[0].name_any();
        let (output, code) = run_in(&pods, &probe, &wget("http://shop.shop:80/")).await;
        assert!(code == 0 && output.starts_with("answered by shop-"), "{code}: {output}");

        let isolate: NetworkPolicy = serde_json::from_value(json!({
            "metadata": { "name": "firedrill-blackhole" },
            "spec": { "podSelector": { "matchLabels": { "app": "probe" } }, "policyTypes": ["Egress"] },
        }))
        .unwrap();
        Api::<NetworkPolicy>::namespaced(client, "shop").create(&PostParams::default(), &isolate).await.unwrap();
        let (_, code) = run_in(&pods, &probe, &wget("http://shop/")).await;
        assert_eq!(code, if enforced { 1 } else { 0 }, "a CNI that fails open lets it through");
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(shop());
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let name = shop_pods(&pods).await[0].name_any();
    assert_eq!(run_in(&pods, &name, &wget("http://s3.storage/")).await.1, 1, "no such Service");
    assert_eq!(run_in(&pods, &name, &["psql", "-c", "select 1"]).await.1, 127);
}

#[tokio::test]
async fn a_port_forward_reaches_one_pod_and_dies_with_it() {
    // A local echo server stands for the database behind the instances' port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut reading, mut writing) = connection.split();
                let _ = tokio::io::copy(&mut reading, &mut writing).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let spec =
        FakeSpec::new(&["node-a", "node-b"]).postgres("db", "pg", &["node-a", "node-b"]).forward("pg-", 5432, address);
    let cluster = FakeCluster::start(spec);
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "db");

    let mut forwarder = pods.portforward("pg-1", &[5432]).await.unwrap();
    let mut stream = forwarder.take_stream(5432).expect("the port's stream");
    stream.write_all(b"select 1").await.unwrap();
    let mut echoed = [0u8; 8];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"select 1");

    let mut closed = pods.portforward("pg-1", &[8080]).await.unwrap();
    let refused = closed.take_error(8080).expect("the port's errors").await.expect("an error");
    assert!(refused.ends_with("connection refused"), "{refused}");

    let lost = forwarder.take_error(5432).expect("the port's errors");
    pods.delete("pg-1", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(2), lost).await.expect("the forward ends with its pod");
    assert_eq!(lost.as_deref(), Some("lost connection to pod pg-1"));
}
