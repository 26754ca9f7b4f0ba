//! What RDS's control plane says during a real failover, which moto cannot produce (its
//! forced failover changes nothing and it has no failover events): the SDK's own types served
//! in sequence by aws-smithy-mocks, read by the code the aws environment confirms and follows
//! a failover with. The sequences are those the RDS User Guide describes: the status goes
//! `available` → `rebooting` → `available` with the zones swapped, and the events 0013
//! (started), 0015 (standby promoted, DNS propagating) and 0049 (completed); or 0034 (not
//! attempted: a failover happened recently).

use std::time::Duration;

use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_events::DescribeEventsOutput;
use aws_sdk_rds::primitives::DateTime;
use aws_sdk_rds::types::{DbInstance, Endpoint, Event, Tag};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use firedrill::env::aws::events::FailoverEvent;
use firedrill::env::aws::failover::{self, Database, Reader, Seen};
use firedrill::env::aws::rds::RdsError;

const EVERY: Duration = Duration::from_millis(20);

/// An RDS client whose answers are `rules`' sequences, one rule per operation.
fn rds(rules: &[&Rule]) -> aws_sdk_rds::Client {
    let interceptor =
        rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r));
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
        .region(aws_sdk_rds::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_rds::config::Credentials::new("mock", "mock", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    aws_sdk_rds::Client::from_conf(config)
}

/// The Multi-AZ instance `shop-pg` as DescribeDBInstances answers, in `status`, its primary in
/// `zone` and its standby in the other.
fn instance(status: &'static str, zone: &'static str) -> impl Fn() -> DescribeDbInstancesOutput + Send + Sync {
    move || {
        let standby = if zone == "eu-west-1a" { "eu-west-1b" } else { "eu-west-1a" };
        let instance = DbInstance::builder()
            .db_instance_identifier("shop-pg")
            .db_instance_status(status)
            .multi_az(true)
            .availability_zone(zone)
            .secondary_availability_zone(standby)
            .endpoint(Endpoint::builder().address("shop-pg.abc.eu-west-1.rds.amazonaws.com").port(5432).build())
            .tag_list(Tag::builder().key("firedrill").value("allowed").build())
            .build();
        DescribeDbInstancesOutput::builder().db_instances(instance).build()
    }
}

/// DescribeEvents answering `messages`, each `ago` seconds before now.
fn events(messages: &'static [(&'static str, i64)]) -> impl Fn() -> DescribeEventsOutput + Send + Sync {
    move || {
        let now = jiff::Timestamp::now().as_second();
        let events = messages.iter().map(|(message, ago)| {
            Event::builder().source_identifier("shop-pg").message(*message).date(DateTime::from_secs(now - ago)).build()
        });
        DescribeEventsOutput::builder().set_events(Some(events.collect())).build()
    }
}

const STARTED: &str = "Multi-AZ instance failover started.";
const PROMOTED: &str = "Multi-AZ failover to standby complete - DNS propagation in progress.";
const COMPLETED: &str = "Multi-AZ instance failover completed.";
const NOT_ATTEMPTED: &str =
    "Amazon RDS is not attempting a requested failover because a failover recently occurred on the DB instance.";

#[tokio::test]
async fn a_forced_failover_is_confirmed_by_its_first_sign_and_followed_to_the_swapped_zones() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(instance("available", "eu-west-1a"))
        .times(2)
        .output(instance("rebooting", "eu-west-1a"))
        .times(2)
        .output(instance("available", "eu-west-1b"))
        .repeatedly()
        .build();
    let described = mock!(aws_sdk_rds::Client::describe_events)
        .sequence()
        .output(events(&[]))
        .output(events(&[(STARTED, 1)]))
        .times(2)
        .output(events(&[(STARTED, 3), (PROMOTED, 1), (COMPLETED, 0)]))
        .repeatedly()
        .build();
    let client = rds(&[&describe, &described]);
    let db = Database::Instance("shop-pg".into());
    let before = failover::state(&client, &db).await.unwrap();
    assert_eq!(
        before.to_string(),
        "status available, zone eu-west-1a (standby in eu-west-1b), endpoint shop-pg.abc.eu-west-1.rds.amazonaws.com"
    );
    let mut reader = Reader::new(client, db, before, jiff::Timestamp::now());
    let seen = std::cell::RefCell::new(Vec::new());
    let said = |s: &Seen| seen.borrow_mut().push(s.to_string());
    // First reading: no change; second: the status, and the 0013 event, confirm it.
    let confirmed = failover::confirm(&mut reader, Duration::from_secs(5), EVERY, &said).await.unwrap();
    assert_eq!(confirmed, "status rebooting");
    // Read on, as the environment's follower does, until the zones swapped.
    for _ in 0..4 {
        for s in reader.read().await.unwrap() {
            said(&s);
        }
    }
    let seen = seen.into_inner();
    let expected =
        ["status rebooting, zone eu-west-1a (standby in eu-west-1b), endpoint shop-pg.abc.eu-west-1.rds.amazonaws.com"];
    assert_eq!(&seen[..1], expected, "{seen:#?}");
    assert!(seen.iter().any(|s| s.ends_with(&format!("\"{STARTED}\": the failover started"))), "{seen:#?}");
    assert!(
        seen.iter().any(|s| s.starts_with("status available, zone eu-west-1b (standby in eu-west-1a)")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|s| s.ends_with("the standby was promoted (DNS may still point at the old primary)")),
        "{seen:#?}"
    );
    assert!(seen.iter().any(|s| s.ends_with("the failover completed")), "{seen:#?}");
    assert_eq!(seen.iter().filter(|s| s.contains(STARTED)).count(), 1, "an event is said once: {seen:#?}");
}

#[tokio::test]
async fn an_event_can_confirm_a_failover_before_the_status_moves() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(instance("available", "eu-west-1a"));
    let described = mock!(aws_sdk_rds::Client::describe_events)
        .sequence()
        .output(events(&[]))
        .output(events(&[(STARTED, 0)]))
        .repeatedly()
        .build();
    let client = rds(&[&describe, &described]);
    let db = Database::Instance("shop-pg".into());
    let before = failover::state(&client, &db).await.unwrap();
    let mut reader = Reader::new(client, db, before, jiff::Timestamp::now());
    let confirmed = failover::confirm(&mut reader, Duration::from_secs(5), EVERY, &|_| {}).await.unwrap();
    assert!(confirmed.starts_with("event ") && confirmed.ends_with("the failover started"), "{confirmed}");
}

#[tokio::test]
async fn rds_refusing_the_failover_as_too_recent_is_said_and_nothing_is_timed() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(instance("available", "eu-west-1a"));
    let described = mock!(aws_sdk_rds::Client::describe_events).then_output(events(&[(NOT_ATTEMPTED, 0)]));
    let client = rds(&[&describe, &described]);
    let db = Database::Instance("shop-pg".into());
    let before = failover::state(&client, &db).await.unwrap();
    let mut reader = Reader::new(client, db, before, jiff::Timestamp::now());
    let refused = failover::confirm(&mut reader, Duration::from_secs(5), EVERY, &|_| {}).await.unwrap_err();
    assert!(matches!(refused, RdsError::FailoverRefused { .. }));
    let said = refused.to_string();
    assert!(said.starts_with("RDS did not fail DB instance shop-pg over: "), "{said}");
    assert!(said.ends_with("RDS did not fail over: one happened recently, so this drill measured nothing"), "{said}");
    assert_eq!(FailoverEvent::of(NOT_ATTEMPTED), Some(FailoverEvent::Refused));
}

#[tokio::test]
async fn a_failover_in_the_last_minutes_is_refused_before_anything_is_asked_and_nothing_confirms_a_still_database() {
    let described = mock!(aws_sdk_rds::Client::describe_events).then_output(events(&[(COMPLETED, 300)]));
    let client = rds(&[&described]);
    let recent = failover::refuse_if_recent(&client, &Database::Instance("shop-pg".into())).await.unwrap_err();
    assert!(recent.to_string().starts_with("DB instance shop-pg failed over recently ("), "{recent}");

    // Nothing moves: "not confirmed", with what was last read, after the bound.
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(instance("available", "eu-west-1a"));
    let quiet = mock!(aws_sdk_rds::Client::describe_events).then_output(events(&[]));
    let client = rds(&[&describe, &quiet]);
    let db = Database::Instance("shop-pg".into());
    failover::refuse_if_recent(&client, &db).await.expect("no failover in the window");
    let before = failover::state(&client, &db).await.unwrap();
    let mut reader = Reader::new(client, db, before, jiff::Timestamp::now());
    let started = tokio::time::Instant::now();
    let unconfirmed = failover::confirm(&mut reader, Duration::from_millis(200), EVERY, &|_| {}).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        unconfirmed.to_string().starts_with(
            "the failover of DB instance shop-pg was not confirmed by the control plane within 0.20 s (last read: status available, zone eu-west-1a"
        ),
        "{unconfirmed}"
    );
}
