//! A random valid cluster state through the reference generator: the rules
//! parse strictly, break no kube-proxy invariant, and print back verbatim.
#![no_main]

use kpconform_selftest::arbitrary::{properties, Case};
use kpconform_harness::FnGenerator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| {
    let reference = FnGenerator::new("reference", |input: &_| {
        Ok(kpconform_reference::generate(input))
    });
    let checks = [properties::invariants, properties::print_roundtrip];
    for check in checks {
        if let Err(finding) = check(&case, &reference) {
            panic!("{finding}\n--- reproducer ---\n{case:?}");
        }
    }
});
