//! Checks against real endpoints, for the environments that have real ones. Each check opens
//! its own connection, as a new user would, so a refused, hung or reset endpoint shows up in
//! the sample that met it; the engine bounds every check with the probe's timeout. The checks
//! that keep something between samples (a `dns` probe's answers, a pooled `sql` probe's
//! connection) are [`held`].

pub mod dns;
pub mod held;
pub mod ledger;
pub mod pool;
pub mod postgres;

/// The S3 client that `s3` probes take, so environments need not name the AWS SDK.
pub use aws_sdk_s3::Client as S3Client;

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::pin;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider as TlsProvider, TlsContext, TrustStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use firedrill_core::duration::Dur;
use firedrill_core::sample::Sample;
use firedrill_core::scenario::Comparison;
use firedrill_core::text::error_chain;

use crate::cause::IoCause;
use crate::process::CommandError;
use crate::tls::{CaPem, TlsError};
use ledger::PgError;
use postgres::DbError;

/// Why a check failed: a sample's text is this error's chain
/// ([`firedrill_core::text::error_chain`]).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL does not parse.
    #[error("bad URL `{url}`")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    /// The URL is neither `http://` nor `https://`.
    #[error("`{url}`: only http:// and https:// URLs can be probed")]
    NotHttp {
        /// The URL as given.
        url: String,
    },
    /// The URL names no host to connect to.
    #[error("`{url}` has no host")]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// No TCP connection could be made (refused, unreachable).
    #[error("connect")]
    Connect(#[source] IoCause),
    /// The TLS connection failed: a certificate not trusted, expired, for another name.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The request could not be built (a method HTTP does not allow).
    #[error(transparent)]
    Request(hyper::http::Error),
    /// The HTTP exchange failed after the connection was made (reset, closed, malformed).
    #[error(transparent)]
    Http(hyper::Error),
    /// The answer's status is not the expected one.
    #[error("HTTP {status}, expected {expect}")]
    Status {
        /// The status answered.
        status: u16,
        /// The status expected.
        expect: u16,
    },
    /// The answer's body lacks the expected text.
    #[error("the body does not contain `{text}`")]
    BodyLacks {
        /// The text expected.
        text: String,
    },
    /// The answer came, but later than allowed.
    #[error("answered in {took}, over {max}")]
    Slow {
        /// How long it took.
        took: Dur,
        /// The most allowed.
        max: Dur,
    },
    /// The SQL query failed, or no connection could be made.
    #[error(transparent)]
    Sql(#[from] DbError),
    /// The command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The test object could not be put. (The SDK's errors are boxed: they are large, and a
    /// sample's error is moved around often.)
    #[error("put")]
    S3Put(#[source] Box<aws_sdk_s3::error::SdkError<PutObjectError, HttpResponse>>),
    /// The test object could not be got back.
    #[error("get")]
    S3Get(#[source] Box<aws_sdk_s3::error::SdkError<GetObjectError, HttpResponse>>),
    /// The test object could not be removed after the drill.
    #[error("failed to remove the s3 probe's object from bucket {bucket}")]
    S3Delete {
        /// The bucket.
        bucket: String,
        /// Why.
        #[source]
        source: Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::delete_object::DeleteObjectError, HttpResponse>>,
    },
    /// The test object's body broke off while it was read.
    #[error("get: reading the body")]
    S3Body(#[source] aws_sdk_s3::primitives::ByteStreamError),
    /// The alert an `alert` probe watches is firing: the fault was detected.
    #[error("alert {alert} firing ({series} series, active since {active_since})")]
    AlertFiring {
        /// The alert's name.
        alert: String,
        /// How many of its series fire.
        series: usize,
        /// When the first of them became active (pending), as Prometheus says.
        active_since: String,
    },
    /// Prometheus answered, refusing the query.
    #[error("Prometheus refused the query: {0}")]
    PrometheusRefused(String),
    /// What answered is not Prometheus's API (a proxy's error page, a wrong URL).
    #[error("not a Prometheus answer (HTTP {status}): {why}")]
    NotPrometheus {
        /// The HTTP status it answered with.
        status: u16,
        /// What is wrong with the answer.
        why: String,
    },
    /// The query's answer is not what a probe can judge.
    #[error("{0}")]
    PrometheusResult(String),
    /// A series the query returned does not meet the condition.
    #[error("{series} = {value}, not {condition}")]
    Condition {
        /// The series, as its labels.
        series: String,
        /// Its value.
        value: f64,
        /// The condition.
        condition: Comparison,
    },
    /// The object read back is not the one just put.
    #[error("get returned other bytes than were put")]
    S3Mismatch,
}

/// What an `http` probe asks of an answer.
#[derive(Clone, Copy, Debug)]
pub struct HttpCheck<'a> {
    /// The method (`GET`, or `POST` with an empty body).
    pub method: &'a str,
    /// The URL, `http://` or `https://`.
    pub url: &'a str,
    /// The CA that signs an `https://` server's certificate, instead of the platform's roots.
    pub ca: Option<&'a Path>,
    /// The status a healthy answer has.
    pub expect: u16,
    /// Text a healthy answer's body contains.
    pub body_contains: Option<&'a str>,
    /// A slower answer fails.
    pub max_latency: Option<Dur>,
}

/// One request: healthy when the status is `expect`, the body contains `body_contains` and
/// the answer came within `max_latency`.
pub async fn http(check: HttpCheck<'_>) -> Sample {
    sample(check_http(check).await)
}

async fn check_http(check: HttpCheck<'_>) -> Result<(), ProbeError> {
    let HttpCheck { method, url, ca, expect, body_contains, max_latency } = check;
    let started = Instant::now();
    let (status, body) = request(method, url, ca, Bytes::new()).await?;
    let took = started.elapsed();
    if status != expect {
        return Err(ProbeError::Status { status, expect });
    }
    if let Some(text) = body_contains {
        if !String::from_utf8_lossy(&body).contains(text) {
            return Err(ProbeError::BodyLacks { text: text.to_string() });
        }
    }
    if let Some(max) = max_latency {
        if took > max.0 {
            return Err(ProbeError::Slow { took: Dur(took), max });
        }
    }
    Ok(())
}

/// A check's result as a sample: a failure reads as the error and its causes.
fn sample(result: Result<(), ProbeError>) -> Sample {
    match result {
        Ok(()) => Sample::ok(),
        Err(e) => Sample::fail(error_chain(&e)),
    }
}

/// One HTTP/1.1 request with `body` on a fresh connection (over TLS for `https://`, trusting
/// `ca` when given): the status and the body.
pub async fn request(method: &str, url: &str, ca: Option<&Path>, body: Bytes) -> Result<(u16, Bytes), ProbeError> {
    let uri: hyper::Uri = url.parse().map_err(|source| ProbeError::BadUrl { url: url.into(), source })?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(ProbeError::NotHttp { url: url.into() }),
    };
    let host = uri.host().ok_or_else(|| ProbeError::NoHost { url: url.into() })?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // The trust is settled first: a CA file that cannot be read is wrong whatever the server.
    let config = if tls { Some(crate::tls::client_config(ca, crate::tls::Alpn::Http1)?) } else { None };
    let stream = TcpStream::connect((host, port)).await.map_err(|e| ProbeError::Connect(IoCause(e)))?;
    if let Some(config) = config {
        let stream = crate::tls::connect(config, host, stream).await?;
        exchange(TokioIo::new(stream), method, &uri, body).await
    } else {
        exchange(TokioIo::new(stream), method, &uri, body).await
    }
}

/// The request and its answer on a connection made for it.
async fn exchange<S>(io: S, method: &str, uri: &hyper::Uri, body: Bytes) -> Result<(u16, Bytes), ProbeError>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(ProbeError::Http)?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    // Credentials in the URL (`https://user:pass@gateway/`) are HTTP Basic authentication, as
    // curl takes them: never part of the Host header.
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy()), host),
        None => (None, authority),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "firedrill-probe");
    if let Some(credentials) = credentials {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes());
        request = request.header(hyper::header::AUTHORIZATION, format!("Basic {basic}"));
    }
    let request = request.body(Full::new(body)).map_err(ProbeError::Request)?;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(ProbeError::Http)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(ProbeError::Http)?.to_bytes();
        Ok::<_, ProbeError>((status, body))
    };
    // The connection is driven here rather than spawned, so a check dropped at its timeout
    // leaves nothing running.
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    tokio::select! {
        answer = &mut exchange => answer,
        closed = &mut conn => match closed {
            Err(e) => Err(ProbeError::Http(e)),
            Ok(()) => exchange.await,
        },
    }
}

/// A PromQL `query` against the Prometheus server at `url`: healthy while every series it
/// returns (or its scalar) meets `condition`; no data is a failure, as a dashboard's empty
/// panel is no proof of health.
/// `ca` is a private CA for an `https://` server, as for `http` probes.
pub async fn prometheus(url: &str, ca: Option<&Path>, query: &str, condition: Comparison) -> Sample {
    sample(check_prometheus(url, ca, query, condition).await)
}

/// The `data` of Prometheus's answer to a GET of `path` (with its query string), or why there
/// is none.
async fn prometheus_api(url: &str, ca: Option<&Path>, path: &str) -> Result<serde_json::Value, ProbeError> {
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let (status, body) = request("GET", &target, ca, Bytes::new()).await?;
    let not_an_answer = |why: String| ProbeError::NotPrometheus { status, why };
    let mut answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| not_an_answer(e.to_string()))?;
    match answer["status"].as_str() {
        Some("success") => {}
        Some(_) => {
            let error = answer["error"].as_str().unwrap_or("no reason given");
            return Err(ProbeError::PrometheusRefused(error.to_string()));
        }
        None => return Err(not_an_answer("no `status`".into())),
    }
    match answer["data"].take() {
        serde_json::Value::Null => Err(not_an_answer("no `data`".into())),
        data => Ok(data),
    }
}

async fn check_prometheus(url: &str, ca: Option<&Path>, query: &str, condition: Comparison) -> Result<(), ProbeError> {
    let data = &prometheus_api(url, ca, &format!("/api/v1/query?query={}", percent_encode(query))).await?;
    let series: Vec<(String, &serde_json::Value)> = match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or_else(|| ProbeError::PrometheusResult("the answer has no `result`".into()))?
            .iter()
            .map(|s| (labels(&s["metric"]), &s["value"][1]))
            .collect(),
        Some("scalar") => vec![("scalar".to_string(), &data["result"][1])],
        other => {
            return Err(ProbeError::PrometheusResult(format!(
                "the query must give a vector or a scalar, not {other:?}"
            )))
        }
    };
    if series.is_empty() {
        return Err(ProbeError::PrometheusResult(format!("`{query}` returned no data")));
    }
    for (series, value) in series {
        let value = value
            .as_str()
            .and_then(prometheus_number)
            .ok_or_else(|| ProbeError::PrometheusResult(format!("{series}: {value} is not a number")))?;
        if !condition.holds(value) {
            return Err(ProbeError::Condition { series, value, condition });
        }
    }
    Ok(())
}

/// The alert named `alert` (and carrying `labels`) on the Prometheus server at `url`: healthy
/// while it is not firing. A pending alert (its `for` not yet elapsed) has not paged anyone, so
/// it is still healthy; the sample says so.
pub async fn alert(url: &str, ca: Option<&Path>, alert: &str, labels: &BTreeMap<String, String>) -> Sample {
    match check_alert(url, ca, alert, labels).await {
        Ok(pending) if pending > 0 => {
            Sample { detail: Some(format!("alert {alert} pending ({pending} series)")), ..Sample::ok() }
        }
        Err(firing @ ProbeError::AlertFiring { .. }) => Sample { firing: true, ..sample(Err(firing)) },
        result => sample(result.map(drop)),
    }
}

/// How many matching alerts are pending, or the firing ones as an error.
async fn check_alert(
    url: &str,
    ca: Option<&Path>,
    alert: &str,
    labels: &BTreeMap<String, String>,
) -> Result<usize, ProbeError> {
    let data = prometheus_api(url, ca, "/api/v1/alerts").await?;
    let alerts = data["alerts"]
        .as_array()
        .ok_or_else(|| ProbeError::PrometheusResult("the answer has no `alerts` list".into()))?;
    let matching = alerts.iter().filter(|a| {
        a["labels"]["alertname"] == alert && labels.iter().all(|(k, v)| a["labels"][k].as_str() == Some(v.as_str()))
    });
    let (firing, pending): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        matching.partition(|a| a["state"] == "firing");
    match firing.first() {
        None => Ok(pending.len()),
        Some(first) => Err(ProbeError::AlertFiring {
            alert: alert.to_string(),
            series: firing.len(),
            active_since: first["activeAt"].as_str().unwrap_or("an unknown time").to_string(),
        }),
    }
}

/// A series' labels as PromQL writes them: `{job="web",code="500"}`.
fn labels(metric: &serde_json::Value) -> String {
    let pairs: Vec<String> =
        metric.as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
    format!("{{{}}}", pairs.join(","))
}

/// A sample value as Prometheus writes it (`"0.5"`, `"NaN"`, `"+Inf"`).
fn prometheus_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `text` as a URL query value: every byte but the unreserved ones percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A TCP connection to `address` (`host:port`).
pub async fn tcp(address: &str) -> Sample {
    sample(TcpStream::connect(address).await.map(drop).map_err(|e| ProbeError::Connect(IoCause(e))))
}

/// `query` on a new PostgreSQL connection.
pub async fn sql(dsn: &str, query: &str) -> Sample {
    let result = async {
        let client = postgres::connect(dsn).await?;
        client.simple_query(query).await.map_err(|e| DbError::from(PgError(e)))?;
        Ok(())
    };
    sample(result.await)
}

/// Runs `argv` on this machine: healthy when it exits 0. It is killed if the check is dropped.
pub async fn command(argv: &[String]) -> Sample {
    sample(crate::process::run(argv).await.map(drop).map_err(ProbeError::from))
}

/// The HTTP client every AWS SDK client of firedrill uses: the SDK's own would bring its own
/// crypto provider, and this one is on ring, as the rest of the process; it trusts the
/// platform's roots or, when given, only `ca`.
pub fn aws_http_client(ca: Option<&CaPem>) -> aws_sdk_s3::config::SharedHttpClient {
    let trust = match ca {
        Some(ca) => TrustStore::empty().with_pem_certificate(ca.0.clone()),
        None => TrustStore::default(),
    };
    let tls = TlsContext::builder().with_trust_store(trust).build().expect("building a TLS context cannot fail");
    aws_smithy_http_client::Builder::new()
        .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}

/// An S3 client for a custom endpoint (path-style, no retries: each sample is one attempt),
/// trusting the platform's roots or, when given, only the `ca` for an `https://` one.
/// Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, and a local test
/// server takes any.
pub fn s3_client(endpoint: &str, region: &str, ca: Option<&CaPem>) -> aws_sdk_s3::Client {
    let http = aws_http_client(ca);
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "firedrill".into());
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "firedrill",
        ))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The object an `s3` probe puts and gets: one per bucket, overwritten by every sample.
pub const S3_PROBE_KEY: &str = "firedrill-probe";

/// Puts a small object into `bucket` and reads it back.
pub async fn s3(client: &aws_sdk_s3::Client, bucket: &str) -> Sample {
    let payload = format!("firedrill probe {:?}", std::time::SystemTime::now());
    // A certificate problem is named as one, not buried in the SDK's "dispatch failure".
    let named = |e: &(dyn std::error::Error + 'static)| {
        crate::tls::certificate_problem_among(e, "`ca:`").map(|problem| ProbeError::Tls(TlsError::Handshake(problem)))
    };
    let round_trip = async {
        let put =
            client.put_object().bucket(bucket).key(S3_PROBE_KEY).body(ByteStream::from(payload.clone().into_bytes()));
        put.send().await.map_err(|e| named(&e).unwrap_or_else(|| ProbeError::S3Put(Box::new(e))))?;
        let got = client
            .get_object()
            .bucket(bucket)
            .key(S3_PROBE_KEY)
            .send()
            .await
            .map_err(|e| named(&e).unwrap_or_else(|| ProbeError::S3Get(Box::new(e))))?;
        let bytes = got.body.collect().await.map_err(ProbeError::S3Body)?.into_bytes();
        if bytes != payload.as_bytes() {
            return Err(ProbeError::S3Mismatch);
        }
        Ok(())
    };
    sample(round_trip.await)
}

/// Removes the object the `s3` probe left in `bucket`, once the drill is over: a drill leaves
/// nothing in a team's buckets. Removing an object that is not there succeeds, as S3 answers.
pub async fn s3_remove(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), ProbeError> {
    let delete = client.delete_object().bucket(bucket).key(S3_PROBE_KEY).send().await;
    delete.map(drop).map_err(|e| ProbeError::S3Delete { bucket: bucket.to_string(), source: Box::new(e) })
}

/// A check that did not pass in time: its last failure, as that sample read.
#[derive(Debug, thiserror::Error)]
#[error("{last}")]
pub struct NotReady {
    /// The last sample's failure ("timed out" when the check itself hung).
    pub last: String,
}

/// Polls `check` every `every` until it passes or `limit` runs out; the last failure on timeout.
pub async fn until_ok<F, Fut>(limit: Duration, every: Duration, mut check: F) -> Result<(), NotReady>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Sample>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let sample = match tokio::time::timeout_at(deadline, check()).await {
            Ok(s) => s,
            Err(_) => Sample::fail("timed out"),
        };
        if sample.ok {
            return Ok(());
        }
        if tokio::time::Instant::now() + every >= deadline {
            return Err(NotReady { last: sample.detail.unwrap_or_else(|| "not ready".into()) });
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    /// The head of the one request `url` makes, as a server on loopback received it.
    fn head_sent(url_of: impl Fn(u16) -> String) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
            String::from_utf8(head).unwrap()
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, _) = rt.block_on(super::request("GET", &url_of(port), None, Default::default())).unwrap();
        assert_eq!(status, 200);
        server.join().unwrap()
    }

    #[test]
    fn credentials_in_a_url_are_basic_authentication_not_part_of_the_host() {
        let head = head_sent(|port| format!("http://ops%40shop:p%3Ass@127.0.0.1:{port}/metrics"));
        assert!(head.starts_with("GET /metrics HTTP/1.1\r\n"), "{head}");
        let port_line = head.lines().find(|l| l.starts_with("host:")).unwrap_or_default().to_string();
        assert!(port_line.starts_with("host: 127.0.0.1:") && !port_line.contains('@'), "{head}");
        // base64("ops@shop:p:ss")
        assert!(head.contains("authorization: Basic b3BzQHNob3A6cDpzcw==\r\n"), "{head}");
        let plain = head_sent(|port| format!("http://127.0.0.1:{port}/"));
        assert!(!plain.contains("authorization"), "{plain}");
    }
}
