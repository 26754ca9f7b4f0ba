//! The probes every live environment samples from this machine as the scenario writes them:
//! one piece of code for the checks that do not depend on where the drill runs, so that an
//! environment matches only what it reaches its own way (a Docker container's address, a
//! Service through a port-forward, a cluster's API) and hands the rest here.

use crate::env::load::Loads;
use crate::probe::{self, held::HeldProbes};
use crate::sample::Sample;
use crate::scenario::{Check, Probe};

/// One sample of probe `index` (`spec`) taken from this machine; `None` for a check the
/// environment must take itself (`sql` and `write_ledger`, whose connection string an
/// environment may rewrite; `s3`; an `http` probe from inside a cluster; `deployment` and
/// `endpoints`).
pub async fn sample(index: usize, spec: &Probe, loads: &Loads, held: &HeldProbes) -> Option<Sample> {
    Some(match &spec.check {
        Check::Http { url, method, expect_status, body_contains, max_latency, ca, in_cluster: false } => {
            probe::http(probe::HttpCheck {
                method: method.as_str(),
                url,
                ca: ca.as_deref(),
                expect: *expect_status,
                body_contains: body_contains.as_deref(),
                max_latency: *max_latency,
            })
            .await
        }
        Check::Slo { url, .. } => loads.slo_sample(index, &spec.name, &spec.check, url.clone()),
        Check::Tcp { address } => probe::tcp(address).await,
        Check::Dns { name, server, expect } => {
            held.dns(index, &spec.name, name, server.as_deref(), expect.as_deref()).await
        }
        Check::Command { argv } => probe::command(argv).await,
        Check::Prometheus { url, query, condition, ca } => {
            probe::prometheus(url, ca.as_deref(), query, *condition).await
        }
        Check::Alert { url, alert, labels, ca } => probe::alert(url, ca.as_deref(), alert, labels).await,
        Check::Http { in_cluster: true, .. }
        | Check::Sql { .. }
        | Check::WriteLedger { .. }
        | Check::S3 { .. }
        | Check::Deployment { .. }
        | Check::Endpoints { .. } => return None,
    })
}

/// What the held probes saw change, as timeline events.
pub fn held_changes(held: &HeldProbes) -> impl Iterator<Item = super::Answered> {
    held.take_changes().into_iter().map(|c| super::Answered { at: c.at, source: c.source, text: c.text })
}
