//! Drills exported as OpenTelemetry spans (`run --otlp`) to an OTLP/HTTP receiver the test runs
//! on a loopback port, decoded as a collector decodes them: one span per drill with the record's
//! times, metrics and verdicts, its timeline as events, and nothing the scenario redacts.

use std::sync::mpsc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::common::{firedrill, json_files, load_record, run, shipped_text, texts};

/// What the receiver was sent: the request's path, its content type and the decoded body.
type Received = (String, String, ExportTraceServiceRequest);

/// An OTLP/HTTP receiver on a loopback port: every request decoded and handed to the test,
/// answered with an empty success. Returns its URL.
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let (port, received) = serve(None);
    (format!("http://127.0.0.1:{port}"), received)
}

/// The receiver behind TLS with `tls` when given. Returns its port.
fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, mpsc::Receiver<Received>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("an address").port();
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (sent, tls) = (sent.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(hyper_util::rt::TokioIo::new(stream), sent).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                answer(hyper_util::rt::TokioIo::new(stream), sent).await;
                            }
                        }
                    }
                });
            }
        });
    });
    (port, received)
}

/// Serves one connection: each request's body decoded, sent on, answered with a success.
async fn answer<S>(io: S, sent: mpsc::Sender<Received>)
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let sent = sent.clone();
        async move {
            let path = req.uri().path().to_string();
            let content_type = req
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = req.into_body().collect().await?.to_bytes();
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace request");
            let _ = sent.send((path, content_type, request));
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            let mut response = hyper::Response::new(Full::new(Bytes::from(answer)));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, "application/x-protobuf".parse().expect("a header"));
            Ok::<_, hyper::Error>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
}

/// The value of a span's attribute.
fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn double(span: &Span, key: &str) -> Option<f64> {
    match attribute(span, key)? {
        Value::DoubleValue(v) => Some(*v),
        other => panic!("{key} is {other:?}"),
    }
}

fn string(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Value::StringValue(v) => Some(v.clone()),
        other => panic!("{key} is {other:?}"),
    }
}

/// Nanoseconds since the epoch, as OTLP carries times.
fn nanos(t: jiff::Timestamp) -> u64 {
    t.as_nanosecond() as u64
}

/// The event column of the timeline table in a drill's Markdown report: the timeline in words.
fn markdown_timeline(record: &firedrill::record::DrillRecord) -> Vec<String> {
    let markdown = firedrill::report::markdown::render(record);
    let table = markdown.split("| T | Time | Event |").nth(1).expect("a timeline table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_end_matches(" |").split(" | ").nth(2).expect("three cells").to_string())
        .collect()
}

/// A span's event name as the Markdown table shows it.
fn as_cell(name: &str) -> String {
    name.replace('|', "\\|").replace('\n', " ").replace('<', "&lt;").replace('>', "&gt;")
}

/// The shipped database failover with an RTO it cannot meet and a secret in its folder's name.
fn scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let text = shipped_text("db-failover.yaml")
        .replace("tags: [tier-1, database, checkout]", "tags: [tier-1, database, checkout]\nredact: [hunter2]")
        .replace("  rto: 15m", "  rto: 1s");
    let path = dir.join("db-failover.yaml");
    std::fs::write(&path, text).expect("the scenario is written");
    path
}

#[test]
fn each_drill_is_a_span_with_the_records_times_metrics_verdicts_and_timeline() {
    let (url, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path());
    let reports = dir.path().join("hunter2-results");
    let before = nanos(jiff::Timestamp::now());
    let out = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "42",
        "--repeat",
        "2",
        "--no-history",
        "--reports",
        reports.to_str().unwrap(),
        "--otlp",
        &url,
    ]);
    let after = nanos(jiff::Timestamp::now());
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "the RTO is missed\n{stdout}{stderr}");
    assert!(stdout.contains(&format!("exported to {url}/v1/traces")), "{stdout}{stderr}");
    let (path, content_type, request) = received.recv_timeout(Duration::from_secs(5)).expect("the spans arrived");
    assert_eq!((path.as_str(), content_type.as_str()), ("/v1/traces", "application/x-protobuf"));

    let resource = request.resource_spans[0].resource.as_ref().expect("a resource");
    let service = resource.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.clone());
    assert_eq!(service.and_then(|v| v.value), Some(Value::StringValue("firedrill".into())));
    let spans: Vec<&Span> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    let files = json_files(&reports);
    assert_eq!((spans.len(), files.len()), (2, 2), "one span per drill");

    for (i, (span, file)) in spans.iter().zip(&files).enumerate() {
        let record = load_record(file);
        assert_eq!(span.name, "drill db-failover");
        // A sim drill's virtual clock starts at the epoch: it is placed to end when exported,
        // every stamp moved by the same amount.
        let shift = span.end_time_unix_nano - nanos(record.ended_at);
        assert!((before..=after).contains(&span.end_time_unix_nano), "placed at the export");
        assert_eq!(span.start_time_unix_nano, nanos(record.started_at) + shift);
        assert_eq!(string(span, "firedrill.scenario.name").as_deref(), Some("db-failover"));
        assert_eq!(string(span, "firedrill.seed"), Some(record.seed.to_string()));
        assert_eq!(string(span, "firedrill.outcome").as_deref(), Some("recovered"));
        let m = &record.metrics;
        assert_eq!(double(span, "firedrill.rto.seconds"), m.rto.seconds());
        assert_eq!(double(span, "firedrill.mttd.seconds"), m.mttd.seconds());
        assert_eq!(double(span, "firedrill.rpo.seconds"), m.rpo.measurement.seconds());
        for verdict in &record.verdicts {
            let target = verdict.target.as_str();
            assert_eq!(double(span, &format!("firedrill.{target}.target_seconds")), Some(verdict.limit_s));
            let met = attribute(span, &format!("firedrill.{target}.met"));
            assert_eq!(met, Some(&Value::BoolValue(verdict.status == firedrill::score::Status::Met)), "{target}");
        }
        // The MTTR is judged over both drills: it goes with the last.
        assert_eq!(attribute(span, "firedrill.mttr.met").is_some(), i == 1);
        let status = span.status.as_ref().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert!(status.message.contains("RTO missed"), "{}", status.message);

        // The path is the record's, with the secret in it masked.
        let written = string(span, "firedrill.record.path").expect("the record's path");
        assert_eq!(written, file.display().to_string().replace("hunter2", "***"));

        let names: Vec<String> = span.events.iter().map(|e| as_cell(&e.name)).collect();
        assert_eq!(names, markdown_timeline(&record));
        let (first, last) = (record.timeline.events.first().unwrap(), record.timeline.events.last().unwrap());
        assert_eq!(span.events.first().unwrap().time_unix_nano, nanos(first.at) + shift);
        assert_eq!(span.events.last().unwrap().time_unix_nano, nanos(last.at) + shift);
    }
    assert!(!format!("{request:?}").contains("hunter2"), "a redacted string was exported");
}

#[test]
fn the_standard_variables_name_the_collector_when_there_is_no_flag() {
    let (url, received) = receiver();
    let out = firedrill()
        .args(["run", "scenarios/db-failover.yaml", "--seed", "42", "--no-write"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
        .output()
        .expect("the firedrill binary runs");
    let (stdout, stderr) = texts(&out);
    assert!(stdout.contains(&format!("exported to {url}/v1/traces")), "{stdout}{stderr}");
    let (path, _, request) = received.recv_timeout(Duration::from_secs(5)).expect("the span arrived");
    assert_eq!(path, "/v1/traces");
    assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 1);
}

#[test]
fn a_collector_that_is_not_there_loses_no_result() {
    let reports = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run(&[
        "run",
        "scenarios/db-failover.yaml",
        "--seed",
        "42",
        "--reports",
        reports.path().to_str().unwrap(),
        "--otlp",
        &url,
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: failed to export the drills as OpenTelemetry spans to {url}/v1/traces: client error (Connect): tcp connect error: Connection refused"
        )),
        "{stderr}"
    );
    assert_eq!(json_files(reports.path()).len(), 1, "the record is written");
    assert!(stdout.contains("results written to"), "{stdout}");
}

#[test]
fn an_https_collector_is_reached_with_the_platforms_roots() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::common::TestCa::new("firedrill test CA");
    let (cert, key) = ca.sign(&["localhost"], "localhost");
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("other.pem"), crate::common::TestCa::new("another CA").cert.pem()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let (port, received) = serve(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))));
    let url = format!("https://localhost:{port}");
    let export = |ca: &std::path::Path| {
        let out = firedrill()
            .args(["run", "scenarios/db-failover.yaml", "--seed", "42", "--no-write", "--otlp", &url])
            .env("SSL_CERT_FILE", ca)
            .output()
            .expect("the firedrill binary runs");
        (out.status.code(), texts(&out))
    };
    // Trusted as OpenSSL-based tools trust it: SSL_CERT_FILE names the private CA.
    let (code, (stdout, stderr)) = export(&dir.path().join("ca.pem"));
    assert!(stdout.contains(&format!("exported to {url}/v1/traces")), "{code:?}\n{stdout}{stderr}");
    let (path, _, request) = received.recv_timeout(Duration::from_secs(5)).expect("the span arrived");
    assert_eq!((path.as_str(), request.resource_spans.len()), ("/v1/traces", 1));
    // Not trusted: the export fails, and says where to and why.
    let (code, (stdout, stderr)) = export(&dir.path().join("other.pem"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("failed to export the drills as OpenTelemetry spans to {url}")), "{stderr}");
    assert!(stderr.contains("unknown issuer: the certificate is not signed by a trusted CA (a private CA is given with SSL_CERT_FILE or SSL_CERT_DIR)"), "{stderr}");
}
