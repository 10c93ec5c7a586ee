//! kpconform's golden corpus, as data: `scenarios/<group>/<name>.yaml`,
//! `snapshots/<generator>/<scenario-id>@<node>.snap`, the recordings of real
//! kube-proxy releases in `recordings/`, the pasted tutorials in
//! `tutorials/` and hand-written test fixtures in `fixtures/`. The formats are documented in `docs/` at the repository root.
//!
//! ```
//! let v130 = kpconform_golden::recordings().join("kube-proxy-v1.30");
//! assert!(v130.join("outputs/clusterip-3-endpoints.rules").is_file());
//! ```
//!
//! The directory is a package so that tests find the data through one
//! function and `cargo insta review` finds the `.snap.new` files the
//! conformance harness leaves in `snapshots/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The scenarios directory.
pub const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The snapshots directory.
pub const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// The environment variable that points [`recordings`] somewhere else (a
/// directory with the same layout, e.g. a newer set of recordings).
pub const RECORDINGS_ENV: &str = "KPCONFORM_RECORDINGS";

/// The directory holding the recordings of real kube-proxy releases, one
/// folder each (`kube-proxy-v1.30/{inputs,outputs}`, `kube-proxy-v1.28/outputs`,
/// `kube-proxy-v1.30-ipv6/{inputs,outputs}`): `golden/recordings` in the
/// repository, or `$KPCONFORM_RECORDINGS` when it is set and not empty.
///
/// Every test that reads a recording finds it through this function.
pub fn recordings() -> PathBuf {
    match std::env::var_os(RECORDINGS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/recordings")),
    }
}

/// Hand-written rule sets shared by unit tests (`kube-proxy.rules`: a
/// synthetic kube-proxy-shaped node, described in `fixtures/README.md`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// The tutorials that trace kube-proxy's rules by hand (what operators
/// paste: iptables dumps, `iptables` commands, listings).
pub fn tutorials() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tutorials"))
}
