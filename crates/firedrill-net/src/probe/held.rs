//! What probes keep between samples: a `dns` probe's resolver and the answers it saw change, a
//! pooled `sql` probe's connection. Every other check starts afresh at each sample.
//!
//! [`HeldProbes`] is kept by a live environment (one for the drill) and asked for the samples
//! of these checks (their strings as the environment reaches them now), for the changes to put in the timeline at their times
//! ([`HeldProbes::take_changes`]) and for the evidence ([`HeldProbes::evidence`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use tokio::time::Instant;

use firedrill_core::sample::{Evidence, Sample};
use firedrill_core::scenario::dns_server;
use firedrill_core::text::error_chain;

use super::dns::DnsWatch;
use super::pool::SqlPool;

/// Who answered, for a DNS answer's timeline event.
pub const DNS_SOURCE: &str = "DNS";

/// A change a held probe saw, to be put in the timeline at its time.
#[derive(Clone, Debug)]
pub struct Change {
    /// When it was seen.
    pub at: Instant,
    /// Who answered ([`DNS_SOURCE`]).
    pub source: String,
    /// The change in words.
    pub text: String,
}

/// One drill's probes that keep state between samples, by the probe's index.
#[derive(Default)]
pub struct HeldProbes {
    /// Each `dns` probe's watch, with the probe's name.
    dns: RefCell<BTreeMap<usize, (String, Rc<DnsWatch>)>>,
    /// When the last answer [`HeldProbes::take_changes`] handed out of each `dns` probe came.
    taken: RefCell<BTreeMap<usize, Instant>>,
    /// Each pooled `sql` probe's connection, with the probe's name.
    pools: RefCell<BTreeMap<usize, (String, Rc<SqlPool>)>>,
}

impl HeldProbes {
    /// One sample of the `dns` probe `probe` (index `index`): `name` resolved (by `server`,
    /// checked at load, or this machine's resolvers), containing `expect` when given. The
    /// probe's resolver is made at its first sample.
    pub async fn dns(
        &self,
        index: usize,
        probe: &str,
        name: &str,
        server: Option<&str>,
        expect: Option<&str>,
    ) -> Sample {
        let held = self.dns.borrow().get(&index).map(|(_, watch)| watch.clone());
        let watch = match held {
            Some(watch) => watch,
            None => match DnsWatch::new(name, server.and_then(dns_server)) {
                Ok(watch) => {
                    let watch = Rc::new(watch);
                    self.dns.borrow_mut().insert(index, (probe.to_string(), watch.clone()));
                    watch
                }
                Err(e) => return Sample::fail(error_chain(&e)),
            },
        };
        watch.sample(expect).await
    }

    /// One sample of the pooled `sql` probe `probe` (index `index`): `query` on its one
    /// connection, opened when it has none ([`SqlPool::sample`]).
    pub async fn sql(&self, index: usize, probe: &str, dsn: &str, query: &str) -> Sample {
        let pool = self.pools.borrow_mut().entry(index).or_insert_with(|| (probe.to_string(), Rc::default())).1.clone();
        pool.sample(dsn, query).await
    }

    /// The changes of the `dns` probes' answers not handed out before, each at its time: the
    /// first answer is the starting point, not a change.
    pub fn take_changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut taken = self.taken.borrow_mut();
        for (index, (probe, watch)) in self.dns.borrow().iter() {
            let (seen, _) = watch.seen();
            let after = taken.get(index).copied();
            for pair in seen.windows(2).filter(|pair| after.is_none_or(|after| pair[1].at > after)) {
                changes.push(Change {
                    at: pair[1].at,
                    source: DNS_SOURCE.into(),
                    text: format!("{}: {} (was {}) [probe `{probe}`]", watch.name(), pair[1].answer, pair[0].answer),
                });
            }
            if let Some(last) = seen.last() {
                taken.insert(*index, last.at);
            }
        }
        changes
    }

    /// The DNS timeline of each `dns` probe (its first answer and every change, with the wall
    /// clock's time) and the history of each pooled connection.
    pub fn evidence(&self) -> Vec<Evidence> {
        let mut evidence = Vec::new();
        for (probe, watch) in self.dns.borrow().values() {
            let (seen, truncated) = watch.seen();
            let lines: Vec<String> = seen.iter().map(|s| format!("{}  {}", s.wall, s.answer)).collect();
            evidence.push(Evidence {
                source: format!("DNS timeline of {} (probe `{probe}`)", watch.name()),
                text: lines.join("\n"),
                truncated,
            });
        }
        for (probe, pool) in self.pools.borrow().values() {
            let (history, truncated) = pool.history();
            let lines: Vec<String> = history.iter().map(|(at, what)| format!("{at}  {what}")).collect();
            evidence.push(Evidence {
                source: format!("pooled connection (probe `{probe}`)"),
                text: lines.join("\n"),
                truncated,
            });
        }
        evidence
    }
}

/// A log of what a held probe saw, bounded: past its limit the oldest entries but the first
/// are dropped (the first says where things started).
pub(crate) struct Log<T> {
    entries: RefCell<Vec<T>>,
    truncated: Cell<bool>,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log { entries: RefCell::default(), truncated: Cell::new(false) }
    }
}

impl<T: Clone> Log<T> {
    /// Entries kept per log.
    const LIMIT: usize = 1000;

    /// Adds `entry`, dropping the second oldest when full.
    pub(crate) fn push(&self, entry: T) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= Self::LIMIT {
            entries.remove(1);
            self.truncated.set(true);
        }
        entries.push(entry);
    }

    /// The last entry, through `f`.
    pub(crate) fn last<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        f(self.entries.borrow().last())
    }

    /// The entries kept, and whether some were dropped.
    pub(crate) fn entries(&self) -> (Vec<T>, bool) {
        (self.entries.borrow().clone(), self.truncated.get())
    }
}
