//! The `s3` probe's client without an `endpoint`: AWS itself, reached as the team's own tools
//! reach it, through the AWS SDK's standard chain (credentials from the environment, profiles,
//! SSO, instance and container roles, session tokens included; the region and an
//! `AWS_ENDPOINT_URL` likewise). The client made for an `endpoint`
//! ([`crate::probe::s3_client`]) reads only two variables, so cannot use such credentials.

use aws_config::retry::RetryConfig;
use aws_config::{ConfigLoader, Region};

use crate::probe::S3Client;
use crate::tls::CaPem;

/// A client of `loader` ([`crate::env::aws::connect::standard`] in a drill; tests hand one with
/// fixed credentials), in `region` when given, else the chain's; on firedrill's HTTP client
/// (trusting only `ca` when given) and with no retries, as every probe: each sample is one
/// attempt. An endpoint from the chain (an emulator's) is addressed path-style, as emulators
/// have no per-bucket host names.
pub async fn standard_chain_client(loader: ConfigLoader, region: Option<&str>, ca: Option<&CaPem>) -> S3Client {
    let mut loader = loader.http_client(crate::probe::aws_http_client(ca)).retry_config(RetryConfig::disabled());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    let config = loader.load().await;
    let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(config.endpoint_url().is_some()).build();
    S3Client::from_conf(s3)
}
