//! The traffic-surge drill on kube through `firedrill run`, against the fake API server: the
//! users' steady load and the surge go from this machine to a loopback server (standing for
//! the shop's NodePort), and the Deployment's scale-out, made here by the test as an
//! autoscaler would, is read from the API each second into the record.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use serde_json::json;

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
    let ((record, _, said), ()) = std::thread::scope(|s| {
        let scaler = s.spawn(|| scale_when_watched(&cluster, 4, Duration::from_secs(20)));
        (drill.run(&[]), scaler.join().unwrap())
    });
    assert!(errors(&record).is_empty(), "{:?}\n{said}", errors(&record));

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

/// What local `firedrill load` workers splitting `rate` for `duration` against `url` print
/// with `--format stream`, starting at `start_at`: the logs their pods would have.
fn worker_logs(url: &str, rate: &str, duration: &str, workers: usize, start_at: jiff::Timestamp) -> Vec<String> {
    let running: Vec<_> = (0..workers)
        .map(|k| {
            crate::common::firedrill()
                .args(["load", url, "--rate", rate, "--duration", duration, "--format", "stream"])
                .args(["--share", &format!("{k}/{workers}"), "--start-at", &start_at.to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    running.into_iter().map(|w| String::from_utf8(w.wait_with_output().unwrap().stdout).unwrap()).collect()
}

fn running_pod(name: &str, phase: &str, waiting: Option<&str>) -> serde_json::Value {
    let state = match waiting {
        Some(reason) => json!({ "waiting": { "reason": reason } }),
        None => json!({ "running": {} }),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "shop" },
        "status": { "phase": phase, "containerStatuses": [{ "name": "load", "image": "i", "imageID": "", "ready": phase == "Running", "restartCount": 0, "state": state }] },
    })
}

fn pod_list(pods: Vec<serde_json::Value>) -> serde_json::Value {
    json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods })
}

#[tokio::test]
async fn worker_pods_run_the_surge_as_an_indexed_job_whose_streamed_logs_merge_into_one_measurement() {
    use firedrill::env::kube::workers::{job, WorkerSurge};
    use hyper::Method;

    firedrill::tls::install_crypto_provider();
    let (url, served) = crate::load::server(Duration::ZERO, 200);
    // What the two pods print: two local workers, run first, their start a second away.
    let logs = worker_logs(&url, "100/s", "2s", 2, jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1200));
    assert_eq!(served.load(Ordering::Relaxed), 200);

    let plan = firedrill::load::Plan::steady(&url, 100.0, Duration::from_secs(2), 64, Duration::from_secs(1));
    let start_at = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
    let (service, mut handle) = tower_test::mock::pair();
    let client = kube::Client::new(service, "default");
    let surge = job("run-1", "firedrill/firedrill:latest", &plan, 2, start_at, Duration::from_secs(30));
    let api = async {
        let (_, body, send) =
            crate::kube_wire::expect(&mut handle, Method::POST, "/apis/batch/v1/namespaces/shop/jobs?").await;
        let spec = &body["spec"];
        assert_eq!(body["metadata"]["name"], "firedrill-run-1-surge");
        assert_eq!(body["metadata"]["labels"]["firedrill.run"], "run-1");
        assert_eq!(spec["template"]["metadata"]["labels"]["firedrill.run"], "run-1");
        assert_eq!(
            (&spec["completionMode"], &spec["completions"], &spec["parallelism"]),
            (&json!("Indexed"), &json!(2), &json!(2))
        );
        assert_eq!((&spec["backoffLimit"], &spec["ttlSecondsAfterFinished"]), (&json!(0), &json!(600)));
        // Started within 30 s, 2 s of load, its 1 s timeout, a minute's overrun.
        assert_eq!(spec["activeDeadlineSeconds"], 93);
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(
            (&container["image"], &container["command"]),
            (&json!("firedrill/firedrill:latest"), &json!(["firedrill"]))
        );
        let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let expected = [
            "load",
            &url,
            "--rate",
            "100/s",
            "--duration",
            "2000ms",
            "--timeout",
            "1000ms",
            "--connections",
            "64",
            "--share",
            "$(JOB_COMPLETION_INDEX)/2",
            "--start-at",
            &start_at.to_string(),
            "--format",
            "stream",
        ];
        assert_eq!(args, expected);
        crate::kube_wire::answer(send, 201, &body);
        // The pods: one still pulling its image, then both running.
        let pods = "/api/v1/namespaces/shop/pods?&labelSelector=batch.kubernetes.io%2Fjob-name%3Dfiredrill-run-1-surge";
        let (_, _, send) = crate::kube_wire::expect(&mut handle, Method::GET, pods).await;
        let pulling = running_pod("surge-1", "Pending", Some("ContainerCreating"));
        crate::kube_wire::answer(send, 200, &pod_list(vec![running_pod("surge-0", "Running", None), pulling]));
        let (_, _, send) = crate::kube_wire::expect(&mut handle, Method::GET, pods).await;
        let both = vec![running_pod("surge-0", "Running", None), running_pod("surge-1", "Running", None)];
        crate::kube_wire::answer(send, 200, &pod_list(both));
        // Each pod's log, followed, in whatever order the readers ask.
        for _ in 0..2 {
            let (request, send) = handle.next_request().await.unwrap();
            let path = request.uri().to_string();
            let k = ["surge-0", "surge-1"]
                .iter()
                .position(|p| path == format!("/api/v1/namespaces/shop/pods/{p}/log?&follow=true"));
            let k = k.unwrap_or_else(|| panic!("a log request, not {path}"));
            send.send_response(
                hyper::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(logs[k].clone().into_bytes()))
                    .unwrap(),
            );
        }
    };
    let drill = async {
        let mut surge = WorkerSurge::start(&client, "shop", surge, plan, 2, start_at).await.unwrap();
        assert!(jiff::Timestamp::now() >= start_at, "the surge starts at its start time, not before");
        surge.stop(Duration::from_secs(10)).await;
        surge.evidence()
    };
    let ((), evidence) = tokio::join!(api, drill);
    assert_eq!(evidence.source, "traffic_surge");
    assert!(
        evidence.text.starts_with("2 worker pods of job shop/firedrill-run-1-surge; 2 of them ended their stream\n"),
        "{}",
        evidence.text
    );
    // The two shares merged: the 200 requests the server counted, 100 a second.
    assert!(evidence.text.contains("sent 200 in "), "{}", evidence.text);
    assert!(evidence.text.contains("│ 0s │ 100  │") && evidence.text.contains("│ 1s │ 100  │"), "{}", evidence.text);
}

#[tokio::test]
async fn a_surge_whose_worker_pods_do_not_start_in_time_fails_saying_why() {
    use firedrill::env::kube::workers::{job, WorkerSurge};
    use hyper::Method;

    firedrill::tls::install_crypto_provider();
    let plan = firedrill::load::Plan::steady(
        "http://shop.shop:8080/",
        100.0,
        Duration::from_secs(2),
        64,
        Duration::from_secs(1),
    );
    let start_at = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(600);
    let (service, mut handle) = tower_test::mock::pair();
    let client = kube::Client::new(service, "default");
    let surge = job("run-1", "firedrill/firedrill:missing", &plan, 2, start_at, Duration::from_secs(30));
    let api = async {
        let (_, body, send) =
            crate::kube_wire::expect(&mut handle, Method::POST, "/apis/batch/v1/namespaces/shop/jobs?").await;
        crate::kube_wire::answer(send, 201, &body);
        while let Some((_, send)) = handle.next_request().await {
            let pods = vec![
                running_pod("surge-0", "Running", None),
                running_pod("surge-1", "Pending", Some("ImagePullBackOff")),
            ];
            crate::kube_wire::answer(send, 200, &pod_list(pods));
        }
    };
    let drill = async {
        let refused = WorkerSurge::start(&client, "shop", surge, plan, 2, start_at).await;
        drop(client);
        refused.err().expect("the surge fails").to_string()
    };
    let ((), refused) = tokio::join!(api, drill);
    assert_eq!(
        refused,
        "1 of the 2 worker pods of job firedrill-run-1-surge were running when the surge was to start: surge-0 Running, surge-1 Pending (ImagePullBackOff)"
    );
}

#[test]
fn a_surge_by_worker_pods_runs_through_firedrill_run_each_pod_a_real_generator() {
    let (url, served) = crate::load::server(Duration::ZERO, 200);
    let spec = FakeSpec::new(&["node-a", "node-b"])
        .object(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "shop" } }))
        .run_jobs(std::path::Path::new(env!("CARGO_BIN_EXE_firedrill")));
    let cluster = FakeCluster::start(spec);
    let text = scenario(&url).replace(
        "fault: {kind: traffic_surge, multiplier: 4, duration: 2s, url: \"URL\", deployment: shop}".replace("URL", &url).as_str(),
        &format!("fault: {{kind: traffic_surge, rate: 200/s, duration: 2s, url: \"{url}\", workers: 2, image: \"firedrill/firedrill:latest\", start_within: 4s}}"),
    );
    assert!(text.contains("workers: 2"), "{text}");
    let drill = Drill::new(&cluster, &text);
    let (record, _, said) = drill.run(&[]);
    assert!(errors(&record).is_empty(), "{:?}\n{said}", errors(&record));

    // The probe's 50/s is part of the 200/s: the two pods sent the other 150/s for 2 s.
    let surge = evidence(&record, "traffic_surge");
    assert!(surge.starts_with("2 worker pods of job shop/firedrill-"), "{surge}");
    assert!(surge.contains("-surge; 2 of them ended their stream\n"), "{surge}");
    assert!(surge.contains("sent 300 in "), "{surge}");
    assert!(surge.contains("│ 0s │ 150  │") && surge.contains("│ 1s │ 150  │"), "{surge}");
    assert!(served.load(Ordering::Relaxed) >= 300 + 50, "{}", served.load(Ordering::Relaxed));
    let said = evidence(&record, firedrill::env::kube::API_EVIDENCE);
    assert!(said.contains("by 2 worker pods of job shop/firedrill-") && said.contains("-surge deleted"), "{said}");

    // The Job and its pods are gone.
    let requests = cluster.requests();
    let created =
        requests.iter().filter(|r| r.method == "POST" && r.path == "/apis/batch/v1/namespaces/shop/jobs").count();
    let deleted = requests
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/apis/batch/v1/namespaces/shop/jobs/"))
        .count();
    assert_eq!((created, deleted), (1, 1));
}
