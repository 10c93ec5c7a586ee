//! The generator protocol (contract §2): anything that turns one node's
//! [`GeneratorInput`] into iptables-save text. In process, a type
//! implementing [`Generator`] (or an [`FnGenerator`]); out of process, an
//! external [`Command`] or a [`RecordedDir`] of captured outputs.
//!
//! The two out-of-process kinds live here rather than in the `kpconform`
//! binary because the `cargo test` harness runs them too
//! (`KPCONFORM_GENERATOR`); they are the suite's only I/O edge besides the
//! harness, and nothing in the judging core depends on them.

use std::fmt;

mod external;
mod recorded;
mod running;

pub use external::{Command, DEFAULT_TIMEOUT, OUTPUT_LIMIT};
pub use recorded::RecordedDir;
pub use running::kill_running_generators;

use kpconform_iptables::model::Family;
use kpconform_suite::scenario::GeneratorInput;

/// Which (scenario, node, family) a generator is asked about; recorded-rules
/// directories and external commands need the names. The family is the
/// input's `node.family`: the generator runs once per family the node has
/// an address of.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Scenario id, e.g. `nodeport/local-policy-split`.
    pub scenario: &'a str,
    /// Node name.
    pub node: &'a str,
    /// The input to render rules for.
    pub input: &'a GeneratorInput,
}

impl Request<'_> {
    /// The family whose rules are asked for (`input.node.family`).
    pub fn family(&self) -> Family {
        self.input.node.family
    }
}

/// A rule generator under test.
pub trait Generator: Send + Sync {
    /// A short name, used for the snapshot directory `golden/snapshots/<name>/`.
    fn name(&self) -> &str;

    /// The rules the node installs, as iptables-save text.
    fn generate(&self, request: &Request<'_>) -> Result<String, GeneratorError>;
}

/// Why a generator produced no rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorError {
    /// What went wrong.
    pub kind: GeneratorErrorKind,
    /// One line for the report.
    pub message: String,
    /// Whatever the generator said (stderr), if anything.
    pub stderr: String,
}

/// Kinds of [`GeneratorError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeneratorErrorKind {
    /// It ran and reported failure (non-zero exit, or an error value).
    Failed,
    /// It did not finish in time and was killed.
    TimedOut,
    /// Its output exceeded the size limit.
    TooLarge,
    /// It could not be started, or its recorded output is missing.
    Unavailable,
}

impl GeneratorError {
    /// An error of `kind` with a message and no stderr.
    pub fn new(kind: GeneratorErrorKind, message: impl Into<String>) -> GeneratorError {
        GeneratorError {
            kind,
            message: message.into(),
            stderr: String::new(),
        }
    }
}

impl fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let stderr = self.stderr.trim_end();
        if !stderr.is_empty() {
            write!(f, "\n--- generator stderr ---\n{stderr}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GeneratorError {}

/// A plain function is a generator, for tests and fuzzing.
pub struct FnGenerator<F> {
    name: String,
    f: F,
}

impl<F> FnGenerator<F>
where
    F: Fn(&GeneratorInput) -> Result<String, GeneratorError> + Send + Sync,
{
    /// Wraps `f` under `name`.
    pub fn new(name: impl Into<String>, f: F) -> FnGenerator<F> {
        FnGenerator {
            name: name.into(),
            f,
        }
    }
}

impl<F> Generator for FnGenerator<F>
where
    F: Fn(&GeneratorInput) -> Result<String, GeneratorError> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &Request<'_>) -> Result<String, GeneratorError> {
        (self.f)(request.input)
    }
}
