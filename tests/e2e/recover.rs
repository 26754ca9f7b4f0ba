//! Nothing left broken when firedrill itself dies: a drill killed with SIGKILL after `t0`
//! leaves its revert journal; the next `run` refuses; `recover --all` undoes the fault on the
//! *attached* container and removes everything labelled; and a fault with a duration is lifted
//! by its dead man's switch with no firedrill running. On the real Docker Engine, under the
//! engine lock of `docker.rs`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{firedrill, texts};
use crate::docker::{docker, engine, TestContainer};

impl TestContainer {
    fn paused(&self) -> bool {
        self.inspect("{{.State.Paused}}") == "true"
    }

    /// Whether an HTTP request from this machine to its address gets an answer.
    fn serves(&self) -> bool {
        let ip = self.inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}");
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(
            &format!("{ip}:8080").parse().expect("an address"),
            Duration::from_secs(2),
        ) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200")
    }

    /// The iptables rules in its network namespace, as `iptables -S` prints them.
    fn rules(&self) -> Vec<String> {
        let netns = format!("container:{}", self.name);
        docker(&[
            "run",
            "--rm",
            "--network",
            &netns,
            "--cap-add",
            "NET_ADMIN",
            "firedrill/base:latest",
            "iptables",
            "-S",
        ])
    }
}

/// A scenario attaching the container and starting one of its own, with `fault`.
fn scenario(dir: &Path, name: &str, attached: &TestContainer, fault: &str) -> PathBuf {
    let yaml = format!(
        r#"name: {name}
environment:
  kind: docker
  containers:
    - name: side
      command: [python3, -m, http.server, "8080"]
      ready: {{port: 8080}}
  attach:
    - name: web
      container: {container}
probes:
  - name: web
    check: {{kind: http, url: "http://${{web:8080}}/"}}
    interval: 100ms
    timeout: 500ms
fault: {fault}
steady_state: {{samples: 3, timeout: 20s}}
deadline: 2m
"#,
        container = attached.name
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("the scenario is written");
    path
}

/// Starts `firedrill run` on a scenario and waits for its fault to be in effect; the child
/// and when the fault was seen active.
fn run_until_fault_active(scenario: &Path, state: &Path) -> (Child, Instant) {
    let log = state.join("run.log");
    let mut child = firedrill()
        .args(["run", path(scenario), "--no-write", "--yes", "--pace", "real", "--state-dir", path(state)])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("firedrill starts");
    let limit = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("fault active") {
            return (child, Instant::now());
        }
        assert!(Instant::now() < limit, "the fault was never injected: {text}");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("firedrill ended ({status}) before its fault was active: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A drill on a container of its own with `fault`, killed with SIGKILL one second after its
/// fault took effect: its folder (scenarios and state), the container, and when the fault was
/// seen active.
fn killed_one_second_in(tag: &str, fault: &str) -> (tempfile::TempDir, TestContainer, Instant) {
    let dir = tempfile::tempdir().unwrap();
    let attached = TestContainer::start(&format!("fd-recover-{tag}"));
    let drill = scenario(dir.path(), "killed", &attached, fault);
    let (child, active) = run_until_fault_active(&drill, dir.path());
    std::thread::sleep(Duration::from_secs(1).saturating_sub(active.elapsed()));
    kill9(child);
    (dir, attached, active)
}

fn kill9(mut child: Child) {
    let killed = std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let status = child.wait().expect("firedrill is reaped");
    assert_eq!(status.code(), None, "firedrill died of SIGKILL");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// What carries firedrill's label on the engine, and its networks.
fn labelled() -> Vec<String> {
    let mut left = docker(&["ps", "-a", "--filter", "label=firedrill.run", "--format", "{{.Names}}"]);
    left.extend(
        docker(&["network", "ls", "--format", "{{.Name}}"]).into_iter().filter(|n| n.starts_with("firedrill-")),
    );
    left
}

/// The next drill refuses (exit 2) naming the killed run and the command that recovers it;
/// `recover --all` then undoes everything, and nothing labelled remains.
fn refused_then_recovered(state: &Path, attached: &TestContainer) {
    let next = scenario(state, "next", attached, "{kind: container_pause, target: web, duration: 1s}");
    let out =
        firedrill().args(["run", path(&next), "--no-write", "--yes", "--state-dir", path(state)]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("STILL IN EFFECT") && stdout.contains("firedrill recover --all"), "{stdout}");
    assert!(stderr.contains("left changes applied"), "{stderr}");
    assert!(!labelled().is_empty(), "the killed drill's containers are there until recovered");

    let out = firedrill().args(["recover", "--all", "--state-dir", path(state)]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert_eq!(labelled(), Vec::<String>::new(), "{stdout}");
    let out = firedrill().args(["recover", "--state-dir", path(state)]).output().unwrap();
    assert!(texts(&out).0.contains("nothing left by earlier drills"), "{:?}", texts(&out));
    // Recovering is idempotent: again, nothing to do and nothing fails.
    let out = firedrill().args(["recover", "--all", "--state-dir", path(state)]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
}

#[test]
fn a_pause_left_by_a_killed_drill_blocks_the_next_and_is_recovered() {
    let Some(_engine) = engine() else { return };
    let (dir, attached, _) = killed_one_second_in("pause", "{kind: container_pause, target: web}");
    assert!(attached.paused(), "the attached container is paused after the kill");

    refused_then_recovered(dir.path(), &attached);
    assert!(!attached.paused(), "recover unpaused the attached container");
    assert!(attached.serves(), "the attached container answers again");
}

#[test]
fn a_blackhole_left_by_a_killed_drill_is_recovered_and_traffic_flows() {
    let Some(_engine) = engine() else { return };
    let (dir, attached, _) = killed_one_second_in("blackhole", "{kind: network_blackhole, target: web}");
    assert!(attached.rules().iter().any(|r| r.contains("DROP")), "{:?}", attached.rules());
    assert!(!attached.serves(), "the blackhole holds after the kill");

    refused_then_recovered(dir.path(), &attached);
    let rules = attached.rules();
    assert!(rules.iter().all(|r| !r.contains("DROP")), "rules left: {rules:?}");
    assert!(attached.serves(), "traffic flows again");
}

#[test]
fn a_fault_with_a_duration_is_lifted_on_time_with_no_firedrill_running() {
    let Some(_engine) = engine() else { return };
    let (dir, attached, active) = killed_one_second_in("deadman", "{kind: container_pause, target: web, duration: 5s}");
    assert!(attached.paused(), "paused after the kill");
    while attached.paused() {
        assert!(active.elapsed() < Duration::from_secs(10), "the pause was never lifted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lifted = active.elapsed();
    eprintln!("a 5 s pause whose firedrill died at 1 s was lifted {:.2} s after it took effect", lifted.as_secs_f64());
    assert!(lifted <= Duration::from_secs(6), "lifted after {lifted:?}");
    assert!(attached.serves());
    let journal = dir.path().join("journal");
    let text: String = firedrill::journal::known_runs(&journal)
        .iter()
        .map(|run| std::fs::read_to_string(journal.join(format!("{run}.jsonl"))).unwrap())
        .collect();
    assert!(text.contains("lifted by the dead man's switch: unpaused"), "{text}");

    // `run --recover` cleans what is left (the drill's own container, its network) and runs.
    let sim = dir.path().join("sim.yaml");
    std::fs::write(&sim, crate::common::shipped_text("node-drain.yaml")).unwrap();
    let out = firedrill()
        .args(["run", path(&sim), "--no-write", "--seed", "1", "--recover", "--state-dir", path(dir.path())])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(stdout.contains("recovering what 1 earlier drill(s) left"), "{stdout}{stderr}");
    assert!(!stdout.contains("pause container web"), "the lifted pause is not open: {stdout}");
    assert_ne!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(labelled(), Vec::<String>::new());
}

#[test]
fn what_carries_a_run_label_but_has_no_journal_is_found_and_removed() {
    let Some(_engine) = engine() else { return };
    let state = tempfile::tempdir().unwrap();
    // A drill whose journal was lost with its machine's disk: its container and network stay.
    let run = format!("{:08x}", std::process::id());
    let network = format!("firedrill-{run}");
    docker(&["network", "create", &network]);
    let label = format!("firedrill.run={run}");
    let name = format!("{network}-web");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &network,
        "--label",
        &label,
        "firedrill/base:latest",
        "sleep",
        "600",
    ]);

    let out = firedrill().args(["recover", "--state-dir", path(state.path())]).output().unwrap();
    let stdout = texts(&out).0;
    assert!(stdout.contains(&format!("run {run}  NO JOURNAL")), "{stdout}");
    assert!(stdout.contains(&name) && stdout.contains(&format!("network: {network}")), "{stdout}");

    let out = firedrill().args(["recover", "--run", &run, "--state-dir", path(state.path())]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(labelled(), Vec::<String>::new(), "{stdout}");
    // Each removal is recorded, in a journal made for the orphans.
    let kept = state.path().join("journal").join("recovered").join(format!("{run}.jsonl"));
    let text = std::fs::read_to_string(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
    assert!(text.contains("recovered: removed") && text.contains(&name) && text.contains(&network), "{text}");

    // A run that left nothing is named as such.
    let out = firedrill().args(["recover", "--run", &run, "--state-dir", path(state.path())]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("left nothing to recover"), "{:?}", texts(&out));
}

#[test]
fn a_fault_that_could_not_be_made_undoes_nothing_that_was_so_before() {
    let Some(_engine) = engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The team's container is paused already: pausing it again fails, and the drill must not
    // "undo" a pause it did not make.
    let attached = TestContainer::start("fd-recover-paused");
    docker(&["pause", &attached.name]);
    let drill = scenario(dir.path(), "paused", &attached, "{kind: container_pause, target: web}");
    // Probed through the drill's own container, so the steady state holds and the pause is tried.
    let text = std::fs::read_to_string(&drill).unwrap().replace("${web:8080}", "${side:8080}");
    std::fs::write(&drill, text).unwrap();
    let out = firedrill()
        .args(["run", path(&drill), "--no-write", "--yes", "--state-dir", path(dir.path())])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("failed to inject the fault"), "the pause was tried: {stdout}{stderr}");
    assert!(attached.paused(), "the team's pause was kept: {stdout}{stderr}");
    docker(&["unpause", &attached.name]);
    let out = firedrill().args(["recover", "--state-dir", path(dir.path())]).output().unwrap();
    assert!(texts(&out).0.contains("nothing left by earlier drills"), "{:?}", texts(&out));
    assert_eq!(labelled(), Vec::<String>::new());
}
