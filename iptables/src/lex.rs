//! The lexer: splits text into logical lines of quote-aware tokens.
//!
//! It never fails. Problems it notices (an unterminated quote) are recorded
//! on the line for the parser to report, and the text is still tokenized as
//! well as it can be, so that one bad line never hides the errors of the next.
//!
//! Two spellings meet here: iptables-save (`"..."` with `\"` and `\\`
//! escapes) and shell command lines from tutorials (`'...'`, backslash
//! escapes, and `\` at the end of a line continuing the command).

use std::borrow::Cow;

use crate::source::Span;

/// One word of a line, with quotes removed and escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The word's value.
    pub text: Cow<'a, str>,
    /// Where the word was written, quotes included.
    pub span: Span,
    /// Whether any part was quoted (a quoted `!` or `-x` is a value, never an operator).
    pub quoted: bool,
}

impl Token<'_> {
    /// Whether this token is the bare word `s`.
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }

    /// Whether this token looks like an option (`-x` or `--xyz`), not a value.
    pub fn is_option(&self) -> bool {
        !self.quoted && self.text.len() > 1 && self.text.starts_with('-')
    }
}

/// A line as the parser sees it: one command or one iptables-save line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The words.
    pub tokens: Vec<Token<'a>>,
    /// The whole logical line (several physical lines when continued with `\`).
    pub span: Span,
    /// Problems found while lexing: (where, what).
    pub problems: Vec<(Span, &'static str)>,
}

/// Iterates over the logical lines of `text`, skipping blank and `#` lines.
pub fn lines(text: &str) -> Lines<'_> {
    Lines {
        text,
        pos: 0,
        line: 1,
        comments: false,
        base: 0,
    }
}

/// Like [`lines`], but `#` lines are tokenized and returned too (`#` is
/// also a root shell prompt: `# iptables -A ...` in a pasted transcript).
/// The caller tells comments from commands; a comment's lexing problems
/// (an apostrophe read as an open quote) mean nothing.
pub(crate) fn lines_with_comments(text: &str) -> Lines<'_> {
    Lines {
        comments: true,
        ..lines(text)
    }
}

/// Like [`lines_with_comments`], for a piece of a longer text: `text`
/// starts at byte `base` of the whole, on line `line`, and spans point into
/// the whole text. The piece must end where a logical line ends (see
/// [`logical_end`]), so that its lines are those of the whole.
pub(crate) fn piece_lines(text: &str, base: usize, line: u32) -> Lines<'_> {
    Lines {
        line,
        base,
        ..lines_with_comments(text)
    }
}

/// Where the last complete logical line of `bytes` ends: one past the last
/// newline that no continuation backslash escapes (the rule
/// [`Lines::next_into`] splits by), or `None` when there is none. Text up
/// to there lexes as it would inside a longer text.
pub(crate) fn logical_end(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(nl) = memchr::memrchr(b'\n', &bytes[..end]) {
        // The physical line the newline ends: its last two characters
        // decide, as for the logical line, since a physical line that is a
        // lone backslash is preceded by a newline either way.
        let start = memchr::memrchr(b'\n', &bytes[..nl]).map_or(0, |i| i + 1);
        if !continues(&bytes[start..nl]) {
            return Some(nl + 1);
        }
        end = nl;
    }
    None
}

/// Whether a line (without its newline) is continued on the next one.
fn continues(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let content = &line[..end];
    content.ends_with(b"\\") && !content.ends_with(b"\\\\")
}

/// Iterator returned by [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    /// Whether `#` lines are returned.
    comments: bool,
    /// Where `text` starts in the whole text spans point into.
    base: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let mut line = Line {
            tokens: Vec::new(),
            span: Span::default(),
            problems: Vec::new(),
        };
        self.next_into(&mut line).then_some(line)
    }
}

impl<'a> Lines<'a> {
    /// Like [`Iterator::next`], into `line`, whose buffers are reused: the
    /// parser reads a 400k-line dump without allocating a token list per line.
    /// Returns false (leaving `line` empty) at the end of the text.
    pub(crate) fn next_into(&mut self, line: &mut Line<'a>) -> bool {
        line.tokens.clear();
        line.problems.clear();
        let bytes = self.text.as_bytes();
        loop {
            if self.pos >= bytes.len() {
                return false;
            }
            let start = self.pos;
            let start_line = self.line;
            // Find the end of the logical line: a newline not preceded by a
            // continuation backslash.
            let mut search = start;
            let end = loop {
                match memchr::memchr(b'\n', &bytes[search..]) {
                    Some(i) => {
                        let end = search + i;
                        self.line += 1;
                        if continued(bytes, start, end) {
                            search = end + 1;
                            continue;
                        }
                        self.pos = end + 1;
                        break end;
                    }
                    None => {
                        self.pos = bytes.len();
                        break bytes.len();
                    }
                }
            };
            if self.skipped(start, end) {
                continue;
            }
            tokenize(self.text, start, end, start_line, self.base, line);
            return true;
        }
    }

    /// Whether the logical line `text[start..end]` is blank, or a `#` line
    /// that is not wanted.
    fn skipped(&self, start: usize, end: usize) -> bool {
        // A dump's lines start with `-A` or `:`, which decides at once; only
        // a line that starts with (possibly Unicode) white space, or an
        // empty one, needs trimming to find its first character.
        match self.text.as_bytes()[start..end].first() {
            Some(&b) if b < 0x80 && !is_ascii_space(b) => b == b'#' && !self.comments,
            _ => {
                let trimmed = self.text[start..end].trim_start();
                trimmed.is_empty() || (trimmed.starts_with('#') && !self.comments)
            }
        }
    }
}

/// Whether `b` is ASCII white space as [`char::is_whitespace`] sees it (which,
/// unlike [`u8::is_ascii_whitespace`], includes the vertical tab).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Whether the newline at `bytes[end]` is escaped by a continuation
/// backslash, the logical line having started at `start`.
fn continued(bytes: &[u8], start: usize, end: usize) -> bool {
    // Nearly every line ends in a word: its last byte decides. Only a line
    // ending in a blank or `\r` needs trimming first.
    match bytes[start..end] {
        [.., b'\\', b'\\'] => false,
        [.., b'\\'] => true,
        [.., b' ' | b'\t' | b'\r'] => continues(&bytes[start..end]),
        _ => false,
    }
}

/// The line number the next line starts on.
impl Lines<'_> {
    pub(crate) fn line_number(&self) -> u32 {
        self.line
    }

    /// Where (in the piece) the next line starts, or blank lines before it.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

/// What a byte does in a word, looked up in [`CLASS`].
const WORD: u8 = 0;
/// A blank (space, tab, `\r`, `\n`): ends a word.
const BLANK: u8 = 1;
/// A quote or a backslash: the word needs unquoting.
const SPECIAL: u8 = 2;

/// The class of every byte: one load per byte in the word loops, where a
/// `matches!` over seven bytes compiled to a chain of compares.
static CLASS: [u8; 256] = {
    let mut class = [WORD; 256];
    class[b' ' as usize] = BLANK;
    class[b'\t' as usize] = BLANK;
    class[b'\r' as usize] = BLANK;
    class[b'\n' as usize] = BLANK;
    class[b'"' as usize] = SPECIAL;
    class[b'\'' as usize] = SPECIAL;
    class[b'\\' as usize] = SPECIAL;
    class
};

/// Whether `b` ends a word.
fn blank(b: u8) -> bool {
    CLASS[b as usize] == BLANK
}

/// Tokenizes `text[start..end]`, whose first byte is on line `line`, into
/// `out` (whose token and problem lists are empty). `text` starts at byte
/// `base` of the whole text: spans are made there rather than moved after.
fn tokenize<'a>(
    text: &'a str,
    start: usize,
    end: usize,
    line: u32,
    base: usize,
    out: &mut Line<'a>,
) {
    let span = |from: usize, to: usize, line: u32| Span::new(base + from, base + to, line);
    let bytes = &text.as_bytes()[..end];
    let tokens = &mut out.tokens;
    let problems = &mut out.problems;
    let mut i = start;
    let mut line_no = line;
    while i < end {
        let b = bytes[i];
        match CLASS[b as usize] {
            BLANK => {
                line_no += u32::from(b == b'\n');
                i += 1;
                continue;
            }
            SPECIAL if b == b'\\' && matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => {
                // A continuation: the newline is skipped on the next turn.
                i += 1;
                continue;
            }
            _ => {}
        }
        let tok_start = i;
        let tok_line = line_no;
        // Fast path: a plain word with no quotes or escapes borrows the text.
        let j = bytes[i..]
            .iter()
            .position(|&b| CLASS[b as usize] != WORD)
            .map_or(end, |n| i + n);
        if j == end || blank(bytes[j]) {
            tokens.push(Token {
                text: Cow::Borrowed(&text[i..j]),
                span: span(i, j, tok_line),
                quoted: false,
            });
            // Words are mostly parted by one space: step over it here
            // rather than on another turn of the loop.
            i = if bytes.get(j) == Some(&b' ') {
                j + 1
            } else {
                j
            };
            continue;
        }
        // A single double-quoted word without escapes also borrows: its
        // closing quote comes before any backslash or newline.
        if j == i && b == b'"' {
            if let Some(close) = memchr::memchr3(b'"', b'\\', b'\n', &bytes[i + 1..]) {
                let close = i + 1 + close;
                let after = close + 1;
                if bytes[close] == b'"' && (after == end || blank(bytes[after])) {
                    tokens.push(Token {
                        text: Cow::Borrowed(&text[i + 1..close]),
                        span: span(i, after, tok_line),
                        quoted: true,
                    });
                    i = if bytes.get(after) == Some(&b' ') {
                        after + 1
                    } else {
                        after
                    };
                    continue;
                }
            }
        }
        // General case: shell-like word with quotes and escapes.
        let mut value = String::new();
        let mut quoted = false;
        while i < end && !blank(bytes[i]) {
            match bytes[i] {
                b'"' => {
                    quoted = true;
                    let open = i;
                    // A word can continue onto a later line: a quote opened
                    // there is reported on that line, not the word's first.
                    let open_line = line_no;
                    i += 1;
                    let mut closed = false;
                    while i < end {
                        match bytes[i] {
                            b'"' => {
                                closed = true;
                                i += 1;
                                break;
                            }
                            b'\\'
                                if i + 1 < end
                                    && matches!(bytes[i + 1], b'"' | b'\\' | b'$' | b'`') =>
                            {
                                value.push(bytes[i + 1] as char);
                                i += 2;
                            }
                            // As in a shell, a backslash-newline inside double
                            // quotes is a continuation and vanishes: the word
                            // never holds a line break the printer could not
                            // write back on one line.
                            b'\\' if bytes[i + 1..].starts_with(b"\n") => {
                                line_no += 1;
                                i += 2;
                            }
                            b'\\' if bytes[i + 1..].starts_with(b"\r\n") => {
                                line_no += 1;
                                i += 3;
                            }
                            b'\n' => {
                                problems.push((
                                    span(open, i, open_line),
                                    "a quoted word continues onto the next line",
                                ));
                                line_no += 1;
                                value.push('\n');
                                i += 1;
                            }
                            _ => {
                                let ch = next_char(text, i);
                                value.push(ch);
                                i += ch.len_utf8();
                            }
                        }
                    }
                    if !closed {
                        problems.push((span(open, end, open_line), "unterminated `\"` quote"));
                    }
                }
                b'\'' => {
                    quoted = true;
                    let open = i;
                    let open_line = line_no;
                    match memchr::memchr(b'\'', &bytes[i + 1..]) {
                        Some(close) => {
                            let close = i + 1 + close;
                            let newlines =
                                memchr::memchr_iter(b'\n', &bytes[i + 1..close]).count() as u32;
                            line_no += newlines;
                            value.push_str(&text[i + 1..close]);
                            if newlines > 0 {
                                // Only a continuation gets a newline here, and
                                // single quotes keep it literally: no rule
                                // file can hold such a word on one line.
                                problems.push((
                                    span(open, close + 1, open_line),
                                    "a single-quoted word continues onto the next line",
                                ));
                            }
                            i = close + 1;
                        }
                        None => {
                            value.push_str(&text[i + 1..end]);
                            problems.push((span(open, end, open_line), "unterminated `'` quote"));
                            i = end;
                        }
                    }
                }
                b'\\' => {
                    if i + 1 < end && bytes[i + 1] != b'\n' {
                        let ch = next_char(text, i + 1);
                        value.push(ch);
                        i += 1 + ch.len_utf8();
                    } else {
                        i += 1;
                    }
                }
                _ => {
                    let ch = next_char(text, i);
                    value.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        tokens.push(Token {
            text: Cow::Owned(value),
            span: span(tok_start, i, tok_line),
            quoted,
        });
    }
    out.span = span(start, end, line);
}

fn next_char(text: &str, i: usize) -> char {
    text[i..].chars().next().unwrap_or('\u{fffd}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        lines(text)
            .map(|l| l.tokens.iter().map(|t| t.text.to_string()).collect())
            .collect()
    }

    #[test]
    fn splits_save_lines_and_unquotes_comments() {
        let w = words("*nat\n:KUBE-X - [0:0]\n-A X -m comment --comment \"a b\" -j Y\nCOMMIT\n");
        assert_eq!(w[0], ["*nat"]);
        assert_eq!(w[1], [":KUBE-X", "-", "[0:0]"]);
        assert_eq!(
            w[2],
            ["-A", "X", "-m", "comment", "--comment", "a b", "-j", "Y"]
        );
        assert_eq!(w[3], ["COMMIT"]);
    }

    #[test]
    fn skips_blank_and_comment_lines() {
        assert_eq!(
            words("# Generated by iptables-save\n\n   \n*filter\n").len(),
            1
        );
    }

    #[test]
    fn comment_lines_on_request() {
        let text = "# iptables -A X\n\n*filter\n";
        let all: Vec<Line> = lines_with_comments(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].tokens[1].text, "iptables");
        assert_eq!(all[1].span.line, 3);
    }

    #[test]
    fn resolves_escapes_inside_double_quotes() {
        let w = words(r#"-A X -m comment --comment "say \"hi\" \\ now""#);
        assert_eq!(w[0][5], r#"say "hi" \ now"#);
    }

    #[test]
    fn joins_continued_command_lines() {
        let text = "sudo iptables \\\n  --table nat \\\n  --new DUSTIN-SERVICES\nnext";
        let all: Vec<Line> = lines(text).collect();
        assert_eq!(all.len(), 2);
        let w: Vec<&str> = all[0].tokens.iter().map(|t| t.text.as_ref()).collect();
        assert_eq!(
            w,
            [
                "sudo",
                "iptables",
                "--table",
                "nat",
                "--new",
                "DUSTIN-SERVICES"
            ]
        );
        assert_eq!(all[0].tokens[4].span.line, 3);
        assert_eq!(all[1].span.line, 4);
    }

    #[test]
    fn a_continuation_inside_double_quotes_vanishes_as_in_a_shell() {
        // Found by fuzz target parse_rules: the word kept the backslash and
        // the line break, and the printer wrote a line that did not parse.
        for text in [
            "-A X -m comment --comment \"a \\\n  b\" -j Y\n",
            "-A X -m comment --comment \"a \\\r\n  b\" -j Y\r\n",
        ] {
            let l: Vec<Line> = lines(text).collect();
            assert_eq!(l.len(), 1, "{text:?}");
            assert!(l[0].problems.is_empty(), "{:?}", l[0].problems);
            assert_eq!(l[0].tokens[5].text, "a   b");
            assert_eq!(l[0].tokens[7].span.line, 2);
        }
    }

    #[test]
    fn a_single_quoted_word_over_two_lines_is_a_problem() {
        let l: Vec<Line> = lines("-A X -m comment --comment 'a \\\n b' -j Y\n").collect();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].problems.len(), 1, "{:?}", l[0].problems);
    }

    #[test]
    fn single_quotes_and_concatenation() {
        let w = words("iptables -A INPUT -j LOG --log-prefix 'in put: '\"x\"");
        assert_eq!(w[0].last().unwrap(), "in put: x");
    }

    #[test]
    fn unterminated_quote_is_a_problem_not_a_failure() {
        let l: Vec<Line> = lines("-A X -m comment --comment \"oops\n-A Y -j ACCEPT\n").collect();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].problems.len(), 1);
        assert_eq!(l[0].tokens.last().unwrap().text, "oops");
        assert!(l[1].problems.is_empty());
    }

    #[test]
    fn spans_point_at_the_words() {
        let text = "-A X -j \"Y\"";
        let l = lines(text).next().unwrap();
        let t = &l.tokens[3];
        assert_eq!(&text[t.span.start as usize..t.span.end as usize], "\"Y\"");
        assert!(t.quoted);
        assert!(l.tokens[0].is_option());
        assert!(!t.is_option());
    }

    /// Checks that `text`'s lines and tokens are ordered, inside their line,
    /// and that only whitespace and `\` continuations lie between tokens.
    fn check_spans(text: &str) -> Result<(), String> {
        let bytes = text.as_bytes();
        let mut prev_line_end = 0;
        for line in lines(text) {
            let (ls, le) = (line.span.start as usize, line.span.end as usize);
            if ls > le || ls < prev_line_end || le > text.len() {
                return Err(format!("line span {ls}..{le} out of order"));
            }
            prev_line_end = le;
            let mut pos = ls;
            for t in &line.tokens {
                let (ts, te) = (t.span.start as usize, t.span.end as usize);
                if ts >= te {
                    return Err(format!("empty or reversed token span {ts}..{te}"));
                }
                if ts < pos || te > le {
                    return Err(format!(
                        "token {ts}..{te} overlaps the previous one or leaves line {ls}..{le}"
                    ));
                }
                if t.span.line < line.span.line {
                    return Err(format!("token {ts}..{te} starts before its line"));
                }
                gap(bytes, pos, ts)?;
                pos = te;
            }
            gap(bytes, pos, le)?;
            for (p, _) in &line.problems {
                if (p.start as usize) < ls || p.end as usize > le {
                    return Err(format!("problem {p:?} outside its line"));
                }
            }
        }
        Ok(())
    }

    /// `bytes[from..to]` is blank: whitespace and continuation backslashes.
    fn gap(bytes: &[u8], from: usize, to: usize) -> Result<(), String> {
        for i in from..to {
            let ok = match bytes[i] {
                b' ' | b'\t' | b'\r' | b'\n' => true,
                b'\\' => matches!(bytes.get(i + 1), Some(b'\n' | b'\r')),
                _ => false,
            };
            if !ok {
                return Err(format!("byte {i} ({:?}) is in no token", bytes[i] as char));
            }
        }
        Ok(())
    }

    #[test]
    fn spans_of_known_lines() {
        for text in [
            "-A X -m comment --comment \"a  b\" -j Y\n",
            "sudo iptables \\\n  -t nat \\\r\n -N X\n\n*nat\r\n",
            "-A X --log-prefix 'a b'\"c\"d \"unterminated\n-A Y\n",
            "\\",
        ] {
            check_spans(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn spans_are_ordered_inside_their_line_and_cover_it(
            text in "[ a!#:*\"'\\\\\n\r\t\u{e9}-]{0,48}"
        ) {
            if let Err(e) = check_spans(&text) {
                proptest::prop_assert!(false, "{:?}: {}", text, e);
            }
        }
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        for text in ["\\", "\"", "'", "\\\n", "a\\", "é\"\\é", "\r\n\r", "\"\\"] {
            let _ = lines(text).count();
        }
    }
    /// The lexer as it was before the byte-class table, the first-byte
    /// checks and spans made at the piece's base: the oracle the new one
    /// must agree with exactly.
    mod oracle {
        use std::borrow::Cow;

        use super::super::{next_char, Line, Token};
        use crate::source::Span;

        /// The old [`super::super::Lines`].
        pub(super) struct OldLines<'a> {
            pub(super) text: &'a str,
            pub(super) pos: usize,
            pub(super) line: u32,
            pub(super) comments: bool,
            pub(super) base: usize,
        }

        impl<'a> OldLines<'a> {
            /// Like [`Iterator::next`], into `line`, whose buffers are reused: the
            /// parser reads a 400k-line dump without allocating a token list per line.
            /// Returns false (leaving `line` empty) at the end of the text.
            pub(super) fn next_into(&mut self, line: &mut Line<'a>) -> bool {
                line.tokens.clear();
                line.problems.clear();
                loop {
                    if self.pos >= self.text.len() {
                        return false;
                    }
                    let bytes = self.text.as_bytes();
                    let start = self.pos;
                    let start_line = self.line;
                    // Find the end of the logical line: a newline not preceded by a
                    // continuation backslash.
                    let mut end;
                    let mut search = start;
                    loop {
                        match memchr::memchr(b'\n', &bytes[search..]) {
                            Some(i) => {
                                end = search + i;
                                self.line += 1;
                                let content = trim_cr(&self.text[start..end]);
                                if content.ends_with('\\') && !content.ends_with("\\\\") {
                                    search = end + 1;
                                    continue;
                                }
                                self.pos = end + 1;
                            }
                            None => {
                                end = bytes.len();
                                self.pos = end;
                            }
                        }
                        break;
                    }
                    let raw = &self.text[start..end];
                    let trimmed = raw.trim_start();
                    if trimmed.trim().is_empty() || (trimmed.starts_with('#') && !self.comments) {
                        continue;
                    }
                    tokenize(self.text, start, end, start_line, line);
                    if self.base != 0 {
                        shift(line, self.base);
                    }
                    return true;
                }
            }
        }

        /// The line number the next line starts on.
        impl OldLines<'_> {
            pub(super) fn line_number(&self) -> u32 {
                self.line
            }

            /// Where (in the piece) the next line starts, or blank lines before it.
            pub(super) fn position(&self) -> usize {
                self.pos
            }
        }

        /// Moves a piece's spans to where the piece is in the whole text.
        fn shift(line: &mut Line<'_>, base: usize) {
            let by = |s: &mut Span| {
                s.start += base as u32;
                s.end += base as u32;
            };
            by(&mut line.span);
            line.tokens.iter_mut().for_each(|t| by(&mut t.span));
            line.problems.iter_mut().for_each(|(s, _)| by(s));
        }

        fn trim_cr(s: &str) -> &str {
            s.strip_suffix('\r')
                .unwrap_or(s)
                .trim_end_matches([' ', '\t'])
        }

        /// Tokenizes `text[start..end]`, whose first byte is on line `line`, into
        /// `out` (whose token and problem lists are empty).
        fn tokenize<'a>(text: &'a str, start: usize, end: usize, line: u32, out: &mut Line<'a>) {
            let bytes = text.as_bytes();
            let tokens = &mut out.tokens;
            let problems = &mut out.problems;
            let mut i = start;
            let mut line_no = line;
            while i < end {
                let b = bytes[i];
                if b == b'\n' {
                    line_no += 1;
                    i += 1;
                    continue;
                }
                if b == b' ' || b == b'\t' || b == b'\r' {
                    i += 1;
                    continue;
                }
                if b == b'\\' && i + 1 < end && (bytes[i + 1] == b'\n' || bytes[i + 1] == b'\r') {
                    // A continuation: the newline is skipped on the next turn.
                    i += 1;
                    continue;
                }
                let tok_start = i;
                let tok_line = line_no;
                // Fast path: a plain word with no quotes or escapes borrows the text.
                let mut j = i;
                while j < end
                    && !matches!(
                        bytes[j],
                        b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'\\'
                    )
                {
                    j += 1;
                }
                if j == end || matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
                    tokens.push(Token {
                        text: Cow::Borrowed(&text[i..j]),
                        span: Span::new(i, j, tok_line),
                        quoted: false,
                    });
                    i = j;
                    continue;
                }
                // A single double-quoted word without escapes also borrows.
                if j == i && bytes[i] == b'"' {
                    if let Some(close) = memchr::memchr2(b'"', b'\\', &bytes[i + 1..end]) {
                        let close = i + 1 + close;
                        let after = close + 1;
                        if bytes[close] == b'"'
                            && (after == end
                                || matches!(bytes[after], b' ' | b'\t' | b'\r' | b'\n'))
                            && memchr::memchr(b'\n', &bytes[i + 1..close]).is_none()
                        {
                            tokens.push(Token {
                                text: Cow::Borrowed(&text[i + 1..close]),
                                span: Span::new(i, after, tok_line),
                                quoted: true,
                            });
                            i = after;
                            continue;
                        }
                    }
                }
                // General case: shell-like word with quotes and escapes.
                let mut value = String::new();
                let mut quoted = false;
                while i < end && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                    match bytes[i] {
                        b'"' => {
                            quoted = true;
                            let open = i;
                            // A word can continue onto a later line: a quote opened
                            // there is reported on that line, not the word's first.
                            let open_line = line_no;
                            i += 1;
                            let mut closed = false;
                            while i < end {
                                match bytes[i] {
                                    b'"' => {
                                        closed = true;
                                        i += 1;
                                        break;
                                    }
                                    b'\\'
                                        if i + 1 < end
                                            && matches!(
                                                bytes[i + 1],
                                                b'"' | b'\\' | b'$' | b'`'
                                            ) =>
                                    {
                                        value.push(bytes[i + 1] as char);
                                        i += 2;
                                    }
                                    // As in a shell, a backslash-newline inside double
                                    // quotes is a continuation and vanishes: the word
                                    // never holds a line break the printer could not
                                    // write back on one line.
                                    b'\\' if bytes[i + 1..end].starts_with(b"\n") => {
                                        line_no += 1;
                                        i += 2;
                                    }
                                    b'\\' if bytes[i + 1..end].starts_with(b"\r\n") => {
                                        line_no += 1;
                                        i += 3;
                                    }
                                    b'\n' => {
                                        problems.push((
                                            Span::new(open, i, open_line),
                                            "a quoted word continues onto the next line",
                                        ));
                                        line_no += 1;
                                        value.push('\n');
                                        i += 1;
                                    }
                                    _ => {
                                        let ch = next_char(text, i);
                                        value.push(ch);
                                        i += ch.len_utf8();
                                    }
                                }
                            }
                            if !closed {
                                problems.push((
                                    Span::new(open, end, open_line),
                                    "unterminated `\"` quote",
                                ));
                            }
                        }
                        b'\'' => {
                            quoted = true;
                            let open = i;
                            let open_line = line_no;
                            match memchr::memchr(b'\'', &bytes[i + 1..end]) {
                                Some(close) => {
                                    let close = i + 1 + close;
                                    line_no += memchr::memchr_iter(b'\n', &bytes[i + 1..close])
                                        .count()
                                        as u32;
                                    value.push_str(&text[i + 1..close]);
                                    if memchr::memchr(b'\n', &bytes[i + 1..close]).is_some() {
                                        // Only a continuation gets a newline here, and
                                        // single quotes keep it literally: no rule
                                        // file can hold such a word on one line.
                                        problems.push((
                                            Span::new(open, close + 1, open_line),
                                            "a single-quoted word continues onto the next line",
                                        ));
                                    }
                                    i = close + 1;
                                }
                                None => {
                                    value.push_str(&text[i + 1..end]);
                                    problems.push((
                                        Span::new(open, end, open_line),
                                        "unterminated `'` quote",
                                    ));
                                    i = end;
                                }
                            }
                        }
                        b'\\' => {
                            if i + 1 < end && bytes[i + 1] != b'\n' {
                                let ch = next_char(text, i + 1);
                                value.push(ch);
                                i += 1 + ch.len_utf8();
                            } else {
                                i += 1;
                            }
                        }
                        _ => {
                            let ch = next_char(text, i);
                            value.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                tokens.push(Token {
                    text: Cow::Owned(value),
                    span: Span::new(tok_start, i, tok_line),
                    quoted,
                });
            }
            out.span = Span::new(start, end, line);
        }
    }

    /// Pieces of text that meet every branch of the lexer: quotes, escapes,
    /// continuations (inside quotes too, and with blanks or `\r` before the
    /// newline), CRLF, tabs, blank and `#` lines, Unicode white space and
    /// other multi-byte characters, unterminated quotes.
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\r",
        "\\\n",
        "\\\r\n",
        " \\\n",
        "\\ \n",
        "\\\t\r\n",
        "\\\\\n",
        "\\\\",
        "\\",
        "\"",
        "'",
        "\\\"",
        "\\'",
        "\\$",
        "\\`",
        "\"a b\"",
        "\"a\\\nb\"",
        "\"a\\\r\nb\"",
        "'x y'",
        "'x\\\ny'",
        "#",
        "# c 'd\n",
        "\n\n",
        "  # e\n",
        "-A",
        "-j",
        "KUBE-X",
        ":",
        "a",
        "b9",
        "!",
        "$",
        "`",
        "\u{e9}",
        "\u{65e5}\u{672c}",
        "\u{1f600}",
        "\u{a0}",
        "\u{2003}",
        "\u{b}",
        "\u{c}",
        "\u{85}",
        "\"\u{e9}\"",
        "\\\u{e9}",
    ];

    /// The lines of a lexer as plain values, with what its iterator says
    /// between them: (tokens as (text, borrowed, span, quoted), line span,
    /// problems, position and line number after the line).
    type Lexed = Vec<(
        Vec<(String, bool, Span, bool)>,
        Span,
        Vec<(Span, &'static str)>,
        usize,
        u32,
    )>;

    fn record<'a>(mut next: impl FnMut(&mut Line<'a>) -> Option<(usize, u32)>) -> Lexed {
        let mut out = Vec::new();
        let mut line = Line {
            tokens: Vec::new(),
            span: Span::default(),
            problems: Vec::new(),
        };
        while let Some((pos, line_no)) = next(&mut line) {
            let tokens = line
                .tokens
                .iter()
                .map(|t| {
                    let borrowed = matches!(t.text, Cow::Borrowed(_));
                    (t.text.to_string(), borrowed, t.span, t.quoted)
                })
                .collect();
            out.push((tokens, line.span, line.problems.clone(), pos, line_no));
        }
        out
    }

    fn lex_new(text: &str, comments: bool, base: usize, line: u32) -> Lexed {
        let mut lines = Lines {
            comments,
            ..piece_lines(text, base, line)
        };
        record(|l| {
            lines
                .next_into(l)
                .then(|| (lines.position(), lines.line_number()))
        })
    }

    fn lex_old(text: &str, comments: bool, base: usize, line: u32) -> Lexed {
        let mut lines = oracle::OldLines {
            text,
            pos: 0,
            line,
            comments,
            base,
        };
        record(|l| {
            lines
                .next_into(l)
                .then(|| (lines.position(), lines.line_number()))
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn lexes_as_the_old_lexer_did(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            comments: bool,
            base in proptest::prop_oneof![proptest::strategy::Just(0usize), 1usize..100_000],
            line in 1u32..1000,
        ) {
            let text = pieces.concat();
            proptest::prop_assert_eq!(
                lex_new(&text, comments, base, line),
                lex_old(&text, comments, base, line),
                "{:?}", text
            );
        }
    }
}
