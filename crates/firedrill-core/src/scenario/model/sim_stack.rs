//! The `sim` environment's stack: the simulated service and the distributions of its recovery
//! behaviours.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dist::{Delay, Dist};
use crate::duration::{Dur, Rate};

/// The simulated stack: app replicas on nodes behind a load balancer, a primary database with
/// an asynchronous replica, an object store, an autoscaler. Every recovery behaviour is a
/// distribution so repeated drills vary as real ones do.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SimStack {
    /// Worker nodes, named `node-1` … `node-N`.
    pub nodes: u32,
    /// App replicas, spread round-robin over the nodes.
    pub replicas: u32,
    /// Requests per second one replica serves before it sheds load.
    pub replica_capacity: Rate,
    /// Baseline request arrival rate at the load balancer.
    pub traffic: Rate,
    /// Time for the scheduler to place an evicted replica on another node.
    pub reschedule: Delay,
    /// Time from a replica's start to passing readiness.
    pub readiness: Delay,
    /// The horizontal autoscaler.
    pub autoscaler: Autoscaler,
    /// The primary database and its replica.
    pub database: Database,
    /// The object store the app depends on.
    pub object_store: ObjectStore,
    /// The app's endpoints and the dependencies each one needs.
    pub endpoints: Vec<Endpoint>,
}

impl Default for SimStack {
    fn default() -> Self {
        SimStack {
            nodes: 3,
            replicas: 6,
            replica_capacity: Rate(100.0),
            traffic: Rate(300.0),
            reschedule: Delay(Dist::Uniform { min: Dur::secs(2), max: Dur::secs(10) }),
            readiness: Delay(Dist::Uniform { min: Dur::secs(10), max: Dur::secs(30) }),
            autoscaler: Autoscaler::default(),
            database: Database::default(),
            object_store: ObjectStore::default(),
            endpoints: vec![
                Endpoint { path: "/health".into(), needs: vec![] },
                Endpoint { path: "/orders".into(), needs: vec![Dependency::Database] },
                Endpoint { path: "/objects".into(), needs: vec![Dependency::ObjectStore] },
            ],
        }
    }
}

/// The horizontal autoscaler of the simulated app.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Autoscaler {
    /// Whether it runs at all.
    pub enabled: bool,
    /// The most replicas it will run.
    pub max_replicas: u32,
    /// It scales out when load over capacity of ready replicas exceeds this fraction.
    pub target_utilization: f64,
    /// How often it evaluates (a Kubernetes HPA syncs every 15 s).
    pub period: Dur,
}

impl Default for Autoscaler {
    fn default() -> Self {
        Autoscaler { enabled: true, max_replicas: 12, target_utilization: 0.7, period: Dur::secs(15) }
    }
}

/// The simulated primary database with an asynchronous streaming replica.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// How far the replica is behind the primary: writes acknowledged within this time before
    /// the primary fails are lost by a failover.
    pub replication_lag: Delay,
    /// Time for automatic failover (a Patroni- or RDS-style promotion); absent means the
    /// replica is promoted only by a procedure step with effect `promote_replica`.
    pub auto_failover: Option<Delay>,
    /// Time for the app's connection pool to find the new primary once it is promoted.
    pub reconnect: Delay,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            replication_lag: Delay(Dist::Lognormal { median: Dur::millis(300), p95: Dur::secs(2) }),
            auto_failover: None,
            reconnect: Delay(Dist::Uniform { min: Dur::secs(1), max: Dur::secs(5) }),
        }
    }
}

/// The simulated object store dependency.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStore {
    /// The app's client retry backoff: how long after the store is reachable again the app's
    /// object requests succeed.
    pub retry_backoff: Delay,
}

impl Default for ObjectStore {
    fn default() -> Self {
        ObjectStore { retry_backoff: Delay(Dist::Uniform { min: Dur::secs(1), max: Dur::secs(8) }) }
    }
}

/// One endpoint of the simulated app.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The URL path, matched against HTTP probes' URLs.
    pub path: String,
    /// Dependencies a request to this path needs, besides a ready app replica.
    #[serde(default)]
    pub needs: Vec<Dependency>,
}

/// A dependency of the simulated app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// The primary database.
    Database,
    /// The object store.
    ObjectStore,
}
