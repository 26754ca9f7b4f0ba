//! The traffic-surge drill on kube through `firedrill run`, against the fake API server: the
//! users' steady load and the surge go from this machine to a loopback server (standing for
//! the shop's NodePort), and the Deployment's scale-out, made here by the test as an
//! autoscaler would, is read from the API each second into the record.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::common::{json_files, load_record, texts};
use crate::kube_fake::{FakeCluster, FakeSpec};
use crate::kube_run::{errors, evidence, Drill};

fn scenario(url: &str) -> String {
    format!(
        "name: fake-traffic-surge
environment: {{kind: kube, context: fake, namespace: shop}}
fault: {{kind: traffic_surge, multiplier: 4, duration: 2s, url: \"{url}\", deployment: shop}}
probes:
  - name: users
    check: {{kind: slo, url: \"{url}\", rate: 50/s, max_error_percent: 1, window: 1s}}
    interval: 250ms
    timeout: 1s
stability: {{samples: 3, min_duration: 300ms}}
steady_state: {{samples: 3, timeout: 10s}}
procedure:
  kind: steps
  steps:
    - name: \"verify: the surge is over\"
      run: [sleep, \"3\"]
      budget: 5s
targets: {{rto: 10s}}
deadline: 30s
"
    )
}

/// Scales the shop to `replicas` once the drill has started reading its autoscalers (the
/// surge is on), as the autoscaler would; gives up after `within`.
fn scale_when_watched(cluster: &FakeCluster, replicas: i32, within: Duration) {
    let start = Instant::now();
    while !cluster.requests().iter().any(|r| r.path.ends_with("/horizontalpodautoscalers")) {
        assert!(start.elapsed() < within, "the drill never read the autoscalers");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kubeconfig = tempfile::tempdir().unwrap();
    let path = cluster.kubeconfig(kubeconfig.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        firedrill::tls::install_crypto_provider();
        let config = kube::config::Kubeconfig::read_from(path).unwrap();
        let client = firedrill::env::kube::connect::connect_with(config, "fake").await.unwrap();
        let deployments = kube::Api::<Deployment>::namespaced(client, "shop");
        let scale = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        deployments.patch_scale("shop", &PatchParams::default(), &scale).await.unwrap();
    });
}

#[test]
fn the_surge_drill_loads_the_url_and_records_the_scale_out_each_second() {
    let (url, served) = crate::load::server(Duration::ZERO, 200);
    let cluster = FakeCluster::start(
        FakeSpec::new(&["node-a", "node-b"]).deployment("shop", "shop", &["node-a", "node-b"]).object(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "shop" },
                "minReplicas": 2, "maxReplicas": 6,
            },
        })),
    );
    let drill = Drill::new(&cluster, &scenario(&url));
    let reports = drill.path("reports");
    let (out, ()) = std::thread::scope(|s| {
        let scaler = s.spawn(|| scale_when_watched(&cluster, 4, Duration::from_secs(20)));
        let out = drill.firedrill(&["run", "SCENARIO", "--context", "fake", "--reports", reports.to_str().unwrap()]);
        (out, scaler.join().unwrap())
    });
    let (stdout, stderr) = texts(&out);
    let files = json_files(&reports);
    assert_eq!(files.len(), 1, "one record\n{stdout}\n{stderr}");
    let record = load_record(&files[0]);
    assert!(errors(&record).is_empty(), "{:?}\n{stdout}\n{stderr}", errors(&record));

    // The surge sent three times the probe's 50/s for 2 s, on top of it.
    let surge = evidence(&record, "traffic_surge");
    assert!(surge.contains("sent 300 in "), "{surge}");
    assert!(served.load(Ordering::Relaxed) >= 300 + 50, "{}", served.load(Ordering::Relaxed));
    assert!(evidence(&record, "load of probe `users`").contains("open model, 50/s"));

    // Two replicas, then the four the test scaled to, with the autoscaler's view beside them.
    let scale_out = evidence(&record, firedrill::env::kube::surge::SCALE_OUT_EVIDENCE);
    let lines: Vec<&str> = scale_out.lines().collect();
    assert!(lines[0].starts_with("deployment shop/shop, read each second"), "{scale_out}");
    let before = lines.iter().position(|l| l.contains(" 2 wanted, 2 updated, 2 ready; autoscaler shop: 2 current"));
    let after = lines.iter().position(|l| l.contains(" 4 wanted, ") && l.contains("(2..6)"));
    assert!(before.is_some() && after > before, "{scale_out}");
}
