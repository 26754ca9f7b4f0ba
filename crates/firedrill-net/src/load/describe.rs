//! The text form of a load run.

use std::fmt::Write;

use firedrill_core::duration::Dur;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::{Model, Plan, Report};

/// A load run as people read it: the plan, the totals, the latency percentiles and a table
/// per second. Both `firedrill load` and the evidence of a drill's load show it.
pub fn describe(plan: &Plan, r: &Report) -> String {
    let mut out = String::new();
    let model = match &plan.model {
        Model::Open(stages) => {
            let parts: Vec<String> = stages
                .iter()
                .map(|s| match s.to {
                    Some(to) => format!("{:.0}/s..{to:.0}/s for {}", s.rate, Dur(s.duration)),
                    None => format!("{:.0}/s for {}", s.rate, Dur(s.duration)),
                })
                .collect();
            format!("open model, {}", parts.join(", then "))
        }
        Model::Closed { users, duration } => format!("closed model, {users} users for {}", Dur(*duration)),
    };
    let protocol = if plan.http2 { "HTTP/2" } else { "HTTP/1.1" };
    let _ = writeln!(
        out,
        "load: {model}; {} target(s), {protocol}, up to {} connections",
        plan.targets.len(),
        plan.connections
    );
    let s = &r.summary;
    let requested = r.requested_rate.map(|q| format!(" (requested {q:.1}/s)")).unwrap_or_default();
    let _ = writeln!(out, "sent {} in {:.2} s: {:.1}/s{requested}; {} ok", s.sent, r.elapsed_s, s.send_rate, s.ok);
    if !s.errors.is_empty() {
        let errors: Vec<String> = s.errors.iter().map(|(c, n)| format!("{} {n}", c.as_str())).collect();
        let _ = writeln!(out, "errors: {}", errors.join(", "));
        if let Some(why) = &r.tls_failure {
            let _ = writeln!(out, "first TLS failure: {why}");
        }
    }
    let p = |p: &super::stats::Percentiles| {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        format!(
            "mean {} | p50 {} | p90 {} | p95 {} | p99 {} | p99.9 {} | max {} ms",
            f(p.mean_ms),
            f(p.p50_ms),
            f(p.p90_ms),
            f(p.p95_ms),
            f(p.p99_ms),
            f(p.p999_ms),
            f(p.max_ms)
        )
    };
    let _ = writeln!(out, "latency (from when due): {}", p(&s.latency));
    let _ = writeln!(out, "service time (from send): {}", p(&s.service_time));
    let _ = writeln!(
        out,
        "connections opened: {}; CPU {:.2} s, {:.1} µs per request",
        r.connections, r.cpu_s, r.cpu_us_per_request
    );
    let mut t = Builder::default();
    t.push_record(["t", "sent", "errors", "p50 ms", "p95 ms", "p99 ms"]);
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for b in &s.buckets {
        t.push_record([
            format!("{:.0}s", b.start_s),
            b.sent.to_string(),
            format!("{} ({:.1}%)", b.errors, b.error_rate * 100.0),
            f(b.p50_ms),
            f(b.p95_ms),
            f(b.p99_ms),
        ]);
    }
    let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    out
}
