//! The `dns` probe: a name resolved at every sample, its answer (the CNAME chain, then the
//! addresses) kept whenever it changes. A managed database's failover moves its DNS name (an
//! RDS endpoint's CNAME goes from the old primary's host to the new one's): when the name
//! moved, and when clients could have followed, is part of the recovery's story.
//!
//! [`DnsWatch`] is one probe's resolver and what it has seen; the environment keeps it across
//! samples through [`super::held::HeldProbes`].

use std::cell::Cell;
use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tokio::time::Instant;

use firedrill_core::sample::Sample;

use super::held::Log;

/// Why a `dns` probe has no resolver.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// This machine's resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("failed to read this machine's DNS configuration")]
    SystemConfig(#[source] NetError),
    /// The resolver could not be made from its configuration.
    #[error("failed to make the DNS resolver")]
    Resolver(#[source] NetError),
}

/// One answer of the name, as a sample saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When the answer came.
    pub at: Instant,
    /// The same moment on the wall clock, for the evidence.
    pub wall: jiff::Timestamp,
    /// The answer in words: `name → cname → address, address`, or why it did not resolve.
    pub answer: String,
}

/// A `dns` probe's resolver and the answers it has seen change.
pub struct DnsWatch {
    resolver: TokioResolver,
    name: String,
    /// The first answer, then every change, in order (a name that flaps at every sample for
    /// an hour keeps its first and last answers).
    seen: Log<Seen>,
    /// The start of the latest sample whose answer was noted: a slow answer that arrives after
    /// a later sample's is older news, and is not a change.
    noted_from: Cell<Option<Instant>>,
}

impl DnsWatch {
    /// A watch of `name`, asking `server` or this machine's resolvers. Nothing is cached
    /// between samples: each one asks the server again, as a client whose cached answer
    /// expired would.
    pub fn new(name: &str, server: Option<SocketAddr>) -> Result<Self, DnsError> {
        let mut builder = match server {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut ns.connections {
                    connection.port = server.port();
                }
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio().map_err(DnsError::SystemConfig)?,
        };
        let options = builder.options_mut();
        options.preserve_intermediates = true;
        // One try per sample: the probe's interval is the retry, and its timeout the bound.
        options.attempts = 1;
        let resolver = builder.build().map_err(DnsError::Resolver)?;
        Ok(DnsWatch { resolver, name: name.to_string(), seen: Log::default(), noted_from: Cell::new(None) })
    }

    /// The name watched.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resolves the name: healthy when it resolves, to an answer containing `expect` when
    /// given. A changed answer is kept ([`DnsWatch::seen`]).
    pub async fn sample(&self, expect: Option<&str>) -> Sample {
        let started = Instant::now();
        self.resolver.clear_cache();
        let resolved =
            self.resolver.lookup_ip(self.name.as_str()).await.map(|found| answer(found.as_lookup().answers()));
        let text = match &resolved {
            Ok(answer) => answer.clone(),
            Err(e) => format!("does not resolve: {}", firedrill_core::text::error_chain(e)),
        };
        self.note(started, text);
        match resolved {
            Err(e) => Sample::fail(format!("{}: {}", self.name, firedrill_core::text::error_chain(&e))),
            Ok(answer) => match expect {
                Some(expect) if !answer.contains(expect) => Sample::fail(format!("{answer}: lacks `{expect}`")),
                _ => Sample::ok(),
            },
        }
    }

    /// Keeps `answer` when it differs from the last one kept.
    fn note(&self, started: Instant, answer: String) {
        if self.noted_from.get().is_some_and(|from| from > started) {
            return;
        }
        self.noted_from.set(Some(started));
        if !self.seen.last(|last| last.is_some_and(|last| last.answer == answer)) {
            self.seen.push(Seen { at: Instant::now(), wall: jiff::Timestamp::now(), answer });
        }
    }

    /// The first answer, then each change, in order; and whether older changes were dropped.
    pub fn seen(&self) -> (Vec<Seen>, bool) {
        self.seen.entries()
    }
}

/// An answer in words: the CNAME chain from the name asked, then the addresses, sorted (a
/// server that rotates its records has not changed its answer).
fn answer(records: &[hickory_resolver::proto::rr::Record]) -> String {
    let mut chain = Vec::new();
    let mut addresses = Vec::new();
    for record in records {
        match &record.data {
            RData::CNAME(target) => {
                if chain.is_empty() {
                    chain.push(bare(&record.name.to_string()));
                }
                chain.push(bare(&target.0.to_string()));
            }
            RData::A(a) => addresses.push(a.0.to_string()),
            RData::AAAA(aaaa) => addresses.push(aaaa.0.to_string()),
            _ => {}
        }
    }
    addresses.sort();
    addresses.dedup();
    if chain.is_empty() {
        if let Some(first) = records.first() {
            chain.push(bare(&first.name.to_string()));
        }
    }
    chain.push(addresses.join(", "));
    chain.join(" → ")
}

/// A name without the root's final dot.
fn bare(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_string()
}
