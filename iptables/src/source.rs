//! Source positions and diagnostics shared by every parser in the suite.
//!
//! Everything that comes from a file carries a [`Span`]; line and column are
//! only computed when a message is rendered, against the [`SourceFile`] it came
//! from, as `file:line:col`, the source line, and carets under the problem.

use std::fmt;

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

/// A named source text, for rendering positions.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps a text read from `name` (a path, or `<stdin>`).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
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
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text[start..floor_char_boundary(&self.text, offset)]
            .chars()
            .count()
            + 1;
        (line, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|&e| e - 1)
            .unwrap_or(self.text.len());
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
