//! Any bytes through the parser (strict and lax), printer, normalizer,
//! invariants and tracer: no panic, every error inside the text.
#![no_main]

use kpconform_selftest::arbitrary::properties;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(finding) = properties::parse_rules(&text) {
        panic!("{finding}\n--- input ---\n{text}");
    }
});
