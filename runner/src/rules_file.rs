//! Reading and parsing a rules file for the commands.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kpconform_iptables::model::{RuleSet, TableName};
use kpconform_iptables::SourceFile;
use kpconform_iptables::{parse_with, Mode, Options};

use crate::cli::{ParseArgs, TableArg};

/// Reads a file, or standard input for `-`.
pub(crate) fn read(path: &Path) -> Result<SourceFile> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(SourceFile::new("<stdin>", text));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// Parses a rules file, printing every error with its position; lax-mode
/// warnings go to standard error too.
pub(crate) fn parse(source: &SourceFile, args: &ParseArgs) -> Result<RuleSet> {
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
    match parse_with(source.text(), options) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                eprintln!("warning: {}\n", w.render(source));
            }
            Ok(parsed.rules)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}\n", e.render(source));
            }
            let hint = if args.lax {
                ""
            } else {
                " (--lax accepts unmodelled matches and targets)"
            };
            bail!("{}: {} parse error(s){hint}", source.name(), errors.len())
        }
    }
}
