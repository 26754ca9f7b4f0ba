//! The TLS parameters of a PostgreSQL connection string, as libpq reads them (`sslmode`,
//! `sslrootcert`, `sslcert`, `sslkey`), in both the `key=value` and the `postgresql://` URL
//! form. They are read here rather than by the PostgreSQL client because the client knows
//! only `disable`/`prefer`/`require`, and because a scenario's relative certificate files are
//! found from its folder and checked when it loads.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// How much TLS a connection asks for: libpq's `sslmode` (`allow` is not offered: it tries
/// plain text first, which no one wants from a probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, plain text when it does not; the server is not verified
    /// unless a root certificate is given. libpq's default.
    Prefer,
    /// TLS or no connection; the server is not verified unless a root certificate is given.
    Require,
    /// TLS, the server's certificate chain verified, its host name not.
    VerifyCa,
    /// TLS, the server's certificate chain and host name verified.
    VerifyFull,
}

/// The roots a server's certificate is verified against (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// `system`: the platform's root certificates.
    System,
    /// A PEM file of CA certificates.
    File(PathBuf),
}

/// What the server's certificate is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Nothing: the connection is encrypted, and the network trusted to reach the right server.
    Nothing,
    /// A chain to a trusted root.
    Chain,
    /// A chain to a trusted root, for the host name connected to.
    ChainAndName,
}

/// The TLS half of a connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTls {
    /// `sslmode`, or its default.
    pub mode: SslMode,
    /// `sslrootcert`; without it, verifying modes use the platform's roots.
    pub root_cert: Option<RootCert>,
    /// `sslcert` and `sslkey`: the client certificate and its key, PEM files.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl PgTls {
    /// What the server's certificate is checked for. As in libpq, `require` and `prefer` verify
    /// the chain when a root certificate file is given.
    pub fn verify(&self) -> Verify {
        match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Verify::ChainAndName,
            (SslMode::VerifyCa, _) | (SslMode::Require | SslMode::Prefer, Some(RootCert::File(_))) => Verify::Chain,
            _ => Verify::Nothing,
        }
    }

    /// The CA file to trust, or `None` for the platform's roots.
    pub fn ca_file(&self) -> Option<&Path> {
        match &self.root_cert {
            Some(RootCert::File(path)) => Some(path),
            _ => None,
        }
    }
}

/// Why a connection string's TLS parameters cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// `sslmode` has a value libpq does not know, or one not offered.
    #[error("unknown sslmode `{0}`: use disable, prefer, require, verify-ca or verify-full")]
    SslMode(String),
    /// `sslrootcert=system` with a mode that would not verify the server (libpq refuses it too).
    #[error("sslmode `{0}` with sslrootcert=system: the platform's roots are for verify-full")]
    WeakWithSystemRoots(String),
    /// Only one of `sslcert` and `sslkey` is given.
    #[error("a client certificate needs both sslcert and sslkey")]
    HalfClientCert,
    /// A quoted value is not closed, or a `key=value` pair has no `=`.
    #[error("malformed connection string near `{0}`")]
    Malformed(String),
}

/// The TLS parameters' names.
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// The parameters naming files.
const FILE_KEYS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

/// One parameter of a connection string: its name, its value decoded, and where the whole
/// parameter and its value stand in the text.
struct Param {
    key: String,
    value: String,
    whole: Range<usize>,
    value_at: Range<usize>,
}

/// Whether the string is in the URL form.
fn is_url(dsn: &str) -> bool {
    dsn.starts_with("postgresql://") || dsn.starts_with("postgres://")
}

/// The parameters of either form: a URL's query, or every `key=value` pair.
fn params(dsn: &str) -> Result<Vec<Param>, DsnError> {
    if is_url(dsn) {
        url_params(dsn)
    } else {
        key_value_params(dsn)
    }
}

/// `key = value` pairs, a value bare or single-quoted with `\` escapes, as libpq reads them.
fn key_value_params(dsn: &str) -> Result<Vec<Param>, DsnError> {
    let bytes = dsn.as_bytes();
    let mut params = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i == bytes.len() {
            return Ok(params);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = dsn[start..i].to_string();
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return Err(DsnError::Malformed(dsn[start..].to_string()));
        }
        i = skip_space(i + 1);
        let value_start = i;
        let mut value = String::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(DsnError::Malformed(dsn[start..].to_string())),
                    Some(b'\'') => break,
                    Some(b'\\') if i + 1 < bytes.len() => i += 1,
                    Some(_) => {}
                }
                let c = dsn[i..].chars().next().expect("within the text");
                value.push(c);
                i += c.len_utf8();
            }
            i += 1;
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            value = dsn[value_start..i].to_string();
        }
        params.push(Param { key, value, whole: start..i, value_at: value_start..i });
    }
}

/// The query parameters of a URL, percent-decoded.
fn url_params(dsn: &str) -> Result<Vec<Param>, DsnError> {
    let Some(query_start) = dsn.find('?').map(|q| q + 1) else { return Ok(Vec::new()) };
    let mut params = Vec::new();
    let mut at = query_start;
    for piece in dsn[query_start..].split('&') {
        let whole = at..at + piece.len();
        at = whole.end + 1;
        if piece.is_empty() {
            continue;
        }
        let (key, value) = piece.split_once('=').ok_or_else(|| DsnError::Malformed(piece.to_string()))?;
        let value_at = whole.start + key.len() + 1..whole.end;
        params.push(Param { key: percent_decode(key), value: percent_decode(value), whole, value_at });
    }
    Ok(params)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The connection string's TLS parameters, and the string without them but with an `sslmode`
/// the PostgreSQL client understands (the verifying modes are `require` to it: the
/// verification is the TLS connector's).
pub fn split_tls(dsn: &str) -> Result<(PgTls, String), DsnError> {
    let params = params(dsn)?;
    let value = |key: &str| params.iter().rev().find(|p| p.key == key).map(|p| p.value.as_str());
    let root_cert = value("sslrootcert").map(|v| match v {
        "system" => RootCert::System,
        file => RootCert::File(PathBuf::from(file)),
    });
    let mode = match value("sslmode") {
        None if root_cert == Some(RootCert::System) => SslMode::VerifyFull,
        None | Some("prefer") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => return Err(DsnError::SslMode(other.to_string())),
    };
    if root_cert == Some(RootCert::System) && mode != SslMode::VerifyFull {
        return Err(DsnError::WeakWithSystemRoots(value("sslmode").unwrap_or_default().to_string()));
    }
    let client_cert = match (value("sslcert"), value("sslkey")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => return Err(DsnError::HalfClientCert),
    };
    let client_mode = match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    let kept = params.iter().filter(|p| !TLS_KEYS.contains(&p.key.as_str()));
    let rest = if is_url(dsn) {
        let base = &dsn[..dsn.find('?').unwrap_or(dsn.len())];
        let query: Vec<&str> = kept.map(|p| &dsn[p.whole.clone()]).collect();
        let joiner = if query.is_empty() { "" } else { "&" };
        format!("{base}?{}{joiner}sslmode={client_mode}", query.join("&"))
    } else {
        let pairs: Vec<&str> = kept.map(|p| &dsn[p.whole.clone()]).collect();
        let joiner = if pairs.is_empty() { "" } else { " " };
        format!("{}{joiner}sslmode={client_mode}", pairs.join(" "))
    };
    Ok((PgTls { mode, root_cert, client_cert }, rest))
}

/// The certificate files a connection string names (`sslrootcert` other than `system`,
/// `sslcert`, `sslkey`), with the parameter naming each; none when it does not parse.
pub fn files(dsn: &str) -> Vec<(&'static str, PathBuf)> {
    let Ok(params) = params(dsn) else { return Vec::new() };
    params
        .iter()
        .filter_map(|p| {
            let key = FILE_KEYS.into_iter().find(|k| *k == p.key)?;
            (p.key != "sslrootcert" || p.value != "system").then(|| (key, PathBuf::from(&p.value)))
        })
        .collect()
}

/// The connection string with each certificate file's path replaced by `resolve(path)`; the
/// rest of the text unchanged.
pub fn map_files(dsn: &str, resolve: impl Fn(&Path) -> PathBuf) -> String {
    let Ok(params) = params(dsn) else { return dsn.to_string() };
    let mut out = dsn.to_string();
    // From the end, so that earlier positions stay valid.
    for p in params.iter().rev() {
        if !FILE_KEYS.contains(&p.key.as_str()) || (p.key == "sslrootcert" && p.value == "system") {
            continue;
        }
        let resolved = resolve(Path::new(&p.value)).display().to_string();
        if resolved == p.value {
            continue;
        }
        let text = if is_url(dsn) {
            percent_encode(&resolved)
        } else {
            format!("'{}'", resolved.replace('\\', "\\\\").replace('\'', "\\'"))
        };
        out.replace_range(p.value_at.clone(), &text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(dsn: &str) -> PgTls {
        split_tls(dsn).expect("valid").0
    }

    #[test]
    fn both_forms_give_the_same_parameters() {
        let kv = "host=db user=app sslmode=verify-full sslrootcert='/etc/ca dir/ca.pem' sslcert=c.pem sslkey=k.pem";
        let url = "postgresql://app@db/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&sslcert=c.pem&sslkey=k.pem";
        let expected = PgTls {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File("/etc/ca dir/ca.pem".into())),
            client_cert: Some(("c.pem".into(), "k.pem".into())),
        };
        assert_eq!(tls(kv), expected);
        assert_eq!(tls(url), expected);
        assert_eq!(split_tls(kv).unwrap().1, "host=db user=app sslmode=require");
        assert_eq!(split_tls(url).unwrap().1, "postgresql://app@db/shop?sslmode=require");
        let (_, rest) = split_tls("postgres://db/x?connect_timeout=1&sslmode=verify-ca&application_name=a").unwrap();
        assert_eq!(rest, "postgres://db/x?connect_timeout=1&application_name=a&sslmode=require");
    }

    #[test]
    fn defaults_are_libpqs() {
        let plain = tls("host=db user=app");
        assert_eq!((plain.mode, plain.verify()), (SslMode::Prefer, Verify::Nothing));
        assert_eq!(split_tls("host=db").unwrap().1, "host=db sslmode=prefer");
        assert_eq!(split_tls("postgresql://db").unwrap().1, "postgresql://db?sslmode=prefer");
        let system = tls("host=db sslrootcert=system");
        assert_eq!((system.mode, system.verify(), system.ca_file()), (SslMode::VerifyFull, Verify::ChainAndName, None));
        assert_eq!(tls("host=db sslmode=require").verify(), Verify::Nothing);
        assert_eq!(tls("host=db sslmode=require sslrootcert=ca.pem").verify(), Verify::Chain, "libpq's legacy rule");
        assert_eq!(tls("host=db sslmode=verify-ca").verify(), Verify::Chain);
        assert_eq!(tls("host = db  sslmode = disable").mode, SslMode::Disable);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(split_tls("host=db sslmode=verify_full").unwrap_err(), DsnError::SslMode("verify_full".into()));
        assert_eq!(split_tls("postgresql://db?sslmode=allow").unwrap_err(), DsnError::SslMode("allow".into()));
        assert_eq!(
            split_tls("host=db sslmode=require sslrootcert=system").unwrap_err(),
            DsnError::WeakWithSystemRoots("require".into())
        );
        assert_eq!(split_tls("host=db sslcert=c.pem").unwrap_err(), DsnError::HalfClientCert);
        assert!(matches!(split_tls("host=db password='open").unwrap_err(), DsnError::Malformed(_)));
        assert!(matches!(split_tls("host db").unwrap_err(), DsnError::Malformed(_)));
    }

    #[test]
    fn redaction_masks_the_password_and_shows_the_tls_parameters() {
        let kv = "host=db password=s3cret sslmode=verify-full sslrootcert=/etc/ca.pem";
        assert_eq!(crate::redact::dsn(kv), "host=db password=*** sslmode=verify-full sslrootcert=/etc/ca.pem");
        let url = "postgresql://app:s3cret@db/x?sslmode=require&sslcert=c.pem&sslkey=k.pem";
        assert_eq!(crate::redact::dsn(url), "postgresql://app:***@db/x?sslmode=require&sslcert=c.pem&sslkey=k.pem");
    }

    #[test]
    fn certificate_files_are_listed_and_resolved_in_place() {
        let kv = "host=${db} sslrootcert=ca.pem sslcert='my cert.pem' sslkey=/abs/k.pem password='it\\'s'";
        assert_eq!(
            files(kv),
            vec![("sslrootcert", "ca.pem".into()), ("sslcert", "my cert.pem".into()), ("sslkey", "/abs/k.pem".into())]
        );
        let resolve = |p: &Path| Path::new("/s").join(p);
        assert_eq!(
            map_files(kv, resolve),
            "host=${db} sslrootcert='/s/ca.pem' sslcert='/s/my cert.pem' sslkey=/abs/k.pem password='it\\'s'"
        );
        let url = "postgresql://u:p@db/x?sslrootcert=ca.pem&sslmode=verify-full";
        assert_eq!(map_files(url, resolve), "postgresql://u:p@db/x?sslrootcert=/s/ca.pem&sslmode=verify-full");
        assert!(files("host=db sslrootcert=system").is_empty());
        assert_eq!(map_files("host=db", resolve), "host=db");
    }
}
