//! Normalizing the reference generator's rules is idempotent, and shuffling
//! the order-free chains changes neither the normalized text nor any trace.
#![no_main]

use kpconform_selftest::arbitrary::{properties, Case};
use kpconform_harness::FnGenerator;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = Case::arbitrary(&mut u) else {
        return;
    };
    let reference = FnGenerator::new("reference", |input: &_| {
        Ok(kpconform_reference::generate(input))
    });
    // The bytes left over drive the shuffles.
    if let Err(finding) = properties::normalize_roundtrip(&case, &reference, &mut u) {
        panic!("{finding}\n--- reproducer ---\n{case:?}");
    }
});
