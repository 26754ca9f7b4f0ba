//! The `prometheus` and `alert` probes against a real Prometheus server (Debian's
//! `prometheus`), started by the test on a loopback port and scraping, every second, a target
//! the test turns bad: a local endpoint, or a container a docker drill pauses.
//! Skipped, saying so, when Prometheus is not installed, except under `CI=true`.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use firedrill::drill::drill_once;
use firedrill::metrics::Measurement;
use firedrill::sample::Sample;
use firedrill::scenario::Comparison;
use firedrill::score::TargetKind;
use firedrill::timeline::EventKind;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A `/metrics` endpoint serving `firedrill_test_error_ratio` with the value the test sets.
fn target(value: Arc<AtomicU64>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let body = format!("firedrill_test_error_ratio {}\n", f64::from_bits(value.load(Ordering::Relaxed)));
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A Prometheus of the test's own, scraping `target` every second as job `shop`; stopped when
/// dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

/// Raised when the `shop` job's scrape fails: what would page the team.
const SHOP_DOWN: &str = "groups:\n  - name: shop\n    rules:\n      - alert: ShopDown\n        expr: up{job=\"shop\"} == 0\n        for: 0s\n";

impl Prometheus {
    fn start(target: &str) -> Option<Prometheus> {
        if !std::path::Path::new(PROMETHEUS).exists() {
            assert!(std::env::var("CI").is_err(), "CI must run the Prometheus test: apt-get install prometheus");
            eprintln!("skipped: no {PROMETHEUS} (apt-get install prometheus)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let rules = dir.path().join("rules.yml");
        std::fs::write(&rules, SHOP_DOWN).unwrap();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 500ms, evaluation_interval: 1s}}\nrule_files: ['{}']\nscrape_configs:\n  - job_name: shop\n    static_configs: [{{targets: ['{target}']}}]\n",
                rules.display()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Prometheus starts");
        Some(Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample(url: &str, query: &str, condition: &str) -> Sample {
    let condition = Comparison::try_from(condition.to_string()).expect("a condition");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(firedrill::probe::prometheus(url, None, query, condition))
}

/// Samples until one satisfies `done`, for at most 30 s (Prometheus starting, then scraping
/// every second); that sample.
fn until(url: &str, query: &str, condition: &str, done: impl Fn(&Sample) -> bool) -> Sample {
    let limit = Instant::now() + Duration::from_secs(30);
    loop {
        let s = sample(url, query, condition);
        if done(&s) || Instant::now() > limit {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_promql_condition_is_healthy_while_it_holds_and_names_the_series_when_it_does_not() {
    let value = Arc::new(AtomicU64::new(0.001f64.to_bits()));
    let target = format!("127.0.0.1:{}", target(value.clone()));
    let Some(prometheus) = Prometheus::start(&target) else { return };
    let url = &prometheus.url;
    let query = "firedrill_test_error_ratio";
    let healthy = until(url, query, "< 0.01", |s| s.ok);
    assert!(healthy.ok, "{healthy:?}");

    value.store(0.5f64.to_bits(), Ordering::Relaxed);
    let bad = until(url, query, "< 0.01", |s| !s.ok);
    let detail = bad.detail.clone().unwrap_or_default();
    assert!(detail.contains("job=\"shop\"") && detail.ends_with("= 0.5, not < 0.01"), "{bad:?}");

    let empty = sample(url, "firedrill_no_such_metric", "< 1");
    assert_eq!(empty.detail.as_deref(), Some("`firedrill_no_such_metric` returned no data"));
    let refused = sample(url, "rate(", "< 1");
    assert!(refused.detail.as_deref().unwrap_or("").starts_with("Prometheus refused the query: "), "{refused:?}");
    let elsewhere = sample(&format!("http://{target}"), query, "< 1");
    let detail = elsewhere.detail.unwrap_or_default();
    assert!(detail.starts_with("not a Prometheus answer (HTTP 200): expected "), "{detail}");
    let scalar = sample(url, "scalar(firedrill_test_error_ratio) * 2", ">= 1");
    assert!(scalar.ok, "{scalar:?}");
}

/// A docker drill pauses a container Prometheus scrapes: the probes see users hurt at once,
/// the `ShopDown` alert fires a scrape and an evaluation later, and the report shows both
/// MTTDs, judging the alert's.
#[test]
fn a_drill_times_detection_by_the_teams_alert_beside_its_probes() {
    let Some(_engine) = crate::docker::engine() else { return };
    let web = crate::docker::TestContainer::start("fd-alerted");
    crate::docker::docker(&["exec", &web.name, "sh", "-c", "echo 'shop_up 1' > /metrics"]);
    let address = web.inspect("{{.NetworkSettings.IPAddress}}");
    let Some(prometheus) = Prometheus::start(&format!("{address}:8080")) else { return };
    let up = until(&prometheus.url, "up{job=\"shop\"}", "== 1", |s| s.ok);
    assert!(up.ok, "Prometheus never scraped the container: {up:?}");

    let yaml = format!(
        r#"name: paged
environment:
  kind: docker
  attach:
    - name: web
      container: {container}
probes:
  - name: web
    check: {{kind: http, url: "http://${{web:8080}}/metrics"}}
    interval: 200ms
  - name: paging
    check: {{kind: alert, url: "{url}", alert: ShopDown, labels: {{job: shop}}}}
    interval: 250ms
fault: {{kind: container_pause, target: web, duration: 8s}}
targets: {{mttd: 30s, rto: 30s}}
deadline: 40s
"#,
        container = web.name,
        url = prometheus.url
    );
    let record = drill_once(&crate::common::scenario(&yaml), 1, 1, true, None).expect("the drill runs");
    crate::docker::assert_nothing_left();

    let m = &record.metrics;
    let probes = m.mttd.seconds().expect("the probes saw the pause");
    let alert = match m.mttd_alert.as_ref().expect("an alert is watched") {
        Measurement::Measured { seconds, .. } => *seconds,
        other => panic!("the alert fired during the pause: {other:?}"),
    };
    // A failed scrape takes its 500 ms timeout and the rule is evaluated each second: the
    // alert comes after the users noticed, and within a few seconds.
    assert!(probes < 0.5 && alert > probes && alert < 6.0, "probes {probes} s, alert {alert} s");
    let verdict = record.verdicts.iter().find(|v| v.target == TargetKind::Mttd).expect("an MTTD verdict");
    assert_eq!(verdict.measured_s, Some(alert), "the MTTD judged is the alert's");
    let firing = record.timeline.events.iter().find_map(|e| match &e.kind {
        EventKind::Sample { probe, ok: false, detail, .. } if probe == "paging" => detail.clone(),
        _ => None,
    });
    assert!(firing.as_deref().unwrap_or("").starts_with("alert ShopDown firing (1 series"), "{firing:?}");
    let report = firedrill::report::markdown::render(&record);
    assert!(report.contains("| MTTD (alert) |") && report.contains("| MTTD (probes) |"), "{report}");
}
