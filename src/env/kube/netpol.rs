//! `network_blackhole` in a cluster: a deny NetworkPolicy on the pods the target's labels
//! pick, named `firedrill-<run>-blackhole` and labelled `firedrill.run=<run>`, journalled
//! before it is created and deleted on revert (and by `firedrill recover`).
//!
//! NetworkPolicy is an allow-list, and policies add up: a policy that selects a pod isolates it
//! in its `policyTypes`, and the pod then takes only what some policy's rule allows.
//!
//! - Without a peer, the policy has no rules: nothing is allowed in the directions cut.
//! - With a peer (a partition), nothing can say "deny the peer", so the policy allows its
//!   complement: every pod of every other namespace (one peer with a `namespaceSelector` of
//!   `kubernetes.io/metadata.name NotIn [namespace]`), and each pod of the namespace that lacks
//!   one of the peer's labels (one peer per `key=value` term, a `podSelector` of `key NotIn
//!   [value]`: `NotIn` also matches pods without the key). What is not a pod (addresses
//!   outside the cluster, nodes) is cut too: an `ipBlock` that let it through would, under many
//!   CNIs, let the peer's pod addresses through as well.
//!
//! Either way another policy that already allows the pods some traffic keeps allowing it, and
//! a CNI may not enforce policies at all (it "fails open"): so the blackhole is **confirmed**
//! before `t0`. firedrill starts a probe pod (`firedrill-<run>-confirm`, labelled with the run)
//! under a copy of the policy, checks that the scenario's `confirm` URL answers from it, creates
//! both policies, and checks that it no longer does; a URL still answering after
//! [`CONFIRM_WITHIN`] means the CNI does not enforce NetworkPolicy, and the policy is deleted and
//! the drill stopped. The probe pod and its policy are removed once the check is made.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};

use super::access::pod_name;
use super::error::KubeError;
use super::{probe_pod, Inner};
use crate::env::RUN_LABEL;
use crate::scenario::{label_terms, BlastRadiusExceeded, Direction};
use crate::text::error_chain;

/// How long the confirm URL may still answer once the policies exist: CNIs apply a policy
/// within a second or two.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(10);
/// How often the probe pod's readiness and the confirm URL are asked again.
const POLL: Duration = Duration::from_millis(250);

/// The blackhole this drill made: its policy, and its journal entry.
#[derive(Debug)]
pub(super) struct Blackhole {
    entry: u64,
    namespace: String,
    name: String,
}

/// The `key=value` terms of a selector (refused at load time when it has others; a bug if
/// reached).
fn labels(selector: &str) -> Result<Vec<(&str, &str)>, KubeError> {
    label_terms(selector).ok_or_else(|| KubeError::NotLabels { selector: selector.into() })
}

/// A label selector of `key=value` terms, as `matchLabels`.
fn match_labels(terms: &[(&str, &str)]) -> LabelSelector {
    let labels = terms.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    LabelSelector { match_labels: Some(labels), match_expressions: None }
}

/// The peers that make up everything but the pods `peer` picks in `namespace`: every pod of
/// the other namespaces, and each pod of this one lacking one of the peer's labels.
fn all_but(peer: &[(&str, &str)], namespace: &str) -> Vec<NetworkPolicyPeer> {
    let not_in = |key: &str, value: &str| LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: "NotIn".into(),
            values: Some(vec![value.into()]),
        }]),
    };
    let other_namespaces = NetworkPolicyPeer {
        namespace_selector: Some(not_in("kubernetes.io/metadata.name", namespace)),
        ..Default::default()
    };
    let mut peers = vec![other_namespaces];
    peers
        .extend(peer.iter().map(|(k, v)| NetworkPolicyPeer { pod_selector: Some(not_in(k, v)), ..Default::default() }));
    peers
}

/// The deny policy `name` on the pods `selector` picks in `namespace`, labelled with `run`:
/// in the directions `direction` cuts, nothing allowed, or (a partition) everything but `peer`.
pub fn deny_policy(
    name: &str,
    namespace: &str,
    run: &str,
    selector: LabelSelector,
    direction: Direction,
    peer: Option<&[(&str, &str)]>,
) -> NetworkPolicy {
    let ingress = matches!(direction, Direction::Ingress | Direction::Both);
    let egress = matches!(direction, Direction::Egress | Direction::Both);
    let types = [(ingress, "Ingress"), (egress, "Egress")].into_iter().filter(|(cut, _)| *cut).map(|(_, t)| t.into());
    let allowed = peer.map(|p| all_but(p, namespace));
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(RUN_LABEL.to_string(), run.to_string())])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector),
            policy_types: Some(types.collect()),
            ingress: allowed
                .clone()
                .filter(|_| ingress)
                .map(|from| vec![NetworkPolicyIngressRule { from: Some(from), ports: None }]),
            egress: allowed.filter(|_| egress).map(|to| vec![NetworkPolicyEgressRule { to: Some(to), ports: None }]),
        }),
    }
}

/// Fetches `url` with `wget` from inside `pod`: `Ok` with what answered, `Err` with why it did
/// not (wget's exit code and words); the outer error is the exec failing.
pub async fn fetch(
    client: &Client,
    namespace: &str,
    pod: &str,
    url: &str,
) -> Result<Result<String, String>, KubeError> {
    let command = ["wget", "-q", "-T", "2", "-O-", url].map(String::from);
    let ran = super::exec::exec(client, namespace, pod, None, &command).await?;
    Ok(if ran.ok() { Ok(ran.stdout.trim().to_string()) } else { Err(ran.failure()) })
}

impl Inner {
    /// Creates a policy, journalled first; a failed create closes its entry.
    async fn create_policy(&self, policy: &NetworkPolicy) -> Result<u64, KubeError> {
        let namespace = policy.metadata.namespace.clone().unwrap_or_default();
        let name = policy.metadata.name.clone().unwrap_or_default();
        let entry = self.journal_created("NetworkPolicy", &namespace, &name)?;
        let created = Api::<NetworkPolicy>::namespaced(self.client()?, &namespace)
            .create(&PostParams::default(), policy)
            .await
            .map_err(KubeError::api(format!("create NetworkPolicy {namespace}/{name}")));
        if let Err(e) = created {
            self.answered(format!("create NetworkPolicy {namespace}/{name}: {}", error_chain(&e)));
            let _ = self.journal_done(entry, "not made: the call failed");
            return Err(e);
        }
        self.answered(format!("NetworkPolicy {namespace}/{name} created ({RUN_LABEL}={})", self.run_id));
        Ok(entry)
    }

    /// Cuts the pods `target` picks in `namespace` (absent: the scenario's) off, in
    /// `direction`, from everything or from `peer`, and confirms it from a probe pod with
    /// `confirm`; see the module docs. Refused before any change when no pod matches or they
    /// are more than `max_blast_radius`. Whatever fails, nothing of it is left but what the
    /// journal names.
    pub(super) async fn blackhole(
        &self,
        target: &str,
        peer: Option<&str>,
        direction: Direction,
        namespace: Option<&str>,
        confirm: &str,
    ) -> Result<Blackhole, KubeError> {
        let namespace = namespace.unwrap_or(&self.cluster.namespace).to_string();
        let target_terms = labels(target)?;
        let peer_terms = peer.map(labels).transpose()?;
        let client = self.client()?;
        let pods = super::pods::matching(&client, &namespace, target).await?;
        if pods.is_empty() {
            return Err(KubeError::NoPods { selector: target.into(), namespace });
        }
        if let Some(limit) = self.max_blast_radius {
            if let Some(refused) = BlastRadiusExceeded::check(&self.fault, pods.iter().map(pod_name).collect(), limit) {
                return Err(refused.into());
            }
        }
        let run = &self.run_id;
        let probe = format!("firedrill-{run}-confirm");
        // The probe pod's copy of the policy, then the pods' own: the copy exists whenever the
        // pods' does, so a check failing means what the pods see.
        let probe_selector =
            match_labels(&[(RUN_LABEL, run.as_str()), (probe_pod::ROLE_LABEL, probe_pod::Role::Confirm.as_str())]);
        let peer = peer_terms.as_deref();
        let policies = [
            deny_policy(&probe, &namespace, run, probe_selector, direction, peer),
            deny_policy(
                &format!("firedrill-{run}-blackhole"),
                &namespace,
                run,
                match_labels(&target_terms),
                direction,
                peer,
            ),
        ];
        let probe_entry = self.start_probe(&namespace, &probe, probe_pod::Role::Confirm).await?;
        let confirmed = self.confirm(&client, &namespace, &probe, confirm, &policies).await;
        let _ = self.remove(probe_entry, "Pod", &namespace, &probe, "the blackhole's check is made").await;
        confirmed
    }

    /// The part of [`Inner::blackhole`] made with the probe pod running: the URL answering,
    /// the policies made (the probe pod's copy, then the pods' own), and the URL failing.
    async fn confirm(
        &self,
        client: &Client,
        namespace: &str,
        probe: &str,
        url: &str,
        [probe_policy, policy]: &[NetworkPolicy; 2],
    ) -> Result<Blackhole, KubeError> {
        if let Err(why) = fetch(client, namespace, probe, url).await? {
            return Err(KubeError::ConfirmUnreachable { url: url.into(), why });
        }
        self.answered(format!("{url} answers from the probe pod {namespace}/{probe}"));
        let probe_entry = self.create_policy(probe_policy).await?;
        let name = policy.metadata.name.clone().unwrap_or_default();
        let made = self.create_policy(policy).await;
        let cut = match made {
            Ok(entry) => Blackhole { entry, namespace: namespace.into(), name },
            Err(e) => {
                let _ = self.remove(probe_entry, "NetworkPolicy", namespace, probe, "the blackhole failed").await;
                return Err(e);
            }
        };
        let until = tokio::time::Instant::now() + CONFIRM_WITHIN;
        let answered = loop {
            match fetch(client, namespace, probe, url).await {
                Ok(Err(why)) => {
                    self.answered(format!("{url} no longer answers from the probe pod: {why}: the blackhole holds"));
                    break None;
                }
                Ok(Ok(_)) if tokio::time::Instant::now() < until => tokio::time::sleep(POLL).await,
                Ok(Ok(answer)) => break Some(Ok(answer)),
                Err(e) => break Some(Err(e)),
            }
        };
        let _ = self.remove(probe_entry, "NetworkPolicy", namespace, probe, "the blackhole's check is made").await;
        let Some(answered) = answered else { return Ok(cut) };
        let by = "the blackhole could not be confirmed";
        let _ = self.remove(cut.entry, "NetworkPolicy", namespace, &cut.name, by).await;
        match answered {
            Ok(answer) => {
                self.answered(format!("{url} still answers from the probe pod after {CONFIRM_WITHIN:?}: {answer}"));
                Err(KubeError::CniFailsOpen { url: url.into(), within: CONFIRM_WITHIN })
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a blackhole's policy and closes its journal entry.
    pub(super) async fn unblackhole(&self, cut: &Blackhole, by: &str) -> Result<(), KubeError> {
        self.remove(cut.entry, "NetworkPolicy", &cut.namespace, &cut.name, by).await
    }
}
