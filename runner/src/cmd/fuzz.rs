//! `kpconform fuzz`: random valid cluster states and flows through a
//! generator, judged by the invariants and the semantic oracle; the first
//! finding is shrunk and printed as a ready-to-commit scenario.

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use kpconform_harness::{Command, FnGenerator, Generator};
use kpconform_selftest::arbitrary::properties::{self, Finding};
use kpconform_selftest::arbitrary::Case;

use super::Outcome;
use crate::cli::FuzzArgs;

/// Shrinking steps tried at most (each one re-runs the generator).
const SHRINK_STEPS: usize = 400;

pub(crate) fn run(args: &FuzzArgs) -> Result<Outcome> {
    let generator: Box<dyn Generator> = match &args.generator {
        Some(command) => {
            let c = Command::parse(command)
                .map_err(|e| anyhow!("--generator: {e}"))?
                .with_timeout(args.timeout);
            c.ensure_available()
                .map_err(|e| anyhow!("--generator: {}", e.message))?;
            Box::new(c)
        }
        None => Box::new(FnGenerator::new("reference", |input| {
            Ok(kpconform_reference::generate(input))
        })),
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    // A deadline too far ahead for the clock to represent is no deadline.
    let deadline = args
        .time
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t)));
    let progress = std::io::stderr().is_terminal();
    let start = Instant::now();
    let (mut cases, mut probes) = (0u64, 0usize);
    for i in 0..args.cases {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let case_seed = seed.wrapping_add(i);
        let case = Case::from_seed(case_seed);
        cases += 1;
        probes += case.probes.len();
        if progress {
            eprint!("\rkpconform fuzz: case {cases} (seed {case_seed}), {probes} probes");
        }
        let Err(finding) = check(&case, generator.as_ref()) else {
            continue;
        };
        if progress {
            eprintln!();
        }
        eprintln!("finding in case seed {case_seed}: {finding}");
        eprintln!("shrinking (up to {SHRINK_STEPS} steps)...");
        let small = case.shrink(SHRINK_STEPS, |c| {
            check(c, generator.as_ref()).is_err_and(|f| f.property == finding.property)
        });
        let last = check(&small, generator.as_ref()).err().unwrap_or(finding);
        let reproducer = format!(
            "# kpconform fuzz finding against generator `{}` (seed {seed}, case seed {case_seed}):\n{}\n{small:?}",
            generator.name(),
            comment(&last.to_string()),
        );
        match &args.out {
            Some(path) => {
                std::fs::write(path, &reproducer)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("reproducer written to {}", path.display());
            }
            None => out!("{reproducer}"),
        }
        eprintln!(
            "FAILED: {cases} case(s) from seed {seed}; the shrunk case has {} object(s) and {} probe(s)",
            small.cluster.objects.len(),
            small.probes.len()
        );
        return Ok(Outcome::Fail);
    }
    if progress {
        eprintln!();
    }
    outln!(
        "ok: {cases} case(s) from seed {seed}, {probes} probes, no finding ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    Ok(Outcome::Pass)
}

/// The invariants on every node, then every probe against the oracle.
fn check(case: &Case, generator: &dyn Generator) -> Result<(), Finding> {
    properties::invariants(case, generator)?;
    properties::semantic_diff(case, generator)
}

fn comment(text: &str) -> String {
    text.lines()
        .map(|l| format!("#   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
