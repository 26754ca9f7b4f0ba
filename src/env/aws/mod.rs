//! The `aws` environment: an AWS account and region, through the AWS SDK, from the standard
//! credential chain (being built: issue 16). So far: the connection (`connect`) and the
//! account check a drill makes before it changes anything.

pub mod connect;
mod error;
pub mod events;
pub mod rds;
pub mod s3_block;

pub use error::AwsError;
