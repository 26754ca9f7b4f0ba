//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use firedrill::record::DrillRecord;
use firedrill::scenario::{Scenario, ScenarioError};
use firedrill::timeline::{Event, EventKind};

/// The repository root (where `scenarios/` is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped scenario file, by file name (`db-failover.yaml`).
pub fn shipped(name: &str) -> PathBuf {
    repo().join("scenarios").join(name)
}

/// The text of a shipped scenario.
pub fn shipped_text(name: &str) -> String {
    std::fs::read_to_string(shipped(name)).unwrap_or_else(|e| panic!("reading scenario {name}: {e}"))
}

/// The four scenario files shipped in `scenarios/`.
pub const SHIPPED: [&str; 4] = ["db-failover.yaml", "node-drain.yaml", "s3-block.yaml", "traffic-surge.yaml"];

/// The `firedrill` binary, run from the repository root, with a state folder of this test
/// process's own, so that no test reads or leaves revert journals in the user's.
pub fn firedrill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    cmd.current_dir(repo());
    cmd.env("XDG_STATE_HOME", std::env::temp_dir().join(format!("firedrill-e2e-state-{}", std::process::id())));
    cmd
}

/// Runs the binary to completion with `args`.
pub fn run(args: &[&str]) -> Output {
    firedrill().args(args).output().expect("the firedrill binary runs")
}

/// The output's stdout and stderr as text.
pub fn texts(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The JSON files in a folder, sorted by name.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// A written record, parsed.
pub fn load_record(path: &Path) -> DrillRecord {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a DrillRecord: {e}", path.display()))
}

/// Parses scenario text as the file `test.yaml`.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    firedrill::scenario::parse(text, Path::new("test.yaml"))
}

/// Parses scenario text that must be valid.
pub fn scenario(text: &str) -> Scenario {
    parse(text).unwrap_or_else(|e| panic!("test scenario is invalid:\n{e}"))
}

/// The 1-based number of the only line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1).collect();
    assert_eq!(lines.len(), 1, "`{needle}` should be on exactly one line, found on {lines:?}");
    lines[0]
}

/// Replaces exactly one occurrence of `from` in `text`.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` should occur exactly once");
    text.replacen(from, to, 1)
}

/// The events of a kind, chosen by a predicate.
pub fn events<'a>(events: &'a [Event], pick: impl Fn(&EventKind) -> bool + 'a) -> Vec<&'a Event> {
    events.iter().filter(|e| pick(&e.kind)).collect()
}

/// Whether a timeline has an event the predicate picks.
pub fn has(events: &[Event], pick: impl Fn(&EventKind) -> bool) -> bool {
    events.iter().any(|e| pick(&e.kind))
}

/// The binary running in the background, its stderr (progress lines) read as they come.
pub struct Running {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    stderr: JoinHandle<String>,
    stdout: JoinHandle<String>,
}

impl Running {
    /// Starts `cmd` with its output piped.
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let err = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
                all += &line;
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let mut out = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut all);
            all
        });
        Running { child, lines, stderr, stdout }
    }

    /// Waits (30 s at most) for a stderr line containing `text`.
    pub fn wait_for_line(&self, text: &str) {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no line `{text}`"));
            if line.contains(text) {
                return;
            }
        }
    }

    /// Waits for the process to end, killing it and failing when it has not 10 s after
    /// `since` (when it was told to stop); its status, stdout and stderr.
    pub fn finish(mut self, since: Instant) -> (ExitStatus, String, String) {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the process") {
                break status;
            }
            if since.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("the process did not stop within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stdout.join().expect("stdout read"), self.stderr.join().expect("stderr read"))
    }
}

/// A private CA the tests make, to sign the certificates of their TLS servers and clients.
pub(crate) struct TestCa {
    pub(crate) cert: rcgen::Certificate,
    pub(crate) key: rcgen::KeyPair,
}

impl TestCa {
    /// A CA named `name`: two of one name would be taken for each other.
    pub(crate) fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A certificate it signs, for `names` (subject alternative names) and common name `cn`:
    /// the certificate's PEM and its key's.
    pub(crate) fn sign(&self, names: &[&str], cn: &str) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, &self.cert, &self.key).unwrap().pem(), key.serialize_pem())
    }
}

/// A moto S3 server on a free loopback port, killed when dropped.
pub struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Moto {
    /// Starts moto over http, or over https with `tls`'s `cert.pem` and `key.pem` (for
    /// `localhost`): the server and its endpoint. `None`, said, when moto is not installed,
    /// which CI must not be.
    pub fn start(tls: Option<&Path>) -> Option<(Moto, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address").port();
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(dir) = tls {
            command.arg("--ssl-cert").arg(dir.join("cert.pem")).arg("--ssl-key").arg(dir.join("key.pem"));
        }
        let Ok(child) = command.spawn() else {
            assert!(std::env::var("CI").is_err(), "CI must run the S3 tests: pip install 'moto[server]'");
            eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
            return None;
        };
        let server = Moto(child);
        let endpoint = match tls {
            None => format!("http://127.0.0.1:{port}"),
            Some(_) => format!("https://localhost:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((server, endpoint));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on port {port}");
    }
}

/// A PostgreSQL server of this machine's (`initdb` and `postgres` on the PATH; run as the
/// `postgres` user when the tests run as root, which PostgreSQL refuses), on a free loopback
/// port, trusting every local connection; stopped when dropped.
pub(crate) struct LocalPostgres {
    _dir: tempfile::TempDir,
    server: std::process::Child,
    pub(crate) address: std::net::SocketAddr,
}

impl LocalPostgres {
    /// Started and answering, or `None` (said on stderr) when it cannot be; with `CI=true`,
    /// a PostgreSQL that cannot be started fails the test instead.
    pub(crate) fn start() -> Option<LocalPostgres> {
        let started = Self::try_start();
        if let Err(why) = &started {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "no local PostgreSQL under CI: {why}");
            eprintln!("skipped: no local PostgreSQL ({why})");
        }
        started.ok()
    }

    fn try_start() -> Result<LocalPostgres, String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = is_root();
        // setpriv executes the server in its place: the child is the postmaster itself.
        let command = |program: &str| {
            let mut c = if root { std::process::Command::new("setpriv") } else { std::process::Command::new(program) };
            if root {
                c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", program]);
            }
            c
        };
        if root {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).map_err(|e| e.to_string())?;
        }
        let data = dir.path().join("data");
        let initdb = command("initdb").arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust"]).output();
        match initdb {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr).trim())),
            Err(e) => return Err(format!("initdb: {e}")),
        }
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let server = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-p", &port.to_string()])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let postgres = LocalPostgres { _dir: dir, server, address };
        let since = Instant::now();
        let dsn = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=1");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        while !runtime.block_on(firedrill::probe::sql(&dsn, "SELECT 1")).ok {
            if since.elapsed() > Duration::from_secs(20) {
                return Err("postgres did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(postgres)
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        let _ = std::process::Command::new("kill").arg("-INT").arg(self.server.id().to_string()).status();
        let _ = self.server.wait();
    }
}
