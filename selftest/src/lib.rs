//! kpconform testing itself: [`arbitrary`] builds random valid cluster states
//! and the probes to send through them (for cargo-fuzz, proptest and
//! `kpconform fuzz`), and [`mutants`] edits correct rule sets the way
//! kube-proxy's real bugs did, to show the golden corpus notices each edit.
//!
//! ```
//! use kpconform_selftest::{arbitrary::Case, mutants};
//!
//! let case = Case::from_seed(1);
//! assert!(!case.probes.is_empty());
//! assert!(mutants::catalogue().iter().any(|m| m.id == "equal-probabilities"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arbitrary;
pub mod mutants;
pub mod production;
