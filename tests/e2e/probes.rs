//! The real probes against real endpoints on loopback: a small HTTP server, closed and open
//! ports, programs, and an S3 server (moto) for the S3 put/get check.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use firedrill::duration::Dur;
use firedrill::env::Sample;
use firedrill::probe;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f)
}

/// Serves `count` HTTP requests on loopback with `status` and `body`, each after `delay`.
fn server(status: &str, body: &'static str, delay: Duration, count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}/health", listener.local_addr().expect("an address"));
    let status = status.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            std::thread::sleep(delay);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn failed(s: &Sample) -> &str {
    assert!(!s.ok, "expected a failed sample");
    s.detail.as_deref().unwrap_or("")
}

#[test]
fn http_checks_status_body_and_latency() {
    let url = server("200 OK", "all good", Duration::ZERO, 1);
    assert!(block_on(probe::http("GET", &url, 200, Some("good"), None)).ok);
    let url = server("503 Service Unavailable", "down", Duration::ZERO, 1);
    assert_eq!(failed(&block_on(probe::http("GET", &url, 200, None, None))), "HTTP 503, expected 200");
    let url = server("200 OK", "degraded", Duration::ZERO, 1);
    assert!(failed(&block_on(probe::http("GET", &url, 200, Some("all good"), None)))
        .contains("does not contain `all good`"));
    let url = server("200 OK", "slow", Duration::from_millis(200), 1);
    let slow = block_on(probe::http("GET", &url, 200, None, Some(Dur(Duration::from_millis(50)))));
    assert!(failed(&slow).contains("over 50ms"), "{slow:?}");
    assert!(failed(&block_on(probe::http("GET", "https://127.0.0.1:1/", 200, None, None))).contains("only http://"));
}

#[test]
fn tcp_tells_an_open_port_from_a_closed_one() {
    let open = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = open.local_addr().expect("an address").to_string();
    assert!(block_on(probe::tcp(&address)).ok);
    drop(open);
    let closed = block_on(probe::tcp(&address));
    assert!(failed(&closed).contains("connection refused"), "{closed:?}");
    assert!(failed(&block_on(probe::http("GET", &format!("http://{address}/"), 200, None, None))).contains("refused"));
}

#[test]
fn command_is_healthy_on_exit_zero() {
    assert!(block_on(probe::command(&["true".into()])).ok);
    let failing = block_on(probe::command(&["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()]));
    assert_eq!(failed(&failing), "exit status: 3 (broken)");
    assert!(failed(&block_on(probe::command(&["/no/such/program".into()]))).contains("run `/no/such/program`"));
}

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> Option<(Moto, String)> {
    let port = TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address").port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(std::env::var("CI").is_err(), "CI must run the S3 test: pip install 'moto[server]'");
        eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
        return None;
    };
    let server = Moto(child);
    let address = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&address).is_ok() {
            return Some((server, format!("http://{address}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server did not listen on {address}");
}

#[test]
fn s3_puts_and_gets_an_object_through_the_aws_sdk() {
    let Some((server, endpoint)) = moto() else { return };
    let client = probe::s3_client(&endpoint, "us-east-1");
    block_on(async {
        client.create_bucket().bucket("drills").send().await.expect("the bucket is created");
        assert_eq!(probe::s3(&client, "drills").await, Sample::ok());
        let missing = probe::s3(&client, "no-such-bucket").await;
        assert!(failed(&missing).contains("NoSuchBucket"), "{missing:?}");
    });
    drop(server);
    let down = block_on(probe::s3(&client, "drills"));
    assert!(failed(&down).starts_with("put:"), "{down:?}");
}
