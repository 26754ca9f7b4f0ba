//! The IAM permissions a drill of the aws environment needs, from the scenario alone: what
//! `firedrill aws policy` prints as a policy document and `firedrill plan` lists.
//!
//! The actions that change something (RebootDBInstance, FailoverDBCluster) are allowed only on
//! resources carrying the scenario's allow-tag (`aws:ResourceTag/KEY`), so that the policy
//! itself enforces what firedrill checks before it acts. The bucket actions name the bucket;
//! S3 has no tag condition on bucket policy actions, so the bucket's tag is checked by firedrill.

use serde_json::{json, Value};

use super::s3_block::check_key;
use crate::env::dry_run::each_fault;
use crate::scenario::{AwsAccount, Check, Fault, Scenario};

/// One permission: an action on a resource, and why the drill needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The IAM action (`rds:FailoverDBCluster`).
    pub action: &'static str,
    /// The resource's ARN (a pattern).
    pub resource: String,
    /// Whether the resource must carry the allow-tag.
    pub tagged: bool,
    /// Why, in words.
    pub why: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if self.tagged {
            f.write_str(" (tagged)")?;
        }
        write!(f, ": {}", self.why)
    }
}

/// The permissions a drill of `scenario` in `account` needs.
pub fn needed(account: &AwsAccount, scenario: &Scenario) -> Vec<Permission> {
    let region = account.region.as_deref().unwrap_or("*");
    let id = match account.accounts.as_slice() {
        [one] => one.as_str(),
        _ => "*",
    };
    let rds = |kind: &str, name: &str| format!("arn:aws:rds:{region}:{id}:{kind}:{name}");
    let mut needed = vec![Permission {
        action: "sts:GetCallerIdentity",
        resource: "*".into(),
        tagged: false,
        why: "which account the credentials are of",
    }];
    let mut add = |action, resource: String, tagged, why| {
        let p = Permission { action, resource, tagged, why };
        if !needed.contains(&p) {
            needed.push(p);
        }
    };
    for fault in each_fault(&scenario.fault) {
        match fault {
            Fault::DbFailover { db_instance: Some(name), .. } => {
                add("rds:DescribeDBInstances", rds("db", name), false, "the instance's status, zones and tags");
                add("rds:DescribeEvents", "*".into(), false, "RDS's failover events (no resource-level permission)");
                add("rds:RebootDBInstance", rds("db", name), true, "the forced failover (and the failback)");
            }
            Fault::DbFailover { db_cluster: Some(name), .. } => {
                add(
                    "rds:DescribeDBClusters",
                    rds("cluster", name),
                    false,
                    "the cluster's status, members, writer and tags",
                );
                add("rds:DescribeDBInstances", rds("db", "*"), false, "each member's status");
                add("rds:DescribeEvents", "*".into(), false, "RDS's failover events (no resource-level permission)");
                add("rds:FailoverDBCluster", rds("cluster", name), true, "the failover (and the failback)");
            }
            Fault::S3Block { bucket: Some(bucket), .. } => {
                let arn = format!("arn:aws:s3:::{bucket}");
                add("s3:GetBucketTagging", arn.clone(), false, "the bucket's allow-tag");
                add("s3:GetBucketPolicy", arn.clone(), false, "the policy saved before the block");
                add("s3:PutBucketPolicy", arn.clone(), false, "the block, and the policy put back");
                add("s3:DeleteBucketPolicy", arn.clone(), false, "the revert, when the bucket had no policy");
                let check = format!("{arn}/{}", check_key("*"));
                add("s3:PutObject", check, false, "the put that must be refused, confirming the block");
            }
            _ => {}
        }
    }
    for probe in &scenario.probes {
        if let Check::S3 { bucket, .. } = &probe.check {
            let object = format!("arn:aws:s3:::{bucket}/{}", crate::probe::S3_PROBE_KEY);
            add("s3:PutObject", object.clone(), false, "the s3 probe's put");
            add("s3:GetObject", object.clone(), false, "the s3 probe's get");
            add("s3:DeleteObject", object, false, "the s3 probe's object removed after the drill");
        }
    }
    needed
}

/// The IAM policy document granting `permissions`: one statement per resource and tag
/// condition, its actions sorted.
pub fn policy_document(permissions: &[Permission], allow_tag: &str) -> String {
    let mut statements: Vec<(String, bool, Vec<&str>)> = Vec::new();
    for p in permissions {
        match statements.iter_mut().find(|(r, t, _)| *r == p.resource && *t == p.tagged) {
            Some((_, _, actions)) => actions.push(p.action),
            None => statements.push((p.resource.clone(), p.tagged, vec![p.action])),
        }
    }
    let (key, value) = allow_tag.split_once('=').unwrap_or((allow_tag, ""));
    let statement = |(resource, tagged, mut actions): (String, bool, Vec<&str>)| {
        actions.sort_unstable();
        let mut s = json!({ "Effect": "Allow", "Action": actions, "Resource": resource });
        if tagged {
            s["Condition"] = json!({ "StringEquals": { format!("aws:ResourceTag/{key}"): value } });
        }
        s
    };
    let document = json!({
        "Version": "2012-10-17",
        "Statement": statements.into_iter().map(statement).collect::<Vec<Value>>(),
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}
