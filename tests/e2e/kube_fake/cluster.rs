//! The fake cluster a test starts: its spec (nodes, workloads, other objects, the controllers'
//! delays, the verbs RBAC denies), the HTTP server on a loopback port with its own runtime
//! thread, the controller task, and the kubeconfig that points a client at it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use serde_json::Value;

use super::api::{self, Answer, WatchRequest};
use super::controller;
use super::controller::is_terminating;
use super::store::text;
use super::store::{RecordedRequest, State};
use super::subresource::{Exec, Forward};

/// How often the fake controllers run: well under any probe interval, so the delays a test
/// measures are the spec's within this much.
const CONTROLLER_TICK: Duration = Duration::from_millis(20);

/// A Deployment the fake starts with: label `app: <name>`, one Ready pod on each node named
/// (a node named twice holds two).
pub struct FakeDeployment {
    /// Its namespace.
    pub namespace: String,
    /// Its name and `app` label.
    pub name: String,
    /// Where its pods run at the start; the replicas are as many.
    pub nodes: Vec<String>,
}

/// A PostgreSQL cluster the fake operator runs: instance `<name>-<n>` on the n-th node named,
/// the first one primary.
pub struct FakeDatabase {
    /// Its namespace.
    pub namespace: String,
    /// The Cluster's name.
    pub name: String,
    /// Where its instances run at the start.
    pub nodes: Vec<String>,
}

/// A verb RBAC denies: SelfSubjectAccessReviews for it answer `allowed: false`.
pub struct Denied {
    /// `get`, `patch`, `create`, ...
    pub verb: String,
    /// `nodes`, or `pods/eviction` for a subresource.
    pub resource: String,
    /// The namespace, "" for a cluster-wide check.
    pub namespace: String,
}

/// What the fake cluster holds at the start and how its controllers behave.
pub struct FakeSpec {
    /// The nodes, schedulable and Ready.
    pub nodes: Vec<String>,
    /// The Deployments with their pods.
    pub deployments: Vec<FakeDeployment>,
    /// The DaemonSets (namespace, name): a pod on every node.
    pub daemon_sets: Vec<(String, String)>,
    /// Static pods (namespace, name, node): the kubelet's mirror pod `<name>-<node>`, which a
    /// drain leaves alone.
    pub static_pods: Vec<(String, String, String)>,
    /// The PostgreSQL clusters (CloudNativePG's `Cluster`).
    pub databases: Vec<FakeDatabase>,
    /// Any other objects (Services, PodDisruptionBudgets, NetworkPolicies) as manifests.
    pub objects: Vec<Value>,
    /// How long a ReplicaSet or DaemonSet lacks a pod before the replacement is created.
    pub recreate_delay: Duration,
    /// How long a pod takes from its creation to Ready.
    pub ready_delay: Duration,
    /// How long the PostgreSQL operator takes to promote a replica once the primary is down, or
    /// the target of a switchover.
    pub failover_delay: Duration,
    /// The pods' `terminationGracePeriodSeconds`, used when a delete names none.
    pub grace_period_seconds: i64,
    /// What RBAC denies.
    pub denied: Vec<Denied>,
    /// Whether NetworkPolicies hold (false: a CNI that fails open, which ignores them).
    pub enforce_network_policies: bool,
    /// Port-forwards' targets: pods whose name starts with the prefix forward the port to the
    /// local address (the fake runs no containers).
    pub forwards: Vec<(String, u16, SocketAddr)>,
    /// The program Job pods run, for real (see jobs.rs); `None`: Jobs are stored, not run.
    pub job_program: Option<PathBuf>,
}

impl FakeSpec {
    /// Nodes and nothing else; replacements after 300 ms, Ready 700 ms later, promotions after
    /// 500 ms, pods with the API's default grace period of 30 s.
    pub fn new(nodes: &[&str]) -> FakeSpec {
        FakeSpec {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            deployments: Vec::new(),
            daemon_sets: Vec::new(),
            static_pods: Vec::new(),
            databases: Vec::new(),
            objects: Vec::new(),
            recreate_delay: Duration::from_millis(300),
            ready_delay: Duration::from_millis(700),
            failover_delay: Duration::from_millis(500),
            grace_period_seconds: 30,
            denied: Vec::new(),
            enforce_network_policies: true,
            forwards: Vec::new(),
            job_program: None,
        }
    }

    /// Runs the pods of Jobs as local processes of `program`, their output their logs.
    pub fn run_jobs(mut self, program: &Path) -> FakeSpec {
        self.job_program = Some(program.to_path_buf());
        self
    }

    /// Adds a Deployment with a pod on each of `nodes`.
    pub fn deployment(mut self, namespace: &str, name: &str, nodes: &[&str]) -> FakeSpec {
        let nodes = nodes.iter().map(|n| n.to_string()).collect();
        self.deployments.push(FakeDeployment { namespace: namespace.to_string(), name: name.to_string(), nodes });
        self
    }

    /// Adds a DaemonSet.
    pub fn daemon_set(mut self, namespace: &str, name: &str) -> FakeSpec {
        self.daemon_sets.push((namespace.to_string(), name.to_string()));
        self
    }

    /// Adds a static pod on a node.
    pub fn static_pod(mut self, namespace: &str, name: &str, node: &str) -> FakeSpec {
        self.static_pods.push((namespace.to_string(), name.to_string(), node.to_string()));
        self
    }

    /// Adds a PostgreSQL cluster with an instance on each of `nodes`.
    pub fn postgres(mut self, namespace: &str, name: &str, nodes: &[&str]) -> FakeSpec {
        let nodes = nodes.iter().map(|n| n.to_string()).collect();
        self.databases.push(FakeDatabase { namespace: namespace.to_string(), name: name.to_string(), nodes });
        self
    }

    /// Adds an object from its manifest (with `kind` and `metadata.namespace`).
    pub fn object(mut self, manifest: Value) -> FakeSpec {
        self.objects.push(manifest);
        self
    }

    /// Makes NetworkPolicies stored but not enforced, as under a CNI that fails open.
    pub fn cni_fails_open(mut self) -> FakeSpec {
        self.enforce_network_policies = false;
        self
    }

    /// Forwards `port` of the pods named `<prefix>…` to a local address.
    pub fn forward(mut self, prefix: &str, port: u16, address: SocketAddr) -> FakeSpec {
        self.forwards.push((prefix.to_string(), port, address));
        self
    }

    /// Denies a verb on a resource in a namespace ("" for cluster-wide).
    pub fn deny(mut self, verb: &str, resource: &str, namespace: &str) -> FakeSpec {
        self.denied.push(Denied {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
        });
        self
    }
}

/// The state, the spec, and the revision watches wait on.
pub struct Shared {
    state: Mutex<State>,
    spec: FakeSpec,
    revisions: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Runs `f` under the lock, then wakes the watches if it changed anything.
    fn with<R>(&self, f: impl FnOnce(&mut State, &FakeSpec) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut state, &self.spec);
        let revision = state.revision();
        drop(state);
        self.revisions.send_if_modified(|seen| std::mem::replace(seen, revision) != revision);
        result
    }
}

/// A fake Kubernetes API server on a loopback port, with its controllers running; stopped
/// when dropped.
pub struct FakeCluster {
    shared: Arc<Shared>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeCluster {
    /// Seeds the cluster from `spec` and serves it.
    pub fn start(spec: FakeSpec) -> FakeCluster {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("an address").port();
        let mut state = State::default();
        controller::seed(&mut state, &spec, Instant::now());
        let (revisions, _) = tokio::sync::watch::channel(state.revision());
        let shared = Arc::new(Shared { state: Mutex::new(state), spec, revisions });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                tokio::select! {
                    _ = stopped => {}
                    () = serve(listener, serving) => {}
                }
            });
        });
        FakeCluster { shared, port, stop: Some(stop), thread: Some(thread) }
    }

    /// The server's address, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes a kubeconfig with the one context `fake` (namespace `default`, no credentials)
    /// pointing at the server, and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("the kubeconfig is written");
        path
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.with(|state, _| state.requests.clone())
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections and runs the controllers until the runtime stops.
async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let controlling = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CONTROLLER_TICK);
        loop {
            tick.tick().await;
            controlling.with(|state, spec| controller::reconcile(state, spec, Instant::now()));
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| respond(Arc::clone(&shared), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The response body: a whole JSON document, or a watch's stream.
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves one HTTP request.
async fn respond(
    shared: Arc<Shared>,
    mut request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, hyper::Error> {
    let upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = api::Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: body.to_vec(),
    };
    let answer = shared.with(|state, spec| api::handle(state, spec, &request, Instant::now()));
    let response = match answer {
        Answer::Json { code, body, warnings } => {
            let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
            *response.status_mut() = hyper::StatusCode::from_u16(code).expect("an HTTP code");
            for warning in warnings {
                let value = format!("299 - {}", Value::String(warning));
                response.headers_mut().append("warning", value.parse().expect("a header value"));
            }
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
            response
        }
        Answer::Log { output, follow } => {
            let mut response = hyper::Response::new(log_body(output, follow));
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain".parse().expect("a header value"));
            response
        }
        Answer::Text(text) => {
            let mut response = hyper::Response::new(Full::new(Bytes::from(text)).boxed_unsync());
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain".parse().expect("a header value"));
            response
        }
        Answer::Exec(exec) => {
            tokio::spawn(stream_exec(upgrade, exec));
            switching_protocols(&parts.headers)
        }
        Answer::Forward(forward) => {
            tokio::spawn(stream_forward(Arc::clone(&shared), upgrade, forward));
            switching_protocols(&parts.headers)
        }
        Answer::Watch(watch) => {
            let mut response = hyper::Response::new(watch_body(shared, watch));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
            response
        }
    };
    Ok(response)
}

/// A watch's events, one JSON line each, as they happen, until `timeoutSeconds` or until the
/// client goes away.
fn watch_body(shared: Arc<Shared>, watch: WatchRequest) -> Body {
    let revisions = shared.revisions.subscribe();
    let deadline = tokio::time::Instant::now() + watch.timeout;
    let start = (shared, watch, revisions, VecDeque::new());
    let events =
        futures_util::stream::unfold(start, move |(shared, mut watch, mut revisions, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    return Some((Ok(Frame::data(Bytes::from(line))), (shared, watch, revisions, pending)));
                }
                // Seen before reading, so that a change made after the read wakes this loop.
                revisions.borrow_and_update();
                pending.extend(shared.with(|state, _| watch.next_lines(state)));
                if pending.is_empty() {
                    match tokio::time::timeout_at(deadline, revisions.changed()).await {
                        Ok(Ok(())) => {}
                        _ => return None,
                    }
                }
            }
        });
    StreamBody::new(events).boxed_unsync()
}

/// A running pod's log: what its program printed so far, and, when followed, what it prints
/// next, until it ended.
fn log_body(output: super::jobs::Output, follow: bool) -> Body {
    let chunks = futures_util::stream::unfold((output, 0, false), move |(output, sent, done)| async move {
        loop {
            if done {
                return None;
            }
            let (bytes, ended) = output.since(sent);
            let last = !follow || ended;
            if !bytes.is_empty() || last {
                let sent = sent + bytes.len();
                return Some((Ok(Frame::data(Bytes::from(bytes))), (output, sent, last)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// Sends an exec's output over the upgraded connection as the kubelet does on the
/// `v4.channel.k8s.io` protocol: stdout on channel 1, stderr on 2, then the outcome as a Status
/// on channel 3 (a non-zero exit is a `NonZeroExitCode` failure with the code as its cause).
async fn stream_exec(upgrade: hyper::upgrade::OnUpgrade, exec: Exec) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    let Ok(upgraded) = upgrade.await else { return };
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let status = if exec.code == 0 {
        serde_json::json!({ "metadata": {}, "status": "Success" })
    } else {
        serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {}", exec.code),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": exec.code.to_string() }] },
        })
    };
    let frames = [(1u8, exec.stdout.into_bytes()), (2, exec.stderr.into_bytes()), (3, status.to_string().into_bytes())];
    for (channel, bytes) in frames {
        if !bytes.is_empty() && socket.send(Message::binary([vec![channel], bytes].concat())).await.is_err() {
            return;
        }
    }
    let _ = socket.close(None).await;
}

/// The 101 answer that upgrades an exec or port-forward to a WebSocket on the
/// `v4.channel.k8s.io` protocol.
fn switching_protocols(request: &hyper::HeaderMap) -> hyper::Response<Body> {
    let key = request.get(hyper::header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec()).unwrap_or_default();
    let mut response = hyper::Response::new(Full::new(Bytes::new()).boxed_unsync());
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(hyper::header::UPGRADE, "websocket".parse().expect("a header value"));
    headers.insert(hyper::header::CONNECTION, "Upgrade".parse().expect("a header value"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    headers.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, accept.parse().expect("a header value"));
    headers.insert(hyper::header::SEC_WEBSOCKET_PROTOCOL, "v4.channel.k8s.io".parse().expect("a header value"));
    response
}

/// Carries a port-forward's bytes between the WebSocket (data on channel 0, errors on 1, each
/// opened by a frame with the port) and a connection to the local target, until either side
/// closes or the pod goes: then "lost connection to pod" on the error channel, as a forward
/// dies with its pod.
async fn stream_forward(shared: Arc<Shared>, upgrade: hyper::upgrade::OnUpgrade, forward: Forward) {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    let Ok(upgraded) = upgrade.await else { return };
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let [low, high] = forward.port.to_le_bytes();
    for channel in [0u8, 1] {
        if socket.send(Message::binary(vec![channel, low, high])).await.is_err() {
            return;
        }
    }
    let error = |why: String| Message::binary([vec![1u8], why.into_bytes()].concat());
    let connection = match forward.target {
        Some(target) => tokio::net::TcpStream::connect(target).await.ok(),
        None => None,
    };
    let Some(mut connection) = connection else {
        let why = format!(
            "error forwarding port {} to pod {}, uid {}: connection refused",
            forward.port, forward.pod, forward.uid
        );
        let _ = socket.send(error(why)).await;
        let _ = socket.close(None).await;
        return;
    };
    let mut revisions = shared.revisions.subscribe();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Binary(bytes))) if bytes.len() > 1 && bytes[0] == 0 => {
                    if connection.write_all(&bytes[1..]).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            read = connection.read(&mut buffer) => match read {
                Ok(n) if n > 0 => {
                    if socket.send(Message::binary([&[0u8][..], &buffer[..n]].concat())).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            changed = revisions.changed() => {
                let alive = changed.is_ok() && shared.with(|state, _| {
                    state.get("pods", &forward.namespace, &forward.pod).is_some_and(|p| text(p, "/metadata/uid") == forward.uid && !is_terminating(p))
                });
                if !alive {
                    let _ = socket.send(error(format!("lost connection to pod {}", forward.pod))).await;
                    break;
                }
            }
        }
    }
    let _ = socket.close(None).await;
}
