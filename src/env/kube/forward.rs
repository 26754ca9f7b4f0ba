//! `sql` and `write_ledger` probes of a database inside the cluster, through a port-forward.
//!
//! A connection string whose `host` is a Service's cluster name, `host=NAME.NAMESPACE.svc`
//! (or `NAME.NAMESPACE.svc.cluster.local`), in the `key=value` form, names what a pod would
//! connect to: firedrill cannot resolve it from this machine, so the probe connects instead to
//! a loopback port of its own, and each connection made there is forwarded (the API server's
//! `pods/portforward`) to the pod the Service routes to at that moment: the first ready
//! endpoint of its EndpointSlices, on the slice's port. A forward reaches one pod and dies
//! with it, so a connection never follows a failover by itself; the probe's next connection
//! (the write ledger opens one after a failed write) is resolved again and reaches the new
//! primary. `port` is the Service's port (5432 when absent); TLS works as usual, but a
//! `verify-full` connection checks the certificate for 127.0.0.1, not for the Service's name.
//! A connection string with any other host is used as it is.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::net::{TcpListener, TcpStream};

use super::error::KubeError;
use super::{endpoints, Answered, API_EVIDENCE};
use crate::probe::ledger::Ledger;
use crate::scenario::{Check, Probe};
use crate::text::error_chain;

/// PostgreSQL's port, when a connection string gives none.
const DEFAULT_PORT: u16 = 5432;

/// A Service a connection string names, and its port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceTarget {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service.
    pub service: String,
    /// The Service's port.
    pub port: u16,
}

impl std::fmt::Display for ServiceTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service {}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// The `key=value` pairs of a connection string (values without spaces or quotes).
fn pairs(dsn: &str) -> impl Iterator<Item = (&str, &str)> {
    dsn.split_whitespace().filter_map(|pair| pair.split_once('='))
}

/// The Service a `key=value` connection string's `host` names, if it names one.
pub fn service_in(dsn: &str) -> Option<ServiceTarget> {
    let host = pairs(dsn).find(|(k, _)| *k == "host")?.1;
    let name = host.strip_suffix(".svc.cluster.local").or_else(|| host.strip_suffix(".svc"))?;
    let (service, namespace) = name.split_once('.')?;
    let label = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !label(service) || !label(namespace) {
        return None;
    }
    let port = match pairs(dsn).find(|(k, _)| *k == "port") {
        Some((_, port)) => port.parse().ok()?,
        None => DEFAULT_PORT,
    };
    Some(ServiceTarget { namespace: namespace.into(), service: service.into(), port })
}

/// The connection string with its host and port replaced by `local`.
pub fn through(dsn: &str, local: SocketAddr) -> String {
    let mut words: Vec<String> = dsn
        .split_whitespace()
        .filter(|w| !w.starts_with("port="))
        .map(|w| if w.starts_with("host=") { format!("host={}", local.ip()) } else { w.to_string() })
        .collect();
    words.push(format!("port={}", local.port()));
    words.join(" ")
}

/// What a forward has done, shared with its connections' tasks.
#[derive(Default)]
struct Log {
    /// The pod the last connection reached, or why none was.
    last: Option<String>,
    /// Each change of it, not yet taken as timeline events.
    changes: Vec<Answered>,
}

impl Log {
    /// Keeps where a connection went: a timeline event when that changed.
    fn note(&mut self, what: String) {
        if self.last.as_deref() == Some(what.as_str()) {
            return;
        }
        self.last = Some(what.clone());
        self.changes.push(Answered { at: tokio::time::Instant::now(), source: API_EVIDENCE.into(), text: what });
    }
}

/// A loopback port whose connections are forwarded to the pod behind a Service; dropping it
/// closes the port.
pub struct ServiceForward {
    local: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ServiceForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ServiceForward {
    /// Listens on a loopback port for connections to `target`.
    pub async fn start(client: &Client, target: ServiceTarget) -> Result<ServiceForward, KubeError> {
        let bound = TcpListener::bind(("127.0.0.1", 0)).await;
        let listener = bound.map_err(|source| KubeError::Listen { target: target.to_string(), source })?;
        let local = listener.local_addr().map_err(|source| KubeError::Listen { target: target.to_string(), source })?;
        let log = Arc::new(Mutex::new(Log::default()));
        let task = tokio::spawn(accept(listener, client.clone(), target, log.clone()));
        Ok(ServiceForward { local, log, task })
    }

    /// The loopback address the probe connects to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The changes of the pod reached since the last call, as timeline events.
    pub fn take_changes(&self) -> Vec<Answered> {
        std::mem::take(&mut self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).changes)
    }
}

/// Forwards each connection, each on its own task, all of which end with this one (when the
/// forward is dropped).
async fn accept(listener: TcpListener, client: Client, target: ServiceTarget, log: Arc<Mutex<Log>>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((connection, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let (client, target, log) = (client.clone(), target.clone(), log.clone());
        connections.spawn(async move {
            if let Err(e) = forward(connection, &client, &target, &log).await {
                log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).note(error_chain(&e));
            }
        });
    }
}

/// Forwards one connection to the pod behind the Service now, until either side closes (a
/// pod that goes ends its forward); which pod is noted once the forward is open.
async fn forward(
    mut connection: TcpStream,
    client: &Client,
    target: &ServiceTarget,
    log: &Mutex<Log>,
) -> Result<(), KubeError> {
    let (pod, port) = backend(client, target).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let mut forwarder = pods
        .portforward(&pod, &[port])
        .await
        .map_err(KubeError::api(format!("forward port {port} of pod {}/{pod}", target.namespace)))?;
    let Some(mut upstream) = forwarder.take_stream(port) else {
        return Err(KubeError::NoBackend { target: target.to_string(), why: format!("pod {pod} gave no stream") });
    };
    let reached = format!("port-forward to {target}: through pod {pod}");
    log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).note(reached);
    let _ = tokio::io::copy_bidirectional(&mut connection, &mut upstream).await;
    drop(upstream);
    forwarder.abort();
    Ok(())
}

/// The pod the Service routes to now (its slices' first ready endpoint), and the port its
/// slices give for the Service's port: the only one, or the one of the same number.
async fn backend(client: &Client, target: &ServiceTarget) -> Result<(String, u16), KubeError> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &target.namespace);
    let listed = slices
        .list(&ListParams::default().labels(&endpoints::selector(&target.service)))
        .await
        .map_err(KubeError::api(format!("list the EndpointSlices of {target}")))?;
    for slice in &listed.items {
        let Some(pod) = endpoints::ready_in(slice).into_iter().next() else { continue };
        let ports: Vec<u16> = slice.ports.iter().flatten().filter_map(|p| p.port).map(|p| p as u16).collect();
        let port = match ports[..] {
            [only] => only,
            _ => target.port,
        };
        return Ok((pod, port));
    }
    Err(KubeError::NoBackend { target: target.to_string(), why: "no ready endpoint".into() })
}

impl super::Inner {
    /// The connection string a probe uses now: one naming a Service goes through its
    /// port-forward (see the module docs), opened at its first use; any other as it is.
    pub(super) async fn dsn(&self, dsn: &str) -> Result<String, KubeError> {
        let Some(target) = service_in(dsn) else { return Ok(dsn.to_string()) };
        let open = self.forwards.borrow().get(&target).cloned();
        let forward = match open {
            Some(forward) => forward,
            None => {
                let started = Rc::new(ServiceForward::start(&self.client()?, target.clone()).await?);
                self.forwards.borrow_mut().entry(target).or_insert(started).clone()
            }
        };
        Ok(through(dsn, forward.local()))
    }

    /// A write ledger probe's ledger, and its connection string now.
    pub(super) async fn ledger(&self, probe: usize, spec: &Probe) -> Result<(Rc<Ledger>, String), KubeError> {
        let Check::WriteLedger { dsn, table } = &spec.check else {
            return Err(KubeError::NotALedger { probe: spec.name.clone() });
        };
        let dsn = self.dsn(dsn).await?;
        let new = || Rc::new(Ledger::new(table, &self.run_id));
        Ok((self.ledgers.borrow_mut().entry(probe).or_insert_with(new).clone(), dsn))
    }

    /// Removes the write ledgers' records (and a table a ledger created) from the team's
    /// database, through the forwards still open; each removal bounded, so that a database
    /// that no longer answers cannot hold the teardown.
    pub(super) async fn remove_ledgers(&self) -> Result<(), KubeError> {
        const LIMIT: Duration = Duration::from_secs(5);
        let ledgers: Vec<_> = self.ledgers.borrow().values().cloned().collect();
        let mut failed = None;
        for ledger in ledgers {
            match tokio::time::timeout(LIMIT, ledger.remove()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = failed.or(Some(KubeError::Ledger(e))),
                Err(_) => failed = failed.or(Some(KubeError::LedgerLeft { limit: LIMIT.as_secs() })),
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_host_is_forwarded_and_any_other_is_not() {
        let dsn = "host=shop-db-rw.shop.svc user=app dbname=app connect_timeout=2";
        let target = service_in(dsn).unwrap();
        assert_eq!(target, ServiceTarget { namespace: "shop".into(), service: "shop-db-rw".into(), port: 5432 });
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(through(dsn, local), "host=127.0.0.1 user=app dbname=app connect_timeout=2 port=40000");
        let long = service_in("host=pg-rw.db.svc.cluster.local port=6432").unwrap();
        assert_eq!((long.service.as_str(), long.namespace.as_str(), long.port), ("pg-rw", "db", 6432));
        for other in ["host=localhost port=5432", "host=db.example.com", "postgresql://pg-rw.db.svc/app", "host=pg.svc"]
        {
            assert_eq!(service_in(other), None, "{other}");
        }
    }
}
