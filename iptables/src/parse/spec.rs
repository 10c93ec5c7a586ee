//! The vocabulary of the extension tables in [`matches`](super::matches) and
//! [`targets`](super::targets): what an option looks like, what one collected
//! option is, and how a module or target is described.
//!
//! Options match exactly or by an unambiguous prefix, as iptables'
//! getopt_long does (so the tutorials' `REDIRECT --to-port` means
//! `--to-ports`).

use crate::lex::Token;
use crate::source::Span;

/// What `!` in front of an option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negate {
    /// It inverts the option; the builder reads [`Opt::negated`].
    Yes,
    /// It is an error (`` `--comment` cannot be negated ``).
    No,
    /// It is accepted and dropped. iptables refuses most of these; the
    /// parser has always let them through, and keeps doing so.
    Ignored,
}

/// One option a match module or target takes.
#[derive(Debug, Clone, Copy)]
pub(super) struct OptSpec {
    /// The long name, without `--`.
    pub(super) name: &'static str,
    /// Whether one value follows it (otherwise it is a flag).
    pub(super) value: bool,
    /// What `!` does to it.
    pub(super) negate: Negate,
}

/// An option with a value that `!` inverts.
pub(super) const fn value(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: true,
        negate: Negate::Yes,
    }
}

/// A flag that `!` inverts.
pub(super) const fn flag(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: false,
        negate: Negate::Yes,
    }
}

impl OptSpec {
    /// The same option with `!` refused.
    pub(super) const fn plain(self) -> OptSpec {
        OptSpec {
            negate: Negate::No,
            ..self
        }
    }

    /// The same option with `!` accepted and dropped.
    pub(super) const fn ignore_bang(self) -> OptSpec {
        OptSpec {
            negate: Negate::Ignored,
            ..self
        }
    }
}

/// One collected option.
#[derive(Debug)]
pub(super) struct Opt<'t, 'a> {
    /// Its long name, as declared.
    pub(super) name: &'static str,
    /// Whether `!` stood before it or its value.
    pub(super) negated: bool,
    /// Where the option was written.
    pub(super) span: Span,
    /// Its value, for options declared with one.
    pub(super) arg: Option<&'t Token<'a>>,
}

impl<'t, 'a> Opt<'t, 'a> {
    /// The value of an option declared with one.
    pub(super) fn value(&self) -> &'t Token<'a> {
        self.arg
            .expect("the builder reads the value of an option declared with one")
    }
}

/// A builder's complaint: where, and what.
pub(super) type Fail = (Span, String);

/// One match module (`-m NAME`) or target (`-j NAME`): its options and how
/// the collected options become the model's value.
pub(super) struct Extension<T: 'static> {
    /// The name after `-m` or `-j`.
    pub(super) name: &'static str,
    /// The options it takes.
    pub(super) options: &'static [OptSpec],
    /// Builds the value from the name token and the collected options.
    pub(super) build: fn(&Token, &[Opt]) -> Result<T, Fail>,
}

/// The row for `name`, if there is one.
pub(super) fn find<T>(table: &'static [Extension<T>], name: &str) -> Option<&'static Extension<T>> {
    table.iter().find(|e| e.name == name)
}

/// The names of a table's rows, for error messages: `a, b, c`.
pub(super) fn names<T>(table: &'static [Extension<T>]) -> String {
    let names: Vec<&str> = table.iter().map(|e| e.name).collect();
    names.join(", ")
}

/// Resolves `--name` (or `name`) against `spec`: exactly, or by an
/// unambiguous prefix.
pub(super) fn resolve(spec: &'static [OptSpec], name: &str) -> Option<&'static OptSpec> {
    let name = name.strip_prefix("--").unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    if let Some(exact) = spec.iter().find(|o| o.name == name) {
        return Some(exact);
    }
    let mut candidates = spec.iter().filter(|o| o.name.starts_with(name));
    match (candidates.next(), candidates.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[OptSpec] = &[value("to-ports"), flag("random"), flag("random-fully")];

    #[test]
    fn exact_names_win_over_prefixes() {
        assert_eq!(resolve(SPEC, "--random").map(|o| o.name), Some("random"));
        assert_eq!(resolve(SPEC, "--to-port").map(|o| o.name), Some("to-ports"));
        assert_eq!(
            resolve(SPEC, "random-f").map(|o| o.name),
            Some("random-fully")
        );
        assert!(resolve(SPEC, "--").is_none());
        assert!(resolve(SPEC, "--x").is_none());
    }

    #[test]
    fn ambiguous_prefixes_resolve_to_nothing() {
        const AMBIGUOUS: &[OptSpec] = &[value("sports"), value("source-ports")];
        assert!(resolve(AMBIGUOUS, "--s").is_none());
        assert_eq!(resolve(AMBIGUOUS, "--sp").map(|o| o.name), Some("sports"));
    }
}
