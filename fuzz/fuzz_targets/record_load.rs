//! Record JSON text → a record or an error (what `report` reads), and the integrity hash of
//! `report --verify` on any JSON; a record read back writes itself out and reads back the same.
#![no_main]

use firedrill_core::record::DrillRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(record) = DrillRecord::from_json(text) {
        let written = record.to_json();
        let again = DrillRecord::from_json(&written).expect("a record's own JSON reads back");
        assert_eq!(again.to_json(), written, "a record read back writes the same bytes");
        let _ = record.replay_key();
    }
    // `report --verify`: any JSON value is hashed, whatever its shape.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = DrillRecord::canonical_sha256(&value);
    }
});
