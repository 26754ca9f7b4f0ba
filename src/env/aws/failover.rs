//! `db_failover` on AWS, as RDS's control plane tells it: the database's state (status,
//! writer or zone, endpoint address) and its failover events, read every second from just
//! before the request until the drill ends.
//!
//! The fault is in effect (`t0`) when the control plane confirms it: the status leaves
//! `available`, the writer or the zone changes, or a failover event appears. RDS can accept the
//! request and do nothing (RDS-EVENT-0034: a failover happened recently; an emulator), so a
//! failover nothing confirms within the bound stops the drill with "not confirmed by the
//! control plane" rather than timing a fault that may not have happened.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::types::SourceType;
use aws_sdk_rds::Client;

use super::events::FailoverEvent;
use super::rds::{self, RdsError};
use crate::env::Answered;

/// How long the control plane has to confirm a failover when the scenario does not say.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(120);

/// How often the control plane is asked while a failover is followed: RDS's describe calls
/// are cheap and rate-limited per account, and its states last seconds.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How far back a failover of the same database counts as recent: RDS refuses another one
/// "because a failover recently occurred" (RDS-EVENT-0034) without saying for how long, so
/// firedrill refuses one within this window before it asks.
pub const RECENT: Duration = Duration::from_secs(15 * 60);

/// The source named in the evidence and the timeline for what RDS said.
pub const RDS_EVIDENCE: &str = "RDS";

/// The database a drill fails over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// A Multi-AZ DB instance, failed over by a reboot with `ForceFailover`.
    Instance(String),
    /// An Aurora or Multi-AZ DB cluster, failed over to a reader.
    Cluster(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Instance(id) => write!(f, "DB instance {id}"),
            Database::Cluster(id) => write!(f, "DB cluster {id}"),
        }
    }
}

/// The control plane's view of the database at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbState {
    /// `available`, `rebooting`, `failing-over`, …
    pub status: String,
    /// A cluster's writer; `None` for an instance.
    pub writer: Option<String>,
    /// An instance's zone and its standby's (when RDS says); `None` for a cluster.
    pub zones: Option<(String, Option<String>)>,
    /// The address clients connect to.
    pub endpoint: Option<String>,
}

impl std::fmt::Display for DbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(writer) = &self.writer {
            write!(f, ", writer {writer}")?;
        }
        if let Some((zone, standby)) = &self.zones {
            write!(f, ", zone {zone}")?;
            if let Some(standby) = standby {
                write!(f, " (standby in {standby})")?;
            }
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, ", endpoint {endpoint}")?;
        }
        Ok(())
    }
}

impl DbState {
    /// What in `self` says that a failover began since `before`, if anything.
    fn confirms(&self, before: &DbState) -> Option<String> {
        if self.status != "available" && before.status == "available" {
            return Some(format!("status {}", self.status));
        }
        if self.writer != before.writer {
            return Some(format!("writer {}", self.writer.as_deref().unwrap_or("none")));
        }
        match (&self.zones, &before.zones) {
            (Some((now, _)), Some((was, _))) if now != was => Some(format!("zone {was} -> {now}")),
            _ => None,
        }
    }
}

/// The database's state now.
pub async fn state(client: &Client, db: &Database) -> Result<DbState, RdsError> {
    Ok(match db {
        Database::Instance(id) => {
            let i = rds::instance(client, id).await?;
            DbState {
                status: i.status,
                writer: None,
                zones: Some((i.zone.unwrap_or_default(), i.standby_zone)),
                endpoint: i.endpoint,
            }
        }
        Database::Cluster(id) => {
            let (c, _) = rds::cluster(client, id).await?;
            DbState { writer: c.writer().map(str::to_string), status: c.status, zones: None, endpoint: c.endpoint }
        }
    })
}

/// An RDS event of the database: when RDS says it happened, its words, and what it means for
/// a failover (`None`: it is about something else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdsEvent {
    /// RDS's time, as RFC 3339.
    pub date: String,
    /// RDS's words.
    pub message: String,
    /// Which step of a failover it is.
    pub failover: Option<FailoverEvent>,
}

impl std::fmt::Display for RdsEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} \"{}\"", self.date, self.message)?;
        if let Some(step) = self.failover {
            write!(f, ": {}", step.meaning())?;
        }
        Ok(())
    }
}

/// The database's events since `since` (an instance's own, or a cluster's and its members').
pub async fn events(client: &Client, db: &Database, since: jiff::Timestamp) -> Result<Vec<RdsEvent>, RdsError> {
    let (id, source) = match db {
        Database::Instance(id) => (id, SourceType::DbInstance),
        Database::Cluster(id) => (id, SourceType::DbCluster),
    };
    let start = aws_sdk_rds::primitives::DateTime::from_secs(since.as_second());
    let mut found = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .describe_events()
            .source_identifier(id)
            .source_type(source.clone())
            .start_time(start)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| rds::call(format!("describe the events of {db}"), e))?;
        for e in page.events() {
            let message = e.message().unwrap_or_default().to_string();
            let date = e
                .date()
                .and_then(|d| jiff::Timestamp::from_second(d.secs()).ok())
                .map(|t| t.to_string())
                .unwrap_or_default();
            found.push(RdsEvent { failover: FailoverEvent::of(&message), date, message });
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(found);
        }
    }
}

/// Refuses a failover of a database that failed over within [`RECENT`]: RDS would not do it
/// (RDS-EVENT-0034), and the drill would time nothing.
pub async fn refuse_if_recent(client: &Client, db: &Database) -> Result<(), RdsError> {
    let since = jiff::Timestamp::now() - RECENT;
    let recent = events(client, db, since).await?.into_iter().find(|e| {
        matches!(e.failover, Some(FailoverEvent::Started | FailoverEvent::Promoted | FailoverEvent::Completed))
    });
    match recent {
        Some(event) => Err(RdsError::RecentFailover { resource: db.to_string(), event: event.to_string() }),
        None => Ok(()),
    }
}

/// What one reading of the control plane found new: a changed state, or events not seen
/// before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The state changed to this.
    State(DbState),
    /// RDS recorded this event.
    Event(RdsEvent),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::State(s) => write!(f, "{s}"),
            Seen::Event(e) => write!(f, "event {e}"),
        }
    }
}

/// Readings of one database's state and events, each reporting what changed since the last.
pub struct Reader {
    client: Client,
    db: Database,
    since: jiff::Timestamp,
    last: DbState,
    events: HashSet<(String, String)>,
}

impl Reader {
    /// Reads from `before`, the state before the request, and the events from `since` on.
    pub fn new(client: Client, db: Database, before: DbState, since: jiff::Timestamp) -> Self {
        Reader { client, db, since, last: before, events: HashSet::new() }
    }

    /// The state last read.
    pub fn last(&self) -> &DbState {
        &self.last
    }

    /// Reads once: what changed.
    pub async fn read(&mut self) -> Result<Vec<Seen>, RdsError> {
        let mut seen = Vec::new();
        let now = state(&self.client, &self.db).await?;
        if now != self.last {
            seen.push(Seen::State(now.clone()));
            self.last = now;
        }
        for event in events(&self.client, &self.db, self.since).await? {
            if self.events.insert((event.date.clone(), event.message.clone())) {
                seen.push(Seen::Event(event));
            }
        }
        Ok(seen)
    }
}

/// Reads until the control plane confirms the failover of `db` that began from `before`:
/// what confirmed it. Every change read is passed to `said` as it is seen.
pub async fn confirm(
    reader: &mut Reader,
    within: Duration,
    every: Duration,
    said: &dyn Fn(&Seen),
) -> Result<String, RdsError> {
    let before = reader.last().clone();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for seen in reader.read().await? {
            said(&seen);
            match &seen {
                Seen::Event(e) => match e.failover {
                    Some(FailoverEvent::Refused) => {
                        return Err(RdsError::FailoverRefused { resource: reader.db.to_string(), event: e.to_string() })
                    }
                    Some(FailoverEvent::Failed) => {
                        return Err(RdsError::FailoverFailed { resource: reader.db.to_string(), event: e.to_string() })
                    }
                    Some(_) => return Ok(format!("event {e}")),
                    None => {}
                },
                Seen::State(s) => {
                    if let Some(what) = s.confirms(&before) {
                        return Ok(what);
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RdsError::NotConfirmed {
                resource: reader.db.to_string(),
                within: crate::text::secs(within.as_secs_f64()),
                last: reader.last().to_string(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads until the database is `available` again (a failback waits for it), within `within`.
pub async fn until_available(
    reader: &mut Reader,
    within: Duration,
    every: Duration,
    said: &dyn Fn(&Seen),
) -> Result<(), RdsError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for seen in reader.read().await? {
            said(&seen);
        }
        if reader.last().status == "available" {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RdsError::NotAvailable {
                resource: reader.db.to_string(),
                status: reader.last().status.clone(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// A [`Reader`] run in the background until dropped, each change a timeline event at the
/// time it was read; the drill's RDS timeline.
pub struct Follow {
    changes: Arc<Mutex<Vec<Answered>>>,
    task: tokio::task::JoinHandle<Reader>,
    stop: Arc<tokio::sync::Notify>,
}

impl Follow {
    /// Starts reading every `every`.
    pub fn start(mut reader: Reader, every: Duration) -> Follow {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let (kept, stopped) = (changes.clone(), stop.clone());
        let task = tokio::spawn(async move {
            // A failing read is said when it starts failing, not every second.
            let mut failing = None;
            loop {
                let read = reader.read().await;
                let texts: Vec<String> = match read {
                    Ok(seen) => {
                        failing = None;
                        seen.iter().map(|s| format!("{}: {s}", reader.db)).collect()
                    }
                    Err(e) => {
                        let said = crate::text::error_chain(&e);
                        let new = failing.as_ref() != Some(&said);
                        failing = Some(said.clone());
                        new.then_some(said).into_iter().collect()
                    }
                };
                let at = tokio::time::Instant::now();
                let answers = texts.into_iter().map(|text| Answered { at, source: RDS_EVIDENCE.into(), text });
                kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(answers);
                tokio::select! {
                    () = stopped.notified() => return reader,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        Follow { changes, task, stop }
    }

    /// The changes read since the last call.
    pub fn take_changes(&self) -> Vec<Answered> {
        std::mem::take(&mut self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Stops reading and gives the reader back (for a failback, which reads on its own).
    pub async fn stop(self) -> Option<Reader> {
        self.stop.notify_one();
        self.task.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(status: &str, zone: &str) -> DbState {
        DbState { status: status.into(), writer: None, zones: Some((zone.into(), Some("b".into()))), endpoint: None }
    }

    #[test]
    fn a_failover_is_confirmed_by_a_status_a_new_writer_or_a_new_zone_and_by_nothing_else() {
        let before = instance("available", "a");
        assert_eq!(instance("rebooting", "a").confirms(&before).as_deref(), Some("status rebooting"));
        assert_eq!(instance("available", "b").confirms(&before).as_deref(), Some("zone a -> b"));
        assert_eq!(instance("available", "a").confirms(&before), None);
        let endpoint_only = DbState { endpoint: Some("x".into()), ..instance("available", "a") };
        assert_eq!(endpoint_only.confirms(&before), None);
        let cluster = |writer: &str| DbState {
            status: "available".into(),
            writer: Some(writer.into()),
            zones: None,
            endpoint: None,
        };
        assert_eq!(cluster("c-2").confirms(&cluster("c-1")).as_deref(), Some("writer c-2"));
        // A database that was not available before is refused by the preflight; if it were
        // not, its status would confirm nothing.
        assert_eq!(instance("modifying", "a").confirms(&instance("modifying", "a")), None);
    }
}
