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

/// A `GET` probe expecting 200, over plain HTTP or TLS with the platform's roots.
fn get<'a>(
    url: &'a str,
    body_contains: Option<&'a str>,
    max_latency: Option<Dur>,
) -> impl std::future::Future<Output = firedrill::sample::Sample> + 'a {
    probe::http(probe::HttpCheck { method: "GET", url, ca: None, expect: 200, body_contains, max_latency })
}

#[test]
fn http_checks_status_body_and_latency() {
    let url = server("200 OK", "all good", Duration::ZERO, 1);
    assert!(block_on(get(&url, Some("good"), None)).ok);
    let url = server("503 Service Unavailable", "down", Duration::ZERO, 1);
    assert_eq!(failed(&block_on(get(&url, None, None))), "HTTP 503, expected 200");
    let url = server("200 OK", "degraded", Duration::ZERO, 1);
    assert!(failed(&block_on(get(&url, Some("all good"), None))).contains("does not contain `all good`"));
    let url = server("200 OK", "slow", Duration::from_millis(200), 1);
    let slow = block_on(get(&url, None, Some(Dur(Duration::from_millis(50)))));
    assert!(failed(&slow).contains("over 50ms"), "{slow:?}");
    assert!(failed(&block_on(get("ftp://127.0.0.1:1/", None, None))).contains("only http:// and https://"));
}

#[test]
fn tcp_tells_an_open_port_from_a_closed_one() {
    let open = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = open.local_addr().expect("an address").to_string();
    assert!(block_on(probe::tcp(&address)).ok);
    drop(open);
    let closed = block_on(probe::tcp(&address));
    assert!(failed(&closed).contains("connection refused"), "{closed:?}");
    assert!(failed(&block_on(get(&format!("http://{address}/"), None, None))).contains("refused"));
}

#[test]
fn command_is_healthy_on_exit_zero() {
    assert!(block_on(probe::command(&["true".into()])).ok);
    let failing = block_on(probe::command(&["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()]));
    assert_eq!(failed(&failing), "exit status: 3 (broken)");
    assert!(failed(&block_on(probe::command(&["/no/such/program".into()]))).contains("run `/no/such/program`"));
}

#[test]
fn s3_puts_and_gets_an_object_through_the_aws_sdk() {
    let Some((server, endpoint)) = crate::common::Moto::start(None) else { return };
    let client = probe::s3_client(&endpoint, "us-east-1", None);
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

/// A private CA and a server certificate for `localhost` it signs, as PEM files in `dir`:
/// `ca.pem`, `cert.pem`, `key.pem`.
fn private_ca(dir: &std::path::Path) {
    let ca = crate::common::TestCa::new("firedrill test CA");
    let (cert, key) = ca.sign(&["localhost"], "localhost");
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// Python's HTTP server behind TLS with `dir`'s certificate, on loopback; killed when dropped.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
}

impl HttpsServer {
    fn start(dir: &std::path::Path) -> Self {
        let script = "import http.server,ssl,sys
s=http.server.HTTPServer(('127.0.0.1',0),http.server.SimpleHTTPRequestHandler)
c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[1],sys.argv[2])
s.socket=c.wrap_socket(s.socket,server_side=True)
print(s.server_address[1],flush=True)
s.serve_forever()";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        HttpsServer { child, port: line.trim().parse().expect("the server's port") }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_drill_against_an_https_target_of_a_private_ca_runs_with_ca_and_names_the_certificate_error_without() {
    let Some(_engine) = crate::docker::engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    private_ca(dir.path());
    let server = HttpsServer::start(dir.path());
    let scenario = |ca: &str| {
        format!(
            r#"name: https-target
environment:
  kind: docker
  containers:
    - name: web
      command: [python3, -m, http.server, "8080"]
      ready: {{port: 8080}}
probes:
  - name: site
    check: {{kind: http, url: "https://localhost:{port}/"{ca}}}
    interval: 100ms
  - name: users
    check: {{kind: slo, url: "https://localhost:{port}/", rate: 20/s, p95: 1s, window: 1s{ca}}}
    interval: 250ms
fault: {{kind: container_pause, target: web, duration: 1s}}
steady_state: {{samples: 3, timeout: 5s}}
deadline: 20s
"#,
            port = server.port
        )
    };
    let run = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = crate::common::run(&["run", path.to_str().unwrap(), "--no-write", "--seed", "1"]);
        (out.status.code(), crate::common::texts(&out))
    };
    // `ca:` relative to the scenario's folder.
    let (code, (stdout, stderr)) = run("with-ca.yaml", scenario(", ca: ca.pem"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (code, (stdout, stderr)) = run("without-ca.yaml", scenario(""));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("its last sample: TLS handshake: unknown issuer"), "{stdout}{stderr}");
    // The platform's roots are read as OpenSSL-based tools read them: SSL_CERT_FILE trusts it.
    let path = dir.path().join("without-ca.yaml");
    let out = crate::common::firedrill()
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .args(["run", path.to_str().unwrap(), "--no-write", "--seed", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", crate::common::texts(&out));
    crate::docker::assert_nothing_left();
}

/// Platform roots that cannot be read are named, as OpenSSL-based tools name them.
#[test]
fn unreadable_platform_roots_are_named() {
    let out = crate::common::firedrill()
        .args(["load", "https://127.0.0.1:1/", "--duration", "1s"])
        .env("SSL_CERT_FILE", "/nonexistent/roots.pem")
        .env("SSL_CERT_DIR", "/nonexistent/certs")
        .output()
        .expect("the firedrill binary runs");
    let (_, stderr) = crate::common::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no root certificates") && stderr.contains("'/nonexistent/roots.pem'"), "{stderr}");
}
