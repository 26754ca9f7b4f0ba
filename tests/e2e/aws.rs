//! The aws environment against moto (no AWS account exists here): the SDK configuration from
//! the scenario and the account check a drill makes before it changes anything.

use firedrill::env::aws::{connect, AwsError};
use firedrill::scenario::AwsAccount;

use crate::common::Moto;

fn account(endpoint: &str, accounts: &[&str]) -> AwsAccount {
    AwsAccount {
        region: Some("eu-west-1".into()),
        endpoint_url: Some(endpoint.into()),
        allow_tag: "firedrill=allowed".into(),
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
    }
}

#[tokio::test]
async fn the_callers_account_is_asked_of_sts_and_one_the_scenario_does_not_list_is_refused() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let credentials = aws_sdk_sts::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    let listed = account(&endpoint, &["123456789012"]);
    let config = connect::config(&listed, connect::standard().credentials_provider(credentials.clone())).await;
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
    // moto answers with its one account.
    assert_eq!(connect::account(&config, &listed).await.unwrap(), "123456789012");
    assert_eq!(connect::account(&config, &account(&endpoint, &[])).await.unwrap(), "123456789012");
    let other = account(&endpoint, &["111111111111", "222222222222"]);
    let refused = connect::account(&config, &other).await.unwrap_err();
    assert!(matches!(refused, AwsError::AccountNotAllowed { .. }));
    assert_eq!(
        refused.to_string(),
        "the credentials are of account 123456789012, which the scenario's `accounts` (111111111111, 222222222222) does not list: nothing was changed"
    );
}
