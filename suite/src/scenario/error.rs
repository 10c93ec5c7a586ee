//! Errors for scenario and generator-input files.

use kpconform_iptables::{SourceFile, Span};

/// What kind of problem a [`ScenarioError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file is not valid YAML.
    Yaml,
    /// A key the format does not define (often a typo).
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value has the wrong type or does not parse (an address, a port, ...).
    InvalidValue,
    /// A Kubernetes object of a kind the suite does not read.
    UnsupportedKind,
    /// A flow names a node the cluster does not have.
    UnknownNode,
    /// A name or key that must be unique appears twice.
    Duplicate,
    /// More than one YAML document where one is expected.
    MultipleDocuments,
    /// The file could not be read.
    Io,
}

/// A problem in a scenario or generator-input file, with where it is.
///
/// `Display` renders it as `file:line:col: path: message`, then the source
/// line with carets under the offending node.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{rendered}")]
pub struct ScenarioError {
    kind: ErrorKind,
    file: String,
    line: usize,
    column: usize,
    path: String,
    message: String,
    rendered: String,
}

impl ScenarioError {
    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file name, as given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line (0 when the error has no position, e.g. I/O).
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column, in characters (0 when the error has no position).
    pub fn column(&self) -> usize {
        self.column
    }

    /// Where in the document, e.g. `flows[2].expect.endpoint` (empty for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong and what was expected, without position.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn io(file: &str, err: &std::io::Error) -> ScenarioError {
        ScenarioError {
            kind: ErrorKind::Io,
            file: file.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: err.to_string(),
            rendered: format!("{file}: {err}"),
        }
    }

    /// A file that is not UTF-8, at its first bad byte.
    pub(crate) fn not_utf8(err: &kpconform_iptables::NotUtf8) -> ScenarioError {
        ScenarioError {
            kind: ErrorKind::Io,
            file: err.name.clone(),
            line: err.line,
            column: err.column,
            path: String::new(),
            message: err.to_string(),
            rendered: err.to_string(),
        }
    }
}

/// A problem found while walking a document, before it is tied to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) kind: ErrorKind,
    pub(crate) span: Span,
    pub(crate) path: String,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(
        kind: ErrorKind,
        span: Span,
        path: &str,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            span,
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(span: Span, path: &str, message: impl Into<String>) -> Problem {
        Problem::new(ErrorKind::InvalidValue, span, path, message)
    }

    /// Ties the problem to the file it was found in.
    pub(crate) fn in_file(self, source: &SourceFile) -> ScenarioError {
        let (line, column) = source.line_col(self.span.start as usize);
        let shown = if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        };
        ScenarioError {
            kind: self.kind,
            file: source.name().to_string(),
            line,
            column,
            rendered: source.render(self.span, &shown),
            path: self.path,
            message: self.message,
        }
    }
}

/// `parent.key`, or `key` at the root.
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            let d = if c.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(word, c)
            };
            (d, c)
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["endpoints", "verdict", "masquerade", "sticky"];
        assert_eq!(did_you_mean("endpoint", fields), Some("endpoints"));
        assert_eq!(did_you_mean("masqurade", fields), Some("masquerade"));
        assert_eq!(did_you_mean("Verdict", fields), Some("verdict"));
        assert_eq!(did_you_mean("probability", fields), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn renders_position_path_and_carets() {
        let source = SourceFile::new("s.yaml", "a:\n  bogus: 1\n");
        let err = Problem::new(
            ErrorKind::UnknownKey,
            Span::new(5, 10, 2),
            "a.bogus",
            "unknown key",
        )
        .in_file(&source);
        assert_eq!((err.line(), err.column()), (2, 3));
        assert_eq!(err.path(), "a.bogus");
        assert_eq!(
            err.to_string(),
            "s.yaml:2:3: a.bogus: unknown key\n  |\n2 |   bogus: 1\n  |   ^^^^^"
        );
    }
}
