//! The parts of the `kpconform` command that other crates' tests reuse:
//! generators that run external commands or read recorded rules.
#![deny(missing_docs)]

pub mod generator;
