//! The database drill of the kube environment against the in-process fake API server
//! (kube_fake): the `endpoints` probe's watch of a Service's EndpointSlices, the port-forward
//! that takes `sql` and `write_ledger` probes to the pod behind a Service, and the
//! `db_failover` fault on the fake CloudNativePG operator.

use std::time::{Duration, Instant};

use firedrill::env::kube::{connect, KubeEnv, API_EVIDENCE};
use firedrill::env::Environment;
use firedrill::scenario::EnvironmentSpec;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};

use crate::kube_fake::{FakeCluster, FakeSpec};

/// Three nodes and a CloudNativePG cluster `pg` in namespace `db`, one instance on each.
fn postgres() -> FakeSpec {
    FakeSpec::new(&["node-a", "node-b", "node-c"]).postgres("db", "pg", &["node-a", "node-b", "node-c"])
}

/// A client of the fake, as the kube environment connects to the scenario's context.
async fn client(cluster: &FakeCluster, dir: &std::path::Path) -> kube::Client {
    firedrill::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig(dir)).unwrap();
    connect::connect_with(kubeconfig, "fake").await.unwrap()
}

/// The kube environment of the scenario `text` on the fake, unprepared (no journal, no
/// access review): enough to take samples.
async fn env(cluster: &FakeCluster, dir: &std::path::Path, text: &str) -> (firedrill::scenario::Scenario, KubeEnv) {
    let scenario = crate::common::scenario(text);
    let EnvironmentSpec::Kube(kube) = &scenario.environment else { panic!("a kube scenario") };
    let env = KubeEnv::new(kube.clone(), &scenario, "run-1", dir.to_path_buf()).with_client(client(cluster, dir).await);
    (scenario, env)
}

#[tokio::test]
async fn an_endpoints_probe_follows_the_services_slices_by_watch_and_times_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let spec = postgres();
    let failover = spec.failover_delay;
    let cluster = FakeCluster::start(spec);
    let text = "name: rw
environment: {kind: kube, context: fake, namespace: db}
fault: {kind: node_drain, node: node-a}
probes:
  - name: rw
    check: {kind: endpoints, service: pg-rw}
  - name: all
    check: {kind: endpoints, service: pg-r, min_ready: 3}
  - name: nothing
    check: {kind: endpoints, service: nothing, namespace: db}
";
    let (scenario, env) = env(&cluster, dir.path(), text).await;
    let sample = |i: usize| env.sample(i, &scenario.probes[i]);
    assert!(sample(0).await.ok, "{:?}", sample(0).await.detail);
    assert!(sample(1).await.ok);
    let nothing = sample(2).await;
    assert_eq!(nothing.detail.as_deref(), Some("service db/nothing: 0 ready endpoint(s), needs 1"));
    let before = env.answers();
    assert_eq!(before.len(), 2, "the first lists: {:?}", before.iter().map(|a| &a.text).collect::<Vec<_>>());

    // The primary crashes: the Service loses its endpoint at once, the operator promotes a
    // replica after its failover delay.
    let pods: Api<Pod> = Api::namespaced(client(&cluster, dir.path()).await, "db");
    pods.delete("pg-1", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
    let crashed = Instant::now();
    while sample(0).await.ok {
        assert!(crashed.elapsed() < Duration::from_secs(2), "the endpoint never went");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failed = sample(0).await.detail.unwrap_or_default();
    assert!(failed.starts_with("service db/pg-rw: 0 ready endpoint(s) since "), "{failed}");
    while !sample(0).await.ok {
        assert!(crashed.elapsed() < Duration::from_secs(5), "no failover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!sample(1).await.ok, "pg-1 is not back yet");

    let changes: Vec<_> = env.answers().into_iter().filter(|a| a.text.starts_with("service db/pg-rw")).collect();
    assert!(changes.iter().all(|a| a.source == API_EVIDENCE));
    let texts: Vec<&str> = changes.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(
        texts,
        ["service db/pg-rw: 0 ready endpoint(s) (was 1): ", "service db/pg-rw: 1 ready endpoint(s) (was 0): pg-2"]
    );
    // The events are timed by the watch, not by the samples: the gap is the operator's.
    let gap = changes[1].at - changes[0].at;
    assert!(gap >= failover - Duration::from_millis(50) && gap < failover + Duration::from_millis(300), "{gap:?}");
}

#[test]
fn sim_and_docker_refuse_an_endpoints_probe_at_load_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let probe = "\n  - name: rw\n    check: {kind: endpoints, service: shop-db-rw}\n";
    for shipped in ["scenarios/db-failover.yaml", "scenarios/docker/db-failover.yaml"] {
        let text = std::fs::read_to_string(shipped).unwrap();
        let text = text.replacen("\nprobes:\n", &format!("\nprobes:{probe}"), 1);
        let path = dir.path().join(shipped.replace('/', "-"));
        let from = std::path::Path::new(shipped).parent().unwrap().canonicalize().unwrap();
        let text = text.replace("from: ../", &format!("from: {}/../", from.display()));
        std::fs::write(&path, &text).unwrap();
        let out = crate::common::run(&["validate", path.to_str().unwrap()]);
        let (stdout, stderr) = crate::common::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{shipped}\n{stdout}\n{stderr}");
        let line = crate::common::line_of(&text, "- name: rw");
        let at = format!("{}:{line}:", path.display());
        assert!(
            stderr.lines().any(|l| l.contains(&at) && l.contains("probe `rw`: `endpoints`")),
            "{shipped}\n{stderr}"
        );
    }
}

/// A local server standing for the database behind one instance: it says `name` to each
/// connection, then echoes what it is sent.
async fn instance(name: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                connection.write_all(format!("{name}\n").as_bytes()).await.unwrap();
                let (mut reading, mut writing) = connection.split();
                let _ = tokio::io::copy(&mut reading, &mut writing).await;
            });
        }
    });
    address
}

/// The first line a connection to `address` reads.
async fn greeting(address: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::AsyncBufReadExt;
    let connection = tokio::net::TcpStream::connect(address).await?;
    let mut line = String::new();
    tokio::io::BufReader::new(connection).read_line(&mut line).await?;
    Ok(line.trim_end().to_string())
}

#[tokio::test]
async fn a_service_forward_reaches_the_pod_behind_the_service_and_is_re_resolved_after_a_failover() {
    use firedrill::env::kube::forward::{service_in, through, ServiceForward};
    let dir = tempfile::tempdir().unwrap();
    let spec = postgres().forward("pg-1", 5432, instance("pg-1").await).forward("pg-2", 5432, instance("pg-2").await);
    let cluster = FakeCluster::start(spec);
    let client = client(&cluster, dir.path()).await;
    let dsn = "host=pg-rw.db.svc user=postgres dbname=postgres";
    let target = service_in(dsn).expect("a Service");
    let forward = ServiceForward::start(&client, target).await.unwrap();
    let local = forward.local();
    assert_eq!(through(dsn, local), format!("host=127.0.0.1 user=postgres dbname=postgres port={}", local.port()));

    // A connection held through the crash ends with its pod; a new one reaches the new primary
    // once the operator promoted it.
    let held = tokio::net::TcpStream::connect(local).await.unwrap();
    let mut held = tokio::io::BufReader::new(held);
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut held, &mut line).await.unwrap();
    assert_eq!(line, "pg-1\n");
    let pods: Api<Pod> = Api::namespaced(client, "db");
    pods.delete("pg-1", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
    let crashed = Instant::now();
    line.clear();
    let ended =
        tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncBufReadExt::read_line(&mut held, &mut line));
    assert_eq!(ended.await.expect("the forward ends with its pod").unwrap_or(0), 0, "{line}");
    loop {
        if greeting(local).await.is_ok_and(|g| g == "pg-2") {
            break;
        }
        assert!(crashed.elapsed() < Duration::from_secs(5), "never reached the new primary");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let said: Vec<String> = forward.take_changes().into_iter().map(|a| a.text).collect();
    assert_eq!(said.first().map(String::as_str), Some("port-forward to service db/pg-rw:5432: through pod pg-1"));
    assert_eq!(said.last().map(String::as_str), Some("port-forward to service db/pg-rw:5432: through pod pg-2"));
    // Between the two, the gap: the slice still naming the gone pod for a controller pass,
    // then no ready endpoint until the promotion.
    let gap = |s: &String| {
        s == "failed to forward to service db/pg-rw:5432: no ready endpoint"
            || s.starts_with("failed to forward port 5432 of pod db/pg-1: HTTP 404 NotFound")
    };
    assert!(said[1..said.len() - 1].iter().all(gap), "{said:?}");
}
