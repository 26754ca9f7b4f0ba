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

use crate::common::{texts, LocalPostgres};
use crate::kube_fake::{FakeCluster, FakeSpec};
use crate::kube_run::{errors, evidence, Drill};

/// How often the fake drill's probes sample; the measured RTO must match the fake's delays
/// within one of it.
const INTERVAL: Duration = Duration::from_millis(100);

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
    assert!(gap >= failover - Duration::from_millis(50) && gap < failover + Duration::from_millis(400), "{gap:?}");
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

/// The db-failover drill of scenarios/kube/db-failover.yaml, written for the fake: its
/// context `fake`, the Cluster `pg` in namespace `db`, the read-write Service's endpoints as
/// the availability probe and, when `ledger`, a write ledger through the Service.
fn scenario(mode: &str, ledger: bool) -> String {
    let interval = INTERVAL.as_millis();
    let ledger = match ledger {
        true => format!(
            "  - name: ledger
    check: {{kind: write_ledger, dsn: \"host=pg-rw.db.svc user=postgres dbname=postgres connect_timeout=1\"}}
    interval: {interval}ms
    timeout: 1s
"
        ),
        false => String::new(),
    };
    format!(
        "name: fake-db-failover
environment: {{kind: kube, context: fake, namespace: db}}
fault: {{kind: db_failover, cluster: pg, mode: {mode}}}
max_blast_radius: 1
probes:
  - name: rw
    check: {{kind: endpoints, service: pg-rw}}
    interval: {interval}ms
    timeout: 1s
{ledger}stability: {{samples: 3, min_duration: 300ms}}
steady_state: {{samples: 3, timeout: 10s}}
targets: {{rto: 10s}}
deadline: 30s
"
    )
}

/// Runs the drill on `cluster`: its record and the binary's output.
fn drill(cluster: &FakeCluster, text: &str) -> (firedrill::record::DrillRecord, String) {
    let (record, out, said) = Drill::new(cluster, text).run(&[]);
    let said = format!("{said}\n{:?}", errors(&record));
    assert_eq!(out.status.code(), Some(0), "every target met\n{said}");
    (record, said)
}

/// The timeline's answers of the API server, as (microseconds, text).
fn answered(record: &firedrill::record::DrillRecord) -> Vec<(i64, String)> {
    use firedrill::timeline::EventKind;
    record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Answered { source, text } if source == API_EVIDENCE => Some((e.t_us as i64, text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_crash_fails_over_through_firedrill_run_with_the_operators_delay_as_rto_and_the_ledger_through_the_new_primary() {
    let server = LocalPostgres::start();
    let mut spec = postgres();
    if let Some(pg) = &server {
        spec = spec.forward("pg-", 5432, pg.address);
    }
    let failover = spec.failover_delay;
    let cluster = FakeCluster::start(spec);
    let (record, said) = drill(&cluster, &scenario("crash", server.is_some()));
    assert_eq!(record.outcome, firedrill::timeline::Outcome::Recovered, "{said}");

    // The primary's pod deleted (uid precondition, grace 0) is t0's answer; the operator's
    // promotion and the Service's endpoint follow, each at its own time.
    let answers = answered(&record);
    let at = |text: &str| answers.iter().find(|(_, t)| t.contains(text)).map(|(at, _)| *at);
    let t0 = record.timeline.t0().expect("t0") as i64;
    let deleted = at("cluster db/pg: delete primary pod db/pg-1 (uid ").expect("the deletion in the timeline");
    assert!(deleted <= t0, "{answers:?}");
    let gone = at("service db/pg-rw: 0 ready endpoint(s) (was 1)").expect("the endpoint gone");
    let promoted = at("cluster db/pg: currentPrimary pg-2").expect("the promotion read");
    let back = at("service db/pg-rw: 1 ready endpoint(s) (was 0): pg-2").expect("the endpoint back");
    // The watch may say the endpoint is gone a little before the DELETE's answer arrives (t0):
    // both follow the request, and neither waits for the other.
    assert!(gone < back && promoted > t0 && back > t0, "{answers:?}");
    let events = evidence(&record, firedrill::env::kube::evidence::EVENTS_EVIDENCE);
    assert!(events.contains("Promoting pg-2 to primary"), "the operator's own Event:\n{events}");

    // Nothing was in effect between the fault and the promotion but the operator's delay: the
    // endpoint is back failover_delay (500 ms) after the crash, a few controller passes (20 ms
    // each) later; RTO is the middle between the last failed and the first ok sample, so it
    // lies within one probe interval of that.
    let rto = record.metrics.rto.seconds().expect("an RTO");
    eprintln!("fake db failover: RTO {rto:.3} s (the fake's failover delay: {:.3} s)", failover.as_secs_f64());
    let passes = Duration::from_millis(5 * 20);
    let (low, high) = (failover.saturating_sub(INTERVAL), failover + passes + INTERVAL);
    assert!((low.as_secs_f64()..=high.as_secs_f64()).contains(&rto), "RTO {rto:.3} s\n{answers:?}");

    if server.is_some() {
        // The ledger wrote through pg-1's forward, then, after the failover, through pg-2's;
        // the one server behind both (the fake moves roles, not data) lost nothing.
        let first = at("port-forward to service db/pg-rw:5432: through pod pg-1").expect("the first forward");
        let second = at("port-forward to service db/pg-rw:5432: through pod pg-2").expect("the re-resolved forward");
        assert!(first < t0 && second > t0, "{answers:?}");
        // Writes were acknowledged through the new primary's forward, and none was lost.
        let after: Vec<&firedrill::timeline::Event> = record
            .timeline
            .events
            .iter()
            .filter(|e| {
                e.t_us as i64 > second
                    && matches!(e.kind, firedrill::timeline::EventKind::LedgerWrite { acked: true, .. })
            })
            .collect();
        let rpo = &record.metrics.rpo;
        assert!(!after.is_empty() && rpo.acknowledged > after.len() as u64 && rpo.lost == 0, "{rpo:?}");
    }
}

#[test]
fn a_graceful_failover_asks_the_operator_to_switch_over_as_kubectl_cnpg_promote_does() {
    let spec = postgres();
    let failover = spec.failover_delay;
    let cluster = FakeCluster::start(spec);
    let (record, said) = drill(&cluster, &scenario("graceful", false));
    assert_eq!(record.outcome, firedrill::timeline::Outcome::Recovered, "{said}");
    let answers = answered(&record);
    let at = |text: &str| answers.iter().find(|(_, t)| t.contains(text)).map(|(at, _)| *at);
    let asked = at("switch cluster db/pg over from pg-1 to pg-2: accepted (status.targetPrimary=pg-2)");
    assert!(asked.is_some_and(|a| a <= record.timeline.t0().unwrap() as i64), "{answers:?}");
    assert!(at("cluster db/pg: currentPrimary pg-2, targetPrimary pg-2").is_some(), "{answers:?}");
    // The patch is the one `kubectl cnpg promote` makes, on the status subresource.
    let patches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/clusters/pg/status"))
        .collect();
    assert_eq!(patches.len(), 1, "one status patch");
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    let body: serde_json::Value = serde_json::from_str(&patches[0].body).unwrap();
    assert_eq!(body["status"]["targetPrimary"], "pg-2");
    assert_eq!(body["status"]["phase"], "Switchover in progress");
    assert_eq!(body["status"]["phaseReason"], "Switching over to pg-2");
    // metav1.RFC3339Micro in UTC, as the plugin writes it: 2006-01-02T15:04:05.000000Z.
    let stamp = body["status"]["targetPrimaryTimestamp"].as_str().unwrap_or_default();
    let parsed = stamp.parse::<jiff::Timestamp>();
    assert!(stamp.len() == 27 && stamp.as_bytes()[19] == b'.' && parsed.is_ok(), "{stamp}");
    assert!(body["metadata"]["resourceVersion"].is_string(), "an optimistic lock: {body}");
    // The primary is demoted at once and the target promoted after the operator's delay.
    let rto = record.metrics.rto.seconds().expect("an RTO");
    eprintln!("fake db switchover: RTO {rto:.3} s (the fake's failover delay: {:.3} s)", failover.as_secs_f64());
    let (low, high) = (failover.saturating_sub(INTERVAL), failover + Duration::from_millis(100) + INTERVAL);
    assert!((low.as_secs_f64()..=high.as_secs_f64()).contains(&rto), "RTO {rto:.3} s\n{answers:?}");
}

#[test]
fn a_url_connection_string_to_a_service_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url.yaml");
    let text = "name: url
environment: {kind: kube, context: fake, namespace: db}
fault: {kind: db_failover, cluster: pg}
probes:
  - name: ledger
    check: {kind: write_ledger, dsn: \"postgresql://postgres@pg-rw.db.svc:5432/postgres\"}
";
    std::fs::write(&path, text).unwrap();
    let out = crate::common::run(&["validate", path.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!("{}:{}:", path.display(), crate::common::line_of(text, "- name: ledger"));
    assert!(stderr.contains(&at) && stderr.contains("not a URL"), "{stderr}");
}
