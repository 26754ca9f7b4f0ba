//! Drills as OpenTelemetry traces, for an OTLP/HTTP collector: so a drill shows in the team's
//! tracing backend beside the traces of the incident it rehearses.
//!
//! One span per drill, from its start to its end as the record stamped them (not the moment of
//! the export), its condensed timeline as the span's events, its metrics and verdicts as
//! attributes under `firedrill.`; a value that was not measured is left out rather than
//! written as 0, as for the Pushgateway. Every text goes through the scenario's `redact:` list.
//!
//! The spans are handed to the OTLP exporter directly, not through a tracer provider: they
//! describe drills that are over, with their recorded times, and the export's result must reach
//! the command, where a span processor would log it and drop it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanExporter};
use opentelemetry_sdk::Resource;

use super::view::View;
use super::{serde_name, Placement, EXPORT_TIMEOUT};
use crate::drill::ScenarioRun;
use crate::metrics::Measurement;
use crate::record::DrillRecord;
use crate::score::{self, Verdict, EXIT_OK};

/// The path of the traces under a collector's base URL (OTLP/HTTP).
const TRACES_PATH: &str = "/v1/traces";

/// Why the drills of a scenario were not exported.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The async runtime the exporter needs could not start.
    #[error("failed to start the runtime to export to {endpoint}")]
    Runtime {
        /// Where the spans were to go.
        endpoint: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The protocol asked for is not the one firedrill speaks.
    #[error("OTLP protocol `{protocol}` is not supported: firedrill exports over http/protobuf (unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to http/protobuf, and give the collector's HTTP port, 4318)")]
    Protocol {
        /// The protocol asked for.
        protocol: String,
    },
    /// No TLS configuration for an `https://` collector (no root certificates).
    #[error("failed to set up TLS to {endpoint}")]
    Tls {
        /// Where the spans were to go.
        endpoint: String,
        /// Why.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The exporter refused its configuration (an endpoint that is no URL, for one).
    #[error("failed to set up the OTLP exporter for {endpoint}")]
    Exporter {
        /// Where the spans were to go.
        endpoint: String,
        /// Why.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The collector could not be reached (refused, no route, a certificate not trusted).
    #[error("failed to export the drills as OpenTelemetry spans to {endpoint}")]
    Unreachable {
        /// Where the spans were to go.
        endpoint: String,
        /// Why, as the HTTP client said it.
        #[source]
        source: HttpError,
    },
    /// The collector's certificate is not one this machine trusts (or not valid).
    #[error("failed to export the drills as OpenTelemetry spans to {endpoint}: {problem}")]
    Certificate {
        /// Where the spans were to go.
        endpoint: String,
        /// The certificate problem, in words.
        problem: String,
    },
    /// The collector refused the spans.
    #[error("failed to export the drills as OpenTelemetry spans to {endpoint}")]
    Export {
        /// Where the spans were to go.
        endpoint: String,
        /// Why.
        #[source]
        source: OTelSdkError,
    },
    /// The collector did not answer in time.
    #[error("failed to export the drills as OpenTelemetry spans to {endpoint}: no answer within {}s", EXPORT_TIMEOUT.as_secs())]
    TimedOut {
        /// Where the spans were to go.
        endpoint: String,
    },
}

/// The URL the spans are sent to: `--otlp` (a collector's base URL, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is) when given, else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it
/// is, else `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` when none is set, so nothing is exported.
/// `env` reads a variable (`std::env::var`), an empty value counting as unset. A protocol other
/// than OTLP/HTTP with protobuf asked by `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (gRPC) is
/// refused before any drill runs, rather than spoken wrongly to a gRPC port.
pub fn traces_endpoint(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Option<String>, OtelError> {
    let traces_under = |base: &str| format!("{}{TRACES_PATH}", base.trim_end_matches('/'));
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let endpoint = flag
        .map(traces_under)
        .or_else(|| set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_under(&base)));
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol {
        Some(protocol) if endpoint.is_some() && protocol.trim() != "http/protobuf" => {
            Err(OtelError::Protocol { protocol })
        }
        _ => Ok(endpoint),
    }
}

/// Sends one span per drill of `run` to the OTLP/HTTP collector at `endpoint` (the full traces
/// URL, from [`traces_endpoint`]), masking the `secrets` in every text; waits for the
/// collector's answer, at most [`EXPORT_TIMEOUT`].
pub fn export(endpoint: &str, run: &ScenarioRun, secrets: &[String]) -> Result<(), OtelError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| OtelError::Runtime { endpoint: endpoint.into(), source })?;
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT);
    // The client is made inside the runtime, which drives its connections.
    let _entered = runtime.enter();
    let last_error = Arc::new(Mutex::new(None));
    let builder = if endpoint.starts_with("https://") {
        // The process's TLS configuration: its crypto provider, the platform's roots.
        let tls = crate::tls::client_config(None, crate::tls::Alpn::Http1)
            .map_err(|source| OtelError::Tls { endpoint: endpoint.into(), source })?;
        // The connector offers its own ALPN (http/1.1) and refuses a configuration with one.
        let mut tls = (*tls).clone();
        tls.alpn_protocols.clear();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        let client = HyperClient::new(connector, EXPORT_TIMEOUT, None);
        builder.with_http_client(KeepingErrors { client, last_error: last_error.clone() })
    } else {
        let client = HyperClient::with_default_connector(EXPORT_TIMEOUT, None);
        builder.with_http_client(KeepingErrors { client, last_error: last_error.clone() })
    };
    let mut exporter = builder.build().map_err(|source| OtelError::Exporter { endpoint: endpoint.into(), source })?;
    exporter.set_resource(&resource());
    let spans = spans(run, secrets, jiff::Timestamp::now());
    let sent = runtime.block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await });
    // Nothing is buffered (the export was awaited); shutting down only closes the client.
    let _ = exporter.shutdown();
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(match last_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(source) => {
                match crate::tls::certificate_problem_among(source.as_ref(), "SSL_CERT_FILE or SSL_CERT_DIR") {
                    Some(problem) => OtelError::Certificate { endpoint: endpoint.into(), problem },
                    None => OtelError::Unreachable { endpoint: endpoint.into(), source },
                }
            }
            None => OtelError::Export { endpoint: endpoint.into(), source },
        }),
        Err(_) => Err(OtelError::TimedOut { endpoint: endpoint.into() }),
    }
}

/// The exporter's HTTP client, keeping the error of the last request if it got no answer: the
/// exporter reduces it to "network error", where the cause (connection refused, unknown issuer)
/// is what the user needs.
#[derive(Debug)]
struct KeepingErrors<C> {
    client: C,
    last_error: Arc<Mutex<Option<HttpError>>>,
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for KeepingErrors<C> {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let answer = self.client.send_bytes(request).await;
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Ok(response) => {
                // A retry that was answered: what the exporter says next is about the answer.
                *last_error = None;
                Ok(response)
            }
            Err(error) => {
                let said = error.to_string();
                *last_error = Some(error);
                Err(said.into())
            }
        }
    }
}

/// What sends the spans: firedrill, at this version.
fn resource() -> Resource {
    Resource::builder()
        .with_service_name("firedrill")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One span per drill of `run`, exported at `now`; the scenario's MTTR, judged over the whole
/// run, goes with the last drill, which completes it (as in the JUnit report).
pub fn spans(run: &ScenarioRun, secrets: &[String], now: jiff::Timestamp) -> Vec<SpanData> {
    run.drills_with_mttr()
        .map(|(record, path, mttr)| span(record, path, mttr, secrets, Placement::of(record, now)))
        .collect()
}

/// The span of one drill, written to `path` when it was.
fn span(
    record: &DrillRecord,
    path: Option<&Path>,
    mttr: Option<(&Verdict, &Measurement)>,
    secrets: &[String],
    placed: Placement,
) -> SpanData {
    let mask = |text: &str| crate::redact::text(text, secrets);
    let ids = RandomIdGenerator::default();
    let context = SpanContext::new(ids.new_trace_id(), ids.new_span_id(), TraceFlags::SAMPLED, false, TraceState::NONE);
    let mut events = SpanEvents::default();
    events.events = View::of(record)
        .timeline
        .into_iter()
        .map(|row| {
            let relative = KeyValue::new("firedrill.event.relative_time", row.rel);
            Event::new(mask(&row.text), system_time(placed.at(row.when)), vec![relative], 0)
        })
        .collect();
    SpanData {
        span_context: context,
        parent_span_id: opentelemetry::trace::SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: format!("drill {}", mask(&record.scenario.name)).into(),
        start_time: system_time(placed.at(record.started_at)),
        end_time: system_time(placed.at(record.ended_at)),
        attributes: attributes(record, path, mttr, &mask),
        dropped_attributes_count: 0,
        events,
        links: Default::default(),
        status: status(record, mttr.map(|(v, _)| v)),
        instrumentation_scope: InstrumentationScope::builder("firedrill")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

/// A recorded time as the exporter takes it. Every jiff timestamp is one on the platforms
/// firedrill runs on (64-bit seconds); elsewhere one out of range reads as the epoch.
fn system_time(t: jiff::Timestamp) -> SystemTime {
    SystemTime::try_from(t).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The drill's facts, metrics and verdicts, under `firedrill.`.
fn attributes(
    record: &DrillRecord,
    path: Option<&Path>,
    mttr: Option<(&Verdict, &Measurement)>,
    mask: &dyn Fn(&str) -> String,
) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new("firedrill.scenario.name", mask(&record.scenario.name)),
        KeyValue::new("firedrill.scenario.file", mask(&record.scenario.file)),
        KeyValue::new("firedrill.scenario.sha256", record.scenario.sha256.clone()),
        KeyValue::new("firedrill.fault", mask(&record.scenario.fault_description)),
        KeyValue::new("firedrill.environment", record.environment.as_str()),
        KeyValue::new("firedrill.clock", record.clock.as_str()),
        KeyValue::new("firedrill.run", i64::from(record.run)),
        // A string: a seed is a u64, which an attribute's i64 may not hold.
        KeyValue::new("firedrill.seed", record.seed.to_string()),
        KeyValue::new("firedrill.outcome", serde_name(&record.outcome)),
    ];
    if let Some(operator) = &record.operator {
        out.push(KeyValue::new("firedrill.operator", mask(operator)));
    }
    if let Some(path) = path {
        out.push(KeyValue::new("firedrill.record.path", mask(&path.display().to_string())));
    }
    if let Some(score) = record.score {
        out.push(KeyValue::new("firedrill.score", i64::from(score)));
    }
    let m = &record.metrics;
    let measured = [
        ("firedrill.rto.seconds", m.rto.seconds()),
        ("firedrill.mttd.seconds", m.detection().seconds()),
        ("firedrill.mttd_probes.seconds", m.mttd_alert.as_ref().and(m.mttd.seconds())),
        ("firedrill.rpo.seconds", m.rpo.measurement.seconds()),
        ("firedrill.mttr.seconds", mttr.and_then(|(_, m)| m.seconds())),
    ];
    out.extend(measured.into_iter().filter_map(|(key, value)| Some(KeyValue::new(key, value?))));
    if m.rpo.acknowledged > 0 {
        out.push(KeyValue::new("firedrill.rpo.lost_writes", m.rpo.lost as i64));
    }
    for verdict in record.verdicts.iter().chain(mttr.map(|(v, _)| v)) {
        let target = verdict.target.as_str();
        out.push(KeyValue::new(format!("firedrill.{target}.target_seconds"), verdict.limit_s));
        out.push(KeyValue::new(format!("firedrill.{target}.status"), serde_name(&verdict.status)));
        out.push(KeyValue::new(format!("firedrill.{target}.met"), verdict.status == score::Status::Met));
    }
    out
}

/// Error when the drill failed its gate (the exit code it calls for is not 0), saying why.
fn status(record: &DrillRecord, mttr: Option<&Verdict>) -> Status {
    let verdicts: Vec<Verdict> = record.verdicts.iter().chain(mttr).cloned().collect();
    if score::exit_code([(record.outcome, verdicts.as_slice())]) == EXIT_OK {
        return Status::Ok;
    }
    let mut why: Vec<String> = verdicts
        .iter()
        .filter(|v| v.status != score::Status::Met)
        .map(|v| format!("{} {}", v.target.as_str().to_uppercase(), serde_name(&v.status).replace('_', " ")))
        .collect();
    if record.outcome != crate::timeline::Outcome::Recovered {
        why.insert(0, record.outcome.describe().to_string());
    }
    Status::error(why.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_variables_and_the_traces_variable_is_taken_as_it_is() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
        ]);
        let endpoint = |flag, env| traces_endpoint(flag, env).expect("a protocol firedrill speaks");
        assert_eq!(endpoint(Some("http://flag:4318/"), both).as_deref(), Some("http://flag:4318/v1/traces"));
        assert_eq!(endpoint(None, both).as_deref(), Some("http://traces:4318/custom"));
        let base =
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " "), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")]);
        assert_eq!(endpoint(None, base).as_deref(), Some("http://base:4318/v1/traces"));
        assert_eq!(endpoint(None, env(&[])), None);
        let grpc = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        let refused = traces_endpoint(None, grpc).unwrap_err().to_string();
        assert!(refused.starts_with("OTLP protocol `grpc` is not supported"), "{refused}");
        let http =
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert_eq!(endpoint(None, http).as_deref(), Some("http://b:4318/v1/traces"));
    }
}
