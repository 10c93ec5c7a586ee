//! `kpconform generate`: the reference generator's rules for one node, from
//! a scenario or from a generator input (so that `kpconform generate --input -`
//! speaks the generator protocol).

use std::io::{Read, Write};

use anyhow::{anyhow, Context, Result};
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;

use super::Outcome;
use crate::cli::GenerateArgs;
use crate::scenario_file;

pub(crate) fn run(args: &GenerateArgs) -> Result<Outcome> {
    let input = match (&args.scenario, &args.node, &args.input) {
        (Some(path), Some(node), _) => {
            let scenario = scenario_file::load(path)?;
            scenario_file::input_for(&scenario, node)?
        }
        (_, _, Some(path)) => read_input(path)?,
        // clap requires --scenario with --node, or --input.
        _ => return Err(anyhow!("give --scenario FILE --node NAME, or --input FILE")),
    };
    // Written as the tables are printed, not built as one string first: a
    // 50k-Service node's rules are over 100 MB. Best effort, as `out!`: a
    // closed stdout (`| head`) is not an error.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let _ = kpconform_reference::generate_to(&input, &mut stdout).and_then(|()| stdout.flush());
    // kpconform exits right after: freeing a large cluster's objects one
    // allocation at a time would only delay that.
    std::mem::forget(input);
    Ok(Outcome::Pass)
}

fn read_input(path: &std::path::Path) -> Result<GeneratorInput> {
    let source = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the generator input from standard input")?;
        SourceFile::new("<stdin>", text)
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        SourceFile::new(path.display().to_string(), text)
    };
    GeneratorInput::from_yaml(&source).map_err(|e| anyhow!("{e}"))
}
