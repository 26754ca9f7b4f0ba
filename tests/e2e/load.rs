//! The traffic generator against a local HTTP/1.1 server on loopback: the rate it reaches,
//! latency when the server is slowed on purpose, and errors by class.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use firedrill::load::{self, ErrorClass, Model, Plan, Share, Stage, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A keep-alive HTTP/1.1 server on a loopback port, answering every request after `delay`
/// with `status`, one request at a time per connection. Returns its URL and a request count.
pub(crate) fn server(delay: Duration, status: u16) -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            tokio::time::sleep(delay).await;
                            count.fetch_add(1, Ordering::Relaxed);
                            let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
    });
    (url, served)
}

fn plan(url: &str, model: Model, connections: usize) -> Plan {
    Plan {
        targets: vec![Target::get(url)],
        model,
        connections,
        timeout: Duration::from_secs(5),
        http2: false,
        bucket: Duration::from_secs(1),
        ca: None,
        share: Share::WHOLE,
        start_at: None,
    }
}

fn open(rate: f64, secs: u64) -> Model {
    Model::Open(vec![Stage::constant(rate, Duration::from_secs(secs))])
}

#[test]
fn the_requested_rate_is_reached_when_the_server_keeps_up() {
    let (url, served) = server(Duration::ZERO, 200);
    let report = load::run(&plan(&url, open(1000.0, 3), 64)).expect("the run completes");
    let s = &report.summary;
    eprintln!("1000/s for 3 s: sent {} at {:.1}/s, {} connections", s.sent, s.send_rate, report.connections);
    assert_eq!(s.sent, 3000);
    assert_eq!(s.ok, 3000);
    assert_eq!(served.load(Ordering::Relaxed), 3000);
    assert!((s.send_rate - 1000.0).abs() / 1000.0 < 0.02, "rate {}", s.send_rate);
    assert_eq!(s.buckets.len(), 3);
    assert!(s.buckets.iter().all(|b| b.sent == 1000), "{:?}", s.buckets);
    // Keep-alive: far fewer connections than requests.
    assert!(report.connections < 64, "{} connections", report.connections);
}

#[test]
fn a_slow_server_raises_latency_not_lowers_the_rate() {
    // 50 ms per answer at 400/s needs about 20 connections; 256 are allowed.
    let (url, _) = server(Duration::from_millis(50), 200);
    let report = load::run(&plan(&url, open(400.0, 3), 256)).expect("the run completes");
    let s = &report.summary;
    eprintln!(
        "slow server: sent {} at {:.1}/s, p50 {:?} ms, {} connections",
        s.sent, s.send_rate, s.latency.p50_ms, report.connections
    );
    assert!((s.send_rate - 400.0).abs() / 400.0 < 0.02, "rate {}", s.send_rate);
    assert!(s.latency.p50_ms.expect("latency") >= 50.0);
}

#[test]
fn waiting_for_a_connection_counts_as_latency() {
    // 5 connections at 50 ms each serve 100/s; 200/s is asked. A closed-loop tool would send
    // 100/s and report 50 ms. Here the queue grows, and latency counted from when each request
    // was due grows with it, while the server's own time stays 50 ms.
    let (url, _) = server(Duration::from_millis(50), 200);
    let report = load::run(&plan(&url, open(200.0, 2), 5)).expect("the run completes");
    let s = &report.summary;
    let service = s.service_time.p50_ms.expect("service time");
    let latency = s.latency.p99_ms.expect("latency");
    eprintln!("5 connections at 200/s: service p50 {service:.1} ms, latency p99 {latency:.1} ms");
    assert!((50.0..80.0).contains(&service), "service p50 {service}");
    assert!(latency > 1000.0, "latency p99 {latency}: the queue did not count");
    let first = s.buckets[0].p99_ms.expect("first second");
    let last = s.buckets[1].p99_ms.expect("second second");
    assert!(last > first, "latency did not rise over time: {first} then {last}");
}

#[test]
fn errors_are_classified() {
    let (url, _) = server(Duration::ZERO, 503);
    let report = load::run(&plan(&url, open(100.0, 1), 8)).expect("the run completes");
    assert_eq!(report.summary.errors.get(&ErrorClass::Http5xx), Some(&100));
    assert_eq!(report.summary.buckets[0].error_rate, 1.0);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/", closed.local_addr().expect("an address"));
    drop(closed);
    let report = load::run(&plan(&url, open(50.0, 1), 8)).expect("the run completes");
    assert_eq!(report.summary.errors.get(&ErrorClass::Refused), Some(&50));

    let (url, _) = server(Duration::from_millis(300), 200);
    let mut slow = plan(&url, open(20.0, 1), 64);
    slow.timeout = Duration::from_millis(100);
    let report = load::run(&slow).expect("the run completes");
    assert_eq!(report.summary.errors.get(&ErrorClass::Timeout), Some(&20));
}

#[test]
fn the_closed_model_keeps_its_users_busy() {
    let (url, served) = server(Duration::from_millis(10), 200);
    let report = load::run(&plan(&url, Model::Closed { users: 4, duration: Duration::from_secs(1) }, 4)).expect("runs");
    let s = &report.summary;
    // 4 users, about 10 ms each: roughly 400 requests in a second, never more.
    assert!((250..=420).contains(&s.sent), "sent {}", s.sent);
    assert_eq!(served.load(Ordering::Relaxed), s.sent);
    assert_eq!(report.connections, 4);
    assert_eq!(report.requested_rate, None);
}

/// An HTTP/2 (cleartext, prior knowledge) server on a loopback port, answering at once.
fn h2_server() -> String {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    url
}

#[test]
fn http2_multiplexes_the_load_over_few_connections() {
    let url = h2_server();
    let mut h2 = plan(&url, open(500.0, 2), 2);
    h2.http2 = true;
    let report = load::run(&h2).expect("the run completes");
    let s = &report.summary;
    assert_eq!((s.sent, s.ok), (1000, 1000), "{:?}", s.errors);
    assert!((s.send_rate - 500.0).abs() / 500.0 < 0.02, "rate {}", s.send_rate);
    assert!(report.connections <= 2, "{} connections", report.connections);
}

#[test]
fn targets_share_the_requests_by_weight() {
    let (a, served_a) = server(Duration::ZERO, 200);
    let (b, served_b) = server(Duration::ZERO, 200);
    let mut weighted = plan(&a, open(400.0, 1), 16);
    weighted.targets = vec![Target { weight: 3, ..Target::get(&a) }, Target::get(&b)];
    let report = load::run(&weighted).expect("the run completes");
    assert_eq!(report.summary.ok, 400);
    assert_eq!((served_a.load(Ordering::Relaxed), served_b.load(Ordering::Relaxed)), (300, 100));
}

#[test]
fn the_load_command_prints_json_with_per_second_buckets() {
    let (url, served) = server(Duration::ZERO, 200);
    let out =
        crate::common::run(&["load", &format!("2*{url}"), "--rate", "200/s", "--duration", "2s", "--format", "json"]);
    let (stdout, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["sent"], 400);
    assert_eq!(json["ok"], 400);
    assert_eq!(json["requested_rate"], 200.0);
    assert_eq!(json["buckets"].as_array().map(Vec::len), Some(2));
    assert!(json["latency"]["p99_ms"].as_f64().is_some());
    assert!(json["cpu_us_per_request"].as_f64().is_some());
    assert_eq!(served.load(Ordering::Relaxed), 400);
    let bad = crate::common::run(&["load", "ftp://127.0.0.1:1/", "--duration", "1s"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(crate::common::texts(&bad).1.contains("only http:// and https://"));
    let bad = crate::common::run(&["load", "https://127.0.0.1:1/", "--ca", "/nonexistent/ca.pem"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(crate::common::texts(&bad).1.contains("CA file /nonexistent/ca.pem"), "{:?}", crate::common::texts(&bad));
}

#[test]
fn workers_splitting_a_run_stream_buckets_that_merge_into_the_whole_run() {
    let (url, served) = server(Duration::ZERO, 200);
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
    let of = 3;
    let workers: Vec<_> = (0..of)
        .map(|k| {
            crate::common::firedrill()
                .args(["load", &url, "--rate", "300/s", "--duration", "3s", "--format", "stream"])
                .args(["--share", &format!("{k}/{of}"), "--start-at", &start.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("a worker")
        })
        .collect();
    let whole = plan(&url, open(300.0, 3), 256);
    let mut merge = load::Merge::new(&whole);
    for (k, worker) in workers.into_iter().enumerate() {
        let out = worker.wait_with_output().expect("the worker's output");
        let (stdout, stderr) = crate::common::texts(&out);
        assert_eq!(out.status.code(), Some(0), "worker {k}: {stderr}");
        // A bucket per second once final, then the end.
        assert_eq!(stdout.lines().count(), 4, "worker {k}: {stdout}");
        for line in stdout.lines() {
            merge.read(&format!("worker-{k}"), line).expect("a stream line");
        }
    }
    assert_eq!(merge.ended().count(), of);
    let report = merge.report(&whole);
    assert_eq!((report.summary.sent, report.summary.ok), (900, 900));
    assert_eq!(served.load(Ordering::Relaxed), 900);
    // The workers started together: each second holds a third of the requests of each.
    let per_second: Vec<u64> = report.summary.buckets.iter().map(|b| b.sent).collect();
    assert_eq!(per_second, [300, 300, 300]);
    assert!(report.summary.latency.p99_ms.is_some() && report.connections >= of);

    let late = crate::common::run(&["load", &url, "--start-at", "2020-01-01T00:00:00Z", "--format", "stream"]);
    assert_eq!(late.status.code(), Some(2));
    assert!(crate::common::texts(&late).1.contains("started too late"), "{:?}", crate::common::texts(&late));
    let bad = crate::common::run(&["load", &url, "--share", "3/3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(crate::common::texts(&bad).1.contains("K is counted from 0"), "{:?}", crate::common::texts(&bad));
}
