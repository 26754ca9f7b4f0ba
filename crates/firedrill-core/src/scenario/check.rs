//! The checks of the second stage of loading: that the parts of a scenario agree with each
//! other and with what firedrill can do.
//!
//! Each check looks at one part and pushes what is wrong into one [`Problems`] collector, so a
//! user sees every problem of a file at once. The checks only read; defaults they need (the
//! deadline, a step's action and simulated duration) come from [`super::resolve`], so what is
//! checked is what runs.

use std::collections::HashSet;
use std::path::Path;

use serde_saphyr::Spanned;

use super::error::{Pos, Problem, ScenarioError};
use super::model::*;
use super::resolve::{declared_or_default_deadline, disruption, sim_duration, step_action};
use crate::duration::Dur;
use crate::word::FaultKind;

/// A drill longer than a week is not a drill; the bound also bounds a drill's timeline.
const MAX_DEADLINE: Dur = Dur::secs(7 * 86400);
/// The fastest probe: below this firedrill measures itself.
const MIN_INTERVAL: Dur = Dur::millis(10);
/// The most nodes or replicas the simulated stack has.
const MAX_SIM_SIZE: u32 = 10_000;

/// Every problem found in a scenario: the one collector all checks push to.
#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, pos: Pos, message: impl Into<String>) {
        self.0.push(Problem::new(pos, message));
    }

    /// The problems in file order. The sort is stable: problems at one place keep the order
    /// the checks found them in.
    fn into_result(mut self, path: &Path) -> Result<(), ScenarioError> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.sort_by_key(|p| p.pos);
        Err(ScenarioError::Invalid { path: path.to_path_buf(), problems: self.0 })
    }
}

/// Runs every check of a raw scenario; `text` is its source, for the positions of sections.
/// The order of the checks is the order of problems that share a position.
pub(super) fn check(raw: &RawScenario, text: &str, path: &Path) -> Result<(), ScenarioError> {
    let deadline = declared_or_default_deadline(raw);
    let disruption = disruption(raw);
    let mut problems = Problems::default();
    check_name(&raw.name, &mut problems);
    check_probes(&raw.probes, path, &mut problems);
    check_in_cluster_probes(&raw.probes, &raw.environment, &mut problems);
    check_targets_measurable(&raw.targets, disruption, &raw.probes, &mut problems);
    check_disruption_blocks(&raw.targets, &mut problems);
    check_deadline(raw.deadline.as_ref(), &mut problems);
    check_environment(&raw.environment, Pos::key(text, "environment"), &mut problems);
    check_targets_within_deadline(&raw.targets, disruption, deadline, &mut problems);
    check_step_targets(&raw.targets, &raw.procedure, deadline, &mut problems);
    check_procedure(&raw.procedure, deadline, Pos::key(text, "procedure"), &mut problems);
    let is_sim = matches!(raw.environment, EnvironmentSpec::Sim(_));
    check_steps(&raw.procedure.steps, deadline, is_sim, &mut problems);
    check_injects(&raw.injects, deadline, &mut problems);
    check_fault(&raw.fault, &mut problems);
    check_fault_in_environment(&raw.fault, &raw.environment, &mut problems);
    check_stop_conditions(&raw.stop_conditions, &raw.probes, &mut problems);
    check_blast_radius(raw, &mut problems);
    check_sample_counts(raw, text, &mut problems);
    problems.into_result(path)
}

/// The name groups drills of one scenario in history and file names.
fn check_name(name: &Spanned<String>, problems: &mut Problems) {
    let value = &name.value;
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(Pos::spanned(name), format!("`name` must be letters, digits, `-` or `_`, got `{value}`"));
    }
}

/// Probe names are unique (stop conditions and reports name probes), and each probe's
/// parameters make sense.
fn check_probes(probes: &[Spanned<Probe>], path: &Path, problems: &mut Problems) {
    let mut seen = HashSet::new();
    for p in probes {
        let probe = &p.value;
        if !seen.insert(probe.name.as_str()) {
            problems
                .push(Pos::spanned(p), format!("duplicate probe name `{}`: probe names must be unique", probe.name));
        }
        check_probe(probe, Pos::spanned(p), problems);
        check_tls_files(probe, path, Pos::spanned(p), problems);
    }
}

/// An `http` probe `in_cluster` is kube's, and made with the probe pod's busybox `wget`, which
/// sends only GETs and POSTs and trusts its image's roots.
fn check_in_cluster_probes(probes: &[Spanned<Probe>], environment: &EnvironmentSpec, problems: &mut Problems) {
    for p in probes {
        let Check::Http { in_cluster: true, method, ca, .. } = &p.value.check else { continue };
        let at = Pos::spanned(p);
        let name = &p.value.name;
        if !matches!(environment, EnvironmentSpec::Kube(_)) {
            problems.push(
                at,
                format!("probe `{name}`: `in_cluster` requests the URL from inside a Kubernetes cluster: kube only"),
            );
        }
        if !matches!(method, HttpMethod::Get | HttpMethod::Post) {
            problems.push(
                at,
                format!(
                    "probe `{name}`: an `in_cluster` probe sends GET or POST (busybox wget), not {}",
                    method.as_str()
                ),
            );
        }
        if ca.is_some() {
            problems.push(at, format!("probe `{name}`: an `in_cluster` probe trusts its pod's roots; `ca` is for probes from this machine"));
        }
    }
}

/// A probe's CA and certificate files exist, and a connection string's TLS parameters make
/// sense: found now rather than at the first sample, in the middle of a drill.
fn check_tls_files(probe: &Probe, path: &Path, at: Pos, problems: &mut Problems) {
    let name = &probe.name;
    // An `s3` probe without an endpoint reaches AWS's own https:// endpoints (or the standard
    // chain's `AWS_ENDPOINT_URL`), so its `ca` has no URL to be checked against.
    let mut ca_file = |url: Option<&str>, ca: &Path| {
        if let Some(url) = url.filter(|url| !url.starts_with("https://")) {
            problems.push(at, format!("probe `{name}`: `ca` is for https:// URLs, not `{url}`"));
        }
        let file = super::relative_to(path, ca);
        if !file.is_file() {
            problems.push(at, format!("probe `{name}`: `ca` file {} not found", file.display()));
        }
    };
    match &probe.check {
        Check::Http { url, ca: Some(ca), .. }
        | Check::Slo { url, ca: Some(ca), .. }
        | Check::Prometheus { url, ca: Some(ca), .. }
        | Check::Alert { url, ca: Some(ca), .. } => ca_file(Some(url), ca),
        Check::S3 { endpoint, ca: Some(ca), .. } => ca_file(endpoint.as_deref(), ca),
        Check::Sql { dsn, .. } | Check::WriteLedger { dsn, .. } => {
            if let Err(e) = super::dsn::split_tls(dsn) {
                problems.push(at, format!("probe `{name}`: `dsn`: {e}"));
            }
            for (key, file) in super::dsn::files(dsn) {
                let file = super::relative_to(path, &file);
                if !file.is_file() {
                    problems.push(at, format!("probe `{name}`: `dsn`: {key} file {} not found", file.display()));
                }
            }
        }
        _ => {}
    }
}

fn check_probe(probe: &Probe, at: Pos, problems: &mut Problems) {
    let name = &probe.name;
    if probe.interval < MIN_INTERVAL {
        problems.push(
            at,
            format!(
                "probe `{name}`: `interval` must be at least {MIN_INTERVAL}: faster probing measures firedrill, not the system"
            ),
        );
    }
    if probe.timeout.is_some_and(Dur::is_zero) {
        problems.push(at, format!("probe `{name}`: `timeout` must be greater than zero"));
    }
    match &probe.check {
        Check::Command { argv } if argv.is_empty() => {
            problems.push(at, format!("probe `{name}`: `argv` must name a program"));
        }
        Check::Dns { name: host, server, .. } => {
            if host.is_empty() {
                problems.push(at, format!("probe `{name}`: `name` must be the DNS name resolved"));
            }
            if let Some(server) = server.as_deref().filter(|s| dns_server(s).is_none()) {
                problems.push(
                    at,
                    format!("probe `{name}`: `server` must be an IP address, with a port when not 53 (`127.0.0.1:5353`), got `{server}`"),
                );
            }
        }
        Check::Slo { rate, max_error_percent, window, request_timeout, .. } => {
            if rate.per_sec() <= 0.0 {
                problems.push(at, format!("probe `{name}`: an SLO probe needs a `rate` above zero"));
            }
            if !(0.0..=100.0).contains(max_error_percent) {
                problems.push(at, format!("probe `{name}`: `max_error_percent` must be between 0 and 100"));
            }
            if window.is_zero() || request_timeout.is_zero() {
                problems.push(at, format!("probe `{name}`: `window` and `request_timeout` must be above zero"));
            }
        }
        Check::WriteLedger { table, .. } if !is_identifier(table) => problems.push(
            at,
            format!("probe `{name}`: `table` must be a plain SQL name (letters, digits, `_`), got `{table}`"),
        ),
        Check::Alert { alert, .. } => {
            if alert.is_empty() {
                problems.push(at, format!("probe `{name}`: `alert` must name the alert (its `alertname`)"));
            }
            if probe.availability == Some(true) {
                problems.push(
                    at,
                    format!("probe `{name}`: an alert measures detection, not what users see: it cannot be `availability: true`"),
                );
            }
        }
        _ => {}
    }
}

/// The targets timed from availability samples, with their words: the plain ones and the RTO
/// of the scenario's disruption type (other types' blocks do not score this drill, so one
/// policy can be copied into every scenario).
fn availability_targets(targets: &Targets, disruption: Disruption) -> Vec<(&Spanned<Dur>, String)> {
    let of_type = targets.by_disruption.get(disruption).and_then(|b| b.value.rto.as_ref());
    [
        (targets.rto.as_ref(), "rto".to_string()),
        (targets.mttd.as_ref(), "mttd".into()),
        (targets.mttr.as_ref(), "mttr".into()),
        (of_type, format!("by_disruption.{disruption}.rto")),
    ]
    .into_iter()
    .filter_map(|(target, word)| target.map(|t| (t, word)))
    .collect()
}

/// The RPO targets, with their words: the plain one and the scenario's disruption type's.
fn rpo_targets(targets: &Targets, disruption: Disruption) -> Vec<(&Spanned<Dur>, String)> {
    let of_type = targets.by_disruption.get(disruption).and_then(|b| b.value.rpo.as_ref());
    [(targets.rpo.as_ref(), "rpo".to_string()), (of_type, format!("by_disruption.{disruption}.rpo"))]
        .into_iter()
        .filter_map(|(target, word)| target.map(|t| (t, word)))
        .collect()
}

/// A disruption type's block says at least one target: an empty one reads as a policy that
/// was meant to say something.
fn check_disruption_blocks(targets: &Targets, problems: &mut Problems) {
    for disruption in Disruption::ALL {
        if let Some(block) = targets.by_disruption.get(disruption) {
            if block.value.rto.is_none() && block.value.rpo.is_none() {
                problems.push(
                    Pos::spanned(block),
                    format!("targets.by_disruption.{disruption} has no target: give it `rto`, `rpo` or both"),
                );
            }
        }
    }
}

/// A target needs a probe to measure it: availability probes for RTO, MTTD and MTTR, a write
/// ledger for RPO. A target nothing measures would never be met or missed.
fn check_targets_measurable(
    targets: &Targets,
    disruption: Disruption,
    probes: &[Spanned<Probe>],
    problems: &mut Problems,
) {
    let has_availability = probes.iter().any(|p| p.value.is_availability());
    let has_ledger = probes.iter().any(|p| matches!(p.value.check, Check::WriteLedger { .. }));
    if !has_availability {
        for (target, word) in availability_targets(targets, disruption) {
            problems.push(
                Pos::spanned(target),
                format!("target `{word}` cannot be measured: the scenario has no availability probe"),
            );
        }
    }
    if !has_ledger {
        for (target, word) in rpo_targets(targets, disruption) {
            problems.push(
                Pos::spanned(target),
                format!("target `{word}` cannot be measured: the scenario has no `write_ledger` probe"),
            );
        }
    }
}

/// A declared deadline is within what a drill can last (the default always is).
fn check_deadline(deadline: Option<&Spanned<Dur>>, problems: &mut Problems) {
    if let Some(d) = deadline {
        if d.value.is_zero() || d.value > MAX_DEADLINE {
            problems.push(Pos::spanned(d), format!("`deadline` must be greater than zero and at most {MAX_DEADLINE}"));
        }
    }
}

/// The environment's own parameters; `at` is the `environment` key, since its parts carry no
/// positions.
fn check_environment(environment: &EnvironmentSpec, at: Pos, problems: &mut Problems) {
    match environment {
        EnvironmentSpec::Sim(stack) => check_sim_stack(stack, at, problems),
        EnvironmentSpec::Docker(stack) => check_docker_stack(stack, at, problems),
        EnvironmentSpec::Kube(cluster) => check_kube_cluster(cluster, at, problems),
        EnvironmentSpec::Aws(account) => check_aws_account(account, at, problems),
    }
}

/// The allow-tag is one `key=value`, the accounts are twelve digits, and an emulator's endpoint
/// is a URL: a typo here would let a drill touch nothing, or anything.
fn check_aws_account(account: &AwsAccount, at: Pos, problems: &mut Problems) {
    match account.allow_tag.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() && !value.contains('=') => {}
        _ => problems.push(at, format!("environment.allow_tag: `{}` is not one `key=value` tag", account.allow_tag)),
    }
    for id in &account.accounts {
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
            problems.push(at, format!("environment.accounts: `{id}` is not a twelve-digit AWS account id"));
        }
    }
    if let Some(url) = &account.endpoint_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(at, format!("environment.endpoint_url: `{url}` is not an http:// or https:// URL"));
        }
    }
    if let Some(region) = &account.region {
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            problems.push(at, format!("environment.region: `{region}` is not a region name (eu-west-1)"));
        }
    }
}

/// The context is named, and the namespaces are names the API accepts, `namespace` among
/// `namespaces`: what the drill may disrupt is said in the file, not found out in the cluster.
fn check_kube_cluster(cluster: &KubeCluster, at: Pos, problems: &mut Problems) {
    if cluster.context.trim().is_empty() {
        problems.push(
            at,
            "environment.context must name a kubeconfig context: firedrill never drills whatever the current context is",
        );
    }
    for namespace in std::iter::once(&cluster.namespace).chain(&cluster.namespaces) {
        if !is_hostname(namespace) || namespace.chars().any(|c| c.is_ascii_uppercase()) {
            problems.push(
                at,
                format!("environment: namespace `{namespace}` must be lowercase letters, digits and `-` (a DNS label)"),
            );
        }
    }
    if !cluster.namespaces.is_empty() && !cluster.namespaces.contains(&cluster.namespace) {
        problems.push(
            at,
            format!(
                "environment.namespaces ({}) must contain `namespace` ({})",
                cluster.namespaces.join(", "),
                cluster.namespace
            ),
        );
    }
}

/// A fault is one its environment can carry out: `kube` drains nodes, kills, deletes and
/// scales in the scenario's namespaces, surges traffic and fails a CloudNativePG Cluster's
/// primary over, and has no containers to stop; only `kube` has pods, workloads, and
/// PodDisruptionBudgets for a drain's `deadline` to wait on.
fn check_fault_in_environment(fault: &Spanned<Fault>, environment: &EnvironmentSpec, problems: &mut Problems) {
    let at = Pos::spanned(fault);
    let cluster = match environment {
        EnvironmentSpec::Kube(cluster) => Some(cluster),
        _ => None,
    };
    let is_kube = cluster.is_some();
    let is_aws = matches!(environment, EnvironmentSpec::Aws(_));
    let mut faults = vec![&fault.value];
    while let Some(f) = faults.pop() {
        let kind = f.kind();
        match f {
            Fault::Sequence { faults: inner } if is_kube => {
                problems.push(at, "`sequence` is not supported in kube yet: give one fault");
                faults.extend(inner.iter().map(|e| &e.fault));
            }
            Fault::Sequence { faults: inner } => faults.extend(inner.iter().map(|e| &e.fault)),
            Fault::NodeDrain { deadline: Some(_), .. } if !is_kube => problems.push(
                at,
                "node_drain: `deadline` bounds the retries of evictions a PodDisruptionBudget blocks, and applies to kube only",
            ),
            Fault::NodeDrain { deadline: Some(d), .. } if d.is_zero() => {
                problems.push(at, "node_drain: `deadline` must be greater than zero")
            }
            Fault::NodeDrain { .. } => {}
            Fault::TrafficSurge { deployment, workers, image, start_within, .. } if !is_kube => {
                let fields = [
                    ("deployment", deployment.is_some()),
                    ("workers", workers.is_some()),
                    ("image", image.is_some()),
                    ("start_within", start_within.is_some()),
                ];
                for (field, given) in fields {
                    if given {
                        problems.push(at, format!("traffic_surge: `{field}` applies to kube only"));
                    }
                }
            }
            Fault::TrafficSurge { workers: Some(0), .. } => {
                problems.push(at, "traffic_surge: `workers` must be at least 1")
            }
            Fault::TrafficSurge { workers: Some(_), image: None, .. } => problems.push(
                at,
                "traffic_surge: `workers` runs the generator in the cluster and needs `image`, an image holding the firedrill binary",
            ),
            Fault::TrafficSurge { workers: None, image: Some(_), .. } => {
                problems.push(at, "traffic_surge: `image` is the workers' image, and there are no `workers`")
            }
            Fault::TrafficSurge { workers: None, start_within: Some(_), .. } => {
                problems.push(at, "traffic_surge: `start_within` is the workers' time to start, and there are no `workers`")
            }
            Fault::TrafficSurge { .. } => {}
            Fault::NetworkBlackhole { .. } if is_kube => {
                if let Some(cluster) = cluster {
                    check_kube_blackhole(f, cluster, at, problems);
                }
            }
            _ if f.is_kube_fault() => match cluster {
                Some(cluster) => check_kube_fault(f, cluster, at, problems),
                None => problems
                    .push(at, format!("`{kind}` acts on Kubernetes pods and workloads: it needs `environment: {{kind: kube}}`")),
            },
            Fault::NetworkBlackhole { direction, namespace, confirm, .. }
                if !is_kube && (direction.is_some() || namespace.is_some() || confirm.is_some()) =>
            {
                problems.push(at, "network_blackhole: `direction`, `namespace` and `confirm` are kube's (a NetworkPolicy blackhole)")
            }
            Fault::DbFailover { db_instance, db_cluster, target, failback, confirm_within, .. } if !is_aws
                && (db_instance.is_some() || db_cluster.is_some() || target.is_some() || *failback || confirm_within.is_some()) =>
            {
                problems.push(at, "db_failover: `db_instance`, `db_cluster`, `target`, `failback` and `confirm_within` name RDS resources and their control plane, and apply to aws only")
            }
            Fault::DbFailover { db_instance, db_cluster, target, mode, .. } if is_aws => {
                match (db_instance, db_cluster) {
                    (Some(_), Some(_)) => problems.push(at, "db_failover: `db_instance` and `db_cluster` each name the database that fails: give one"),
                    (None, None) => problems.push(at, "db_failover: aws needs `db_instance` (a Multi-AZ instance) or `db_cluster` (Aurora, a Multi-AZ cluster)"),
                    _ => {}
                }
                if target.is_some() && db_cluster.is_none() {
                    problems.push(at, "db_failover: `target` is the reader a DB cluster's failover promotes; a Multi-AZ instance has only its standby");
                }
                if *mode == FailoverMode::Graceful {
                    problems.push(at, "db_failover: on aws the failover is RDS's own (a reboot with failover, or FailoverDBCluster): `mode: graceful` does not apply");
                }
            }
            Fault::DbFailover { cluster: Some(_), .. } if !is_kube => problems.push(
                at,
                "db_failover: `cluster` names a CloudNativePG Cluster, and applies to kube only",
            ),
            Fault::DbFailover { patroni: Some(_), .. } if !is_kube => {
                problems.push(at, "db_failover: `patroni` names a Patroni cluster's pods, and applies to kube only")
            }
            Fault::DbFailover { cluster: None, patroni: None, .. } if is_kube => problems.push(
                at,
                "db_failover: kube needs `cluster` (a CloudNativePG Cluster) or `patroni` (a Patroni cluster's pods), whose primary fails",
            ),
            Fault::DbFailover { cluster: Some(_), patroni: Some(_), .. } => {
                problems.push(at, "db_failover: `cluster` and `patroni` each name the database that fails: give one")
            }
            Fault::DbFailover { patroni: Some(patroni), .. } if label_terms(&patroni.selector).is_none() => problems.push(
                at,
                format!("db_failover: `patroni.selector` `{}` is not a label selector of `key=value` terms", patroni.selector),
            ),
            Fault::DbFailover { .. } => {}
            _ if !is_kube => {}
            _ if f.is_container_fault() => problems.push(
                at,
                format!("`{kind}` acts on a Docker container; kube has pods and nodes: node_drain drains a node, pod_kill kills pods"),
            ),
            _ => problems.push(
                at,
                format!("`{kind}` is not supported in kube: network_blackhole cuts pods off from a service (see scenarios/kube/s3-block.yaml)"),
            ),
        }
    }
}

/// A kube fault's selector, count or workload, and its namespace among the cluster's: what it
/// may disrupt is said in the file.
fn check_kube_fault(fault: &Fault, cluster: &KubeCluster, at: Pos, problems: &mut Problems) {
    let kind = fault.kind();
    let (namespace, selector, count) = match fault {
        Fault::PodKill { selector, namespace, count } | Fault::PodDelete { selector, namespace, count, .. } => {
            (namespace, Some(selector), *count)
        }
        Fault::Scale { workload, namespace, .. } => {
            if crate::scenario::Workload::parse(workload).is_none() {
                problems.push(
                    at,
                    format!("{kind}: `workload` must be `deployment/NAME` or `statefulset/NAME`, got `{workload}`"),
                );
            }
            (namespace, None, None)
        }
        _ => return,
    };
    if selector.is_some_and(|s| s.trim().is_empty()) {
        problems
            .push(at, format!("{kind}: `selector` must pick pods by label (`app=shop`): an empty one picks every pod"));
    }
    if count == Some(0) {
        problems.push(at, format!("{kind}: `count` must be at least 1"));
    }
    check_kube_namespace(kind, namespace.as_deref(), cluster, at, problems);
}

/// A kube fault's namespace is one of the cluster's `namespaces`.
fn check_kube_namespace(
    kind: FaultKind,
    namespace: Option<&str>,
    cluster: &KubeCluster,
    at: Pos,
    problems: &mut Problems,
) {
    let allowed =
        if cluster.namespaces.is_empty() { std::slice::from_ref(&cluster.namespace) } else { &cluster.namespaces[..] };
    if let Some(namespace) = namespace.filter(|n| !allowed.iter().any(|a| a == n)) {
        problems.push(
            at,
            format!(
                "{kind}: namespace `{namespace}` is not one of the environment's namespaces ({})",
                allowed.join(", ")
            ),
        );
    }
}

/// A kube blackhole is a NetworkPolicy: its pods and peer are `key=value` labels (a policy's
/// `matchLabels`, and what a partition's rules negate), it drops (a policy cannot refuse), and
/// it names the in-cluster URL that confirms it. An ingress partition cannot be confirmed: the
/// check would have to come from the peer's pods, which firedrill does not pose as.
fn check_kube_blackhole(fault: &Fault, cluster: &KubeCluster, at: Pos, problems: &mut Problems) {
    let Fault::NetworkBlackhole { target, peer, mode, direction, namespace, confirm, .. } = fault else { return };
    for (field, selector) in std::iter::once(("target", target)).chain(peer.iter().map(|p| ("peer", p))) {
        if label_terms(selector).is_none() {
            problems.push(
                at,
                format!("network_blackhole: `{field}` must be `key=value` labels joined by `,` (a NetworkPolicy's matchLabels), got `{selector}`"),
            );
        }
    }
    if *mode == BlockMode::Refuse {
        problems.push(at, "network_blackhole: a NetworkPolicy drops what it denies; `mode: refuse` is Docker's");
    }
    if peer.is_some() && *direction == Some(Direction::Ingress) {
        problems.push(
            at,
            "network_blackhole: an ingress partition cannot be confirmed (the check would have to come from the peer's pods): cut `egress` of the peer's clients, or `both`",
        );
    }
    match confirm {
        None => problems.push(
            at,
            "network_blackhole: kube needs `confirm`, an in-cluster http:// URL that must fail once the policy holds: a CNI may not enforce NetworkPolicy",
        ),
        Some(url) if !url.starts_with("http://") => {
            problems.push(at, format!("network_blackhole: `confirm` must be an http:// URL inside the cluster, got `{url}`"))
        }
        Some(_) => {}
    }
    check_kube_namespace(fault.kind(), namespace.as_deref(), cluster, at, problems);
}

/// The simulated stack stays within the sizes the simulation models.
fn check_sim_stack(stack: &SimStack, at: Pos, problems: &mut Problems) {
    for (field, value) in [
        ("nodes", stack.nodes),
        ("replicas", stack.replicas),
        ("autoscaler.max_replicas", stack.autoscaler.max_replicas),
    ] {
        if value > MAX_SIM_SIZE {
            problems.push(
                at,
                format!("environment.{field}: {value} is more than the simulation models (at most {MAX_SIM_SIZE})"),
            );
        }
    }
}

/// Container names are unique host names, each attachment names one container, and
/// containers are placed on declared nodes.
fn check_docker_stack(stack: &DockerStack, at: Pos, problems: &mut Problems) {
    let mut names = HashSet::new();
    let declared = stack.containers.iter().map(|c| &c.name).chain(stack.attach.iter().map(|a| &a.name));
    for name in declared {
        if !is_hostname(name) {
            problems.push(at, format!("environment: container name `{name}` must be letters, digits and `-`"));
        }
        if !names.insert(name.as_str()) {
            problems.push(at, format!("environment: duplicate container name `{name}`"));
        }
    }
    for a in &stack.attach {
        if a.container.is_some() == a.compose.is_some() {
            problems
                .push(at, format!("environment.attach `{}`: needs exactly one of `container` or `compose`", a.name));
        }
        // A pattern could reach containers nobody listed: what a drill touches outside
        // firedrill's own is named one by one.
        let compose = a.compose.iter().flat_map(|c| [("compose.project", &c.project), ("compose.service", &c.service)]);
        for (field, value) in a.container.iter().map(|c| ("container", c)).chain(compose) {
            if value.is_empty() || value.contains(['*', '?', '[']) {
                problems.push(
                    at,
                    format!("environment.attach `{}`: `{field}` must name one container exactly, not `{value}` (no wildcards)", a.name),
                );
            }
        }
    }
    for c in &stack.containers {
        if let Some(node) = c.node.as_ref().filter(|n| !stack.nodes.contains(n) && *n != "any") {
            problems.push(
                at,
                format!(
                    "environment.containers `{}`: node `{node}` is not one of the environment's `nodes` ({})",
                    c.name,
                    if stack.nodes.is_empty() { "none declared".into() } else { stack.nodes.join(", ") }
                ),
            );
        }
        if c.ready.timeout.is_zero() {
            problems
                .push(at, format!("environment.containers `{}`: `ready.timeout` must be greater than zero", c.name));
        }
    }
}

/// A recovery is only observed until the deadline, so a longer target could never be seen met.
fn check_targets_within_deadline(targets: &Targets, disruption: Disruption, deadline: Dur, problems: &mut Problems) {
    for (target, word) in availability_targets(targets, disruption) {
        if target.value > deadline {
            problems.push(
                Pos::spanned(target),
                format!(
                    "target `{word}` ({}) is longer than the deadline ({deadline}): a recovery that meets it could not be observed; raise `deadline`",
                    target.value
                ),
            );
        }
    }
}

/// Each step target names exactly one step of the procedure, and is a time a drill can see
/// met: above zero and within the deadline (steps do not run past it).
fn check_step_targets(targets: &Targets, procedure: &Procedure, deadline: Dur, problems: &mut Problems) {
    for (name, limit) in &targets.steps {
        let at = Pos::spanned(limit);
        let word = format!("target `steps.{name}`");
        let numbers: Vec<String> = procedure
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.name == *name)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        match numbers.len() {
            _ if procedure.steps.is_empty() => problems.push(
                at,
                format!("{word} cannot be timed: the procedure has no steps (give it `kind: steps` and the step)"),
            ),
            0 => {
                let known: Vec<String> = procedure.steps.iter().map(|s| format!("`{}`", s.value.name)).collect();
                problems.push(at, format!("{word} names no step of the procedure; its steps are {}", known.join(", ")));
            }
            1 => {}
            _ => problems.push(
                at,
                format!(
                    "{word} cannot be timed: steps {} share that name; give them names of their own",
                    numbers.join(" and ")
                ),
            ),
        }
        if limit.value.is_zero() {
            problems.push(at, format!("{word} must be greater than zero"));
        } else if limit.value > deadline {
            problems.push(
                at,
                format!(
                    "{word} ({}) is longer than the deadline ({deadline}): steps stop at the deadline, so it could never be seen met; raise `deadline`",
                    limit.value
                ),
            );
        }
    }
}

/// The procedure's kind agrees with its steps, and its budget fits in the deadline; `at` is
/// the `procedure` key.
fn check_procedure(procedure: &Procedure, deadline: Dur, at: Pos, problems: &mut Problems) {
    match (procedure.kind, procedure.steps.first()) {
        (ProcedureKind::Steps, None) => problems.push(at, "procedure of kind `steps` has no steps"),
        (ProcedureKind::Automatic, Some(first)) => {
            problems.push(Pos::spanned(first), "procedure of kind `automatic` cannot have steps: set `kind: steps`")
        }
        _ => {}
    }
    if let Some(budget) = procedure.budget {
        if budget > deadline {
            problems.push(at, format!("procedure `budget` ({budget}) is longer than the deadline ({deadline})"));
        }
    }
}

/// An inject is shown while the exercise runs, so within the deadline, and says something.
fn check_injects(injects: &[Spanned<Inject>], deadline: Dur, problems: &mut Problems) {
    for (i, inject) in injects.iter().enumerate() {
        let Inject { at, text } = &inject.value;
        if *at > deadline {
            problems.push(
                Pos::spanned(inject),
                format!("injects[{i}]: `at` ({at}) is after the deadline ({deadline}): the exercise is over by then"),
            );
        }
        if text.trim().is_empty() {
            problems.push(Pos::spanned(inject), format!("injects[{i}]: `text` is empty: say what the room learns"));
        }
    }
}

/// Each step, in order; in `sim` every step must have a simulated duration.
fn check_steps(steps: &[Spanned<Step>], deadline: Dur, is_sim: bool, problems: &mut Problems) {
    for s in steps {
        check_step(&s.value, Pos::spanned(s), deadline, is_sim, problems);
    }
}

fn check_step(step: &Step, at: Pos, deadline: Dur, is_sim: bool, problems: &mut Problems) {
    let name = &step.name;
    match (step_action(step), &step.run) {
        (None, _) => problems
            .push(at, format!("step `{name}` needs exactly one of `run`, `start` or `kube` (automated) or `manual`")),
        (Some(_), Some(argv)) if argv.is_empty() => {
            problems.push(at, format!("step `{name}`: `run` must name a program"))
        }
        _ => {}
    }
    if step.container.is_some() && step.run.is_none() {
        problems.push(at, format!("step `{name}`: `container` applies to `run` steps only"));
    }
    if let Some(action) = &step.kube {
        check_kube_action(name, action, at, problems);
    }
    if let Some(b) = &step.budget {
        if b.value > deadline {
            problems.push(
                Pos::spanned(b),
                format!("step `{name}`: budget {} is longer than the deadline ({deadline})", b.value),
            );
        }
    }
    let sim = step.sim.as_ref();
    if let Some(Err(e)) = sim.and_then(|s| s.duration.as_ref()).map(|d| d.check()) {
        problems.push(at, format!("step `{name}`: sim duration: {e}"));
    }
    if is_sim && sim_duration(step).is_none() {
        problems.push(
            at,
            format!(
                "step `{name}` has neither a `budget` nor a `sim.duration`: the simulation cannot know how long it takes"
            ),
        );
    }
    if sim.is_some_and(|s| s.effect == Effect::ScaleOut && s.replicas.unwrap_or(0) == 0) {
        problems.push(at, format!("step `{name}`: effect `scale_out` needs `replicas` (at least 1)"));
    }
}

/// A `kube` step names a workload as kubectl does, a command, and exactly one of a pod or
/// a selector.
fn check_kube_action(name: &str, action: &KubeAction, at: Pos, problems: &mut Problems) {
    match action {
        KubeAction::Scale { workload, .. } | KubeAction::RolloutRestart { workload, .. } => {
            if Workload::parse(workload).is_none() {
                problems.push(
                    at,
                    format!(
                        "step `{name}`: `workload` must be `deployment/NAME` or `statefulset/NAME`, got `{workload}`"
                    ),
                );
            }
        }
        KubeAction::Exec { pod, selector, command, .. } => {
            if command.is_empty() {
                problems.push(at, format!("step `{name}`: `command` must name a program"));
            }
            check_pod_or_selector(name, pod, selector, at, problems);
        }
        KubeAction::DeletePod { pod, selector, .. } => check_pod_or_selector(name, pod, selector, at, problems),
        KubeAction::Uncordon { .. } => {}
    }
}

fn check_pod_or_selector(
    name: &str,
    pod: &Option<String>,
    selector: &Option<String>,
    at: Pos,
    problems: &mut Problems,
) {
    let empty = |s: &Option<String>| s.as_ref().is_some_and(|s| s.trim().is_empty());
    if pod.is_some() == selector.is_some() || empty(pod) || empty(selector) {
        problems.push(at, format!("step `{name}`: give exactly one of `pod` or `selector`"));
    }
}

/// The fault's parameters that serde cannot check alone.
fn check_fault(fault: &Spanned<Fault>, problems: &mut Problems) {
    if let Fault::TrafficSurge { multiplier, rate, duration, .. } = &fault.value {
        let at = Pos::spanned(fault);
        match (multiplier, rate) {
            (Some(m), None) if !(m.is_finite() && *m > 0.0) => {
                problems.push(at, format!("traffic_surge: `multiplier` must be a positive number, got {m}"))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => problems.push(at, "traffic_surge needs exactly one of `multiplier` or `rate`"),
        }
        if duration.is_zero() {
            problems.push(at, "traffic_surge: `duration` must be greater than zero");
        }
    }
}

/// Stop conditions watch probes the scenario defines; an `slo_breach` watches an `slo` probe,
/// with limits that can be breached and that are no tighter than the probe's objective.
fn check_stop_conditions(
    stop_conditions: &[Spanned<StopCondition>],
    probes: &[Spanned<Probe>],
    problems: &mut Problems,
) {
    for sc in stop_conditions {
        let at = Pos::spanned(sc);
        let name = sc.value.probe();
        let Some(probe) = probes.iter().map(|p| &p.value).find(|p| p.name == name) else {
            problems.push(at, format!("stop condition names probe `{name}`, which the scenario does not define"));
            continue;
        };
        if let StopCondition::SloBreach { max_error_percent, p95, p99, .. } = &sc.value {
            check_slo_breach(probe, *max_error_percent, [("p95", *p95), ("p99", *p99)], at, problems);
        }
    }
}

fn check_slo_breach(
    probe: &Probe,
    max_error_percent: Option<f64>,
    latencies: [(&str, Option<Dur>); 2],
    at: Pos,
    problems: &mut Problems,
) {
    let name = &probe.name;
    let Check::Slo { max_error_percent: objective_errors, p95, p99, .. } = &probe.check else {
        problems.push(
            at,
            format!(
                "stop condition `slo_breach` watches probe `{name}`, a `{}` probe: it needs an `slo` probe (use `probe_failing` for others)",
                probe.check.kind()
            ),
        );
        return;
    };
    if max_error_percent.is_none() && latencies.iter().all(|(_, l)| l.is_none()) {
        problems.push(
            at,
            format!(
                "stop condition `slo_breach` on `{name}` needs at least one of `max_error_percent`, `p95` or `p99`"
            ),
        );
    }
    if let Some(max) = max_error_percent {
        if !(0.0..=100.0).contains(&max) {
            problems.push(
                at,
                format!("stop condition `slo_breach` on `{name}`: `max_error_percent` must be between 0 and 100"),
            );
        } else if max < *objective_errors {
            problems.push(
                at,
                format!(
                    "stop condition `slo_breach` on `{name}`: `max_error_percent` ({max}%) is tighter than the probe's objective ({objective_errors}%): a safety limit must be looser, or the drill aborts before recovery can be measured"
                ),
            );
        }
    }
    for ((word, limit), objective) in latencies.into_iter().zip([p95, p99]) {
        match (limit, objective) {
            (Some(limit), _) if limit.is_zero() => {
                problems.push(at, format!("stop condition `slo_breach` on `{name}`: `{word}` must be greater than zero"))
            }
            (Some(limit), Some(objective)) if limit < *objective => problems.push(
                at,
                format!(
                    "stop condition `slo_breach` on `{name}`: `{word}` ({limit}) is tighter than the probe's objective ({objective}): a safety limit must be looser, or the drill aborts before recovery can be measured"
                ),
            ),
            _ => {}
        }
    }
}

/// A fault that affects more than `max_blast_radius`, as far as the file tells, is refused
/// before anything runs.
fn check_blast_radius(raw: &RawScenario, problems: &mut Problems) {
    let Some(limit) = &raw.max_blast_radius else { return };
    let affected = statically_affected(&raw.environment, &raw.fault.value);
    if let Some(refused) = BlastRadiusExceeded::check(&raw.fault.value, affected, limit.value) {
        problems.push(Pos::spanned(&raw.fault), refused.to_string());
    }
}

/// Healthy windows of no samples would count a system as healthy without looking at it.
fn check_sample_counts(raw: &RawScenario, text: &str, problems: &mut Problems) {
    if raw.stability.samples == 0 {
        problems.push(Pos::key(text, "stability"), "`stability.samples` must be at least 1");
    }
    if raw.steady_state.samples == 0 {
        problems.push(Pos::key(text, "steady_state"), "`steady_state.samples` must be at least 1");
    }
}

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name other containers can resolve: a DNS label.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a docker scenario with an `slo` probe `users` (objective: errors under
    /// 1%, p95 under 500ms), an http probe `home`, and `stop` as its stop conditions.
    fn problems(stop: &str) -> Vec<Problem> {
        let text = format!(
            "name: stops
environment: {{ kind: docker, containers: [{{ name: web, image: firedrill/base:latest }}] }}
fault: {{ kind: container_stop, target: web }}
probes:
  - name: home
    check: {{ kind: http, url: \"http://{{web}}/\" }}
  - name: users
    check: {{ kind: slo, url: \"http://{{web}}/\", rate: 10/s, p95: 500ms }}
stop_conditions:
  - {stop}
"
        );
        match crate::scenario::parse(&text, Path::new("stops.yaml")) {
            Ok(_) => vec![],
            Err(ScenarioError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn injects_are_shown_within_the_deadline_and_say_something() {
        let text = "name: t\nfault: { kind: db_failover }\ndeadline: 10m\ninjects:\n  - { at: 5m, text: status page down }\n  - { at: 11m, text: late }\n  - { at: 1m, text: ' ' }\n";
        let Err(ScenarioError::Invalid { problems, .. }) = crate::scenario::parse(text, Path::new("t.yaml")) else {
            panic!("accepted")
        };
        let messages: Vec<(u64, &str)> = problems.iter().map(|p| (p.pos.line, p.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (6, "injects[1]: `at` (11m) is after the deadline (10m): the exercise is over by then"),
                (7, "injects[2]: `text` is empty: say what the room learns"),
            ]
        );
    }

    fn messages(stop: &str) -> Vec<String> {
        problems(stop).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn an_slo_breach_on_an_slo_probe_with_looser_limits_is_valid() {
        assert_eq!(messages("{ kind: slo_breach, probe: users, max_error_percent: 20, p95: 800ms, for: 5s }"), [""; 0]);
        assert_eq!(messages("{ kind: slo_breach, probe: users, p99: 2s, for: 0s }"), [""; 0]);
    }

    #[test]
    fn an_slo_breach_needs_an_slo_probe_and_points_at_the_condition() {
        let found = problems("{ kind: slo_breach, probe: home, p95: 800ms, for: 5s }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pos, Pos { line: 10, column: 5 });
        assert!(found[0].message.contains("probe `home`, a `http` probe: it needs an `slo` probe"), "{found:?}");
        let found = messages("{ kind: slo_breach, probe: nobody, p95: 800ms, for: 5s }");
        assert_eq!(found, ["stop condition names probe `nobody`, which the scenario does not define"]);
    }

    #[test]
    fn an_slo_breach_needs_a_limit_that_can_be_breached() {
        let found = messages("{ kind: slo_breach, probe: users, for: 5s }");
        assert_eq!(
            found,
            ["stop condition `slo_breach` on `users` needs at least one of `max_error_percent`, `p95` or `p99`"]
        );
        let found = messages("{ kind: slo_breach, probe: users, max_error_percent: 120, for: 5s }");
        assert!(found[0].contains("`max_error_percent` must be between 0 and 100"), "{found:?}");
        let found = messages("{ kind: slo_breach, probe: users, p99: 0s, for: 5s }");
        assert!(found[0].contains("`p99` must be greater than zero"), "{found:?}");
    }

    #[test]
    fn an_slo_breach_tighter_than_the_objective_is_refused() {
        let found = messages("{ kind: slo_breach, probe: users, max_error_percent: 0.5, p95: 300ms, for: 5s }");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("`max_error_percent` (0.5%) is tighter than the probe's objective (1%)"),
            "{found:?}"
        );
        assert!(found[1].contains("`p95` (300ms) is tighter than the probe's objective (500ms)"), "{found:?}");
    }

    #[test]
    fn an_slo_breach_without_its_for_is_a_parse_error() {
        let text = "name: s\nfault: { kind: db_failover }\nstop_conditions:\n  - { kind: slo_breach, probe: users, p95: 1s }\n";
        let e = crate::scenario::parse(text, Path::new("s.yaml")).unwrap_err().to_string();
        assert!(e.contains("s.yaml:4:5: missing field `for`"), "{e}");
    }
}

#[cfg(test)]
mod step_target_tests {
    use std::path::Path;

    use super::super::parse;
    use crate::duration::Dur;

    /// A sim scenario with two steps (`FIRST` and `SECOND` their names) and `TARGETS` under
    /// `targets.steps`; deadline 20m.
    const TIMED: &str = "name: s
fault: {kind: db_failover}
procedure:
  kind: steps
  steps:
    - {name: FIRST, manual: Acknowledge the PagerDuty alert, budget: 2m}
    - {name: SECOND, manual: Post the status page, budget: 5m}
targets:
  steps:
TARGETS
deadline: 20m
";

    fn scenario(first: &str, second: &str, targets: &str) -> Result<crate::scenario::Scenario, String> {
        let text = TIMED.replace("FIRST", first).replace("SECOND", second);
        parse(&text.replace("TARGETS", targets), Path::new("s.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_step_target_is_kept_on_its_step() {
        let targets = "    Acknowledge the page: 5m\n    \"Notify stakeholders\": 10m";
        let s = scenario("Acknowledge the page", "Notify stakeholders", targets).unwrap();
        assert_eq!(s.steps[0].target, Some(Dur::secs(300)));
        assert_eq!(s.steps[1].target, Some(Dur::secs(600)));
        let s = scenario("Acknowledge the page", "Notify stakeholders", "    {}").unwrap();
        assert!(s.steps.iter().all(|st| st.target.is_none()), "no step targets, none resolved");
    }

    #[test]
    fn a_step_target_names_one_step_of_the_procedure() {
        let e = scenario("Acknowledge the page", "Notify", "    Acknowledge the pager: 5m").unwrap_err();
        assert_eq!(
            e,
            "s.yaml:10:28: target `steps.Acknowledge the pager` names no step of the procedure; its steps are `Acknowledge the page`, `Notify`"
        );
        let e = scenario("Notify", "Notify", "    Notify: 5m").unwrap_err();
        assert_eq!(
            e,
            "s.yaml:10:13: target `steps.Notify` cannot be timed: steps 1 and 2 share that name; give them names of their own"
        );
    }

    #[test]
    fn a_step_target_needs_steps_and_a_time_within_the_deadline() {
        let automatic = "name: s\nfault: {kind: db_failover}\ntargets:\n  steps:\n    Ack: 5m\n";
        let e = parse(automatic, Path::new("s.yaml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "s.yaml:5:10: target `steps.Ack` cannot be timed: the procedure has no steps (give it `kind: steps` and the step)"
        );
        let e = scenario("Ack", "Notify", "    Ack: 25m\n    Notify: 0s").unwrap_err();
        assert_eq!(
            e,
            "s.yaml:10:10: target `steps.Ack` (25m) is longer than the deadline (20m): steps stop at the deadline, so it could never be seen met; raise `deadline`\ns.yaml:11:13: target `steps.Notify` must be greater than zero"
        );
    }
}

#[cfg(test)]
mod blast_radius_tests {
    use std::path::Path;

    use super::super::parse;

    /// The problems of a scenario text, one per line; empty when it loads.
    fn problems(text: &str) -> String {
        parse(text, Path::new("s.yaml")).err().map(|e| e.to_string()).unwrap_or_default()
    }

    const ATTACHED: &str = "name: s
environment:
  kind: docker
  attach:
    - {name: web, container: WEB}
    - {name: db, compose: {project: PROJECT, service: SERVICE}}
fault: {kind: container_pause, target: web}
";

    #[test]
    fn attachments_name_containers_exactly() {
        let attached = |web: &str, project: &str, service: &str| {
            problems(&ATTACHED.replace("WEB", web).replace("PROJECT", project).replace("SERVICE", service))
        };
        assert_eq!(attached("shop-web-1", "shop", "db"), "");
        for (web, project, service, field) in [
            ("\"shop-*\"", "shop", "db", "`container` must name one container exactly, not `shop-*`"),
            ("shop-web-1", "\"sh?p\"", "db", "`compose.project` must name one container exactly, not `sh?p`"),
            ("shop-web-1", "shop", "\"db[12]\"", "`compose.service` must name one container exactly, not `db[12]`"),
            ("shop-web-1", "shop", "\"\"", "`compose.service` must name one container exactly, not ``"),
        ] {
            let found = attached(web, project, service);
            assert!(found.contains(field) && found.starts_with("s.yaml:2:1:"), "{field}: {found}");
        }
    }

    #[test]
    fn a_fault_affecting_more_than_max_blast_radius_is_refused_at_its_place() {
        let drain = "name: s
environment:
  kind: docker
  nodes: [node-a, node-b]
  containers:
    - {name: web-1, node: node-a}
    - {name: web-2, node: node-a}
    - {name: web-3, node: any}
fault: {kind: node_drain, node: node-a}
max_blast_radius: LIMIT
";
        let found = problems(&drain.replace("LIMIT", "1"));
        assert_eq!(
            found,
            "s.yaml:9:8: node_drain of node-a would affect 2 container(s) (web-1, web-2); max_blast_radius is 1"
        );
        assert_eq!(problems(&drain.replace("LIMIT", "2")), "");
        let sim = "name: s\nenvironment: {kind: sim, nodes: 2, replicas: 4}\nfault: {kind: node_drain, node: node-1}\nmax_blast_radius: 1\n";
        assert!(problems(sim).contains("node_drain of node-1 would affect 2 container(s) (replica-1, replica-3)"));
    }
}

#[cfg(test)]
mod ca_tests {
    #[test]
    fn a_ca_is_for_https_and_must_be_found_from_the_scenarios_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "").unwrap();
        let text = |url: &str, ca: &str| {
            format!("name: s\nfault: {{kind: db_failover}}\nprobes:\n  - name: site\n    check: {{kind: http, url: \"{url}\", ca: {ca}}}\n")
        };
        let path = dir.path().join("s.yaml");
        let s = crate::scenario::parse(&text("https://shop/", "ca.pem"), &path).expect("valid");
        let crate::scenario::Check::Http { ca: Some(ca), .. } = &s.probes[0].check else { panic!("an http check") };
        assert_eq!(ca, &dir.path().join("ca.pem"), "resolved from the scenario's folder");
        let e = crate::scenario::parse(&text("http://shop/", "missing.pem"), &path).unwrap_err().to_string();
        assert!(e.contains("s.yaml:4:5: probe `site`: `ca` is for https:// URLs, not `http://shop/`"), "{e}");
        assert!(e.contains(&format!("`ca` file {} not found", dir.path().join("missing.pem").display())), "{e}");
        let s3 = |endpoint: &str| {
            format!("name: s\nfault: {{kind: db_failover}}\nprobes:\n  - name: store\n    check: {{kind: s3, endpoint: \"{endpoint}\", bucket: b, ca: ca.pem}}\n")
        };
        let s = crate::scenario::parse(&s3("https://minio:9000"), &path).expect("valid");
        let crate::scenario::Check::S3 { ca: Some(ca), .. } = &s.probes[0].check else { panic!("an s3 check") };
        assert_eq!(ca, &dir.path().join("ca.pem"));
        let e = crate::scenario::parse(&s3("http://minio:9000"), &path).unwrap_err().to_string();
        assert!(e.contains("probe `store`: `ca` is for https:// URLs, not `http://minio:9000`"), "{e}");
    }

    #[test]
    fn a_dsns_certificate_files_are_found_from_the_scenarios_folder_and_its_sslmode_known() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "").unwrap();
        let text = |kind: &str, dsn: &str| {
            format!("name: s\nfault: {{kind: db_failover}}\nprobes:\n  - name: db\n    check: {{kind: {kind}, dsn: \"{dsn}\"}}\n")
        };
        let path = dir.path().join("s.yaml");
        let s = crate::scenario::parse(&text("sql", "host=db sslmode=verify-full sslrootcert=ca.pem"), &path)
            .expect("valid");
        let crate::scenario::Check::Sql { dsn, .. } = &s.probes[0].check else { panic!("a sql check") };
        assert_eq!(dsn, &format!("host=db sslmode=verify-full sslrootcert='{}'", dir.path().join("ca.pem").display()));
        let e = crate::scenario::parse(
            &text("write_ledger", "postgresql://db/x?sslmode=verify&sslcert=c.pem&sslkey=k.pem"),
            &path,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("s.yaml:4:5: probe `db`: `dsn`: unknown sslmode `verify`"), "{e}");
        assert!(e.contains(&format!("`dsn`: sslcert file {} not found", dir.path().join("c.pem").display())), "{e}");
        assert!(e.contains(&format!("`dsn`: sslkey file {} not found", dir.path().join("k.pem").display())), "{e}");
    }
}

#[cfg(test)]
mod alert_tests {
    #[test]
    fn an_alert_names_its_alert_and_never_counts_as_availability() {
        let text = |check: &str| {
            format!("name: s\nfault: {{kind: db_failover}}\nprobes:\n  - name: paging\n    check: {check}\n    availability: true\n")
        };
        let e = crate::scenario::parse(&text("{kind: alert, url: \"http://p:9090\", alert: \"\"}"), "s.yaml".as_ref())
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.yaml:4:5: probe `paging`: `alert` must name the alert"), "{e}");
        assert!(e.contains("probe `paging`: an alert measures detection, not what users see"), "{e}");
        let ok = "name: s\nfault: {kind: db_failover}\nprobes:\n  - name: paging\n    check: {kind: alert, url: \"http://p:9090\", alert: Down}\n";
        let s = crate::scenario::parse(ok, "s.yaml".as_ref()).expect("valid");
        assert!(!s.probes[0].is_availability(), "an alert measures detection");
        assert_eq!(s.probes[0].check.target(), "alert Down on http://p:9090");

        // A Prometheus behind a private CA, as an https:// probe's.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "").unwrap();
        let tls = ok.replace("http://p:9090\", alert: Down", "https://p:9090\", alert: Down, ca: ca.pem");
        let s = crate::scenario::parse(&tls, &dir.path().join("s.yaml")).expect("valid");
        let crate::scenario::Check::Alert { ca: Some(ca), .. } = &s.probes[0].check else { panic!("an alert") };
        assert_eq!(ca, &dir.path().join("ca.pem"), "resolved from the scenario's folder");
    }
}

#[cfg(test)]
mod kube_tests {
    use std::path::Path;

    use crate::scenario::{parse, EnvironmentSpec};

    /// The problems of a scenario text, one per line; empty when it loads.
    fn problems(text: &str) -> String {
        parse(text, Path::new("k.yaml")).err().map(|e| e.to_string()).unwrap_or_default()
    }

    const DRAIN: &str = "name: k
environment:
  kind: kube
  context: CONTEXT
  namespace: shop
  NAMESPACES
fault: FAULT
";

    fn kube(context: &str, namespaces: &str, fault: &str) -> String {
        DRAIN.replace("CONTEXT", context).replace("NAMESPACES", namespaces).replace("FAULT", fault)
    }

    #[test]
    fn a_kube_cluster_names_its_context_and_its_namespaces_default_to_its_namespace() {
        let s = parse(&kube("kind-drill", "", "{kind: node_drain, node: n1, deadline: 2m}"), Path::new("k.yaml"))
            .expect("valid");
        let EnvironmentSpec::Kube(cluster) = &s.environment else { panic!("a kube scenario") };
        assert_eq!(
            (cluster.context.as_str(), cluster.namespaces.as_slice()),
            ("kind-drill", &["shop".to_string()][..])
        );
        assert_eq!(s.fault.describe(), "drain node n1 (grace period 30s, deadline 2m)");
        let found = problems(&kube("\"\"", "namespaces: [web, Db]", "{kind: node_drain, node: n1}"));
        assert!(found.contains("k.yaml:2:1: environment.context must name a kubeconfig context"), "{found}");
        assert!(found.contains("namespace `Db` must be lowercase letters"), "{found}");
        assert!(found.contains("environment.namespaces (web, Db) must contain `namespace` (shop)"), "{found}");
        let missing =
            problems("name: k\nenvironment: {kind: kube, namespace: shop}\nfault: {kind: node_drain, node: n1}\n");
        assert!(missing.contains("missing field `context`"), "{missing}");
    }

    #[test]
    fn faults_kube_cannot_carry_out_are_named_at_the_fault() {
        let found = problems(&kube("kind-drill", "", "{kind: container_pause, target: web}"));
        assert!(
            found.contains("k.yaml:7:8: `container_pause` acts on a Docker container; kube has pods and nodes"),
            "{found}"
        );
        let found = problems(&kube("kind-drill", "", "{kind: s3_block}"));
        assert!(
            found.contains("`s3_block` is not supported in kube: network_blackhole cuts pods off from a service"),
            "{found}"
        );
        let found = problems(&kube("kind-drill", "", "{kind: db_failover}"));
        assert!(found.contains("k.yaml:7:8: db_failover: kube needs `cluster`"), "{found}");
        assert!(problems(&kube("kind-drill", "", "{kind: db_failover, cluster: pg}")).is_empty());
        let found = problems("name: s\nfault: {kind: db_failover, cluster: pg}\n");
        assert!(found.contains("k.yaml:2:8: db_failover: `cluster` names a CloudNativePG Cluster"), "{found}");
        let found = problems("name: s\nfault: {kind: node_drain, node: node-1, deadline: 1m}\n");
        assert!(found.contains("k.yaml:2:8: node_drain: `deadline` bounds the retries"), "{found}");
    }

    #[test]
    fn a_patroni_failover_is_kubes_names_one_database_and_selects_by_labels() {
        let patroni =
            "{kind: db_failover, mode: graceful, patroni: {selector: \"application=spilo,cluster-name=shop-db\"}}";
        assert!(problems(&kube("kind-drill", "", patroni)).is_empty());
        let found = problems(&kube("kind-drill", "", "{kind: db_failover, cluster: pg, patroni: {selector: a=b}}"));
        assert!(
            found.contains(
                "k.yaml:7:8: db_failover: `cluster` and `patroni` each name the database that fails: give one"
            ),
            "{found}"
        );
        let found = problems(&kube("kind-drill", "", "{kind: db_failover, patroni: {selector: spilo}}"));
        assert!(
            found.contains("k.yaml:7:8: db_failover: `patroni.selector` `spilo` is not a label selector"),
            "{found}"
        );
        let found = problems("name: s\nfault: {kind: db_failover, patroni: {selector: a=b, port: 8009}}\n");
        assert!(
            found.contains(
                "k.yaml:2:8: db_failover: `patroni` names a Patroni cluster's pods, and applies to kube only"
            ),
            "{found}"
        );
    }

    #[test]
    fn pod_and_workload_faults_are_kubes_and_stay_in_its_namespaces() {
        let found = problems("name: s\nfault: {kind: pod_kill, selector: app=web}\n");
        assert!(
            found.contains(
                "k.yaml:2:8: `pod_kill` acts on Kubernetes pods and workloads: it needs `environment: {kind: kube}`"
            ),
            "{found}"
        );
        let found = problems(&kube(
            "kind-drill",
            "namespaces: [shop, db]",
            "{kind: pod_delete, selector: app=pg, namespace: db, count: 1}",
        ));
        assert_eq!(found, "");
        let found = problems(&kube("kind-drill", "", "{kind: pod_delete, selector: \" \", namespace: db, count: 0}"));
        assert!(found.contains("pod_delete: `selector` must pick pods by label"), "{found}");
        assert!(found.contains("pod_delete: `count` must be at least 1"), "{found}");
        assert!(
            found.contains("pod_delete: namespace `db` is not one of the environment's namespaces (shop)"),
            "{found}"
        );
        let found = problems(&kube("kind-drill", "", "{kind: scale, workload: web, replicas: 0}"));
        assert!(
            found.contains("k.yaml:7:8: scale: `workload` must be `deployment/NAME` or `statefulset/NAME`, got `web`"),
            "{found}"
        );
        let s = parse(&kube("kind-drill", "", "{kind: scale, workload: sts/db, replicas: 0}"), Path::new("k.yaml"))
            .unwrap();
        assert_eq!(s.fault.describe(), "scale sts/db to 0 replicas");
        let found = problems("name: s\nenvironment: {kind: docker, containers: [{name: web, image: i}]}\nfault: {kind: network_blackhole, target: web, confirm: \"http://x/\"}\n");
        assert!(found.contains("network_blackhole: `direction`, `namespace` and `confirm` are kube's"), "{found}");
    }

    #[test]
    fn a_kube_step_is_one_action_naming_a_workload_a_command_and_one_pod_or_selector() {
        let steps = |steps: &str| {
            format!("name: s\nfault: {{kind: node_drain, node: node-1}}\nprocedure:\n  kind: steps\n  steps:\n{steps}")
        };
        let valid =
            steps("    - {name: restart, kube: {action: rollout_restart, workload: deployment/shop}, budget: 20s}\n");
        let s = parse(&valid, Path::new("k.yaml")).expect("sim plays a kube step by its budget");
        let crate::scenario::StepAction::Kube(action) = &s.steps[0].action else { panic!("a kube step") };
        assert_eq!(action.describe(), "kubectl rollout restart deployment/shop");
        assert_eq!(s.steps[0].action.kind(), crate::word::StepKind::Automated);
        assert!(s.steps[0].sim_duration.is_some());
        let found = problems(&steps(
            "    - {name: a, kube: {action: scale, workload: web, replicas: 1}, budget: 1s}
    - {name: b, kube: {action: exec, command: []}, budget: 1s}
    - {name: c, kube: {action: delete_pod, pod: p, selector: app=x}, budget: 1s}
    - {name: d, kube: {action: uncordon, node: n}, run: [ls], budget: 1s}
",
        ));
        for expected in [
            "k.yaml:6:7: step `a`: `workload` must be `deployment/NAME` or `statefulset/NAME`, got `web`",
            "k.yaml:7:7: step `b`: `command` must name a program",
            "k.yaml:7:7: step `b`: give exactly one of `pod` or `selector`",
            "k.yaml:8:7: step `c`: give exactly one of `pod` or `selector`",
            "k.yaml:9:7: step `d` needs exactly one of `run`, `start` or `kube` (automated) or `manual`",
        ] {
            assert!(found.contains(expected), "{expected} in {found}");
        }
    }

    #[test]
    fn a_kube_blackhole_is_confirmed_drops_and_picks_pods_by_labels() {
        let valid = "{kind: network_blackhole, target: app=shop, peer: app=s3, direction: egress, confirm: \"http://s3.shop:5000/\"}";
        assert_eq!(problems(&kube("kind-drill", "", valid)), "");
        let found = problems(&kube(
            "kind-drill",
            "",
            "{kind: network_blackhole, target: \"app in (shop)\", peer: app=s3, direction: ingress, mode: refuse, namespace: db}",
        ));
        for expected in [
            "k.yaml:7:8: network_blackhole: `target` must be `key=value` labels joined by `,`",
            "network_blackhole: a NetworkPolicy drops what it denies; `mode: refuse` is Docker's",
            "network_blackhole: an ingress partition cannot be confirmed",
            "network_blackhole: kube needs `confirm`, an in-cluster http:// URL",
            "network_blackhole: namespace `db` is not one of the environment's namespaces (shop)",
        ] {
            assert!(found.contains(expected), "{expected} in {found}");
        }
        let found =
            problems(&kube("kind-drill", "", "{kind: network_blackhole, target: app=shop, confirm: \"https://s3/\"}"));
        assert!(found.contains("`confirm` must be an http:// URL inside the cluster, got `https://s3/`"), "{found}");
    }
}

#[cfg(test)]
mod aws_tests {
    use std::path::Path;

    use crate::scenario::{parse, EnvironmentSpec};

    const ACCOUNT: &str = "name: a
environment: {kind: aws, region: eu-west-1, ENV}
fault: {kind: s3_block, bucket: shop-receipts}
";

    fn text(env: &str) -> String {
        ACCOUNT.replace("ENV", env)
    }

    #[test]
    fn an_aws_account_allows_the_firedrill_tag_by_default_and_lists_its_accounts() {
        let s = parse(&text("accounts: ['123456789012']"), Path::new("a.yaml")).expect("valid");
        let EnvironmentSpec::Aws(account) = &s.environment else { panic!("an aws scenario") };
        assert_eq!(account.allow_tag, "firedrill=allowed");
        assert_eq!(
            (account.region.as_deref(), account.accounts.as_slice()),
            (Some("eu-west-1"), &["123456789012".to_string()][..])
        );
    }

    #[test]
    fn an_rds_failover_names_one_instance_or_cluster_and_only_aws_takes_them() {
        let failover = |fault: &str| {
            let text = format!("name: a\nenvironment: {{kind: aws}}\nfault: {fault}\n");
            parse(&text, Path::new("a.yaml")).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert_eq!(failover("{kind: db_failover, db_cluster: shop-db, target: shop-db-2}"), "");
        assert_eq!(failover("{kind: db_failover, db_instance: shop-pg, failback: true}"), "");
        for (fault, expected) in [
            (
                "{kind: db_failover}",
                "a.yaml:3:8: db_failover: aws needs `db_instance` (a Multi-AZ instance) or `db_cluster`",
            ),
            (
                "{kind: db_failover, db_instance: a, db_cluster: b}",
                "`db_instance` and `db_cluster` each name the database that fails: give one",
            ),
            (
                "{kind: db_failover, db_instance: a, target: b}",
                "`target` is the reader a DB cluster's failover promotes",
            ),
            ("{kind: db_failover, db_instance: a, mode: graceful}", "`mode: graceful` does not apply"),
        ] {
            assert!(failover(fault).contains(expected), "{fault}: {expected} in {}", failover(fault));
        }
        let sim = parse("name: s\nfault: {kind: db_failover, db_cluster: shop-db}\n", Path::new("s.yaml")).unwrap_err();
        assert!(sim.to_string().contains("s.yaml:2:8: db_failover: `db_instance`, `db_cluster`, `target`, `failback` and `confirm_within` name RDS resources and their control plane, and apply to aws only"), "{sim}");
    }

    #[test]
    fn a_bad_tag_account_endpoint_or_region_is_named_at_the_environment() {
        let bad = "allow_tag: firedrill, accounts: ['12345'], endpoint_url: 'localhost:5000'";
        let found = parse(&text(bad).replace("eu-west-1", "EU West"), Path::new("a.yaml")).unwrap_err().to_string();
        for expected in [
            "a.yaml:2:1: environment.allow_tag: `firedrill` is not one `key=value` tag",
            "environment.accounts: `12345` is not a twelve-digit AWS account id",
            "environment.endpoint_url: `localhost:5000` is not an http:// or https:// URL",
            "environment.region: `EU West` is not a region name (eu-west-1)",
        ] {
            assert!(found.contains(expected), "{expected} in\n{found}");
        }
    }
}

#[cfg(test)]
mod disruption_tests {
    use std::path::Path;

    use super::super::{parse, Disruption, Scenario, ScenarioError};
    use crate::duration::Dur;

    /// A sim scenario with an availability probe and a ledger, so every target is measurable.
    fn scenario(fault: &str, rest: &str) -> Result<Scenario, ScenarioError> {
        let text = format!(
            "name: s\nfault: {fault}\nprobes:\n  - {{name: web, check: {{kind: http, url: \"http://x/orders\"}}}}\n  - {{name: ledger, check: {{kind: write_ledger, dsn: \"postgres://db/x\"}}}}\n{rest}"
        );
        parse(&text, Path::new("s.yaml"))
    }

    fn error(fault: &str, rest: &str) -> String {
        scenario(fault, rest).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn the_type_is_inferred_from_the_fault_and_a_declared_one_wins() {
        let of = |fault: &str| {
            let s = scenario(fault, "").unwrap();
            assert!(!s.disruption_declared);
            s.disruption
        };
        assert_eq!(of("{kind: db_failover}"), Disruption::Hardware);
        assert_eq!(of("{kind: node_drain, node: node-1}"), Disruption::Hardware);
        assert_eq!(of("{kind: s3_block}"), Disruption::Region);
        assert_eq!(of("{kind: traffic_surge, multiplier: 3, duration: 1m}"), Disruption::Software);
        let s = scenario("{kind: db_failover}", "disruption: az\n").unwrap();
        assert_eq!((s.disruption, s.disruption_declared), (Disruption::Az, true));
    }

    #[test]
    fn faults_of_other_environments_map_to_their_types() {
        let fault = |yaml: &str| -> crate::scenario::Fault { serde_saphyr::from_str(yaml).unwrap() };
        for (yaml, expected) in [
            ("{kind: pod_kill, selector: app=shop}", Disruption::Software),
            ("{kind: container_kill, target: web}", Disruption::Software),
            ("{kind: container_pause, target: web}", Disruption::Software),
            ("{kind: scale, workload: deployment/shop, replicas: 0}", Disruption::Software),
            ("{kind: network_blackhole, target: web}", Disruption::Hardware),
            ("{kind: db_failover, cluster: pg}", Disruption::Hardware),
            ("{kind: db_failover, db_instance: orders}", Disruption::Az),
            ("{kind: db_failover, db_cluster: orders, target: orders-2}", Disruption::Az),
            (
                "{kind: sequence, faults: [{fault: {kind: container_kill, target: web}}, {fault: {kind: s3_block}}]}",
                Disruption::Region,
            ),
        ] {
            assert_eq!(fault(yaml).disruption(), expected, "{yaml}");
        }
    }

    #[test]
    fn the_types_block_scores_the_drill_and_falls_back_to_the_plain_targets() {
        let targets =
            "targets:\n  rto: 5m\n  rpo: 1m\n  by_disruption:\n    az: {rto: 2m}\n    region: {rto: 1h, rpo: 15m}\n";
        let s = scenario("{kind: db_failover}", &format!("disruption: az\n{targets}")).unwrap();
        assert_eq!((s.rto, s.rpo), (Some(Dur::secs(120)), Some(Dur::secs(60))));
        // Hardware has no block: the plain targets; region's 1h, over the deadline, is not this drill's.
        let s = scenario("{kind: db_failover}", targets).unwrap();
        assert_eq!((s.rto, s.rpo), (Some(Dur::secs(300)), Some(Dur::secs(60))));
    }

    #[test]
    fn an_unknown_type_is_an_error_at_its_position() {
        let e = error("{kind: db_failover}", "disruption: zone\n");
        assert!(e.contains("s.yaml:6:13:") && e.contains("zone"), "{e}");
        let e = error("{kind: db_failover}", "targets:\n  by_disruption:\n    zone: {rto: 1m}\n");
        assert!(e.contains("s.yaml:8:5:") && e.contains("unknown field `zone`"), "{e}");
    }

    #[test]
    fn a_block_with_no_target_is_an_error_at_its_position() {
        let e = error("{kind: db_failover}", "targets:\n  by_disruption:\n    region: {}\n    az: {rto: 1m}\n");
        assert_eq!(e, "s.yaml:8:13: targets.by_disruption.region has no target: give it `rto`, `rpo` or both", "{e}");
    }

    #[test]
    fn the_scoring_blocks_targets_are_checked_like_the_plain_ones() {
        let e = error(
            "{kind: db_failover}",
            "disruption: az\ndeadline: 10m\ntargets: {by_disruption: {az: {rto: 20m}, region: {rto: 1h}}}\n",
        );
        assert_eq!(
            e,
            "s.yaml:8:37: target `by_disruption.az.rto` (20m) is longer than the deadline (10m): a recovery that meets it could not be observed; raise `deadline`"
        );
        let text = "name: s\nfault: {kind: s3_block}\ntargets: {by_disruption: {region: {rpo: 1m}}}\n";
        let e = parse(text, Path::new("s.yaml")).unwrap_err().to_string();
        assert!(e.contains("s.yaml:3:41: target `by_disruption.region.rpo` cannot be measured: the scenario has no `write_ledger` probe"), "{e}");
    }
}
