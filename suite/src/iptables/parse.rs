//! Parser: iptables-save dumps, kube-proxy's iptables-restore input, and
//! iptables command lines as tutorials write them.
//!
//! (Being written; the signatures below are the stable API.)

use super::model::RuleSet;
use crate::source::Span;

/// How unknown matches and targets are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Anything not modelled is an error (the default).
    #[default]
    Strict,
    /// Unknown matches become [`Match::Unknown`](super::model::Match::Unknown)
    /// (never matching) and unknown targets [`Target::Unknown`](super::model::Target::Unknown),
    /// each reported as a warning.
    Lax,
}

/// What kind of problem a [`ParseError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A syntax or value error.
    Invalid,
    /// A match module the suite does not model.
    UnknownMatch,
    /// A target the suite does not model.
    UnknownTarget,
    /// An option a known module does not take.
    UnknownOption,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What kind.
    pub kind: ErrorKind,
    /// Where.
    pub span: Span,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A parsed rule set and the warnings lax mode produced.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The rules.
    pub rules: RuleSet,
    /// Unknown matches and targets accepted in lax mode.
    pub warnings: Vec<ParseError>,
}

/// Parses `text` (iptables-save format or iptables commands).
pub fn parse(text: &str, mode: Mode) -> Result<Parsed, Vec<ParseError>> {
    let _ = (text, mode);
    unimplemented!("parser being written")
}

/// Parses in strict mode.
pub fn parse_str(text: &str) -> Result<RuleSet, Vec<ParseError>> {
    parse(text, Mode::Strict).map(|p| p.rules)
}
