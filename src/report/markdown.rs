//! The per-drill Markdown report: reads well on screen and printed, for a reader who was not
//! there.

use std::fmt::Write;

use super::view::View;
use crate::record::DrillRecord;

/// A table cell: pipes escaped, and `<`/`>` as entities so a Markdown renderer never reads
/// text from a scenario as HTML.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ").replace('<', "&lt;").replace('>', "&gt;")
}

fn table<const N: usize>(out: &mut String, head: [&str; N], rows: &[[String; N]]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(N));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// Renders a drill record as Markdown.
pub fn render(r: &DrillRecord) -> String {
    let v = View::of(r);
    let mut out = String::new();
    let _ = writeln!(out, "# Drill report: {}\n", r.scenario.name);
    for w in &v.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", cell(w));
    }
    let facts: Vec<[String; 2]> = v.facts.iter().map(|(k, val)| [format!("**{k}**"), val.clone()]).collect();
    table(&mut out, ["", ""], &facts);

    let _ = writeln!(out, "## Results\n");
    table(&mut out, ["Metric", v.value_heading, "Target", "Verdict", "Margin"], &v.results);
    let _ = writeln!(out, "{}\n", v.results_note);

    if !v.steps.is_empty() {
        let _ = writeln!(out, "## Procedure\n");
        table(&mut out, ["#", "Step", "Kind", "Started", "Took", "Budget", "Status"], &v.steps);
    }
    if let Some(loss) = &v.data_loss {
        let _ = writeln!(out, "## Data loss evidence\n\n{loss}\n");
    }
    if !v.probes.is_empty() {
        let _ = writeln!(out, "## Probes\n");
        table(&mut out, ["Probe", "Check", "Target", "Interval", "Samples", "Failed", "Measures"], &v.probes);
    }

    let _ = writeln!(out, "## Timeline\n");
    if !v.probes.is_empty() {
        let _ = writeln!(out, "Probe samples are shown as changes of state; every sample is in the JSON record.\n");
    }
    let rows: Vec<[String; 3]> = v.timeline.iter().map(|t| [t.rel.clone(), t.at.clone(), t.text.clone()]).collect();
    table(&mut out, ["T", "Time", "Event"], &rows);
    if !v.evidence.is_empty() {
        let _ = writeln!(out, "\n## Evidence\n");
        for (source, text, truncated) in &v.evidence {
            let _ = writeln!(out, "### {}\n", View::evidence_heading(source, text, *truncated));
            if !text.is_empty() {
                // A fence longer than any backtick run in the log keeps it a code block.
                let fence = "`".repeat(3.max(longest_backtick_run(text) + 1));
                let _ = writeln!(out, "{fence}text\n{}\n{fence}\n", text.trim_end());
            }
        }
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
