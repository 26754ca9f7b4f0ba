//! The kube environment's pod and workload faults against the in-process fake API server
//! (kube_fake/): what they do to a cluster that behaves as one (a ReplicaSet recreating a
//! killed pod, a Deployment scaled through its subresource), and what `firedrill recover`
//! undoes after a drill that died. The wire tests (kube_wire.rs) pin the bytes.

use std::path::Path;
use std::time::Duration;

use firedrill::env::kube::{KubeEnv, API_EVIDENCE};
use firedrill::env::{Environment, FaultGuard};
use firedrill::scenario::{EnvironmentSpec, Scenario};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::kube_fake::{FakeCluster, FakeSpec};

/// A client from the kubeconfig the fake writes, without kube's retries, as the kube
/// environment builds its own.
async fn client(cluster: &FakeCluster, dir: &Path) -> kube::Client {
    firedrill::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig(dir)).expect("the kubeconfig reads");
    firedrill::env::kube::connect::connect_with(kubeconfig, "fake").await.expect("a client")
}

/// The scenario `fault` in namespace `shop` of context `fake`, and an environment for it on
/// the fake, journalling into `dir`.
async fn env_on_fake(cluster: &FakeCluster, dir: &Path, fault: &str) -> (Scenario, KubeEnv) {
    let text =
        format!("name: kube-faults\nenvironment: {{kind: kube, context: fake, namespace: shop}}\nfault: {fault}\n");
    let scenario = crate::common::scenario(&text);
    let EnvironmentSpec::Kube(kube_cluster) = &scenario.environment else { panic!("a kube scenario") };
    let env = KubeEnv::new(kube_cluster.clone(), &scenario, "rf1", dir.join("journal"))
        .with_client(client(cluster, dir).await);
    (scenario, env)
}

/// The shop's running pods (not terminating), by name.
async fn running(pods: &Api<Pod>) -> Vec<Pod> {
    let listed = pods.list(&ListParams::default().labels("app=shop")).await.expect("pods").items;
    let mut running: Vec<Pod> = listed.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    running.sort_by_key(|p| p.name_any());
    running
}

fn evidence_of(evidence: &[firedrill::env::Evidence]) -> String {
    evidence.iter().find(|e| e.source == API_EVIDENCE).map(|e| e.text.clone()).unwrap_or_default()
}

/// Waits (up to 5 s) until the shop runs `count` Ready pods, none of them in `gone`.
async fn replaced(pods: &Api<Pod>, count: usize, gone: &[String]) -> Vec<String> {
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    for _ in 0..100 {
        let now = running(pods).await;
        let names: Vec<String> = now.iter().map(|p| p.name_any()).collect();
        if now.len() == count && now.iter().all(ready) && !names.iter().any(|n| gone.contains(n)) {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the shop did not come back to {count} Ready pods: {:?}",
        running(pods).await.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_pod_kill_removes_the_pod_at_once_and_its_replicaset_brings_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        FakeCluster::start(FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a", "node-b"]));
    let (scenario, env) = env_on_fake(&cluster, dir.path(), "{kind: pod_kill, selector: app=shop, count: 1}").await;
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let before: Vec<String> = running(&pods).await.iter().map(|p| p.name_any()).collect();
    assert_eq!(before.len(), 2);

    env.prepare().await.expect("prepared: the fake allows everything");
    let mut guard = env.inject(&scenario.fault).await.expect("killed");
    let left: Vec<String> = pods
        .list(&ListParams::default().labels("app=shop"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(left, [before[1].clone()], "grace 0: the first pod by name is gone at once");
    let after = replaced(&pods, 2, &before[..1]).await;
    assert!(after.contains(&before[1]), "the other pod untouched: {after:?}");
    guard.revert().await.expect("nothing to revert");
    env.teardown().await.expect("nothing journalled");
    let said = evidence_of(&env.evidence().await);
    assert!(said.contains(&format!("delete pod shop/{}: accepted (grace period 0s)", before[0])), "{said}");
    let deletes: Vec<String> =
        cluster.requests().iter().filter(|r| r.method == "DELETE").map(|r| r.path.clone()).collect();
    assert_eq!(deletes, [format!("/api/v1/namespaces/shop/pods/{}", before[0])]);
}

#[tokio::test]
async fn a_pod_delete_leaves_the_pods_terminating_for_their_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        FakeCluster::start(FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a", "node-b"]));
    let (scenario, env) =
        env_on_fake(&cluster, dir.path(), "{kind: pod_delete, selector: app=shop, grace_period: 20s}").await;
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "shop");
    let before: Vec<String> = running(&pods).await.iter().map(|p| p.name_any()).collect();

    env.prepare().await.expect("prepared");
    env.inject(&scenario.fault).await.expect("deleted");
    let listed = pods.list(&ListParams::default().labels("app=shop")).await.unwrap().items;
    let terminating: Vec<(String, Option<i64>)> = listed
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .map(|p| (p.name_any(), p.metadata.deletion_grace_period_seconds))
        .collect();
    assert_eq!(
        terminating,
        before.iter().map(|n| (n.clone(), Some(20))).collect::<Vec<_>>(),
        "every matching pod, 20 s each"
    );
    replaced(&pods, 2, &before).await;
}

#[tokio::test]
async fn a_scale_to_zero_empties_the_deployment_and_its_revert_brings_the_replicas_back() {
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        FakeCluster::start(FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a", "node-b"]));
    let (scenario, env) =
        env_on_fake(&cluster, dir.path(), "{kind: scale, workload: deployment/shop, replicas: 0}").await;
    let kube = client(&cluster, dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "shop");
    let deployments: Api<Deployment> = Api::namespaced(kube, "shop");

    env.prepare().await.expect("prepared");
    let mut guard = env.inject(&scenario.fault).await.expect("scaled");
    let journalled = std::fs::read_to_string(dir.path().join("journal").join("rf1.jsonl")).unwrap();
    assert!(journalled.contains(r#""undo":{"action":"restore_replicas","context":"fake","namespace":"shop","workload":"deployment/shop","before":2,"set":0}"#), "{journalled}");
    let replicas = |d: Deployment| d.spec.and_then(|s| s.replicas);
    assert_eq!(replicas(deployments.get("shop").await.unwrap()), Some(0));
    for _ in 0..100 {
        if running(&pods).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running(&pods).await.is_empty(), "the ReplicaSet let its pods go");
    guard.revert().await.expect("reverted");
    assert_eq!(replicas(deployments.get("shop").await.unwrap()), Some(2));
    replaced(&pods, 2, &[]).await;
    env.teardown().await.expect("every change undone");
    assert!(!dir.path().join("journal").join("rf1.jsonl").exists());
}

#[test]
fn recover_scales_back_a_workload_a_killed_drill_left_scaled_and_leaves_one_changed_since() {
    use firedrill::journal::{journal_dir, Begin, Journal, Undo, FORMAT};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec =
        FakeSpec::new(&["node-a"]).deployment("shop", "shop", &["node-a"]).deployment("shop", "cart", &["node-a"]);
    let cluster = FakeCluster::start(spec);
    let kube = runtime.block_on(client(&cluster, dir.path()));
    let deployments: Api<Deployment> = Api::namespaced(kube, "shop");
    let set = |name: &'static str, replicas: i32| {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        runtime
            .block_on(deployments.patch_scale(name, &Default::default(), &kube::api::Patch::Merge(&patch)))
            .expect("scaled");
    };
    // The drill scaled both to 0 and died; someone scaled cart to 3 since.
    set("shop", 0);
    set("cart", 3);
    let state = dir.path().join("state");
    let begin = Begin {
        format: FORMAT,
        run: "rk2".into(),
        scenario: "kube-scale".into(),
        path: "kube-scale.yaml".into(),
        environment: firedrill::word::EnvironmentKind::Kube,
        started: jiff::Timestamp::now(),
        pid: std::process::id(),
    };
    let journal = Journal::create(&journal_dir(&state), begin).unwrap();
    for workload in ["deployment/shop", "deployment/cart"] {
        let undo = Undo::RestoreReplicas {
            context: "fake".into(),
            namespace: "shop".into(),
            workload: workload.into(),
            before: 1,
            set: 0,
        };
        journal.apply(&format!("scale {workload} in namespace shop from 1 to 0"), undo, None).unwrap();
    }
    journal.close().unwrap().expect("kept: the drill died with the scales made");

    let out = crate::common::firedrill()
        .args(["recover", "--run", "rk2", "--state-dir", state.to_str().unwrap()])
        .env("KUBECONFIG", cluster.kubeconfig(dir.path()))
        .output()
        .unwrap();
    let (stdout, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("deployment/shop in namespace shop scaled back to 1 replicas"), "{stdout}");
    assert!(stdout.contains("nothing to do: deployment/cart has 3 replicas now, not the 0 firedrill set"), "{stdout}");
    let replicas = |name| runtime.block_on(deployments.get(name)).unwrap().spec.and_then(|s| s.replicas);
    assert_eq!((replicas("shop"), replicas("cart")), (Some(1), Some(3)));
}

/// The shop (app=shop), an object store (app=s3) behind Service `s3` and a cart (app=cart)
/// behind Service `cart`, in namespace shop.
fn store_and_cart() -> FakeSpec {
    let service = |name: &str, port: u16| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": port}]},
        })
    };
    FakeSpec::new(&["node-a", "node-b"])
        .deployment("shop", "shop", &["node-a"])
        .deployment("shop", "s3", &["node-b"])
        .deployment("shop", "cart", &["node-b"])
        .object(service("s3", 9000))
        .object(service("cart", 80))
}

const PARTITION: &str =
    "{kind: network_blackhole, target: app=shop, peer: app=s3, direction: egress, confirm: \"http://s3.shop:9000/\"}";

/// The names of the NetworkPolicies and of the pods labelled with run `rf1` in shop.
async fn labelled(kube: &kube::Client) -> (Vec<String>, Vec<String>) {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let params = ListParams::default().labels("firedrill.run=rf1");
    let policies = Api::<NetworkPolicy>::namespaced(kube.clone(), "shop").list(&params).await.unwrap();
    let pods = Api::<Pod>::namespaced(kube.clone(), "shop").list(&params).await.unwrap();
    (policies.items.iter().map(|p| p.name_any()).collect(), pods.items.iter().map(|p| p.name_any()).collect())
}

#[tokio::test]
async fn a_partition_cuts_the_shop_from_the_store_only_confirmed_from_a_probe_pod_and_lifted_on_revert() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(store_and_cart());
    let (scenario, env) = env_on_fake(&cluster, dir.path(), PARTITION).await;
    let kube = client(&cluster, dir.path()).await;
    let shop = running(&Api::namespaced(kube.clone(), "shop")).await[0].name_any();
    let fetch = |url: &'static str| {
        let kube = kube.clone();
        let shop = shop.clone();
        async move { firedrill::env::kube::netpol::fetch(&kube, "shop", &shop, url).await.expect("an exec") }
    };
    assert!(fetch("http://s3.shop:9000/").await.is_ok());

    env.prepare().await.expect("prepared");
    let mut guard = env.inject(&scenario.fault).await.expect("cut and confirmed");
    assert_eq!(
        labelled(&kube).await,
        (vec!["firedrill-rf1-blackhole".to_string()], vec![]),
        "the probe pod and its policy are gone"
    );
    let cut = fetch("http://s3.shop:9000/").await.expect_err("the store is cut off");
    assert!(cut.contains("download timed out"), "{cut}");
    assert!(fetch("http://cart.shop/").await.is_ok(), "a partition: the cart still answers");
    let said = evidence_of(&env.evidence().await);
    assert!(said.contains("http://s3.shop:9000/ answers from the probe pod shop/firedrill-rf1-confirm"), "{said}");
    assert!(said.contains("http://s3.shop:9000/ no longer answers from the probe pod: exit code 1"), "{said}");
    let posted: Vec<serde_json::Value> = cluster
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 2, "the probe pod's copy, then the shop's");
    assert_eq!(posted[1]["spec"]["podSelector"], serde_json::json!({"matchLabels": {"app": "shop"}}));
    assert_eq!(posted[0]["spec"]["egress"], posted[1]["spec"]["egress"]);

    guard.revert().await.expect("lifted");
    assert_eq!(labelled(&kube).await, (vec![], vec![]));
    assert!(fetch("http://s3.shop:9000/").await.is_ok(), "the store answers again");
    env.teardown().await.expect("every change undone");
}

#[tokio::test]
async fn a_cni_that_fails_open_stops_the_blackhole_before_t0_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(store_and_cart().cni_fails_open());
    let (scenario, env) = env_on_fake(&cluster, dir.path(), PARTITION).await;
    let kube = client(&cluster, dir.path()).await;
    env.prepare().await.expect("prepared");
    let e = env.inject(&scenario.fault).await.map(|_| ()).expect_err("not enforced");
    let e = firedrill::text::error_chain(&e);
    assert!(e.contains("the CNI does not enforce NetworkPolicy: http://s3.shop:9000/ still answered 10s after the deny policy was created"), "{e}");
    assert_eq!(labelled(&kube).await, (vec![], vec![]), "the policies and the probe pod are deleted");
    env.teardown().await.expect("every entry closed");
}

#[tokio::test]
async fn a_confirm_url_that_never_answered_proves_nothing_and_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(store_and_cart());
    let fault = "{kind: network_blackhole, target: app=shop, confirm: \"http://nothing.shop/\"}";
    let (scenario, env) = env_on_fake(&cluster, dir.path(), fault).await;
    let kube = client(&cluster, dir.path()).await;
    env.prepare().await.expect("prepared");
    let e = firedrill::text::error_chain(&env.inject(&scenario.fault).await.map(|_| ()).expect_err("refused"));
    assert!(e.contains("the blackhole's `confirm` URL http://nothing.shop/ does not answer from inside the cluster before the fault (exit code 1: wget: bad address 'nothing.shop')"), "{e}");
    assert_eq!(labelled(&kube).await, (vec![], vec![]));
    env.teardown().await.expect("every entry closed");
}

#[test]
fn the_s3_block_scenario_loads_and_its_roles_cover_the_policy_the_probe_pod_and_the_exec() {
    let path = crate::common::shipped("kube/s3-block.yaml");
    let scenario = crate::common::scenario(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        scenario.fault.describe(),
        "cut the egress traffic of the pods app=shop with the pods app=s3 only (a NetworkPolicy) for 20s"
    );
    let out = crate::common::run(&["kube", "rbac", path.to_str().unwrap()]);
    let (stdout, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for rule in [
        "  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: [\"create\", \"delete\", \"get\", \"list\"]\n",
        "  - apiGroups: [\"\"]\n    resources: [\"pods/exec\"]\n    verbs: [\"create\", \"get\"]\n",
        "  - apiGroups: [\"networking.k8s.io\"]\n    resources: [\"networkpolicies\"]\n    verbs: [\"create\", \"delete\", \"get\"]\n",
    ] {
        assert!(stdout.contains(rule), "{rule} in\n{stdout}");
    }
    // Cluster-wide, only the evidence's read of the nodes' cordon state.
    let nodes = "kind: ClusterRole\nmetadata:\n  name: firedrill-kube-s3-block\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"nodes\"]\n    verbs: [\"list\"]\n---";
    assert!(stdout.contains(nodes), "{stdout}");
}

#[test]
fn recover_deletes_the_policies_a_killed_drill_left_and_orphans_by_label_and_leaves_one_not_labelled_with_its_run() {
    use firedrill::journal::{journal_dir, Begin, Journal, Undo, FORMAT};
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(store_and_cart());
    let kube = runtime.block_on(client(&cluster, dir.path()));
    let policies: Api<NetworkPolicy> = Api::namespaced(kube, "shop");
    let named = [("firedrill-rk3-blackhole", "rk3"), ("firedrill-rk3-confirm", "someone-else"), ("orphan", "rk3")];
    for (name, run) in named {
        let policy: NetworkPolicy = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"firedrill.run": run}},
            "spec": {"podSelector": {"matchLabels": {"app": "shop"}}, "policyTypes": ["Egress"]},
        }))
        .unwrap();
        runtime.block_on(policies.create(&Default::default(), &policy)).expect("created");
    }
    let state = dir.path().join("state");
    let begin = Begin {
        format: FORMAT,
        run: "rk3".into(),
        scenario: "kube-s3-block".into(),
        path: "s3-block.yaml".into(),
        environment: firedrill::word::EnvironmentKind::Kube,
        started: jiff::Timestamp::now(),
        pid: std::process::id(),
    };
    let journal = Journal::create(&journal_dir(&state), begin).unwrap();
    for name in ["firedrill-rk3-blackhole", "firedrill-rk3-confirm"] {
        let undo = Undo::DeleteKubeObject {
            context: "fake".into(),
            namespace: "shop".into(),
            kind: "NetworkPolicy".into(),
            name: name.into(),
        };
        journal.apply(&format!("create NetworkPolicy shop/{name}"), undo, None).unwrap();
    }
    journal.close().unwrap().expect("kept: the drill died with the policies made");

    let out = crate::common::firedrill()
        .args(["recover", "--run", "rk3", "--state-dir", state.to_str().unwrap()])
        .env("KUBECONFIG", cluster.kubeconfig(dir.path()))
        .output()
        .unwrap();
    let (stdout, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Newest entry first: the confirm policy is not the run's; the sweep by label then finds
    // the blackhole and the orphan no entry named.
    assert!(
        stdout.contains("nothing to do: NetworkPolicy shop/firedrill-rk3-confirm is not labelled firedrill.run=rk3: not firedrill's to delete; found by the run's label: NetworkPolicy shop/firedrill-rk3-blackhole deleted; NetworkPolicy shop/orphan deleted"),
        "{stdout}"
    );
    let left: Vec<String> =
        runtime.block_on(policies.list(&Default::default())).unwrap().items.iter().map(|p| p.name_any()).collect();
    assert_eq!(left, ["firedrill-rk3-confirm"]);
}

/// A scenario with no fault to speak of and the `kube` steps `steps` (YAML list items).
fn with_steps(steps: &str) -> String {
    format!(
        "name: kube-steps\nenvironment: {{kind: kube, context: fake, namespace: shop}}\nfault: {{kind: pod_kill, selector: app=cart, count: 1}}\nprocedure:\n  kind: steps\n  steps:\n{steps}"
    )
}

#[tokio::test]
async fn kube_steps_scale_restart_uncordon_exec_and_delete_through_the_api() {
    use k8s_openapi::api::core::v1::Node;
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(store_and_cart());
    let steps = "    - {name: scale, kube: {action: scale, workload: deployment/shop, replicas: 3}, budget: 10s}
    - {name: restart, kube: {action: rollout_restart, workload: deploy/cart}, budget: 10s}
    - {name: uncordon, kube: {action: uncordon, node: node-b}, budget: 10s}
    - {name: exec, kube: {action: exec, selector: app=shop, command: [wget, -q, -O-, \"http://s3.shop:9000/\"]}, budget: 10s}
    - {name: exec fails, kube: {action: exec, selector: app=shop, command: [psql, -c, select 1]}, budget: 10s}
    - {name: delete, kube: {action: delete_pod, selector: app=cart, grace_period: 0s}, budget: 10s}
";
    let scenario = crate::common::scenario(&with_steps(steps));
    let EnvironmentSpec::Kube(kube_cluster) = &scenario.environment else { panic!("a kube scenario") };
    let kube = client(&cluster, dir.path()).await;
    let env =
        KubeEnv::new(kube_cluster.clone(), &scenario, "rf1", dir.path().join("journal")).with_client(kube.clone());
    let nodes: Api<Node> = Api::all(kube.clone());
    let cordon = serde_json::json!({"spec": {"unschedulable": true}});
    nodes.patch("node-b", &Default::default(), &kube::api::Patch::Merge(&cordon)).await.unwrap();
    let cart_pods: Api<Pod> = Api::namespaced(kube.clone(), "shop");
    let cart_before: Vec<String> = cart_pods
        .list(&ListParams::default().labels("app=cart"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();

    env.prepare().await.expect("prepared: the fake allows every step");
    let mut outputs = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        outputs.push(env.run_step(i, step).await.map_err(|e| firedrill::text::error_chain(&e)));
    }
    assert_eq!(
        outputs[0].as_ref().unwrap().as_deref(),
        Some("deployment/shop in namespace shop scaled from 1 to 3 replicas")
    );
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), "shop");
    assert_eq!(deployments.get("shop").await.unwrap().spec.and_then(|s| s.replicas), Some(3));
    let cart = deployments.get("cart").await.unwrap();
    let annotations = cart.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
    assert!(annotations.contains_key("kubectl.kubernetes.io/restartedAt"), "{annotations:?}");
    assert_eq!(outputs[2].as_ref().unwrap().as_deref(), Some("node node-b uncordoned"));
    assert_eq!(nodes.get("node-b").await.unwrap().spec.and_then(|s| s.unschedulable), None);
    assert!(outputs[3].as_ref().unwrap().as_deref().unwrap().starts_with("answered by s3-"), "{:?}", outputs[3]);
    let failed = outputs[4].as_ref().expect_err("psql is not in the pod");
    assert!(
        failed.contains("`psql -c select 1` in pod shop/shop-")
            && failed.contains("failed: exit code 127: sh: psql: not found"),
        "{failed}"
    );
    let deleted = outputs[5].as_ref().unwrap().as_deref().unwrap();
    assert_eq!(deleted, format!("delete pod shop/{}: accepted (grace period 0s)", cart_before[0]));
    let requests = cluster.requests();
    let restart = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path == "/apis/apps/v1/namespaces/shop/deployments/cart")
        .expect("the restart");
    assert_eq!(restart.content_type, "application/strategic-merge-patch+json");
    let uncordon = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path == "/api/v1/nodes/node-b" && r.content_type.contains("strategic"))
        .expect("the uncordon");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&uncordon.body).unwrap(),
        serde_json::json!({"spec": {"unschedulable": null}})
    );
    env.teardown().await.expect("steps journal nothing");
}

#[test]
fn kube_steps_are_in_the_roles_and_outside_namespaces_are_refused_at_their_line() {
    let steps = "    - {name: restart, kube: {action: rollout_restart, workload: sts/db, namespace: db}, budget: 10s}
    - {name: uncordon, kube: {action: uncordon, node: node-b}, budget: 10s}
    - {name: exec, kube: {action: exec, pod: shop-1, command: [\"true\"]}, budget: 10s}
";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steps.yaml");
    std::fs::write(&path, with_steps(steps).replace("namespace: shop}", "namespace: shop, namespaces: [shop, db]}"))
        .unwrap();
    let out = crate::common::run(&["kube", "rbac", path.to_str().unwrap()]);
    let (stdout, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for rule in [
        "kind: ClusterRole\nmetadata:\n  name: firedrill-kube-steps\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"nodes\"]\n    verbs: [\"list\", \"patch\"]\n",
        "  namespace: db\nrules:\n",
        "  - apiGroups: [\"apps\"]\n    resources: [\"statefulsets\"]\n    verbs: [\"patch\"]\n",
        "  - apiGroups: [\"\"]\n    resources: [\"pods/exec\"]\n    verbs: [\"create\", \"get\"]\n",
    ] {
        assert!(stdout.contains(rule), "{rule} in\n{stdout}");
    }
    std::fs::write(&path, with_steps(steps)).unwrap();
    let out = crate::common::run(&["run", "--context", "fake", "--no-write", path.to_str().unwrap()]);
    let (_, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "steps.yaml:7:7: step `restart`: namespace `db` is not one of the environment's namespaces (shop)"
        ),
        "{stderr}"
    );
}

/// A pod_kill drill through `firedrill run`, as a user runs it: the shop's one replica killed,
/// its Deployment's ready replicas probed every 100 ms, and the record read back.
#[test]
fn a_pod_kill_drill_runs_end_to_end_with_an_rto_of_the_fakes_delays() {
    const INTERVAL: Duration = Duration::from_millis(100);
    let spec = FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a"]);
    let expected = spec.recreate_delay + spec.ready_delay;
    let cluster = FakeCluster::start(spec);
    let drill = crate::kube_run::Drill::new(
        &cluster,
        "name: fake-pod-kill
environment: {kind: kube, context: fake, namespace: shop}
fault: {kind: pod_kill, selector: app=shop}
max_blast_radius: 1
probes:
  - name: capacity
    check: {kind: deployment, deployment: shop, min_ready: 1}
    interval: 100ms
    timeout: 1s
stability: {samples: 3, min_duration: 300ms}
steady_state: {samples: 3, timeout: 10s}
targets: {rto: 10s}
deadline: 30s
",
    );
    let (record, out, said) = drill.run(&[]);
    assert_eq!(out.status.code(), Some(0), "recovered, every target met\n{said}");
    // t0 is the deletion's acceptance; the replica is back once the ReplicaSet recreated it
    // (recreate_delay, 300 ms) and it is Ready (ready_delay, 700 ms), seen at the probe's next
    // sample: within one interval of 1 s (and a few 20 ms controller passes).
    let rto = record.metrics.rto.seconds().expect("an RTO");
    eprintln!("fake pod kill: RTO {rto:.3} s (the fake's delays: {:.3} s)", expected.as_secs_f64());
    let (low, high) = (expected.saturating_sub(INTERVAL), expected + INTERVAL + Duration::from_millis(60));
    assert!((low.as_secs_f64()..=high.as_secs_f64()).contains(&rto), "RTO {rto:.3} s");
}

/// A blackhole drill through `firedrill run` on a cluster whose CNI fails open: the drill
/// stops before `t0`, saying why, with nothing left in the cluster or the journal.
#[test]
fn a_blackhole_drill_on_a_cni_that_fails_open_stops_before_t0_and_says_so() {
    let cluster = FakeCluster::start(store_and_cart().cni_fails_open());
    let drill = crate::kube_run::Drill::new(
        &cluster,
        &format!(
            "name: fake-blackhole
environment: {{kind: kube, context: fake, namespace: shop}}
fault: {PARTITION}
probes:
  - name: capacity
    check: {{kind: deployment, deployment: shop, min_ready: 1}}
    interval: 100ms
steady_state: {{samples: 2, timeout: 10s}}
deadline: 30s
"
        ),
    );
    let (record, out, said) = drill.run(&[]);
    assert_ne!(out.status.code(), Some(0), "{said}");
    let text = serde_json::to_string(&record).unwrap();
    assert!(text.contains("the CNI does not enforce NetworkPolicy: http://s3.shop:9000/ still answered 10s"), "{text}");
    assert!(record.timeline.t0().is_none(), "no t0: the fault never was");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kube = runtime.block_on(client(&cluster, &drill.path("")));
    assert_eq!(runtime.block_on(labelled(&kube)), (vec![], vec![]));
    let journals = drill.path("state").join("firedrill").join("journal");
    let left: Vec<_> = std::fs::read_dir(&journals)
        .expect("the drill journalled its changes there")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "no journal left: {left:?}");
}
