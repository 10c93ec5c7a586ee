//! kpconform's golden corpus, as data: `scenarios/<group>/<name>.yaml`
//! (contract §1) and `snapshots/<generator>/<scenario-id>@<node>.snap`
//! (contract §4). See `README.md` beside this file.
//!
//! The directory is a package only so that `cargo insta review` finds the
//! `.snap.new` files the conformance harness leaves in `snapshots/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// The scenarios directory.
pub const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The snapshots directory.
pub const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");
