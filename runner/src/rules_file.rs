//! Reading and parsing a rules file for the commands.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kpconform_iptables::model::{RuleSet, TableName};
use kpconform_iptables::SourceFile;
use kpconform_iptables::{parse_with, require_tables, Mode, Options, ParseErrorKind};

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

/// Parses a rules file, printing every error with its position; lax-mode
/// warnings go to standard error too.
pub(crate) fn parse(source: &SourceFile, args: &ParseArgs) -> Result<RuleSet> {
    parse_counting(source, args).map(|(rules, _)| rules)
}

/// [`parse`], and how many warnings (unmodelled matches and targets
/// accepted by `--lax`, skipped transcript lines) it gave.
pub(crate) fn parse_counting(source: &SourceFile, args: &ParseArgs) -> Result<(RuleSet, usize)> {
    let options = Options {
        mode: if args.lax { Mode::Lax } else { Mode::Strict },
        default_table: args.table.map(|t| match t {
            TableArg::Raw => TableName::Raw,
            TableArg::Mangle => TableName::Mangle,
            TableArg::Filter => TableName::Filter,
            TableArg::Nat => TableName::Nat,
            TableArg::Security => TableName::Security,
        }),
    };
    // A node's rules live in `filter` and `nat`; a fragment (`--table`)
    // must at least hold its own table. Nothing at all is never "ok".
    let required = match options.default_table {
        Some(table) => vec![table],
        None => vec![TableName::Filter, TableName::Nat],
    };
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
