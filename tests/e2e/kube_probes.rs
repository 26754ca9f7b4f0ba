//! Probes a kube drill takes from inside the cluster, through `firedrill run` against the fake
//! API server: an `http` probe `in_cluster` is sampled by `wget` exec'd in a probe pod that
//! firedrill starts, labelled with the run, and removes.

use std::time::Duration;

use serde_json::json;

use crate::kube_fake::{FakeCluster, FakeSpec};
use crate::kube_run::{errors, evidence, Drill};

/// How often the in-cluster probe samples.
const INTERVAL: Duration = Duration::from_millis(100);

#[test]
fn an_in_cluster_http_probe_sees_a_killed_pods_service_go_and_come_back_from_a_probe_pod() {
    let spec = FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a"]).object(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "shop", "namespace": "shop" },
        "spec": { "selector": { "app": "shop" }, "ports": [{ "name": "http", "port": 8080, "targetPort": 8080 }] },
    }));
    let expected = spec.recreate_delay + spec.ready_delay;
    let cluster = FakeCluster::start(spec);
    let drill = Drill::new(
        &cluster,
        &format!(
            "name: fake-pod-kill-in-cluster
environment: {{kind: kube, context: fake, namespace: shop}}
fault: {{kind: pod_kill, selector: app=shop}}
probes:
  - name: users
    check: {{kind: http, url: \"http://shop.shop:8080/catalog\", in_cluster: true, body_contains: answered}}
    interval: {}ms
    timeout: 1s
stability: {{samples: 3, min_duration: 300ms}}
steady_state: {{samples: 3, timeout: 10s}}
targets: {{rto: 10s}}
deadline: 30s
",
            INTERVAL.as_millis()
        ),
    );
    let (record, out, said) = drill.run(&[]);
    assert!(errors(&record).is_empty(), "{:?}\n{said}", errors(&record));
    assert_eq!(out.status.code(), Some(0), "recovered\n{said}");

    // The Service had no ready endpoint from the kill until the replacement was Ready: the
    // probe pod's wget saw it, within an interval (and the exec's round trip) of the fake's delays.
    let rto = record.metrics.rto.seconds().expect("an RTO");
    eprintln!("in-cluster probe: RTO {rto:.3} s (the fake's delays: {:.3} s)", expected.as_secs_f64());
    let (low, high) = (expected.saturating_sub(INTERVAL), expected + 2 * INTERVAL + Duration::from_millis(100));
    assert!((low.as_secs_f64()..=high.as_secs_f64()).contains(&rto), "RTO {rto:.3} s");
    let failed = record.timeline.events.iter().find_map(|e| match &e.kind {
        firedrill::timeline::EventKind::Sample { ok: false, detail: Some(detail), .. } => Some(detail.clone()),
        _ => None,
    });
    assert_eq!(failed.as_deref(), Some("from inside the cluster: exit code 1: wget: download timed out"));

    // The probe pod was started labelled with the run, and removed at the teardown (after the
    // record's evidence was taken).
    let said = evidence(&record, firedrill::env::kube::API_EVIDENCE);
    assert!(said.contains("probe pod shop/firedrill-") && said.contains("-probe started (firedrill.run="), "{said}");
    let requests = cluster.requests();
    assert!(requests.iter().any(|r| r.method == "DELETE"
        && r.path.starts_with("/api/v1/namespaces/shop/pods/firedrill-")
        && r.path.ends_with("-probe")));
    let created = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/api/v1/namespaces/shop/pods")
        .expect("the probe pod");
    let pod: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(pod["metadata"]["labels"]["firedrill.role"], "probe");
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.36");
    let execs = requests.iter().filter(|r| r.path.ends_with("-probe/exec")).count();
    assert!(execs > 10, "{execs} samples exec'd");
}
