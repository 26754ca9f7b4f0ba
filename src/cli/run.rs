//! `firedrill run`: runs scenarios, prints their scores, writes their records and renderings.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use firedrill::drill::{self, DrillError, RunOptions, ScenarioRun};
use firedrill::env::dry_run::each_fault;
use firedrill::report::{self, terminal, Format};
use firedrill::scenario::{EnvironmentSpec, Fault, Scenario, StepAction};
use firedrill::score::{EXIT_INVALID, EXIT_OK};
use firedrill::store::{Reports, ReportsLocation};
use firedrill::text::error_chain;
use firedrill::timeline::{Event, EventKind, Outcome};

use super::recover::{print_survey, StateDirArg};
use super::scenarios::load_all;
use super::{CliError, Output};

/// Run scenarios (files, or folders of .yaml files) and score them.
///
/// Exit code: 0 every target met, 1 a target missed or not measured, 2 invalid input or
/// an environment that could not be used.
#[derive(Args)]
pub struct RunArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Run each scenario this many times (MTTR is their mean RTO).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Seed of the first run (run i uses seed + i); random when absent, and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Where the JSON results are written, and history read from: a folder, or
    /// `s3://BUCKET/PREFIX` (the AWS standard configuration: environment, profiles,
    /// `AWS_ENDPOINT_URL_S3`), where many teams' drills can land in one place.
    #[arg(long, default_value = "reports", value_name = "DIR|s3://BUCKET/PREFIX")]
    reports: ReportsLocation,
    /// Write no results.
    #[arg(long)]
    no_write: bool,
    /// Judge MTTR on this invocation's drills only, not the stored history.
    #[arg(long)]
    no_history: bool,
    /// `virtual`: sim drills take milliseconds; `real`: they play out on the wall clock
    /// (a live tabletop exercise), with progress shown.
    #[arg(long, value_enum, default_value_t = Pace::Virtual)]
    pace: Pace,
    /// Reports written beside each JSON result: md, html, junit (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    report: Vec<ReportFormat>,
    /// Who runs the drill, recorded in the results.
    #[arg(long)]
    operator: Option<String>,
    /// Undo what earlier drills left applied (as `firedrill recover --all` does) before
    /// running, instead of refusing to run.
    #[arg(long)]
    recover: bool,
    #[command(flatten)]
    state: StateDirArg,
    /// Stop at once when this file appears: the drill in progress reverts its fault and ends
    /// aborted, the remaining drills are not run (SIGUSR1 does the same).
    #[arg(long, value_name = "FILE")]
    kill_switch: Option<PathBuf>,
    /// Push each drill's metrics and verdicts to the Prometheus Pushgateway at this URL (its
    /// scenario's group, `job="firedrill"`), for the team's dashboards.
    #[cfg(feature = "live")]
    #[arg(long, value_name = "URL")]
    push: Option<String>,
    /// Export each drill as an OpenTelemetry span, its timeline as the span's events, to the
    /// OTLP/HTTP collector at this URL (`/v1/traces` is added: `http://localhost:4318`); without
    /// it, to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` when set.
    #[cfg(feature = "otel")]
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Show what each drill would touch (containers, networks, faults, commands, load) and
    /// change nothing; exit 2 when something a drill needs is missing.
    #[arg(long)]
    dry_run: bool,
    /// Drill containers firedrill did not start (`attach`) without asking; also when `CI` is set.
    #[arg(long)]
    yes: bool,
    /// The kubeconfig context the kube scenarios must name (`environment.context`): a
    /// scenario naming another is refused. Without it, each kube scenario runs against its own
    /// context, never the kubeconfig's current one.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Md,
    Html,
    Junit,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pace {
    Virtual,
    Real,
}

impl RunArgs {
    /// Runs every scenario; an invalid file stops everything before the first drill, a
    /// scenario whose drills cannot run is reported and the next one runs.
    pub fn exec(self, out: &mut Output) -> Result<i32, CliError> {
        let scenarios = match load_all(&self.paths, out, |_, _, _| {}) {
            Ok(s) => s,
            Err(invalid) => {
                out.eprintln(&format!("{invalid} scenario file(s) invalid: nothing was run"));
                return Ok(EXIT_INVALID);
            }
        };
        let out: &Output = out;
        let mut foreign = foreign_contexts(&scenarios, self.context.as_deref());
        if foreign.is_empty() && !self.dry_run {
            foreign = missing_contexts(&scenarios);
        }
        if !foreign.is_empty() {
            for line in &foreign {
                out.eprintln(line);
            }
            out.eprintln("nothing was run");
            return Ok(EXIT_INVALID);
        }
        if self.dry_run {
            return Ok(super::dry_run::print(&scenarios, out, &self.state.dir()));
        }
        // A switch already pulled would abort every drill: say so before anything is injected
        // (or a reports folder made).
        if let Some(file) = self.kill_switch.as_ref().filter(|f| f.exists()) {
            out.eprintln(&format!(
                "error: the kill switch {} already exists: nothing was run; remove it to run drills",
                file.display()
            ));
            return Ok(EXIT_INVALID);
        }
        if !confirmed_attached(&scenarios, self.yes, out) {
            return Ok(EXIT_INVALID);
        }
        // A drill is not cheap to run again: refuse before anything is injected rather than
        // find out, after it, that its record has nowhere to go.
        let reports = match (!self.no_write).then(|| Reports::open(&self.reports)).transpose() {
            Ok(reports) => reports,
            Err(e) => {
                out.error(&e);
                return Ok(EXIT_INVALID);
            }
        };
        if let Some(Err(e)) = reports.as_ref().map(Reports::check_writable) {
            out.error(&e);
            return Ok(EXIT_INVALID);
        }
        // A fault an earlier drill left applied would be measured as part of this one.
        let state_dir = self.state.dir();
        if let Err(e) = self.settle_leftovers(out, &state_dir) {
            out.error(&e);
            return Ok(e.exit_code());
        }
        let seed = self.seed.unwrap_or_else(random_seed);
        let formats: Vec<Format> = self
            .report
            .iter()
            .map(|f| match f {
                ReportFormat::Md => Format::Markdown,
                ReportFormat::Html => Format::Html,
                ReportFormat::Junit => Format::Junit,
            })
            .collect();
        out.println(&format!(
            "firedrill {}: {} scenario(s), {} run(s) each, seed {seed}\n",
            env!("CARGO_PKG_VERSION"),
            scenarios.len(),
            self.repeat
        ));
        let progress = (self.pace == Pace::Real).then(Progress::new);
        let show = |e: &Event| {
            if let Some(p) = &progress {
                p.event(e, out);
            }
        };
        let opts = RunOptions {
            seed,
            repeat: self.repeat,
            reports,
            history: !self.no_history,
            real_time: self.pace == Pace::Real,
            on_event: progress.as_ref().map(|_| &show as &dyn Fn(&Event)),
            operator: self.operator,
            state_dir,
            kill_switch: self.kill_switch,
        };
        #[cfg(feature = "otel")]
        let otlp = match report::otel::traces_endpoint(self.otlp.as_deref(), |name| std::env::var(name).ok()) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                out.error(&e);
                return Ok(EXIT_INVALID);
            }
        };
        let mut code = EXIT_OK;
        let mut summary = Vec::new();
        // Every scenario's history reads the same folder: warn about a file once.
        let mut warned = std::collections::HashSet::new();
        // Records written somewhere else than the reports folder, or not at all.
        let mut unwritten = 0;
        for s in &scenarios {
            // The records are written by the drills; the renderings are written from them, after
            // them: a record is the evidence, never held back for a rendering that may fail.
            let result = drill::run_scenario(s, &opts).map_err(CliError::from).and_then(|run| {
                if let Some(reports) = &opts.reports {
                    for (path, text) in report::renderings(&run, &formats) {
                        reports.put_beside(&path, &text)?;
                    }
                }
                Ok(run)
            });
            if let Some(p) = &progress {
                p.bar.finish_and_clear();
            }
            let run = match result {
                Ok(r) => r,
                Err(e) => {
                    out.error(&e);
                    code = code.max(e.exit_code());
                    if matches!(e, CliError::Drill(DrillError::Report(_) | DrillError::Store(_)) | CliError::Store(_)) {
                        unwritten += 1;
                    }
                    continue;
                }
            };
            for (kept, error) in &run.unsaved {
                out.eprintln(&format!(
                    "error: {}; the record was kept at {} instead",
                    error_chain(error),
                    kept.display()
                ));
                code = code.max(EXIT_INVALID);
                unwritten += 1;
            }
            for skipped in run.skipped.iter().filter(|s| warned.insert(s.path.clone())) {
                out.eprintln(&format!("warning: {skipped}"));
            }
            print_run(out, s, &run, self.repeat);
            code = code.max(run.exit_code());
            // The records are written already: a push or an export that fails loses nothing.
            #[cfg(feature = "live")]
            if let Some(url) = &self.push {
                match push(url, &run) {
                    Ok(()) => out.println(&format!("pushed to {url}")),
                    Err(e) => {
                        out.error(&e);
                        code = code.max(e.exit_code());
                    }
                }
            }
            #[cfg(feature = "otel")]
            if let Some(endpoint) = &otlp {
                match report::otel::export(endpoint, &run, &s.redact) {
                    Ok(()) => out.println(&format!("exported to {endpoint}")),
                    Err(e) => {
                        out.error(&e);
                        code = code.max(EXIT_INVALID);
                    }
                }
            }
            let cancelled = run.drills.iter().any(|(r, _)| r.outcome == Outcome::Cancelled);
            let killed = run.drills.iter().find_map(|(r, _)| r.timeline.kill_switch().map(str::to_string));
            summary.push((s.name.clone(), run));
            if let Some(switch) = killed {
                out.eprintln(&format!("kill switch pulled ({switch}): the remaining drills were not run"));
                break;
            }
            if cancelled {
                out.eprintln("interrupted: the remaining drills were not run");
                break;
            }
        }
        match opts.reports.as_ref().map(Reports::location) {
            Some(location) if unwritten == 0 => out.println(&format!("results written to {location}/")),
            Some(location) => {
                out.eprintln(&format!("{unwritten} result(s) could not be written to {location}/ (see above)"))
            }
            None => {}
        }
        if summary.len() > 1 {
            out.println("");
            for (name, run) in &summary {
                let verdict = match run.exit_code() {
                    0 => "all targets met",
                    1 => "TARGET MISSED",
                    _ => "COULD NOT RUN",
                };
                out.println(&format!("{name:<24} {verdict}"));
            }
        }
        Ok(code)
    }
}

impl RunArgs {
    /// Refuses to run while journals of dead drills have open entries, or with `--recover`
    /// undoes them first.
    fn settle_leftovers(&self, out: &Output, state_dir: &std::path::Path) -> Result<(), CliError> {
        let (left, unreadable) = firedrill::journal::leftovers(&firedrill::journal::journal_dir(state_dir));
        // A journal that cannot be read may hold changes still in effect: it blocks as well.
        for e in &unreadable {
            out.eprintln(&format!("error: {}", error_chain(e)));
        }
        if !unreadable.is_empty() {
            return Err(CliError::UnreadableJournals { count: unreadable.len() });
        }
        if left.is_empty() {
            return Ok(());
        }
        let runs: Vec<String> = left.iter().map(|c| c.begin.run.clone()).collect();
        if !self.recover {
            let survey = firedrill::recover::survey(state_dir)?;
            let journalled = firedrill::recover::Survey {
                runs: survey.runs.into_iter().filter(|l| runs.contains(&l.run)).collect(),
                ..survey
            };
            print_survey(out, &journalled, state_dir);
            return Err(CliError::Leftovers { count: runs.len() });
        }
        out.println(&format!("recovering what {} earlier drill(s) left:", runs.len()));
        match super::recover::undo(out, state_dir, Some(&runs))? {
            EXIT_OK => Ok(()),
            _ => Err(CliError::Leftovers { count: runs.len() }),
        }
    }
}

/// One error line per kube scenario whose context is not `given` (`--context`): a drill runs
/// against the cluster its scenario names, and `--context` is the operator saying which one
/// they mean, so a difference stops everything before anything is touched.
fn foreign_contexts(scenarios: &[Scenario], given: Option<&str>) -> Vec<String> {
    let Some(given) = given else { return vec![] };
    scenarios
        .iter()
        .filter_map(|s| match &s.environment {
            EnvironmentSpec::Kube(cluster) if cluster.context != given => Some(format!(
                "error: {}: context {given} is not this scenario's ({})",
                s.path.display(),
                cluster.context
            )),
            _ => None,
        })
        .collect()
}

/// One error line per kube scenario whose context the user's kubeconfig lacks (or that cannot
/// be read), naming its files: found before any drill, so that none runs when another could not.
#[cfg(feature = "kube")]
fn missing_contexts(scenarios: &[Scenario]) -> Vec<String> {
    scenarios
        .iter()
        .filter_map(|s| match &s.environment {
            EnvironmentSpec::Kube(cluster) => firedrill::env::kube::connect::has_context(&cluster.context)
                .err()
                .map(|e| format!("error: {}: {}", s.path.display(), error_chain(&e))),
            _ => None,
        })
        .collect()
}

/// Without the kube environment, a kube scenario is refused when it loads.
#[cfg(not(feature = "kube"))]
fn missing_contexts(_: &[Scenario]) -> Vec<String> {
    Vec::new()
}

/// Containers firedrill did not start are drilled only when someone said so: `--yes`, a CI
/// job (`CI` set), or an answer on the terminal, after each one and what touches it is listed.
/// Without a terminal to ask on, the drills are refused rather than run unasked.
fn confirmed_attached(scenarios: &[Scenario], yes: bool, out: &Output) -> bool {
    let attached: Vec<String> = scenarios.iter().flat_map(attached_lines).collect();
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if attached.is_empty() || yes || in_ci {
        return true;
    }
    out.eprintln("These drills fault containers that firedrill did not start:");
    for line in &attached {
        out.eprintln(line);
    }
    if !std::io::stdin().is_terminal() {
        out.eprintln(
            "error: no terminal to confirm on, so nothing was run: pass --yes to drill them (CI=true does too)",
        );
        return false;
    }
    out.eprintln("Continue? [y/N]");
    let mut answer = String::new();
    let confirmed = std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !confirmed {
        out.eprintln("not confirmed: nothing was run");
    }
    confirmed
}

/// One line per container `s` attaches to: its name in the scenario, how it is found, and
/// the faults and steps that touch it.
fn attached_lines(s: &Scenario) -> Vec<String> {
    let EnvironmentSpec::Docker(stack) = &s.environment else { return vec![] };
    let faults = each_fault(&s.fault);
    stack
        .attach
        .iter()
        .map(|a| {
            let name = a.name.as_str();
            let touched_by = |f: &&&Fault| {
                f.container_target() == Some(name)
                    || matches!(f, Fault::NetworkBlackhole { peer: Some(p), .. } if p == name)
            };
            let mut touches: Vec<String> = faults.iter().filter(touched_by).map(|f| f.describe()).collect();
            touches.extend(s.steps.iter().filter_map(|step| match &step.action {
                StepAction::Run { argv, container: Some(c) } if c == name => {
                    Some(format!("step `{}` runs `{}` in it", step.name, argv.join(" ")))
                }
                _ => None,
            }));
            let touches = if touches.is_empty() { "probed only".to_string() } else { touches.join("; ") };
            format!("  {}: {name} → {}: {touches}", s.name, a.selector())
        })
        .collect()
}

/// Pushes each drill's metrics to the Pushgateway at `url`, replacing its scenario's group,
/// so the gauges say what the latest drill measured.
#[cfg(feature = "live")]
fn push(url: &str, run: &ScenarioRun) -> Result<(), CliError> {
    use firedrill::report::pushgateway;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
    for (record, _, mttr) in run.drills_with_mttr() {
        let group = format!("{}{}", url.trim_end_matches('/'), pushgateway::group_path(&record.scenario.name));
        let body = pushgateway::exposition(record, mttr, jiff::Timestamp::now()).into();
        let put = firedrill::probe::request("PUT", &group, None, body);
        let (status, answer) = runtime
            .block_on(async { tokio::time::timeout(report::EXPORT_TIMEOUT, put).await })
            .map_err(|_| CliError::PushTimedOut { url: group.clone() })?
            .map_err(|source| CliError::Push { url: group.clone(), source })?;
        if !(200..300).contains(&status) {
            let answer = String::from_utf8_lossy(&answer).trim().to_string();
            return Err(CliError::PushRefused { url: group, status, answer });
        }
    }
    Ok(())
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (nanos as u64 ^ ((std::process::id() as u64) << 32)) % 1_000_000
}

fn print_run(out: &Output, s: &Scenario, run: &ScenarioRun, repeat: u32) {
    if repeat == 1 {
        for (record, path) in &run.drills {
            out.print(&terminal::drill(record, repeat));
            if let Some(p) = path {
                out.println(&format!("result: {}", p.display()));
            }
        }
    } else {
        out.print(&terminal::runs(run));
    }
    if repeat > 1 || run.history > 0 || run.mttr_verdict.is_some() {
        out.print(&terminal::mttr(&s.name, run));
    }
    out.println("");
}

/// The progress line of a real-time drill: elapsed time and the latest event.
struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Shows lifecycle events; on a terminal as the spinner's message, elsewhere (CI logs)
    /// as lines. Either way masked: events carry names and descriptions from the scenario.
    fn event(&self, e: &Event, out: &Output) {
        let msg = match &e.kind {
            EventKind::DrillStarted { scenario, .. } => format!("{scenario}: waiting for steady state"),
            EventKind::SteadyState { ok, phase, .. } => {
                format!("steady state {phase}: {}", if *ok { "ok" } else { "not ok" })
            }
            EventKind::FaultInjected { description, .. } => format!("injecting: {description}"),
            EventKind::FaultActive => "fault active; probing for recovery".into(),
            EventKind::StepStarted { step, name } => format!("step {}: {name}", step + 1),
            EventKind::StepFinished { step, ok, .. } => {
                format!("step {} {}", step + 1, if *ok { "done" } else { "FAILED" })
            }
            EventKind::Escalation { step, .. } => match step {
                Some(s) => format!("ESCALATION: step {} is over its threshold", s + 1),
                None => "ESCALATION: the procedure is over its threshold".into(),
            },
            EventKind::RecoveryConfirmed => "recovery confirmed".into(),
            EventKind::FaultReverted { reason } => format!("fault reverted ({reason})"),
            EventKind::RevertFailed { error } => format!("REVERT FAILED: {error}"),
            EventKind::Cancelled => "interrupted: reverting".into(),
            EventKind::DeadlineReached => "deadline reached: reverting".into(),
            EventKind::StopConditionReached { probe, breach: None, .. } => {
                format!("stop condition on `{probe}`: aborting")
            }
            EventKind::StopConditionReached { probe, breach: Some(breach), .. } => {
                format!("stop condition on `{probe}` ({breach}): aborting")
            }
            EventKind::KillSwitch { switch } => format!("kill switch pulled ({switch}): reverting at once"),
            _ => return,
        };
        if self.bar.is_hidden() {
            out.eprintln(&format!("[{:>8.1}s] {msg}", e.t_us as f64 / 1e6));
        } else {
            self.bar.set_message(out.mask(&msg));
        }
    }
}
