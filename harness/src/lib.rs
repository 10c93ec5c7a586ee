//! Running a generator over a corpus of scenarios (the last step of
//! kpconform's data flow: generator → rules → verdicts → report): the evaluation shared by
//! `kpconform run` and `cargo test`, insta snapshots, and the libtest-mimic
//! harness an implementation drops into its own repository.
//!
//! # Testing your generator with `cargo test`
//!
//! Add `kpconform-harness` as a dev-dependency, declare the test without the
//! standard harness in `Cargo.toml`:
//!
//! ```toml
//! [[test]]
//! name = "conformance"
//! harness = false
//! ```
//!
//! and write `tests/conformance.rs`:
//!
//! ```no_run
//! # mod my_proxy {
//! #     pub fn iptables_save(_: &kpconform_harness::GeneratorInput) -> String {
//! #         String::new()
//! #     }
//! # }
//! use kpconform_harness::{Conformance, FnGenerator};
//!
//! fn main() {
//!     let generator = FnGenerator::new("my-proxy", |input| Ok(my_proxy::iptables_save(input)));
//!     Conformance::from_env(generator).with_snapshots("tests/snapshots").run()
//! }
//! ```
//!
//! `cargo test --test conformance` then runs one trial per (scenario, node)
//! of the golden corpus, named `<scenario-id>@<node>`, so
//! `cargo test --test conformance -- nodeport/` runs the node-port ones. The
//! scenario's tags are the trial's kind (`[nodeport etp-local]`), which
//! libtest filters match too: `-- etp-local` or `-- recorded:` select by tag.
//! Each trial generates the node's rules once per family the node has an
//! address of (the input's `node.family`; IPv4 first), parses them
//! (strictly), traces the node's flows of that family, checks the
//! invariants, and compares the normalized output with
//! `tests/snapshots/my-proxy/<scenario-id>@<node>.snap` (IPv4) or
//! `<scenario-id>@<node>.ipv6.snap` (IPv6).
//! A trial fails as
//! - **broken**: the output does not parse (the error points at its line and
//!   column in the output), or a flow or an invariant failed (the message
//!   shows the flow, the packet, expected vs actual distribution and every
//!   path's chain walk);
//! - **changed**: everything held but the snapshot differs (the diff is in the
//!   message; insta stores a `.snap.new` that `cargo insta review` accepts,
//!   or run with `INSTA_UPDATE=always`; with `CI=true` nothing is written);
//! - **error**: the generator failed, timed out or could not run (its stderr
//!   is in the message).
//!
//! Setting `KPCONFORM_GENERATOR='./my-proxy --dump-rules'` runs an external
//! command speaking the generator protocol (contract §2) instead of the
//! in-process generator, with snapshots under the program's name (or
//! `KPCONFORM_GENERATOR_NAME`), and a time limit per run of
//! `KPCONFORM_TIMEOUT` seconds (default 10).
//!
//! The same [`evaluate`] function backs `kpconform run`, which compares
//! snapshots read-only ([`Snapshots::read_only`]) and, with `--update`,
//! writes the new and changed ones ([`Snapshots::write_for`]).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod corpus;
mod evaluate;
mod files;
mod generator;
mod snapshot;
mod trials;

pub use corpus::{Case, Corpus};
pub use evaluate::{evaluate, evaluate_families, Evaluation, FamilyEvaluation, Status};
pub use generator::{
    kill_running_generators, Command, FnGenerator, Generator, GeneratorError, GeneratorErrorKind,
    RecordedDir, Request, DEFAULT_TIMEOUT, OUTPUT_LIMIT,
};
/// The generator input is the suite's; re-exported for generator authors.
pub use kpconform_suite::scenario::GeneratorInput;
pub use snapshot::{SnapshotCheck, Snapshots};
pub use trials::{
    Conformance, GENERATOR_ENV, GENERATOR_NAME_ENV, GOLDEN_SCENARIOS, KERNEL_ENV, TIMEOUT_ENV,
};
