//! Checks against real endpoints, for the environments that have real ones. Each check opens
//! its own connection, as a new user would, so a refused, hung or reset endpoint shows up in
//! the sample that met it; the engine bounds every check with the probe's timeout.

pub mod ledger;

/// The S3 client that `s3` probes take, so environments need not name the AWS SDK.
pub use aws_sdk_s3::Client as S3Client;

use std::pin::pin;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use firedrill_core::duration::Dur;
use firedrill_core::sample::Sample;

/// `GET url`: healthy when the status is `expect`, the body contains `body_contains` and the
/// answer came within `max_latency`.
pub async fn http(
    method: &str,
    url: &str,
    expect: u16,
    body_contains: Option<&str>,
    max_latency: Option<Dur>,
) -> Sample {
    let started = Instant::now();
    let (status, body) = match request(method, url).await {
        Ok(answer) => answer,
        Err(e) => return Sample::fail(e),
    };
    let took = started.elapsed();
    if status != expect {
        return Sample::fail(format!("HTTP {status}, expected {expect}"));
    }
    if let Some(text) = body_contains {
        if !String::from_utf8_lossy(&body).contains(text) {
            return Sample::fail(format!("the body does not contain `{text}`"));
        }
    }
    if let Some(max) = max_latency {
        if took > max.0 {
            return Sample::fail(format!("answered in {}, over {max}", Dur(took)));
        }
    }
    Sample::ok()
}

/// One HTTP/1.1 request with an empty body on a fresh connection: the status and the body.
pub async fn request(method: &str, url: &str) -> Result<(u16, Bytes), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("`{url}`: only http:// URLs can be probed"));
    }
    let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await.map_err(|e| io_error("connect", &e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "firedrill-probe")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, body))
    };
    // The connection is driven here rather than spawned, so a check dropped at its timeout
    // leaves nothing running.
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    tokio::select! {
        answer = &mut exchange => answer,
        closed = &mut conn => match closed {
            Err(e) => Err(e.to_string()),
            Ok(()) => exchange.await,
        },
    }
}

/// A TCP connection to `address` (`host:port`).
pub async fn tcp(address: &str) -> Sample {
    match TcpStream::connect(address).await {
        Ok(_) => Sample::ok(),
        Err(e) => Sample::fail(io_error("connect", &e)),
    }
}

/// `query` on a new PostgreSQL connection.
pub async fn sql(dsn: &str, query: &str) -> Sample {
    let result = async {
        let client = ledger::connect(dsn).await?;
        client.simple_query(query).await.map_err(|e| ledger::pg_error(&e))
    };
    match result.await {
        Ok(_) => Sample::ok(),
        Err(e) => Sample::fail(e),
    }
}

/// Runs `argv` on this machine: healthy when it exits 0. It is killed if the check is dropped.
pub async fn command(argv: &[String]) -> Sample {
    match crate::process::run(argv).await {
        Ok(_) => Sample::ok(),
        Err(why) => Sample::fail(why),
    }
}

/// An S3 client for a custom endpoint (path-style, no retries: each sample is one attempt).
/// Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, and a local test
/// server takes any.
pub fn s3_client(endpoint: &str, region: &str) -> aws_sdk_s3::Client {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "firedrill".into());
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
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

/// Puts a small object into `bucket` and reads it back.
pub async fn s3(client: &aws_sdk_s3::Client, bucket: &str) -> Sample {
    const KEY: &str = "firedrill-probe";
    let payload = format!("firedrill probe {:?}", std::time::SystemTime::now());
    let put = client.put_object().bucket(bucket).key(KEY).body(ByteStream::from(payload.clone().into_bytes()));
    if let Err(e) = put.send().await {
        return Sample::fail(format!("put: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    }
    let got = match client.get_object().bucket(bucket).key(KEY).send().await {
        Ok(o) => o.body.collect().await.map(|b| b.into_bytes()),
        Err(e) => return Sample::fail(format!("get: {}", aws_sdk_s3::error::DisplayErrorContext(e))),
    };
    match got {
        Ok(bytes) if bytes == payload.as_bytes() => Sample::ok(),
        Ok(_) => Sample::fail("get returned other bytes than were put"),
        Err(e) => Sample::fail(format!("get: reading the body: {e}")),
    }
}

/// An I/O error in a few words ("connect: connection refused").
pub fn io_error(what: &str, e: &std::io::Error) -> String {
    format!("{what}: {}", e.to_string().to_lowercase())
}

/// Polls `check` every `every` until it passes or `limit` runs out; the last failure on timeout.
pub async fn until_ok<F, Fut>(limit: Duration, every: Duration, mut check: F) -> Result<(), String>
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
            return Err(sample.detail.unwrap_or_else(|| "not ready".into()));
        }
        tokio::time::sleep(every).await;
    }
}
