//! Masking of secrets before anything is printed or stored: connection strings carry
//! passwords, and a drill report is read by people who must not see them.

/// Masks the password of a connection string, in URL form
/// (`postgres://user:secret@host/db`) and in key-value form (`password=secret`).
pub fn dsn(text: &str) -> String {
    let mut out = text.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        // Credentials are in the authority only: an `@` in the path (`scenario@base64`) is not.
        let authority_end = out[rest_start..].find(['/', '?', '#']).map_or(out.len(), |i| i + rest_start);
        if let Some(at) = out[rest_start..authority_end].rfind('@').map(|i| i + rest_start) {
            if let Some(colon) = out[rest_start..at].find(':').map(|i| i + rest_start) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    let lower = out.to_ascii_lowercase();
    if let Some(start) = lower.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..].find([' ', '&', ';']).map(|i| i + value_start).unwrap_or(out.len());
        out.replace_range(value_start..value_end, "***");
    }
    out
}

/// Masks every secret in a text: passwords of connection strings, `token=`/`secret=`/
/// `password=`/`apikey=` values, bearer tokens (every occurrence of each), and each of the
/// `listed` strings.
pub fn text(s: &str, listed: &[String]) -> String {
    let mut out: String = s.split(' ').map(dsn).collect::<Vec<_>>().join(" ");
    for key in ["password=", "token=", "secret=", "apikey=", "api_key=", "bearer "] {
        out = mask_after(&out, key);
    }
    for secret in listed.iter().filter(|l| !l.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Masks the value after every case-insensitive occurrence of `key`, up to a separator.
fn mask_after(text: &str, key: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(key).map(|i| i + at) {
        let from = found + key.len();
        let to = text[from..].find([' ', '&', ';', '"', '\'', ',']).map_or(text.len(), |i| i + from);
        out += &text[at..from];
        if to > from {
            out += "***";
        }
        at = to;
    }
    out += &text[at..];
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_passwords_in_both_forms() {
        assert_eq!(super::dsn("postgres://app:s3cret@db:5432/shop"), "postgres://app:***@db:5432/shop");
        assert_eq!(super::dsn("host=db user=app password=s3cret dbname=x"), "host=db user=app password=*** dbname=x");
        assert_eq!(super::dsn("postgres://db/shop"), "postgres://db/shop");
        let pushed = "http://127.0.0.1:9091/metrics/job/firedrill/scenario@base64/ZGI";
        assert_eq!(super::dsn(pushed), pushed, "an @ in the path is no credential");
    }

    #[test]
    fn masks_tokens_and_listed_strings_in_any_text() {
        let listed = vec!["hunter2".to_string(), "db-internal.corp".to_string()];
        let masked = super::text(
            "curl -H 'Authorization: Bearer abc.def' https://x/?token=t0k&y=1 pw hunter2 at db-internal.corp",
            &listed,
        );
        assert_eq!(masked, "curl -H 'Authorization: Bearer ***' https://x/?token=***&y=1 pw *** at ***");
        assert_eq!(super::text("dsn postgres://u:p4ss@h/db ok", &[]), "dsn postgres://u:***@h/db ok");
        assert_eq!(
            super::text("/o?token=abc&token=def BEARER x1 bearer x2 password=a password=b", &[]),
            "/o?token=***&token=*** BEARER *** bearer *** password=*** password=***"
        );
    }
}
