//! Records kept in an S3 prefix (`--reports s3://bucket/prefix`), against moto: `sim` drills
//! run through the binary land there, `report` summarizes two teams' drills from it and
//! `--verify` catches an edited object, a record object is never overwritten, and a record
//! S3 cannot take is kept locally. Real S3 is not reached here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use firedrill::record::{DrillRecord, Saved};
use firedrill::store::{Reports, StoreError};

use crate::common::{firedrill, json_files, load_record, texts, Moto};

const REGION: &str = "eu-west-1";

/// The binary, configured for moto the way a user configures the AWS CLI for an emulator:
/// environment variables only, no profile files, no instance metadata.
fn firedrill_on(endpoint: &str) -> Command {
    let mut cmd = firedrill();
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "firedrill")
        .env("AWS_SECRET_ACCESS_KEY", "firedrill")
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// The test's own S3 client on moto, and the runtime it runs on.
struct Bucket {
    runtime: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    name: &'static str,
}

fn loader(endpoint: &str) -> aws_config::ConfigLoader {
    let credentials = aws_sdk_s3::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    firedrill::env::aws::connect::standard()
        .credentials_provider(credentials)
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
}

impl Bucket {
    fn create(endpoint: &str, name: &'static str) -> Bucket {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = runtime.block_on(loader(endpoint).http_client(firedrill::probe::aws_http_client(None)).load());
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        runtime.block_on(s3.create_bucket().bucket(name).create_bucket_configuration(location).send()).unwrap();
        Bucket { runtime, s3, name }
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.runtime.block_on(self.s3.list_objects_v2().bucket(self.name).prefix(prefix).send()).unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }

    fn get(&self, key: &str) -> String {
        let object = self.runtime.block_on(self.s3.get_object().bucket(self.name).key(key).send()).unwrap();
        let bytes = self.runtime.block_on(object.body.collect()).unwrap().into_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn put(&self, key: &str, text: &str) {
        let body = text.as_bytes().to_vec().into();
        self.runtime.block_on(self.s3.put_object().bucket(self.name).key(key).body(body).send()).unwrap();
    }

    fn delete(&self) {
        self.runtime.block_on(self.s3.delete_bucket().bucket(self.name).send()).unwrap();
    }
}

#[test]
fn sim_drills_of_two_teams_land_in_one_prefix_where_report_summarizes_and_verifies_them() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let bucket = Bucket::create(&endpoint, "drills");
    let org = "s3://drills/org";

    // Team A drills the database, with renderings; team B a node drain; one prefix for both.
    let a = firedrill_on(&endpoint)
        .args(["run", "scenarios/db-failover.yaml", "--seed", "4", "--reports", org, "--report", "md,html"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&a);
    assert_eq!(a.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("results written to s3://drills/org/"), "{stdout}");
    // Team B names the emulator for S3 alone, as the SDK's service-specific variable allows.
    let b = firedrill_on(&endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_ENDPOINT_URL_S3", &endpoint)
        .args(["run", "scenarios/node-drain.yaml", "--seed", "5", "--operator", "team-b", "--reports", org])
        .output()
        .unwrap();
    assert_eq!(b.status.code(), Some(0), "{:?}", texts(&b));

    let keys = bucket.keys("org/");
    let records: Vec<&String> = keys.iter().filter(|k| k.ends_with(".json")).collect();
    assert_eq!(records.len(), 2, "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains(".write-check")), "the write check leaves nothing: {keys:?}");
    let db = records.iter().find(|k| k.contains("db-failover")).expect("team A's record");
    for ext in ["md", "html"] {
        let beside = db.replace(".json", &format!(".{ext}"));
        assert!(keys.contains(&beside), "{beside} beside the record: {keys:?}");
    }
    assert!(stdout.contains(&format!("result: s3://drills/{db}")), "{stdout}");
    let record = DrillRecord::from_json(&bucket.get(db)).unwrap();
    assert_eq!(record.scenario.name, "db-failover");

    // Team A again: its MTTR counts the drill already in the prefix, read from S3.
    let again = firedrill_on(&endpoint)
        .args(["run", "scenarios/db-failover.yaml", "--seed", "6", "--reports", org])
        .output()
        .unwrap();
    let (stdout, _) = texts(&again);
    assert!(stdout.contains("1 drill(s) now + 1 earlier"), "{stdout}");

    // The compliance summary of the organisation's prefix, written there and, on request, locally.
    let out = firedrill_on(&endpoint).args(["report", "--reports", org, "--format", "md,json"]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("| db-failover | 2 |") && stdout.contains("| node-drain | 1 |"), "{stdout}");
    assert!(stderr.contains("wrote s3://drills/org/compliance-summary.md"), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&bucket.get("org/compliance-summary.summary.json")).expect("the summary, as JSON");
    assert_eq!(summary["scenarios"].as_array().unwrap().len(), 2);
    let local = tempfile::tempdir().unwrap();
    let out = firedrill_on(&endpoint).args(["report", org, "--out", local.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(!texts(&out).1.contains("warning: skipped"), "summaries are not read as records: {:?}", texts(&out));
    assert!(local.path().join("compliance-summary.md").exists());

    // Verify: intact, then one object edited in the bucket is named, exit 1.
    let out = firedrill_on(&endpoint).args(["report", org, "--verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("3 result(s) checked, 0 failed verification"), "{:?}", texts(&out));
    let edited = bucket.get(db).replacen("\"db-failover\"", "\"db-failover-renamed\"", 1);
    bucket.put(db, &edited);
    let out = firedrill_on(&endpoint).args(["report", org, "--verify"]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("3 result(s) checked, 1 failed verification"), "{stdout}");
    assert!(stderr.contains(&format!("error: s3://drills/{db}: EDITED after it was written")), "{stderr}");
}

#[test]
fn a_record_object_is_never_overwritten_and_one_s3_refuses_is_kept_in_a_fallback_folder() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let bucket = Bucket::create(&endpoint, "drills");
    let reports = Reports::open_s3("drills", "team-a", loader(&endpoint)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let fallbacks = [local.path().join("reports")];

    let saved = reports.write_record("drill.json", "{\"first\": true}", &fallbacks).unwrap();
    assert!(matches!(&saved, Saved::InPlace(url) if *url == Path::new("s3://drills/team-a/drill.json")), "{saved:?}");
    // The same name again: S3 (here moto) refuses the put (If-None-Match), the first object
    // stays, and the second is kept locally, with the reason.
    let saved = reports.write_record("drill.json", "{\"second\": true}", &fallbacks).unwrap();
    let Saved::Fallback { path, error } = saved else { panic!("{saved:?}") };
    assert!(matches!(&error, StoreError::Exists { url } if url == "s3://drills/team-a/drill.json"), "{error}");
    assert_eq!(bucket.get("team-a/drill.json"), "{\"first\": true}");
    assert_eq!(path, local.path().join("reports").join("drill.json"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"second\": true}");

    // A bucket that is not there: refused before a drill runs, naming it.
    let gone = Reports::open_s3("no-such-bucket", "team-a", loader(&endpoint)).unwrap();
    let refused = gone.check_writable().unwrap_err();
    let text = firedrill::text::error_chain(&refused);
    assert!(text.starts_with("failed to write records to s3://no-such-bucket/team-a; nothing was run"), "{text}");
    assert!(text.contains("NoSuchBucket"), "{text}");
}

/// A bucket that goes away while a drill runs does not lose the drill's record: it is kept in
/// the local `reports/` folder, stderr names both places, the exit code is 2.
#[test]
fn a_record_s3_cannot_take_after_the_drill_is_kept_in_the_local_reports_folder() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = Moto::start(None) else { return };
    let bucket = Bucket::create(&endpoint, "drills-vanishing");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("vanishing.yaml");
    std::fs::write(
        &scenario,
        "name: vanishing-bucket
environment: { kind: sim }
fault: { kind: db_failover, mode: crash }
probes:
  - name: orders
    check: { kind: http, url: \"http://shop.internal/orders\" }
    interval: 100ms
procedure:
  kind: steps
  steps:
    - name: Promote the replica
      manual: Promote it.
      sim: { duration: 2s, effect: promote_replica }
steady_state: { samples: 2, timeout: 10s }
stability: { samples: 2, min_duration: 200ms }
targets: { rto: 5m }
deadline: 10m
",
    )
    .unwrap();
    let mut child = firedrill_on(&endpoint)
        .current_dir(dir.path())
        .args(["run", scenario.to_str().unwrap(), "--pace", "real", "--seed", "1"])
        .args(["--reports", "s3://drills-vanishing/team-a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            all += &line;
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    let mut stdout = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut all);
        all
    });
    loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("the fault becomes active");
        if line.contains("fault active") {
            break;
        }
    }
    // The write check left the bucket empty: it can be deleted.
    bucket.delete();
    let status = child.wait().unwrap();
    let (stdout, stderr) = (stdout_reader.join().unwrap(), stderr_reader.join().unwrap());
    assert_eq!(status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("outcome: recovered"), "{stdout}");
    assert!(!stdout.contains("results written to"), "{stdout}");
    let kept = json_files(&dir.path().join("reports"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(load_record(&kept[0]).scenario.name, "vanishing-bucket");
    let name = kept[0].file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(&format!("error: failed to write s3://drills-vanishing/team-a/{name}")), "{stderr}");
    assert!(stderr.contains(&format!("the record was kept at reports/{name} instead")), "{stderr}");
    assert!(stderr.contains("1 result(s) could not be written to s3://drills-vanishing/team-a/"), "{stderr}");
}
