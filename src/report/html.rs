//! The per-drill HTML report: one self-contained file (no scripts, fonts or fetches) with the
//! same content as the Markdown report and the SVG timeline chart.

use std::fmt::Write;

use super::svg::drill_chart;
use super::view::View;
use crate::record::DrillRecord;
use crate::text::xml_escape;

/// The page's style, shared with the compliance summary.
pub(crate) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 2rem auto; max-width: 1140px; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 1.8rem; border-bottom: 1px solid #e6e8ee; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; } th, td { border: 1px solid #e0e3ea; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f4f7; } td.met { color: #1f7a46; font-weight: 600; } td.missed, td.not-measured { color: #b42323; font-weight: 700; }
.warning { background: #fff4e5; border-left: 4px solid #e08a1e; padding: .5rem .8rem; margin: .5rem 0; }
.chart { overflow-x: auto; border: 1px solid #e6e8ee; border-radius: 6px; padding: .4rem; }
.muted { color: #6b7280; font-size: .85rem; }
pre { background: #f7f8fa; border: 1px solid #e6e8ee; padding: .5rem; font-size: .8rem; white-space: pre-wrap; overflow-wrap: anywhere; }
h3 { font-size: .95rem; }
@media print { body { margin: 0; max-width: none; } .chart { border: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"#;

/// An HTML table; a cell whose text is a verdict word gets its class.
pub(crate) fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", xml_escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            let class = match c.as_str() {
                "met" => " class=\"met\"",
                "MISSED" => " class=\"missed\"",
                "NOT MEASURED" => " class=\"not-measured\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", xml_escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// Renders a drill record as a self-contained HTML page.
pub fn render(r: &DrillRecord) -> String {
    let v = View::of(r);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Drill report: {}</title><style>{STYLE}</style></head><body>",
        xml_escape(&r.scenario.name)
    );
    let _ = write!(out, "<h1>Drill report: {}</h1>", xml_escape(&r.scenario.name));
    for w in &v.warnings {
        let _ = write!(out, "<div class=\"warning\"><strong>Warning:</strong> {}</div>", xml_escape(w));
    }
    out.push_str("<table>");
    for (k, val) in &v.facts {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", xml_escape(k), xml_escape(val));
    }
    out.push_str("</table>");

    out.push_str("<h2>Results</h2>");
    let results: Vec<Vec<String>> = v.results.iter().map(|r| r.to_vec()).collect();
    table(&mut out, &["Metric", v.value_heading, "Target", "Verdict", "Margin"], &results);
    let _ = write!(out, "<p class=\"muted\">{}</p>", xml_escape(v.results_note));

    out.push_str("<h2>Timeline chart</h2><div class=\"chart\">");
    out.push_str(&drill_chart(r));
    out.push_str("</div>");

    if !v.steps.is_empty() {
        out.push_str("<h2>Procedure</h2>");
        let steps: Vec<Vec<String>> = v.steps.iter().map(|r| r.to_vec()).collect();
        table(&mut out, &["#", "Step", "Kind", "Started", "Took", "Budget", "Status"], &steps);
    }
    if let Some(loss) = &v.data_loss {
        let _ = write!(out, "<h2>Data loss evidence</h2><p>{}</p>", xml_escape(loss));
    }
    if !v.probes.is_empty() {
        out.push_str("<h2>Probes</h2>");
        let probes: Vec<Vec<String>> = v.probes.iter().map(|r| r.to_vec()).collect();
        table(&mut out, &["Probe", "Check", "Target", "Interval", "Samples", "Failed", "Measures"], &probes);
    }

    out.push_str("<h2>Timeline</h2>");
    if !v.probes.is_empty() {
        out.push_str(
            "<p class=\"muted\">Probe samples are shown as changes of state; every sample is in the JSON record.</p>",
        );
    }
    let rows: Vec<Vec<String>> = v.timeline.iter().map(|t| vec![t.rel.clone(), t.at.clone(), t.text.clone()]).collect();
    table(&mut out, &["T", "Time", "Event"], &rows);
    if !v.evidence.is_empty() {
        out.push_str("<h2>Evidence</h2>");
        for (source, text, truncated) in &v.evidence {
            let _ = write!(out, "<h3>{}</h3>", xml_escape(&View::evidence_heading(source, text, *truncated)));
            if !text.is_empty() {
                let _ = write!(out, "<pre>{}</pre>", xml_escape(text.trim_end()));
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}
