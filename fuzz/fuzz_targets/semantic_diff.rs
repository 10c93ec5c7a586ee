//! A random valid cluster state and probes: tracing the reference
//! generator's rules gives what the semantic oracle says Kubernetes requires.
#![no_main]

use kpconform_selftest::arbitrary::{properties, Case};
use kpconform_harness::FnGenerator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| {
    let reference = FnGenerator::new("reference", |input: &_| {
        Ok(kpconform_reference::generate(input))
    });
    if let Err(finding) = properties::semantic_diff(&case, &reference) {
        panic!("{finding}\n--- reproducer ---\n{case:?}");
    }
});
