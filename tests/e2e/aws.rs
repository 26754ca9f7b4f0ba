//! The aws environment against moto (no AWS account exists here): the SDK configuration from
//! the scenario and the account check a drill makes before it changes anything.

use firedrill::env::aws::{connect, AwsError};
use firedrill::scenario::AwsAccount;

use crate::common::Moto;

pub(crate) fn account(endpoint: &str, accounts: &[&str]) -> AwsAccount {
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

/// A bucket on moto holding one object, and an S3 client of the environment.
pub(crate) async fn bucket(endpoint: &str, name: &str) -> aws_sdk_s3::Client {
    let credentials = aws_sdk_sts::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    let env = account(endpoint, &[]);
    let config = connect::config(&env, connect::standard().credentials_provider(credentials)).await;
    let s3 = connect::s3(&config);
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    s3.create_bucket().bucket(name).create_bucket_configuration(location).send().await.unwrap();
    s3.put_object().bucket(name).key("receipt-1").body(b"paid".to_vec().into()).send().await.unwrap();
    s3
}

pub(crate) async fn readable(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    s3.get_object().bucket(bucket).key("receipt-1").send().await.is_ok()
}

#[tokio::test]
async fn an_s3_block_denies_reads_and_writes_and_its_revert_puts_the_policy_back_byte_for_byte() {
    use firedrill::env::aws::s3_block;
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };

    // A bucket without a policy: blocked, confirmed by a refused put, then no policy again.
    let s3 = bucket(&endpoint, "shop-plain").await;
    assert_eq!(s3_block::policy(&s3, "shop-plain").await.unwrap(), None);
    let blocking = s3_block::blocking_policy("shop-plain", None, "r1").unwrap();
    s3_block::block(&s3, "shop-plain", &blocking, "firedrill-confirm").await.unwrap();
    assert!(!readable(&s3, "shop-plain").await, "reads are denied");
    s3_block::restore(&s3, "shop-plain", None).await.unwrap();
    assert_eq!(s3_block::policy(&s3, "shop-plain").await.unwrap(), None);
    assert!(readable(&s3, "shop-plain").await);
    s3_block::restore(&s3, "shop-plain", None).await.expect("a second revert is harmless");

    // A bucket with the team's policy, written their way (spacing, key order): it is what S3
    // holds again after the revert, byte for byte.
    let s3 = bucket(&endpoint, "shop-receipts").await;
    let team = r#"{"Version": "2012-10-17",  "Statement": [{"Sid": "TeamRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shop-receipts/*"}]}"#;
    s3.put_bucket_policy().bucket("shop-receipts").policy(team).send().await.unwrap();
    let prior = s3_block::policy(&s3, "shop-receipts").await.unwrap().expect("the team's policy");
    assert_eq!(prior, team, "S3 keeps a policy's text as it was put");
    let blocking = s3_block::blocking_policy("shop-receipts", Some(&prior), "r2").unwrap();
    s3_block::block(&s3, "shop-receipts", &blocking, "firedrill-confirm").await.unwrap();
    let during = s3_block::policy(&s3, "shop-receipts").await.unwrap().unwrap();
    assert!(during.contains("TeamRead") && during.contains("firedrill-block-r2"), "{during}");
    assert!(!readable(&s3, "shop-receipts").await, "the deny wins over the team's allow");
    s3_block::restore(&s3, "shop-receipts", Some(&prior)).await.unwrap();
    assert_eq!(s3_block::policy(&s3, "shop-receipts").await.unwrap().as_deref(), Some(prior.as_str()));
    assert!(readable(&s3, "shop-receipts").await);
    s3_block::restore(&s3, "shop-receipts", Some(&prior)).await.expect("a second revert is harmless");
    assert_eq!(s3_block::policy(&s3, "shop-receipts").await.unwrap().as_deref(), Some(prior.as_str()));
}

/// An Aurora cluster on moto with `members` members (`<id>-1` the writer), tagged `tags`.
pub(crate) async fn aurora(endpoint: &str, id: &str, tags: &[(&str, &str)], members: u32) -> aws_sdk_rds::Client {
    let credentials = aws_sdk_sts::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    let config = connect::config(&account(endpoint, &[]), connect::standard().credentials_provider(credentials)).await;
    let rds = aws_sdk_rds::Client::new(&config);
    let tags: Vec<_> = tags.iter().map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build()).collect();
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("shop")
        .master_user_password("firedrill-pw")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    for n in 1..=members {
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-{n}"))
            .db_cluster_identifier(id)
            .db_instance_class("db.r6g.large")
            .engine("aurora-postgresql")
            .send()
            .await
            .unwrap();
    }
    rds
}

#[tokio::test]
async fn a_cluster_failover_promotes_the_reader_firedrill_chose_after_a_preflight_moto_would_skip() {
    use firedrill::env::aws::rds;
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let client = aurora(&endpoint, "shop-db", &[("firedrill", "allowed")], 2).await;
    let (state, statuses) = rds::cluster(&client, "shop-db").await.unwrap();
    assert_eq!((state.status.as_str(), state.writer()), ("available", Some("shop-db-1")));
    let target = rds::preflight("shop-db", &state, &statuses, "firedrill=allowed", None).unwrap();
    assert_eq!(target, "shop-db-2");
    let refused = rds::preflight("shop-db", &state, &statuses, "firedrill=allowed", Some("shop-db-1")).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "DB cluster shop-db has no available reader to promote (shop-db-1 is the writer already)"
    );
    rds::fail_over(&client, "shop-db", &target).await.unwrap();
    let (after, _) = rds::cluster(&client, "shop-db").await.unwrap();
    assert_eq!(after.writer(), Some("shop-db-2"), "moto flips the writer at once");

    // What moto accepts and firedrill must not: an untagged cluster, a stopped one.
    let untagged = aurora(&endpoint, "team-db", &[("owner", "team")], 2).await;
    let (state, statuses) = rds::cluster(&untagged, "team-db").await.unwrap();
    let refused = rds::preflight("team-db", &state, &statuses, "firedrill=allowed", None).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "DB cluster team-db does not carry the tag firedrill=allowed: firedrill changes only what is tagged so"
    );
    client.stop_db_cluster().db_cluster_identifier("shop-db").send().await.unwrap();
    let (state, statuses) = rds::cluster(&client, "shop-db").await.unwrap();
    let refused = rds::preflight("shop-db", &state, &statuses, "firedrill=allowed", None).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "DB cluster shop-db is stopped, not available: a failover now would measure nothing"
    );
}

/// A PostgreSQL instance on moto, Multi-AZ or not, tagged `firedrill=allowed`.
pub(crate) async fn instance(client: &aws_sdk_rds::Client, id: &str, multi_az: bool) {
    let tag = aws_sdk_rds::types::Tag::builder().key("firedrill").value("allowed").build();
    client
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .multi_az(multi_az)
        .master_username("shop")
        .master_user_password("firedrill-pw")
        .allocated_storage(20)
        .tags(tag)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_instance_failover_needs_the_tag_and_a_standby_which_moto_would_not_ask() {
    use firedrill::env::aws::rds;
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let credentials = aws_sdk_sts::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    let config = connect::config(&account(&endpoint, &[]), connect::standard().credentials_provider(credentials)).await;
    let client = aws_sdk_rds::Client::new(&config);
    instance(&client, "shop-pg", true).await;
    instance(&client, "single-pg", false).await;
    let state = rds::instance(&client, "shop-pg").await.unwrap();
    assert!(state.multi_az && state.status == "available", "{state:?}");
    rds::preflight_instance("shop-pg", &state, "firedrill=allowed").unwrap();
    let refused = rds::preflight_instance("shop-pg", &state, "team=drills").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "DB instance shop-pg does not carry the tag team=drills: firedrill changes only what is tagged so"
    );
    let single = rds::instance(&client, "single-pg").await.unwrap();
    let refused = rds::preflight_instance("single-pg", &single, "firedrill=allowed").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "DB instance single-pg is not Multi-AZ: it has no standby to fail over to (RDS would only reboot it)"
    );
    // moto accepts the request and changes nothing (no AZ swap, no event): what the control
    // plane then says is what firedrill must report, "not confirmed" here.
    rds::force_failover(&client, "shop-pg").await.unwrap();
    let after = rds::instance(&client, "shop-pg").await.unwrap();
    assert_eq!((after.status.as_str(), &after.zone), ("available", &state.zone));
}
