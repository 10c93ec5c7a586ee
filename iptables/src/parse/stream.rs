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

use std::io::{self, Read};
use std::sync::mpsc;

use super::{Options, Parser};
use crate::lex;
use crate::model::RuleSet;

/// How many bytes are read at a time: the text in memory at once is about
/// two of these, and each is handed to the `seen` callback of
/// [`parse_reader`] whole (the last one shorter), so a hash of the text
/// computed block by block can be computed again from the text in blocks
/// of this size.
pub const READ_BLOCK: usize = 1 << 18;

/// Parses what `reader` gives, block by block, on two threads: one reads
/// (and hands each block to `seen`), the other parses.
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
    // Two blocks in flight keep the reader a block ahead without letting
    // it read the whole file into the channel.
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
    std::thread::scope(|s| {
        let reading = s.spawn(move || read_blocks(block, reader, seen, &tx));
        let parsed = parse_blocks(rx, options);
        // The receiver is gone: a reader still going stops at its next block.
        let read = reading
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread reading the rules panicked")));
        read.map(|()| parsed)
    })
}

/// Reads `reader` in blocks of `size` bytes (the last shorter) and sends
/// them, until the end or until the parser stops listening.
fn read_blocks<R: Read, F: FnMut(&[u8])>(
    size: usize,
    mut reader: R,
    mut seen: F,
    tx: &mpsc::SyncSender<Vec<u8>>,
) -> io::Result<()> {
    loop {
        let mut block = vec![0; size];
        let mut filled = 0;
        while filled < size {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        block.truncate(filled);
        if filled == 0 {
            return Ok(());
        }
        seen(&block);
        if tx.send(block).is_err() || filled < size {
            return Ok(());
        }
    }
}

/// Parses the blocks as they come, a run of whole logical lines at a time.
fn parse_blocks(rx: mpsc::Receiver<Vec<u8>>, options: Options) -> Option<RuleSet> {
    let mut parser = Parser::new(options);
    // Read but not yet parsed: the end of the last block after its last
    // whole logical line (or more, while a line goes on).
    let mut pending: Vec<u8> = Vec::new();
    let mut base = 0;
    let mut line = 1;
    let mut first = true;
    let feed = |parser: &mut Parser, bytes: &[u8], base: usize, line: u32| {
        let text = std::str::from_utf8(bytes).ok()?;
        let next = parser.piece(text, base, line);
        // The first error means the whole text is to be parsed again for
        // its report: reading on would be wasted.
        parser.ctx.errors.is_empty().then_some(next)
    };
    for block in rx {
        if first {
            first = false;
            if block.starts_with("\u{feff}".as_bytes()) {
                return None;
            }
        }
        pending.extend_from_slice(&block);
        let Some(end) = lex::logical_end(&pending) else {
            continue;
        };
        line = feed(&mut parser, &pending[..end], base, line)?;
        base += end;
        pending.drain(..end);
    }
    if !pending.is_empty() {
        feed(&mut parser, &pending, base, line)?;
    }
    match parser.finish(None) {
        Ok(parsed) if parsed.warnings.is_empty() => Some(parsed.rules),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            "COMMIT",
        ])
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
