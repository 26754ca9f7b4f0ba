//! The SDK configuration of a drill: the standard credential chain (environment, profiles,
//! SSO, instance and container roles) as the team's own tools read it, the scenario's region
//! and emulator endpoint, firedrill's HTTP client (on ring, as the rest of the process), and no
//! retries: a call that changes something is made once, and its answer goes to the timeline
//! (a retried failover request could fail over twice).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};

use super::AwsError;
use crate::scenario::AwsAccount;

/// The loader of the standard chain, before the scenario's settings.
pub fn standard() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
}

/// The configuration `loader` gives with the scenario's region, endpoint, HTTP client and no
/// retries. (Tests hand a loader with fixed credentials; a drill, [`standard`].)
pub async fn config(account: &AwsAccount, loader: ConfigLoader) -> SdkConfig {
    load(loader, account.region.as_deref(), account.endpoint_url.as_deref(), None).await
}

/// The configuration `loader` gives in `region` and at `endpoint_url` when given (else the
/// chain's), on firedrill's HTTP client trusting `ca` (else the platform's roots), with no
/// retries: every call, a probe's sample included, is one attempt.
pub async fn load(
    loader: ConfigLoader,
    region: Option<&str>,
    endpoint_url: Option<&str>,
    ca: Option<&crate::tls::CaPem>,
) -> SdkConfig {
    let mut loader = loader.http_client(crate::probe::aws_http_client(ca)).retry_config(RetryConfig::disabled());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The account the credentials are of (STS GetCallerIdentity), refused when the scenario lists
/// `accounts` and it is not one of them: asked before anything changes.
pub async fn account(config: &SdkConfig, account: &AwsAccount) -> Result<String, AwsError> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::CallerIdentity(Box::new(e)))?;
    let id = identity.account().unwrap_or_default().to_string();
    if !account.accounts.is_empty() && !account.accounts.contains(&id) {
        return Err(AwsError::AccountNotAllowed { account: id, allowed: account.accounts.join(", ") });
    }
    Ok(id)
}

/// An S3 client of `config`, addressing buckets path-style when an endpoint is configured
/// (the scenario's, `AWS_ENDPOINT_URL`, or `AWS_ENDPOINT_URL_S3`, which the S3 client reads
/// itself): an emulator has no per-bucket host names. An S3 endpoint set only in a profile's
/// `services` section is not seen here.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let emulator = config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(emulator).build();
    aws_sdk_s3::Client::from_conf(s3)
}
