//! `kpconform corpus`: what the scenario corpus covers.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use kpconform_harness::Corpus;
use kpconform_iptables::model::Family;
use kpconform_iptables::SourceFile;
use kpconform_suite::coverage;
use kpconform_suite::scenario::GeneratorInput;
use kpconform_suite::scenario::Scenario;

use super::Outcome;
use crate::cli::CorpusArgs;

pub(crate) fn run(args: &CorpusArgs) -> Result<Outcome> {
    let corpus = Corpus::load(&args.scenarios)
        .with_context(|| format!("reading scenarios under {}", args.scenarios.display()))?;
    for (file, err) in corpus.failures() {
        eprintln!("error: {file}: {err}");
    }
    if !corpus.failures().is_empty() {
        bail!("{} scenario file(s) do not load", corpus.failures().len());
    }
    let scenarios: Vec<Scenario> = corpus.scenarios().iter().map(|s| (**s).clone()).collect();
    if let Some(dir) = &args.rules_dir {
        return export(
            &scenarios,
            dir,
            &args.from_recordings,
            args.inputs.as_deref(),
        );
    }
    if args.recorded {
        out!("{}", coverage::recorded_markdown(&scenarios));
        return Ok(Outcome::Pass);
    }
    let rows = coverage::coverage(&scenarios);
    out!("{}", coverage::markdown(&rows));
    let gaps: Vec<&str> = rows
        .iter()
        .filter(|r| r.scenarios.is_empty())
        .map(|r| r.feature.as_str())
        .collect();
    if gaps.is_empty() {
        Ok(Outcome::Pass)
    } else {
        eprintln!(
            "{} feature(s) without a scenario: {}",
            gaps.len(),
            gaps.join("; ")
        );
        Ok(Outcome::Fail)
    }
}

/// Writes the recorded-rules directory `dir` from `folders`: for every
/// scenario tag `recorded:<case>` that a folder has an output for, the
/// output as `<scenario-id>/<node>.rules` (`.ipv6.rules` for IPv6), the node
/// and family read from the case's generator input.
fn export(
    scenarios: &[Scenario],
    dir: &Path,
    folders: &[PathBuf],
    inputs: Option<&Path>,
) -> Result<Outcome> {
    let mut written = 0usize;
    for folder in folders {
        let outputs = folder.join("outputs");
        if !outputs.is_dir() {
            bail!(
                "--from-recordings {}: no outputs/ directory",
                folder.display()
            );
        }
        let inputs_dir = match inputs {
            Some(i) if !folder.join("inputs").is_dir() => i.join("inputs"),
            _ => folder.join("inputs"),
        };
        for scenario in scenarios {
            for case in scenario
                .tags
                .iter()
                .filter_map(|t| t.strip_prefix("recorded:"))
            {
                let output = outputs.join(format!("{case}.rules"));
                if !output.is_file() {
                    continue;
                }
                let input_path = inputs_dir.join(format!("{case}.yaml"));
                let text = std::fs::read(&input_path).with_context(|| {
                    format!(
                        "{}: the generator input of recording `{case}` (--inputs names the folder of a \
                         recording without inputs/)",
                        input_path.display()
                    )
                })?;
                let source = SourceFile::from_bytes(input_path.display().to_string(), text)
                    .map_err(|e| anyhow!("{e}"))?;
                let input = GeneratorInput::from_yaml(&source).map_err(|e| anyhow!("{e}"))?;
                let suffix = match input.node.family {
                    Family::Ipv4 => "rules",
                    Family::Ipv6 => "ipv6.rules",
                };
                let target = dir
                    .join(&scenario.id)
                    .join(format!("{}.{suffix}", input.node.name));
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::copy(&output, &target).with_context(|| {
                    format!("copying {} to {}", output.display(), target.display())
                })?;
                written += 1;
            }
        }
    }
    if written == 0 {
        bail!("no scenario is tagged with a case of the given recordings");
    }
    eprintln!(
        "wrote {written} recorded rule file(s) under {}",
        dir.display()
    );
    Ok(Outcome::Pass)
}
