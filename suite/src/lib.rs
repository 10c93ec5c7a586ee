//! kpconform's library: everything that judges iptables rules generated for
//! Kubernetes Services, without spawning processes.
#![deny(missing_docs)]

pub mod invariants;
pub mod check;
pub mod generator;
pub mod iptables;
pub mod normalize;
pub mod probability;
pub mod scenario;
pub mod source;
pub mod trace;
