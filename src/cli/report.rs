//! `firedrill report`: the compliance summary of stored results, or their integrity check.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use firedrill::record::Integrity;
use firedrill::report::summary;
use firedrill::score::{EXIT_INVALID, EXIT_OK, EXIT_TARGET_MISSED};
use firedrill::store::{Reports, ReportsLocation};

use super::scenarios::load_all;
use super::{CliError, Output};

/// Summarize stored results for a period: per scenario, drills, MTTR, p50/p95 RTO, worst
/// RPO, targets met, trend, and scenarios not drilled at all.
#[derive(Args)]
pub struct ReportArgs {
    /// Where the JSON results are: a folder, or `s3://BUCKET/PREFIX` (as `run --reports`).
    #[arg(required_unless_present = "reports", value_name = "DIR|s3://BUCKET/PREFIX")]
    dir: Option<ReportsLocation>,
    /// The same, named as `run` names it.
    #[arg(long, conflicts_with = "dir", value_name = "DIR|s3://BUCKET/PREFIX")]
    reports: Option<ReportsLocation>,
    /// Start of the period (a date, `2026-01-01`, or a timestamp), inclusive.
    #[arg(long)]
    since: Option<String>,
    /// End of the period, exclusive.
    #[arg(long)]
    until: Option<String>,
    /// Only this scenario, with its full history.
    #[arg(long)]
    scenario: Option<String>,
    /// Formats written: md, html, json (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md")]
    format: Vec<SummaryFormat>,
    /// Where the summary is written, a folder or an S3 prefix (default: where the results are).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    out: Option<ReportsLocation>,
    /// Scenario files or folders that should have been drilled: listed as gaps when not.
    #[arg(long)]
    expect: Vec<PathBuf>,
    /// Check every result against its integrity hash; exit 1 if any was edited.
    #[arg(long)]
    verify: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryFormat {
    Md,
    Html,
    Json,
}

impl ReportArgs {
    /// Prints the summary (Markdown) and writes it in every format asked for; with
    /// `--verify`, checks the results instead.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let location = self.dir.or(self.reports).expect("clap requires one of them");
        let results = Reports::open(&location)?;
        if self.verify {
            return verify(&results, out);
        }
        let since = self.since.as_deref().map(|s| parse_time(s, "since")).transpose()?;
        let until = self.until.as_deref().map(|u| parse_time(u, "until")).transpose()?;
        let loaded = results.load()?;
        let mut expected = Vec::new();
        if !self.expect.is_empty() {
            match load_all(&self.expect, out, |_, _, _| {}) {
                Ok(s) => expected = s.into_iter().map(|s| s.name).collect(),
                Err(_) => return Ok(EXIT_INVALID),
            }
        }
        let s = summary::summarize(&loaded, since, until, self.scenario.as_deref(), &expected);
        out.print(&summary::render_md(&s));
        let written_to = match self.out {
            Some(location) if location != results.location() => Reports::open(&location)?,
            _ => results,
        };
        for f in &self.format {
            let (ext, text) = match f {
                SummaryFormat::Md => ("md", summary::render_md(&s)),
                SummaryFormat::Html => ("html", summary::render_html(&s)),
                SummaryFormat::Json => ("summary.json", serde_json::to_string_pretty(&s).expect("plain data") + "\n"),
            };
            let name = match &self.scenario {
                Some(n) => format!("history-{n}.{ext}"),
                None => format!("compliance-summary.{ext}"),
            };
            let path = written_to.put(&name, &text)?;
            out.eprintln(&format!("wrote {}", path.display()));
        }
        for skipped in &loaded.unreadable {
            out.eprintln(&format!("warning: {skipped}"));
        }
        Ok(EXIT_OK)
    }
}

/// `report --verify`: one line per result, exit 1 when any fails its integrity check.
fn verify(results: &Reports, out: &Output) -> Result<i32, CliError> {
    let checked = results.verify()?;
    let mut bad = 0;
    for (path, status) in &checked {
        let line = match status {
            Integrity::Intact => "intact".to_string(),
            Integrity::Tampered { recorded, actual } => {
                bad += 1;
                format!("EDITED after it was written (recorded sha256 {recorded}, content now {actual})")
            }
            Integrity::Unsigned => {
                bad += 1;
                "NO integrity hash".to_string()
            }
            Integrity::Unreadable { error } => {
                bad += 1;
                format!("UNREADABLE: {error}")
            }
        };
        out.println(&format!("{:<10} {}", line.split(' ').next().unwrap_or(""), path.display()));
        if !matches!(status, Integrity::Intact) {
            out.eprintln(&format!("error: {}: {line}", path.display()));
        }
    }
    out.println(&format!("{} result(s) checked, {bad} failed verification", checked.len()));
    Ok(if bad > 0 { EXIT_TARGET_MISSED } else { EXIT_OK })
}

/// Reads `2026-01-01` or a full timestamp.
fn parse_time(text: &str, flag: &'static str) -> Result<jiff::Timestamp, CliError> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| CliError::Time { flag, text: text.to_string() })
}
