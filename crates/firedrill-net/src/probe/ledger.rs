//! The write ledger on PostgreSQL: numbered records written by the engine at the probe's
//! interval, each acknowledged or not, and read back after recovery from whichever server the
//! connection string now finds (a multi-host string with `target_session_attrs=read-write`
//! finds the current primary). Lost = acknowledged but missing.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use tokio_postgres::Client;

use super::postgres::{connect, DbError};

/// One drill's ledger in one table. Records carry the drill's id, so drills can share a table.
/// The connection string is given with each call because the servers' addresses may change
/// during a drill.
pub struct Ledger {
    table: String,
    drill: String,
    /// The connection of the last successful write and the string it was opened with, reused
    /// as a client's pool would. A write takes it out, so a write that hangs and is dropped
    /// takes its connection with it.
    client: RefCell<Option<(String, Client)>>,
    /// The connection string of the last write or read, for [`Ledger::remove`].
    last_dsn: RefCell<Option<String>>,
    /// Whether this ledger created its table, which it then removes once empty.
    created_table: Cell<bool>,
}

impl Ledger {
    /// A ledger writing `drill`'s records into `table` (a plain SQL name, checked on load).
    pub fn new(table: &str, drill: &str) -> Self {
        Ledger {
            table: table.into(),
            drill: drill.into(),
            client: RefCell::new(None),
            last_dsn: RefCell::new(None),
            created_table: Cell::new(false),
        }
    }

    /// Writes record `seq`; `Ok` once the server committed it.
    pub async fn write(&self, dsn: &str, seq: u64) -> Result<(), DbError> {
        *self.last_dsn.borrow_mut() = Some(dsn.to_string());
        let taken = self.client.borrow_mut().take().filter(|(d, _)| d == dsn);
        let client = match taken {
            Some((_, c)) => c,
            None => self.open(dsn).await?,
        };
        let insert = format!("INSERT INTO {} (drill, seq) VALUES ($1, $2)", self.table);
        client.execute(&insert, &[&self.drill, &(seq as i64)]).await.map_err(PgError)?;
        *self.client.borrow_mut() = Some((dsn.to_string(), client));
        Ok(())
    }

    async fn open(&self, dsn: &str) -> Result<Client, DbError> {
        let client = connect(dsn).await?;
        let exists = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.table]).await.map_err(PgError)?;
        let existed: bool = exists.get(0);
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} (drill text NOT NULL, seq bigint NOT NULL, \
             written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (drill, seq))",
            self.table
        );
        client.batch_execute(&create).await.map_err(PgError)?;
        if !existed {
            self.created_table.set(true);
        }
        Ok(client)
    }

    /// The `acked` records the server no longer has.
    pub async fn missing(&self, dsn: &str, acked: &[u64]) -> Result<Vec<u64>, DbError> {
        *self.last_dsn.borrow_mut() = Some(dsn.to_string());
        self.client.borrow_mut().take();
        let client = connect(dsn).await?;
        let select = format!("SELECT seq FROM {} WHERE drill = $1", self.table);
        let rows = client.query(&select, &[&self.drill]).await.map_err(PgError)?;
        let found: HashSet<u64> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
        Ok(acked.iter().copied().filter(|seq| !found.contains(seq)).collect())
    }

    /// Removes what the ledger left in the team's database, once the drill is over: its
    /// records, and its table when the ledger created it and no other drill's records remain.
    /// A ledger that never wrote left nothing.
    pub async fn remove(&self) -> Result<(), DbError> {
        self.client.borrow_mut().take();
        let Some(dsn) = self.last_dsn.borrow().clone() else { return Ok(()) };
        let client = connect(&dsn).await?;
        let delete = format!("DELETE FROM {} WHERE drill = $1", self.table);
        client.execute(&delete, &[&self.drill]).await.map_err(PgError)?;
        if self.created_table.get() {
            let drop = format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {table}) THEN DROP TABLE {table}; END IF; END $$",
                table = self.table
            );
            client.batch_execute(&drop).await.map_err(PgError)?;
        }
        Ok(())
    }
}

/// A PostgreSQL error on one line. A server's refusal reads as the server put it
/// (`ERROR: relation "x" does not exist`), without the DETAIL and HINT lines that would break
/// a one-line sample, and has no further source (the server's message is the whole story);
/// any other error is the client's, whose causes follow as its sources.
#[derive(Debug)]
pub struct PgError(pub tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
            None => self.0.fmt(f),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_db_error() {
            Some(_) => None,
            None => std::error::Error::source(&self.0),
        }
    }
}
