//! A drill's result in the Prometheus text exposition format, for a Pushgateway: so drills
//! show on the dashboards the on-call team watches, beside the incidents they rehearse.
//!
//! One group per scenario (`job="firedrill"`, `scenario`), replaced by each push: the latest
//! drill of a scenario is what the gauges say. A value that was not measured is left out rather
//! than written as 0, which would read as an instant recovery.

use std::fmt::Write;

use super::{serde_name, Placement};
use crate::metrics::Measurement;
use crate::record::DrillRecord;
use crate::score::{Status, Verdict};

/// The Pushgateway path of a scenario's group, under the gateway's URL. The scenario's name is
/// base64url-encoded (`scenario@base64`), so any name is a valid path segment.
pub fn group_path(scenario: &str) -> String {
    format!("/metrics/job/firedrill/scenario@base64/{}", base64url(scenario.as_bytes()))
}

/// The metrics of one drill, pushed at `now`; the scenario's MTTR, judged over the run, goes
/// with its last drill.
pub fn exposition(record: &DrillRecord, mttr: Option<(&Verdict, &Measurement)>, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: Option<f64>| v.map(|v| (String::new(), v)).into_iter().collect::<Vec<_>>();
    let m = &record.metrics;
    gauge("firedrill_rto_seconds", "Time to recovery of the latest drill (RTO).", &one(m.rto.seconds()));
    gauge(
        "firedrill_mttd_seconds",
        "Time to detection of the latest drill (MTTD): by its alert when it watches one, else by its probes.",
        &one(m.detection().seconds()),
    );
    gauge(
        "firedrill_mttd_probes_seconds",
        "Time until the latest drill's probes saw users hurt, when an alert times detection.",
        &one(m.mttd_alert.as_ref().and(m.mttd.seconds())),
    );
    gauge(
        "firedrill_mttr_seconds",
        "Mean time to recover over the latest run (MTTR).",
        &one(mttr.and_then(|(_, m)| m.seconds())),
    );
    gauge("firedrill_rpo_seconds", "Data lost by the latest drill, as time (RPO).", &one(m.rpo.measurement.seconds()));
    gauge(
        "firedrill_rpo_lost_writes",
        "Acknowledged writes the latest drill lost.",
        &one((m.rpo.acknowledged > 0).then_some(m.rpo.lost as f64)),
    );
    gauge("firedrill_score", "Score of the latest drill, 0 to 100.", &one(record.score.map(f64::from)));
    let verdicts: Vec<(String, f64)> = record
        .verdicts
        .iter()
        .chain(mttr.map(|(v, _)| v))
        .map(|v| {
            let met = f64::from(u8::from(v.status == Status::Met));
            (format!("{{target=\"{}\",status=\"{}\"}}", v.target, serde_name(&v.status)), met)
        })
        .collect();
    gauge("firedrill_target_met", "1 when the latest drill met the target, 0 when missed or not measured.", &verdicts);
    gauge(
        "firedrill_drill_outcome",
        "How the latest drill ended (1 for its outcome).",
        &[(format!("{{outcome=\"{}\"}}", serde_name(&record.outcome)), 1.0)],
    );
    gauge(
        "firedrill_drill_end_timestamp_seconds",
        "When the latest drill ended (Unix time; a sim drill, when it was pushed).",
        &one(Some(Placement::of(record, now).at(record.ended_at).as_millisecond() as f64 / 1000.0)),
    );
    out
}

/// RFC 4648 base64url without padding, as the Pushgateway reads `@base64` label values.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_rfc_4648_without_padding() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"db-failover/eu"), "ZGItZmFpbG92ZXIvZXU");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
