//! SVG charts, drawn by hand so a report is one self-contained file: the drill timeline
//! (probe lanes, fault window, detection and recovery, steps against budgets, target lines)
//! and the RTO history of a scenario.

use std::fmt::Write;

use crate::record::{DrillRecord, EnvironmentKind, ProbeKind};
use crate::text::{secs, xml_escape};
use crate::timeline::{EventKind, Micros};

const WIDTH: f64 = 1100.0;
const LABEL: f64 = 210.0;
const RIGHT: f64 = 30.0;
const LANE: f64 = 22.0;
const GAP: f64 = 8.0;
const OK: &str = "#2e9e5b";
const FAIL: &str = "#d64545";
const STEP: &str = "#3b6fd6";
const OVER: &str = "#e08a1e";

/// A tick step giving about eight ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 14] = [0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];
    STEPS.iter().copied().find(|s| span / s <= 10.0).unwrap_or(7200.0)
}

fn short(s: f64) -> String {
    let a = (s.abs() * 10.0).round() / 10.0;
    let sign = if s < 0.0 { "−" } else { "+" };
    if a < 60.0 {
        format!("T{sign}{a:.0}s")
    } else if a % 60.0 < 0.5 {
        format!("T{sign}{}m", a / 60.0)
    } else {
        format!("T{sign}{}m{:.0}s", (a / 60.0).floor(), a % 60.0)
    }
}

struct Scale {
    start: f64,
    end: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LABEL + (t - self.start) / (self.end - self.start).max(1e-9) * (WIDTH - LABEL - RIGHT)
    }
}

/// Runs of equal state `(start s, end s, ok)` from timestamped states.
fn runs(points: &[(f64, bool)], end: f64) -> Vec<(f64, f64, bool)> {
    let mut out: Vec<(f64, f64, bool)> = Vec::new();
    for (i, &(t, ok)) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(end, |p| p.0);
        match out.last_mut() {
            Some(last) if last.2 == ok => last.1 = next,
            _ => out.push((t, next, ok)),
        }
    }
    out
}

/// The timeline chart of one drill.
pub fn drill_chart(r: &DrillRecord) -> String {
    let s = |us: Micros| us as f64 / 1e6;
    let events = &r.timeline.events;
    let end = events.last().map_or(1.0, |e| s(e.t_us));
    let t0 = r.timeline.t0().map(s);
    let m = &r.metrics;
    let rto = m.rto.seconds();
    let mttd = m.detection().seconds();
    let mut domain_end = end;
    if let (Some(t0), Some(target)) = (t0, r.targets.rto_s) {
        domain_end = domain_end.max(t0 + target * 1.02);
    }
    let scale = Scale { start: 0.0, end: domain_end };

    let lanes = r.probes.len() + r.steps.len();
    let top = 56.0;
    let plot_h = lanes as f64 * (LANE + GAP);
    // Below the plot: the axis, one row per marker label, the legend.
    let height = top + plot_h + 24.0 + 5.0 * 14.0 + 26.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="Drill timeline of {name}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">"#,
        name = xml_escape(&r.scenario.name)
    );
    let _ = write!(out, r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##);
    let _ = write!(
        out,
        r##"<text x="{LABEL}" y="22" font-size="15" font-weight="600" fill="#1d2330">{} — {}</text>"##,
        xml_escape(&r.scenario.name),
        xml_escape(r.outcome.describe())
    );

    // A room's marks are labelled as what they are: declared, not observed.
    let tabletop = r.environment == EnvironmentKind::Tabletop;
    // The fault window.
    if let Some(t0) = t0 {
        let reverted = events
            .iter()
            .find(|e| matches!(e.kind, EventKind::FaultReverted { .. } | EventKind::RevertFailed { .. }))
            .map_or(end, |e| s(e.t_us));
        let (x0, x1) = (scale.x(t0), scale.x(reverted));
        let _ = write!(
            out,
            r##"<rect x="{x0:.1}" y="{}" width="{:.1}" height="{}" fill="#fbe3e3"/><text x="{:.1}" y="{}" fill="#9b2c2c" font-size="11">{}</text>"##,
            top - 8.0,
            (x1 - x0).max(1.0),
            plot_h + 8.0,
            x0 + 4.0,
            top - 12.0,
            if tabletop { "the scenario, as the room played it" } else { "fault active" }
        );
    }

    // Grid and axis.
    let step = tick_step(domain_end);
    let origin = t0.unwrap_or(0.0);
    let mut tick = origin - (origin / step).floor() * step;
    while tick <= domain_end + 1e-9 {
        let x = scale.x(tick);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#e6e8ee"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555c6b" font-size="11">{}</text>"##,
            top - 8.0,
            top + plot_h,
            top + plot_h + 16.0,
            short(tick - origin)
        );
        tick += step;
    }

    // Probe lanes.
    let mut y = top;
    for p in &r.probes {
        let mut points = Vec::new();
        for e in events {
            match &e.kind {
                EventKind::Sample { probe, ok, .. } | EventKind::LedgerWrite { probe, acked: ok, .. }
                    if *probe == p.name =>
                {
                    points.push((s(e.t_us), *ok))
                }
                _ => {}
            }
        }
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#1d2330">{}</text><text x="{}" y="{:.1}" text-anchor="end" fill="#7a8191" font-size="10">{}</text>"##,
            LABEL - 10.0,
            y + 10.0,
            xml_escape(&p.name),
            LABEL - 10.0,
            y + 21.0,
            xml_escape(p.kind.as_str())
        );
        let _ = write!(
            out,
            r##"<rect x="{LABEL}" y="{y:.1}" width="{:.1}" height="{LANE}" fill="#f3f4f7"/>"##,
            scale.x(end) - LABEL
        );
        for (a, b, ok) in runs(&points, end) {
            let (x0, x1) = (scale.x(a), scale.x(b));
            let _ = write!(
                out,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{LANE}" fill="{}"><title>{}: {} from {} to {}</title></rect>"#,
                (x1 - x0).max(0.8),
                if ok { OK } else { FAIL },
                xml_escape(&p.name),
                if ok { "ok" } else { "failing" },
                short(a - origin),
                short(b - origin)
            );
        }
        if p.kind == ProbeKind::WriteLedger {
            let lost: std::collections::HashSet<u64> = m.rpo.lost_records.iter().copied().collect();
            for e in events {
                if let EventKind::LedgerWrite { probe, seq, .. } = &e.kind {
                    if *probe == p.name && lost.contains(seq) {
                        let x = scale.x(s(e.t_us));
                        let _ = write!(
                            out,
                            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#1d2330" stroke-width="2"><title>record {seq} acknowledged, then lost</title></line>"##,
                            y - 3.0,
                            y + LANE + 3.0
                        );
                    }
                }
            }
        }
        y += LANE + GAP;
    }

    // Step lanes: the budget as an outline, the actual time as a bar.
    for (info, timing) in r.steps.iter().zip(&m.steps) {
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#1d2330">{}</text>"##,
            LABEL - 10.0,
            y + 15.0,
            xml_escape(&truncate(&format!("{}. {}", timing.step + 1, info.name), 30))
        );
        if let (Some(t0), Some(start)) = (t0, timing.started_s) {
            let a = t0 + start;
            if let Some(budget) = info.budget_s {
                let _ = write!(
                    out,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{LANE}" fill="none" stroke="#9aa3b5" stroke-dasharray="4 3"><title>budget {}</title></rect>"##,
                    scale.x(a),
                    y,
                    scale.x(a + budget) - scale.x(a),
                    secs(budget)
                );
            }
            let took = timing.duration_s.unwrap_or(end - a);
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{}" rx="3" fill="{}"><title>{}: took {} ({})</title></rect>"#,
                scale.x(a),
                y + 4.0,
                (scale.x(a + took) - scale.x(a)).max(1.5),
                LANE - 8.0,
                if timing.over_budget { OVER } else { STEP },
                xml_escape(&info.name),
                secs(took),
                xml_escape(timing.status.as_str())
            );
        }
        y += LANE + GAP;
    }

    // Markers: fault active, detection, recovery, targets.
    if let Some(t0) = t0 {
        let mut marker = |t: f64, color: &str, label: &str, dashed: bool, row: f64| {
            let x = scale.x(t);
            let dash = if dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let label_y = top + plot_h + 34.0 + row * 14.0;
            // Labels near the right edge are written leftwards so they stay on the chart.
            let (anchor, tx) = if x > WIDTH - 190.0 { ("end", x - 4.0) } else { ("start", x + 4.0) };
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"{dash}/><line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="1" stroke-dasharray="1 2"/><text x="{tx:.1}" y="{label_y:.1}" text-anchor="{anchor}" fill="{color}" font-size="11" font-weight="600">{}</text>"#,
                top - 8.0,
                top + plot_h,
                top + plot_h + 20.0,
                label_y - 4.0,
                xml_escape(label)
            );
        };
        marker(t0, "#9b2c2c", if tabletop { "T: exercise started" } else { "T: fault active" }, false, 0.0);
        if let Some(d) = mttd.filter(|d| *d > 0.0) {
            let what = match (tabletop, m.mttd_alert.is_some()) {
                (true, _) => "declared detected",
                (false, true) => "alert fired",
                (false, false) => "detected",
            };
            marker(t0 + d, "#b7791f", &format!("{what} T+{}", secs(d)), false, 1.0);
        }
        if let Some(x) = rto.filter(|x| *x > 0.0) {
            let what = if tabletop { "declared restored" } else { "recovered" };
            marker(t0 + x, "#1f7a46", &format!("{what} T+{}", secs(x)), false, 2.0);
        }
        if let Some(target) = r.targets.rto_s {
            marker(t0 + target, "#4a5568", &format!("RTO target {}", secs(target)), true, 3.0);
        }
        if let Some(target) = r.targets.mttd_s {
            marker(t0 + target, "#8a94a6", &format!("MTTD target {}", secs(target)), true, 4.0);
        }
    }

    // Legend.
    let ly = height - 10.0;
    let mut lx = LABEL;
    for (color, label) in [(OK, "ok"), (FAIL, "failing"), (STEP, "step"), (OVER, "step over budget")] {
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{:.1}" width="12" height="10" fill="{color}"/><text x="{}" y="{ly:.1}" fill="#555c6b" font-size="11">{label}</text>"##,
            ly - 9.0,
            lx + 16.0
        );
        lx += 40.0 + label.len() as f64 * 6.0;
    }
    out.push_str("</svg>");
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// A small chart of RTO per drill over time: `(label, rto seconds or None when unmet)`.
pub fn rto_history(points: &[(String, Option<f64>)], target: Option<f64>) -> String {
    let (w, h, pad) = (460.0, 150.0, 48.0);
    let max = points.iter().filter_map(|p| p.1).chain(target).fold(1.0f64, f64::max) * 1.15;
    let x = |i: usize| pad + i as f64 * (w - 2.0 * pad) / (points.len().max(2) - 1) as f64;
    let y = |v: f64| h - pad - v / max * (h - 2.0 * pad);
    let mut out = format!(
        r##"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="RTO per drill" font-family="system-ui, sans-serif" font-size="10"><rect width="{w}" height="{h}" fill="#ffffff"/><line x1="{pad}" x2="{}" y1="{}" y2="{}" stroke="#c5cad6"/>"##,
        w - pad,
        h - pad,
        h - pad
    );
    if let Some(t) = target {
        let _ = write!(
            out,
            r##"<line x1="{pad}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#4a5568" stroke-dasharray="5 4"/><text x="{}" y="{:.1}" fill="#4a5568">target {}</text>"##,
            w - pad,
            y(t),
            y(t),
            pad + 2.0,
            y(t) - 4.0,
            xml_escape(&secs(t))
        );
    }
    // The value axis (0 and its top) and the first and last drill's dates.
    let _ = write!(
        out,
        r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#7a8191">0</text><text x="4" y="{:.1}" fill="#7a8191">RTO axis to {}</text>"##,
        pad - 4.0,
        h - pad + 3.0,
        pad - 22.0,
        xml_escape(&secs(max))
    );
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            out,
            r##"<text x="{pad}" y="{:.1}" fill="#7a8191">{}</text><text x="{}" y="{:.1}" text-anchor="end" fill="#7a8191">{}</text>"##,
            h - pad + 16.0,
            xml_escape(&first.0),
            w - pad,
            h - pad + 16.0,
            xml_escape(&last.0)
        );
    }
    let line: Vec<String> =
        points.iter().enumerate().filter_map(|(i, p)| p.1.map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
    if line.len() > 1 {
        let _ =
            write!(out, r##"<polyline points="{}" fill="none" stroke="#3b6fd6" stroke-width="1.5"/>"##, line.join(" "));
    }
    for (i, (label, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                let missed = target.is_some_and(|t| *v > t);
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: RTO {}</title></circle>"#,
                    x(i),
                    y(*v),
                    if missed { FAIL } else { STEP },
                    xml_escape(label),
                    xml_escape(&secs(*v))
                );
            }
            None => {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{FAIL}" font-weight="700">×<title>{}: not recovered</title></text>"#,
                    x(i),
                    pad,
                    xml_escape(label)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}
