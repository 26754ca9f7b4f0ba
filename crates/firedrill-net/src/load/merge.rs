//! A run split over several generators, merged from what each streams: a line of JSON per
//! final bucket, then one with the run's cost. When one machine cannot make the load, each
//! worker takes a [`Share`](super::Share) of the plan, starts at the same wall-clock time,
//! and streams; adding their buckets gives exactly what one generator sending every request
//! would have measured (HDR histograms of the same bounds add without loss).
//!
//! A worker's stream may be read more than once (a pod's log followed again after the
//! connection broke): a bucket already merged from that worker is skipped, not counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::{self, Bucket, BucketLine, HistogramError};
use super::{Plan, Report};

/// A line of a worker's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StreamLine {
    /// A final bucket.
    Bucket(BucketLine),
    /// The run ended: its cost.
    End(WorkerEnd),
}

/// What a worker's buckets do not carry: its run's length and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerEnd {
    /// Wall-clock length of its run, in seconds.
    pub elapsed_s: f64,
    /// CPU time it used, in seconds.
    pub cpu_s: f64,
    /// Connections it opened.
    pub connections: usize,
    /// Its first failed TLS handshake, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_failure: Option<String>,
}

/// A worker's line that cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Not a line of a worker's stream.
    #[error("worker {worker}: not a line of a load stream: {source}")]
    Line {
        /// The worker.
        worker: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A bucket whose histograms cannot be read.
    #[error("worker {worker}, bucket {index}: {source}")]
    Histogram {
        /// The worker.
        worker: String,
        /// The bucket.
        index: usize,
        /// Why.
        #[source]
        source: HistogramError,
    },
}

/// The streams of a split run, merged as they are read.
pub struct Merge {
    width: Duration,
    buckets: Vec<Bucket>,
    /// (worker, bucket) pairs merged, so a line read again is not counted twice.
    merged: BTreeSet<(String, usize)>,
    ends: BTreeMap<String, WorkerEnd>,
}

impl Merge {
    /// An empty merge of `plan`'s split.
    pub fn new(plan: &Plan) -> Self {
        Merge { width: plan.bucket, buckets: Vec::new(), merged: BTreeSet::new(), ends: BTreeMap::new() }
    }

    /// Merges a line of `worker`'s stream.
    pub fn read(&mut self, worker: &str, line: &str) -> Result<(), MergeError> {
        let line: StreamLine =
            serde_json::from_str(line).map_err(|source| MergeError::Line { worker: worker.into(), source })?;
        match line {
            StreamLine::Bucket(line) => {
                if !self.merged.insert((worker.into(), line.index)) {
                    return Ok(());
                }
                let bucket = Bucket::from_line(&line).map_err(|source| MergeError::Histogram {
                    worker: worker.into(),
                    index: line.index,
                    source,
                })?;
                if self.buckets.len() <= line.index {
                    self.buckets.resize_with(line.index + 1, Bucket::default);
                }
                self.buckets[line.index].add(&bucket);
            }
            StreamLine::End(end) => {
                self.ends.insert(worker.into(), end);
            }
        }
        Ok(())
    }

    /// The workers whose stream has ended.
    pub fn ended(&self) -> impl Iterator<Item = &str> {
        self.ends.keys().map(String::as_str)
    }

    /// What the split run measured so far, as one generator's report: its length is the
    /// longest worker's, its connections and CPU time the sum of theirs.
    pub fn report(&self, plan: &Plan) -> Report {
        let end = WorkerEnd {
            elapsed_s: self.ends.values().map(|e| e.elapsed_s).fold(0.0, f64::max),
            cpu_s: self.ends.values().map(|e| e.cpu_s).sum(),
            connections: self.ends.values().map(|e| e.connections).sum(),
            tls_failure: self.ends.values().find_map(|e| e.tls_failure.clone()),
        };
        Report::of(plan, stats::summary(&self.buckets, self.width), end)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Merge, MergeError, StreamLine};
    use crate::load::stats::{ErrorClass, Recorder, RequestOutcome};
    use crate::load::{Plan, Report, Share, WorkerEnd};

    /// Request `seq` of a made-up run: due every 3 ms, sent up to 4 ms late, answered in up to
    /// ~80 ms, every 17th one failing; deterministic, so each test sees the same run.
    fn outcome(seq: u64) -> RequestOutcome {
        let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
        let due = Duration::from_micros(seq * 3_000);
        let sent = due + Duration::from_micros(x % 4_000);
        let done = sent + Duration::from_micros(200 + (x >> 12) % 80_000);
        let error = seq.is_multiple_of(17).then_some(if seq.is_multiple_of(2) {
            ErrorClass::Timeout
        } else {
            ErrorClass::Http5xx
        });
        RequestOutcome { due, sent, done, error }
    }

    /// The lines a worker streams: its buckets as they become final, then its end.
    fn stream(recorder: &Recorder, end: &WorkerEnd) -> Vec<String> {
        let mut lines: Vec<String> = recorder
            .final_buckets(0, Duration::MAX, Duration::ZERO)
            .into_iter()
            .map(|(i, b)| serde_json::to_string(&StreamLine::Bucket(b.to_line(i))).unwrap())
            .collect();
        lines.push(serde_json::to_string(&StreamLine::End(end.clone())).unwrap());
        lines
    }

    #[test]
    fn the_streams_of_a_split_run_merge_into_exactly_what_one_generator_measured() {
        let plan = Plan::steady("http://127.0.0.1:1/", 333.0, Duration::from_secs(9), 8, Duration::from_secs(1));
        let requests = 3_000;
        let whole = Recorder::new(plan.bucket, None);
        for seq in 0..requests {
            whole.record(&outcome(seq));
        }
        let of = 3;
        let mut merge = Merge::new(&plan);
        for index in 0..of {
            let share = Share { index, of };
            let worker = Recorder::new(plan.bucket, None);
            for seq in (0..requests).filter(|s| share.holds(*s as usize)) {
                worker.record(&outcome(seq));
            }
            let end = WorkerEnd { elapsed_s: 9.0 + index as f64, cpu_s: 0.5, connections: 4, tls_failure: None };
            let lines = stream(&worker, &end);
            for line in &lines {
                merge.read(&format!("worker-{index}"), line).unwrap();
            }
            // A log read again repeats its lines: they are not counted twice.
            merge.read(&format!("worker-{index}"), &lines[0]).unwrap();
        }
        let merged: Report = merge.report(&plan);
        let one = whole.summary();
        assert_eq!(merged.summary, one, "the merged summary is not the one generator's");
        assert_eq!(merged.summary.sent, requests);
        assert!(merged.summary.errors[&ErrorClass::Timeout] > 0 && merged.summary.buckets.len() == 9);
        assert_eq!((merged.elapsed_s, merged.cpu_s, merged.connections), (11.0, 1.5, 12));
        assert_eq!(merge.ended().count(), 3);
    }

    #[test]
    fn a_line_that_is_not_a_workers_says_which_worker_sent_it() {
        let plan = Plan::steady("http://127.0.0.1:1/", 1.0, Duration::from_secs(1), 1, Duration::from_secs(1));
        let mut merge = Merge::new(&plan);
        let e = merge.read("shop-load-2", "Error: connection refused").unwrap_err();
        assert!(matches!(e, MergeError::Line { .. }) && e.to_string().starts_with("worker shop-load-2: "), "{e}");
        let bad =
            r#"{"bucket":{"index":0,"sent":1,"ok":1,"first_send_us":0,"last_send_us":0,"latency":"!!","service":""}}"#;
        let e = merge.read("shop-load-2", bad).unwrap_err();
        assert!(e.to_string().starts_with("worker shop-load-2, bucket 0: a histogram is not base64"), "{e}");
    }

    #[test]
    fn a_histogram_of_other_bounds_is_refused_rather_than_added_inexactly() {
        use base64::Engine;
        use hdrhistogram::serialization::Serializer;
        let mut other = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000, 2).unwrap();
        other.record(5).unwrap();
        let mut bytes = Vec::new();
        hdrhistogram::serialization::V2DeflateSerializer::new().serialize(&other, &mut bytes).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let line = format!(
            r#"{{"bucket":{{"index":0,"sent":1,"ok":1,"first_send_us":0,"last_send_us":0,"latency":"{encoded}","service":"{encoded}"}}}}"#
        );
        let plan = Plan::steady("http://127.0.0.1:1/", 1.0, Duration::from_secs(1), 1, Duration::from_secs(1));
        let e = Merge::new(&plan).read("w", &line).unwrap_err();
        assert!(e.to_string().contains("spans 1..1000 at 2 digits, not firedrill's 1..100000000 at 3"), "{e}");
    }
}
