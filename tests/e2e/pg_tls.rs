//! TLS to PostgreSQL and S3 as users meet it: a PostgreSQL server in Docker that accepts TLS
//! only (`hostssl`), with certificates this test made, probed with each `sslmode` as libpq
//! defines them; a drill of the docker environment whose database speaks TLS; and moto's S3
//! over https with a private CA.
//!
//! The Docker tests take the Docker lock (see `docker.rs`); run them alone, under
//! `flock /tmp/firedrill-docker.lock`.

use std::time::Duration;

use firedrill::drill::drill_once;
use firedrill::env::Sample;
use firedrill::probe::{self, ledger::Ledger};
use firedrill::timeline::{EventKind, Outcome};

use crate::common::TestCa;
use crate::docker::{assert_nothing_left, docker, engine};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f)
}

fn failed(s: &Sample) -> String {
    assert!(!s.ok, "expected a failed sample, got a healthy one");
    s.detail.clone().unwrap_or_default()
}

/// A PostgreSQL server accepting TLS connections only, with the certificate given, trusting
/// client certificates of the CA for the user `certuser`; removed when dropped.
struct TlsPostgres {
    name: String,
    port: u16,
}

impl TlsPostgres {
    fn start(ca: &TestCa, cert: &(String, String)) -> Self {
        let name = format!("firedrill-pgtls-{}", std::process::id());
        let _ = std::process::Command::new("docker").args(["rm", "-f", &name]).output();
        let script = "printf '%s\\n' \"$CA\" > /tmp/ca.crt && printf '%s\\n' \"$CERT\" > /tmp/server.crt && \
            printf '%s\\n' \"$KEY\" > /tmp/server.key && chmod 600 /tmp/server.key && \
            initdb -D /tmp/pg -U postgres --auth=trust >/dev/null && \
            printf 'local all all trust\\nhostssl all certuser all cert\\nhostssl all all all trust\\n' > /tmp/pg/pg_hba.conf && \
            exec postgres -D /tmp/pg -c listen_addresses='*' -c unix_socket_directories=/tmp -c ssl=on \
            -c ssl_cert_file=/tmp/server.crt -c ssl_key_file=/tmp/server.key -c ssl_ca_file=/tmp/ca.crt";
        let env = [format!("CA={}", ca.cert.pem()), format!("CERT={}", cert.0), format!("KEY={}", cert.1)];
        let mut args = vec!["run", "-d", "--name", &name, "--label", "firedrill.test=1", "--user", "postgres"];
        args.extend(["-p", "127.0.0.1::5432"]);
        for e in &env {
            args.extend(["-e", e]);
        }
        args.extend(["firedrill/base:latest", "bash", "-c", script]);
        docker(&args);
        let mut server = TlsPostgres { port: 0, name };
        let published = docker(&["port", &server.name, "5432/tcp"]);
        server.port = published[0].rsplit(':').next().and_then(|p| p.parse().ok()).expect("a published port");
        let ready = server.psql("CREATE ROLE certuser LOGIN");
        assert!(ready, "PostgreSQL did not start: {:?}", docker(&["logs", &server.name]));
        server
    }

    /// Runs `sql` in the container (over its socket) until it succeeds, for 30 s at most.
    fn psql(&self, sql: &str) -> bool {
        for _ in 0..300 {
            let out = std::process::Command::new("docker")
                .args(["exec", &self.name, "psql", "-h", "/tmp", "-U", "postgres", "-c", sql])
                .output()
                .expect("docker runs");
            if out.status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

#[test]
fn postgres_probes_speak_tls_with_libpqs_sslmodes() {
    let Some(_engine) = engine() else { return };
    let ca = TestCa::new("firedrill test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let (client_cert, client_key) = ca.sign(&[], "certuser");
    std::fs::write(dir.path().join("client.pem"), client_cert).unwrap();
    std::fs::write(dir.path().join("client.key"), client_key).unwrap();
    let server = TlsPostgres::start(&ca, &ca.sign(&["localhost"], "localhost"));
    let port = server.port;
    let ca = ca_file.display();
    let dsn = |host: &str, tls: &str| format!("host={host} port={port} user=postgres dbname=postgres {tls}");
    let sql = |dsn: String| block_on(probe::sql(&dsn, "SELECT 1"));

    assert_eq!(sql(dsn("localhost", &format!("sslmode=verify-full sslrootcert={ca}"))), Sample::ok());
    let untrusted = failed(&sql(dsn("localhost", "sslmode=verify-full")));
    assert!(untrusted.contains("unknown issuer") && untrusted.contains("sslrootcert"), "{untrusted}");
    let misnamed = failed(&sql(dsn("127.0.0.1", &format!("sslmode=verify-full sslrootcert={ca}"))));
    assert!(misnamed.contains("certificate not valid for this host name (127.0.0.1)"), "{misnamed}");
    assert_eq!(sql(dsn("127.0.0.1", &format!("sslmode=verify-ca sslrootcert={ca}"))), Sample::ok());
    let plain = failed(&sql(dsn("127.0.0.1", "sslmode=disable")));
    assert!(plain.contains("no pg_hba.conf entry") && plain.contains("no encryption"), "{plain}");
    assert_eq!(sql(dsn("127.0.0.1", "sslmode=require")), Sample::ok(), "require verifies nothing");
    assert_eq!(sql(dsn("127.0.0.1", "")), Sample::ok(), "prefer, the default, takes the TLS offered");
    // libpq's rule: `require` with a root certificate file verifies the chain.
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, TestCa::new("another CA").cert.pem()).unwrap();
    let wrong_root = failed(&sql(dsn("127.0.0.1", &format!("sslmode=require sslrootcert={}", other_ca.display()))));
    assert!(wrong_root.contains("unknown issuer"), "{wrong_root}");
    // libpq's `prefer` tries plain text after a failed handshake: refused here, both told.
    let fallback = failed(&sql(dsn("127.0.0.1", &format!("sslrootcert={}", other_ca.display()))));
    assert!(
        fallback.contains("no encryption")
            && fallback.contains("after TLS failed")
            && fallback.contains("unknown issuer"),
        "{fallback}"
    );
    let url = format!("postgresql://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}");
    assert_eq!(sql(url), Sample::ok());

    let client = |key: &str| format!("sslcert={0}/client.pem sslkey={0}/{key}", dir.path().display());
    let certuser = |tls: &str| format!("host=localhost port={port} user=certuser dbname=postgres {tls}");
    let with_cert = certuser(&format!("sslmode=verify-full sslrootcert={ca} {}", client("client.key")));
    assert_eq!(sql(with_cert), Sample::ok(), "the client certificate is accepted");
    let without = failed(&sql(certuser(&format!("sslmode=verify-full sslrootcert={ca}"))));
    assert!(without.contains("certificate"), "{without}");
    let unreadable = failed(&sql(certuser(&format!("sslmode=verify-full sslrootcert={ca} {}", client("nokey")))));
    assert!(unreadable.contains("client certificate") && unreadable.contains("nokey"), "{unreadable}");

    let ledger = Ledger::new("pg_tls_ledger", "tls-test");
    let dsn = dsn("localhost", &format!("sslmode=verify-full sslrootcert={ca}"));
    block_on(async {
        for seq in 1..=3 {
            ledger.write(&dsn, seq).await.expect("written over verify-full");
        }
        assert_eq!(ledger.missing(&dsn, &[1, 2, 3]).await.expect("read back"), Vec::<u64>::new());
        assert_eq!(ledger.missing(&dsn, &[4]).await.expect("read back"), vec![4]);
        // Nothing is left in the team's database: the records, and the table the ledger made.
        ledger.remove().await.expect("removed");
        let gone = probe::sql(&dsn, "SELECT 1 FROM pg_tls_ledger").await;
        assert!(failed(&gone).contains("relation \"pg_tls_ledger\" does not exist"), "{gone:?}");
        // A table the ledger did not create stays, without this drill's records.
        let shared = Ledger::new("pg_tls_shared", "tls-test");
        assert!(probe::sql(&dsn, "CREATE TABLE pg_tls_shared (drill text NOT NULL, seq bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (drill, seq))").await.ok);
        shared.write(&dsn, 1).await.expect("written");
        shared.remove().await.expect("removed");
        assert_eq!(shared.missing(&dsn, &[1]).await.expect("read back"), vec![1], "its records are gone");
        assert!(probe::sql(&dsn, "SELECT 1 FROM pg_tls_shared").await.ok, "the team's table stays");
    });
}

/// A docker drill whose database speaks TLS only: its server certificate is made inside the
/// container for the container's own address, signed by the test's CA (the stack format
/// mounts no files; the CA comes in as environment).
#[test]
fn a_docker_drill_probes_its_database_over_verify_full() {
    let Some(_engine) = engine() else { return };
    let ca = TestCa::new("firedrill test CA");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let command = "cd /tmp && printf '%s\\n' \"$CA_CERT\" > ca.crt && printf '%s\\n' \"$CA_KEY\" > ca.key && \
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -subj /CN=db -out server.csr 2>/dev/null && \
        printf 'subjectAltName=%s\\n' \"$(hostname -I | xargs -n1 printf 'IP:%s,' | sed 's/,$//')\" > san.ext && \
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null && \
        chmod 600 server.key && initdb -D /tmp/pg -U postgres --auth=trust >/dev/null && \
        printf 'local all all trust\\nhostssl all all all trust\\n' > /tmp/pg/pg_hba.conf && \
        exec postgres -D /tmp/pg -c listen_addresses='*' -c unix_socket_directories=/tmp -c ssl=on \
        -c ssl_cert_file=/tmp/server.crt -c ssl_key_file=/tmp/server.key";
    let dsn = "host=${db} user=postgres dbname=postgres sslmode=verify-full sslrootcert=ca.pem connect_timeout=1";
    let yaml = format!(
        r#"name: pg-tls
environment:
  kind: docker
  containers:
    - name: db
      user: postgres
      env:
        CA_CERT: {ca_cert:?}
        CA_KEY: {ca_key:?}
      command: [bash, -c, {command:?}]
      ready: {{ command: [pg_isready, -h, /tmp, -U, postgres] }}
fault: {{kind: container_pause, target: db, duration: 2s}}
probes:
  - name: db
    check: {{kind: sql, dsn: "{dsn}"}}
    interval: 100ms
    timeout: 1s
  - name: ledger
    check: {{kind: write_ledger, dsn: "{dsn}"}}
    interval: 100ms
    timeout: 1s
stability: {{samples: 3, min_duration: 500ms}}
deadline: 60s
"#,
        ca_cert = ca.cert.pem(),
        ca_key = ca.key.serialize_pem(),
    );
    let path = dir.path().join("pg-tls.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let scenario = firedrill::scenario::load(&path).expect("it loads");
    let record = drill_once(&scenario, 1, 1, true, None).expect("the drill runs");
    assert_nothing_left();
    let samples = |ok: bool| {
        record
            .timeline
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Sample { probe, ok: o, detail, .. } if probe == "db" && *o == ok => Some(detail.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(record.outcome, Outcome::Recovered, "failed samples: {:?}", samples(false));
    assert!(samples(true).len() >= 6, "healthy before and after the pause: {:?}", samples(false));
    let missing = record.timeline.events.iter().find_map(|e| match &e.kind {
        EventKind::LedgerReadBack { missing, .. } => Some(missing.clone()),
        _ => None,
    });
    assert_eq!(missing, Some(vec![]), "the ledger wrote and read back over verify-full");
    let written =
        record.timeline.events.iter().filter(|e| matches!(e.kind, EventKind::LedgerWrite { acked: true, .. }));
    assert!(written.count() >= 3, "acknowledged ledger writes");
}

#[test]
fn s3_over_https_trusts_the_ca_given_and_names_an_unknown_issuer_without() {
    let ca = TestCa::new("firedrill test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.sign(&["localhost"], "localhost");
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let Some((_server, endpoint)) = crate::common::Moto::start(Some(dir.path())) else { return };
    let trusted = firedrill::tls::CaPem::read(&dir.path().join("ca.pem")).expect("a CA");
    let client = probe::s3_client(&endpoint, "us-east-1", Some(&trusted));
    block_on(async {
        client.create_bucket().bucket("drills").send().await.expect("the bucket is created over https");
        assert_eq!(probe::s3(&client, "drills").await, Sample::ok());
        let objects = || async {
            let listed = client.list_objects_v2().bucket("drills").send().await.expect("listed");
            listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect::<Vec<_>>()
        };
        assert_eq!(objects().await, vec!["firedrill-probe".to_string()]);
        probe::s3_remove(&client, "drills").await.expect("the probe's object is removed");
        assert_eq!(objects().await, Vec::<String>::new(), "nothing left in the team's bucket");
        let untrusting = probe::s3_client(&endpoint, "us-east-1", None);
        let e = failed(&probe::s3(&untrusting, "drills").await);
        assert!(e.contains("unknown issuer") && e.contains("`ca:`"), "{e}");
    });
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate").unwrap();
    let e = firedrill::tls::CaPem::read(&empty).unwrap_err().to_string();
    assert!(e.contains("empty.pem") && e.contains("no PEM certificate"), "{e}");
}
