//! A fast reader for the plain YAML subset that `kubectl get -o yaml` and
//! our own writers produce: block mappings and sequences, single-line flow
//! collections, plain scalars, and single- or double-quoted scalars without
//! escapes, with comments anywhere a comment may go.
//!
//! It builds exactly the tree (values and spans) that [`super::yaml`] builds
//! from granit's events, or declines with `None` as soon as it meets anything
//! outside the subset (anchors, aliases, tags, block scalars, escapes,
//! multi-line scalars or flows, directives, document markers, tabs, CR,
//! non-ASCII outside comments, duplicate keys, syntax errors, ...). The caller
//! then hands the whole text to granit, so a decline can never change a
//! result, and every error message still comes from granit. When streaming
//! ([`parse_streaming`]) the objects of the top-level `objects:` sequence
//! are handed over as they are read, so a decline can come after some were;
//! granit then hands them over again from index 0 and the reader of the
//! input starts over.
//!
//! Why it exists: walking granit's event stream costs about 50 ns per event,
//! which is most of the reference generator's time on a 10,000-Service input.
//!
//! Span conventions, as granit reports them (and the tests compare): a
//! scalar covers its text (quotes included, trailing spaces not); a flow
//! collection covers its brackets; a block collection runs from its first
//! token to the first token after it (comments and blank lines in between
//! included) or the end of the text; an indentless sequence (`key:` then
//! `- item` at the key's indentation) starts at its first item; an empty
//! mapping value sits on its `:`, an empty sequence item at the end of its
//! `-` line (after any comment).

use std::borrow::Cow;

use super::yaml::{Node, Scalar, Value};
use kpconform_iptables::Span;

/// Implicit keys longer than this are an error in YAML; we leave them to granit.
const MAX_KEY: usize = 1000;

/// The documents of `text`, or `None` if `text` is not in the subset.
pub(crate) fn parse(text: &str) -> Option<Vec<Node<'_>>> {
    parse_streaming(text, None)
}

/// Where the items of the root mapping's block sequence under `key` go, as
/// soon as each is read (the sequence is left empty, with its span).
pub(crate) struct Stream<'s, 't> {
    pub(crate) key: &'s str,
    pub(crate) sink: &'s mut dyn FnMut(usize, Node<'t>),
}

/// [`parse`], handing the items under `stream.key` to `stream.sink` while
/// reading, so the whole tree is never held. A decline (`None`) can come
/// after items were handed over: the caller then starts over.
pub(crate) fn parse_streaming<'t>(
    text: &'t str,
    stream: Option<Stream<'_, 't>>,
) -> Option<Vec<Node<'t>>> {
    if !acceptable_bytes(text) {
        return None;
    }
    let mut r = Reader {
        text,
        s: text.as_bytes(),
        pos: 0,
        line: 1,
        line_start: 0,
        stream,
        stream_next_seq: false,
    };
    // An empty stream (only blanks and comments) is rare and granit's
    // answer is cheap: leave it to granit rather than model it here.
    if !r.next_token()? || r.column() != 0 {
        return None;
    }
    let root = if r.dash_entry() {
        r.block_seq(0, false)?
    } else if r.scan_key(r.pos).is_some() {
        r.block_map(0)?
    } else {
        return None;
    };
    // Anything left is outside the subset (or an error).
    if r.pos != r.s.len() {
        return None;
    }
    Some(vec![root])
}

/// Only newline, printable ASCII, and non-ASCII text that is no line break
/// or BOM (non-ASCII is then only accepted inside comments, by the reader).
fn acceptable_bytes(text: &str) -> bool {
    let mut non_ascii = false;
    for &b in text.as_bytes() {
        if b >= 0x80 {
            non_ascii = true;
        } else if (b < 0x20 && b != b'\n') || b == 0x7f {
            return false;
        }
    }
    !non_ascii || !text.contains(['\u{85}', '\u{2028}', '\u{2029}', '\u{feff}'])
}

struct Reader<'s, 't> {
    /// Set by the root mapping when the value of the streamed key is the
    /// block sequence about to be read: that sequence's items go to the
    /// sink (taken by the `block_seq` call it is meant for, so no nested
    /// sequence sees it).
    stream_next_seq: bool,
    stream: Option<Stream<'s, 't>>,
    text: &'t str,
    s: &'t [u8],
    pos: usize,
    /// 1-based line of `pos`.
    line: u32,
    /// Offset of the first byte of `line`.
    line_start: usize,
}

/// A key scanned ahead: its node and the offset of its `:`.
struct Key<'t> {
    node: Node<'t>,
    colon: usize,
}

impl<'t> Reader<'_, 't> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn column(&self) -> usize {
        self.pos - self.line_start
    }

    fn skip_spaces(&mut self) {
        while self.at(self.pos) == b' ' {
            self.pos += 1;
        }
    }

    /// Moves to the next token at the start of a line's content, over blank
    /// lines and comment lines; `false` at the end of the text. Declines
    /// (`None`) at document markers and directives.
    fn next_token(&mut self) -> Option<bool> {
        loop {
            self.skip_spaces();
            match self.at(self.pos) {
                0 if self.pos >= self.s.len() => return Some(false),
                b'\n' => self.newline(),
                b'#' => self.skip_comment(),
                _ => {
                    if self.column() == 0 {
                        let rest = &self.s[self.pos..];
                        if rest.starts_with(b"---") || rest.starts_with(b"...") || rest[0] == b'%' {
                            return None;
                        }
                    }
                    return Some(true);
                }
            }
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    /// Skips a comment to (not over) the end of its line.
    fn skip_comment(&mut self) {
        match memchr(b'\n', &self.s[self.pos..]) {
            Some(i) => self.pos += i,
            None => self.pos = self.s.len(),
        }
    }

    /// After a node that ends its line: spaces, an optional comment (after
    /// a space), the line break; then on to the next token.
    fn end_line(&mut self) -> Option<bool> {
        let before = self.pos;
        self.skip_spaces();
        match self.at(self.pos) {
            b'#' if self.pos > before => self.skip_comment(),
            b'\n' => {}
            0 if self.pos >= self.s.len() => {}
            _ => return None,
        }
        self.next_token()
    }

    /// A `-` block entry indicator at `pos`.
    fn dash_entry(&self) -> bool {
        self.at(self.pos) == b'-' && matches!(self.at(self.pos + 1), b' ' | b'\n' | 0)
    }

    fn span(&self, start: usize, end: usize, line: u32) -> Span {
        Span::new(start, end, line)
    }

    fn empty(&self, at: usize, line: u32) -> Node<'t> {
        Node {
            value: Value::Scalar(Scalar {
                // granit reports an empty node as the plain scalar `~`.
                text: Cow::Borrowed("~"),
                plain: true,
            }),
            span: self.span(at, at, line),
        }
    }

    fn scalar(&self, start: usize, end: usize, text: (usize, usize), plain: bool) -> Node<'t> {
        Node {
            value: Value::Scalar(Scalar {
                text: Cow::Borrowed(&self.text[text.0..text.1]),
                plain,
            }),
            span: self.span(start, end, self.line),
        }
    }

    /// A block mapping key starting at `from` on the current line (`key:`
    /// followed by a space, a line break or the end), without moving.
    fn scan_key(&self, from: usize) -> Option<Key<'t>> {
        let (node, end) = match self.at(from) {
            b'\'' | b'"' => self.quoted_at(from)?,
            _ => {
                if !plain_start(self.at(from), self.at(from + 1)) {
                    return None;
                }
                let mut i = from;
                loop {
                    match self.at(i) {
                        b':' if matches!(self.at(i + 1), b' ' | b'\n' | 0) => break,
                        b'#' if self.at(i - 1) == b' ' => return None,
                        b'\n' => return None,
                        0 if i >= self.s.len() => return None,
                        b if b >= 0x80 => return None,
                        _ => i += 1,
                    }
                }
                // `a : 1`: granit's key span would exclude the space; rare
                // enough to leave to granit.
                if self.at(i - 1) == b' ' {
                    return None;
                }
                (self.scalar(from, i, (from, i), true), i)
            }
        };
        if end - from > MAX_KEY
            || self.at(end) != b':'
            || !matches!(self.at(end + 1), b' ' | b'\n' | 0)
        {
            return None;
        }
        Some(Key { node, colon: end })
    }

    /// A quoted scalar starting at `from` on one line, without escapes; the
    /// node and the offset after its closing quote.
    fn quoted_at(&self, from: usize) -> Option<(Node<'t>, usize)> {
        let quote = self.at(from);
        let mut i = from + 1;
        loop {
            match self.at(i) {
                b if b == quote => break,
                b'\\' if quote == b'"' => return None,
                b'\n' => return None,
                0 if i >= self.s.len() => return None,
                b if b >= 0x80 => return None,
                _ => i += 1,
            }
        }
        // `'it''s'` is an escaped quote.
        if quote == b'\'' && self.at(i + 1) == b'\'' {
            return None;
        }
        Some((self.scalar(from, i + 1, (from + 1, i), false), i + 1))
    }

    /// The block mapping whose keys sit at column `indent`; the cursor is on
    /// its first key and ends on the first token after it.
    fn block_map(&mut self, indent: usize) -> Option<Node<'t>> {
        let (start, line) = (self.pos, self.line);
        let mut entries: Vec<(Node<'t>, Node<'t>)> = Vec::new();
        let end = loop {
            let Key { node: key, colon } = self.scan_key(self.pos)?;
            // Only the root mapping sits at column 0 (a single document).
            let streamed = indent == 0
                && self
                    .stream
                    .as_ref()
                    .is_some_and(|st| key.scalar().is_some_and(|k| k.text == st.key));
            let colon_line = self.line;
            self.pos = colon + 1;
            self.skip_spaces();
            let value = match self.at(self.pos) {
                b'#' | b'\n' | 0 => {
                    if self.at(self.pos) == b'#' {
                        self.skip_comment();
                    }
                    let more = self.next_token()?;
                    let col = self.column();
                    if more && col > indent {
                        self.stream_next_seq = streamed && self.dash_entry();
                        self.block_node()?
                    } else if more && col == indent && self.dash_entry() {
                        self.stream_next_seq = streamed;
                        self.block_seq(indent, true)?
                    } else {
                        self.empty(colon, colon_line)
                    }
                }
                _ => {
                    let value = self.inline_value()?;
                    self.end_line()?;
                    value
                }
            };
            let key_text = key.scalar().map(|s| &*s.text)?;
            // Duplicates are an error: granit's reader reports it.
            if entries
                .iter()
                .any(|(k, _)| k.scalar().is_some_and(|s| s.text == key_text))
            {
                return None;
            }
            entries.push((key, value));
            if self.pos >= self.s.len() {
                break self.pos;
            }
            let col = self.column();
            if col < indent {
                break self.pos;
            }
            if col > indent || self.dash_entry() {
                return None;
            }
        };
        Some(Node {
            value: Value::Map(entries),
            span: self.span(start, end, line),
        })
    }

    /// The block sequence whose `-` sit at column `indent` (`indentless`:
    /// the value of a key at that same column); the cursor is on its first
    /// `-` and ends on the first token after it.
    fn block_seq(&mut self, indent: usize, indentless: bool) -> Option<Node<'t>> {
        // Where the sequence starts unless indentless: its first `-`.
        let first_dash = (self.pos, self.line);
        // Where an indentless sequence starts: after its first `-` (and
        // spaces), or at the end of that line if the item is not on it.
        let mut first_item = None;
        let mut items: Vec<Node<'t>> = Vec::new();
        let streamed = std::mem::take(&mut self.stream_next_seq);
        let mut handed = 0;
        let end = loop {
            self.pos += 1;
            self.skip_spaces();
            let item = match self.at(self.pos) {
                b'#' | b'\n' | 0 => {
                    if self.at(self.pos) == b'#' {
                        self.skip_comment();
                    }
                    let (at, line) = (self.pos, self.line);
                    first_item.get_or_insert((at, line));
                    if self.next_token()? && self.column() > indent {
                        self.block_node()?
                    } else {
                        self.empty(at, line)
                    }
                }
                _ => {
                    first_item.get_or_insert((self.pos, self.line));
                    let col = self.column();
                    if self.dash_entry() {
                        self.block_seq(col, false)?
                    } else if self.scan_key(self.pos).is_some() {
                        self.block_map(col)?
                    } else {
                        let value = self.inline_value()?;
                        self.end_line()?;
                        value
                    }
                }
            };
            match &mut self.stream {
                Some(stream) if streamed => {
                    (stream.sink)(handed, item);
                    handed += 1;
                }
                _ => items.push(item),
            }
            if self.pos >= self.s.len() {
                break self.pos;
            }
            let col = self.column();
            if col < indent || (col == indent && indentless && !self.dash_entry()) {
                break self.pos;
            }
            if col > indent || !self.dash_entry() {
                return None;
            }
        };
        let (start, line) = if indentless { first_item? } else { first_dash };
        Some(Node {
            value: Value::Seq(items),
            span: self.span(start, end, line),
        })
    }

    /// A block collection starting a new line (deeper than its parent).
    fn block_node(&mut self) -> Option<Node<'t>> {
        let col = self.column();
        if self.dash_entry() {
            self.block_seq(col, false)
        } else if self.scan_key(self.pos).is_some() {
            self.block_map(col)
        } else {
            None
        }
    }

    /// A value on the rest of a block line: a flow collection, a quoted or a
    /// plain scalar (which must not look like a key or an indicator).
    fn inline_value(&mut self) -> Option<Node<'t>> {
        match self.at(self.pos) {
            b'[' | b'{' => self.flow_node(),
            b'\'' | b'"' => {
                let (node, end) = self.quoted_at(self.pos)?;
                self.pos = end;
                Some(node)
            }
            b => {
                if !plain_start(b, self.at(self.pos + 1)) {
                    return None;
                }
                let start = self.pos;
                let mut i = start;
                loop {
                    match self.at(i) {
                        b':' if matches!(self.at(i + 1), b' ' | b'\n' | 0) => return None,
                        b'#' if self.at(i - 1) == b' ' => break,
                        b'\n' => break,
                        0 if i >= self.s.len() => break,
                        b if b >= 0x80 => return None,
                        _ => i += 1,
                    }
                }
                let mut end = i;
                while self.at(end - 1) == b' ' {
                    end -= 1;
                }
                self.pos = end;
                Some(self.scalar(start, end, (start, end), true))
            }
        }
    }

    /// A flow node on the current line.
    fn flow_node(&mut self) -> Option<Node<'t>> {
        match self.at(self.pos) {
            b'[' => self.flow_seq(),
            b'{' => self.flow_map(),
            b'\'' | b'"' => {
                let (node, end) = self.quoted_at(self.pos)?;
                if !matches!(self.at(end), b' ' | b',' | b']' | b'}' | b':') {
                    return None;
                }
                self.pos = end;
                Some(node)
            }
            b => {
                if !plain_start(b, self.at(self.pos + 1)) {
                    return None;
                }
                let start = self.pos;
                let mut i = start;
                loop {
                    match self.at(i) {
                        b',' | b'[' | b']' | b'{' | b'}' => break,
                        // `:` ends a plain scalar in a flow before a space;
                        // before anything else but a letter or digit it is
                        // left to granit.
                        b':' => match self.at(i + 1) {
                            b' ' => break,
                            c if c.is_ascii_alphanumeric() || c == b':' => i += 1,
                            _ => return None,
                        },
                        b'#' | b'\'' | b'"' | b'\n' => return None,
                        0 if i >= self.s.len() => return None,
                        b if b >= 0x80 => return None,
                        _ => i += 1,
                    }
                }
                let mut end = i;
                while self.at(end - 1) == b' ' {
                    end -= 1;
                }
                self.pos = end;
                Some(self.scalar(start, end, (start, end), true))
            }
        }
    }

    fn flow_seq(&mut self) -> Option<Node<'t>> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            if self.at(self.pos) == b']' {
                break;
            }
            items.push(self.flow_node()?);
            self.skip_spaces();
            match self.at(self.pos) {
                b',' => self.pos += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(Node {
            value: Value::Seq(items),
            span: self.span(start, self.pos, self.line),
        })
    }

    fn flow_map(&mut self) -> Option<Node<'t>> {
        let start = self.pos;
        self.pos += 1;
        let mut entries: Vec<(Node<'t>, Node<'t>)> = Vec::new();
        loop {
            self.skip_spaces();
            if self.at(self.pos) == b'}' {
                break;
            }
            if matches!(self.at(self.pos), b'[' | b'{') {
                return None;
            }
            let key = self.flow_node()?;
            // Only `key: value`; `key:value`, `key` alone, `key :` are left
            // to granit.
            if self.at(self.pos) != b':' || self.at(self.pos + 1) != b' ' {
                return None;
            }
            self.pos += 1;
            self.skip_spaces();
            if matches!(self.at(self.pos), b',' | b'}') {
                return None;
            }
            let value = self.flow_node()?;
            let key_text = key.scalar().map(|s| &*s.text)?;
            if entries
                .iter()
                .any(|(k, _)| k.scalar().is_some_and(|s| s.text == key_text))
            {
                return None;
            }
            entries.push((key, value));
            self.skip_spaces();
            match self.at(self.pos) {
                b',' => self.pos += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(Node {
            value: Value::Map(entries),
            span: self.span(start, self.pos, self.line),
        })
    }
}

/// Whether a plain scalar may start with `b` (followed by `next`): letters,
/// digits and a few safe punctuation marks; `-`, `?`, `:` only before a
/// letter, digit, `.`, `/` or `:` (IPv6 addresses such as `::1`). Everything else (indicators) is left to granit.
fn plain_start(b: u8, next: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'/' | b'_' | b'~' | b'+' | b'$' | b'(' | b'=' | b'^' | b';'
        )
        || (matches!(b, b'-' | b'?' | b':')
            && (next.is_ascii_alphanumeric() || matches!(next, b'.' | b'/' | b':')))
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::super::yaml::{parse_documents_granit, Node, Value};
    use super::parse;
    use proptest::prelude::*;

    /// Asserts that whenever the fast reader accepts `text`, granit reads
    /// the identical tree (values, scalar styles and every span); returns
    /// whether the fast reader accepted.
    fn agrees(text: &str) -> bool {
        let Some(fast) = parse(text) else {
            return false;
        };
        let slow = parse_documents_granit(text);
        assert_eq!(Ok(&fast), slow.as_ref(), "fast reader differs on {text:?}");
        true
    }

    /// A small deterministic generator (xorshift), so one `u64` seed
    /// describes a whole document and proptest can shrink the seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const WORDS: &[&str] = &[
        "a",
        "b c",
        "10.96.0.1",
        "node-a",
        "80",
        "-1",
        "0.5",
        "~",
        "null",
        "true",
        "x#y",
        "x #y",
        "a: b",
        "a:b",
        "http://x/y",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "-",
        "- x",
        "?x",
        ":x",
        "a,b",
        "[x]",
        "{y}",
        "é",
        "t ",
        " l",
        "#c",
        "10.64.1.5:8080",
        "",
        "-.5",
        "a:",
        "::1/128",
        "fd00::1",
        "::",
        ":::",
        "a::",
        "&x",
        "*x",
        "!t",
        "|",
        ">",
        "%x",
        "@x",
        "`x",
        "...",
        "---",
        "a\tb",
        "~x",
    ];

    /// Words well inside the subset, so that most documents are accepted.
    const SAFE: &[&str] = &[
        "a",
        "node-a",
        "10.96.0.1",
        "80",
        "v1",
        "b c",
        "x/y",
        "fd00::1",
    ];

    fn scalar(rng: &mut Rng, out: &mut String, flow: bool) {
        keyed(rng, out, flow, "");
    }

    /// A scalar whose text ends in `suffix` (keys are made distinct so).
    fn keyed(rng: &mut Rng, out: &mut String, flow: bool, suffix: &str) {
        let w = &*format!(
            "{}{suffix}",
            if rng.chance(85) {
                rng.pick(SAFE)
            } else {
                rng.pick(WORDS)
            }
        );
        match rng.below(if flow { 4 } else { 3 }) {
            0 => {
                out.push('\'');
                out.push_str(w);
                out.push('\'');
            }
            1 => {
                out.push('"');
                out.push_str(w);
                out.push('"');
            }
            _ => out.push_str(w),
        }
    }

    fn comment(rng: &mut Rng, out: &mut String) {
        match rng.below(40) {
            0..=3 => out.push_str(" # note"),
            4 | 5 => out.push_str(" #é: [x"),
            6..=8 => out.push_str("  "),
            9 => out.push('#'),
            _ => {}
        }
    }

    fn newline(rng: &mut Rng, out: &mut String, indent: usize) {
        comment(rng, out);
        if rng.chance(2) {
            out.push('\r');
        }
        out.push('\n');
        match rng.below(15) {
            0 => out.push('\n'),
            1 => {
                out.push_str(&" ".repeat(rng.below(6)));
                out.push_str("# between\n");
            }
            2 => out.push_str(&format!("{}\n", " ".repeat(indent + 1))),
            _ => {}
        }
    }

    fn flow(rng: &mut Rng, out: &mut String, depth: usize) {
        let n = rng.below(4);
        let map = rng.chance(50);
        out.push(if map { '{' } else { '[' });
        if rng.chance(10) {
            out.push(' ');
        }
        for i in 0..n {
            if i > 0 {
                out.push_str(rng.pick(&[", ", ",", " , ", ",  "]));
            }
            if map {
                scalar(rng, out, true);
                out.push_str(rng.pick(&[": ", ": ", ": ", ": ", ":", " : ", ":  "]));
            }
            if depth < 3 && rng.chance(25) {
                flow(rng, out, depth + 1);
            } else if !(map && rng.chance(3)) {
                scalar(rng, out, true);
            }
        }
        if n > 0 && rng.chance(5) {
            out.push(',');
        }
        out.push(if map { '}' } else { ']' });
    }

    /// A block collection at `indent`; the caller has placed the cursor
    /// there (after a line break and `indent` spaces, or after `- `).
    fn block(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
        let map = rng.chance(60);
        let n = 1 + rng.below(4);
        for i in 0..n {
            if i > 0 {
                out.push_str(&" ".repeat(indent));
            }
            if map {
                // Mostly distinct keys: duplicates are declined.
                let suffix = if rng.chance(80) {
                    i.to_string()
                } else {
                    String::new()
                };
                keyed(rng, out, false, &suffix);
                out.push(':');
            } else {
                out.push('-');
            }
            value(rng, out, indent, depth, map);
        }
    }

    /// What follows a `key:` or a `-` at `indent`, up to and including the
    /// line break.
    fn value(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, in_map: bool) {
        let deeper = indent + 1 + rng.below(3);
        match rng.below(if depth < 4 { 8 } else { 4 }) {
            0 => newline(rng, out, indent),
            1 | 2 => {
                out.push(' ');
                scalar(rng, out, false);
                newline(rng, out, indent);
            }
            3 => {
                out.push(' ');
                flow(rng, out, 0);
                newline(rng, out, indent);
            }
            4 if !in_map => {
                // A compact collection on the `-` line.
                out.push(' ');
                block(rng, out, indent + 2, depth + 1);
            }
            5 if in_map => {
                // An indentless sequence.
                newline(rng, out, indent);
                out.push_str(&" ".repeat(indent));
                let n = 1 + rng.below(3);
                for i in 0..n {
                    if i > 0 {
                        out.push_str(&" ".repeat(indent));
                    }
                    out.push('-');
                    value(rng, out, indent, depth + 1, false);
                }
            }
            _ => {
                newline(rng, out, indent);
                out.push_str(&" ".repeat(deeper));
                block(rng, out, deeper, depth + 1);
            }
        }
    }

    fn document(seed: u64) -> String {
        let mut rng = Rng(seed | 1);
        let mut out = String::new();
        match rng.below(30) {
            0 => out.push('\u{feff}'),
            1 => out.push_str("---\n"),
            2 => out.push_str("# head\n\n"),
            _ => {}
        }
        block(&mut rng, &mut out, 0, 0);
        match rng.below(30) {
            0 => out.push_str("---\nz: 1\n"),
            1 => out.push_str("...\n"),
            2 => out.pop().map(|_| ()).unwrap_or(()),
            _ => {}
        }
        // Now and then a random edit around the subset's borders.
        if rng.chance(20) && !out.is_empty() {
            let at = (0..=rng.below(out.len()))
                .rev()
                .find(|&i| out.is_char_boundary(i))
                .unwrap_or(0);
            let what = rng.pick(&[
                " ", "\n", "#", ":", "-", "'", "\"", "\\", "[", "]", "{", "}", ",", "&", "*", "!",
                "|", ">", "?", "\t", "\r", " #", ": ", "- ", "  ", "a",
            ]);
            if rng.chance(50) {
                out.insert_str(at, what);
            } else {
                let end = (at + 1..=out.len())
                    .find(|&i| out.is_char_boundary(i))
                    .unwrap_or(out.len());
                out.replace_range(at..end, what);
            }
        }
        out
    }

    /// 3,000 cases per test run; `PROPTEST_CASES=300000` soaks it (an
    /// explicit case count would otherwise override proptest's variable).
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]
        #[test]
        fn fast_reader_equals_granit_whenever_it_accepts(seed in any::<u64>()) {
            agrees(&document(seed));
        }
    }

    #[test]
    fn generated_documents_are_mostly_in_the_subset() {
        // Without this the property above could hold by declining everything.
        let accepted = (1..2000u64).filter(|&s| agrees(&document(s))).count();
        assert!(accepted > 400, "only {accepted} of 2000 accepted");
    }

    fn golden_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("golden dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                golden_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn golden_yaml_agrees_and_plain_files_are_accepted() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden");
        let mut files = Vec::new();
        golden_files(&root, &mut files);
        assert!(files.len() > 150, "golden corpus not found at {root:?}");
        let mut declined = Vec::new();
        for path in &files {
            let text = std::fs::read_to_string(path).expect("golden file");
            if !agrees(&text) {
                // Only files with a block scalar (`description: >-`) may be
                // declined; everything else is in the subset.
                let block_scalar = text.contains(": >") || text.contains(": |");
                assert!(block_scalar, "declined {path:?}");
                declined.push(path);
            }
        }
        // The recordings' inputs are all read by the fast reader.
        assert!(
            declined
                .iter()
                .all(|p| !p.to_string_lossy().contains("recordings")),
            "{declined:?}"
        );
        eprintln!(
            "{} of {} golden files declined",
            declined.len(),
            files.len()
        );
    }

    /// A production-shaped input as `kpconform bench` writes it (generator
    /// input) or as `kubectl get -o yaml` prints it (a List).
    fn production(services: usize, kubectl: bool) -> String {
        let mut out = String::new();
        let pad = if kubectl { "  " } else { "" };
        if kubectl {
            out.push_str("apiVersion: v1\nkind: List\nitems:\n");
        } else {
            out.push_str("node:\n  name: node-a\n  addresses: [192.168.0.10]\n");
            out.push_str("  clusterCIDR: 10.64.0.0/16\nobjects:\n");
        }
        for i in 0..services {
            out.push_str(&format!(
                "{pad}- apiVersion: v1\n{pad}  kind: Service\n\
                 {pad}  metadata: {{name: svc-{i}, namespace: default}}\n\
                 {pad}  spec:\n{pad}    type: NodePort\n{pad}    clusterIP: 10.96.{}.{}\n\
                 {pad}    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: {}}}]\n\
                 {pad}- apiVersion: discovery.k8s.io/v1\n{pad}  kind: EndpointSlice\n\
                 {pad}  metadata:\n{pad}    name: svc-{i}-1\n{pad}    namespace: default\n\
                 {pad}    labels: {{kubernetes.io/service-name: svc-{i}}}\n\
                 {pad}  addressType: IPv4\n{pad}  ports: [{{name: http, port: 8080, protocol: TCP}}]\n\
                 {pad}  endpoints:\n",
                i / 256,
                i % 256,
                30000 + i
            ));
            for e in 0..3 {
                out.push_str(&format!(
                    "{pad}  - {{addresses: [10.64.{}.{e}], nodeName: node-{}}}\n",
                    i % 256,
                    if e % 2 == 0 { "a" } else { "b" }
                ));
            }
        }
        out
    }

    #[test]
    fn production_inputs_are_accepted_and_agree() {
        for kubectl in [false, true] {
            let text = production(300, kubectl);
            assert!(
                agrees(&text),
                "declined a production input (kubectl: {kubectl})"
            );
        }
    }

    fn stripped(node: &mut Node<'_>) {
        node.span = Default::default();
        match &mut node.value {
            Value::Scalar(_) => {}
            Value::Seq(items) => items.iter_mut().for_each(stripped),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                stripped(k);
                stripped(v);
            }),
        }
    }

    #[test]
    fn the_comparison_covers_spans() {
        // Two texts with the same values but different spans must compare
        // unequal, or `agrees` could miss a span bug.
        let (a, b) = ("k: [1, 2]\n", "k:  [1,  2]\n");
        let (mut x, mut y) = (parse(a).expect("subset"), parse(b).expect("subset"));
        assert_ne!(x, y);
        x.iter_mut().for_each(stripped);
        y.iter_mut().for_each(stripped);
        assert_eq!(x, y);
    }

    #[test]
    fn known_shapes_agree_and_borders_are_declined() {
        for text in [
            "a: 1\nb:\n  c: x\n  d: [1, 2]\n# comment\n\ne:\n- 1\n- {x: y}\n\n\n# end\n",
            "a:\nb: \nc: ~\n",
            "- a\n-\n  - b\n  - c\n- d: 1\n  e: 2\n",
            "a: \"x y\"  # c\nb: 'q'\n",
            "e:\n-\n- a\n",
            "e:\n- # c\n- a",
            "a: # c\n  b: 1",
            "x:\n  y:\n    - a\n  z: 1\nw: 2",
            "a: {10.64.1.5:8080: 0.3333333333, x: '1/3'}\n",
            "# c é\nk: v # é\n",
        ] {
            assert!(agrees(text), "declined {text:?}");
        }
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |\n  x\n",
            "a: >-\n  x\n",
            "a: 'it''s'\n",
            "a: \"\\n\"\n",
            "a: b\n  c\n",
            "a: [1,\n  2]\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\na: 2\n",
            "a:\t1\n",
            "a: 1\r\n",
            "\u{feff}a: 1\n",
            "a: é\n",
            "",
            "x\n",
            "a: [1, 2\n",
        ] {
            assert!(parse(text).is_none(), "accepted {text:?}");
        }
    }
}
