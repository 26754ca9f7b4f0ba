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

use crate::kube_fake::{FakeCluster, FakeSpec};

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
/// forwarded to the stand-in at `address`; and a client of it.
async fn cluster(address: std::net::SocketAddr, dir: &std::path::Path) -> (FakeCluster, kube::Client) {
    let mut spec = FakeSpec::new(&["node-a", "node-b", "node-c"]).forward("shop-db-", 8008, address);
    for (i, node) in ["node-a", "node-b", "node-c"].into_iter().enumerate() {
        spec = spec.object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("shop-db-{i}"), "namespace": "db", "labels": { "application": "spilo", "cluster-name": "shop-db" } },
            "spec": { "nodeName": node, "containers": [{ "name": "postgres", "image": "spilo" }] },
            "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] },
        }));
    }
    let cluster = FakeCluster::start(spec);
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
