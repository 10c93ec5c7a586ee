//! Source positions and diagnostics shared by every parser in the suite.
//!
//! Everything that comes from a file carries a [`Span`]; line and column are
//! only computed when a message is rendered, against the [`SourceFile`] it came
//! from, as `file:line:col`, the source line, and carets under the problem.

use std::fmt;
use std::sync::OnceLock;

/// A byte range in a source text, with the (1-based) line it starts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
    /// 1-based line number of `start`.
    pub line: u32,
}

impl Span {
    /// A span from byte offsets and the line of `start`.
    pub fn new(start: usize, end: usize, line: u32) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
            line,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
            line: self.line.min(other.line),
        }
    }
}

/// Bytes that are not UTF-8 text, and where the first bad byte is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x}); kpconform reads UTF-8 (or ASCII) text")]
pub struct NotUtf8 {
    /// The file's name.
    pub name: String,
    /// 1-based line of the bad byte.
    pub line: usize,
    /// 1-based column (in characters) of the bad byte.
    pub column: usize,
    /// The bad byte.
    pub byte: u8,
}

/// A named source text, for rendering positions.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Where each line starts, computed on the first rendering: a clean
    /// run renders nothing, and a 400k-line dump's table is 3.5 MB.
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// Decodes bytes read from `name` as UTF-8, or says at which line and
    /// column they stop being text.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<SourceFile, NotUtf8> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(e) => {
                let bytes = e.as_bytes();
                let at = e.utf8_error().valid_up_to();
                // The prefix is valid UTF-8, so it can be counted in characters.
                let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                Err(NotUtf8 {
                    name: name.into(),
                    line: before.matches('\n').count() + 1,
                    column: before[line_start..].chars().count() + 1,
                    byte: bytes[at],
                })
            }
        }
    }

    /// Wraps a text read from `name` (a path, or `<stdin>`).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
            line_starts: OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0];
            starts.extend(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| i + 1));
            starts
        })
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and (character-based) column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset);
        let start = starts[line - 1];
        let col = self.text[start..floor_char_boundary(&self.text, offset)]
            .chars()
            .count()
            + 1;
        (line, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = starts.get(line).map(|&e| e - 1).unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }

    /// Renders `message` at `span`: `file:line:col: message`, the line, carets.
    pub fn render(&self, span: Span, message: &dyn fmt::Display) -> String {
        let (line, col) = self.line_col(span.start as usize);
        let src = self.line_text(line);
        let line_end_col = src.chars().count() + 1;
        let (end_line, end_col) = self.line_col(span.end as usize);
        let width = if end_line == line && end_col > col {
            end_col - col
        } else {
            line_end_col.saturating_sub(col).max(1)
        };
        let gutter = line.to_string().len();
        format!(
            "{name}:{line}:{col}: {message}\n{pad} |\n{line} | {src}\n{pad} | {spaces}{carets}",
            name = self.name,
            pad = " ".repeat(gutter),
            spaces = " ".repeat(col - 1),
            carets = "^".repeat(width),
        )
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_utf8_is_reported_at_its_line_and_column() {
        let e = SourceFile::from_bytes(
            "r.rules",
            b"*nat\n-A X -m comment --comment \"\xc3\xa9\xff\"".to_vec(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column, e.byte), (2, 29, 0xff));
        assert!(
            e.to_string()
                .starts_with("r.rules:2:29: not UTF-8 text (byte 0xff)"),
            "{e}"
        );
        assert!(SourceFile::from_bytes("ok", b"*nat\n".to_vec()).is_ok());
    }

    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("x", "ab\nçd e\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        // 'ç' is two bytes: "d" is at byte 5, column 2.
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_text(2), "çd e");
        assert_eq!(f.line_text(9), "");
    }

    #[test]
    fn render_points_at_the_span() {
        let f = SourceFile::new("rules", "*nat\n-A X -j BOGUS\n");
        let out = f.render(Span::new(13, 18, 2), &"unknown target");
        assert_eq!(
            out,
            "rules:2:9: unknown target\n  |\n2 | -A X -j BOGUS\n  |         ^^^^^"
        );
    }
}
