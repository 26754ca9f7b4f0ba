//! The scenario's probes against containers: each check's strings expanded to the
//! containers' current addresses, then checked as from a user's machine; the write ledger's
//! connection string likewise, at every write.

use std::path::Path;
use std::rc::Rc;

use super::error::DockerError;
use super::Inner;
use crate::probe::{self, ledger::Ledger};
use crate::sample::Sample;
use crate::scenario::{Check, Probe};
use crate::text::error_chain;
use crate::tls::CaPem;

/// The region an `s3` probe with an `endpoint` signs for when it names none.
const DEFAULT_S3_REGION: &str = "us-east-1";

impl Inner {
    /// One sample of probe `probe`; a string that names no container fails it.
    pub(super) async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        match self.check_probe(probe, spec).await {
            Ok(sample) => sample,
            Err(e) => Sample::fail(error_chain(&e)),
        }
    }

    async fn check_probe(&self, probe: usize, spec: &Probe) -> Result<Sample, DockerError> {
        Ok(match &spec.check {
            Check::Http { url, method, expect_status, body_contains, max_latency, ca, .. } => {
                let url = self.expand(url)?;
                probe::http(probe::HttpCheck {
                    method: method.as_str(),
                    url: &url,
                    ca: ca.as_deref(),
                    expect: *expect_status,
                    body_contains: body_contains.as_deref(),
                    max_latency: *max_latency,
                })
                .await
            }
            Check::Tcp { address } => probe::tcp(&self.expand(address)?).await,
            Check::Sql { dsn, query, pool: false } => probe::sql(&self.expand(dsn)?, query).await,
            Check::Sql { dsn, query, pool: true } => self.held.sql(probe, &spec.name, &self.expand(dsn)?, query).await,
            Check::Dns { name, server, expect } => {
                self.held.dns(probe, &spec.name, &self.expand(name)?, server.as_deref(), expect.as_deref()).await
            }
            Check::Command { argv } => probe::command(&self.expand_all(argv)?).await,
            Check::S3 { endpoint, bucket, region, ca } => {
                let endpoint = endpoint.as_deref().map(|e| self.expand(e)).transpose()?;
                match self.s3_client(probe, endpoint.as_deref(), bucket, region.as_deref(), ca.as_deref()).await {
                    Ok(client) => probe::s3(&client, bucket).await,
                    Err(e) => Sample::fail(error_chain(&e)),
                }
            }
            Check::Slo { url, .. } => self.loads.slo_sample(probe, &spec.name, &spec.check, self.expand(url)?),
            Check::Prometheus { url, query, condition, ca } => {
                probe::prometheus(&self.expand(url)?, ca.as_deref(), query, *condition).await
            }
            Check::Alert { url, alert, labels, ca } => {
                probe::alert(&self.expand(url)?, ca.as_deref(), alert, labels).await
            }
            Check::WriteLedger { .. } => Sample::fail("a write ledger is written, not sampled"),
            // Refused by `check`.
            Check::Deployment { .. } | Check::Endpoints { .. } => {
                Sample::fail(format!("`{}` probes are kube's", spec.check.kind()))
            }
        })
    }

    /// The probe's S3 client, made again when its endpoint moved; the bucket is kept for the
    /// removal of the probe's object after the drill. Without an endpoint, the client is the
    /// AWS SDK's standard chain's (refused at load when firedrill is built without `aws`).
    async fn s3_client(
        &self,
        probe: usize,
        endpoint: Option<&str>,
        bucket: &str,
        region: Option<&str>,
        ca: Option<&Path>,
    ) -> Result<probe::S3Client, DockerError> {
        let made_for = endpoint.unwrap_or_default();
        if let Some((_, _, client)) = self.s3.borrow().get(&probe).filter(|(made, ..)| made == made_for) {
            return Ok(client.clone());
        }
        let ca = ca.map(CaPem::read).transpose()?;
        let client = match endpoint {
            Some(endpoint) => probe::s3_client(endpoint, region.unwrap_or(DEFAULT_S3_REGION), ca.as_ref()),
            #[cfg(feature = "aws")]
            None => {
                use crate::env::aws::connect;
                connect::s3(&connect::load(connect::standard(), region, None, ca.as_ref()).await)
            }
            #[cfg(not(feature = "aws"))]
            None => return Err(DockerError::S3StandardChainNotBuiltIn),
        };
        self.s3.borrow_mut().insert(probe, (made_for.to_string(), bucket.to_string(), client.clone()));
        Ok(client)
    }

    /// Removes what the probes left in the team's systems: the write ledgers' records (and a
    /// table a ledger created), the s3 probes' objects. Done before the containers go, while a
    /// database or object store the drill started is still there to answer.
    /// Each removal is bounded: a system that no longer answers cannot hold the teardown.
    pub(super) async fn remove_probe_leftovers(&self) -> Vec<DockerError> {
        const LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
        let mut errors = Vec::new();
        let ledgers: Vec<Rc<Ledger>> = self.ledgers.borrow().values().cloned().collect();
        for ledger in ledgers {
            match tokio::time::timeout(LIMIT, ledger.remove()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(DockerError::Ledger(e)),
                Err(_) => errors.push(DockerError::LeftoverTimedOut { what: "the write ledger's records".into() }),
            }
        }
        let buckets: Vec<(String, probe::S3Client)> =
            self.s3.borrow().values().map(|(_, bucket, client)| (bucket.clone(), client.clone())).collect();
        for (bucket, client) in buckets {
            match tokio::time::timeout(LIMIT, probe::s3_remove(&client, &bucket)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(DockerError::ProbeLeftover(e)),
                Err(_) => {
                    errors.push(DockerError::LeftoverTimedOut { what: format!("the s3 probe's object in {bucket}") })
                }
            }
        }
        errors
    }

    /// The probe's ledger and its connection string as of now.
    pub(super) fn ledger(&self, probe: usize, spec: &Probe) -> Result<(Rc<Ledger>, String), DockerError> {
        let Check::WriteLedger { table, dsn } = &spec.check else { return Err(DockerError::NotALedger) };
        let ledger =
            self.ledgers.borrow_mut().entry(probe).or_insert_with(|| Rc::new(Ledger::new(table, &self.run_id))).clone();
        Ok((ledger, self.expand(dsn)?))
    }
}
