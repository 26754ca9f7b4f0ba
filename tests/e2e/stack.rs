//! The reference stack's parts run as the binary, as drills run them in containers: the load
//! balancer in front of two small servers on loopback ports (turns, a backend stopping and
//! coming back, its own endpoints, SIGTERM), and the web service waiting for a database that
//! is not there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::common::{firedrill, run, texts};

/// A backend: an HTTP/1.1 keep-alive server on a loopback port, answering its name at every
/// path (`/healthz` included), and other paths after `slow`. Dropped or stopped, it closes
/// its listener and every connection, as a killed process does.
struct Backend {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(name: &'static str, port: u16) -> Backend {
        Backend::slow(name, port, Duration::ZERO)
    }

    fn slow(name: &'static str, port: u16, slow: Duration) -> Backend {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        // Coming back on its port while the old connections are in TIME_WAIT.
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, port_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async move {
                socket.bind(([127, 0, 0, 1], port).into()).expect("the backend's port");
                let listener = socket.listen(128).expect("listening");
                bound.send(listener.local_addr().expect("an address").port()).expect("the test waits");
                let mut stopped = std::pin::pin!(stopped);
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| async move {
                        if request.uri().path() != "/healthz" {
                            tokio::time::sleep(slow).await;
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(Bytes::from(
                            name,
                        ))))
                    });
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                }
            });
            // The runtime is dropped here with its connection tasks: their sockets close.
        });
        let port = port_rx.recv().expect("the backend binds");
        Backend { port, stop: Some(stop), thread: Some(thread) }
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the backend stops");
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `firedrill stack ...`, killed if the test fails before it is stopped.
struct Part(Option<Child>);

impl Part {
    fn start(args: &[&str]) -> Part {
        let child = firedrill().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("it starts");
        Part(Some(child))
    }

    fn pid(&self) -> String {
        self.0.as_ref().expect("running").id().to_string()
    }

    /// Sends SIGTERM; the exit code, how long it took to exit, and what it printed.
    fn terminate(mut self) -> (Option<i32>, Duration, String) {
        let kill = std::process::Command::new("kill").args(["-TERM", &self.pid()]).status().expect("kill runs");
        assert!(kill.success());
        let sent = Instant::now();
        let mut child = self.0.take().expect("running");
        while child.try_wait().expect("waitable").is_none() {
            if sent.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = sent.elapsed();
        let out = child.wait_with_output().expect("its output");
        let (stdout, stderr) = texts(&out);
        (out.status.code(), took, format!("{stdout}{stderr}"))
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address").port()
}

/// `GET path` on a new connection: status and body, or why there was none.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("no head in {answer:?}"))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Polls `GET path` until its status is `status`; how long that took.
fn wait_for(port: u16, path: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = get(port, path);
        if matches!(answer, Ok((s, _)) if s == status) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "`{path}` did not answer {status} within {limit:?}: {answer:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The bodies of `n` requests through the balancer, each of which must succeed.
fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match get(port, &format!("/item/{i}")) {
            Ok((200, body)) => body,
            other => panic!("request {i} through the balancer: {other:?}"),
        })
        .collect()
}

fn alternate(bodies: &[String]) -> bool {
    bodies.windows(2).all(|w| w[0] != w[1]) && bodies.iter().any(|b| b == "a") && bodies.iter().any(|b| b == "b")
}

fn lb(port: u16, backends: &[u16], interval: &str) -> Part {
    let listen = format!("127.0.0.1:{port}");
    let mut args =
        vec!["stack".to_string(), "lb".into(), "--listen".into(), listen, "--interval".into(), interval.into()];
    for b in backends {
        args.extend(["--backend".into(), format!("127.0.0.1:{b}")]);
    }
    let part = Part::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for(port, "/lb/status", 200, Duration::from_secs(10));
    part
}

#[test]
fn the_balancer_takes_turns_routes_around_a_stopped_backend_and_finds_it_again() {
    let a = Backend::start("a", 0);
    let mut b = Backend::start("b", 0);
    let b_port = b.port;
    // `passive` never checks again after starting: what it learns, it learns from requests.
    // `active` checks every 100ms.
    let (passive_port, active_port) = (free_port(), free_port());
    let passive = lb(passive_port, &[a.port, b.port], "1h");
    let active = lb(active_port, &[a.port, b.port], "100ms");

    for port in [passive_port, active_port] {
        assert_eq!(get(port, "/lb/capacity?min=2"), Ok((200, "2 of 2 backends healthy\n".into())));
        let turns = bodies(port, 10);
        assert!(alternate(&turns), "the backends should take turns: {turns:?}");
    }
    let (status, body) = get(passive_port, "/lb/status").expect("an answer");
    let status_json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status, 200);
    assert_eq!(status_json["healthy"], 2);
    assert_eq!(status_json["backends"][1]["address"], format!("127.0.0.1:{b_port}"));
    assert_eq!(status_json["backends"][1]["ip"], "127.0.0.1");
    assert_eq!(get(passive_port, "/lb/capacity?min=x").expect("an answer").0, 400);

    b.stop();
    // The kept-alive connections to `b` are closed; connecting to it is refused. Nothing
    // was sent on either, so every request is retried on `a`.
    let started = Instant::now();
    let after = bodies(passive_port, 20);
    let took = started.elapsed();
    assert!(after.iter().all(|body| body == "a"), "{after:?}");
    assert_eq!(
        get(passive_port, "/lb/capacity?min=2"),
        Ok((503, "1 of 2 backends healthy; 2 needed\n".into())),
        "the refused connection marked `b` down"
    );
    assert_eq!(get(passive_port, "/lb/capacity?min=1").expect("an answer").0, 200);
    let noticed = wait_for(active_port, "/lb/capacity?min=2", 503, Duration::from_secs(2));
    assert!(bodies(active_port, 10).iter().all(|body| body == "a"));

    let b = Backend::start("b", b_port);
    let found = wait_for(active_port, "/lb/capacity?min=2", 200, Duration::from_secs(3));
    let turns = bodies(active_port, 10);
    assert!(alternate(&turns), "`b` should take turns again: {turns:?}");
    println!(
        "20 requests after the stop: {took:?}, all 200; the active balancer saw `b` down after {noticed:?} and up \
         again {found:?} after its restart"
    );

    let (code, took, log) = passive.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    assert!(log.contains(&format!("lb: backend 127.0.0.1:{b_port} down (connect: connection refused")), "{log}");
    let (code, _, log) = active.terminate();
    assert_eq!(code, Some(0), "{log}");
    let down = log.find(&format!("lb: backend 127.0.0.1:{b_port} down (health check: ")).expect(&log);
    let up = log.rfind(&format!("lb: backend 127.0.0.1:{b_port} up")).expect(&log);
    assert!(down < up, "{log}");
    println!("active balancer's log:\n{log}");
    drop((a, b));
}

#[test]
fn a_balancer_with_no_backend_up_answers_503() {
    let (port, nothing) = (free_port(), free_port());
    let part = lb(port, &[nothing], "100ms");
    assert_eq!(get(port, "/").expect("an answer"), (503, "no healthy backend\n".into()));
    assert_eq!(
        get(port, "/lb/capacity?min=1").expect("an answer"),
        (503, "0 of 1 backends healthy; 1 needed\n".into())
    );
    let (status, body) = get(port, "/lb/status").expect("an answer");
    assert_eq!(
        (status, body.trim()),
        (
            200,
            format!(
                r#"{{"backends":[{{"address":"127.0.0.1:{nothing}","healthy":false,"ip":"127.0.0.1"}}],"healthy":0}}"#
            )
            .as_str()
        )
    );
    let (code, _, log) = part.terminate();
    assert_eq!(code, Some(0));
    assert!(log.contains("down (health check: connect: connection refused"), "{log}");
}

#[test]
fn a_backend_slower_than_the_timeout_gives_504() {
    let backend = Backend::slow("a", 0, Duration::from_secs(2));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let address = format!("127.0.0.1:{}", backend.port);
    let part = Part::start(&["stack", "lb", "--listen", &listen, "--backend", &address, "--timeout", "300ms"]);
    wait_for(port, "/lb/status", 200, Duration::from_secs(10));
    let started = Instant::now();
    let answer = get(port, "/slow").expect("an answer");
    let took = started.elapsed();
    assert_eq!(answer, (504, format!("backend {address} timed out after 300ms\n")));
    assert!(took < Duration::from_millis(600), "answered after {took:?}");
    // A timeout is not a refused connection: the backend stays in.
    assert_eq!(get(port, "/lb/capacity?min=1").expect("an answer").0, 200);
    let (code, _, _) = part.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn the_shop_waits_for_its_database_without_listening_and_stops_on_sigterm() {
    let (port, db) = (free_port(), free_port());
    let shop = Part::start(&[
        "stack",
        "shop",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--db",
        &format!("host=127.0.0.1 port={db} user=postgres password=hunter2 connect_timeout=1"),
        "--s3",
        "http://127.0.0.1:1",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    assert!(get(port, "/healthz").is_err(), "the shop listens before its database answers");
    let (code, took, log) = shop.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    assert!(log.contains("shop: database error: error connecting to server: Connection refused"), "{log}");
    assert!(log.contains("; retrying in 100ms"), "{log}");
    assert!(log.contains("shop: SIGTERM while starting: exiting"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
}

#[test]
fn bad_stack_flags_exit_2_with_the_reason() {
    for (args, expected) in [
        (&["stack", "lb"][..], "--backend"),
        (&["stack", "lb", "--backend", "web-1"], "backend `web-1`: expected HOST:PORT"),
        (&["stack", "lb", "--backend", "web-1:80", "--interval", "5"], "a number needs a unit"),
        (&["stack", "shop", "--db", "host=db", "--s3", "s3:5000"], "not an S3 endpoint URL"),
        (&["stack", "shop", "--db", "host=db", "--s3", "http://s3", "--pool", "0"], "at least one connection"),
        (&["stack", "shop", "--s3", "http://s3"], "--db"),
    ] {
        let out = run(args);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?} should say `{expected}`: {stderr}");
    }
}
