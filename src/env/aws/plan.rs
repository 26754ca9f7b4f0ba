//! What `firedrill plan` says of an aws scenario beyond the engine's plan: the account and
//! region, each resource a fault changes, what is checked before the drill changes anything,
//! and the IAM actions it needs. Planning asks AWS nothing: it needs no credentials.

use super::iam;
use crate::env::dry_run::each_fault;
use crate::scenario::{AwsAccount, Fault, Scenario};

/// The plan's lines for `scenario` in `account`, under an `aws:` head.
pub fn lines(scenario: &Scenario, account: &AwsAccount) -> Vec<String> {
    let accounts = match account.accounts.is_empty() {
        true => "any account the credentials reach (no `accounts:` given)".to_string(),
        false => format!("account {} only (asked of STS before anything)", account.accounts.join(" or ")),
    };
    let region = account.region.as_deref().unwrap_or("the credential chain's region");
    let mut lines = vec![format!("aws: {accounts}, region {region}")];
    if let Some(url) = &account.endpoint_url {
        lines.push(format!("  every call goes to {url} (an emulator), not AWS"));
    }
    let tag = &account.allow_tag;
    for fault in each_fault(&scenario.fault) {
        let (resource, checks): (String, Vec<String>) = match fault {
            Fault::DbFailover { db_instance: Some(id), failback, .. } => (
                format!("DB instance {id}: reboot with ForceFailover{}", if *failback { ", then fail back" } else { "" }),
                vec![
                    format!("tagged {tag}"),
                    "status available".into(),
                    "Multi-AZ (a standby to fail over to)".into(),
                    format!("no failover in the last {} (RDS would refuse: RDS-EVENT-0034)", recent()),
                ],
            ),
            Fault::DbFailover { db_cluster: Some(id), target, failback, .. } => (
                format!(
                    "DB cluster {id}: FailoverDBCluster to {}{}",
                    target.as_deref().unwrap_or("the first available reader"),
                    if *failback { ", then fail back to the first writer" } else { "" }
                ),
                vec![
                    format!("tagged {tag}"),
                    "status available".into(),
                    format!("{} available and not the writer", target.as_deref().unwrap_or("a reader")),
                    format!("no failover in the last {}", recent()),
                ],
            ),
            Fault::S3Block { bucket: Some(bucket), .. } => (
                format!("bucket {bucket}: a deny of s3:GetObject and s3:PutObject added to its policy, put back byte for byte"),
                vec![format!("tagged {tag}"), "its policy read and journalled before the change".into()],
            ),
            other => (other.describe(), vec!["not supported in aws".into()]),
        };
        lines.push(format!("  changes {resource}"));
        lines.push(format!("    checked before steady state: {}", checks.join("; ")));
        if let Fault::DbFailover { confirm_within, .. } = fault {
            let within = confirm_within.map_or(super::failover::CONFIRM_WITHIN, |d| d.0);
            lines.push(format!(
                "    t0 when the control plane confirms it (status, writer or zone, a failover event), within {}",
                crate::text::secs(within.as_secs_f64())
            ));
        }
    }
    lines.push("  IAM permissions (`firedrill aws policy` prints the policy):".into());
    lines.extend(iam::needed(account, scenario).iter().map(|p| format!("    {p}")));
    lines
}

/// The window in which a failover counts as recent, in words.
fn recent() -> String {
    format!("{} min", super::failover::RECENT.as_secs() / 60)
}
