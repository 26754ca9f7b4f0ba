//! The pooled `sql` probe: one PostgreSQL connection kept across samples, as an application's
//! connection pool keeps it, and replaced only after a sample on it failed. After a failover a
//! new connection finds the new primary at once, while a pooled one first has to fail on the
//! old server (at once when the server closed it, only at the probe's timeout when packets to
//! it vanish): the two measure different RTOs, and the second is what an application sees.
//!
//! [`SqlPool`] is one probe's connection and its history; the environment keeps it across
//! samples through [`super::held::HeldProbes`].

use tokio_postgres::Client;

use firedrill_core::sample::Sample;
use firedrill_core::text::error_chain;

use super::held::Log;
use super::ledger::PgError;
use super::postgres::{connect, DbError};

/// A `sql` probe's one pooled connection.
#[derive(Default)]
pub struct SqlPool {
    /// The connection and the connection string it was opened with. A sample holds the lock
    /// for its whole query, so a second sample waits for the connection as a request waits
    /// for a pool of one; a sample takes the connection out, so one dropped at its timeout
    /// takes the connection with it.
    client: tokio::sync::Mutex<Option<(String, Client)>>,
    /// What happened to the connections, with when, for the evidence.
    history: Log<(jiff::Timestamp, String)>,
}

/// The connection a sample is using: dropped with the sample when the sample is dropped at
/// the probe's timeout, which the history then says.
struct Lent<'a> {
    pool: &'a SqlPool,
    client: Option<Client>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if self.client.is_some() {
            self.pool.note("connection dropped: a sample on it did not finish within the probe's timeout".into());
        }
    }
}

impl SqlPool {
    /// `query` on the pooled connection, opened first when there is none (the first sample,
    /// or the one after a failure) or when the connection string changed.
    pub async fn sample(&self, dsn: &str, query: &str) -> Sample {
        let mut slot = self.client.lock().await;
        let client = match slot.take() {
            Some((opened_with, client)) if opened_with == dsn => client,
            held => {
                if held.is_some() {
                    self.note("connection closed: the connection string changed".into());
                }
                match self.open(dsn).await {
                    Ok(client) => client,
                    Err(e) => {
                        let why = error_chain(&e);
                        self.note(format!("no connection: {why}"));
                        return Sample::fail(why);
                    }
                }
            }
        };
        let mut lent = Lent { pool: self, client: Some(client) };
        let result = lent.client.as_ref().expect("just lent").simple_query(query).await;
        let client = lent.client.take().expect("still lent");
        match result {
            Ok(_) => {
                *slot = Some((dsn.to_string(), client));
                Sample::ok()
            }
            Err(e) => {
                let why = error_chain(&DbError::from(PgError(e)));
                self.note(format!("connection dropped after a failed sample: {why}"));
                Sample::fail(why)
            }
        }
    }

    /// A new connection, its server process named in the history.
    async fn open(&self, dsn: &str) -> Result<Client, DbError> {
        let client = connect(dsn).await?;
        let pid = client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(PgError)?;
        let pid: i32 = pid.get(0);
        self.note(format!("connection opened (server process {pid})"));
        Ok(client)
    }

    /// Adds `what` to the history, unless it repeats the last line: an outage's failed
    /// connections say so once, when they start (and again after any change).
    fn note(&self, what: String) {
        if !self.history.last(|last| last.is_some_and(|(_, said)| *said == what)) {
            self.history.push((jiff::Timestamp::now(), what));
        }
    }

    /// What happened to the pooled connections, a line each with its time; and whether older
    /// lines were dropped.
    pub fn history(&self) -> (Vec<(jiff::Timestamp, String)>, bool) {
        self.history.entries()
    }
}
