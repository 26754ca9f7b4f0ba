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
    use base64::Engine as _;
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(scenario.as_bytes());
    format!("/metrics/job/firedrill/scenario@base64/{name}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_name_is_a_base64url_path_segment_without_padding() {
        assert_eq!(group_path("db-failover/eu"), "/metrics/job/firedrill/scenario@base64/ZGItZmFpbG92ZXIvZXU");
        // The URL-safe alphabet: `-` and `_` where base64 has `+` and `/`.
        assert_eq!(group_path("??>"), "/metrics/job/firedrill/scenario@base64/Pz8-");
        assert_eq!(group_path("???"), "/metrics/job/firedrill/scenario@base64/Pz8_");
    }
}
