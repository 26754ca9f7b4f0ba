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
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
