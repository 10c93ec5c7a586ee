//! Parsing a rule file while it is read, so that its text is never held
//! whole beside the model built from it: a 10k-Service dump is 27 MB of
//! text for a model of about 75 MB, and the text was a quarter of `lint`'s
//! peak.
//!
//! Only a text that parses cleanly is read this way. Errors and warnings
//! are rendered with the lines they point at, and an `iptables -L` listing
//! is recognised over the whole text, so for anything to report (or a
//! byte-order mark, or bytes that are not UTF-8) the caller is told to
//! parse the whole text with [`parse_with`](super::parse_with), which
//! reports exactly what it always did.
//!
//! Rule lines (`-A CHAIN ...`) and chain declarations (`:CHAIN - [0:0]`),
//! nearly all of a kube-proxy dump, need nothing before them to be parsed,
//! only to be placed: two threads parse them, storing chain names in one
//! store all threads share, and the calling thread places them (and
//! decides whether a declaration fits its block) and parses every other line,
//! taking the runs of text in the order they were read, so that the rule
//! set (rules, spans, shared chain names) and whether there is anything to
//! report are those of the whole text's parse, however the threads run.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::{mpsc, Arc};

use super::names::{Names, SharedNames};
use super::save::Declared;
use super::{rule, shell, Ctx, Options, Parser};
use crate::lex::{self, Token};
use crate::model::{Rule, RuleSet};
use crate::source::Span;

/// How many bytes are read at a time: each is handed to the `seen`
/// callback of [`parse_reader`] whole (the last one shorter), so a hash of
/// the text computed block by block can be computed again from the text
/// in blocks of this size. The text in memory at once is a few of these.
///
/// Small, because each block is a run handed between threads, and what a
/// parsing thread allocates for a run and the calling thread frees stays
/// as room in the parsing thread's allocator arena until the end: lint's
/// peak on a 10k-Service dump was 78.4 MiB with 32 KiB blocks, 77.9 MiB
/// with 16 KiB and 77.6 MiB with 8 KiB, as fast (the limit is three times
/// the dump, 78.6 MiB).
pub const READ_BLOCK: usize = 1 << 13;

/// Parses what `reader` gives, block by block, while it is read: one
/// thread reads (and hands each block to `seen`) and cuts the text into
/// runs of whole logical lines, two parse the runs' rule lines in turn,
/// and the calling thread builds the rule set from what they parsed, run
/// by run in the order of the text.
///
/// `Ok(Some(rules))` when the text parsed without an error or a warning;
/// `Ok(None)` when there is something to report (a parse error or warning,
/// a byte-order mark, bytes that are not UTF-8): the caller then parses
/// the whole text with [`parse_with`](super::parse_with), which reports it
/// as always. `seen` is then not guaranteed to have seen every block.
pub fn parse_reader<R, F>(reader: R, options: Options, seen: F) -> io::Result<Option<RuleSet>>
where
    R: Read + Send,
    F: FnMut(&[u8]) + Send,
{
    parse_blocks_of(READ_BLOCK, reader, options, seen)
}

/// How many threads parse rule lines: lint's machine has two cores, and
/// rule lines are nearly all of a kube-proxy dump.
const WORKERS: usize = 2;

/// A run of whole logical lines of the text.
struct Run {
    /// The lines' bytes (not yet known to be UTF-8).
    text: Vec<u8>,
    /// Where the run starts in the whole text.
    base: usize,
    /// The line the run starts on.
    line: u32,
}

/// A run, parsed as far as it can be without the lines before it.
struct ParsedRun {
    run: Run,
    /// Its lines in order; `None` when something in them is to be
    /// reported (then the whole text is parsed again anyway).
    items: Option<Vec<Item>>,
}

/// One step of building the rule set.
enum Item {
    /// An `-A CHAIN SPEC` line whose `SPEC` parsed into `rule` (its chain
    /// names held by the parsing thread's own store): appended to `CHAIN`
    /// in the table the lines before it opened.
    Append {
        /// The `-A`.
        cmd: Span,
        /// `CHAIN`: its span, and where its text is in the run.
        chain: Span,
        at: (u32, u32),
        rule: Rule,
    },
    /// A `:CHAIN POLICY [p:b]` line, declaring a chain in the block the
    /// lines before it opened (if its policy fits there).
    Declare(Declared),
    /// Lines that depend on the lines before them (`*table`, `COMMIT`,
    /// commands, prompts, anything else): parsed in order on the
    /// building thread, as the whole text's parse would. The bytes of the
    /// run, and the line they start on.
    Lines {
        range: std::ops::Range<usize>,
        line: u32,
    },
}

/// What the building thread holds of a worker: its parsed runs, and the
/// way back for their emptied buffers.
struct Worker {
    parsed: mpsc::Receiver<ParsedRun>,
    spare_items: mpsc::Sender<Vec<Item>>,
}

/// [`parse_reader`] in blocks of `block` bytes (the tests' blocks are a
/// few bytes, so that lines and characters are cut everywhere).
fn parse_blocks_of<R, F>(
    block: usize,
    reader: R,
    options: Options,
    seen: F,
) -> io::Result<Option<RuleSet>>
where
    R: Read + Send,
    F: FnMut(&[u8]) + Send,
{
    // Run `n` goes to worker `n % WORKERS` and its result is taken from
    // that worker in turn, so the rule set is built in the order of the
    // text however the threads are timed. One run waits in each channel:
    // enough to keep every thread busy, few enough that the text in
    // memory stays a few blocks.
    //
    // The buffers of a built run go back to the thread that filled them,
    // so that each thread fills the same few again: buffers allocated anew
    // for each run were freed by another thread into the allocator's
    // arena of theirs, as holes that stayed in lint's peak.
    let mut to_workers = Vec::new();
    let mut workers = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..WORKERS {
        let (tx, inbox) = mpsc::sync_channel::<Run>(1);
        to_workers.push(tx);
        let (outbox, rx) = mpsc::sync_channel::<ParsedRun>(1);
        let (spare_items, spares) = mpsc::channel::<Vec<Item>>();
        workers.push(Worker {
            parsed: rx,
            spare_items,
        });
        threads.push((inbox, outbox, spares));
    }
    let (spare_text, spare_texts) = mpsc::channel::<Vec<u8>>();
    // Every thread stores chain names in one store, so that a jump parsed
    // on one shares the name of its chain declared on another.
    let names = Arc::new(SharedNames::default());
    std::thread::scope(|s| {
        let reading = s.spawn(move || read_runs(block, reader, seen, &to_workers, &spare_texts));
        for (inbox, outbox, spares) in threads {
            let names = Names::shared(Arc::clone(&names));
            s.spawn(move || {
                // One context (and its buffers) for all runs: a worker
                // allocates as little as the whole text's parse does.
                let mut ctx = Ctx::with_names(options.mode, names);
                for run in inbox {
                    let parsed = parse_run(run, &mut ctx, spares.try_recv().ok());
                    if outbox.send(parsed).is_err() {
                        return;
                    }
                }
            });
        }
        let parsed = build(&workers, &spare_text, options, Names::shared(names));
        // The receivers go: workers and a reader still going stop at
        // their next run.
        drop(workers);
        let read = reading
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread reading the rules panicked")));
        read.map(|()| parsed)
    })
}

/// Reads `reader` in blocks of `size` bytes (the last shorter), hands each
/// to `seen`, and sends the text on in runs of whole logical lines, to
/// the workers in turn, until the end or until they stop listening.
fn read_runs<R: Read, F: FnMut(&[u8])>(
    size: usize,
    mut reader: R,
    mut seen: F,
    workers: &[mpsc::SyncSender<Run>],
    spares: &mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    // Read but not yet sent: the end of the last block after its last
    // whole logical line (or more, while a line goes on).
    let mut pending: Vec<u8> = Vec::new();
    let mut base = 0;
    let mut line = 1;
    let mut sent = 0;
    let mut send = |text: Vec<u8>, base: &mut usize, line: &mut u32| {
        let run = Run {
            base: *base,
            line: *line,
            text,
        };
        *base += run.text.len();
        // The lexer counts a line at every newline, continued or not.
        *line += memchr::memchr_iter(b'\n', &run.text).count() as u32;
        let to = &workers[sent % workers.len()];
        sent += 1;
        to.send(run).is_ok()
    };
    let mut block = vec![0; size];
    loop {
        let mut filled = 0;
        while filled < size {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled > 0 {
            seen(&block[..filled]);
            pending.extend_from_slice(&block[..filled]);
        }
        if filled < size {
            if !pending.is_empty() {
                send(pending, &mut base, &mut line);
            }
            return Ok(());
        }
        if let Some(end) = lex::logical_end(&pending) {
            let mut rest = spares.try_recv().unwrap_or_default();
            rest.clear();
            rest.extend_from_slice(&pending[end..]);
            pending.truncate(end);
            let run = std::mem::replace(&mut pending, rest);
            if !send(run, &mut base, &mut line) {
                return Ok(());
            }
        }
    }
}

/// Parses the rule lines of a run that need nothing before them: `-A
/// CHAIN SPEC` with a plain chain name, whose `SPEC` the rule parser reads
/// alone. Everything else is left for [`build`].
fn parse_run(run: Run, ctx: &mut Ctx, spare: Option<Vec<Item>>) -> ParsedRun {
    let items = std::str::from_utf8(&run.text)
        .ok()
        .and_then(|text| items(text, run.base, run.line, ctx, spare.unwrap_or_default()));
    ParsedRun { run, items }
}

/// The items of the run `text`, into `items` (empty).
fn items(
    text: &str,
    base: usize,
    line_no: u32,
    ctx: &mut Ctx,
    mut items: Vec<Item>,
) -> Option<Vec<Item>> {
    items.clear();
    let mut lines = lex::piece_lines(text, base, line_no);
    let mut line = lex::Line {
        tokens: Vec::new(),
        span: Span::default(),
        problems: Vec::new(),
    };
    // Where the lines left to the building thread started, and their line.
    let mut others: Option<(usize, u32)> = None;
    loop {
        let (at, at_line) = (lines.position(), lines.line_number());
        if !lines.next_into(&mut line) {
            break;
        }
        let append = match &line.tokens[..] {
            [cmd, chain, spec @ ..]
                if line.problems.is_empty() && cmd.is("-A") && !chain.quoted =>
            {
                match &chain.text {
                    Cow::Borrowed(name) => Some((cmd.span, chain.span, *name, spec)),
                    Cow::Owned(_) => None,
                }
            }
            _ => None,
        };
        // A chain declaration, as iptables-save writes it (a `:` word is
        // never a shell prompt, but what is one is decided in one place).
        let declaration = match &line.tokens[..] {
            [first, rest @ ..] if append.is_none() && line.problems.is_empty() && !first.quoted => {
                first
                    .text
                    .strip_prefix(':')
                    .filter(|_| shell(&line.tokens, false).is_none())
                    .map(|name| (first, name, rest))
            }
            _ => None,
        };
        let item = if let Some((cmd, chain, name, spec)) = append {
            let rule = rule::parse_rule(ctx, spec, line.span)?;
            let offset = name.as_ptr() as usize - text.as_ptr() as usize;
            Item::Append {
                cmd,
                chain,
                at: (offset as u32, name.len() as u32),
                rule,
            }
        } else if let Some((first, name, rest)) = declaration {
            Item::Declare(ctx.declaration(first, name, rest, line.span)?)
        } else {
            others.get_or_insert((at, at_line));
            continue;
        };
        if !ctx.errors.is_empty() || !ctx.warnings.is_empty() || ctx.names.bad_chain_name {
            return None;
        }
        if let Some((from, line)) = others.take() {
            items.push(Item::Lines {
                range: from..at,
                line,
            });
        }
        items.push(item);
    }
    if let Some((from, line)) = others {
        items.push(Item::Lines {
            range: from..text.len(),
            line,
        });
    }
    Some(items)
}

/// Builds the rule set from the workers' runs, taken in the order they
/// were sent; `None` at the first thing to report.
fn build(
    workers: &[Worker],
    spare_text: &mpsc::Sender<Vec<u8>>,
    options: Options,
    names: Names,
) -> Option<RuleSet> {
    let mut parser = Parser::with_ctx(Ctx::with_names(options.mode, names), options);
    for n in 0.. {
        // A worker with nothing more means the text ended: runs went to
        // the workers in turn.
        let worker = &workers[n % workers.len()];
        let Ok(parsed) = worker.parsed.recv() else {
            break;
        };
        let run = &parsed.run;
        if n == 0 && run.text.starts_with("\u{feff}".as_bytes()) {
            return None;
        }
        let mut items = parsed.items?;
        for item in items.drain(..) {
            match item {
                Item::Append {
                    cmd,
                    chain,
                    at: (at, len),
                    rule,
                } => {
                    let (at, len) = (at as usize, len as usize);
                    // UTF-8: the worker parsed the run as text.
                    let name = std::str::from_utf8(&run.text[at..at + len]).ok()?;
                    let token = |text: &'static str, span| Token {
                        text: Cow::Borrowed(text),
                        span,
                        quoted: false,
                    };
                    let chain = Token {
                        text: Cow::Borrowed(name),
                        span: chain,
                        quoted: false,
                    };
                    parser.append_parsed(&token("-A", cmd), &chain, rule);
                }
                Item::Declare(declared) => parser.declared(declared),
                Item::Lines { range, line } => {
                    let text = std::str::from_utf8(&run.text[range.clone()]).ok()?;
                    parser.piece(text, run.base + range.start, line);
                }
            }
            // The first error means the whole text is to be parsed again
            // for its report: building on would be wasted.
            if !parser.ctx.errors.is_empty() {
                return None;
            }
        }
        // Nobody to take them back is no loss: the buffers are dropped.
        let _ = worker.spare_items.send(items);
        let _ = spare_text.send(parsed.run.text);
    }
    match parser.finish(None) {
        Ok(parsed) if parsed.warnings.is_empty() => Some(parsed.rules),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChainName;
    use crate::parse::{parse_with, Mode};
    use proptest::prelude::*;

    /// What reading `text` in blocks of `block` bytes gives, as text (the
    /// debug form shows spans, which equality ignores), and whether `seen`
    /// saw every byte in order.
    fn streamed(text: &[u8], block: usize, options: Options) -> Option<String> {
        let mut seen = Vec::new();
        let rules = parse_blocks_of(block, text, options, |b: &[u8]| seen.extend_from_slice(b))
            .expect("reading a slice cannot fail");
        if rules.is_some() {
            assert_eq!(seen, text, "every block was seen, in order");
        }
        rules.map(|r| format!("{r:#?}"))
    }

    /// What parsing the whole text gives, when it is clean: the rules as
    /// text; `None` for anything to report.
    fn whole(text: &[u8], options: Options) -> Option<String> {
        let text = std::str::from_utf8(text).ok()?;
        match parse_with(text, options) {
            Ok(p) if p.warnings.is_empty() => Some(format!("{:#?}", p.rules)),
            _ => None,
        }
    }

    fn same_as_whole(text: &[u8], blocks: &[usize]) {
        for mode in [Mode::Strict, Mode::Lax] {
            let options = Options {
                mode,
                default_table: None,
            };
            let expected = whole(text, options);
            for &block in blocks {
                assert_eq!(
                    streamed(text, block, options),
                    expected,
                    "{mode:?}, blocks of {block}: {}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rules" || e == "txt") {
                out.push(path);
            }
        }
    }

    #[test]
    fn recordings_fixtures_and_tutorials_read_in_blocks_parse_as_whole() {
        let mut paths = Vec::new();
        files(&kpconform_golden::recordings(), &mut paths);
        files(&kpconform_golden::fixtures(), &mut paths);
        files(&kpconform_golden::tutorials(), &mut paths);
        let (mut clean, mut reported) = (0, 0);
        for path in &paths {
            let text = std::fs::read(path).expect("golden file");
            same_as_whole(&text, &[61, READ_BLOCK]);
            match whole(&text, Options::default()) {
                Some(_) => clean += 1,
                None => reported += 1,
            }
        }
        // Both ways through were taken: recordings parse cleanly, and
        // tutorials' transcripts carry warnings.
        assert!(clean > 20 && reported > 0, "{clean} clean, {reported} not");
    }

    #[test]
    fn anything_to_report_asks_for_the_whole_text() {
        let ok = "*nat\n:KUBE-X - [0:0]\n-A KUBE-X -j RETURN\nCOMMIT\n";
        assert!(streamed(ok.as_bytes(), 5, Options::default()).is_some());
        let bom = format!("\u{feff}{ok}");
        assert!(whole(bom.as_bytes(), Options::default()).is_some());
        assert_eq!(streamed(bom.as_bytes(), 5, Options::default()), None);
        let mut bad = ok.as_bytes().to_vec();
        bad[10] = 0xff;
        assert_eq!(streamed(&bad, 5, Options::default()), None);
        let error = ok.replace("-j RETURN", "-d 10.0.0.300 -j RETURN");
        assert!(whole(error.as_bytes(), Options::default()).is_none());
        assert_eq!(streamed(error.as_bytes(), 5, Options::default()), None);
        let warning = format!("$ kubectl get svc\nNAME\n{ok}");
        assert!(whole(warning.as_bytes(), Options::default()).is_none());
        assert_eq!(streamed(warning.as_bytes(), 5, Options::default()), None);
    }

    /// Lines that cut and continue in every way the lexer knows:
    /// continuations (also inside quotes), CRLF, quotes, blank and comment
    /// lines, characters of several bytes, and lines that are errors.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "*nat\n",
            "*filter\n",
            ":KUBE-SVC-A - [0:0]\n",
            ":PREROUTING ACCEPT [0:0]\r\n",
            // Declarations the workers read and the building thread finds
            // wrong for the block (or outside one), or that the workers
            // find wrong themselves.
            ":KUBE-SVC-A ACCEPT [0:0]\n",
            ":FORWARD - [0:0]\n",
            ":FORWARD DROP [3:4]\n",
            ":KUBE-SVC-A - [x]\n",
            ":KUBE-SVC-A - [0:0] extra\n",
            ": - [0:0]\n",
            ":KUBE-SVC-A\n",
            ":-bad - [0:0]\n",
            "-A KUBE-SVC-A -m comment --comment \"ns/sv\u{e9}c:p\" -j KUBE-SEP-B\n",
            "-A KUBE-SVC-A -m statistic --mode random --probability 0.5000000000 -j RETURN\n",
            "-A PREROUTING \\\n  -j KUBE-SVC-A\n",
            "-A PREROUTING -m comment --comment \"a \\\nb\" -j ACCEPT\n",
            "-A PREROUTING -m comment --comment 'x y' -j ACCEPT \\\\\n",
            "-A PREROUTING -j ACCEPT \\ \t\n",
            "\\\n",
            "\n",
            "   \n",
            "# a comment \u{2603}\n",
            "COMMIT\n",
            "iptables -t nat -A PREROUTING -j RETURN\n",
            "$ echo hi\nhi\n",
            "-A KUBE-SVC-A \"unterminated\n",
            // Rule lines the workers leave to the building thread (a
            // quoted chain), or parse and then find something to report:
            // an unknown match (an error, or in lax mode a warning), a
            // chain not declared, a bad chain name.
            "-A \"KUBE-SVC-A\" -j KUBE-SVC-A\n",
            "-A KUBE-SVC-A -m nope -j ACCEPT\n",
            "-A KUBE-NOPE -j RETURN\n",
            "-A KUBE-SVC-A -j \"a b\"\n",
            "-I KUBE-SVC-A -j RETURN\n",
            "COMMIT",
        ])
    }

    #[test]
    fn every_jump_shares_the_name_of_its_chain_whichever_thread_parsed_it() {
        // The invariants key chains by the address of their shared name.
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-X - [0:0]\n");
        for _ in 0..200 {
            text.push_str("-A PREROUTING -j KUBE-X\n");
        }
        text.push_str("COMMIT\n");
        let rules = parse_blocks_of(7, text.as_bytes(), Options::default(), |_: &[u8]| {})
            .expect("reading a slice cannot fail")
            .expect("a clean text");
        let chains = &rules.tables[0].chains;
        let ChainName::User(declared) = &chains[1].name else {
            panic!("KUBE-X is a user chain");
        };
        assert_eq!(chains[0].rules.len(), 200);
        for rule in &chains[0].rules {
            let Some(ChainName::User(target)) = rule.jump_target() else {
                panic!("a jump to KUBE-X");
            };
            assert!(std::sync::Arc::ptr_eq(declared, target));
        }
    }

    proptest! {
        #[test]
        fn any_text_read_in_blocks_parses_as_whole(
            pieces in prop::collection::vec(piece(), 0..24),
            block in 1usize..40,
        ) {
            let text = pieces.concat();
            same_as_whole(text.as_bytes(), &[block]);
        }
    }
}
