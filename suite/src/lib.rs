//! kpconform's library: everything that judges iptables rules generated for
//! Kubernetes Services. Its core (parsing, tracing, invariants, scenarios)
//! does no I/O; [`generator`] and [`harness`] are the edge that runs
//! external generators and reads corpora and snapshots.
#![deny(missing_docs)]

#[cfg(feature = "arbitrary")]
pub mod arbitrary;
pub mod check;
pub mod coverage;
pub mod generator;
pub mod harness;
pub mod invariants;
pub mod iptables;
pub mod mutants;
pub mod normalize;
pub mod oracle;
pub mod probability;
pub mod scenario;
pub mod skeleton;
pub mod source;
pub mod trace;
