//! The reference stack's own parts: a web service ([`shop`]) and the load balancer in front of
//! it ([`lb`]), run inside the drill environment's containers as `firedrill stack shop` and
//! `firedrill stack lb`.
//!
//! A drill is only as good as what it breaks. A toy service that answers 200 whatever happens
//! hides the symptoms a real one shows, so these parts behave like production services in
//! miniature: bounded concurrency with load shedding, a deadline on every request, retries
//! with backoff inside it, a connection pool that finds the current database primary, a
//! graceful drain on SIGTERM, and a load balancer with active and passive health checks. Each
//! logs one line per state change (never per request), and those lines are evidence in drill
//! reports.
//!
//! They do not aim to be fast or complete: HTTP/1.1 only, bodies buffered, no TLS.

mod error;
pub mod lb;
mod serve;
pub mod shop;

pub use error::StackError;
