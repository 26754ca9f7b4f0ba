//! `db_failover` on an Aurora or Multi-AZ DB cluster: what the control plane says before the
//! failover (preflight: the allow-tag, the cluster available, a reader to promote that is
//! available and not the writer), and the failover itself (`FailoverDBCluster`, with the
//! reader firedrill chose, which AWS FIS cannot choose). The writer is the member with
//! `IsClusterWriter`.

use aws_sdk_rds::Client;

/// What a cluster looks like to the control plane.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterState {
    /// `available`, `failing-over`, `stopped`...
    pub status: String,
    /// Its members: instance id, whether it is the writer.
    pub members: Vec<(String, bool)>,
    /// Its tags, `key=value`.
    pub tags: Vec<String>,
    /// The address its clients connect to.
    pub endpoint: Option<String>,
}

impl ClusterState {
    /// The writer's instance id.
    pub fn writer(&self) -> Option<&str> {
        self.members.iter().find(|(_, writer)| *writer).map(|(id, _)| id.as_str())
    }
}

/// Why a cluster could not be failed over, or read.
#[derive(Debug, thiserror::Error)]
pub enum RdsError {
    /// An RDS call failed.
    #[error("failed to {action}")]
    Call {
        /// What was being done.
        action: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The resource does not carry the scenario's allow-tag.
    #[error("{resource} does not carry the tag {tag}: firedrill changes only what is tagged so")]
    NotAllowed {
        /// The resource, `DB cluster NAME` or `DB instance NAME`.
        resource: String,
        /// The tag asked for.
        tag: String,
    },
    /// The resource is not available.
    #[error("{resource} is {status}, not available: a failover now would measure nothing")]
    NotAvailable {
        /// The resource.
        resource: String,
        /// Its status.
        status: String,
    },
    /// The database failed over recently: RDS would refuse another failover (RDS-EVENT-0034).
    #[error("{resource} failed over recently ({event}): RDS would not fail it over again now, and the drill would time nothing; run it later")]
    RecentFailover {
        /// The database.
        resource: String,
        /// The failover event found.
        event: String,
    },
    /// RDS accepted the request and then said it did not fail over (RDS-EVENT-0034).
    #[error("RDS did not fail {resource} over: {event}")]
    FailoverRefused {
        /// The database.
        resource: String,
        /// RDS's event.
        event: String,
    },
    /// RDS said the failover failed.
    #[error("the failover of {resource} failed: {event}")]
    FailoverFailed {
        /// The database.
        resource: String,
        /// RDS's event.
        event: String,
    },
    /// Nothing the control plane said confirmed the failover in time.
    #[error("the failover of {resource} was not confirmed by the control plane within {within} (last read: {last}; no failover event): nothing was measured")]
    NotConfirmed {
        /// The database.
        resource: String,
        /// The bound.
        within: String,
        /// The state last read.
        last: String,
    },
    /// The instance has no standby.
    #[error("DB instance {instance} is not Multi-AZ: it has no standby to fail over to (RDS would only reboot it)")]
    SingleAz {
        /// The instance.
        instance: String,
    },
    /// No member can take over.
    #[error("DB cluster {cluster} has no available reader to promote ({why})")]
    NoReader {
        /// The cluster.
        cluster: String,
        /// Why none fits.
        why: String,
    },
}

/// The cluster `id` as the control plane describes it, with each member's own status.
pub async fn cluster(client: &Client, id: &str) -> Result<(ClusterState, Vec<(String, String)>), RdsError> {
    let described = client
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .map_err(|e| call(format!("describe DB cluster {id}"), e))?;
    let found =
        described.db_clusters().first().cloned().unwrap_or_else(|| aws_sdk_rds::types::DbCluster::builder().build());
    let members: Vec<(String, bool)> = found
        .db_cluster_members()
        .iter()
        .map(|m| (m.db_instance_identifier().unwrap_or_default().to_string(), m.is_cluster_writer().unwrap_or(false)))
        .collect();
    let tags = found
        .tag_list()
        .iter()
        .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    let mut statuses = Vec::new();
    for (member, _) in &members {
        let instance = client
            .describe_db_instances()
            .db_instance_identifier(member)
            .send()
            .await
            .map_err(|e| call(format!("describe DB instance {member}"), e))?;
        let status = instance.db_instances().first().and_then(|i| i.db_instance_status()).unwrap_or_default();
        statuses.push((member.clone(), status.to_string()));
    }
    Ok((
        ClusterState {
            status: found.status().unwrap_or_default().to_string(),
            members,
            tags,
            endpoint: found.endpoint().map(str::to_string),
        },
        statuses,
    ))
}

/// The reader to promote: `target` when given, else the first available reader; refused when
/// the cluster lacks `allow_tag`, is not available, or has no available reader.
pub fn preflight(
    id: &str,
    state: &ClusterState,
    statuses: &[(String, String)],
    allow_tag: &str,
    target: Option<&str>,
) -> Result<String, RdsError> {
    if !state.tags.iter().any(|t| t == allow_tag) {
        return Err(RdsError::NotAllowed { resource: format!("DB cluster {id}"), tag: allow_tag.into() });
    }
    if state.status != "available" {
        return Err(RdsError::NotAvailable { resource: format!("DB cluster {id}"), status: state.status.clone() });
    }
    let available = |member: &str| statuses.iter().any(|(m, s)| m == member && s == "available");
    let no_reader = |why: String| RdsError::NoReader { cluster: id.into(), why };
    match target {
        Some(target) => match state.members.iter().find(|(m, _)| m == target) {
            None => Err(no_reader(format!("{target} is not one of its members"))),
            Some((_, true)) => Err(no_reader(format!("{target} is the writer already"))),
            Some(_) if !available(target) => Err(no_reader(format!("{target} is not available"))),
            Some(_) => Ok(target.to_string()),
        },
        None => state
            .members
            .iter()
            .find(|(m, writer)| !writer && available(m))
            .map(|(m, _)| m.clone())
            .ok_or_else(|| no_reader("every member is the writer or unavailable".into())),
    }
}

/// Asks RDS to fail the cluster over to `target`: the request's acceptance, not the failover's
/// end, which the control plane and the probes say.
pub async fn fail_over(client: &Client, id: &str, target: &str) -> Result<(), RdsError> {
    client
        .failover_db_cluster()
        .db_cluster_identifier(id)
        .target_db_instance_identifier(target)
        .send()
        .await
        .map(drop)
        .map_err(|e| call(format!("fail DB cluster {id} over to {target}"), e))
}

pub(super) fn call<E: std::error::Error + Send + Sync + 'static>(action: String, e: E) -> RdsError {
    RdsError::Call { action, source: Box::new(e) }
}

/// What a DB instance looks like to the control plane.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceState {
    /// `available`, `rebooting`...
    pub status: String,
    /// Whether it has a standby in another Availability Zone.
    pub multi_az: bool,
    /// Its primary's Availability Zone.
    pub zone: Option<String>,
    /// Its standby's; after a failover the two swap.
    pub standby_zone: Option<String>,
    /// Its tags, `key=value`.
    pub tags: Vec<String>,
    /// The address its clients connect to.
    pub endpoint: Option<String>,
}

/// The DB instance `id` as the control plane describes it.
pub async fn instance(client: &Client, id: &str) -> Result<InstanceState, RdsError> {
    let described = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| call(format!("describe DB instance {id}"), e))?;
    let found =
        described.db_instances().first().cloned().unwrap_or_else(|| aws_sdk_rds::types::DbInstance::builder().build());
    Ok(InstanceState {
        status: found.db_instance_status().unwrap_or_default().to_string(),
        multi_az: found.multi_az().unwrap_or(false),
        zone: found.availability_zone().map(str::to_string),
        standby_zone: found.secondary_availability_zone().map(str::to_string),
        endpoint: found.endpoint().and_then(|e| e.address()).map(str::to_string),
        tags: found
            .tag_list()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.value().unwrap_or_default()))
            .collect(),
    })
}

/// Refuses an instance that lacks `allow_tag`, is not available, or has no standby to fail
/// over to (RDS itself would reboot a single-AZ instance without failing anything over).
pub fn preflight_instance(id: &str, state: &InstanceState, allow_tag: &str) -> Result<(), RdsError> {
    if !state.tags.iter().any(|t| t == allow_tag) {
        return Err(RdsError::NotAllowed { resource: format!("DB instance {id}"), tag: allow_tag.into() });
    }
    if state.status != "available" {
        return Err(RdsError::NotAvailable { resource: format!("DB instance {id}"), status: state.status.clone() });
    }
    if !state.multi_az {
        return Err(RdsError::SingleAz { instance: id.into() });
    }
    Ok(())
}

/// Asks RDS to reboot the instance with a forced failover to its standby: the request's
/// acceptance; the failover itself is what the control plane and the probes say next.
pub async fn force_failover(client: &Client, id: &str) -> Result<(), RdsError> {
    client
        .reboot_db_instance()
        .db_instance_identifier(id)
        .force_failover(true)
        .send()
        .await
        .map(drop)
        .map_err(|e| call(format!("reboot DB instance {id} with a forced failover"), e))
}
