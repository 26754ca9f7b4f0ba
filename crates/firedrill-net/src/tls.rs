//! TLS for probes, on rustls: one crypto provider for the whole process, the platform's root
//! certificates by default (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL-based
//! tools do), and a private CA from a PEM file where a scenario gives `ca:`. Certificate
//! problems read as what they are ("certificate expired", "unknown issuer"), for the sample.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use firedrill_core::scenario::dsn::{PgTls, Verify};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why a TLS connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Neither the platform nor `ca:` gives a root certificate to trust.
    #[error(
        "no root certificates: none found on this machine (SSL_CERT_FILE, SSL_CERT_DIR) and no `ca:` given{}",
        if .unreadable.is_empty() { String::new() } else { format!(" ({})", .unreadable.join("; ")) }
    )]
    NoRoots {
        /// What the platform's roots could not be read from, and why.
        unreadable: Vec<String>,
    },
    /// The host is not a name or address a certificate can be checked against.
    #[error("`{host}` is not a valid TLS server name")]
    ServerName {
        /// The host.
        host: String,
    },
    /// The client certificate or its key could not be read.
    #[error("client certificate {path}: {why}")]
    ClientCert {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The roots give no verifier (none of them usable).
    #[error("certificate verifier: {0}")]
    Verifier(String),
    /// The handshake failed: the certificate, or the connection.
    #[error("TLS handshake: {0}")]
    Handshake(String),
}

/// Installs the process's crypto provider (ring), once. Several providers are compiled into
/// this binary (the AWS SDK brings its own), and rustls then refuses to pick one by itself.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err: another part of the process installed one first; it serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The protocol a TLS connection offers (ALPN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// `http/1.1`.
    Http1,
    /// `h2`.
    Http2,
    /// `postgresql`: offered as libpq 17 does; PostgreSQL 17 requires it of a direct TLS
    /// connection (`sslnegotiation=direct`), older servers ignore it.
    Postgresql,
}

/// The client configuration trusting the platform's roots, or only `ca` when given, offering
/// `alpn`; built once per CA and protocol and kept, since reading the platform's store takes
/// milliseconds a probe should not spend at every sample.
pub fn client_config(ca: Option<&Path>, alpn: Alpn) -> Result<Arc<ClientConfig>, TlsError> {
    config(Wanted { ca: ca.map(Path::to_path_buf), verify: Verify::ChainAndName, alpn, client_cert: None })
}

/// The client configuration of a PostgreSQL connection string's TLS parameters: its roots,
/// what it verifies, its client certificate; kept as [`client_config`]'s are.
pub fn postgres_config(tls: &PgTls) -> Result<Arc<ClientConfig>, TlsError> {
    let verify = tls.verify();
    // A CA given to a mode that verifies nothing is read by no one.
    let ca = (verify != Verify::Nothing).then(|| tls.ca_file().map(Path::to_path_buf)).flatten();
    config(Wanted { ca, verify, alpn: Alpn::Postgresql, client_cert: tls.client_cert.clone() })
}

/// What a client configuration is made of, and the key it is kept under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Wanted {
    /// The CA file trusted instead of the platform's roots.
    ca: Option<PathBuf>,
    /// What the server's certificate is checked for.
    verify: Verify,
    /// The protocol offered.
    alpn: Alpn,
    /// The client certificate and key files.
    client_cert: Option<(PathBuf, PathBuf)>,
}

fn config(wanted: Wanted) -> Result<Arc<ClientConfig>, TlsError> {
    static CONFIGS: OnceLock<Mutex<HashMap<Wanted, Arc<ClientConfig>>>> = OnceLock::new();
    let configs = CONFIGS.get_or_init(Mutex::default);
    if let Some(config) = configs.lock().unwrap_or_else(|e| e.into_inner()).get(&wanted) {
        return Ok(config.clone());
    }
    install_crypto_provider();
    let lenient = |chain| {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        ClientConfig::builder().dangerous().with_custom_certificate_verifier(Arc::new(Lenient { chain, provider }))
    };
    let builder = match wanted.verify {
        Verify::ChainAndName => ClientConfig::builder().with_root_certificates(roots(wanted.ca.as_deref())?),
        Verify::Chain => lenient(Some(
            WebPkiServerVerifier::builder(Arc::new(roots(wanted.ca.as_deref())?))
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?,
        )),
        Verify::Nothing => lenient(None),
    };
    let mut config = match &wanted.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let bad = |path: &Path, why: String| TlsError::ClientCert { path: path.to_path_buf(), why };
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(cert, e.to_string()))?;
            if chain.is_empty() {
                return Err(bad(cert, "no PEM certificate in it".into()));
            }
            let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
            builder.with_client_auth_cert(chain, private).map_err(|e| bad(key, e.to_string()))?
        }
    };
    config.alpn_protocols = match wanted.alpn {
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::Http2 => vec![b"h2".to_vec()],
        Alpn::Postgresql => vec![b"postgresql".to_vec()],
    };
    let config = Arc::new(config);
    configs.lock().unwrap_or_else(|e| e.into_inner()).insert(wanted, config.clone());
    Ok(config)
}

/// The platform's root certificates, or only those of the `ca` file when given.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    match ca {
        Some(path) => Ok(ca_file(path)?.1),
        None => {
            // Unreadable entries are skipped, as OpenSSL does; what is left must be something.
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::NoRoots { unreadable: found.errors.iter().map(ToString::to_string).collect() });
            }
            Ok(roots)
        }
    }
}

/// A CA file's PEM text, read and checked: for clients given the text rather than a
/// configuration (the AWS SDK's).
#[derive(Clone, Debug)]
pub struct CaPem(pub(crate) Vec<u8>);

impl CaPem {
    /// Reads `path`: at least one certificate, each usable as a root.
    pub fn read(path: &Path) -> Result<Self, TlsError> {
        Ok(CaPem(ca_file(path)?.0))
    }
}

/// A CA file's text and its certificates as roots: at least one, each usable, so that a
/// client given the text (the AWS SDK's, which panics on a bad one) gets a good one.
fn ca_file(path: &Path) -> Result<(Vec<u8>, RootCertStore), TlsError> {
    let bad = |why: String| TlsError::CaFile { path: path.to_path_buf(), why };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok((pem, roots))
}

/// libpq's modes that check less than a browser does: `verify-ca` (`chain`), where the chain
/// must lead to a trusted root but the certificate may be for any name (a server reached by an
/// address its certificate does not list); `require`, and `prefer` without a root certificate
/// (no `chain`), where any certificate is accepted. The handshake's signatures are checked
/// either way, so the connection is with the holder of the certificate's key.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        // The name is checked last, after the chain: a name error means the chain held.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection over `tcp` to `host`, its certificate checked against `config`'s roots.
pub async fn connect(config: Arc<ClientConfig>, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, TlsError> {
    // A bracketed IPv6 literal is a name only without its brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName { host: host.into() })?;
    TlsConnector::from(config).connect(name, tcp).await.map_err(|e| TlsError::Handshake(describe(&e, "`ca:`")))
}

/// A handshake failure in words: the certificate problems people meet by name; `ca_given_by`
/// says how a private CA is given where this connection was configured.
pub(crate) fn describe(e: &std::io::Error, ca_given_by: &str) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref()) {
        Some(rustls::Error::InvalidCertificate(cert)) => certificate_problem(cert, ca_given_by),
        _ => e.to_string(),
    }
}

/// The certificate problem among an error's causes, in words, if there is one: for clients
/// (the AWS SDK's) that wrap the handshake's error in their own.
pub fn certificate_problem_among(e: &(dyn std::error::Error + 'static), ca_given_by: &str) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(cert)) = e.downcast_ref() {
            return Some(certificate_problem(cert, ca_given_by));
        }
        // An I/O error hides the error it carries from `source()`, showing it as its own text.
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(carried) => Some(carried as &dyn std::error::Error),
            None => e.source(),
        };
    }
    None
}

fn certificate_problem(cert: &CertificateError, ca_given_by: &str) -> String {
    match cert {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "certificate expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".into()
        }
        CertificateError::UnknownIssuer => {
            format!("unknown issuer: the certificate is not signed by a trusted CA (a private CA is given with {ca_given_by})")
        }
        CertificateError::NotValidForName => "certificate not valid for this host name".into(),
        CertificateError::NotValidForNameContext { expected, .. } => {
            format!("certificate not valid for this host name ({})", expected.to_str())
        }
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadSignature => "certificate with a bad signature".into(),
        other => format!("invalid certificate: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::probe::request;

    /// A private CA, as a team's staging would have: its certificate and key.
    fn ca() -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "firedrill test CA");
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    /// A server certificate for `names`, signed by the CA; `expired` puts its validity in 2020.
    fn leaf(ca: &(rcgen::Certificate, KeyPair), names: &[&str], expired: bool) -> (CertificateDer<'static>, KeyPair) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
        (cert.der().clone(), key)
    }

    /// An HTTPS server on loopback answering every request `200 ok` with `cert`; its port.
    async fn serve(cert: CertificateDer<'static>, key: KeyPair) -> u16 {
        super::install_crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = tls.write_all(answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn error_text(e: crate::probe::ProbeError) -> String {
        firedrill_core::text::error_chain(&e)
    }

    #[tokio::test]
    async fn an_https_server_of_a_private_ca_is_trusted_with_ca_and_named_untrusted_without() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.0.pem()).unwrap();
        let (cert, key) = leaf(&ca, &["localhost"], false);
        let url = format!("https://localhost:{}/", serve(cert, key).await);

        let (status, body) =
            request("GET", &url, Some(&ca_file), Default::default()).await.expect("trusted through `ca`");
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let e = error_text(request("GET", &url, None, Default::default()).await.unwrap_err());
        assert!(e.contains("unknown issuer"), "{e}");
    }

    #[tokio::test]
    async fn expired_and_misnamed_certificates_are_named_as_such() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.0.pem()).unwrap();
        let (cert, key) = leaf(&ca, &["localhost"], true);
        let expired = format!("https://localhost:{}/", serve(cert, key).await);
        let e = error_text(request("GET", &expired, Some(&ca_file), Default::default()).await.unwrap_err());
        assert!(e.contains("certificate expired"), "{e}");

        let (cert, key) = leaf(&ca, &["shop.internal"], false);
        let misnamed = format!("https://localhost:{}/", serve(cert, key).await);
        let e = error_text(request("GET", &misnamed, Some(&ca_file), Default::default()).await.unwrap_err());
        assert!(e.contains("not valid for this host name"), "{e}");
    }

    #[tokio::test]
    async fn a_ca_file_without_a_certificate_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("empty.pem");
        std::fs::write(&ca_file, "not a certificate\n").unwrap();
        let e =
            error_text(request("GET", "https://localhost:1/", Some(&ca_file), Default::default()).await.unwrap_err());
        assert!(e.contains("empty.pem") && e.contains("no PEM certificate"), "{e}");
        let missing = error_text(
            request("GET", "https://localhost:1/", Some(Path::new("/nonexistent/ca.pem")), Default::default())
                .await
                .unwrap_err(),
        );
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }

    #[test]
    fn load_over_tls_is_answered_with_the_ca_and_counted_as_tls_errors_without() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.0.pem()).unwrap();
        let (cert, key) = leaf(&ca, &["localhost"], false);
        // The server runs on a runtime of its own: `load::run` makes its own.
        let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let url = format!("https://localhost:{}/", server.block_on(serve(cert, key)));
        let plan = |ca: Option<&Path>| {
            let mut plan = crate::load::Plan::steady(
                &url,
                50.0,
                std::time::Duration::from_secs(1),
                4,
                std::time::Duration::from_secs(2),
            );
            plan.ca = ca.map(Path::to_path_buf);
            plan
        };
        let trusted = crate::load::run(&plan(Some(&ca_file))).unwrap().summary;
        assert!(trusted.sent >= 45 && trusted.ok == trusted.sent, "{:?} {:?}", trusted.sent, trusted.errors);
        let report = crate::load::run(&plan(None)).unwrap();
        let untrusted = &report.summary;
        assert_eq!(untrusted.ok, 0);
        assert_eq!(
            untrusted.errors.get(&crate::load::ErrorClass::Tls),
            Some(&untrusted.sent),
            "{:?}",
            untrusted.errors
        );
        let why = report.tls_failure.unwrap_or_default();
        assert!(why.contains("unknown issuer"), "the first handshake's failure is said: {why}");
    }

    /// An HTTPS server speaking HTTP/2 only (ALPN `h2`), answering `200 ok`; its port.
    async fn serve_h2(cert: CertificateDer<'static>, key: KeyPair) -> u16 {
        super::install_crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config =
            rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let answer = hyper::service::service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                            hyper::body::Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), answer)
                        .await;
                });
            }
        });
        port
    }

    #[test]
    fn http2_load_over_tls_is_negotiated_by_alpn() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.0.pem()).unwrap();
        let (cert, key) = leaf(&ca, &["localhost"], false);
        let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let url = format!("https://localhost:{}/", server.block_on(serve_h2(cert, key)));
        let mut plan = crate::load::Plan::steady(
            &url,
            100.0,
            std::time::Duration::from_secs(1),
            2,
            std::time::Duration::from_secs(2),
        );
        plan.ca = Some(ca_file);
        plan.http2 = true;
        let report = crate::load::run(&plan).unwrap();
        let summary = &report.summary;
        assert!(summary.sent >= 90 && summary.ok == summary.sent, "{} sent, {:?}", summary.sent, summary.errors);
        // Every connection opened is counted, reconnections too: 100 requests over at most the
        // plan's 2 is multiplexing.
        assert!(report.connections <= 2, "{} connections opened for {} requests", report.connections, summary.sent);
    }
}
