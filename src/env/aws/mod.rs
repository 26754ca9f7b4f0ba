//! The `aws` environment: an AWS account and region, through the AWS SDK, with credentials
//! from the standard chain (environment, profiles, SSO, instance and container roles). It fails
//! a database over (`db_failover`: a Multi-AZ instance's forced failover, or an Aurora or
//! Multi-AZ cluster's failover to a reader) and blocks a bucket's objects (`s3_block`: a deny in
//! its policy); probes reach the system from this machine.
//!
//! Nothing is changed before `prepare` has checked the account (`accounts`, through STS), the
//! allow-tag of every resource a fault names, and what RDS would refuse (a single-AZ instance,
//! a cluster without an available reader, a database that failed over recently). Every
//! change that must be undone is journalled before it is made ([`crate::journal`]); what RDS
//! and S3 answered is kept as evidence and as timeline events at their time
//! ([`Environment::answers`]). Seams: `connect` (the SDK's configuration, the account),
//! `rds` (describe, preflight, the failover calls), `events` (what RDS's event messages
//! mean), `failover` (the control plane followed: confirmation, the RDS timeline), `s3_block`
//! (the bucket policy), `iam` (the permissions a drill needs) and `plan`.

pub mod connect;
mod error;
pub mod events;
pub mod failover;
pub mod iam;
pub mod plan;
pub mod rds;
pub mod s3_block;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use aws_config::SdkConfig;

pub use error::AwsError;
use failover::{Database, DbState, Follow, Reader, Seen};

use super::{Answered, EnvError, Environment, Evidence, FaultGuard, Sample};
use crate::journal::{Begin, Journal, Undo, FORMAT};
use crate::probe::ledger::Ledger;
use crate::scenario::{AwsAccount, BlockMode, Check, Fault, Probe, Problem, ResolvedStep, Scenario, StepAction};
use crate::text::error_chain;
use crate::word::EnvironmentKind;

/// The source of the evidence that says what firedrill asked of AWS and what it answered.
pub const AWS_EVIDENCE: &str = "AWS";

/// The region an `s3` probe with an `endpoint` signs for when it names none (S3's default).
const S3_PROBE_REGION: &str = "us-east-1";

/// How long a failback waits for the database to be `available` again before it asks.
const FAILBACK_WAIT: Duration = Duration::from_secs(15 * 60);

/// An AWS account and region; see the module docs.
pub struct AwsEnv {
    inner: Rc<Inner>,
}

/// What the fault guard shares with the environment.
struct Inner {
    account: AwsAccount,
    fault: Fault,
    scenario: String,
    path: PathBuf,
    journal_dir: PathBuf,
    run_id: String,
    /// How often the control plane is read while a failover is followed.
    poll_every: Duration,
    /// The SDK's configuration: given (tests), or loaded from the standard chain in `prepare`.
    config: RefCell<Option<SdkConfig>>,
    journal: RefCell<Option<Journal>>,
    /// What AWS answered, stamped with the wall clock, in order: the evidence.
    answers: RefCell<Vec<String>>,
    /// The answers to changes, with when they came: timeline events.
    timed: RefCell<Vec<Answered>>,
    /// The failed-over database and its state before the failover.
    failed_over: RefCell<Option<(Database, DbState)>>,
    /// The control plane read from the failover until the drill ends.
    follow: RefCell<Option<Follow>>,
    /// The `slo` probes' steady load, sent from this machine.
    loads: crate::env::load::Loads,
    /// The write ledgers, by probe.
    ledgers: RefCell<HashMap<usize, Rc<Ledger>>>,
    /// The `s3` probes' clients and buckets, by probe, for the removal of their objects.
    s3_probes: RefCell<HashMap<usize, (String, crate::probe::S3Client)>>,
    /// The probes that keep state between samples: `dns` (every change of the answer a
    /// timeline event: the CNAME flip of a failover) and pooled `sql`.
    held: crate::probe::held::HeldProbes,
    /// When `prepare` began: the start of the window the evidence covers.
    started: Cell<Option<jiff::Timestamp>>,
}

impl AwsEnv {
    /// An environment for `scenario` in `account`; `run_id` names what firedrill adds (the
    /// policy statement's `Sid`), and the journal is written under `journal_dir`.
    pub fn new(account: AwsAccount, scenario: &Scenario, run_id: &str, journal_dir: PathBuf) -> Self {
        let inner = Inner {
            account,
            fault: scenario.fault.clone(),
            scenario: scenario.name.clone(),
            path: scenario.path.clone(),
            journal_dir,
            run_id: run_id.into(),
            poll_every: failover::POLL_EVERY,
            config: RefCell::default(),
            journal: RefCell::default(),
            answers: RefCell::default(),
            timed: RefCell::default(),
            failed_over: RefCell::default(),
            follow: RefCell::default(),
            loads: Default::default(),
            ledgers: RefCell::default(),
            s3_probes: RefCell::default(),
            held: Default::default(),
            started: Cell::default(),
        };
        AwsEnv { inner: Rc::new(inner) }
    }

    /// Uses `config` instead of the standard chain's: for tests, whose AWS is moto or a mock.
    pub fn with_config(self, config: SdkConfig) -> Self {
        *self.inner.config.borrow_mut() = Some(config);
        self
    }

    /// Reads the control plane every `every` instead of every second: for tests.
    pub fn polling_every(mut self, every: Duration) -> Self {
        if let Some(inner) = Rc::get_mut(&mut self.inner) {
            inner.poll_every = every;
        }
        self
    }

    /// The id firedrill's changes carry.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }
}

impl Inner {
    fn config(&self) -> Result<SdkConfig, AwsError> {
        self.config.borrow().clone().ok_or(AwsError::NotPrepared)
    }

    fn rds(&self) -> Result<aws_sdk_rds::Client, AwsError> {
        Ok(aws_sdk_rds::Client::new(&self.config()?))
    }

    fn s3(&self) -> Result<aws_sdk_s3::Client, AwsError> {
        Ok(connect::s3(&self.config()?))
    }

    /// Keeps what AWS answered, stamped with the wall clock.
    fn said(&self, what: String) {
        let at = jiff::Timestamp::now().strftime("%H:%M:%S%.3f");
        self.answers.borrow_mut().push(format!("{at} {what}"));
    }

    /// Keeps AWS's answer to a change in the evidence and as a timeline event at its time.
    fn answered(&self, source: &str, what: String) {
        let at = tokio::time::Instant::now();
        self.timed.borrow_mut().push(Answered { at, source: source.into(), text: what.clone() });
        self.said(what);
    }

    fn journal_apply(&self, change: &str, undo: Undo) -> Result<u64, AwsError> {
        let journal = self.journal.borrow();
        Ok(journal.as_ref().ok_or(AwsError::NoJournal)?.apply(change, undo, None)?)
    }

    fn journal_done(&self, entry: u64, by: &str) -> Result<(), AwsError> {
        let journal = self.journal.borrow();
        Ok(journal.as_ref().ok_or(AwsError::NoJournal)?.done(entry, by)?)
    }

    /// Loads the SDK's configuration (unless given), asks STS whose credentials these are,
    /// opens the journal and checks every resource a fault names: a drill that would touch
    /// an account not listed, an untagged resource or a database RDS would not fail over fails
    /// here, before steady state, with nothing changed.
    async fn prepare(&self) -> Result<(), AwsError> {
        self.started.set(Some(jiff::Timestamp::now()));
        if self.config.borrow().is_none() {
            let config = connect::config(&self.account, connect::standard()).await;
            *self.config.borrow_mut() = Some(config);
        }
        let config = self.config()?;
        let account = connect::account(&config, &self.account).await?;
        let region = config.region().map_or_else(|| "no region".into(), ToString::to_string);
        self.said(format!("account {account}, region {region}"));
        let begin = Begin {
            format: FORMAT,
            run: self.run_id.clone(),
            scenario: self.scenario.clone(),
            path: self.path.clone(),
            environment: EnvironmentKind::Aws,
            started: jiff::Timestamp::now(),
            pid: std::process::id(),
        };
        *self.journal.borrow_mut() = Some(Journal::create(&self.journal_dir, begin)?);
        for fault in super::dry_run::each_fault(&self.fault) {
            self.preflight(fault).await?;
        }
        Ok(())
    }

    /// What RDS or S3 would refuse, or the scenario forbids, about `fault`, checked before
    /// anything changes; what was found is evidence.
    async fn preflight(&self, fault: &Fault) -> Result<(), AwsError> {
        let tag = &self.account.allow_tag;
        match fault {
            Fault::DbFailover { db_instance: Some(id), .. } => {
                let state = rds::instance(&self.rds()?, id).await?;
                rds::preflight_instance(id, &state, tag)?;
                failover::refuse_if_recent(&self.rds()?, &Database::Instance(id.clone())).await?;
                self.said(format!("preflight DB instance {id}: tagged {tag}, available, Multi-AZ, no recent failover"));
            }
            Fault::DbFailover { db_cluster: Some(id), target, .. } => {
                let reader = self.reader_to_promote(id, target.as_deref()).await?;
                failover::refuse_if_recent(&self.rds()?, &Database::Cluster(id.clone())).await?;
                self.said(format!(
                    "preflight DB cluster {id}: tagged {tag}, available, reader {reader} available, no recent failover"
                ));
            }
            Fault::S3Block { bucket: Some(bucket), .. } => {
                let tags = s3_block::tags(&self.s3()?, bucket).await?;
                if !tags.contains(tag) {
                    return Err(
                        rds::RdsError::NotAllowed { resource: format!("bucket {bucket}"), tag: tag.clone() }.into()
                    );
                }
                let prior = s3_block::policy(&self.s3()?, bucket).await?;
                self.said(format!(
                    "preflight bucket {bucket}: tagged {tag}; its policy now: sha256 {}",
                    s3_block::fingerprint(prior.as_deref())
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The reader a cluster's failover promotes, after the preflight of the cluster.
    async fn reader_to_promote(&self, id: &str, target: Option<&str>) -> Result<String, AwsError> {
        let (state, statuses) = rds::cluster(&self.rds()?, id).await?;
        Ok(rds::preflight(id, &state, &statuses, &self.account.allow_tag, target)?)
    }

    /// Fails `db` over by `request` and reads the control plane until it confirms the
    /// failover; every change read is a timeline event. The reading goes on in the background
    /// until the drill ends.
    async fn fail_over(&self, db: Database, within: Duration) -> Result<(), AwsError> {
        let client = self.rds()?;
        let before = failover::state(&client, &db).await?;
        self.said(format!("{db} before the failover: {before}"));
        // RDS's clock and this machine's differ by a little: events from just before the
        // request still count.
        let since = jiff::Timestamp::now() - Duration::from_secs(5);
        let mut reader = Reader::new(client.clone(), db.clone(), before.clone(), since);
        let target = self.request_failover(&client, &db).await?;
        self.answered(AWS_EVIDENCE, format!("{db}: failover requested{target}; RDS accepted the request"));
        let said = |seen: &Seen| self.answered(failover::RDS_EVIDENCE, format!("{db}: {seen}"));
        let confirmed = failover::confirm(&mut reader, within, self.poll_every, &said).await;
        let what = match confirmed {
            Ok(what) => what,
            Err(e) => {
                self.answered(AWS_EVIDENCE, format!("{db}: {}", error_chain(&e)));
                return Err(e.into());
            }
        };
        self.answered(AWS_EVIDENCE, format!("{db}: failover confirmed by the control plane ({what})"));
        *self.failed_over.borrow_mut() = Some((db, before));
        *self.follow.borrow_mut() = Some(Follow::start(reader, self.poll_every));
        Ok(())
    }

    /// Asks RDS to fail `db` over: an instance by a reboot with a forced failover, a cluster to
    /// the scenario's `target` reader or the first available one. Which reader, in words.
    async fn request_failover(&self, client: &aws_sdk_rds::Client, db: &Database) -> Result<String, AwsError> {
        match db {
            Database::Instance(id) => {
                rds::force_failover(client, id).await?;
                Ok(String::new())
            }
            Database::Cluster(id) => {
                let target = self.reader_to_promote(id, self.fault_target(id).as_deref()).await?;
                rds::fail_over(client, id, &target).await?;
                Ok(format!(" to {target}"))
            }
        }
    }

    /// The reader the scenario names for cluster `id`'s failover.
    fn fault_target(&self, id: &str) -> Option<String> {
        super::dry_run::each_fault(&self.fault).into_iter().find_map(|f| match f {
            Fault::DbFailover { db_cluster: Some(c), target, .. } if c == id => target.clone(),
            _ => None,
        })
    }

    /// Fails the database back to where it was before the drill, once it is available again,
    /// and reads until the control plane confirms it: the failback's control-plane timeline.
    async fn fail_back(&self, within: Duration) -> Result<(), AwsError> {
        let Some((db, first)) = self.failed_over.borrow().clone() else { return Ok(()) };
        let client = self.rds()?;
        let follow = self.follow.borrow_mut().take();
        let mut reader = match follow {
            Some(follow) => {
                self.timed.borrow_mut().extend(follow.take_changes());
                follow.stop().await
            }
            None => None,
        }
        .unwrap_or_else(|| Reader::new(client.clone(), db.clone(), first.clone(), jiff::Timestamp::now()));
        let said = |seen: &Seen| self.answered(failover::RDS_EVIDENCE, format!("{db}: {seen}"));
        failover::until_available(&mut reader, FAILBACK_WAIT, self.poll_every, &said).await?;
        let now = reader.last().clone();
        let back = match &db {
            Database::Instance(id) => {
                rds::force_failover(&client, id).await?;
                String::new()
            }
            Database::Cluster(id) => {
                let writer = first.writer.clone().unwrap_or_default();
                let writer = self.reader_to_promote(id, Some(&writer)).await?;
                rds::fail_over(&client, id, &writer).await?;
                format!(" to {writer}")
            }
        };
        self.answered(AWS_EVIDENCE, format!("{db}: failback requested{back} (from {now})"));
        let mut reader = Reader::new(client, db.clone(), now, jiff::Timestamp::now() - Duration::from_secs(5));
        let what = failover::confirm(&mut reader, within, self.poll_every, &said).await?;
        self.answered(AWS_EVIDENCE, format!("{db}: failback confirmed by the control plane ({what})"));
        *self.follow.borrow_mut() = Some(Follow::start(reader, self.poll_every));
        Ok(())
    }

    /// Blocks `bucket`'s objects: its policy saved and journalled, firedrill's deny added,
    /// the block confirmed by a refused put. When the block fails, the policy is put back
    /// before the error is returned.
    async fn block(&self, bucket: &str) -> Result<BucketBlock, AwsError> {
        let s3 = self.s3()?;
        let prior = s3_block::policy(&s3, bucket).await?;
        let blocking = s3_block::blocking_policy(bucket, prior.as_deref(), &self.run_id)?;
        let undo = Undo::RestoreBucketPolicy {
            region: self.account.region.clone(),
            endpoint_url: self.account.endpoint_url.clone(),
            bucket: bucket.into(),
            prior: prior.clone(),
            blocking: blocking.clone(),
        };
        let entry = self.journal_apply(&format!("deny object reads and writes in bucket {bucket}'s policy"), undo)?;
        let probe_key = s3_block::check_key(&self.run_id);
        if let Err(e) = s3_block::block(&s3, bucket, &blocking, &probe_key).await {
            self.answered(AWS_EVIDENCE, format!("bucket {bucket}: {}", error_chain(&e)));
            // Should the policy not go back either, its journal entry stays open and the
            // teardown says so.
            let block = BucketBlock { entry, bucket: bucket.into(), prior };
            let _ = self.unblock(&block, "the block did not hold; put back").await;
            return Err(e.into());
        }
        self.answered(
            AWS_EVIDENCE,
            format!(
                "bucket {bucket}: firedrill's deny (Sid {}) added to its policy (sha256 {} before); a put is refused with 403",
                s3_block::statement_id(&self.run_id),
                s3_block::fingerprint(prior.as_deref())
            ),
        );
        Ok(BucketBlock { entry, bucket: bucket.into(), prior })
    }

    /// Puts the bucket's policy back as it was, checks that it is byte for byte, and closes
    /// the journal entry.
    async fn unblock(&self, block: &BucketBlock, by: &str) -> Result<(), AwsError> {
        let s3 = self.s3()?;
        let bucket = &block.bucket;
        s3_block::restore(&s3, bucket, block.prior.as_deref()).await?;
        let now = s3_block::policy(&s3, bucket).await?;
        let (before, after) = (s3_block::fingerprint(block.prior.as_deref()), s3_block::fingerprint(now.as_deref()));
        if now != block.prior {
            self.answered(
                AWS_EVIDENCE,
                format!("bucket {bucket}: policy after the revert sha256 {after}, before {before}"),
            );
            return Err(AwsError::PolicyNotRestored { bucket: bucket.clone(), before, after });
        }
        self.answered(AWS_EVIDENCE, format!("bucket {bucket}: policy restored byte for byte (sha256 {after})"));
        self.journal_done(block.entry, by)
    }

    /// The `s3` probe's client, made at its first sample: for an `endpoint`, the probe's own
    /// client; without one, the drill's configuration (its credentials, region and endpoint),
    /// in the probe's `region` when given.
    async fn s3_probe(
        &self,
        probe: usize,
        endpoint: &Option<String>,
        bucket: &str,
        region: &Option<String>,
        ca: &Option<PathBuf>,
    ) -> Result<crate::probe::S3Client, AwsError> {
        if let Some((_, client)) = self.s3_probes.borrow().get(&probe) {
            return Ok(client.clone());
        }
        let ca = ca.as_deref().map(crate::tls::CaPem::read).transpose()?;
        let client = match endpoint {
            Some(endpoint) => {
                crate::probe::s3_client(endpoint, region.as_deref().unwrap_or(S3_PROBE_REGION), ca.as_ref())
            }
            None if region.is_none() && ca.is_none() => connect::s3(&self.config()?),
            None => {
                let region = region.as_deref().or(self.account.region.as_deref());
                let endpoint = self.account.endpoint_url.as_deref();
                connect::s3(&connect::load(connect::standard(), region, endpoint, ca.as_ref()).await)
            }
        };
        self.s3_probes.borrow_mut().insert(probe, (bucket.to_string(), client.clone()));
        Ok(client)
    }

    /// The probe's ledger.
    fn ledger(&self, probe: usize, table: &str) -> Rc<Ledger> {
        self.ledgers.borrow_mut().entry(probe).or_insert_with(|| Rc::new(Ledger::new(table, &self.run_id))).clone()
    }

    /// Stops the load and the control plane's reading, removes what the probes left, and
    /// closes the journal: kept, and said, when a change is left in it.
    async fn teardown(&self) -> Result<(), AwsError> {
        const LIMIT: Duration = Duration::from_secs(5);
        self.loads.end();
        let follow = self.follow.borrow_mut().take();
        if let Some(follow) = follow {
            follow.stop().await;
        }
        let mut failed = None;
        let ledgers: Vec<_> = self.ledgers.borrow().values().cloned().collect();
        for ledger in ledgers {
            if let Ok(Err(e)) = tokio::time::timeout(LIMIT, ledger.remove()).await {
                failed = failed.or(Some(AwsError::Ledger(e)));
            }
        }
        let probes: Vec<_> = self.s3_probes.borrow().values().cloned().collect();
        for (bucket, client) in probes {
            let _ = tokio::time::timeout(LIMIT, crate::probe::s3_remove(&client, &bucket)).await;
        }
        if let Some(journal) = self.journal.borrow_mut().take() {
            if let Some(path) = journal.close()? {
                return Err(AwsError::LeftInJournal { path, run: self.run_id.clone() });
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// A bucket this drill blocked, and its journal entry.
#[derive(Clone, Debug)]
struct BucketBlock {
    entry: u64,
    bucket: String,
    prior: Option<String>,
}

/// A fault in effect: its revert puts a blocked bucket's policy back, or fails a database
/// back when the scenario asks for it.
pub struct AwsGuard {
    inner: Rc<Inner>,
    /// Taken once reverted, so a second revert does nothing.
    block: Option<BucketBlock>,
    /// The failback's bound, while one is still to be made.
    failback: Option<Duration>,
}

impl FaultGuard for AwsGuard {
    async fn revert(&mut self) -> Result<(), EnvError> {
        if let Some(block) = &self.block {
            self.inner.unblock(block, "reverted by the drill").await.map_err(|e| EnvError::Revert(Box::new(e)))?;
            self.block = None;
        }
        if let Some(within) = self.failback.take() {
            self.inner.fail_back(within).await.map_err(|e| EnvError::Revert(Box::new(e)))?;
        }
        Ok(())
    }
}

impl Environment for AwsEnv {
    type Guard = AwsGuard;

    fn virtual_time(&self) -> bool {
        false
    }

    fn check(&self, scenario: &Scenario) -> Vec<Problem> {
        let mut problems = Vec::new();
        for fault in super::dry_run::each_fault(&scenario.fault) {
            let why = match fault {
                Fault::DbFailover { .. } | Fault::S3Block { bucket: Some(_), mode: BlockMode::Refuse, .. } => continue,
                Fault::S3Block { bucket: None, .. } => "s3_block in aws needs `bucket`: the bucket whose policy denies object reads and writes".to_string(),
                Fault::S3Block { .. } => "s3_block `mode: blackhole` (dropped packets) needs a network ACL or a security group on the callers' side, which firedrill does not change: it is not supported in aws; use `mode: refuse` (a policy deny, answered with 403)".to_string(),
                other => format!("`{}` is not supported in aws (db_failover and s3_block are)", other.kind()),
            };
            problems.push(Problem::new(scenario.positions.fault, why));
        }
        for (i, probe) in scenario.probes.iter().enumerate() {
            if matches!(probe.check, Check::Deployment { .. } | Check::Endpoints { .. }) {
                let why = format!("probe `{}`: `{}` probes are kube's", probe.name, probe.check.kind());
                problems.push(Problem::new(scenario.positions.probes[i], why));
            }
        }
        problems.extend(crate::env::load::surge_problems(scenario, |_| None));
        for (i, step) in scenario.steps.iter().enumerate() {
            let why = match &step.action {
                StepAction::Run { container: Some(_), .. } => {
                    "`container` is Docker's: in aws a `run` step runs on this machine"
                }
                StepAction::Start(_) => "`start` starts a Docker standby container; aws has none",
                StepAction::Kube(_) => "`kube:` steps act on a Kubernetes cluster; this scenario runs in aws",
                _ => continue,
            };
            problems.push(Problem::new(scenario.positions.steps[i], format!("step `{}`: {why}", step.name)));
        }
        problems
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        self.inner.prepare().await.map_err(|e| EnvError::Prepare(Box::new(e)))
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        let inner = &self.inner;
        if let Some(sample) = super::here::sample(probe, spec, &inner.loads, &inner.held).await {
            return sample;
        }
        match &spec.check {
            Check::Sql { dsn, query, pool: false } => crate::probe::sql(dsn, query).await,
            Check::Sql { dsn, query, pool: true } => inner.held.sql(probe, &spec.name, dsn, query).await,
            Check::S3 { endpoint, bucket, region, ca } => {
                match inner.s3_probe(probe, endpoint, bucket, region, ca).await {
                    Ok(client) => crate::probe::s3(&client, bucket).await,
                    Err(e) => Sample::fail(error_chain(&e)),
                }
            }
            Check::WriteLedger { .. } => Sample::fail("a write ledger is written, not sampled"),
            // Refused by `check`.
            other => Sample::fail(format!("`{}` probes are kube's", other.kind())),
        }
    }

    async fn write(&self, probe: usize, spec: &Probe, seq: u64) -> Result<(), EnvError> {
        let Check::WriteLedger { table, dsn } = &spec.check else {
            return Err(EnvError::Write("not a write ledger".into()));
        };
        let ledger = self.inner.ledger(probe, table);
        ledger.write(dsn, seq).await.map_err(|e| EnvError::Write(Box::new(AwsError::Ledger(e))))
    }

    async fn read_back(&self, probe: usize, spec: &Probe, acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        let Check::WriteLedger { table, dsn } = &spec.check else {
            return Err(EnvError::ReadBack("not a write ledger".into()));
        };
        let ledger = self.inner.ledger(probe, table);
        ledger.missing(dsn, acked).await.map_err(|e| EnvError::ReadBack(Box::new(AwsError::Ledger(e))))
    }

    async fn inject(&self, fault: &Fault) -> Result<AwsGuard, EnvError> {
        let inner = &self.inner;
        let mut guard = AwsGuard { inner: inner.clone(), block: None, failback: None };
        let made = match fault {
            Fault::DbFailover { db_instance, db_cluster, failback, confirm_within, .. } => {
                let within = confirm_within.map_or(failover::CONFIRM_WITHIN, |d| d.0);
                let db = match (db_instance, db_cluster) {
                    (Some(id), _) => Database::Instance(id.clone()),
                    (None, Some(id)) => Database::Cluster(id.clone()),
                    (None, None) => {
                        return Err(EnvError::Inject(Box::new(AwsError::Unsupported { kind: fault.kind() })))
                    }
                };
                inner.fail_over(db, within).await.map(|()| guard.failback = failback.then_some(within))
            }
            Fault::S3Block { bucket: Some(bucket), .. } => inner.block(bucket).await.map(|b| guard.block = Some(b)),
            other => Err(AwsError::Unsupported { kind: other.kind() }),
        };
        made.map_err(|e| EnvError::Inject(Box::new(e)))?;
        Ok(guard)
    }

    async fn run_step(&self, _index: usize, step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        match &step.action {
            StepAction::Run { argv, container: None } => {
                crate::process::run_with(argv, &[]).await.map_err(|e| EnvError::Step(Box::new(e)))
            }
            StepAction::Manual(text) => {
                super::confirm_manual(&step.name, text).await.map_err(|e| EnvError::Step(Box::new(e)))
            }
            // Refused by `check`.
            StepAction::Run { .. } | StepAction::Start(_) | StepAction::Kube(_) => Ok(None),
        }
    }

    async fn evidence(&self) -> Vec<Evidence> {
        let inner = &self.inner;
        let mut kept = inner.loads.evidence();
        kept.extend(inner.held.evidence());
        // What the control plane says after the drill, and its events over the drill's window.
        let failed_over = inner.failed_over.borrow().clone();
        if let (Some((db, before)), Ok(client), Some(since)) = (failed_over, inner.rds(), inner.started.get()) {
            match failover::state(&client, &db).await {
                Ok(after) => inner.said(format!("{db} after the drill: {after} (before: {before})")),
                Err(e) => inner.said(format!("{db} after the drill: {}", error_chain(&e))),
            }
            let events = match failover::events(&client, &db, since).await {
                Ok(events) if events.is_empty() => "none".to_string(),
                Ok(events) => events.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
                Err(e) => error_chain(&e),
            };
            kept.push(Evidence {
                source: format!("{} events of {db}", failover::RDS_EVIDENCE),
                text: events,
                truncated: false,
            });
        }
        let answers = inner.answers.borrow().join("\n");
        if !answers.is_empty() {
            kept.insert(0, Evidence { source: AWS_EVIDENCE.into(), text: answers, truncated: false });
        }
        kept
    }

    fn answers(&self) -> Vec<Answered> {
        let mut answers = self.inner.timed.take();
        answers.extend(self.inner.follow.borrow().iter().flat_map(Follow::take_changes));
        answers.extend(super::here::held_changes(&self.inner.held));
        answers.sort_by_key(|a| a.at);
        answers
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        self.inner.teardown().await.map_err(|e| EnvError::Teardown(Box::new(e)))
    }
}

impl AwsEnv {
    /// What a drill would touch, from the scenario alone: AWS is not asked.
    pub fn dry_run(&self, scenario: &Scenario) -> super::dry_run::DryRun {
        use super::dry_run::{DryRun, TouchKind};
        let mut run = DryRun::default();
        run.touch(TouchKind::Journal, format!("the revert journal in {}", self.inner.journal_dir.display()));
        for line in plan::lines(scenario, &self.inner.account) {
            run.touch(TouchKind::Fault, line.trim().to_string());
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let what = match &step.action {
                StepAction::Run { argv, .. } => format!("runs `{}` on this machine", argv.join(" ")),
                StepAction::Manual(text) => format!("a person confirms: {text}"),
                StepAction::Start(name) => format!("starts {name} (refused: aws has no standby containers)"),
                StepAction::Kube(action) => format!("{} (refused: not a Kubernetes cluster)", action.describe()),
            };
            run.touch(TouchKind::Step, format!("{} `{}`: {what}", i + 1, step.name));
        }
        for probe in &scenario.probes {
            run.touch(TouchKind::Probe, format!("{}: {}", probe.name, probe.check.target()));
        }
        run
    }
}

/// Whether a journalled AWS change is still in effect, and if not, why: for `firedrill
/// recover`.
pub async fn in_effect(run: &str, undo: &Undo) -> Result<Result<(), String>, AwsError> {
    match undo {
        Undo::RestoreBucketPolicy { region, endpoint_url, bucket, .. } => {
            let s3 = recovery_s3(region, endpoint_url).await;
            Ok(match s3_block::policy(&s3, bucket).await? {
                Some(policy) if s3_block::holds_block(&policy, run) => Ok(()),
                _ => Err(format!("bucket {bucket}'s policy no longer holds firedrill's statement")),
            })
        }
        other => Ok(Err(format!("{other:?} is not an AWS change"))),
    }
}

/// Undoes a journalled AWS change without the drill that made it (`firedrill recover`): what
/// it found and did.
pub async fn undo(run: &str, undo: &Undo) -> Result<String, AwsError> {
    match undo {
        Undo::RestoreBucketPolicy { region, endpoint_url, bucket, prior, blocking } => {
            let s3 = recovery_s3(region, endpoint_url).await;
            Ok(s3_block::recover(&s3, bucket, prior.as_deref(), blocking, run).await?)
        }
        other => Ok(format!("nothing to do: {other:?} is not an AWS change")),
    }
}

/// The S3 client of a recovery: the standard chain, in the region and endpoint the drill used.
async fn recovery_s3(region: &Option<String>, endpoint_url: &Option<String>) -> aws_sdk_s3::Client {
    let account = AwsAccount {
        region: region.clone(),
        endpoint_url: endpoint_url.clone(),
        allow_tag: String::new(),
        accounts: Vec::new(),
    };
    connect::s3(&connect::config(&account, connect::standard()).await)
}
