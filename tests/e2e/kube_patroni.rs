//! `db_failover` on a Patroni cluster against the fake API server (kube_fake) and a Patroni
//! stand-in: a loopback HTTP server answering `GET /cluster` and `POST /switchover` with the
//! shapes of Patroni's REST API, which the fake's port-forward reaches from the member pods.
//! What is verified is the requests firedrill makes and how it reads the answers, not a real
//! Patroni's behaviour.

use std::sync::{Arc, Mutex};

use firedrill::env::kube::{connect, patroni};
use firedrill::scenario::PatroniCluster;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{json_files, load_record, texts};
use crate::kube_fake::{FakeCluster, FakeSpec};
use crate::kube_run::{errors, Drill};

/// The selector of the members, as Zalando's operator labels a Spilo cluster's pods.
const SELECTOR: &str = "application=spilo,cluster-name=shop-db";

/// A request the stand-in was sent: method, path, body.
type Asked = (String, String, String);

/// `GET /cluster` as Patroni answers it: leader shop-db-0, an asynchronous replica and a
/// synchronous standby, both streaming without lag.
fn cluster_status() -> Value {
    json!({
        "members": [
            {"name": "shop-db-0", "role": "leader", "state": "running", "api_url": "http://10.0.0.1:8008/patroni", "host": "10.0.0.1", "port": 5432, "timeline": 3},
            {"name": "shop-db-1", "role": "replica", "state": "streaming", "api_url": "http://10.0.0.2:8008/patroni", "host": "10.0.0.2", "port": 5432, "timeline": 3, "lag": 0},
            {"name": "shop-db-2", "role": "sync_standby", "state": "streaming", "api_url": "http://10.0.0.3:8008/patroni", "host": "10.0.0.3", "port": 5432, "timeline": 3, "lag": 0},
        ],
        "scope": "shop-db",
    })
}

/// Starts the stand-in: `GET /cluster` answers [`cluster_status`] (JSON with its length),
/// `POST /switchover` answers `switchover` as Patroni does (a text, HTTP/1.0, no length, the
/// connection closed). Its address and the requests it was sent.
async fn stand_in(switchover: (u16, &'static str)) -> (std::net::SocketAddr, Arc<Mutex<Vec<Asked>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let kept = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match connection.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&read[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while read.len() < end + length {
                    match connection.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&chunk[..n]),
                    }
                }
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap().to_string(), words.next().unwrap().to_string());
                let body = String::from_utf8_lossy(&read[end..end + length]).into_owned();
                kept.lock().unwrap().push((method.clone(), path.clone(), body));
                let answer = match (method.as_str(), path.as_str()) {
                    ("GET", "/cluster") => {
                        let body = cluster_status().to_string();
                        format!(
                            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    ("POST", "/switchover") => {
                        format!("HTTP/1.0 {} X\r\nContent-Type: text/plain\r\n\r\n{}", switchover.0, switchover.1)
                    }
                    _ => "HTTP/1.0 404 Not Found\r\n\r\n".to_string(),
                };
                let _ = connection.write_all(answer.as_bytes()).await;
                let _ = connection.shutdown().await;
            });
        }
    });
    (address, asked)
}

/// The fake with the three member pods of `shop-db` in namespace `db`, their port 8008
/// forwarded to the stand-in at `address`, and a CloudNativePG cluster `pg` beside them whose
/// `pg-rw` Service a drill's probe watches (the stand-in moves no endpoint).
fn members_spec(address: std::net::SocketAddr) -> FakeSpec {
    let nodes = ["node-a", "node-b", "node-c"];
    let mut spec = FakeSpec::new(&nodes).postgres("db", "pg", &nodes).forward("shop-db-", 8008, address);
    for (i, node) in ["node-a", "node-b", "node-c"].into_iter().enumerate() {
        spec = spec.object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("shop-db-{i}"), "namespace": "db", "labels": { "application": "spilo", "cluster-name": "shop-db" } },
            "spec": { "nodeName": node, "containers": [{ "name": "postgres", "image": "spilo" }] },
            "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] },
        }));
    }
    spec
}

/// The fake of [`members_spec`] and a client of it.
async fn cluster(address: std::net::SocketAddr, dir: &std::path::Path) -> (FakeCluster, kube::Client) {
    let cluster = FakeCluster::start(members_spec(address));
    firedrill::tls::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig(dir)).unwrap();
    let client = connect::connect_with(kubeconfig, "fake").await.unwrap();
    (cluster, client)
}

/// The `patroni:` of the scenario, its port the default.
fn members() -> PatroniCluster {
    serde_json::from_value(json!({ "selector": SELECTOR })).unwrap()
}

#[tokio::test]
async fn a_graceful_failover_posts_patronis_switchover_from_the_leader_to_the_sync_standby() {
    let dir = tempfile::tempdir().unwrap();
    let (address, asked) = stand_in((200, "Successfully switched over to \"shop-db-2\"")).await;
    let (_cluster, client) = cluster(address, dir.path()).await;
    let said = Mutex::new(Vec::new());
    let answered = |text: String| said.lock().unwrap().push(text);
    let candidate = patroni::switchover(&client, "db", &members(), &answered).await.unwrap();
    assert_eq!(candidate, "shop-db-2");

    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!((asked[0].0.as_str(), asked[0].1.as_str()), ("GET", "/cluster"));
    assert_eq!((asked[1].0.as_str(), asked[1].1.as_str()), ("POST", "/switchover"));
    let body: Value = serde_json::from_str(&asked[1].2).unwrap();
    assert_eq!(body, json!({ "leader": "shop-db-0", "candidate": "shop-db-2" }));
    let said = said.lock().unwrap().clone();
    let answer = format!(
        "Patroni cluster db/{SELECTOR}: POST /switchover {body} to shop-db-0: HTTP 200: Successfully switched over to \"shop-db-2\""
    );
    assert_eq!(said, [answer]);
}

#[tokio::test]
async fn a_switchover_patroni_refuses_is_the_failovers_error_in_patronis_words() {
    let dir = tempfile::tempdir().unwrap();
    let refusal = "switchover is not possible: no good candidates have been found";
    let (address, _) = stand_in((412, refusal)).await;
    let (_cluster, client) = cluster(address, dir.path()).await;
    let said = Mutex::new(Vec::new());
    let answered = |text: String| said.lock().unwrap().push(text);
    let e = patroni::switchover(&client, "db", &members(), &answered).await.unwrap_err();
    let text = firedrill::text::error_chain(&e);
    let expected = format!(
        "Patroni refused the switchover of cluster db/{SELECTOR} from shop-db-0 to shop-db-2: HTTP 412: {refusal}"
    );
    assert_eq!(text, expected);
    assert_eq!(said.lock().unwrap().clone(), [expected]);
}

/// Runs `firedrill run` of a Patroni failover in `mode` on the fake, the stand-in answering a
/// switchover with 200: the record's API answers, the binary's output and errors, and the
/// requests the fake was sent (method, path, body).
fn drill(mode: &str) -> (Vec<String>, String, Vec<Asked>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (address, _) = runtime.block_on(stand_in((200, "Successfully switched over to \"shop-db-2\"")));
    let cluster = FakeCluster::start(members_spec(address));
    let text = format!(
        "name: fake-patroni
environment: {{kind: kube, context: fake, namespace: db}}
fault: {{kind: db_failover, mode: {mode}, patroni: {{selector: \"{SELECTOR}\"}}}}
max_blast_radius: 1
probes:
  - name: rw
    check: {{kind: endpoints, service: pg-rw}}
    interval: 100ms
    timeout: 1s
stability: {{samples: 3, min_duration: 300ms}}
steady_state: {{samples: 3, timeout: 10s}}
targets: {{rto: 10s}}
deadline: 30s
"
    );
    let drill = Drill::new(&cluster, &text);
    let reports = drill.path("reports");
    let out = drill.firedrill(&[
        "run",
        "SCENARIO",
        "--context",
        "fake",
        "--seed",
        "1",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    let (stdout, stderr) = texts(&out);
    let files = json_files(&reports);
    assert_eq!(files.len(), 1, "one record\n{stdout}\n{stderr}");
    let record = load_record(&files[0]);
    let answers = record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            firedrill::timeline::EventKind::Answered { source, text }
                if source == firedrill::env::kube::API_EVIDENCE =>
            {
                Some(text.clone())
            }
            _ => None,
        })
        .collect();
    let requests = cluster.requests().into_iter().map(|r| (r.method, r.path, r.body)).collect();
    (answers, format!("{stdout}\n{stderr}\n{:?}", errors(&record)), requests)
}

#[test]
fn a_patroni_crash_deletes_the_leaders_pod_at_once_with_its_uid_as_a_precondition() {
    let (answers, said, requests) = drill("crash");
    let deleted = format!("Patroni cluster db/{SELECTOR}: delete primary pod db/shop-db-0 (uid ");
    assert!(
        answers.iter().any(|a| a.starts_with(&deleted) && a.ends_with(", grace period 0): accepted")),
        "{answers:?}\n{said}"
    );
    let deletes: Vec<_> =
        requests.iter().filter(|(method, path, _)| method == "DELETE" && path.contains("/pods/")).collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].1, "/api/v1/namespaces/db/pods/shop-db-0");
    let body: Value = serde_json::from_str(&deletes[0].2).unwrap();
    assert_eq!(body["gracePeriodSeconds"], 0);
    assert!(body["preconditions"]["uid"].as_str().is_some_and(|uid| !uid.is_empty()), "{body}");
}

#[test]
fn a_patroni_switchover_is_in_the_drills_timeline_in_patronis_words() {
    let (answers, said, requests) = drill("graceful");
    let answer = format!(
        "Patroni cluster db/{SELECTOR}: POST /switchover {{\"leader\":\"shop-db-0\",\"candidate\":\"shop-db-2\"}} to shop-db-0: HTTP 200: Successfully switched over to \"shop-db-2\""
    );
    assert!(answers.contains(&answer), "{answers:?}\n{said}");
    assert!(
        !requests.iter().any(|(method, path, _)| method == "DELETE" && path.contains("/pods/shop-db")),
        "nothing deleted"
    );
    let forwards = requests.iter().filter(|(_, path, _)| path.ends_with("/pods/shop-db-0/portforward")).count();
    assert_eq!(forwards, 2, "GET /cluster, then POST /switchover, each through a forward to the leader");
}
