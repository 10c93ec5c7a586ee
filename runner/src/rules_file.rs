//! Reading and parsing a rules file for the commands.

use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kpconform_iptables::model::{FxHasher, RuleSet, TableName};
use kpconform_iptables::SourceFile;
use kpconform_iptables::{
    parse_reader, parse_with, require_tables, Mode, Options, ParseErrorKind, READ_BLOCK,
};

use crate::cli::{ParseArgs, TableArg};

/// Reads a file, or standard input for `-`, as UTF-8 text (a bad byte is
/// an error at its line and column).
pub(crate) fn read(path: &Path) -> Result<SourceFile> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        ("<stdin>".to_string(), bytes)
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        (path.display().to_string(), bytes)
    };
    Ok(SourceFile::from_bytes(name, bytes)?)
}

/// A source text that may be let go while its model is checked: a file
/// is read again when it is needed (and refused if it changed meanwhile),
/// standard input is kept.
pub(crate) enum Kept {
    /// Standard input (or a text not read from a file), held.
    Held(SourceFile),
    /// A file, let go: its path, and its length and hash to tell it is
    /// the same text when read again.
    Released {
        path: PathBuf,
        len: usize,
        hash: u64,
    },
}

impl Kept {
    /// Lets the text of `source`, [`read`] from `path`, go if it can be
    /// read again (a regular file, not `-` or a pipe).
    pub(crate) fn new(path: &Path, source: SourceFile) -> Kept {
        if path.as_os_str() == "-" || !path.is_file() {
            return Kept::Held(source);
        }
        Kept::Released {
            path: path.to_path_buf(),
            len: source.text().len(),
            hash: hash(source.text()),
        }
    }

    /// A file read block by block ([`parse_streaming`]) and never held.
    fn released(path: &Path, len: usize, hash: u64) -> Kept {
        Kept::Released {
            path: path.to_path_buf(),
            len,
            hash,
        }
    }

    /// The text again: held, or read again from its file.
    pub(crate) fn get(self) -> Result<SourceFile> {
        match self {
            Kept::Held(source) => Ok(source),
            Kept::Released { path, len, hash: h } => {
                let again = read(&path)?;
                if again.text().len() != len || hash(again.text()) != h {
                    bail!(
                        "{} changed while it was being checked; run again",
                        path.display()
                    );
                }
                Ok(again)
            }
        }
    }
}

/// A fast hash of a text, to tell whether a file changed: hashed in the
/// blocks [`parse_streaming`] reads, so that the hash of a file read that
/// way is the hash of its text.
fn hash(text: &str) -> u64 {
    let mut h = FxHasher::default();
    text.as_bytes()
        .chunks(READ_BLOCK)
        .for_each(|block| h.write(block));
    h.finish()
}

/// Parses a rules file while reading it, never holding its whole text
/// (see `kpconform_iptables::parse_reader`): the rules, and the file to
/// read again if something is to be shown. `None` for standard input, and
/// for a file with anything to report (a parse error or warning, missing
/// tables): [`read`] and [`parse`] it then, as every command does, to
/// report it.
pub(crate) fn parse_streaming(path: &Path, args: &ParseArgs) -> Result<Option<(RuleSet, Kept)>> {
    if path.as_os_str() == "-" || !path.is_file() {
        return Ok(None);
    }
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut len = 0;
    let mut h = FxHasher::default();
    let rules = parse_reader(file, options(args), |block| {
        len += block.len();
        h.write(block);
    })
    .with_context(|| format!("reading {}", path.display()))?;
    Ok(rules
        .filter(|rules| require_tables(rules, "", &required(&options(args))).is_ok())
        .map(|rules| (rules, Kept::released(path, len, h.finish()))))
}

/// The parser's options from the command line.
fn options(args: &ParseArgs) -> Options {
    Options {
        mode: if args.lax { Mode::Lax } else { Mode::Strict },
        default_table: args.table.map(|t| match t {
            TableArg::Raw => TableName::Raw,
            TableArg::Mangle => TableName::Mangle,
            TableArg::Filter => TableName::Filter,
            TableArg::Nat => TableName::Nat,
            TableArg::Security => TableName::Security,
        }),
    }
}

/// The tables a rule set must hold: a node's rules live in `filter` and
/// `nat`; a fragment (`--table`) must at least hold its own table. Nothing
/// at all is never "ok".
fn required(options: &Options) -> Vec<TableName> {
    match options.default_table {
        Some(table) => vec![table],
        None => vec![TableName::Filter, TableName::Nat],
    }
}

/// Parses a rules file, printing every error with its position; lax-mode
/// warnings go to standard error too.
pub(crate) fn parse(source: &SourceFile, args: &ParseArgs) -> Result<RuleSet> {
    parse_counting(source, args).map(|(rules, _)| rules)
}

/// [`parse`], and how many warnings (unmodelled matches and targets
/// accepted by `--lax`, skipped transcript lines) it gave.
pub(crate) fn parse_counting(source: &SourceFile, args: &ParseArgs) -> Result<(RuleSet, usize)> {
    let options = options(args);
    let required = required(&options);
    let parsed = parse_with(source.text(), options).and_then(|parsed| {
        require_tables(&parsed.rules, source.text(), &required)
            .map(|()| parsed)
            .map_err(|e| vec![e])
    });
    match parsed {
        Ok(parsed) => {
            for w in &parsed.warnings {
                eprintln!("warning: {}\n", w.render(source));
            }
            Ok((parsed.rules, parsed.warnings.len()))
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}\n", e.render(source));
            }
            let unmodelled = errors.iter().any(|e| {
                matches!(
                    e.kind,
                    ParseErrorKind::UnknownMatch | ParseErrorKind::UnknownTarget
                )
            });
            let hint = if args.lax || !unmodelled {
                ""
            } else {
                " (--lax accepts unmodelled matches and targets)"
            };
            bail!("{}: {} parse error(s){hint}", source.name(), errors.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_file_is_read_again_and_refused_if_it_changed() {
        let dir = std::env::temp_dir().join(format!("kpconform-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rules");
        let text = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        std::fs::write(&path, text).expect("write");
        let kept = Kept::new(&path, read(&path).expect("read"));
        assert!(matches!(kept, Kept::Released { .. }), "a file is let go");
        assert_eq!(kept.get().expect("same file").text(), text);

        let kept = Kept::new(&path, read(&path).expect("read"));
        // Same length, other text: only the hash tells.
        std::fs::write(&path, text.replace("ACCEPT", "DROP!!")).expect("write");
        let err = kept.get().expect_err("the file changed");
        assert!(err.to_string().contains("changed while"), "{err}");

        // Standard input cannot be read again: it is held.
        let held = Kept::new(Path::new("-"), SourceFile::new("<stdin>", text));
        assert!(matches!(held, Kept::Held(_)));
        assert_eq!(held.get().expect("held").text(), text);
        std::fs::remove_dir_all(&dir).ok();
    }
}
