//! The probes that keep something between samples, against real servers on loopback: a `dns`
//! probe asking a DNS server of the test's own, which moves a database name's CNAME from one
//! host to another mid-test as an RDS failover does (the flip kept with its time, as evidence
//! and as a timeline event of a drill); a pooled `sql` probe against a local PostgreSQL whose
//! server kills the pooled connection; the same probes through the docker environment, whose
//! database restarts; and an `s3` probe's client from the AWS SDK's standard chain, against
//! moto.
//!
//! The Docker test takes the Docker lock (see `docker.rs`); run it alone, under
//! `flock /tmp/firedrill-docker.lock`.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::drill::drill_in;
use firedrill::env::{Answered, EnvError, Environment, Evidence, FaultGuard, Sample};
use firedrill::probe::held::{HeldProbes, DNS_SOURCE};
use firedrill::scenario::{Check, Fault, Probe, Problem, ResolvedStep, Scenario};
use firedrill::timeline::EventKind;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::common::{events, scenario, LocalPostgres};

/// The database's name, as an RDS endpoint is: a CNAME to the primary's host.
const DB_NAME: &str = "shop-db.drill.test";
/// The hosts the name points to, before and after the failover, with their addresses.
const HOSTS: [(&str, Ipv4Addr); 2] =
    [("ec2-a.drill.test", Ipv4Addr::new(10, 0, 0, 1)), ("ec2-b.drill.test", Ipv4Addr::new(10, 0, 0, 2))];

/// A DNS server on loopback (UDP) answering for [`DB_NAME`] with a CNAME to the current host,
/// and for each host of [`HOSTS`] with its address; stopped when dropped.
struct DnsServer {
    address: SocketAddr,
    /// The index in [`HOSTS`] the name points to.
    current: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    fn start() -> DnsServer {
        DnsServer::flipped_by(None)
    }

    /// A server that points the name at the second host once `file` exists: a drill's step
    /// can flip it, as a runbook's DNS change would.
    fn flipped_by(file: Option<PathBuf>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback UDP port");
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let address = socket.local_addr().unwrap();
        let current = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (serving, stopping) = (current.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buffer) else { continue };
                let flipped = file.as_ref().is_some_and(|f| f.exists());
                let host = HOSTS[if flipped { 1 } else { *serving.lock().unwrap() }];
                if let Some(reply) = reply(&buffer[..len], host) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer { address, current, stop }
    }

    /// Points the name at the other host: the failover's DNS flip.
    fn flip(&self) {
        let mut current = self.current.lock().unwrap();
        *current = 1 - *current;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The answer to `query`: the CNAME of [`DB_NAME`] to `host` (with its address, for an A
/// query), a host's own address, or an empty answer.
fn reply(query: &[u8], host: (&str, Ipv4Addr)) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let mut response = Message::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    let asked = question.name.to_string();
    let target = Name::from_str(&format!("{}.", host.0)).ok()?;
    let address = |name: Name, ip: Ipv4Addr| Record::from_rdata(name, 5, RData::A(A(ip)));
    if asked == format!("{DB_NAME}.") {
        response.add_answer(Record::from_rdata(question.name.clone(), 5, RData::CNAME(CNAME(target.clone()))));
        if question.query_type == RecordType::A {
            response.add_answer(address(target, host.1));
        }
    } else if let Some((_, ip)) = HOSTS.iter().find(|(name, _)| asked == format!("{name}.")) {
        if question.query_type == RecordType::A {
            response.add_answer(address(question.name.clone(), *ip));
        }
    }
    response.to_vec().ok()
}

/// A `dns` probe's sample text, or "ok".
fn said(sample: &Sample) -> String {
    if sample.ok {
        "ok".into()
    } else {
        sample.detail.clone().unwrap_or_default()
    }
}

#[tokio::test]
async fn a_dns_probe_keeps_the_cname_flip_with_when_it_was_seen() {
    let server = DnsServer::start();
    let held = HeldProbes::default();
    let at = server.address.to_string();
    let sample = |expect: Option<&'static str>| held.dns(0, "db-dns", DB_NAME, Some(&at), expect);
    assert_eq!(said(&sample(Some("ec2-a")).await), "ok");
    assert_eq!(said(&sample(None).await), "ok");
    assert!(held.take_changes().is_empty(), "the first answer is no change");
    let before = tokio::time::Instant::now();
    server.flip();
    let lacking = said(&sample(Some("ec2-a")).await);
    assert_eq!(lacking, "shop-db.drill.test → ec2-b.drill.test → 10.0.0.2: lacks `ec2-a`");
    let after = tokio::time::Instant::now();
    assert_eq!(said(&sample(Some("10.0.0.2")).await), "ok");
    let changes = held.take_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let flip = &changes[0];
    assert!(flip.at >= before && flip.at <= after, "the flip is stamped when its answer came");
    assert_eq!(flip.source, DNS_SOURCE);
    assert_eq!(
        flip.text,
        "shop-db.drill.test: shop-db.drill.test → ec2-b.drill.test → 10.0.0.2 (was shop-db.drill.test → ec2-a.drill.test → 10.0.0.1) [probe `db-dns`]"
    );
    assert!(held.take_changes().is_empty(), "a change is handed out once");
    // A name the server does not know resolves to nothing: a failed sample, and a change of
    // its own probe's answers only once it had one.
    let unknown = said(&held.dns(1, "other", "nowhere.drill.test", Some(&at), None).await);
    assert!(unknown.starts_with("nowhere.drill.test: "), "{unknown}");
    let evidence = held.evidence();
    let timeline = evidence.iter().find(|e| e.source == "DNS timeline of shop-db.drill.test (probe `db-dns`)").unwrap();
    let lines: Vec<&str> = timeline.text.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("Z  shop-db.drill.test → ec2-a.drill.test → 10.0.0.1"), "{lines:?}");
    assert!(lines[1].ends_with("Z  shop-db.drill.test → ec2-b.drill.test → 10.0.0.2"), "{lines:?}");
}

/// An environment whose only system is the DNS server: its fault is the failover's flip, its
/// probes the held ones.
struct DnsEnv {
    server: DnsServer,
    held: HeldProbes,
}

struct NoRevert;

impl FaultGuard for NoRevert {
    async fn revert(&mut self) -> Result<(), EnvError> {
        Ok(())
    }
}

impl Environment for DnsEnv {
    type Guard = NoRevert;

    fn virtual_time(&self) -> bool {
        false
    }

    fn check(&self, _scenario: &Scenario) -> Vec<Problem> {
        Vec::new()
    }

    async fn prepare(&self) -> Result<(), EnvError> {
        Ok(())
    }

    async fn sample(&self, probe: usize, spec: &Probe) -> Sample {
        let Check::Dns { name, server, expect } = &spec.check else { panic!("a dns probe") };
        self.held.dns(probe, &spec.name, name, server.as_deref(), expect.as_deref()).await
    }

    async fn write(&self, _probe: usize, _spec: &Probe, _seq: u64) -> Result<(), EnvError> {
        unreachable!("no ledger")
    }

    async fn read_back(&self, _probe: usize, _spec: &Probe, _acked: &[u64]) -> Result<Vec<u64>, EnvError> {
        unreachable!("no ledger")
    }

    async fn inject(&self, _fault: &Fault) -> Result<NoRevert, EnvError> {
        self.server.flip();
        Ok(NoRevert)
    }

    async fn run_step(&self, _index: usize, _step: &ResolvedStep) -> Result<Option<String>, EnvError> {
        Ok(None)
    }

    async fn evidence(&self) -> Vec<Evidence> {
        self.held.evidence()
    }

    fn answers(&self) -> Vec<Answered> {
        let changes = self.held.take_changes().into_iter();
        changes.map(|c| Answered { at: c.at, source: c.source, text: c.text }).collect()
    }

    async fn teardown(&self) -> Result<(), EnvError> {
        Ok(())
    }
}

#[test]
fn a_drill_records_the_dns_flip_in_its_timeline_after_t0() {
    let env = DnsEnv { server: DnsServer::start(), held: HeldProbes::default() };
    let s = scenario(&format!(
        "name: dns-flip
fault: {{ kind: db_failover }}
probes:
  - name: db-dns
    check: {{ kind: dns, name: {DB_NAME}, server: \"{}\", expect: drill.test }}
    interval: 100ms
deadline: 20s
",
        env.server.address
    ));
    let r = drill_in(&s, &env, 1, 1, None, std::future::pending::<()>()).expect("the drill runs");
    let t0 = r.timeline.t0().expect("the fault became active");
    let flips = events(&r.timeline.events, |k| matches!(k, EventKind::Answered { source, .. } if source == DNS_SOURCE));
    assert_eq!(flips.len(), 1, "{flips:?}");
    let EventKind::Answered { text, .. } = &flips[0].kind else { unreachable!() };
    assert!(text.contains("→ ec2-b.drill.test → 10.0.0.2 (was shop-db.drill.test → ec2-a"), "{text}");
    assert!(flips[0].t_us >= t0 && flips[0].t_us < t0 + 1_000_000, "flip at {} µs, t0 at {t0} µs", flips[0].t_us);
    let timeline = events(
        &r.timeline.events,
        |k| matches!(k, EventKind::Output { source, .. } if source.starts_with("DNS timeline of shop-db")),
    );
    assert_eq!(timeline.len(), 1, "the DNS timeline is evidence");
}

/// `SELECT` on a new connection as the test's administrator.
async fn admin(server: &LocalPostgres, sql: &str) -> Vec<i32> {
    let dsn = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", server.address.port());
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.expect("the admin connects");
    tokio::spawn(connection);
    client.query(sql, &[]).await.expect("the admin's query").iter().map(|row| row.get(0)).collect()
}

/// The server processes of the pooled probe's connections.
async fn pooled_pids(server: &LocalPostgres) -> Vec<i32> {
    admin(server, "SELECT pid FROM pg_stat_activity WHERE application_name = 'firedrill-pool'").await
}

#[test]
fn a_pooled_sql_probe_keeps_one_connection_until_a_sample_on_it_fails() {
    // Started before the test's runtime: starting waits on a runtime of its own.
    let Some(server) = LocalPostgres::start() else { return };
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(pooled_probe(&server));
}

async fn pooled_probe(server: &LocalPostgres) {
    let port = server.address.port();
    let dsn = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres application_name=firedrill-pool connect_timeout=1"
    );
    let held = HeldProbes::default();
    for _ in 0..3 {
        assert_eq!(said(&held.sql(0, "db", &dsn, "SELECT 1").await), "ok");
    }
    let first = pooled_pids(server).await;
    assert_eq!(first.len(), 1, "three samples, one connection: {first:?}");
    // The server ends the pooled connection, as a failover's restart does: the next sample
    // meets the dead connection and fails, while a new connection is fine at once.
    admin(server, &format!("SELECT pg_terminate_backend({})::int", first[0])).await;
    assert!(firedrill::probe::sql(&dsn, "SELECT 1").await.ok, "a new connection works at once");
    let failed = said(&held.sql(0, "db", &dsn, "SELECT 1").await);
    assert_ne!(failed, "ok", "the pooled connection was killed");
    assert_eq!(said(&held.sql(0, "db", &dsn, "SELECT 1").await), "ok", "the sample after a failure reconnects");
    let second = pooled_pids(server).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "a new server process");
    // A sample dropped at the probe's timeout takes its connection with it.
    let timed_out =
        tokio::time::timeout(Duration::from_millis(200), held.sql(0, "db", &dsn, "SELECT pg_sleep(5)")).await;
    assert!(timed_out.is_err());
    assert_eq!(said(&held.sql(0, "db", &dsn, "SELECT 1").await), "ok");
    let evidence = held.evidence();
    let history = &evidence.iter().find(|e| e.source == "pooled connection (probe `db`)").expect("its history").text;
    let lines: Vec<&str> = history.lines().map(|l| l.split_once("  ").map(|(_, what)| what).unwrap_or(l)).collect();
    assert_eq!(lines.len(), 5, "{history}");
    assert_eq!(lines[0], format!("connection opened (server process {})", first[0]));
    assert!(lines[1].starts_with("connection dropped after a failed sample: "), "{history}");
    assert_eq!(lines[2], format!("connection opened (server process {})", second[0]));
    assert_eq!(lines[3], "connection dropped: a sample on it did not finish within the probe's timeout");
    assert!(lines[4].starts_with("connection opened (server process "), "{history}");
}

#[test]
fn the_docker_environment_keeps_the_dns_flip_and_the_pooled_connections_history() {
    let Some(_engine) = crate::docker::engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let flip = dir.path().join("flipped");
    let server = DnsServer::flipped_by(Some(flip.clone()));
    let dsn = "host=${db} port=5432 user=postgres dbname=postgres connect_timeout=1";
    let s = scenario(&format!(
        r#"name: managed-db
environment:
  kind: docker
  containers:
    - name: db
      user: postgres
      command:
        - bash
        - -c
        - >-
          if [ ! -d /tmp/pg ]; then initdb -D /tmp/pg -U postgres --auth=trust >/dev/null &&
          printf 'host all all all trust\n' >> /tmp/pg/pg_hba.conf; fi &&
          exec postgres -D /tmp/pg -c listen_addresses='*' -c unix_socket_directories=/tmp
      ready: {{ command: [pg_isready, -h, 127.0.0.1, -U, postgres] }}
fault: {{ kind: container_restart, target: db, grace_period: 0s }}
procedure:
  kind: steps
  steps:
    - name: point the name at the new primary
      run: [touch, "{}"]
probes:
  - name: new-connections
    check: {{ kind: sql, dsn: "{dsn}" }}
    interval: 100ms
    timeout: 1s
  - name: pooled
    check: {{ kind: sql, dsn: "{dsn}", pool: true }}
    interval: 100ms
    timeout: 1s
  - name: db-dns
    check: {{ kind: dns, name: {DB_NAME}, server: "{}", expect: drill.test }}
    interval: 100ms
stability: {{ samples: 3, min_duration: 500ms }}
deadline: 60s
"#,
        flip.display(),
        server.address
    ));
    let r = firedrill::drill::drill_once(&s, 1, 1, true, None).expect("the drill runs");
    crate::docker::assert_nothing_left();
    let said: Vec<String> = r
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SteadyState { ok: false, detail, .. } => detail.clone(),
            EventKind::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(r.outcome, firedrill::timeline::Outcome::Recovered, "{said:?}");
    let t0 = r.timeline.t0().expect("the fault became active");
    let flips = events(&r.timeline.events, |k| matches!(k, EventKind::Answered { source, .. } if source == DNS_SOURCE));
    assert_eq!(flips.len(), 1, "{flips:?}");
    assert!(flips[0].t_us >= t0, "the flip came with the step, after t0");
    let output = |prefix: &str| {
        r.timeline.events.iter().find_map(|e| match &e.kind {
            EventKind::Output { source, text, .. } if source.starts_with(prefix) => Some(text.clone()),
            _ => None,
        })
    };
    let dns = output("DNS timeline of shop-db.drill.test").expect("the DNS timeline is evidence");
    assert_eq!(dns.lines().count(), 2, "{dns}");
    let pool = output("pooled connection (probe `pooled`)").expect("the pool's history is evidence");
    let opened = pool.lines().filter(|l| l.contains("connection opened")).count();
    assert!(opened >= 2, "the restart ended the pooled connection, and a new one was opened: {pool}");
    assert!(pool.contains("connection dropped"), "{pool}");
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn an_s3_probe_without_endpoint_takes_its_client_from_the_standard_chain() {
    firedrill::tls::install_crypto_provider();
    let Some((_moto, endpoint)) = crate::common::Moto::start(None) else { return };
    let credentials = aws_sdk_s3::config::Credentials::new("firedrill", "firedrill", None, None, "test");
    // As `AWS_ENDPOINT_URL` and the credentials' variables would set them.
    let loader = firedrill::env::aws::connect::standard().credentials_provider(credentials).endpoint_url(&endpoint);
    use firedrill::env::aws::connect;
    let client = connect::s3(&connect::load(loader, Some("us-east-1"), None, None).await);
    assert_eq!(client.config().region().map(|r| r.as_ref()), Some("us-east-1"));
    client.create_bucket().bucket("drills").send().await.expect("moto makes the bucket");
    let sample = firedrill::probe::s3(&client, "drills").await;
    assert!(sample.ok, "{:?}", sample.detail);
    firedrill::probe::s3_remove(&client, "drills").await.expect("the probe's object removed");
}
