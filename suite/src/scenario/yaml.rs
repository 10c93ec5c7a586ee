//! A YAML document as a tree in which every node keeps its source span and
//! every scalar its exact text, built from serde-saphyr's event parser.
//!
//! serde's data model turns `0.3333333333` into an `f64` before we could see
//! it, and loses where an unknown key was written; walking our own tree keeps
//! both, so probabilities stay exact and every error points at its node.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_saphyr::granit_parser::{
    Event, Marker, Parser, ScalarStyle, ScanError, Span as YamlSpan,
};

use super::error::{ErrorKind, Problem};
use kpconform_iptables::Span;

/// Aliases can expand a small file exponentially ("billion laughs"): the
/// nodes that aliases copy are bounded, not the document. A document's own
/// nodes cost memory in proportion to its size, like any input, so a
/// `kubectl get -o yaml` dump of 50,000 Services reads fine; no real
/// document copies anywhere near this many nodes through aliases.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// One YAML node and where it was written; its scalars borrow from the
/// text they were read from wherever YAML escapes did not change them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node<'t> {
    pub(crate) value: Value<'t>,
    pub(crate) span: Span,
}

/// The content of a node. Mapping keys are always scalars, kept in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'t> {
    Scalar(Scalar<'t>),
    Seq(Vec<Node<'t>>),
    Map(Vec<(Node<'t>, Node<'t>)>),
}

/// A scalar's text after YAML escape processing, and whether it was plain
/// (unquoted and untagged, so subject to type resolution).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar<'t> {
    /// Borrowed from the document unless escapes or line folding made it
    /// differ: most of a large input's scalars cost no allocation.
    pub(crate) text: Cow<'t, str>,
    pub(crate) plain: bool,
}

/// A plain scalar's type under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

impl Scalar<'_> {
    /// Whether [`Scalar::resolve`] would say [`Resolved::Null`], without
    /// trying the number forms: most scalars read are strings, and this is
    /// asked of each of them.
    pub(crate) fn is_null(&self) -> bool {
        self.plain && matches!(&*self.text, "" | "~" | "null" | "Null" | "NULL")
    }

    /// The core-schema type; quoted or `!!str`-tagged scalars are strings.
    pub(crate) fn resolve(&self) -> Resolved {
        if !self.plain {
            return Resolved::Str;
        }
        let t: &str = &self.text;
        match t {
            "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
            "true" | "True" | "TRUE" => Resolved::Bool(true),
            "false" | "False" | "FALSE" => Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf"
            | "-.INF" | ".nan" | ".NaN" | ".NAN" => Resolved::Float,
            _ if parse_int(t).is_some() => Resolved::Int,
            _ if is_decimal(t) => Resolved::Float,
            _ => Resolved::Str,
        }
    }
}

/// A core-schema integer (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`).
pub(crate) fn parse_int(t: &str) -> Option<i128> {
    if let Some(hex) = t.strip_prefix("0x") {
        return digits_only(hex, 16).then(|| i128::from_str_radix(hex, 16).ok())?;
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return digits_only(oct, 8).then(|| i128::from_str_radix(oct, 8).ok())?;
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits_only(unsigned, 10) {
        return None;
    }
    t.parse().ok()
}

fn digits_only(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

/// A core-schema float spelled as a decimal:
/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
pub(crate) fn is_decimal(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() || digits_only(int, 10))
                && (frac.is_empty() || digits_only(frac, 10))
                && !(int.is_empty() && frac.is_empty())
        }
        None => digits_only(mantissa, 10),
    };
    let exponent_ok =
        exponent.is_none_or(|e| digits_only(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}

impl<'t> Node<'t> {
    /// The scalar, if this node is one.
    pub(crate) fn scalar(&self) -> Option<&Scalar<'t>> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a plain null (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        self.scalar().is_some_and(Scalar::is_null)
    }

    /// A few words naming what this node is, for "expected X, found Y".
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int => "an integer",
                Resolved::Float => "a number",
                Resolved::Str => "a string",
            },
        }
    }
}

/// Parses every document of `text`.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Node<'_>>, Problem> {
    // The fast reader builds the same tree or declines; granit reads (and
    // reports on) everything it declines.
    if let Some(documents) = super::yaml_fast::parse(text) {
        return Ok(documents);
    }
    Builder::new(text, None).stream()
}

/// Parses every document of `text` with granit only, bypassing the fast
/// reader: what the fast reader must agree with.
#[cfg(test)]
pub(crate) fn parse_documents_granit(text: &str) -> Result<Vec<Node<'_>>, Problem> {
    Builder::new(text, None).stream()
}

/// Parses every document of `text`, handing each item of the sequence under
/// a document's top-level key `key` to `sink` (with its index) as soon as it
/// is complete, instead of keeping it: that sequence is left empty in the
/// returned tree (with its span). A large input's objects are then read
/// while their nodes are fresh in the cache, and its whole tree is never
/// held at once. A sequence with an anchor or a tag is kept as usual.
///
/// The items can arrive twice: when the fast reader declines a text after
/// handing items over, granit reads it again from the start. Each pass
/// numbers its items from 0, so a sink that sees index 0 starts over.
pub(crate) fn parse_documents_streaming<'t>(
    text: &'t str,
    key: &str,
    sink: &mut dyn FnMut(usize, Node<'t>),
) -> Result<Vec<Node<'t>>, Problem> {
    let stream = super::yaml_fast::Stream { key, sink };
    if let Some(mut documents) = super::yaml_fast::parse_streaming(text, Some(stream)) {
        // What the fast reader could not stream (`key:` followed by a flow
        // sequence or an indented block sequence) is in the tree.
        for document in &mut documents {
            hand_over(document, key, sink);
        }
        return Ok(documents);
    }
    Builder::new(text, Some(Stream { key, sink })).stream()
}

/// What the streaming [`Builder`] does, on a finished tree: the items of the
/// sequence under the top-level key `key` go to `sink`, the sequence is left
/// empty with its span. (The fast reader never produces anchors or tags.)
fn hand_over<'t>(document: &mut Node<'t>, key: &str, sink: &mut dyn FnMut(usize, Node<'t>)) {
    let Value::Map(entries) = &mut document.value else {
        return;
    };
    for (k, v) in entries {
        if k.scalar().is_some_and(|s| s.text == key) {
            if let Value::Seq(items) = &mut v.value {
                for (index, item) in std::mem::take(items).into_iter().enumerate() {
                    sink(index, item);
                }
            }
        }
    }
}

/// Where [`parse_documents_streaming`] sends the items it does not keep.
struct Stream<'s, 'a> {
    key: &'s str,
    sink: &'s mut dyn FnMut(usize, Node<'a>),
}

struct Builder<'s, 'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    anchors: BTreeMap<usize, Node<'a>>,
    /// Nodes copied by aliases so far.
    aliased: usize,
    text_len: usize,
    stream: Option<Stream<'s, 'a>>,
    /// Collections open around the current node: 1 inside a document's
    /// top-level collection.
    depth: usize,
}

impl<'s, 'a> Builder<'s, 'a> {
    fn new(text: &'a str, stream: Option<Stream<'s, 'a>>) -> Builder<'s, 'a> {
        Builder {
            parser: Parser::new_from_str(text),
            anchors: BTreeMap::new(),
            aliased: 0,
            text_len: text.len(),
            stream,
            depth: 0,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), Problem> {
        loop {
            match self.parser.next_event() {
                Some(Ok((Event::Comment(..), _))) => continue,
                Some(Ok((event, span))) => return Ok((event, self.span(span))),
                Some(Err(e)) => return Err(self.scan_error(&e)),
                None => {
                    let end = Span::new(self.text_len, self.text_len, 0);
                    return Err(Problem::new(
                        ErrorKind::Yaml,
                        end,
                        "",
                        "unexpected end of YAML",
                    ));
                }
            }
        }
    }

    fn span(&self, span: YamlSpan) -> Span {
        let offset = |m: Marker| m.byte_offset().unwrap_or(0);
        Span::new(
            offset(span.start),
            offset(span.end),
            span.start.line() as u32,
        )
    }

    fn scan_error(&self, e: &ScanError) -> Problem {
        let m = e.marker();
        let at = m.byte_offset().unwrap_or(0);
        let span = Span::new(at, at, m.line() as u32);
        Problem::new(
            ErrorKind::Yaml,
            span,
            "",
            format!("invalid YAML: {}", e.info()),
        )
    }

    fn stream(&mut self) -> Result<Vec<Node<'a>>, Problem> {
        let mut documents = Vec::new();
        loop {
            match self.next()? {
                (Event::StreamStart, _) => {}
                (Event::StreamEnd, _) => return Ok(documents),
                (Event::DocumentStart(..), _) => {
                    // Aliases never cross documents.
                    self.anchors.clear();
                    let (event, span) = self.next()?;
                    documents.push(self.node(event, span)?);
                    match self.next()? {
                        (Event::DocumentEnd, _) => {}
                        (_, span) => return Err(unexpected(span)),
                    }
                }
                (_, span) => return Err(unexpected(span)),
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node<'a>, Problem> {
        let (anchor, node) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                if let Some(tag) = tag.as_ref().filter(|t| !t.is_yaml_core_schema()) {
                    return Err(unsupported_tag(span, &tag.original()));
                }
                let scalar = Scalar {
                    text,
                    plain: style == ScalarStyle::Plain && !forced_str,
                };
                (
                    anchor,
                    Node {
                        value: Value::Scalar(scalar),
                        span,
                    },
                )
            }
            Event::SequenceStart(_, anchor, tag) => {
                if let Some(tag) = tag.as_ref().filter(|t| !t.is_yaml_core_schema()) {
                    return Err(unsupported_tag(span, &tag.original()));
                }
                let mut items = Vec::new();
                self.depth += 1;
                let end = loop {
                    match self.next()? {
                        (Event::SequenceEnd, end) => break end,
                        (event, span) => items.push(self.node(event, span)?),
                    }
                };
                self.depth -= 1;
                (
                    anchor,
                    Node {
                        value: Value::Seq(items),
                        span: span.to(end),
                    },
                )
            }
            Event::MappingStart(_, anchor, tag) => {
                if let Some(tag) = tag.as_ref().filter(|t| !t.is_yaml_core_schema()) {
                    return Err(unsupported_tag(span, &tag.original()));
                }
                let mut entries: Vec<(Node<'a>, Node<'a>)> = Vec::new();
                self.depth += 1;
                let end = loop {
                    let key = match self.next()? {
                        (Event::MappingEnd, end) => break end,
                        (event, span) => self.node(event, span)?,
                    };
                    let Some(key_text) = key.scalar().map(|s| &*s.text) else {
                        return Err(Problem::new(
                            ErrorKind::Yaml,
                            key.span,
                            "",
                            "mapping keys must be scalars",
                        ));
                    };
                    if entries
                        .iter()
                        .any(|(k, _)| k.scalar().is_some_and(|s| s.text == key_text))
                    {
                        return Err(Problem::new(
                            ErrorKind::Duplicate,
                            key.span,
                            "",
                            format!("duplicate key `{key_text}`"),
                        ));
                    }
                    let (event, span) = self.next()?;
                    let streamed = self.depth == 1
                        && self.stream.as_ref().is_some_and(|s| s.key == key_text)
                        && matches!(&event, Event::SequenceStart(_, 0, None));
                    let value = if streamed {
                        self.streamed_sequence(span)?
                    } else {
                        self.node(event, span)?
                    };
                    entries.push((key, value));
                };
                self.depth -= 1;
                (
                    anchor,
                    Node {
                        value: Value::Map(entries),
                        span: span.to(end),
                    },
                )
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(target) => {
                    self.aliased += count(target);
                    if self.aliased > MAX_ALIAS_NODES {
                        return Err(too_big(span));
                    }
                    (0, target.clone())
                }
                None => {
                    return Err(Problem::new(
                        ErrorKind::Yaml,
                        span,
                        "",
                        "alias to an unknown anchor",
                    ))
                }
            },
            _ => return Err(unexpected(span)),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

impl<'a> Builder<'_, 'a> {
    /// The items of the sequence that started at `span`, each handed to the
    /// stream's sink once read; the sequence itself is left empty.
    fn streamed_sequence(&mut self, span: Span) -> Result<Node<'a>, Problem> {
        self.depth += 1;
        let mut index = 0;
        let end = loop {
            match self.next()? {
                (Event::SequenceEnd, end) => break end,
                (event, span) => {
                    let item = self.node(event, span)?;
                    if let Some(stream) = self.stream.as_mut() {
                        (stream.sink)(index, item);
                    }
                    index += 1;
                }
            }
        };
        self.depth -= 1;
        Ok(Node {
            value: Value::Seq(Vec::new()),
            span: span.to(end),
        })
    }
}

fn count(node: &Node<'_>) -> usize {
    1 + match &node.value {
        Value::Scalar(_) => 0,
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| count(k) + count(v)).sum(),
    }
}

fn too_big(span: Span) -> Problem {
    Problem::new(
        ErrorKind::Yaml,
        span,
        "",
        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)"),
    )
}

fn unexpected(span: Span) -> Problem {
    Problem::new(ErrorKind::Yaml, span, "", "unexpected YAML event")
}

fn unsupported_tag(span: Span, tag: &str) -> Problem {
    Problem::new(
        ErrorKind::Yaml,
        span,
        "",
        format!("YAML tag `{tag}` is not supported (only core tags such as !!str)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node<'_> {
        let mut docs = parse_documents(text).expect("valid YAML");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    fn entries<'n, 't>(node: &'n Node<'t>) -> &'n [(Node<'t>, Node<'t>)] {
        match &node.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keeps_exact_scalar_text_and_spans() {
        let text = "# c\na: {10.64.1.5:8080: 0.3333333333, x: '1/3'}\n";
        let root = one(text);
        let (key, value) = &entries(&root)[0];
        let inner = entries(value);
        assert_eq!(key.scalar().map(|s| &*s.text), Some("a"));
        let k = &inner[0].0;
        assert_eq!(
            &text[k.span.start as usize..k.span.end as usize],
            "10.64.1.5:8080"
        );
        assert_eq!(k.span.line, 2);
        let v = inner[0].1.scalar().expect("scalar");
        assert_eq!((&*v.text, v.plain), ("0.3333333333", true));
        let q = inner[1].1.scalar().expect("scalar");
        assert_eq!(
            (&*q.text, q.plain, q.resolve()),
            ("1/3", false, Resolved::Str)
        );
    }

    #[test]
    fn resolves_core_schema() {
        let s = |t: &str| {
            Scalar {
                text: t.into(),
                plain: true,
            }
            .resolve()
        };
        for t in ["", "~", "null", "Null", "NULL", "nul", "0", "a"] {
            let plain = Scalar {
                text: t.into(),
                plain: true,
            };
            assert_eq!(plain.is_null(), plain.resolve() == Resolved::Null, "{t:?}");
            let quoted = Scalar {
                text: t.into(),
                plain: false,
            };
            assert!(!quoted.is_null(), "{t:?}");
        }
        assert_eq!(s(""), Resolved::Null);
        assert_eq!(s("~"), Resolved::Null);
        assert_eq!(s("True"), Resolved::Bool(true));
        assert_eq!(s("-12"), Resolved::Int);
        assert_eq!(s("0x1F"), Resolved::Int);
        assert_eq!(s("1e-6"), Resolved::Float);
        assert_eq!(s(".5"), Resolved::Float);
        assert_eq!(s("10.0.0.1"), Resolved::Str);
        assert_eq!(s("yes"), Resolved::Str);
        assert_eq!(s("."), Resolved::Str);
        let tagged = one("a: !!str 80\n");
        assert_eq!(
            entries(&tagged)[0].1.scalar().map(Scalar::resolve),
            Some(Resolved::Str)
        );
    }

    #[test]
    fn expands_aliases_and_rejects_duplicates() {
        let root = one("a: &x [1, 2]\nb: *x\n");
        assert_eq!(entries(&root)[0].1.value, entries(&root)[1].1.value);
        let err = parse_documents("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!((err.kind, err.span.line), (ErrorKind::Duplicate, 3));
    }

    #[test]
    fn reports_syntax_errors_and_counts_documents() {
        let err = parse_documents("a: [1, 2\n").expect_err("unclosed");
        assert_eq!(err.kind, ErrorKind::Yaml);
        assert_eq!(parse_documents("a: 1\n---\nb: 2\n").map(|d| d.len()), Ok(2));
        assert_eq!(parse_documents("").map(|d| d.len()), Ok(0));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse_documents(&text).expect_err("too big");
        assert!(
            err.message.contains("aliases expand to more than"),
            "{}",
            err.message
        );
    }

    #[test]
    fn streaming_hands_over_top_level_items_only() {
        let text =
            "a: [1, {objects: [x]}]\nobjects:\n- {n: 1}\n- [2, 3]\nb: &s [4]\nc: {objects: [5]}\n";
        let mut seen = Vec::new();
        let mut passes = 0;
        let docs = parse_documents_streaming(text, "objects", &mut |i, node| {
            if i == 0 {
                seen.clear();
                passes += 1;
            }
            seen.push((i, node.span.line, node.describe()));
        })
        .expect("valid YAML");
        assert_eq!(seen, [(0, 3, "a mapping"), (1, 4, "a sequence")]);
        // The anchor after the items made the fast reader decline after
        // handing them over: granit handed them over again, from 0.
        assert_eq!(passes, 2);
        let kept = parse_documents(text).expect("valid YAML");
        // Everything else is as without streaming; the streamed sequence is
        // empty but keeps its place and span.
        let (streamed_root, full_root) = (entries(&docs[0]), entries(&kept[0]));
        assert_eq!(streamed_root.len(), full_root.len());
        for ((k1, v1), (k2, v2)) in streamed_root.iter().zip(full_root) {
            assert_eq!(k1, k2);
            assert_eq!(v1.span, v2.span);
            if k1.scalar().is_some_and(|s| s.text == "objects") {
                assert_eq!(v1.value, Value::Seq(Vec::new()));
            } else {
                assert_eq!(v1, v2);
            }
        }
        // An anchored sequence is kept, so aliases to it still work.
        let mut count = 0;
        let docs =
            parse_documents_streaming("objects: &o [1]\nagain: *o\n", "objects", &mut |_, _| {
                count += 1
            })
            .expect("valid YAML");
        assert_eq!(count, 0);
        assert_eq!(entries(&docs[0])[0].1, entries(&docs[0])[1].1);
    }

    #[test]
    fn the_fast_reader_streams_block_items_and_keeps_the_rest() {
        for (text, fast_streams) in [
            // Indentless and indented block sequences are streamed while read ...
            (
                "node: {a: 1}\nobjects:\n- {n: 1}\n- n: 2\n  m: [3]\nz: 4\n",
                2,
            ),
            ("objects:\n  - {n: 1}\n  - x\n", 2),
            // ... a flow sequence is handed over from the tree afterwards,
            // and nested `objects` keys are not the top-level one.
            ("objects: [{n: 1}, {n: 2}, 3]\n", 0),
            ("a:\n  objects:\n  - 1\nb: [{objects: [2]}]\n", 0),
        ] {
            let mut fast = 0;
            let stream = super::super::yaml_fast::Stream {
                key: "objects",
                sink: &mut |_, _| fast += 1,
            };
            super::super::yaml_fast::parse_streaming(text, Some(stream))
                .unwrap_or_else(|| panic!("in the subset: {text:?}"));
            assert_eq!(fast, fast_streams, "{text:?}");
            // Whichever way, the items and the tree are granit's.
            let mut items = Vec::new();
            let docs = parse_documents_streaming(text, "objects", &mut |i, node| {
                items.push((i, node));
            })
            .expect("valid YAML");
            let mut granit_items = Vec::new();
            let granit_docs = Builder::new(
                text,
                Some(Stream {
                    key: "objects",
                    sink: &mut |i, node| granit_items.push((i, node)),
                }),
            )
            .stream()
            .expect("valid YAML");
            assert_eq!(items, granit_items, "{text:?}");
            assert_eq!(docs, granit_docs, "{text:?}");
        }
    }

    #[test]
    fn a_large_document_without_aliases_is_no_bomb() {
        // Over a million nodes written out: more than any alias may copy.
        let mut text = String::from("items:\n");
        for i in 0..340_000 {
            text.push_str(&format!("- {{n: {i}}}\n"));
        }
        let root = one(&text);
        match &entries(&root)[0].1.value {
            Value::Seq(items) => assert_eq!(items.len(), 340_000),
            other => panic!("not a sequence: {other:?}"),
        }
    }
}
