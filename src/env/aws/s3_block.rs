//! `s3_block` on AWS: a bucket policy statement that denies object reads and writes to
//! everyone, added to the bucket's own policy, which is saved first and put back exactly on
//! revert (or deleted, when the bucket had none).
//!
//! The statement denies `s3:GetObject` and `s3:PutObject` only, never the policy actions, so
//! firedrill can always read, put back or delete the policy: no exemption of its own principal
//! is needed (and none would be honoured by every emulator). The block is confirmed before
//! `t0` by a put that must now fail with 403 Access Denied: a block that does not hold (an
//! access point, a VPC endpoint policy that overrides nothing, an emulator) stops the drill
//! rather than measuring a fault that never happened.

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

/// The statement id firedrill's deny carries, with the run's id: what tells it from the team's.
pub fn statement_id(run: &str) -> String {
    format!("firedrill-block-{run}")
}

/// The key of the object whose refused put confirms a block: it is never written.
pub fn check_key(run: &str) -> String {
    format!("firedrill-block-check-{run}")
}

/// Why a bucket could not be blocked or unblocked.
#[derive(Debug, thiserror::Error)]
pub enum S3BlockError {
    /// An S3 call failed.
    #[error("failed to {action} on bucket {bucket}")]
    Call {
        /// What was being done.
        action: &'static str,
        /// The bucket.
        bucket: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The bucket's policy is not a JSON object with a `Statement` list.
    #[error("bucket {bucket}'s policy is not a policy document firedrill can add to: {why}")]
    Policy {
        /// The bucket.
        bucket: String,
        /// What is wrong.
        why: String,
    },
    /// After the policy was put, a put of an object still succeeded.
    #[error("bucket {bucket} still takes writes with firedrill's deny in its policy: the block does not hold, so nothing would be measured")]
    NotBlocked {
        /// The bucket.
        bucket: String,
    },
}

/// The bucket's policy now, exactly as S3 returns it; `None` when it has none.
pub async fn policy(client: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<String>, S3BlockError> {
    match client.get_bucket_policy().bucket(bucket).send().await {
        Ok(answer) => Ok(answer.policy().map(str::to_string)),
        Err(e) if e.as_service_error().and_then(|s| s.meta().code()) == Some("NoSuchBucketPolicy") => Ok(None),
        Err(e) => Err(call("read the policy", bucket, e)),
    }
}

/// `prior` (or an empty policy) with firedrill's deny of object reads and writes added.
pub fn blocking_policy(bucket: &str, prior: Option<&str>, run: &str) -> Result<String, S3BlockError> {
    let bad = |why: String| S3BlockError::Policy { bucket: bucket.into(), why };
    let mut document: Value = match prior {
        Some(text) => serde_json::from_str(text).map_err(|e| bad(e.to_string()))?,
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    let deny = json!({
        "Sid": statement_id(run),
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
    });
    match document.get_mut("Statement") {
        Some(Value::Array(statements)) => statements.push(deny),
        // A policy may hold one statement as an object.
        Some(one @ Value::Object(_)) => *one = json!([one.take(), deny]),
        _ => return Err(bad("it has no `Statement`".into())),
    }
    Ok(document.to_string())
}

/// Puts the blocking policy and confirms it holds: a put of `probe_key` must fail with 403.
pub async fn block(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    blocking: &str,
    probe_key: &str,
) -> Result<(), S3BlockError> {
    client
        .put_bucket_policy()
        .bucket(bucket)
        .policy(blocking)
        .send()
        .await
        .map_err(|e| call("put the blocking policy", bucket, e))?;
    let put =
        client.put_object().bucket(bucket).key(probe_key).body(ByteStream::from_static(b"firedrill")).send().await;
    match put {
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(()),
        Ok(_) => Err(S3BlockError::NotBlocked { bucket: bucket.into() }),
        Err(e) => Err(call("confirm the block with a put", bucket, e)),
    }
}

/// Puts `prior` back exactly, or deletes the policy when the bucket had none. Harmless to
/// call again.
pub async fn restore(client: &aws_sdk_s3::Client, bucket: &str, prior: Option<&str>) -> Result<(), S3BlockError> {
    match prior {
        Some(text) => client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(text)
            .send()
            .await
            .map(drop)
            .map_err(|e| call("put the policy back", bucket, e)),
        None => client
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map(drop)
            .map_err(|e| call("delete the blocking policy", bucket, e)),
    }
}

/// The bucket's tags, `key=value`; none when it has no tag set.
pub async fn tags(client: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>, S3BlockError> {
    match client.get_bucket_tagging().bucket(bucket).send().await {
        Ok(answer) => Ok(answer.tag_set().iter().map(|t| format!("{}={}", t.key(), t.value())).collect()),
        Err(e) if e.as_service_error().and_then(|s| s.meta().code()) == Some("NoSuchTagSet") => Ok(Vec::new()),
        Err(e) => Err(call("read the tags", bucket, e)),
    }
}

/// `policy` without firedrill's statement of run `run`; `None` when nothing else is left in
/// it (the policy is then deleted). A policy without that statement is given back unchanged.
pub fn without_block(bucket: &str, policy: &str, run: &str) -> Result<Option<String>, S3BlockError> {
    let bad = |why: String| S3BlockError::Policy { bucket: bucket.into(), why };
    let mut document: Value = serde_json::from_str(policy).map_err(|e| bad(e.to_string()))?;
    let sid = statement_id(run);
    let ours = |s: &Value| s.get("Sid").and_then(Value::as_str) == Some(sid.as_str());
    let left = match document.get_mut("Statement") {
        Some(Value::Array(statements)) => {
            statements.retain(|s| !ours(s));
            statements.len()
        }
        Some(one @ Value::Object(_)) if ours(one) => 0,
        Some(_) => 1,
        None => return Err(bad("it has no `Statement`".into())),
    };
    Ok((left > 0).then(|| document.to_string()))
}

/// Whether `policy` holds firedrill's statement of run `run`.
pub fn holds_block(policy: &str, run: &str) -> bool {
    let sid = statement_id(run);
    let Ok(document) = serde_json::from_str::<Value>(policy) else { return false };
    match document.get("Statement") {
        Some(Value::Array(statements)) => statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(&sid)),
        Some(one) => one.get("Sid").and_then(Value::as_str) == Some(&sid),
        None => false,
    }
}

/// A short fingerprint of a policy's exact text, for the evidence (`none` when there is none).
pub fn fingerprint(policy: Option<&str>) -> String {
    policy.map_or_else(|| "none".into(), |p| crate::text::sha256(p.as_bytes()))
}

/// Undoes a block without the drill that made it (`firedrill recover`): the prior policy put
/// back when the policy is still exactly firedrill's; only firedrill's statement removed when
/// someone changed the policy since; nothing when firedrill's statement is gone.
pub async fn recover(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prior: Option<&str>,
    blocking: &str,
    run: &str,
) -> Result<String, S3BlockError> {
    let now = policy(client, bucket).await?;
    match now.as_deref() {
        Some(now) if now == blocking => {
            restore(client, bucket, prior).await?;
            Ok(format!("bucket {bucket}'s policy put back as it was (sha256 {})", fingerprint(prior)))
        }
        Some(now) if holds_block(now, run) => {
            let kept = without_block(bucket, now, run)?;
            restore(client, bucket, kept.as_deref()).await?;
            Ok(format!("bucket {bucket}'s policy was changed since the block: only firedrill's statement was removed"))
        }
        _ => Ok(format!("nothing to do: bucket {bucket}'s policy no longer holds firedrill's statement")),
    }
}

fn call<E: std::error::Error + Send + Sync + 'static>(action: &'static str, bucket: &str, e: E) -> S3BlockError {
    S3BlockError::Call { action, bucket: bucket.into(), source: Box::new(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_is_added_to_the_teams_statements_one_or_many() {
        let many = r#"{"Version":"2012-10-17","Statement":[{"Sid":"team","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let merged: Value = serde_json::from_str(&blocking_policy("b", Some(many), "r1").unwrap()).unwrap();
        let sids: Vec<&str> =
            merged["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        assert_eq!(sids, ["team", "firedrill-block-r1"]);
        let one = r#"{"Version":"2012-10-17","Statement":{"Sid":"team","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let merged: Value = serde_json::from_str(&blocking_policy("b", Some(one), "r1").unwrap()).unwrap();
        assert_eq!(merged["Statement"].as_array().map(Vec::len), Some(2));
        let none: Value = serde_json::from_str(&blocking_policy("b", None, "r1").unwrap()).unwrap();
        assert_eq!(none["Statement"][0]["Action"], json!(["s3:GetObject", "s3:PutObject"]));
        assert_eq!(none["Statement"][0]["Resource"], "arn:aws:s3:::b/*");
        let bad = blocking_policy("b", Some("{\"Version\":\"2012-10-17\"}"), "r1").unwrap_err();
        let merged = blocking_policy("b", Some(many), "r1").unwrap();
        assert!(holds_block(&merged, "r1") && !holds_block(&merged, "r2") && !holds_block(many, "r1"));
        let kept: Value = serde_json::from_str(&without_block("b", &merged, "r1").unwrap().unwrap()).unwrap();
        assert_eq!(kept, serde_json::from_str::<Value>(many).unwrap());
        assert_eq!(without_block("b", &blocking_policy("b", None, "r1").unwrap(), "r1").unwrap(), None);
        assert_eq!(
            bad.to_string(),
            "bucket b's policy is not a policy document firedrill can add to: it has no `Statement`"
        );
    }
}
