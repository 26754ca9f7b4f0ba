//! The terminal rendering of Monte Carlo predictions: percentiles, the odds of meeting each
//! target, the steps that drive the RTO, and a histogram.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::simulate::{Prediction, Stats};
use crate::text::secs;

fn cell(v: Option<f64>) -> String {
    v.map(secs).unwrap_or_else(|| "not recovered".into())
}

fn row(name: &str, s: &Stats) -> [String; 8] {
    [
        name.into(),
        s.runs.to_string(),
        s.mean.map(secs).unwrap_or_else(|| "-".into()),
        cell(s.p50),
        cell(s.p90),
        cell(s.p95),
        cell(s.p99),
        cell(s.max),
    ]
}

/// One prediction, or several side by side (`--compare`), as text.
pub fn render(predictions: &[(&str, &Prediction)]) -> String {
    let mut out = String::new();
    let Some((_, first)) = predictions.first() else { return out };
    let _ = writeln!(out, "{}: {} simulated drills, seed {}\n", first.scenario, first.runs, first.seed);
    let mut t = Builder::default();
    t.push_record(["", "metric", "runs", "mean", "p50", "p90", "p95", "p99", "max"].map(String::from));
    for (label, p) in predictions {
        for (name, s) in [("RTO", &p.rto), ("RPO", &p.rpo), ("MTTD", &p.mttd)] {
            let mut r = vec![label.to_string()];
            r.extend(row(name, s));
            t.push_record(r);
        }
    }
    let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    for (label, p) in predictions {
        let prefix = if predictions.len() > 1 { format!("[{label}] ") } else { String::new() };
        for o in &p.odds {
            let _ = writeln!(
                out,
                "{prefix}P({} <= {}) = {:.2}%  (95% CI {:.2}% – {:.2}%)",
                o.target.as_str().to_uppercase(),
                secs(o.limit_s),
                o.probability * 100.0,
                o.low * 100.0,
                o.high * 100.0
            );
        }
        if p.unrecovered > 0 {
            let _ = writeln!(out, "{prefix}{} of {} runs did not recover before the deadline", p.unrecovered, p.runs);
        }
        if p.no_impact > 0 {
            let _ = writeln!(out, "{prefix}{} of {} runs had no visible impact", p.no_impact, p.runs);
        }
    }
    for (label, p) in predictions {
        if p.steps.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\nwhat drives the RTO{}:",
            if predictions.len() > 1 { format!(" [{label}]") } else { String::new() }
        );
        let mut t = Builder::default();
        t.push_record(["step", "mean", "share of RTO variance"]);
        for s in &p.steps {
            t.push_record([s.step.clone(), secs(s.mean_s), format!("{:.1}%", s.variance_share * 100.0)]);
        }
        let _ = writeln!(out, "{}", t.build().with(Style::rounded()));
    }
    for (label, p) in predictions {
        let total: u64 = p.histogram.iter().map(|b| b.2).sum();
        if total == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "\nRTO distribution{}:",
            if predictions.len() > 1 { format!(" [{label}]") } else { String::new() }
        );
        let peak = p.histogram.iter().map(|b| b.2).max().unwrap_or(1).max(1);
        for (from, to, n) in &p.histogram {
            let bar = "█".repeat(((*n as f64 / peak as f64) * 40.0).round() as usize);
            let _ =
                writeln!(out, "{:>10} – {:<10} {bar} {:.1}%", secs(*from), secs(*to), *n as f64 / total as f64 * 100.0);
        }
    }
    out
}
