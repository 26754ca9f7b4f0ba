//! The kube environment on the wire: every request a node drain sends (method, path, query,
//! content type, JSON body) asserted against a `tower_test` mock of the API server, which
//! answers as the API server does (answers built from k8s-openapi and kube's own types): 201
//! for an accepted eviction, 429 with a `DisruptionBudget` cause, 404 for a pod already gone,
//! 409 when the uid precondition fails, 500 for a pod under several PodDisruptionBudgets.
//! No Kubernetes API server can be installed here; the in-process fake (kube_fake.rs) checks
//! the semantics, these the bytes.

use std::time::Duration;

use firedrill::env::kube::{connect, drain, KubeEnv, API_EVIDENCE};
use firedrill::env::{Environment, FaultGuard};
use firedrill::scenario::{EnvironmentSpec, Scenario};
use firedrill::text::error_chain;
use hyper::{Method, Request, Response};
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::client::Body;
use kube::core::response::{StatusCause, StatusDetails};
use kube::core::Status;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle, SendResponse};

use crate::common::{run, texts};

pub(crate) type Mock = Handle<Request<Body>, Response<Body>>;

const SCENARIO: &str = "name: kube-drain
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: node_drain, node: worker-1, grace_period: 10s, deadline: 30s}
";

/// The scenario, an environment on a mocked API server, the mock's handle, and the folder of
/// the revert journal.
fn env_on_mock() -> (Scenario, KubeEnv, Mock, tempfile::TempDir) {
    env_on_mock_for(SCENARIO)
}

/// [`env_on_mock`] for the scenario `text`.
fn env_on_mock_for(text: &str) -> (Scenario, KubeEnv, Mock, tempfile::TempDir) {
    let scenario = crate::common::scenario(text);
    let EnvironmentSpec::Kube(cluster) = &scenario.environment else { panic!("a kube scenario") };
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let journal = tempfile::tempdir().unwrap();
    let env = KubeEnv::new(cluster.clone(), &scenario, "run-1", journal.path().to_path_buf()).with_client(client);
    (scenario, env, handle, journal)
}

/// The next request, which must be `method` on `uri` (path and query); with its JSON body
/// (`null` when empty) and the handle to answer it.
pub(crate) async fn expect(
    handle: &mut Mock,
    method: Method,
    uri: &str,
) -> (Request<()>, Value, SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("the client sends a request");
    let (parts, body) = request.into_parts();
    assert_eq!((&parts.method, parts.uri.to_string().as_str()), (&method, uri), "the request");
    let bytes = body.collect_bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
    (Request::from_parts(parts, ()), body, send)
}

/// Answers with `code` and `body` as JSON.
pub(crate) fn answer(send: SendResponse<Response<Body>>, code: u16, body: &impl serde::Serialize) {
    let bytes = serde_json::to_vec(body).unwrap();
    send.send_response(
        Response::builder().status(code).header("content-type", "application/json").body(Body::from(bytes)).unwrap(),
    );
}

/// A Status as the API server writes it (kube's type has no `kind` and `apiVersion`).
fn status(s: Status) -> Value {
    let mut v = serde_json::to_value(s).unwrap();
    v["kind"] = json!("Status");
    v["apiVersion"] = json!("v1");
    v
}

/// The answer to an accepted eviction.
fn accepted() -> Value {
    status(Status::success().with_code(201))
}

/// The answer to an eviction `pdb` blocks, word for word the API server's.
fn blocked(pdb: &str) -> Value {
    let cause = StatusCause {
        reason: "DisruptionBudget".into(),
        message: format!("The disruption budget {pdb} needs 2 healthy pods and has 2 currently"),
        field: String::new(),
    };
    let details = StatusDetails {
        name: String::new(),
        group: String::new(),
        kind: String::new(),
        uid: String::new(),
        causes: vec![cause],
        retry_after_seconds: 0,
    };
    status(
        Status::failure("Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests")
            .with_code(429)
            .with_details(details),
    )
}

fn node(annotations: Value, unschedulable: bool) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "worker-1", "resourceVersion": "7", "annotations": annotations},
        "spec": {"unschedulable": unschedulable},
    }))
    .unwrap()
}

fn pod(namespace: &str, name: &str, owner: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner, "name": "owner", "uid": "o", "controller": true}],
        },
        "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running"},
    }))
    .unwrap()
}

fn pods(items: Vec<Pod>) -> k8s_openapi::List<Pod> {
    k8s_openapi::List { items, metadata: Default::default() }
}

/// Answers the SelfSubjectAccessReviews of `prepare` (a drain's four and the evidence's
/// three), in order; `denied` are
/// answered not allowed. Returns the permissions asked, as `verb group/resource/subresource
/// namespace` (no group for the core group).
async fn answer_access(handle: &mut Mock, denied: &[&str]) -> Vec<String> {
    answer_reviews(handle, 7, denied).await
}

/// [`answer_access`] for `count` reviews.
async fn answer_reviews(handle: &mut Mock, count: usize, denied: &[&str]) -> Vec<String> {
    let mut asked = Vec::new();
    for _ in 0..count {
        let (request, body, send) =
            expect(handle, Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?").await;
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(
            (&body["apiVersion"], &body["kind"]),
            (&json!("authorization.k8s.io/v1"), &json!("SelfSubjectAccessReview"))
        );
        let a = &body["spec"]["resourceAttributes"];
        let sub = a["subresource"].as_str().map(|s| format!("/{s}")).unwrap_or_default();
        let ns = a["namespace"].as_str().map(|s| format!(" {s}")).unwrap_or_default();
        let group = a["group"].as_str().expect("a group, \"\" for the core one");
        let group = if group.is_empty() { String::new() } else { format!("{group}/") };
        let permission = format!("{} {group}{}{sub}{ns}", a["verb"].as_str().unwrap(), a["resource"].as_str().unwrap());
        let mut review: SelfSubjectAccessReview = serde_json::from_value(body).unwrap();
        review.status =
            Some(SubjectAccessReviewStatus { allowed: !denied.contains(&permission.as_str()), ..Default::default() });
        answer(send, 201, &review);
        asked.push(permission);
    }
    asked
}

/// Answers the node's GET and the list of the pods on it.
async fn answer_node_and_pods(handle: &mut Mock, on_node: Vec<Pod>) {
    let (_, _, send) = expect(handle, Method::GET, "/api/v1/nodes/worker-1").await;
    answer(send, 200, &node(json!({}), false));
    // kube-rs writes an empty first parameter (`?&`), which the API server ignores.
    let (_, _, send) = expect(handle, Method::GET, "/api/v1/pods?&fieldSelector=spec.nodeName%3Dworker-1").await;
    answer(send, 200, &pods(on_node));
}

/// Answers the cordon, asserting that its undo is in the journal (in `journal`) already, and
/// its merge patch: unschedulable, annotated with the run and the node's prior state.
async fn answer_cordon(handle: &mut Mock, journal: &std::path::Path) {
    let (request, body, send) = expect(handle, Method::PATCH, "/api/v1/nodes/worker-1?").await;
    let journalled = std::fs::read_to_string(journal.join("run-1.jsonl")).unwrap();
    assert!(
        journalled.contains(
            r#""change":"cordon node worker-1","undo":{"action":"uncordon","context":"kind-drill","node":"worker-1"}"#
        ),
        "journalled before the change: {journalled}"
    );
    assert_eq!(request.headers()["content-type"], "application/merge-patch+json");
    assert_eq!(
        body,
        json!({
            "metadata": {"annotations": {"firedrill.io/run": "run-1", "firedrill.io/unschedulable-before": "false"}},
            "spec": {"unschedulable": true},
        })
    );
    answer(send, 200, &node(json!({"firedrill.io/run": "run-1", "firedrill.io/unschedulable-before": "false"}), true));
}

/// Answers the uncordon: the node read (still firedrill's), then its merge patch asserted.
async fn answer_uncordon(handle: &mut Mock) {
    let (_, _, send) = expect(handle, Method::GET, "/api/v1/nodes/worker-1").await;
    answer(send, 200, &node(json!({"firedrill.io/run": "run-1", "firedrill.io/unschedulable-before": "false"}), true));
    let (request, body, send) = expect(handle, Method::PATCH, "/api/v1/nodes/worker-1?").await;
    assert_eq!(request.headers()["content-type"], "application/merge-patch+json");
    assert_eq!(
        body,
        json!({
            "metadata": {"annotations": {"firedrill.io/run": null, "firedrill.io/unschedulable-before": null}},
            "spec": {"unschedulable": null},
        })
    );
    answer(send, 200, &node(json!({}), false));
}

/// The eviction of `shop/<name>`: asserted to be a `policy/v1` Eviction whose
/// `deleteOptions` carry the grace period and the pod's uid as a precondition.
async fn expect_eviction(handle: &mut Mock, name: &str) -> SendResponse<Response<Body>> {
    expect_eviction_with(handle, name, "").await
}

/// The server-side dry run of the eviction of `shop/<name>`: the same Eviction, with
/// `dryRun=All` in the query (after kube-rs's empty first parameter).
async fn expect_dry_run(handle: &mut Mock, name: &str) -> SendResponse<Response<Body>> {
    expect_eviction_with(handle, name, "&dryRun=All").await
}

/// Answers the dry runs of the evictions of `names` (in order) as accepted.
async fn answer_dry_runs(handle: &mut Mock, names: &[&str]) {
    for name in names {
        answer(expect_dry_run(handle, name).await, 201, &accepted());
    }
}

/// [`expect_eviction`] with `query`.
async fn expect_eviction_with(handle: &mut Mock, name: &str, query: &str) -> SendResponse<Response<Body>> {
    let (request, body, send) =
        expect(handle, Method::POST, &format!("/api/v1/namespaces/shop/pods/{name}/eviction?{query}")).await;
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(
        body,
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": "shop"},
            "deleteOptions": {"gracePeriodSeconds": 10, "preconditions": {"uid": format!("uid-{name}")}},
        }),
        "not `delete_options`, which the API server drops"
    );
    send
}

fn evidence_of(evidence: &[firedrill::env::Evidence]) -> String {
    evidence.iter().find(|e| e.source == API_EVIDENCE).map(|e| e.text.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_drain_cordons_evicts_all_but_daemonset_and_mirror_pods_and_its_revert_uncordons() {
    let (scenario, env, handle, journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        let mut guard = env.inject(&scenario.fault).await.expect("drained");
        guard.revert().await.expect("reverted");
        guard.revert().await.expect("a second revert does nothing");
        env.teardown().await.expect("every change undone");
        env.evidence().await
    };
    let api = async {
        // Dropped when the API has answered the drill: the evidence's reads then fail at once.
        let mut handle = handle;
        let asked = answer_access(&mut handle, &[]).await;
        assert_eq!(
            asked,
            [
                "create pods/eviction shop",
                "get nodes",
                "get pods/log shop",
                "list events shop",
                "list nodes",
                "list pods",
                "patch nodes"
            ],
            "each in the core group"
        );
        let mut mirror = pod("kube-system", "kube-proxy-worker-1", "Node");
        mirror.metadata.annotations = Some([("kubernetes.io/config.mirror".to_string(), "x".to_string())].into());
        let on_node = vec![pod("shop", "web-1", "ReplicaSet"), pod("kube-system", "kindnet-x", "DaemonSet"), mirror];
        answer_node_and_pods(&mut handle, on_node).await;
        answer_dry_runs(&mut handle, &["web-1"]).await;
        answer_cordon(&mut handle, journal.path()).await;
        let send = expect_eviction(&mut handle, "web-1").await;
        answer(send, 201, &accepted());
        answer_uncordon(&mut handle).await;
    };
    let (evidence, ()) = tokio::join!(drilled, api);
    assert_eq!(std::fs::read_dir(journal.path()).unwrap().count(), 0, "an undone journal is removed");
    let said = evidence_of(&evidence);
    for line in [
        "kube-system/kindnet-x stays on node worker-1: a DaemonSet's pod",
        "kube-system/kube-proxy-worker-1 stays on node worker-1: a mirror pod",
        "node worker-1 cordoned (firedrill.io/run=run-1)",
        "evict shop/web-1: accepted (grace period 10s)",
        "node worker-1 uncordoned",
    ] {
        assert!(said.contains(line), "{line}:\n{said}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_eviction_a_pdb_blocks_is_retried_every_5s_and_each_block_is_evidence() {
    let (scenario, env, handle, journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        let guard = env.inject(&scenario.fault).await.map(|_| ());
        (guard, env.evidence().await)
    };
    let api = async {
        // Dropped when the API has answered the drill: the evidence's reads then fail at once.
        let mut handle = handle;
        answer_access(&mut handle, &[]).await;
        answer_node_and_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet")]).await;
        answer_dry_runs(&mut handle, &["web-1"]).await;
        answer_cordon(&mut handle, journal.path()).await;
        let first = tokio::time::Instant::now();
        answer(expect_eviction(&mut handle, "web-1").await, 429, &blocked("web-pdb"));
        answer(expect_eviction(&mut handle, "web-1").await, 429, &blocked("web-pdb"));
        let second = tokio::time::Instant::now();
        answer(expect_eviction(&mut handle, "web-1").await, 201, &accepted());
        let third = tokio::time::Instant::now();
        (second - first, third - second)
    };
    let ((injected, evidence), (gap, next_gap)) = tokio::join!(drilled, api);
    injected.expect("in effect once the eviction was accepted");
    assert_eq!(
        (gap, next_gap),
        (drain::PDB_RETRY, drain::PDB_RETRY),
        "retried every 5 s, by firedrill, not the client"
    );
    let said = evidence_of(&evidence);
    let block = "evict shop/web-1: blocked by PDB web-pdb: The disruption budget web-pdb needs 2 healthy pods and has 2 currently";
    assert_eq!(said.matches(block).count(), 2, "{said}");
    assert!(said.contains("evict shop/web-1: accepted"), "{said}");
}

#[tokio::test(start_paused = true)]
async fn a_block_past_the_deadline_fails_the_drain_and_uncordons() {
    let (scenario, env, mut handle, journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        env.inject(&scenario.fault).await.map(|_| ())
    };
    let api = async {
        answer_access(&mut handle, &[]).await;
        answer_node_and_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet")]).await;
        answer_dry_runs(&mut handle, &["web-1"]).await;
        answer_cordon(&mut handle, journal.path()).await;
        // Tried at 0, 5, … 30 s: the deadline is 30 s.
        for _ in 0..7 {
            answer(expect_eviction(&mut handle, "web-1").await, 429, &blocked("web-pdb"));
        }
        answer_uncordon(&mut handle).await;
    };
    let (injected, ()) = tokio::join!(drilled, api);
    let e = error_chain(&injected.expect_err("the deadline passed"));
    assert!(
        e.contains("evictions still blocked when the drain's deadline (30s) came: shop/web-1: blocked by PDB web-pdb"),
        "{e}"
    );
}

#[tokio::test]
async fn pods_gone_or_replaced_are_fine_and_a_500_fails_the_drain_which_uncordons() {
    let (scenario, env, handle, journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        let injected = env.inject(&scenario.fault).await.map(|_| ());
        (injected, env.evidence().await)
    };
    let api = async {
        // Dropped when the API has answered the drill: the evidence's reads then fail at once.
        let mut handle = handle;
        answer_access(&mut handle, &[]).await;
        let on_node = ["gone", "replaced", "shared"].map(|n| pod("shop", n, "ReplicaSet")).to_vec();
        answer_node_and_pods(&mut handle, on_node).await;
        answer_dry_runs(&mut handle, &["gone", "replaced", "shared"]).await;
        answer_cordon(&mut handle, journal.path()).await;
        let gone = expect_eviction(&mut handle, "gone").await;
        let replaced = expect_eviction(&mut handle, "replaced").await;
        let shared = expect_eviction(&mut handle, "shared").await;
        answer(gone, 404, &status(Status::failure("pods \"gone\" not found", "NotFound").with_code(404)));
        let conflict = "Precondition failed: UID in precondition: uid-replaced, UID in object meta: uid-new";
        answer(replaced, 409, &status(Status::failure(conflict, "Conflict").with_code(409)));
        let several =
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
        answer(shared, 500, &status(Status::failure(several, "InternalError").with_code(500)));
        answer_uncordon(&mut handle).await;
    };
    let ((injected, evidence), ()) = tokio::join!(drilled, api);
    let e = error_chain(&injected.expect_err("a 500 fails the drain"));
    assert_eq!(
        e,
        "failed to inject the fault: failed to evict pod shop/shared: HTTP 500 InternalError: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    let said = evidence_of(&evidence);
    assert!(said.contains("evict shop/gone: already gone (HTTP 404 NotFound"), "{said}");
    assert!(said.contains("evict shop/replaced: not evicted, the uid precondition failed"), "{said}");
    assert!(said.contains("node worker-1 uncordoned"), "{said}");
}

#[tokio::test]
async fn each_eviction_is_dry_run_before_the_cordon_a_block_is_evidence_and_another_refusal_fails_untouched() {
    let (scenario, env, handle, journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        env.inject(&scenario.fault).await.map(|_| ()).expect("drained");
        env.evidence().await
    };
    let api = async {
        // Dropped when the API has answered the drill: the evidence's reads then fail at once.
        let mut handle = handle;
        answer_access(&mut handle, &[]).await;
        answer_node_and_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet"), pod("shop", "web-2", "ReplicaSet")])
            .await;
        // Each dry run is the real Eviction (same body, asserted by expect_eviction_with) with
        // `dryRun=All`, sent before anything is journalled.
        answer(expect_dry_run(&mut handle, "web-1").await, 201, &accepted());
        answer(expect_dry_run(&mut handle, "web-2").await, 429, &blocked("web-pdb"));
        let journalled = std::fs::read_to_string(journal.path().join("run-1.jsonl")).unwrap();
        assert!(!journalled.contains("cordon"), "nothing journalled yet: {journalled}");
        answer_cordon(&mut handle, journal.path()).await;
        answer(expect_eviction(&mut handle, "web-1").await, 201, &accepted());
        answer(expect_eviction(&mut handle, "web-2").await, 201, &accepted());
    };
    let (evidence, ()) = tokio::join!(drilled, api);
    let said = evidence_of(&evidence);
    assert!(said.contains("dry run: evict shop/web-1: would be accepted"), "{said}");
    assert!(
        said.contains("dry run: evict shop/web-2: would be blocked by PDB web-pdb now: The disruption budget web-pdb needs 2 healthy pods and has 2 currently; the drain retries it until its deadline"),
        "{said}"
    );

    // A 403 in the dry run (an admission webhook, a policy the review did not see) fails the
    // drain before the node is touched.
    let (scenario, env, mut handle, _journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        env.inject(&scenario.fault).await.map(|_| ())
    };
    let api = async {
        answer_access(&mut handle, &[]).await;
        answer_node_and_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet")]).await;
        let denied = "pods \"web-1\" is forbidden: evictions are frozen in namespace shop";
        answer(
            expect_dry_run(&mut handle, "web-1").await,
            403,
            &status(Status::failure(denied, "Forbidden").with_code(403)),
        );
    };
    let (injected, ()) = tokio::join!(drilled, api);
    let e = error_chain(&injected.expect_err("refused"));
    assert_eq!(
        e,
        "failed to inject the fault: failed to dry-run the eviction of pod shop/web-1: HTTP 403 Forbidden: pods \"web-1\" is forbidden: evictions are frozen in namespace shop"
    );
    assert!(futures_util::poll!(std::pin::pin!(handle.next_request())).is_pending(), "the node was not touched");
}

#[tokio::test]
async fn every_missing_permission_is_named_at_once_before_anything_changes() {
    let (_, env, mut handle, _journal) = env_on_mock();
    let api = answer_access(&mut handle, &["patch nodes", "create pods/eviction shop"]);
    let (prepared, _) = tokio::join!(env.prepare(), api);
    let e = error_chain(&prepared.expect_err("refused"));
    assert!(
        e.contains("the context's user may not create pods/eviction in namespace shop; patch nodes (cluster-wide): grant them (`firedrill kube rbac SCENARIO` prints the Role)"),
        "{e}"
    );
    assert!(futures_util::poll!(std::pin::pin!(handle.next_request())).is_pending(), "nothing more was asked");
}

#[tokio::test]
async fn a_node_carrying_pods_of_other_namespaces_is_not_drained() {
    let (scenario, env, mut handle, _journal) = env_on_mock();
    let drilled = async {
        env.prepare().await.expect("prepared");
        env.inject(&scenario.fault).await.map(|_| ())
    };
    let api = async {
        answer_access(&mut handle, &[]).await;
        let on_node = vec![pod("shop", "web-1", "ReplicaSet"), pod("payments", "api-1", "ReplicaSet")];
        answer_node_and_pods(&mut handle, on_node).await;
    };
    let (injected, ()) = tokio::join!(drilled, api);
    let e = error_chain(&injected.expect_err("refused"));
    assert!(e.contains("node worker-1 carries pods outside the scenario's namespaces (shop): payments/api-1"), "{e}");
    assert!(futures_util::poll!(std::pin::pin!(handle.next_request())).is_pending(), "the node was not touched");
}

#[tokio::test]
async fn a_drain_evicting_more_pods_than_max_blast_radius_is_refused_before_the_cordon() {
    let (scenario, env, mut handle, _journal) = env_on_mock_for(&format!("{SCENARIO}max_blast_radius: 1\n"));
    let drilled = async {
        env.prepare().await.expect("prepared");
        env.inject(&scenario.fault).await.map(|_| ())
    };
    let api = async {
        answer_access(&mut handle, &[]).await;
        let on_node = vec![pod("shop", "web-1", "ReplicaSet"), pod("shop", "web-2", "ReplicaSet")];
        answer_node_and_pods(&mut handle, on_node).await;
    };
    let (injected, ()) = tokio::join!(drilled, api);
    let e = error_chain(&injected.expect_err("refused"));
    assert!(
        e.contains(
            "node_drain of worker-1 would affect 2 container(s) (shop/web-1, shop/web-2); max_blast_radius is 1"
        ),
        "{e}"
    );
    assert!(futures_util::poll!(std::pin::pin!(handle.next_request())).is_pending(), "the node was not touched");
}

#[tokio::test]
async fn a_deployment_probe_reads_the_deployments_ready_replicas() {
    let probe = "probes:\n  - name: web\n    check: {kind: deployment, deployment: web, min_ready: 2}\n";
    let (scenario, env, mut handle, _journal) = env_on_mock_for(&format!("{SCENARIO}{probe}"));
    let sampled = async {
        env.prepare().await.expect("prepared");
        [env.sample(0, &scenario.probes[0]).await, env.sample(0, &scenario.probes[0]).await]
    };
    let api = async {
        let asked = answer_reviews(&mut handle, 8, &[]).await;
        assert!(asked.contains(&"get apps/deployments shop".to_string()), "{asked:?}");
        for ready in [1, 2] {
            let (_, _, send) = expect(&mut handle, Method::GET, "/apis/apps/v1/namespaces/shop/deployments/web").await;
            let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
                "status": {"replicas": 3, "readyReplicas": ready},
            }))
            .unwrap();
            answer(send, 200, &deployment);
        }
    };
    let ([short, enough], ()) = tokio::join!(sampled, api);
    assert_eq!(short.detail.as_deref(), Some("deployment shop/web: 1 of 3 replica(s) ready, needs 2"));
    assert!(!short.ok && enough.ok, "{short:?} {enough:?}");
}

#[tokio::test]
async fn the_kubeconfig_must_have_the_scenarios_context() {
    firedrill::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(
        "apiVersion: v1
kind: Config
current-context: prod
clusters:
  - {name: kind, cluster: {server: \"http://127.0.0.1:1\"}}
users:
  - {name: me, user: {token: t}}
contexts:
  - {name: prod, context: {cluster: kind, user: me}}
  - {name: kind-drill, context: {cluster: kind, user: me}}
",
    )
    .unwrap();
    let e = connect::connect_with(kubeconfig.clone(), "staging").await.map(|_| ()).unwrap_err();
    assert_eq!(e.to_string(), "context `staging` is not in the kubeconfig (it has prod, kind-drill)");
    connect::connect_with(kubeconfig, "kind-drill").await.expect("a client for the named context");
}

#[test]
fn run_refuses_a_context_the_scenario_does_not_name_and_rbac_prints_the_roles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kube-drain.yaml");
    std::fs::write(&path, SCENARIO).unwrap();
    let out = run(&["run", "--context", "prod", "--no-write", path.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("context prod is not this scenario's (kind-drill)"), "{stderr}");

    let out = run(&["kube", "rbac", path.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("kind: ClusterRole\nmetadata:\n  name: firedrill-kube-drain\n"), "{stdout}");
    assert!(stdout.contains("kind: Role\nmetadata:\n  name: firedrill-kube-drain\n  namespace: shop\n"), "{stdout}");
}

/// What a loopback API server was sent: method, path and query, JSON body (`null` if none).
type Sent = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

/// An HTTP/1.1 API server on loopback, for clients made from a kubeconfig (the real client,
/// with its own layers, or another firedrill process): `answer` gives each request's status
/// and JSON body. Returns its address and what it was sent.
async fn loopback_api(
    answer: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static,
) -> (std::net::SocketAddr, Sent) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sent = Sent::default();
    let log = sent.clone();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // One request: its head, then as many body bytes as it says.
                    let head = received.windows(4).position(|w| w == b"\r\n\r\n");
                    let head_text =
                        head.map(|h| String::from_utf8_lossy(&received[..h]).into_owned()).unwrap_or_default();
                    let length = head_text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    let Some(head) = head.filter(|h| received.len() >= h + 4 + length) else {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => received.extend_from_slice(&buf[..n]),
                        }
                        continue;
                    };
                    let body: Value =
                        serde_json::from_slice(&received[head + 4..head + 4 + length]).unwrap_or(Value::Null);
                    received.drain(..head + 4 + length);
                    let mut words = head_text.split_whitespace();
                    let (method, uri) =
                        (words.next().unwrap_or_default().to_string(), words.next().unwrap_or_default().to_string());
                    let (code, reply) = answer(&method, &uri);
                    log.lock().unwrap().push((method, uri, body));
                    let reply = serde_json::to_vec(&reply).unwrap();
                    let head = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    );
                    if socket.write_all(head.as_bytes()).await.is_err() || socket.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, sent)
}

/// A kubeconfig whose context `kind-drill` reaches `address` over plain HTTP.
fn kubeconfig_for(address: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - {{name: kind, cluster: {{server: \"http://{address}\"}}}}
users:
  - {{name: me, user: {{token: t}}}}
contexts:
  - {{name: kind-drill, context: {{cluster: kind, user: me}}}}
"
    )
}

#[tokio::test]
async fn the_client_made_from_the_kubeconfig_leaves_a_429_to_firedrill() {
    firedrill::tls::install_crypto_provider();
    let (address, sent) = loopback_api(|_, _| (429, blocked("web-pdb"))).await;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig_for(address)).unwrap();
    let client = connect::connect_with(kubeconfig, "kind-drill").await.expect("a client");
    let started = std::time::Instant::now();
    let web = pod("shop", "web-1", "ReplicaSet");
    let evicted = drain::evict(&client, &web, Duration::from_secs(1), Duration::ZERO, &|_| {}).await;
    let e = error_chain(&evicted.expect_err("blocked, and no time to retry"));
    assert!(e.contains("shop/web-1: blocked by PDB web-pdb"), "{e}");
    // kube-rs's default retry layer would have sent it again, with backoff, up to 15 times.
    assert_eq!(sent.lock().unwrap().len(), 1, "sent once");
    assert!(started.elapsed() < Duration::from_secs(2), "no backoff: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_uncordons_a_node_a_killed_drill_left_cordoned_and_only_that() {
    use firedrill::journal::{journal_dir, Begin, Journal, Undo, FORMAT};
    let patched = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = patched.clone();
    let (address, sent) = loopback_api(move |method, _| {
        let cordoned = !seen.load(std::sync::atomic::Ordering::SeqCst);
        if method == "PATCH" {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let annotations = match cordoned {
            true => json!({"firedrill.io/run": "rk1", "firedrill.io/unschedulable-before": "false"}),
            false => json!({}),
        };
        (200, serde_json::to_value(node(annotations, cordoned)).unwrap())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for(address)).unwrap();
    let state = dir.path().join("state");
    let begin = Begin {
        format: FORMAT,
        run: "rk1".into(),
        scenario: "kube-drain".into(),
        path: "kube-drain.yaml".into(),
        environment: firedrill::word::EnvironmentKind::Kube,
        started: jiff::Timestamp::now(),
        pid: std::process::id(),
    };
    let journal = Journal::create(&journal_dir(&state), begin).unwrap();
    let undo = Undo::Uncordon { context: "kind-drill".into(), node: "worker-1".into() };
    journal.apply("cordon node worker-1", undo, None).unwrap();
    journal.close().unwrap().expect("kept: the drill died with the node cordoned");

    let recover = |state: std::path::PathBuf, kubeconfig: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            crate::common::firedrill()
                .args(["recover", "--run", "rk1", "--state-dir", state.to_str().unwrap()])
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        })
    };
    let out = recover(state.clone(), kubeconfig.clone()).await.unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("rk1  cordon node worker-1: node worker-1 uncordoned"), "{stdout}");
    let patches: Vec<Value> =
        sent.lock().unwrap().iter().filter(|(m, _, _)| m == "PATCH").map(|(_, _, b)| b.clone()).collect();
    assert_eq!(
        patches,
        [json!({
            "metadata": {"annotations": {"firedrill.io/run": null, "firedrill.io/unschedulable-before": null}},
            "spec": {"unschedulable": null},
        })]
    );
    assert!(journal_dir(&state).join("recovered").join("rk1.jsonl").exists(), "the journal moved to recovered/");
}

/// Answers the list of the running pods `app=web` in `shop`.
async fn answer_web_pods(handle: &mut Mock, listed: Vec<Pod>) {
    let (_, _, send) = expect(handle, Method::GET, "/api/v1/namespaces/shop/pods?&labelSelector=app%3Dweb").await;
    answer(send, 200, &pods(listed));
}

/// The deletion of `shop/<name>`: a DELETE whose body is the DeleteOptions with `grace` and
/// the pod's uid as a precondition.
async fn expect_deletion(handle: &mut Mock, grace: u32) -> (String, SendResponse<Response<Body>>) {
    let (request, body, send) = handle_next_delete(handle).await;
    let name = request.uri().path().rsplit('/').next().unwrap().to_string();
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(body, json!({"gracePeriodSeconds": grace, "preconditions": {"uid": format!("uid-{name}")}}));
    (name, send)
}

/// The next request, which must be a DELETE of a pod in `shop`.
async fn handle_next_delete(handle: &mut Mock) -> (Request<()>, Value, SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("the client sends a request");
    let (parts, body) = request.into_parts();
    assert_eq!(parts.method, Method::DELETE);
    assert!(parts.uri.path().starts_with("/api/v1/namespaces/shop/pods/"), "{}", parts.uri);
    assert_eq!(parts.uri.query(), Some(""), "no query: the options are the body");
    let bytes = body.collect_bytes().await.unwrap();
    (Request::from_parts(parts, ()), serde_json::from_slice(&bytes).expect("a JSON body"), send)
}

#[tokio::test]
async fn a_pod_kill_deletes_the_first_running_pods_by_name_with_grace_0_and_uid_preconditions() {
    let text = "name: kube-kill
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: pod_kill, selector: app=web, count: 2}
";
    let (scenario, env, mut handle, journal) = env_on_mock_for(text);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let mut guard = env.inject(&scenario.fault).await.expect("killed");
        guard.revert().await.expect("nothing to revert");
        env.teardown().await.expect("nothing journalled");
        env.evidence().await
    };
    let api = async {
        let asked = answer_reviews(&mut handle, 5, &[]).await;
        // The fault's, and the evidence's: the nodes' cordon state, the Events, the pods' logs.
        assert_eq!(
            asked,
            ["delete pods shop", "get pods/log shop", "list events shop", "list nodes", "list pods shop"]
        );
        let mut terminating = pod("shop", "web-0", "ReplicaSet");
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        let listed = vec![
            pod("shop", "web-3", "ReplicaSet"),
            terminating,
            pod("shop", "web-2", "ReplicaSet"),
            pod("shop", "web-1", "ReplicaSet"),
        ];
        answer_web_pods(&mut handle, listed).await;
        let mut deleted = Vec::new();
        for _ in 0..2 {
            let (name, send) = expect_deletion(&mut handle, 0).await;
            match name.as_str() {
                "web-1" => answer(send, 200, &pod("shop", "web-1", "ReplicaSet")),
                _ => {
                    let conflict =
                        format!("Precondition failed: UID in precondition: uid-{name}, UID in object meta: uid-new");
                    answer(send, 409, &status(Status::failure(&conflict, "Conflict").with_code(409)));
                }
            }
            deleted.push(name);
        }
        deleted.sort();
        assert_eq!(deleted, ["web-1", "web-2"], "the first two running pods by name");
    };
    let (evidence, ()) = tokio::join!(drilled, api);
    let said = evidence_of(&evidence);
    assert!(said.contains("delete pod shop/web-1: accepted (grace period 0s)"), "{said}");
    assert!(said.contains("delete pod shop/web-2: not deleted, the uid precondition failed: a replacement now has the name (HTTP 409 Conflict"), "{said}");
    assert!(!journal.path().join("run-1.jsonl").exists(), "nothing to undo, nothing left journalled");
}

#[tokio::test]
async fn a_pod_delete_past_max_blast_radius_or_of_no_pod_is_refused_and_a_500_fails_it() {
    let text = "name: kube-delete
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: pod_delete, selector: app=web, grace_period: 20s}
max_blast_radius: 2
";
    let (scenario, env, mut handle, _journal) = env_on_mock_for(text);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let mut tries = Vec::new();
        for _ in 0..3 {
            tries.push(env.inject(&scenario.fault).await.map(|_| ()).map_err(|e| error_chain(&e)));
        }
        (tries, env.evidence().await)
    };
    let api = async {
        answer_reviews(&mut handle, 5, &[]).await;
        answer_web_pods(&mut handle, ["web-1", "web-2", "web-3"].map(|n| pod("shop", n, "ReplicaSet")).to_vec()).await;
        answer_web_pods(&mut handle, vec![]).await;
        answer_web_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet")]).await;
        let (_, send) = expect_deletion(&mut handle, 20).await;
        answer(send, 500, &status(Status::failure("etcd is unhappy", "InternalError").with_code(500)));
    };
    let ((tries, evidence), ()) = tokio::join!(drilled, api);
    assert_eq!(
        tries,
        [
            Err("failed to inject the fault: pod_delete of app=web would affect 3 container(s) (shop/web-1, shop/web-2, shop/web-3); max_blast_radius is 2".to_string()),
            Err("failed to inject the fault: no running pod matches `app=web` in namespace shop".to_string()),
            Err("failed to inject the fault: failed to delete pod shop/web-1: HTTP 500 InternalError: etcd is unhappy".to_string()),
        ]
    );
    assert!(evidence_of(&evidence).contains("delete pod shop/web-1: HTTP 500 InternalError: etcd is unhappy"));
}

/// A Deployment's scale subresource with `replicas`.
fn scale_of(replicas: i32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9"},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas},
    })
}

const SCALE: &str = "name: kube-scale
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: scale, workload: deployment/web, replicas: 0}
";

const SCALE_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/web/scale";

#[tokio::test]
async fn a_scale_is_journalled_with_the_prior_count_patched_and_set_back_on_revert() {
    let (scenario, env, mut handle, journal) = env_on_mock_for(SCALE);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let mut guard = env.inject(&scenario.fault).await.expect("scaled");
        guard.revert().await.expect("reverted");
        guard.revert().await.expect("a second revert does nothing");
        env.teardown().await.expect("every change undone");
        env.evidence().await
    };
    let api = async {
        let mut asked = answer_reviews(&mut handle, 6, &[]).await;
        asked.retain(|p| p.contains("apps/"));
        assert_eq!(asked, ["get apps/deployments/scale shop", "patch apps/deployments/scale shop"]);
        let (_, _, send) = expect(&mut handle, Method::GET, SCALE_PATH).await;
        answer(send, 200, &scale_of(3));
        let (request, body, send) = expect(&mut handle, Method::PATCH, &format!("{SCALE_PATH}?")).await;
        let journalled = std::fs::read_to_string(journal.path().join("run-1.jsonl")).unwrap();
        assert!(
            journalled.contains(r#""change":"scale deployment/web in namespace shop from 3 to 0","undo":{"action":"restore_replicas","context":"kind-drill","namespace":"shop","workload":"deployment/web","before":3,"set":0}"#),
            "journalled before the change: {journalled}"
        );
        assert_eq!(request.headers()["content-type"], "application/merge-patch+json");
        assert_eq!(body, json!({"spec": {"replicas": 0}}));
        answer(send, 200, &scale_of(0));
        let (_, _, send) = expect(&mut handle, Method::GET, SCALE_PATH).await;
        answer(send, 200, &scale_of(0));
        let (_, body, send) = expect(&mut handle, Method::PATCH, &format!("{SCALE_PATH}?")).await;
        assert_eq!(body, json!({"spec": {"replicas": 3}}));
        answer(send, 200, &scale_of(3));
    };
    let (evidence, ()) = tokio::join!(drilled, api);
    let said = evidence_of(&evidence);
    assert!(said.contains("deployment/web in namespace shop scaled from 3 to 0 replicas"), "{said}");
    assert!(said.contains("deployment/web in namespace shop scaled back to 3 replicas"), "{said}");
}

#[tokio::test]
async fn a_count_changed_since_the_scale_is_left_alone_and_a_refused_patch_closes_its_entry() {
    let (scenario, env, mut handle, journal) = env_on_mock_for(SCALE);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let mut guard = env.inject(&scenario.fault).await.expect("scaled");
        guard.revert().await.expect("reverted: nothing to do");
        let refused = env.inject(&scenario.fault).await.map(|_| ()).map_err(|e| error_chain(&e));
        env.teardown().await.expect("every entry closed");
        (refused, env.evidence().await)
    };
    let api = async {
        answer_reviews(&mut handle, 6, &[]).await;
        let (_, _, send) = expect(&mut handle, Method::GET, SCALE_PATH).await;
        answer(send, 200, &scale_of(3));
        let (_, _, send) = expect(&mut handle, Method::PATCH, &format!("{SCALE_PATH}?")).await;
        answer(send, 200, &scale_of(0));
        // An autoscaler scaled it to 2 since: no patch follows.
        let (_, _, send) = expect(&mut handle, Method::GET, SCALE_PATH).await;
        answer(send, 200, &scale_of(2));
        let (_, _, send) = expect(&mut handle, Method::GET, SCALE_PATH).await;
        answer(send, 200, &scale_of(2));
        let (_, _, send) = expect(&mut handle, Method::PATCH, &format!("{SCALE_PATH}?")).await;
        let forbidden =
            "deployments.apps \"web\" is forbidden: User \"drill\" cannot patch resource \"deployments/scale\"";
        answer(send, 403, &status(Status::failure(forbidden, "Forbidden").with_code(403)));
    };
    let ((refused, evidence), ()) = tokio::join!(drilled, api);
    assert_eq!(
        refused,
        Err(format!(
            "failed to inject the fault: failed to scale deployment/web in namespace shop to 0: HTTP 403 Forbidden: {}",
            "deployments.apps \"web\" is forbidden: User \"drill\" cannot patch resource \"deployments/scale\""
        ))
    );
    let said = evidence_of(&evidence);
    assert!(
        said.contains("nothing to do: deployment/web has 2 replicas now, not the 0 firedrill set: left as it is"),
        "{said}"
    );
    assert!(!journal.path().join("run-1.jsonl").exists(), "both entries closed");
}

#[tokio::test]
async fn a_blackhole_starts_a_labelled_probe_pod_and_removes_it_when_the_check_cannot_run() {
    let text = "name: kube-blackhole
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: network_blackhole, target: app=web, peer: app=s3, direction: egress, confirm: \"http://s3.shop:9000/\"}
";
    let (scenario, env, mut handle, journal) = env_on_mock_for(text);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let injected = env.inject(&scenario.fault).await.map(|_| ()).map_err(|e| error_chain(&e));
        env.teardown().await.expect("the probe pod's entry closed");
        injected
    };
    let api = async {
        let mut asked = answer_reviews(&mut handle, 12, &[]).await;
        asked.sort();
        assert_eq!(
            asked,
            [
                "create networking.k8s.io/networkpolicies shop",
                "create pods shop",
                "create pods/exec shop",
                "delete networking.k8s.io/networkpolicies shop",
                "delete pods shop",
                "get networking.k8s.io/networkpolicies shop",
                "get pods shop",
                "get pods/exec shop",
                "get pods/log shop",
                "list events shop",
                "list nodes",
                "list pods shop",
            ]
        );
        answer_web_pods(&mut handle, vec![pod("shop", "web-1", "ReplicaSet")]).await;
        let (_, body, send) = expect(&mut handle, Method::POST, "/api/v1/namespaces/shop/pods?").await;
        let journalled = std::fs::read_to_string(journal.path().join("run-1.jsonl")).unwrap();
        assert!(journalled.contains(r#""undo":{"action":"delete_kube_object","context":"kind-drill","namespace":"shop","kind":"Pod","name":"firedrill-run-1-confirm"}"#), "{journalled}");
        assert_eq!(body["metadata"]["labels"], json!({"firedrill.run": "run-1", "firedrill.role": "confirm"}));
        assert_eq!(body["spec"]["containers"][0]["command"], json!(["sleep", "600"]));
        let mut probe: Pod = serde_json::from_value(body).unwrap();
        answer(send, 201, &probe);
        probe.status = Some(
            serde_json::from_value(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}))
                .unwrap(),
        );
        let (_, _, send) =
            expect(&mut handle, Method::GET, "/api/v1/namespaces/shop/pods/firedrill-run-1-confirm").await;
        answer(send, 200, &probe);
        let (request, send) = handle.next_request().await.expect("the exec");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "/api/v1/namespaces/shop/pods/firedrill-run-1-confirm/exec?&stdout=true&stderr=true&command=wget&command=-q&command=-T&command=2&command=-O-&command=http%3A%2F%2Fs3.shop%3A9000%2F"
        );
        let denied =
            "pods \"firedrill-run-1-confirm\" is forbidden: User \"drill\" cannot create resource \"pods/exec\"";
        answer(send, 403, &status(Status::failure(denied, "Forbidden").with_code(403)));
        let (_, _, send) =
            expect(&mut handle, Method::GET, "/api/v1/namespaces/shop/pods/firedrill-run-1-confirm").await;
        answer(send, 200, &probe);
        let (_, body, send) =
            expect(&mut handle, Method::DELETE, "/api/v1/namespaces/shop/pods/firedrill-run-1-confirm?").await;
        // At once, and what it owns with it (the body every object firedrill created is deleted with).
        assert_eq!(body, json!({"gracePeriodSeconds": 0, "propagationPolicy": "Background"}));
        answer(send, 200, &probe);
    };
    let (injected, ()) = tokio::join!(drilled, api);
    let e = injected.expect_err("the check could not run");
    assert!(e.starts_with("failed to inject the fault: failed to exec `wget -q -T 2 -O- http://s3.shop:9000/` in pod shop/firedrill-run-1-confirm"), "{e}");
}

#[test]
fn a_partitions_policy_allows_everything_but_the_peer_and_a_blackholes_nothing() {
    use firedrill::env::kube::netpol::deny_policy;
    use firedrill::scenario::Direction;
    let selector = serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap();
    let partition = deny_policy(
        "firedrill-r-blackhole",
        "shop",
        "r",
        selector,
        Direction::Egress,
        Some(&[("app", "s3"), ("tier", "store")]),
    );
    assert_eq!(
        serde_json::to_value(&partition).unwrap(),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "firedrill-r-blackhole", "namespace": "shop", "labels": {"firedrill.run": "r"}},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [
                    {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["shop"]}]}},
                    {"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["s3"]}]}},
                    {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["store"]}]}},
                ]}],
            },
        })
    );
    let selector = serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap();
    let blackhole = deny_policy("firedrill-r-blackhole", "shop", "r", selector, Direction::Both, None);
    assert_eq!(
        serde_json::to_value(&blackhole).unwrap()["spec"],
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}),
        "no rules: nothing allowed either way"
    );
}

#[tokio::test]
async fn kube_steps_send_the_patches_and_deletes_kubectl_sends() {
    let text = "name: kube-steps
environment: {kind: kube, context: kind-drill, namespace: shop}
fault: {kind: pod_kill, selector: app=web}
procedure:
  kind: steps
  steps:
    - {name: restart, kube: {action: rollout_restart, workload: deployment/web}, budget: 10s}
    - {name: uncordon, kube: {action: uncordon, node: worker-1}, budget: 10s}
    - {name: scale, kube: {action: scale, workload: statefulset/db, replicas: 2}, budget: 10s}
    - {name: delete, kube: {action: delete_pod, pod: web-1}, budget: 10s}
";
    let (scenario, env, mut handle, _journal) = env_on_mock_for(text);
    let stepped = async {
        env.prepare().await.expect("prepared");
        let mut outputs = Vec::new();
        for (i, step) in scenario.steps.iter().enumerate() {
            outputs.push(env.run_step(i, step).await.expect("the step is done").unwrap_or_default());
        }
        outputs
    };
    let api = async {
        let mut asked = answer_reviews(&mut handle, 10, &[]).await;
        asked.sort();
        assert_eq!(
            asked,
            [
                "delete pods shop",
                "get apps/statefulsets/scale shop",
                "get pods shop",
                "get pods/log shop",
                "list events shop",
                "list nodes",
                "list pods shop",
                "patch apps/deployments shop",
                "patch apps/statefulsets/scale shop",
                "patch nodes",
            ],
            "the fault's and the steps'"
        );
        let (request, body, send) =
            expect(&mut handle, Method::PATCH, "/apis/apps/v1/namespaces/shop/deployments/web?").await;
        assert_eq!(request.headers()["content-type"], "application/strategic-merge-patch+json");
        let at = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(at.parse::<jiff::Timestamp>().is_ok() && at.ends_with('Z'), "RFC 3339 in UTC: {at}");
        answer(
            send,
            200,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
        );
        let (request, body, send) = expect(&mut handle, Method::PATCH, "/api/v1/nodes/worker-1?").await;
        assert_eq!(request.headers()["content-type"], "application/strategic-merge-patch+json");
        assert_eq!(body, json!({"spec": {"unschedulable": null}}));
        answer(send, 200, &node(json!({}), false));
        let (_, _, send) =
            expect(&mut handle, Method::GET, "/apis/apps/v1/namespaces/shop/statefulsets/db/scale").await;
        answer(send, 200, &scale_of(3));
        let (_, body, send) =
            expect(&mut handle, Method::PATCH, "/apis/apps/v1/namespaces/shop/statefulsets/db/scale?").await;
        assert_eq!(body, json!({"spec": {"replicas": 2}}));
        answer(send, 200, &scale_of(2));
        let (_, _, send) = expect(&mut handle, Method::GET, "/api/v1/namespaces/shop/pods/web-1").await;
        answer(send, 200, &pod("shop", "web-1", "ReplicaSet"));
        let (_, body, send) = expect(&mut handle, Method::DELETE, "/api/v1/namespaces/shop/pods/web-1?").await;
        assert_eq!(body, json!({"preconditions": {"uid": "uid-web-1"}}), "the pod's own grace period");
        answer(send, 200, &pod("shop", "web-1", "ReplicaSet"));
    };
    let (outputs, ()) = tokio::join!(stepped, api);
    assert_eq!(
        outputs,
        [
            "deployment/web in namespace shop restarted (its pod template annotated kubectl.kubernetes.io/restartedAt)",
            "node worker-1 uncordoned",
            "statefulset/db in namespace shop scaled from 3 to 2 replicas",
            "delete pod shop/web-1: accepted (its own grace period)",
        ]
    );
}

/// A CloudNativePG Cluster as the API server answers it, `pg-1` its primary.
fn cnpg_cluster() -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": "db", "resourceVersion": "41"},
        "spec": {"instances": 2},
        "status": {"currentPrimary": "pg-1", "targetPrimary": "pg-1", "phase": "Cluster in healthy state"},
    })
}

#[tokio::test]
async fn a_crash_deletes_the_primarys_pod_at_once_with_its_uid_as_a_precondition() {
    let text = "name: kube-db
environment: {kind: kube, context: kind-drill, namespace: db}
fault: {kind: db_failover, cluster: pg, mode: crash}
";
    let (scenario, env, mut handle, _journal) = env_on_mock_for(text);
    let drilled = async {
        env.prepare().await.expect("prepared");
        let injected = env.inject(&scenario.fault).await.map(|_| ());
        (injected, env.answers())
    };
    let api = async {
        let asked = answer_reviews(&mut handle, 7, &[]).await;
        assert_eq!(
            asked,
            [
                "delete pods db",
                "get pods db",
                "get pods/log db",
                "get postgresql.cnpg.io/clusters db",
                "list events db",
                "list nodes",
                "list pods db"
            ]
        );
        // The Cluster is read by the fault and by the reads that follow its primary, in either
        // order; then the primary's pod, then its deletion.
        loop {
            let (request, send) = handle.next_request().await.expect("a request");
            let (parts, body) = request.into_parts();
            let uri = parts.uri.to_string();
            match (parts.method.as_str(), uri.as_str()) {
                ("GET", "/apis/postgresql.cnpg.io/v1/namespaces/db/clusters/pg") => answer(send, 200, &cnpg_cluster()),
                ("GET", "/api/v1/namespaces/db/pods/pg-1") => {
                    let mut primary = pod("db", "pg-1", "Cluster");
                    primary.metadata.uid = Some("uid-pg-1".into());
                    answer(send, 200, &primary);
                }
                ("DELETE", "/api/v1/namespaces/db/pods/pg-1?") => {
                    let body: Value = serde_json::from_slice(&body.collect_bytes().await.unwrap()).unwrap();
                    assert_eq!(body, json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "uid-pg-1"}}));
                    answer(send, 200, &pod("db", "pg-1", "Cluster"));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        handle
    };
    let ((injected, answers), _handle) = tokio::join!(drilled, api);
    injected.expect("the primary deleted");
    let said: Vec<&str> = answers.iter().map(|a| a.text.as_str()).collect();
    assert!(
        said.contains(&"cluster db/pg: delete primary pod db/pg-1 (uid uid-pg-1, grace period 0): accepted"),
        "{said:?}"
    );
}

/// An EndpointSlice of Service `web` in `shop` with `ready` ready endpoints, at `version`.
fn slice(version: &str, ready: usize) -> Value {
    let endpoints: Vec<Value> = (0..ready)
        .map(|i| json!({"addresses": [format!("10.0.0.{i}")], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": format!("web-{i}")}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "shop", "resourceVersion": version, "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
    })
}

/// Answers a list of the slices of `web` with one slice of `ready` endpoints at `version`.
async fn answer_slices(handle: &mut Mock, version: &str, ready: usize) {
    let uri =
        "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?&labelSelector=kubernetes.io%2Fservice-name%3Dweb";
    let (_, _, send) = expect(handle, Method::GET, uri).await;
    let list = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {"resourceVersion": version}, "items": [slice(version, ready)]});
    answer(send, 200, &list);
}

#[tokio::test(start_paused = true)]
async fn an_endpoints_probe_lists_then_watches_from_the_lists_version_and_lists_again_when_it_expires() {
    let probe = "probes:\n  - name: web\n    check: {kind: endpoints, service: web, min_ready: 2}\n";
    let (scenario, env, mut handle, _journal) = env_on_mock_for(&format!("{SCENARIO}{probe}"));
    let api = async {
        answer_slices(&mut handle, "10", 2).await;
        let watch = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?&watch=true&timeoutSeconds=290&labelSelector=kubernetes.io%2Fservice-name%3Dweb&allowWatchBookmarks=true&resourceVersion=10";
        let (_, _, send) = expect(&mut handle, Method::GET, watch).await;
        // One change, then the version expires: the stream is the API's newline-delimited events.
        let expired = status(Status::failure("too old resource version: 10 (12)", "Expired").with_code(410));
        let events =
            [json!({"type": "MODIFIED", "object": slice("11", 0)}), json!({"type": "ERROR", "object": expired})];
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        send.send_response(Response::builder().status(200).body(Body::from(body.into_bytes())).unwrap());
        answer_slices(&mut handle, "20", 3).await;
        let (request, pending) = handle.next_request().await.expect("the watch resumed");
        assert!(request.uri().to_string().ends_with("&resourceVersion=20"), "{}", request.uri());
        // Kept, unanswered, so that the watch stays open while the samples are taken.
        (handle, pending)
    };
    let sampled = async {
        let first = env.sample(0, &scenario.probes[0]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (first, env.sample(0, &scenario.probes[0]).await)
    };
    let ((first, last), _open) = tokio::join!(sampled, api);
    assert!(first.ok && last.ok, "{first:?} {last:?}");
    // Every change is a timeline event, the one between the two samples too.
    let said: Vec<String> = env.answers().into_iter().map(|a| a.text).collect();
    assert_eq!(
        said,
        [
            "service shop/web: 2 ready endpoint(s) (was 0): web-0, web-1",
            "service shop/web: 0 ready endpoint(s) (was 2): ",
            "service shop/web: 3 ready endpoint(s) (was 0): web-0, web-1, web-2",
        ]
    );
}
