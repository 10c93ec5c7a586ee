//! `kpconform fuzz`: random valid cluster states and flows through a
//! generator, judged by the invariants and the semantic oracle; the first
//! finding is shrunk and printed as a ready-to-commit scenario. Cases are
//! IPv4-only, IPv6-only or dual-stack; every node's rules are generated and
//! checked once per family, and the summary says how many of each there were.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use kpconform_harness::{Command, FnGenerator, Generator};
use kpconform_iptables::model::Family;
use kpconform_selftest::arbitrary::properties::{self, Finding};
use kpconform_selftest::arbitrary::Case;

use super::Outcome;
use crate::cli::FuzzArgs;
use crate::progress::Progress;

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
    let progress = Progress::new("kpconform fuzz", Some(args.cases), args.quiet);
    let start = Instant::now();
    let (mut cases, mut probes) = (0u64, 0usize);
    let mut mix = Mix::default();
    for i in 0..args.cases {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let case_seed = seed.wrapping_add(i);
        let case = Case::from_seed(case_seed);
        cases += 1;
        probes += case.probes.len();
        mix.add(&case);
        progress.step(format!("seed {case_seed}, {probes} probes"));
        let Err(finding) = check(&case, generator.as_ref()) else {
            continue;
        };
        progress.finish();
        eprintln!("finding in case seed {case_seed}: {finding}");
        if !args.quiet {
            eprintln!("shrinking (up to {SHRINK_STEPS} steps)...");
        }
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
    progress.finish();
    outln!(
        "ok: {cases} case(s) from seed {seed}, {probes} probes, no finding ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    outln!("families: {mix}");
    Ok(Outcome::Pass)
}

/// How many cases of each stack, and probes of each family, were run.
#[derive(Default)]
struct Mix {
    ipv4_only: u64,
    ipv6_only: u64,
    dual_stack: u64,
    ipv4_probes: usize,
    ipv6_probes: usize,
}

impl Mix {
    fn add(&mut self, case: &Case) {
        match case.families().as_slice() {
            [Family::Ipv4] => self.ipv4_only += 1,
            [Family::Ipv6] => self.ipv6_only += 1,
            _ => self.dual_stack += 1,
        }
        for p in &case.probes {
            match p.family() {
                Family::Ipv4 => self.ipv4_probes += 1,
                Family::Ipv6 => self.ipv6_probes += 1,
            }
        }
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} IPv4-only, {} IPv6-only, {} dual-stack case(s); {} IPv4 and {} IPv6 probe(s)",
            self.ipv4_only, self.ipv6_only, self.dual_stack, self.ipv4_probes, self.ipv6_probes
        )
    }
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
