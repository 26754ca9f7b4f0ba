//! The unit parsers (`30s`, `300/s`) and the distribution form (`30s` or a mapping with a
//! `kind`): an error or a value, never a panic; a parsed value prints a form that parses back.
#![no_main]

use firedrill_core::dist::Delay;
use firedrill_core::duration::{Dur, Rate};
use firedrill_core::rng::Rng;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(d) = text.parse::<Dur>() {
        let shown = d.to_string();
        let back: Dur = shown.parse().unwrap_or_else(|e| panic!("`{shown}` from `{text}` does not parse back: {e}"));
        assert_eq!(back.0.as_millis(), d.0.as_millis(), "`{text}` printed as `{shown}`");
    }
    if let Ok(r) = text.parse::<Rate>() {
        assert!(r.per_sec().is_finite() && r.per_sec() >= 0.0, "`{text}` gave the rate {}", r.per_sec());
        let shown = r.to_string();
        let back: Rate = shown.parse().unwrap_or_else(|e| panic!("`{shown}` from `{text}` does not parse back: {e}"));
        assert_eq!(back.per_sec(), r.per_sec(), "`{text}` printed as `{shown}`");
    }
    let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
    if let Ok(Delay(dist)) = serde_saphyr::from_str_with_options::<Delay>(text, options) {
        let _ = dist.to_string();
        if dist.check().is_ok() {
            let mean = dist.mean();
            assert!(!mean.is_nan(), "{dist} has a NaN mean");
            let mut rng = Rng::new(7);
            for _ in 0..8 {
                let s = dist.sample(&mut rng);
                assert!(s >= 0.0 && !s.is_nan(), "{dist} sampled {s}");
            }
        }
    }
});
