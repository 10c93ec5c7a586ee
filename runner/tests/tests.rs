//! End-to-end tests of the `kpconform` binary: the crate's one
//! integration-test target (`autotests = false` in Cargo.toml; every module
//! is listed here), one module per subcommand, and `util` as the one way to
//! run the binary. Tests run the built binary from the workspace root on the
//! golden corpus (filtered, to stay fast) and the kube-proxy recordings in
//! `golden/recordings/`.

mod util;

mod audit;
mod bench;
mod check;
mod ci_docs;
mod corpus;
mod diff;
mod fuzz;
mod generate;
mod input;
mod kernel;
mod mutants;
mod new_scenario;
mod pasted;
mod recorded;
mod reports;
mod run;
mod run_files;
mod usage;
mod validation;
mod walks;
