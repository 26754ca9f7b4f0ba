//! The node-drain drill through `firedrill run` and `firedrill plan`, as a user runs them,
//! against the in-process fake API server (kube_fake): the binary reads the kubeconfig the
//! fake writes (`KUBECONFIG`), and the test reads what it wrote (the record, the reports) and
//! asks the fake what the cluster looks like afterwards.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use firedrill::record::DrillRecord;
use firedrill::timeline::{EventKind, Outcome};
use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use crate::common::{firedrill, json_files, load_record, texts};
use crate::kube_fake::{FakeCluster, FakeSpec};

/// How often the fake drill's `deployment` probe samples; the measured RTO must match the
/// fake's delays within one of it.
const INTERVAL: Duration = Duration::from_millis(100);

/// The drill of scenarios/kube/node-drain.yaml, written for the fake: its context `fake`, the
/// shop's Deployment as the probe, pods that go at once (grace period 0), and a deadline long
/// enough for the budget's block to clear; its step keeps, in `DRILL_DIR`, the mode and a copy
/// of the first file of the `KUBECONFIG` it gets, and says the whole `KUBECONFIG`.
fn scenario(interval: Duration) -> String {
    format!(
        "name: fake-node-drain
environment: {{kind: kube, context: fake, namespace: shop}}
fault: {{kind: node_drain, node: node-a, grace_period: 0s, deadline: 30s}}
max_blast_radius: 2
probes:
  - name: capacity
    check: {{kind: deployment, deployment: shop, min_ready: 2}}
    interval: {}ms
    timeout: 1s
stability: {{samples: 3, min_duration: 300ms}}
steady_state: {{samples: 3, timeout: 10s}}
procedure:
  kind: steps
  steps:
    - name: \"diagnose: the cluster kubectl reaches\"
      run: [sh, -c, \"first=${{KUBECONFIG%%:*}}; stat -c %a $first > DRILL_DIR/mode; cp $first DRILL_DIR/steps-kubeconfig; echo $KUBECONFIG\"]
      budget: 10s
targets: {{rto: 10s}}
deadline: 30s
",
        interval.as_millis()
    )
}

/// Three nodes; the shop's two replicas both on node-a, under a budget of one available pod
/// (so the drain's second eviction is blocked until the first one's replacement is Ready);
/// kindnet on every node and etcd's mirror pod on node-a, which the drain leaves.
fn shop() -> FakeSpec {
    FakeSpec::new(&["node-a", "node-b", "node-c"])
        .deployment("shop", "shop", &["node-a", "node-a"])
        .daemon_set("kube-system", "kindnet")
        .static_pod("kube-system", "etcd", "node-a")
        .object(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": "shop" } } },
        }))
}

/// A folder with the scenario `text`, the fake's kubeconfig, a reports folder and a state folder.
pub(crate) struct Drill {
    dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
}

impl Drill {
    /// The user's kubeconfig is the fake's, whose current context is another one than the
    /// scenario's: a step's kubectl must reach the scenario's all the same.
    pub(crate) fn new(cluster: &FakeCluster, text: &str) -> Drill {
        let dir = tempfile::tempdir().unwrap();
        let text = text.replace("DRILL_DIR", dir.path().to_str().unwrap());
        std::fs::write(dir.path().join("drill.yaml"), text).unwrap();
        std::fs::create_dir(dir.path().join("reports")).unwrap();
        let kubeconfig = cluster.kubeconfig(dir.path());
        let elsewhere = std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .replace("current-context: fake", "current-context: elsewhere");
        std::fs::write(&kubeconfig, elsewhere).unwrap();
        Drill { dir, kubeconfig }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the drill with `firedrill run` (the fake's context, seed 1, the drill's reports
    /// folder, then `extra`): the one record it wrote, the binary's output, and its stdout and
    /// stderr to say in a failed assertion.
    pub(crate) fn run(&self, extra: &[&str]) -> (DrillRecord, Output, String) {
        let reports = self.path("reports");
        let mut args =
            vec!["run", "SCENARIO", "--context", "fake", "--seed", "1", "--reports", reports.to_str().unwrap()];
        args.extend(extra);
        let out = self.firedrill(&args);
        let (stdout, stderr) = texts(&out);
        let said = format!("{stdout}\n{stderr}");
        let files = json_files(&reports);
        assert_eq!(files.len(), 1, "one record\n{said}");
        (load_record(&files[0]), out, said)
    }

    /// Runs the binary with `args` (`SCENARIO` replaced by the scenario's path), the fake's
    /// kubeconfig and the drill's own state folder.
    pub(crate) fn firedrill(&self, args: &[&str]) -> Output {
        let scenario = self.path("drill.yaml");
        let args: Vec<&str> =
            args.iter().map(|a| if *a == "SCENARIO" { scenario.to_str().unwrap() } else { a }).collect();
        firedrill()
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("XDG_STATE_HOME", self.path("state"))
            .output()
            .unwrap()
    }
}

/// The node as the fake has it now, asked through `kubeconfig`.
fn node(kubeconfig: &Path, name: &str) -> Node {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        firedrill::tls::install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let client = firedrill::env::kube::connect::connect_with(kubeconfig, "fake").await.unwrap();
        kube::Api::<Node>::all(client).get(name).await.unwrap()
    })
}

/// The text of the evidence from `source`.
pub(crate) fn evidence<'a>(record: &'a DrillRecord, source: &str) -> &'a str {
    record
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Output { source: s, text, .. } if s == source => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no evidence from {source}"))
}

pub(crate) fn errors(record: &DrillRecord) -> Vec<String> {
    record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_drain_drill_runs_end_to_end_a_blocked_eviction_then_its_success_and_an_rto_of_the_fakes_delays() {
    let spec = shop();
    let expected = spec.recreate_delay + spec.ready_delay;
    let cluster = FakeCluster::start(spec);
    let drill = Drill::new(&cluster, &scenario(INTERVAL));
    let reports = drill.path("reports");
    let (record, out, said) = drill.run(&["--report", "md"]);
    assert_eq!(record.outcome, Outcome::Recovered, "{:?}\n{said}", errors(&record));
    assert_eq!(out.status.code(), Some(0), "every target met\n{said}");

    // Both replicas were on node-a and the budget keeps one available: one eviction was
    // accepted at once, the other blocked until the first one's replacement was Ready, then
    // accepted at its next try (5 s later).
    let said = evidence(&record, firedrill::env::kube::API_EVIDENCE);
    let blocked =
        said.lines().position(|l| l.contains(": blocked by PDB shop: The disruption budget shop needs 1 healthy pods"));
    let blocked = blocked.unwrap_or_else(|| panic!("a blocked eviction:\n{said}"));
    let pod = said.lines().nth(blocked).unwrap().split("evict ").nth(1).unwrap().split(':').next().unwrap();
    let accepted = said.lines().position(|l| l.contains(&format!("evict {pod}: accepted")));
    assert!(accepted.is_some_and(|a| a > blocked), "{pod} accepted after its block:\n{said}");
    assert!(said.contains("kube-system/etcd-node-a stays on node node-a: a mirror pod"), "{said}");
    assert!(said.contains("stays on node node-a: a DaemonSet's pod"), "{said}");
    assert_eq!(said.matches("would be accepted").count(), 2, "each eviction dry-run before the cordon:\n{said}");
    assert!(said.contains("node node-a cordoned"), "{said}");
    assert!(said.contains("node node-a uncordoned"), "{said}");

    // The same answers are timeline events at their own times: the cordon and the evictions
    // before t0, the block 5 s (kubectl's pace) before the eviction's acceptance, which is the
    // last answer before t0; the uncordon after the revert.
    let answered: Vec<(i64, &str)> = record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Answered { source, text } if source == firedrill::env::kube::API_EVIDENCE => {
                Some((e.t_us as i64, text.as_str()))
            }
            _ => None,
        })
        .collect();
    let t0 = record.timeline.t0().expect("t0") as i64;
    let at = |text: &str| answered.iter().find(|(_, t)| t.contains(text)).map(|(at, _)| *at);
    let cordoned = at("node node-a cordoned").expect("the cordon in the timeline");
    let blocked_at = at(": blocked by PDB shop").expect("the block in the timeline");
    let accepted_at = at(&format!("evict {pod}: accepted")).expect("the acceptance in the timeline");
    assert!(cordoned < blocked_at && blocked_at < accepted_at && accepted_at <= t0, "{answered:?} t0 {t0}");
    let retried = Duration::from_micros((accepted_at - blocked_at) as u64);
    assert!(retried >= Duration::from_millis(4900) && retried < Duration::from_secs(6), "retried after {retried:?}");
    assert!(at("node node-a uncordoned").is_some_and(|t| t > t0), "{answered:?}");

    // t0 is the second eviction's acceptance: from then, the shop lacks a replica until the
    // replacement exists (recreate_delay, 300 ms) and is Ready (ready_delay, 700 ms). The
    // fake's controller runs every 20 ms, and four of its passes stand between the eviction and
    // a Deployment status counting the replacement (the gap noticed, the pod created and bound,
    // made Ready, counted at the next pass): the fake's recovery takes 1.00 s to 1.08 s, 1.10 s
    // with a late pass on a loaded machine. RTO is the middle between the last failed and the
    // first ok sample, so it lies within one probe interval of that (measured here: 1.03 s to
    // 1.13 s).
    let rto = record.metrics.rto.seconds().expect("an RTO");
    eprintln!("fake node drain: RTO {rto:.3} s (the fake's delays: {:.3} s)", expected.as_secs_f64());
    let passes = Duration::from_millis(5 * 20);
    let (low, high) = (expected.saturating_sub(INTERVAL), expected + passes + INTERVAL);
    assert!(
        (low.as_secs_f64()..=high.as_secs_f64()).contains(&rto),
        "RTO {rto:.3} s, expected {:.3} s to {:.3} s within one probe interval",
        expected.as_secs_f64(),
        (expected + passes).as_secs_f64()
    );

    // The node is schedulable again and carries none of firedrill's annotations; no journal is
    // left.
    let node = node(&drill.kubeconfig, "node-a");
    assert_eq!(node.spec.and_then(|s| s.unschedulable), None, "uncordoned");
    let annotations = node.metadata.annotations.unwrap_or_default();
    assert!(!annotations.keys().any(|k| k.starts_with("firedrill.io/")), "{annotations:?}");
    let journals = drill.path("state").join("firedrill").join("journal");
    let left: Vec<_> = std::fs::read_dir(&journals)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().is_file()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(left, Vec::<PathBuf>::new(), "no journal left");

    // What the cluster said over the drill's window: the namespace's Events (the kubelet
    // stopping each evicted pod, the scheduler placing the replacements), every node's
    // cordon state at the end, and the logs of the workload's pods (the evicted ones went with them).
    let events = evidence(&record, firedrill::env::kube::evidence::EVENTS_EVIDENCE);
    assert_eq!(events.matches("Normal Killing Pod/shop-").count(), 2, "{events}");
    assert!(events.contains("Normal Scheduled Pod/shop-"), "{events}");
    let nodes = evidence(&record, firedrill::env::kube::evidence::NODES_EVIDENCE);
    assert_eq!(nodes, "node node-a: schedulable\nnode node-b: schedulable\nnode node-c: schedulable");
    let logs: Vec<(&str, &str)> = record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output { source, text, .. } if source.starts_with("log of pod shop/") => {
                Some((source.as_str(), text.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(logs.iter().filter(|(_, text)| text.ends_with("is gone (evicted): its log went with it")).count(), 2);
    let running: Vec<&str> =
        logs.iter().filter(|(_, t)| t.contains("fake kubelet: shop/shop-")).map(|(_, t)| *t).collect();
    assert_eq!(running.len(), 2, "the replacements' logs: {logs:?}");
    assert!(running.iter().all(|t| !t.contains("running on node-a")), "{running:?}");

    // The step got KUBECONFIG: a file of the drill's own (its owner's only, gone now) setting
    // the scenario's context, then the user's kubeconfig, whose current context is another.
    let said = record
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StepFinished { step: 0, ok: true, detail } => detail.clone(),
            _ => None,
        })
        .expect("the step said its KUBECONFIG");
    let (first, rest) = said.split_once(':').expect("two files");
    assert_eq!(rest, drill.kubeconfig.display().to_string(), "the user's kubeconfig after the drill's: {said}");
    assert!(Path::new(first).starts_with(std::env::temp_dir()) && first.ends_with("/kubeconfig"), "{said}");
    assert!(!Path::new(first).exists(), "removed at teardown: {first}");
    assert_eq!(std::fs::read_to_string(drill.path("mode")).unwrap().trim(), "600");
    let read = |path: &Path| kube::config::Kubeconfig::read_from(path).unwrap();
    let user = read(&drill.kubeconfig);
    assert_eq!(user.current_context.as_deref(), Some("elsewhere"));
    let merged = read(&drill.path("steps-kubeconfig")).merge(user).unwrap();
    assert_eq!(merged.current_context.as_deref(), Some("fake"), "the first file to set current-context wins");
    assert_eq!(merged.contexts.len(), 1, "the contexts, clusters and users are the user's own");

    // The markdown report carries the evidence.
    let markdown = std::fs::read_dir(&reports)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a markdown report");
    assert!(markdown.contains("kube API: evict shop/shop-"), "the answers in the timeline: {markdown}");
    assert!(markdown.contains("blocked by PDB shop"), "{markdown}");
    assert!(
        markdown.contains("Normal Killing Pod/shop-") && markdown.contains("node node-a: schedulable"),
        "{markdown}"
    );
}

#[test]
fn run_refuses_a_context_the_scenario_does_not_name_and_one_missing_from_the_kubeconfig() {
    let cluster = FakeCluster::start(shop());
    let drill = Drill::new(&cluster, &scenario(INTERVAL));
    let out = drill.firedrill(&["run", "SCENARIO", "--context", "kind-prod", "--no-write"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("context kind-prod is not this scenario's (fake)"), "{stderr}");

    let elsewhere = Drill::new(&cluster, &scenario(INTERVAL).replace("context: fake", "context: kind-staging"));
    let out = elsewhere.firedrill(&["run", "SCENARIO", "--context", "kind-staging", "--no-write"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let kubeconfig = elsewhere.kubeconfig.display().to_string();
    assert!(stderr.contains("context `kind-staging` is not in the kubeconfig"), "{stderr}");
    assert!(stderr.contains(&kubeconfig), "names the kubeconfig {kubeconfig}: {stderr}");
    assert_eq!(cluster.requests().len(), 0, "the cluster was not asked anything");
}

#[test]
fn plan_shows_the_cluster_the_permissions_and_the_pods_a_drain_would_evict_or_why_it_cannot_list_them() {
    let cluster = FakeCluster::start(shop());
    let drill = Drill::new(&cluster, &scenario(INTERVAL));
    let out = drill.firedrill(&["plan", "SCENARIO"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("kube: context fake, namespace shop (the drill may disrupt namespaces shop)"), "{stdout}");
    for permission in [
        "    create pods/eviction in namespace shop\n",
        "    get nodes (cluster-wide)\n",
        "    get deployments in namespace shop\n",
        "    list pods (cluster-wide)\n",
        "    patch nodes (cluster-wide)\n",
    ] {
        assert!(stdout.contains(permission), "{permission}{stdout}");
    }
    assert!(stdout.contains("  drain node node-a, as the cluster has it now (4 pod(s) on it):"), "{stdout}");
    let evicted = stdout.lines().find(|l| l.starts_with("    would be evicted: ")).expect("the evicted pods");
    assert_eq!(evicted.matches("shop/shop-").count(), 2, "both replicas: {evicted}");
    let stays = stdout.lines().find(|l| l.starts_with("    stays (DaemonSet/mirror): ")).expect("what stays");
    assert!(stays.contains("kube-system/etcd-node-a (a mirror pod)"), "{stays}");
    assert!(stays.contains("kube-system/kindnet-") && stays.contains("(a DaemonSet's pod)"), "{stays}");
    let writes: Vec<_> = cluster.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "planning only reads: {:?}", writes.iter().map(|r| &r.path).collect::<Vec<_>>());

    // A cluster that does not answer: the rest of the plan, and one line saying why no pods.
    drop(cluster);
    let out = drill.firedrill(&["plan", "SCENARIO"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("    patch nodes (cluster-wide)\n"), "{stdout}");
    let why: Vec<&str> = stdout.lines().filter(|l| l.contains("the pods on node node-a are not listed: ")).collect();
    assert_eq!(why.len(), 1, "{stdout}");
    assert!(why[0].contains("failed to get node node-a"), "{stdout}");
}
