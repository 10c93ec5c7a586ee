//! `kpconform-reference`: the reference generator as an external command
//! (contract §2). Reads the generator input YAML on stdin and writes the
//! rules to stdout.
//!
//! Exit codes: 0 rules written; 2 the input could not be read or is invalid
//! (the error, with `file:line:col`, goes to stderr).

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kpconform-reference: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading the generator input from stdin")?;
    let text = String::from_utf8(bytes).context("the generator input is not UTF-8")?;
    let source = SourceFile::new("<stdin>", text);
    let input = match GeneratorInput::from_yaml(&source) {
        Ok(input) => input,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::from(2));
        }
    };
    let rules = kpconform_reference::generate(&input);
    let mut out = std::io::stdout().lock();
    out.write_all(rules.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the rules to stdout")?;
    Ok(ExitCode::SUCCESS)
}
