//! Snapshots of every rendering of the shipped scenarios' seeded `sim` drills: the terminal
//! summary, Markdown, JUnit XML and HTML. Reviewed once by eye, they then guard every change
//! to a renderer or to what a drill records; a change that is meant goes through
//! `cargo insta review` (or `INSTA_UPDATE=always`) and is reviewed again in the diff.
//!
//! Virtual-time drills are deterministic (stamps count from the Unix epoch), and the scenarios
//! are loaded by a path relative to the repository root, so no checkout's path leaks in; only
//! the firedrill version, which changes with every release, is replaced by a placeholder.

use firedrill::drill::{run_scenario, RunOptions, ScenarioRun};
use firedrill::record::DrillRecord;
use firedrill::report::{html, junit, markdown, terminal};

use crate::common::SHIPPED;

/// The seed of the first drill; the second drill runs with the next one.
const SEED: u64 = 42;

/// Two drills per scenario, so that the run table and the MTTR over several drills show.
const REPEAT: u32 = 2;

/// Runs a shipped scenario as `firedrill run scenarios/FILE --seed 42 --repeat 2 --set …` does.
fn drills(file: &str, sets: &[&str]) -> ScenarioRun {
    // Relative, as a user types it: the record names the scenario file by this path.
    let path = std::path::Path::new("scenarios").join(file);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scenario =
        firedrill::scenario::load_with(&path, &sets).unwrap_or_else(|e| panic!("{file} does not load:\n{e}"));
    let opts = RunOptions {
        seed: SEED,
        repeat: REPEAT,
        reports: None,
        history: false,
        real_time: false,
        on_event: None,
        operator: Some("On-call SRE".into()),
        state_dir: firedrill::journal::default_state_dir(),
        kill_switch: None,
    };
    let mut run = run_scenario(&scenario, &opts).unwrap_or_else(|e| panic!("{file} does not run:\n{e}"));
    for (record, _) in &mut run.drills {
        record.firedrill_version = "[version]".into();
    }
    run
}

/// What `firedrill run` prints for the drills of one scenario: each drill's summary, the run
/// table and the MTTR line.
fn terminal_text(run: &ScenarioRun) -> String {
    let mut out = String::new();
    for (record, _) in &run.drills {
        out += &terminal::drill(record, REPEAT);
        out.push('\n');
    }
    let name = &run.drills[0].0.scenario.name;
    out + &terminal::runs(run) + &terminal::mttr(name, run)
}

/// The JUnit XML of the last drill, which carries the MTTR case over the scenario's drills.
fn junit_text(run: &ScenarioRun, last: &DrillRecord) -> String {
    let mttr = run.mttr_verdict.as_ref().map(|v| (v, &run.mttr, run.drills.len() + run.history));
    junit::render(last, mttr)
}

/// The page with a line break before each tag that opens a row, heading, table or chart
/// element, which a browser shows the same: the page itself is one line, and a snapshot diff
/// of one line would not say which row changed.
fn one_row_a_line(page: &str) -> String {
    const INLINE: [&str; 6] = ["<td", "<th", "<title", "<thead", "<tbody", "</"];
    let mut out = String::with_capacity(page.len() + page.len() / 20);
    let mut rest = page;
    while let Some(i) = rest.find("><") {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        if !INLINE.iter().any(|tag| tail.starts_with(tag)) {
            out.push('\n');
        }
        rest = tail;
    }
    out + rest
}

/// Snapshots every rendering of one shipped scenario's drills.
fn assert_renderings(file: &str) {
    let run = drills(file, &[]);
    let (last, _) = run.drills.last().expect("a drill ran");
    let stem = file.trim_end_matches(".yaml");
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(format!("{stem}.terminal"), terminal_text(&run));
        insta::assert_snapshot!(format!("{stem}.md"), markdown::render(last));
        insta::assert_snapshot!(format!("{stem}.junit"), junit_text(&run, last));
        insta::assert_snapshot!(format!("{stem}.html"), one_row_a_line(&html::render(last)));
    });
}

/// The JUnit XML of drills that fail a CI gate: targets missed, and a drill that could not
/// take place (never steady, so nothing was injected and no target was measured).
#[test]
fn the_junit_of_failed_gates_matches_its_snapshot() {
    let missed = drills("db-failover.yaml", &["targets.rto=1m", "targets.rpo=0s", "targets.mttr=1m"]);
    let not_steady = drills("db-failover.yaml", &["environment.traffic=5000/s"]);
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, run) in [("db-failover.missed.junit", missed), ("db-failover.not-steady.junit", not_steady)] {
            let (last, _) = run.drills.last().expect("a drill ran");
            insta::assert_snapshot!(name, junit_text(&run, last));
        }
    });
}

/// Every shipped scenario, so that a new one gets its snapshots (and under `CI=true`, where
/// insta writes none, fails until they are reviewed and committed).
#[test]
fn every_rendering_of_the_shipped_scenarios_matches_its_snapshot() {
    for file in SHIPPED {
        assert_renderings(file);
    }
}
