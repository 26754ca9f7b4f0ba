//! Masking of secrets before anything is printed or stored: connection strings carry
//! passwords, and a drill report is read by people who must not see them.

/// Masks the password of a connection string, in URL form
/// (`postgres://user:secret@host/db`) and in key-value form (`password=secret`).
pub fn dsn(text: &str) -> String {
    let mut out = text.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        if let Some(at) = out[rest_start..].find('@').map(|i| i + rest_start) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn masks_passwords_in_both_forms() {
        assert_eq!(super::dsn("postgres://app:s3cret@db:5432/shop"), "postgres://app:***@db:5432/shop");
        assert_eq!(super::dsn("host=db user=app password=s3cret dbname=x"), "host=db user=app password=*** dbname=x");
        assert_eq!(super::dsn("postgres://db/shop"), "postgres://db/shop");
    }
}
