//! The aws environment's drills through `firedrill run`, `plan`, `aws policy` and `recover`,
//! as a user runs them, against moto (no AWS account exists here). The binary gets its
//! credentials from the standard chain (environment variables) and its endpoint from the
//! scenario; the test reads the record it wrote and asks moto what the resources look like
//! afterwards.
//!
//! What moto cannot show is said where it matters: its forced failover of an instance changes
//! nothing (so the drill must say "not confirmed by the control plane"), and it has no failover
//! events; the status and event sequences of a real failover are in the mock tests of
//! `aws_mock.rs`.

use std::path::PathBuf;
use std::process::Output;

use firedrill::record::DrillRecord;
use firedrill::timeline::{EventKind, Outcome};

use crate::aws::{aurora, bucket, instance, readable};
use crate::common::{firedrill, json_files, load_record, texts, Moto};
use crate::kube_run::{errors, evidence};

/// A folder with a scenario, a reports folder and a state folder, and moto's endpoint.
struct AwsDrill {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl AwsDrill {
    fn new(endpoint: &str) -> AwsDrill {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("reports")).unwrap();
        AwsDrill { dir, endpoint: endpoint.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `fault` (YAML flow) into a scenario whose probe reaches moto, as `name.yaml`.
    fn scenario(&self, name: &str, fault: &str, probe: &str) -> PathBuf {
        let text = format!(
            "name: {name}
environment: {{kind: aws, region: eu-west-1, endpoint_url: \"{endpoint}\", accounts: [\"123456789012\"]}}
fault: {fault}
probes:
  - name: service
    check: {probe}
    interval: 100ms
    timeout: 2s
stability: {{samples: 2, min_duration: 200ms}}
steady_state: {{samples: 2, timeout: 10s}}
procedure:
  kind: steps
  steps:
    - name: watch
      run: [\"true\"]
      budget: 10s
targets: {{rto: 30s}}
deadline: 40s
",
            endpoint = self.endpoint
        );
        let path = self.path(&format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The binary with moto's credentials from the environment (no profile, no instance
    /// metadata) and the drill's own state folder.
    fn firedrill(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// The binary as [`AwsDrill::firedrill`] runs it, not yet started.
    fn command(&self) -> std::process::Command {
        let mut command = firedrill();
        command
            .env("AWS_ACCESS_KEY_ID", "firedrill")
            .env("AWS_SECRET_ACCESS_KEY", "firedrill")
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.path("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("XDG_STATE_HOME", self.path("state"));
        command
    }

    /// Runs `scenario`: its record (the newest in the reports folder), the exit code, and
    /// what the binary said.
    fn run(&self, scenario: &std::path::Path) -> (DrillRecord, i32, String) {
        let reports = self.path("reports");
        let args = ["run", scenario.to_str().unwrap(), "--seed", "1", "--reports", reports.to_str().unwrap()];
        let out = self.firedrill(&args);
        let (stdout, stderr) = texts(&out);
        let said = format!("{stdout}\n{stderr}");
        let newest = json_files(&reports)
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .unwrap_or_else(|| panic!("a record\n{said}"));
        let record = load_record(&newest);
        std::fs::remove_file(newest).unwrap();
        (record, out.status.code().unwrap_or(-1), said)
    }
}

/// The texts of the timeline's answers (what AWS answered and the control plane showed).
fn answers(record: &DrillRecord) -> Vec<String> {
    record
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Answered { source, text } => Some(format!("{source}: {text}")),
            _ => None,
        })
        .collect()
}

/// moto's port, as a `tcp` probe's address: a service that stays up.
fn moto_tcp(endpoint: &str) -> String {
    format!("{{kind: tcp, address: \"{}\"}}", endpoint.trim_start_matches("http://"))
}

async fn writer(client: &aws_sdk_rds::Client, id: &str) -> Option<String> {
    firedrill::env::aws::rds::cluster(client, id).await.unwrap().0.writer().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_failover_runs_end_to_end_to_the_chosen_reader_and_fails_back() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let rds = aurora(&endpoint, "shop-db", &[("firedrill", "allowed")], 3).await;
    let drill = AwsDrill::new(&endpoint);
    let path = drill.scenario(
        "aurora-failover",
        "{kind: db_failover, db_cluster: shop-db, target: shop-db-3, failback: true}",
        &moto_tcp(&endpoint),
    );
    let (record, code, said) = tokio::task::block_in_place(|| drill.run(&path));
    let answers = answers(&record);
    assert_eq!(record.outcome, Outcome::Recovered, "{said}\n{answers:#?}\n{:?}", errors(&record));
    assert_eq!(code, 0, "{said}");
    let joined = answers.join("\n");
    assert!(
        joined.contains("DB cluster shop-db: failover requested to shop-db-3; RDS accepted the request"),
        "{joined}"
    );
    assert!(
        joined.contains("DB cluster shop-db: failover confirmed by the control plane (writer shop-db-3)"),
        "the writer flip confirms the failover: {joined}"
    );
    assert!(joined.contains("DB cluster shop-db: failback requested to shop-db-1"), "{joined}");
    assert!(joined.contains("failback confirmed by the control plane (writer shop-db-1)"), "{joined}");
    // The failover was confirmed before t0, the failback after the fault's end.
    let at = |needle: &str| {
        record
            .timeline
            .events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::Answered { text, .. } if text.contains(needle)))
            .map(|e| e.t_us)
            .unwrap_or_else(|| panic!("no answer {needle}"))
    };
    let t0 = record.timeline.events.iter().find(|e| matches!(e.kind, EventKind::FaultActive)).unwrap().t_us;
    assert!(at("failover confirmed") <= t0, "t0 is when the control plane confirmed it");
    assert!(at("failback confirmed") > t0);
    let aws = evidence(&record, "AWS");
    assert!(aws.contains("account 123456789012, region eu-west-1"), "{aws}");
    assert!(aws.contains("preflight DB cluster shop-db: tagged firedrill=allowed, available, reader shop-db-3 available, no recent failover"), "{aws}");
    assert!(aws.contains("DB cluster shop-db before the failover: status available, writer shop-db-1"), "{aws}");
    assert!(aws.contains("after the drill: status available, writer shop-db-1"), "{aws}");
    // moto has no failover events: the evidence says there were none rather than guessing.
    assert_eq!(evidence(&record, "RDS events of DB cluster shop-db"), "none");
    assert_eq!(writer(&rds, "shop-db").await.as_deref(), Some("shop-db-1"), "failed back");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refusals_exit_2_naming_the_tag_the_standby_or_the_status_and_change_nothing() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let tagged = aurora(&endpoint, "shop-db", &[("firedrill", "allowed")], 2).await;
    aurora(&endpoint, "team-db", &[("owner", "team")], 2).await;
    instance(&tagged, "shop-pg", true).await;
    instance(&tagged, "single-pg", false).await;
    let drill = AwsDrill::new(&endpoint);
    let probe = moto_tcp(&endpoint);
    let refused = |name: &str, fault: &str| {
        let path = drill.scenario(name, fault, &probe);
        let (record, code, said) = tokio::task::block_in_place(|| drill.run(&path));
        assert_eq!((record.outcome, code), (Outcome::Error, 2), "{said}");
        assert!(!record.timeline.events.iter().any(|e| matches!(e.kind, EventKind::FaultInjected { .. })));
        errors(&record).join("\n")
    };
    let untagged = refused("untagged", "{kind: db_failover, db_cluster: team-db}");
    assert!(
        untagged.contains(
            "DB cluster team-db does not carry the tag firedrill=allowed: firedrill changes only what is tagged so"
        ),
        "{untagged}"
    );
    let single = refused("single", "{kind: db_failover, db_instance: single-pg}");
    assert!(single.contains("DB instance single-pg is not Multi-AZ"), "{single}");
    tagged.stop_db_cluster().db_cluster_identifier("shop-db").send().await.unwrap();
    let stopped = refused("stopped", "{kind: db_failover, db_cluster: shop-db}");
    assert!(stopped.contains("DB cluster shop-db is stopped, not available"), "{stopped}");
    assert_eq!(writer(&tagged, "shop-db").await.as_deref(), Some("shop-db-1"), "nothing changed");

    // moto accepts the forced failover and changes nothing: the drill says so and times nothing.
    let path = drill.scenario("instance", "{kind: db_failover, db_instance: shop-pg, confirm_within: 2s}", &probe);
    let (record, code, said) = tokio::task::block_in_place(|| drill.run(&path));
    assert_eq!((record.outcome, code), (Outcome::Error, 2), "{said}");
    let errors = errors(&record).join("\n");
    assert!(
        errors.contains("the failover of DB instance shop-pg was not confirmed by the control plane within 2.00 s (last read: status available, zone eu-west-1a, endpoint shop-pg."),
        "{errors}"
    );
    assert!(!record.timeline.events.iter().any(|e| matches!(e.kind, EventKind::FaultActive)), "no t0");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_block_drill_denies_the_bucket_until_it_lifts_and_leaves_its_policy_byte_for_byte() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let team = r#"{"Version": "2012-10-17",  "Statement": [{"Sid": "TeamRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shop-receipts/*"}]}"#;
    let drill = AwsDrill::new(&endpoint);
    for (name, prior) in [("shop-receipts", Some(team)), ("shop-plain", None)] {
        let s3 = bucket(&endpoint, name).await;
        let tag = aws_sdk_s3::types::Tag::builder().key("firedrill").value("allowed").build().unwrap();
        let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
        s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await.unwrap();
        if let Some(policy) = prior {
            s3.put_bucket_policy().bucket(name).policy(policy).send().await.unwrap();
        }
        let probe = format!("{{kind: s3, endpoint: \"{endpoint}\", bucket: {name}, region: eu-west-1}}");
        let path =
            drill.scenario(name, &format!("{{kind: s3_block, bucket: {name}, mode: refuse, duration: 2s}}"), &probe);
        let (record, code, said) = tokio::task::block_in_place(|| drill.run(&path));
        let answers = answers(&record).join("\n");
        assert_eq!((record.outcome, code), (Outcome::Recovered, 0), "{said}\n{answers}\n{:?}", errors(&record));
        assert!(answers.contains("a put is refused with 403"), "{answers}");
        assert!(answers.contains(&format!("bucket {name}: policy restored byte for byte")), "{answers}");
        let rto = record.metrics.rto.seconds().expect("an RTO");
        assert!((1.5..10.0).contains(&rto), "the block lasted 2 s; RTO {rto}");
        let after = firedrill::env::aws::s3_block::policy(&s3, name).await.unwrap();
        assert_eq!(after.as_deref(), prior, "the policy after the drill is the one before, byte for byte");
        assert!(readable(&s3, name).await);
    }

    // An untagged bucket is refused, naming the tag.
    bucket(&endpoint, "team-bucket").await;
    let path = drill.scenario("untagged", "{kind: s3_block, bucket: team-bucket, mode: refuse}", &moto_tcp(&endpoint));
    let (record, code, said) = tokio::task::block_in_place(|| drill.run(&path));
    assert_eq!(code, 2, "{said}");
    assert!(errors(&record).join("\n").contains("bucket team-bucket does not carry the tag firedrill=allowed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_s3_block_drill_is_undone_by_recover_and_plan_and_policy_say_what_a_drill_needs() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let drill = AwsDrill::new(&endpoint);
    let s3 = bucket(&endpoint, "shop-media").await;
    let tag = aws_sdk_s3::types::Tag::builder().key("firedrill").value("allowed").build().unwrap();
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
    s3.put_bucket_tagging().bucket("shop-media").tagging(tagging).send().await.unwrap();
    let path = drill.scenario("kill", "{kind: s3_block, bucket: shop-media, mode: refuse}", &moto_tcp(&endpoint));

    // The plan and the policy need no credentials and say what the drill would touch.
    let (plan, _) = texts(&drill.firedrill(&["plan", path.to_str().unwrap()]));
    assert!(plan.contains("aws: account 123456789012 only (asked of STS before anything), region eu-west-1"), "{plan}");
    assert!(
        plan.contains("changes bucket shop-media: a deny of s3:GetObject and s3:PutObject added to its policy"),
        "{plan}"
    );
    assert!(plan.contains("s3:PutBucketPolicy on arn:aws:s3:::shop-media"), "{plan}");
    let (policy, _) = texts(&drill.firedrill(&["aws", "policy", path.to_str().unwrap()]));
    let policy: serde_json::Value = serde_json::from_str(&policy).expect("the policy is JSON");
    assert!(policy["Statement"].as_array().unwrap().iter().any(|s| s["Resource"] == "arn:aws:s3:::shop-media"
        && s["Action"].as_array().unwrap().contains(&"s3:DeleteBucketPolicy".into())));

    // A drill killed with the block in effect: its journal keeps the policy to put back.
    let mut child = {
        let reports = drill.path("reports");
        let mut command = drill.command();
        command.args(["run", path.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };
    let blocked = async {
        for _ in 0..200 {
            let now = firedrill::env::aws::s3_block::policy(&s3, "shop-media").await.unwrap();
            if now.is_some_and(|p| p.contains("firedrill-block-")) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    };
    assert!(blocked.await, "the drill blocked the bucket");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!readable(&s3, "shop-media").await, "the block outlived the drill");
    let out = drill.firedrill(&["recover", "--all"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("bucket shop-media's policy put back as it was (sha256 none)"), "{stdout}");
    assert_eq!(firedrill::env::aws::s3_block::policy(&s3, "shop-media").await.unwrap(), None);
    assert!(readable(&s3, "shop-media").await);
}
