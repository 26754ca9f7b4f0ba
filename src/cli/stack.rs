//! `firedrill stack`: runs a part of the reference stack, the target drills start in containers.

use clap::{Args, Subcommand};
use firedrill::duration::Dur;
use firedrill::score::EXIT_OK;
use firedrill::stack;

use super::{CliError, Output};

/// Run a part of the reference stack (the web service or its load balancer); drills start
/// these inside containers.
#[derive(Args)]
pub struct StackArgs {
    #[command(subcommand)]
    part: StackPart,
}

#[derive(Subcommand)]
enum StackPart {
    /// The web service: orders in PostgreSQL, receipts in S3. Ready (listening) once both
    /// answer; a bounded pool, load shedding, a deadline per request with retries inside it,
    /// and a drain on SIGTERM.
    ///
    /// Endpoints: GET /healthz, POST /orders, GET /catalog, PUT and GET /receipts/{key}.
    Shop {
        /// Where to listen.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// PostgreSQL connection string; with several hosts and
        /// `target_session_attrs=read-write`, each new connection finds the primary.
        #[arg(long)]
        db: String,
        /// S3 endpoint URL, e.g. `http://s3:5000`.
        #[arg(long)]
        s3: String,
        /// Bucket the receipts are stored in (created when missing).
        #[arg(long, default_value = "receipts")]
        bucket: String,
        /// Database connections.
        #[arg(long, default_value_t = 3)]
        pool: usize,
        /// Database time one GET /catalog costs; capacity is pool / query-cost reads a second.
        #[arg(long, default_value = "25ms")]
        query_cost: Dur,
        /// Requests in progress beyond which new ones are answered 503 at once.
        #[arg(long, default_value_t = 32)]
        max_inflight: usize,
        /// Each request's deadline, waiting for a connection and retries included.
        #[arg(long, default_value = "1s")]
        timeout: Dur,
        /// After SIGTERM, how long /healthz answers 503 while requests are still served.
        #[arg(long, default_value = "500ms")]
        drain_delay: Dur,
    },
    /// The load balancer: round robin over the healthy backends, active health checks and
    /// passive ones (a refused connection marks its backend down and the request goes to
    /// another).
    ///
    /// Endpoints of its own: GET /lb/status (JSON) and GET /lb/capacity?min=N (200 when at
    /// least N backends are healthy, else 503).
    Lb {
        /// Where to listen.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// A backend, HOST:PORT (repeat the flag); its name is resolved at every health
        /// check, so it may appear later.
        #[arg(long = "backend", required = true)]
        backends: Vec<String>,
        /// The path that answers 200 on a healthy backend.
        #[arg(long, default_value = "/healthz")]
        health_path: String,
        /// Time between two health checks of a backend.
        #[arg(long, default_value = "250ms")]
        interval: Dur,
        /// The longest a request to a backend may take (then 504).
        #[arg(long, default_value = "2s")]
        timeout: Dur,
    },
}

impl StackArgs {
    /// Serves until stopped (SIGTERM, Ctrl-C).
    pub fn exec(self, _out: &mut Output) -> Result<i32, CliError> {
        match self.part {
            StackPart::Shop { listen, db, s3, bucket, pool, query_cost, max_inflight, timeout, drain_delay } => {
                stack::shop::run(stack::shop::Config {
                    listen,
                    db,
                    s3,
                    bucket,
                    pool,
                    query_cost: query_cost.0,
                    max_inflight,
                    timeout: timeout.0,
                    drain_delay: drain_delay.0,
                })?
            }
            StackPart::Lb { listen, backends, health_path, interval, timeout } => stack::lb::run(stack::lb::Config {
                listen,
                backends,
                health_path,
                interval: interval.0,
                timeout: timeout.0,
            })?,
        }
        Ok(EXIT_OK)
    }
}
