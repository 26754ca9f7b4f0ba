//! Text forms shared by every rendering of a drill (terminal, Markdown, HTML, JUnit) and by
//! the record itself: one place, so the same number never reads two ways.

use crate::metrics::Measurement;

/// Seconds as people read them: `12.40 s`, or `8m 12.4s` (`15m`) past a minute.
pub fn secs(s: f64) -> String {
    if s < 60.0 {
        return format!("{s:.2} s");
    }
    let m = (s / 60.0).floor();
    let rest = s - m * 60.0;
    if rest < 0.05 {
        format!("{m}m")
    } else {
        format!("{m}m {rest:.1}s")
    }
}

/// A measurement with its uncertainty, or why there is none.
pub fn measurement(m: &Measurement) -> String {
    match m {
        Measurement::Measured { seconds, uncertainty, note } => {
            let mut s = secs(*seconds);
            if *uncertainty > 0.0 {
                s += &format!(" ± {}", secs(*uncertainty));
            }
            if let Some(n) = note {
                s += &format!(" ({n})");
            }
            s
        }
        Measurement::NoImpact => "0 s (no impact observed)".into(),
        Measurement::Unmet { reason } => format!("unmet: {reason}"),
        Measurement::NotMeasured { reason } => format!("not measured: {reason}"),
        Measurement::Declared { seconds } => format!("{} (declared by the room, not measured)", secs(*seconds)),
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, in lowercase hex: how firedrill fingerprints a text it must show
/// unchanged (a scenario file, a record, a bucket policy).
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Escapes text for XML (and HTML), dropping the control characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An error and its causes on one line, outermost first (`failed to connect: connection
/// refused`): the one way every error is shown to a person, so that no cause is dropped and
/// none is shown twice. A cause whose text the outer message already ends with is skipped.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// `value` with every object's keys in sorted order, whatever order serde_json's maps keep:
/// a dependency that turns on its `preserve_order` feature (aws-smithy-mocks does, in tests)
/// must change neither a record's canonical hash nor the bytes firedrill writes.
pub fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to connect")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to connect: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_causes_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(error_chain(&Outer(refused())), "failed to connect: connection refused");
        assert_eq!(error_chain(&Repeating(refused())), "failed to connect: connection refused");
    }
}
