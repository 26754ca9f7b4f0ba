//! Drill results pushed to a real Prometheus Pushgateway (Debian's `prometheus-pushgateway`),
//! started by the test on a loopback port, and read back from its `/metrics` as Prometheus
//! would scrape them. Skipped, saying so, when the gateway is not installed, except under
//! `CI=true`, where it fails instead.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{json_files, load_record, run, shipped, texts};

const GATEWAY: &str = "/usr/bin/prometheus-pushgateway";

/// A Pushgateway of the test's own, stopped when dropped.
struct Gateway {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Gateway {
    fn start() -> Option<Gateway> {
        if !std::path::Path::new(GATEWAY).exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run the Pushgateway test: apt-get install prometheus-pushgateway"
            );
            eprintln!("skipped: no {GATEWAY} (apt-get install prometheus-pushgateway)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(GATEWAY)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Pushgateway starts");
        let gateway = Gateway { child, url: format!("http://127.0.0.1:{port}"), _data: data };
        let ready = Instant::now() + Duration::from_secs(20);
        while get(&format!("{}/-/ready", gateway.url)).is_none() {
            assert!(Instant::now() < ready, "the Pushgateway did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(gateway)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a 200 answer to `GET url`.
fn get(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match rt.block_on(firedrill::probe::request("GET", url, None, Default::default())) {
        Ok((200, body)) => Some(String::from_utf8_lossy(&body).into_owned()),
        _ => None,
    }
}

/// The value of the sample of `metric` whose labels contain each of `labels`.
fn value(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn a_drills_metrics_and_verdicts_land_in_the_pushgateway() {
    let Some(gateway) = Gateway::start() else { return };
    let reports = tempfile::tempdir().unwrap();
    let scenario = shipped("db-failover.yaml");
    let out = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "42",
        "--no-history",
        "--reports",
        reports.path().to_str().unwrap(),
        "--push",
        &gateway.url,
    ]);
    let (stdout, stderr) = texts(&out);
    assert!(stdout.contains(&format!("pushed to {}", gateway.url)), "{stdout}{stderr}");
    let record = load_record(&json_files(reports.path())[0]);

    let metrics = get(&format!("{}/metrics", gateway.url)).expect("the gateway's metrics");
    let ours = ["job=\"firedrill\"", "scenario=\"db-failover\""];
    let rto = value(&metrics, "firedrill_rto_seconds", &ours).expect("the RTO was pushed");
    assert!((rto - record.metrics.rto.seconds().unwrap()).abs() < 1e-9, "{rto}\n{metrics}");
    let score = value(&metrics, "firedrill_score", &ours).expect("the score was pushed");
    assert_eq!(score, f64::from(record.score.unwrap()));
    for verdict in &record.verdicts {
        let target = format!("target=\"{}\"", verdict.target);
        let met = value(&metrics, "firedrill_target_met", &[ours[0], ours[1], &target]).expect("each verdict");
        assert_eq!(met == 1.0, verdict.status == firedrill::score::Status::Met, "{target}: {met}");
    }
    let recovered = value(&metrics, "firedrill_drill_outcome", &[ours[0], ours[1], "outcome=\"recovered\""]);
    assert_eq!(recovered, Some(1.0));
    // A sim drill's virtual clock starts at the epoch: it is shown as ending when pushed.
    let ended = value(&metrics, "firedrill_drill_end_timestamp_seconds", &ours).expect("the end was pushed");
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    assert!((now - 120.0..=now).contains(&ended), "ended at {ended}, now {now}");

    // A gateway that is not there: the drill's record is kept, and the failure said (exit 2).
    drop(gateway);
    let out = run(&["run", scenario.to_str().unwrap(), "--seed", "42", "--no-write", "--push", "http://127.0.0.1:1"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("failed to push the drill's metrics to http://127.0.0.1:1/metrics/job/firedrill"),
        "{stderr}"
    );
}

/// A gateway that takes the connection and never answers holds a CI gate only so long.
#[test]
fn a_gateway_that_never_answers_fails_the_push_in_bounded_time() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let out = run(&["run", "scenarios/db-failover.yaml", "--seed", "42", "--no-write", "--push", &url]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("no answer within 10s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    drop(silent);
}
