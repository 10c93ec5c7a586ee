//! The golden corpus against the reference generator, through the suite's
//! `cargo test` harness: exactly what an implementation puts in its own
//! `tests/conformance.rs` (with `harness = false`). One trial per
//! (scenario, node), named `<scenario-id>@<node>`; snapshots in
//! `golden/snapshots/reference/`. `KPCONFORM_GENERATOR='cmd'` runs an
//! external generator instead.

use kpconform_harness::{Conformance, FnGenerator};

fn main() {
    let generator = FnGenerator::new("reference", |input| {
        Ok(kpconform_reference::generate(input))
    });
    let snapshots = concat!(env!("CARGO_MANIFEST_DIR"), "/../golden/snapshots");
    Conformance::from_env(generator)
        .with_snapshots(snapshots)
        .run()
}
