//! The command line: clap subcommands over the library. Parses, calls, prints; nothing else.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use firedrill::drill::{self, Format, RunOptions, ScenarioRun};
#[cfg(feature = "live")]
use firedrill::duration::{Dur, Rate};
#[cfg(feature = "live")]
use firedrill::load;
use firedrill::record;
use firedrill::report::summary;
use firedrill::report::terminal;
use firedrill::scenario::{self, Scenario, ScenarioError};
use firedrill::score::{EXIT_INVALID, EXIT_OK};
#[cfg(feature = "docker")]
use firedrill::stack;
use firedrill::timeline::{Event, EventKind};

/// Disaster-recovery drills: inject a fault, time the recovery, score it against RTO, RPO,
/// MTTD and MTTR targets.
#[derive(Parser)]
#[command(name = "firedrill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files, or folders of .yaml files) and score them.
    ///
    /// Exit code: 0 every target met, 1 a target missed or not measured, 2 invalid input or
    /// an environment that could not be used.
    Run {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Run each scenario this many times (MTTR is their mean RTO).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Seed of the first run (run i uses seed + i); random when absent, and printed.
        #[arg(long)]
        seed: Option<u64>,
        /// Folder the JSON results are written to, and history read from.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
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
    },
    /// Summarize stored results for a period: per scenario, drills, MTTR, p50/p95 RTO, worst
    /// RPO, targets met, trend, and scenarios not drilled at all.
    Report {
        /// Folder of JSON results.
        dir: PathBuf,
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
        /// Folder the summary is written to (default: the results folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scenario files or folders that should have been drilled: listed as gaps when not.
        #[arg(long)]
        expect: Vec<PathBuf>,
        /// Check every result against its integrity hash; exit 1 if any was edited.
        #[arg(long)]
        verify: bool,
    },
    /// Check scenario files and print every problem with file:line:column.
    Validate {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Show what a scenario would inject, probe and time, without running anything.
    Plan {
        /// Scenario file.
        path: PathBuf,
    },
    /// Predict a scenario's RTO, RPO and MTTD by Monte Carlo over the sim model: percentiles,
    /// the chance of meeting each target, and the steps that drive the RTO.
    Simulate {
        /// Scenario files or folders (environment `sim`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Simulated drills per scenario.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        runs: u64,
        /// Master seed; the same seed gives the same prediction on any number of threads.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// What-if override, `path=value` (e.g. `procedure.steps[2].sim.duration=30s`).
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Print the scenario as is and with the overrides side by side.
        #[arg(long)]
        compare: bool,
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
    /// Print the JSON Schema of the scenario format, for editors.
    Schema,
    #[cfg(feature = "live")]
    /// Send HTTP load to URLs: latency percentiles (overall and per second), errors by class,
    /// the rate reached, and the CPU it cost.
    ///
    /// Open model by default: requests start at `--rate` (or along `--stages`) whatever the
    /// server does, and latency counts from when each was due, so a slow server shows as
    /// latency, not as less load. `--users N` is the closed model instead.
    Load {
        /// `http://` URLs, requested in equal shares; `3*URL` gives a URL three shares.
        #[arg(required = true)]
        urls: Vec<String>,
        /// Arrival rate.
        #[arg(long, default_value = "100/s")]
        rate: Rate,
        /// How long.
        #[arg(long, default_value = "10s")]
        duration: Dur,
        /// Rate stages instead of `--rate`/`--duration`: `200/s:10s,2000/s:60s,200/s:10s`;
        /// a ramp is `0/s..500/s:30s`.
        #[arg(long)]
        stages: Option<String>,
        /// Closed model: this many users, each sending its next request when its last one is
        /// answered, for `--duration`.
        #[arg(long)]
        users: Option<usize>,
        /// The most connections opened (HTTP/2 multiplexes up to 100 requests on each).
        #[arg(long, default_value_t = 256)]
        connections: usize,
        /// A request not answered within this fails as a timeout.
        #[arg(long, default_value = "5s")]
        timeout: Dur,
        /// HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
        #[arg(long)]
        http2: bool,
        /// The request method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request body.
        #[arg(long)]
        body: Option<String>,
        /// `text`, or `json` for the whole measurement, per-second buckets included.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
    /// Run a part of the reference stack (the web service or its load balancer); drills start
    /// these inside containers.
    #[cfg(feature = "docker")]
    Stack {
        #[command(subcommand)]
        part: StackPart,
    },
}

#[cfg(feature = "docker")]
#[derive(Subcommand)]
enum StackPart {
    /// The web service: orders in PostgreSQL, receipts in S3. Ready (listening) once both
    /// answer; a bounded pool, load shedding, a deadline per request with retries inside it,
    /// and a drain on SIGTERM.
    ///
    /// Endpoints: GET /healthz, POST /orders, GET /catalog, PUT and GET /receipts/{key}.
    Shop {
        /// Where to listen.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// PostgreSQL connection string; with several hosts and
        /// `target_session_attrs=read-write`, each new connection finds the primary.
        #[arg(long)]
        db: String,
        /// S3 endpoint URL, e.g. `http://s3:5000`.
        #[arg(long)]
        s3: String,
        /// Bucket the receipts are stored in (created when missing).
        #[arg(long, default_value = "receipts")]
        bucket: String,
        /// Database connections.
        #[arg(long, default_value_t = 3)]
        pool: usize,
        /// Database time one GET /catalog costs; capacity is pool / query-cost reads a second.
        #[arg(long, default_value = "25ms")]
        query_cost: Dur,
        /// Requests in progress beyond which new ones are answered 503 at once.
        #[arg(long, default_value_t = 32)]
        max_inflight: usize,
        /// Each request's deadline, waiting for a connection and retries included.
        #[arg(long, default_value = "1s")]
        timeout: Dur,
        /// After SIGTERM, how long /healthz answers 503 while requests are still served.
        #[arg(long, default_value = "500ms")]
        drain_delay: Dur,
    },
    /// The load balancer: round robin over the healthy backends, active health checks and
    /// passive ones (a refused connection marks its backend down and the request goes to
    /// another).
    ///
    /// Endpoints of its own: GET /lb/status (JSON) and GET /lb/capacity?min=N (200 when at
    /// least N backends are healthy, else 503).
    Lb {
        /// Where to listen.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// A backend, HOST:PORT (repeat the flag); its name is resolved at every health
        /// check, so it may appear later.
        #[arg(long = "backend", required = true)]
        backends: Vec<String>,
        /// The path that answers 200 on a healthy backend.
        #[arg(long, default_value = "/healthz")]
        health_path: String,
        /// Time between two health checks of a backend.
        #[arg(long, default_value = "250ms")]
        interval: Dur,
        /// The longest a request to a backend may take (then 504).
        #[arg(long, default_value = "2s")]
        timeout: Dur,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Md,
    Html,
    Junit,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryFormat {
    Md,
    Html,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pace {
    Virtual,
    Real,
}

/// Runs the command line and returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { paths, repeat, seed, reports, no_write, no_history, pace, report, operator } => {
            let formats = report
                .iter()
                .map(|f| match f {
                    ReportFormat::Md => Format::Markdown,
                    ReportFormat::Html => Format::Html,
                    ReportFormat::Junit => Format::Junit,
                })
                .collect();
            let opts = RunOptions {
                seed: seed.unwrap_or_else(random_seed),
                repeat,
                reports_dir: (!no_write).then_some(reports),
                history: !no_history,
                real_time: pace == Pace::Real,
                on_event: None,
                operator,
                formats,
            };
            run(&paths, opts)
        }
        Command::Report { dir, since, until, scenario, format, out, expect, verify } => report(
            &dir,
            since.as_deref(),
            until.as_deref(),
            scenario.as_deref(),
            &format,
            out.as_deref(),
            &expect,
            verify,
        ),
        Command::Validate { paths } => validate(&paths),
        Command::Plan { path } => match load_checked(&path) {
            Ok(s) => {
                print!("{}", terminal::plan(&s));
                EXIT_OK
            }
            Err(e) => fail(&e),
        },
        Command::Simulate { paths, runs, seed, threads, sets, compare, format } => {
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            simulate(&paths, runs, seed, threads, &sets, compare, format)
        }
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&scenario::json_schema()).expect("plain JSON"));
            EXIT_OK
        }
        #[cfg(feature = "live")]
        Command::Load { urls, rate, duration, stages, users, connections, timeout, http2, method, body, format } => {
            let model = match (users, stages) {
                (Some(_), Some(_)) => {
                    return fail(&"--users (closed model) and --stages (open model) exclude each other")
                }
                (Some(users), None) => load::Model::Closed { users, duration: duration.0 },
                (None, Some(text)) => match parse_stages(&text) {
                    Ok(stages) => load::Model::Open(stages),
                    Err(e) => return fail(&format!("--stages: {e}")),
                },
                (None, None) => load::Model::Open(vec![load::Stage::constant(rate.per_sec(), duration.0)]),
            };
            let method = match method.to_uppercase().parse::<load::Method>() {
                Ok(m) => m,
                Err(_) => return fail(&format!("--method: `{method}` is not an HTTP method")),
            };
            let body = load::Bytes::from(body.unwrap_or_default());
            let mut targets = Vec::new();
            for arg in &urls {
                // `3*URL`: three shares of the requests.
                let (weight, url) = match arg.split_once('*') {
                    Some((n, url)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => match n.parse() {
                        Ok(n) => (n, url),
                        Err(_) => return fail(&format!("`{arg}`: the weight `{n}` is too large")),
                    },
                    _ => (1, arg.as_str()),
                };
                targets.push(load::Target { method: method.clone(), url: url.into(), body: body.clone(), weight });
            }
            let plan = load::Plan {
                targets,
                model,
                connections,
                timeout: timeout.0,
                http2,
                bucket: std::time::Duration::from_secs(1),
            };
            match load::run(&plan) {
                Ok(report) => {
                    match format {
                        Output::Text => print!("{}", load::describe(&plan, &report)),
                        Output::Json => println!("{}", serde_json::to_string_pretty(&report).expect("plain JSON")),
                    }
                    EXIT_OK
                }
                Err(e) => fail(&e),
            }
        }
        #[cfg(feature = "docker")]
        Command::Stack { part } => {
            let result = match part {
                StackPart::Shop { listen, db, s3, bucket, pool, query_cost, max_inflight, timeout, drain_delay } => {
                    stack::shop::run(stack::shop::Config {
                        listen,
                        db,
                        s3,
                        bucket,
                        pool,
                        query_cost: query_cost.0,
                        max_inflight,
                        timeout: timeout.0,
                        drain_delay: drain_delay.0,
                    })
                }
                StackPart::Lb { listen, backends, health_path, interval, timeout } => {
                    stack::lb::run(stack::lb::Config {
                        listen,
                        backends,
                        health_path,
                        interval: interval.0,
                        timeout: timeout.0,
                    })
                }
            };
            match result {
                Ok(()) => EXIT_OK,
                Err(e) => fail(&e),
            }
        }
    }
}

/// `200/s:10s,0/s..500/s:30s` → stages.
#[cfg(feature = "live")]
fn parse_stages(text: &str) -> Result<Vec<load::Stage>, String> {
    text.split(',')
        .map(|part| {
            let (rates, duration) = part
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| format!("`{part}`: expected RATE:DURATION, e.g. `200/s:10s`"))?;
            let duration: Dur = duration.parse().map_err(|e| format!("`{part}`: {e}"))?;
            let (from, to) = match rates.split_once("..") {
                Some((a, b)) => (a, Some(b)),
                None => (rates, None),
            };
            let rate = |r: &str| r.parse::<Rate>().map(|r| r.per_sec()).map_err(|e| format!("`{part}`: {e}"));
            Ok(load::Stage { rate: rate(from)?, to: to.map(rate).transpose()?, duration: duration.0 })
        })
        .collect()
}

fn fail(e: &dyn std::fmt::Display) -> i32 {
    eprintln!("error: {e}");
    EXIT_INVALID
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (nanos as u64 ^ ((std::process::id() as u64) << 32)) % 1_000_000
}

fn load_checked(path: &Path) -> Result<Scenario, ScenarioError> {
    let s = scenario::load(path)?;
    drill::check(&s)?;
    Ok(s)
}

/// Loads every scenario the paths name; prints every problem of every file. `each` sees
/// every file and whether it loaded, before its problems are printed.
fn load_all(paths: &[PathBuf], mut each: impl FnMut(&Path, Option<&Scenario>)) -> Result<Vec<Scenario>, usize> {
    let mut scenarios = Vec::new();
    let mut failures = 0;
    for path in paths {
        let files = match scenario::files(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
                continue;
            }
        };
        for file in files {
            match load_checked(&file) {
                Ok(s) => {
                    each(&file, Some(&s));
                    scenarios.push(s);
                }
                Err(e) => {
                    each(&file, None);
                    eprintln!("error: {e}");
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 {
        Err(failures)
    } else {
        Ok(scenarios)
    }
}

fn validate(paths: &[PathBuf]) -> i32 {
    let listed = load_all(paths, |file, loaded| match loaded {
        Some(s) => println!(
            "ok      {}  ({}: {} in {}, {} probes, {} steps)",
            file.display(),
            s.name,
            s.fault.kind(),
            s.environment.kind(),
            s.probes.len(),
            s.steps.len()
        ),
        None => println!("invalid {}", file.display()),
    });
    if listed.is_ok() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }
}

fn run(paths: &[PathBuf], opts: RunOptions<'_>) -> i32 {
    let (repeat, seed, reports) = (opts.repeat, opts.seed, opts.reports_dir.clone());
    let scenarios = match load_all(paths, |_, _| {}) {
        Ok(s) => s,
        Err(n) => {
            eprintln!("{n} scenario file(s) invalid: nothing was run");
            return EXIT_INVALID;
        }
    };
    println!(
        "firedrill {}: {} scenario(s), {repeat} run(s) each, seed {seed}\n",
        env!("CARGO_PKG_VERSION"),
        scenarios.len()
    );
    let progress = opts.real_time.then(Progress::new);
    let show = |e: &Event| {
        if let Some(p) = &progress {
            p.event(e);
        }
    };
    let on_event = progress.as_ref().map(|_| &show as &dyn Fn(&Event));
    let mut code = EXIT_OK;
    let mut summary = Vec::new();
    // Every scenario's history reads the same folder: warn about a file once.
    let mut warned = std::collections::HashSet::new();
    for s in &scenarios {
        let opts = RunOptions {
            seed,
            repeat,
            reports_dir: reports.clone(),
            history: opts.history,
            real_time: opts.real_time,
            on_event,
            operator: opts.operator.clone(),
            formats: opts.formats.clone(),
        };
        let result = drill::run_scenario(s, &opts);
        if let Some(p) = &progress {
            p.bar.finish_and_clear();
        }
        let run = match result {
            Ok(r) => r,
            Err(e) => {
                code = code.max(fail(&e));
                continue;
            }
        };
        for skipped in run.skipped.iter().filter(|s| warned.insert(s.path.clone())) {
            eprintln!("warning: {skipped}");
        }
        print_run(s, &run, repeat);
        code = code.max(run.exit_code());
        let cancelled = run.drills.iter().any(|(r, _)| r.outcome == firedrill::timeline::Outcome::Cancelled);
        summary.push((s.name.clone(), run));
        if cancelled {
            eprintln!("interrupted: the remaining drills were not run");
            break;
        }
    }
    if let Some(dir) = &reports {
        println!("results written to {}/", dir.display());
    }
    if summary.len() > 1 {
        println!();
        for (name, run) in &summary {
            let verdict = match run.exit_code() {
                0 => "all targets met",
                1 => "TARGET MISSED",
                _ => "COULD NOT RUN",
            };
            println!("{name:<24} {verdict}");
        }
    }
    code
}

fn print_run(s: &Scenario, run: &ScenarioRun, repeat: u32) {
    if repeat == 1 {
        for (record, path) in &run.drills {
            print!("{}", terminal::drill(record, repeat));
            if let Some(p) = path {
                println!("result: {}", p.display());
            }
        }
    } else {
        print!("{}", terminal::runs(run));
    }
    if repeat > 1 || run.history > 0 || run.mttr_verdict.is_some() {
        print!("{}", terminal::mttr(&s.name, run));
    }
    println!();
}

fn simulate(
    paths: &[PathBuf],
    runs: u64,
    seed: u64,
    threads: usize,
    sets: &[String],
    compare: bool,
    format: Output,
) -> i32 {
    let mut files = Vec::new();
    for path in paths {
        match scenario::files(path) {
            Ok(f) => files.extend(f),
            Err(e) => return fail(&e),
        }
    }
    let mut json = Vec::new();
    for file in files {
        let base = if compare || sets.is_empty() { Some(load_checked(&file)) } else { None };
        let changed = (!sets.is_empty()).then(|| {
            scenario::load_with(&file, sets)
                .and_then(|s| drill::check(&s).map(|_| s).map_err(|e| scenario::with_overrides(e, &file, sets)))
        });
        let mut predictions = Vec::new();
        let mut redact = Vec::new();
        for (label, loaded) in [("as is", base), ("with --set", changed)] {
            let Some(loaded) = loaded else { continue };
            let s = match loaded {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            redact.clone_from(&s.redact);
            match firedrill::simulate::simulate(&s, runs, seed, threads) {
                Ok(p) => predictions.push((label, p)),
                Err(e) => return fail(&e),
            }
        }
        match format {
            Output::Text => {
                let refs: Vec<(&str, &firedrill::simulate::Prediction)> =
                    predictions.iter().map(|(l, p)| (*l, p)).collect();
                println!("{}", firedrill::redact::text(&firedrill::report::prediction::render(&refs), &redact));
            }
            Output::Json => json.extend(predictions.into_iter().map(|(label, p)| {
                let text = firedrill::redact::text(&serde_json::to_string(&p).expect("plain data"), &redact);
                let p: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                serde_json::json!({ "variant": label, "prediction": p })
            })),
        }
    }
    if format == Output::Json {
        println!("{}", serde_json::to_string_pretty(&json).expect("plain data"));
    }
    EXIT_OK
}

/// Reads `2026-01-01` or a full timestamp.
fn parse_time(text: &str, flag: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| format!("--{flag} `{text}`: expected a date (2026-01-01) or a timestamp (2026-01-01T00:00:00Z)"))
}

#[allow(clippy::too_many_arguments)]
fn report(
    dir: &Path,
    since: Option<&str>,
    until: Option<&str>,
    scenario: Option<&str>,
    formats: &[SummaryFormat],
    out: Option<&Path>,
    expect: &[PathBuf],
    verify: bool,
) -> i32 {
    if verify {
        let checked = match record::verify(dir) {
            Ok(c) => c,
            Err(e) => return fail(&format!("failed to read {}: {e}", dir.display())),
        };
        let mut bad = 0;
        for (path, status) in &checked {
            let line = match status {
                record::Integrity::Intact => "intact".to_string(),
                record::Integrity::Tampered { recorded, actual } => {
                    bad += 1;
                    format!("EDITED after it was written (recorded sha256 {recorded}, content now {actual})")
                }
                record::Integrity::Unsigned => {
                    bad += 1;
                    "NO integrity hash".to_string()
                }
                record::Integrity::Unreadable { error } => {
                    bad += 1;
                    format!("UNREADABLE: {error}")
                }
            };
            println!("{:<10} {}", line.split(' ').next().unwrap_or(""), path.display());
            if !matches!(status, record::Integrity::Intact) {
                eprintln!("error: {}: {line}", path.display());
            }
        }
        println!("{} result(s) checked, {bad} failed verification", checked.len());
        return if bad > 0 { firedrill::score::EXIT_TARGET_MISSED } else { EXIT_OK };
    }
    let (since, until) =
        match (since.map(|s| parse_time(s, "since")).transpose(), until.map(|u| parse_time(u, "until")).transpose()) {
            (Ok(s), Ok(u)) => (s, u),
            (Err(e), _) | (_, Err(e)) => return fail(&e),
        };
    let loaded = match record::load_dir(dir) {
        Ok(l) => l,
        Err(e) => return fail(&format!("failed to read {}: {e}", dir.display())),
    };
    let mut expected = Vec::new();
    if !expect.is_empty() {
        match load_all(expect, |_, _| {}) {
            Ok(s) => expected = s.into_iter().map(|s| s.name).collect(),
            Err(_) => return EXIT_INVALID,
        }
    }
    let s = summary::summarize(&loaded, since, until, scenario, &expected);
    print!("{}", summary::render_md(&s));
    let out = out.unwrap_or(dir);
    for f in formats {
        let (ext, text) = match f {
            SummaryFormat::Md => ("md", summary::render_md(&s)),
            SummaryFormat::Html => ("html", summary::render_html(&s)),
            SummaryFormat::Json => ("summary.json", serde_json::to_string_pretty(&s).expect("plain data") + "\n"),
        };
        let name = match scenario {
            Some(n) => format!("history-{n}.{ext}"),
            None => format!("compliance-summary.{ext}"),
        };
        match firedrill::record::write_atomic(out, &name, &text) {
            Ok(p) => eprintln!("wrote {}", p.display()),
            Err(e) => return fail(&e),
        }
    }
    for skipped in &loaded.unreadable {
        eprintln!("warning: {skipped}");
    }
    EXIT_OK
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
    /// as lines.
    fn event(&self, e: &Event) {
        let msg = match &e.kind {
            EventKind::DrillStarted { scenario, .. } => format!("{scenario}: waiting for steady state"),
            EventKind::SteadyState { ok, phase, .. } => {
                format!("steady state {phase:?}: {}", if *ok { "ok" } else { "NOT ok" }).to_lowercase()
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
            EventKind::StopConditionReached { probe, .. } => format!("stop condition on `{probe}`: aborting"),
            _ => return,
        };
        if self.bar.is_hidden() {
            eprintln!("[{:>8.1}s] {msg}", e.t_us as f64 / 1e6);
        } else {
            self.bar.set_message(msg);
        }
    }
}
