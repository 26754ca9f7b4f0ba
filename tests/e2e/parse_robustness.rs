//! The scenario loader fed thousands of seeded random corruptions of the shipped scenarios:
//! it never panics, and every error points at a line that exists.

use std::panic::{catch_unwind, AssertUnwindSafe};

use firedrill::rng::Rng;

use crate::common::{parse, shipped_text, SHIPPED};

/// Mutated variants tried per shipped scenario (2400 in all).
const CASES: usize = 600;

/// Characters that matter to YAML and to the scenario format, and some that do not.
const ALPHABET: &[u8] = b" \n\n\t:-{}[],#\"'|>&*!%@`?abcz09.-_/smh";

fn below(rng: &mut Rng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

/// A byte range of up to `max` bytes inside `len`.
fn range(rng: &mut Rng, len: usize, max: usize) -> (usize, usize) {
    let start = below(rng, len + 1);
    let end = (start + 1 + below(rng, max)).min(len);
    (start, end)
}

/// Applies one random mutation.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    match below(rng, 6) {
        0 => {
            let (a, b) = range(rng, len, 40);
            bytes.drain(a..b);
        }
        1 => {
            let (a, b) = range(rng, len, 40);
            let copy = bytes[a..b].to_vec();
            let at = below(rng, len + 1);
            bytes.splice(at..at, copy);
        }
        2 => {
            // Swap two non-overlapping ranges.
            let (a, b) = range(rng, len, 30);
            let (c, d) = range(rng, len, 30);
            let ((a, b), (c, d)) = if a <= c { ((a, b), (c, d)) } else { ((c, d), (a, b)) };
            if b <= c {
                let mut out = bytes[..a].to_vec();
                out.extend_from_slice(&bytes[c..d]);
                out.extend_from_slice(&bytes[b..c]);
                out.extend_from_slice(&bytes[a..b]);
                out.extend_from_slice(&bytes[d..]);
                *bytes = out;
            }
        }
        3 => {
            let at = below(rng, len + 1);
            let n = 1 + below(rng, 8);
            let insert: Vec<u8> = (0..n).map(|_| ALPHABET[below(rng, ALPHABET.len())]).collect();
            bytes.splice(at..at, insert);
        }
        4 => {
            let at = below(rng, len + 1);
            bytes.truncate(at);
        }
        _ => {
            // Replace one byte with any printable ASCII character.
            if len > 0 {
                let at = below(rng, len);
                bytes[at] = b' ' + below(rng, 95) as u8;
            }
        }
    }
}

/// Every `test.yaml:L:C` position in an error message.
fn positions(message: &str) -> Vec<(u64, u64)> {
    message
        .match_indices("test.yaml:")
        .map(|(i, m)| {
            let rest = &message[i + m.len()..];
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().and_then(|l| l.parse().ok());
            let column = parts.next().and_then(|c| c.parse().ok());
            match (line, column) {
                (Some(l), Some(c)) => (l, c),
                _ => panic!("`test.yaml:` not followed by line:column in:\n{message}"),
            }
        })
        .collect()
}

/// Tries `CASES` mutated variants of a shipped scenario.
fn fuzz(file: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let (mut loaded, mut rejected) = (0, 0);
    let original = shipped_text(file).into_bytes();
    for case in 0..CASES {
        let mut bytes = original.clone();
        for _ in 0..1 + below(&mut rng, 3) {
            mutate(&mut rng, &mut bytes);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let lines = text.lines().count() as u64;
        let result = catch_unwind(AssertUnwindSafe(|| {
            parse(&text).map_err(|e| e.to_string()).and_then(|s| firedrill::drill::check(&s).map_err(|e| e.to_string()))
        }));
        let outcome =
            result.unwrap_or_else(|_| panic!("{file} case {case}: the loader panicked on:\n-----\n{text}\n-----"));
        let Err(message) = outcome else {
            loaded += 1;
            continue;
        };
        rejected += 1;
        let found = positions(&message);
        assert!(!found.is_empty(), "{file} case {case}: no position in:\n{message}\n-----\n{text}\n-----");
        for (line, column) in found {
            assert!(
                (1..=lines + 1).contains(&line) && column >= 1,
                "{file} case {case}: position {line}:{column} outside the text's {lines} lines:\n{message}\n-----\n{text}\n-----"
            );
        }
    }
    // The mutations exercise both paths: some variants still load, most do not.
    assert!(rejected > CASES / 4, "{file}: only {rejected} of {CASES} variants rejected");
    assert!(loaded > 0, "{file}: no mutated variant loaded");
}

#[test]
fn mutated_db_failover_never_panics_and_errors_point_at_real_lines() {
    fuzz(SHIPPED[0], 0x5EED_0001);
}

#[test]
fn mutated_node_drain_never_panics_and_errors_point_at_real_lines() {
    fuzz(SHIPPED[1], 0x5EED_0002);
}

#[test]
fn mutated_s3_block_never_panics_and_errors_point_at_real_lines() {
    fuzz(SHIPPED[2], 0x5EED_0003);
}

#[test]
fn mutated_traffic_surge_never_panics_and_errors_point_at_real_lines() {
    fuzz(SHIPPED[3], 0x5EED_0004);
}
