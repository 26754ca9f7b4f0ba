//! `db_failover` on a Patroni cluster (Zalando's postgres-operator, Spilo): its members are
//! the pods a label selector picks, each with Patroni's REST API on a port (8008 by default).
//!
//! The REST API is reached through a port-forward to a member's pod (the API server's
//! `pods/portforward`, one HTTP/1.1 request per forward). What is relied on, from Patroni's
//! REST API documentation (patroni.readthedocs.io, "Patroni REST API", "Cluster status
//! endpoints" and "Switchover and failover endpoints"):
//! - `GET /cluster` answers `{"members": [{"name", "role", "state", "lag", ...}], ...}`, where
//!   `role` is `leader` (`master` before Patroni 3), `replica`, `sync_standby` or
//!   `quorum_standby`, `state` is `running` or `streaming` for a healthy member, and `lag` is
//!   bytes behind the leader (or `unknown`). A member's name is its pod's name under Spilo.
//! - `POST /switchover` with `{"leader": NAME, "candidate": NAME}` answers 200 and a text
//!   (`Successfully switched over to "NAME"`) once done, 412 with the reason it is not possible
//!   now, 503 when it failed or its outcome is unknown. It is sent to the leader's API, as
//!   `patronictl switchover` does.
//!
//! `crash` deletes the leader's pod at once, as a CloudNativePG crash does
//! ([`failover::delete_primary`]). `graceful` asks Patroni to switch over to a healthy replica:
//! a synchronous standby first, else the first replica by name whose lag is at most 1 MiB
//! (Patroni's own `maximum_lag_on_failover` by default). Neither is journalled nor reverted: a
//! deleted pod is recreated by its StatefulSet and rejoins as a replica, and the new leader is
//! the recovery; switching back would be a second failover. The drill measures the recovery
//! with its probes (an `endpoints` probe on the cluster's master Service); the leader is not
//! followed as CloudNativePG's `currentPrimary` is (each read would be a port-forward).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::KubeError;
use super::failover;
use crate::scenario::{BlastRadiusExceeded, FailoverMode, PatroniCluster};
use crate::text::error_chain;

/// How long one request to a member's REST API may take, forward included; a switchover
/// waits for the new leader before it answers, which takes seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest lag, in bytes, of a replica a switchover goes to.
const MAX_LAG: u64 = 1024 * 1024;

/// `GET /cluster`'s answer, the part used.
#[derive(Debug, Deserialize)]
pub struct ClusterStatus {
    /// The members.
    pub members: Vec<Member>,
}

/// A member of `GET /cluster`.
#[derive(Debug, Deserialize)]
pub struct Member {
    /// Its name (its pod's, under Spilo).
    pub name: String,
    /// `leader`, `replica`, `sync_standby`, ...
    pub role: String,
    /// `running`, `streaming`, `stopped`, ...
    #[serde(default)]
    pub state: String,
    /// Bytes behind the leader, or `unknown`; absent for the leader.
    #[serde(default)]
    pub lag: Option<Value>,
}

impl ClusterStatus {
    /// The leader's name.
    pub fn leader(&self) -> Option<&str> {
        self.members.iter().find(|m| matches!(m.role.as_str(), "leader" | "master")).map(|m| m.name.as_str())
    }

    /// The replica a switchover goes to: running or streaming, at most [`MAX_LAG`] behind, a
    /// synchronous standby first, then by name.
    pub fn candidate(&self) -> Option<&str> {
        let healthy = |m: &&Member| {
            matches!(m.role.as_str(), "replica" | "sync_standby" | "quorum_standby")
                && matches!(m.state.as_str(), "running" | "streaming")
                && m.lag.as_ref().and_then(Value::as_u64).is_some_and(|lag| lag <= MAX_LAG)
        };
        let mut healthy: Vec<&Member> = self.members.iter().filter(healthy).collect();
        healthy.sort_by_key(|m| (m.role != "sync_standby", m.name.as_str()));
        healthy.first().map(|m| m.name.as_str())
    }
}

/// A cluster's name in messages: `namespace/selector`.
fn named(namespace: &str, patroni: &PatroniCluster) -> String {
    format!("{namespace}/{}", patroni.selector)
}

/// Sends one request to the REST API of the member `pod` through a port-forward: the HTTP
/// status and the body.
pub async fn request(
    client: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), KubeError> {
    let failed = |why: String| KubeError::PatroniRest {
        request: format!("{method} {path}"),
        pod: format!("{namespace}/{pod}"),
        why,
    };
    let exchange = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let mut forwarder = pods
            .portforward(pod, &[port])
            .await
            .map_err(|e| failed(error_chain(&KubeError::api(format!("forward port {port}"))(e))))?;
        let mut stream = forwarder.take_stream(port).ok_or_else(|| failed(format!("port {port} gave no stream")))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let sent = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(sent.as_bytes()).await.map_err(|e| failed(e.to_string()))?;
        let answer = read_answer(&mut stream).await.map_err(failed);
        drop(stream);
        forwarder.abort();
        answer
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))?
}

/// Reads an HTTP/1.x answer: its status and body, the body `Content-Length` long, or up to
/// the end of the stream when the answer gives no length (Patroni answers HTTP/1.0 and closes).
async fn read_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<(u16, String), String> {
    let mut read = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("the answer ended before its headers: {:?}", String::from_utf8_lossy(&read)));
        }
        read.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&read[..header_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", head.lines().next().unwrap_or_default()))?;
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = read.split_off(header_end);
    match length {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err(format!("the answer ended after {} of {length} bytes", body.len()));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        }
        None => {
            stream.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}

/// The cluster's status as the first member pod (by name, not being deleted) that answers
/// `GET /cluster` gives it; the reasons of those that did not, when none did.
pub async fn status(client: &Client, namespace: &str, patroni: &PatroniCluster) -> Result<ClusterStatus, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&patroni.selector))
        .await
        .map_err(KubeError::api(format!("list the members of Patroni cluster {}", named(namespace, patroni))))?;
    let mut members: Vec<String> =
        listed.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).map(ResourceExt::name_any).collect();
    members.sort();
    let mut why = Vec::new();
    for pod in &members {
        let answer = match request(client, namespace, pod, patroni.port, "GET", "/cluster", None).await {
            Ok((200, body)) => {
                serde_json::from_str::<ClusterStatus>(&body).map_err(|e| format!("{pod}: GET /cluster: {e}"))
            }
            Ok((status, body)) => Err(format!("{pod}: GET /cluster: HTTP {status}: {body}")),
            Err(e) => Err(error_chain(&e)),
        };
        match answer {
            Ok(status) => return Ok(status),
            Err(e) => why.push(e),
        }
    }
    let why = match members.is_empty() {
        true => "no pod matches the selector".to_string(),
        false => format!("no member answered GET /cluster ({})", why.join("; ")),
    };
    Err(KubeError::PatroniCluster { cluster: named(namespace, patroni), why })
}

/// The leader's name in `status`.
fn leader_of(namespace: &str, patroni: &PatroniCluster, status: &ClusterStatus) -> Result<String, KubeError> {
    status.leader().map(str::to_string).ok_or_else(|| KubeError::PatroniCluster {
        cluster: named(namespace, patroni),
        why: "GET /cluster names no leader".into(),
    })
}

/// Asks Patroni to switch over from its leader to a healthy replica (see the module docs):
/// the replica asked for. Patroni's answer is said either way; a refusal is the error.
pub async fn switchover(
    client: &Client,
    namespace: &str,
    patroni: &PatroniCluster,
    answered: &impl Fn(String),
) -> Result<String, KubeError> {
    let status = status(client, namespace, patroni).await?;
    let leader = leader_of(namespace, patroni, &status)?;
    let Some(candidate) = status.candidate().map(str::to_string) else {
        let why = format!("no replica is running or streaming at most {MAX_LAG} bytes behind leader {leader}");
        return Err(KubeError::PatroniCluster { cluster: named(namespace, patroni), why });
    };
    let asked = json!({ "leader": leader, "candidate": candidate });
    let (code, answer) = request(client, namespace, &leader, patroni.port, "POST", "/switchover", Some(&asked))
        .await
        .inspect_err(|e| answered(error_chain(e)))?;
    if code != 200 {
        let cluster = named(namespace, patroni);
        let e = KubeError::PatroniRefused { cluster, leader, candidate, status: code, answer };
        answered(error_chain(&e));
        return Err(e);
    }
    let cluster = named(namespace, patroni);
    answered(format!("Patroni cluster {cluster}: POST /switchover {asked} to {leader}: HTTP 200: {answer}"));
    Ok(candidate)
}

impl super::Inner {
    /// Fails the Patroni cluster's leader over (see the module docs): refused when a crash
    /// would delete more pods than `max_blast_radius` allows. Nothing to journal.
    pub(super) async fn fail_over_patroni(
        &self,
        patroni: &PatroniCluster,
        mode: FailoverMode,
    ) -> Result<(), KubeError> {
        let client = self.client()?;
        let namespace = &self.cluster.namespace;
        if let Some(limit) = self.max_blast_radius {
            let affected = vec![format!("{} leader", named(namespace, patroni))];
            if let Some(refused) = BlastRadiusExceeded::check(&self.fault, affected, limit) {
                return Err(refused.into());
            }
        }
        let answered = |what: String| self.answered(what);
        match mode {
            FailoverMode::Crash => {
                let status = status(&client, namespace, patroni).await?;
                let leader = leader_of(namespace, patroni, &status)?;
                let what = format!("Patroni cluster {}", named(namespace, patroni));
                let pod = failover::delete_primary(&client, namespace, &what, &leader, &answered).await?;
                self.targets.borrow_mut().push(pod);
            }
            FailoverMode::Graceful => {
                switchover(&client, namespace, patroni, &answered).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_is_a_healthy_replica_a_sync_standby_first() {
        let status: ClusterStatus = serde_json::from_value(json!({"members": [
            {"name": "db-0", "role": "leader", "state": "running", "timeline": 4},
            {"name": "db-1", "role": "replica", "state": "streaming", "lag": 0},
            {"name": "db-2", "role": "sync_standby", "state": "streaming", "lag": 0},
            {"name": "db-3", "role": "sync_standby", "state": "stopped", "lag": "unknown"},
        ]}))
        .unwrap();
        assert_eq!((status.leader(), status.candidate()), (Some("db-0"), Some("db-2")));
        let lagging: ClusterStatus = serde_json::from_value(json!({"members": [
            {"name": "db-0", "role": "master", "state": "running"},
            {"name": "db-1", "role": "replica", "state": "running", "lag": MAX_LAG + 1},
        ]}))
        .unwrap();
        assert_eq!((lagging.leader(), lagging.candidate()), (Some("db-0"), None));
    }
}
