//! `kpconform mutants`: the mutation self-test. The reference generator's
//! output for every (scenario, node) is mutated by each mutant of the
//! catalogue, and each mutation judged as `kpconform run` would judge it; a
//! mutant no scenario notices is a hole in the corpus.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use kpconform_harness::Case;
use kpconform_harness::{FnGenerator, Generator};
use kpconform_iptables::model::Family;
use kpconform_selftest::mutants::{
    catalogue, self_test, tally, Application, CaseResult, Counts, MutantTally, SetupError,
    TallyVerdict,
};
use kpconform_suite::scenario::ScenarioError;
use serde::Serialize;

use super::Outcome;
use crate::cli::{MutantsArgs, MutantsFormatArg};
use crate::parallel::{self, ordered_map};
use crate::progress::Progress;

/// Cases named per mutant in the human report before "and N more".
const SHOWN: usize = 3;

/// Places listed per mutant that no case caught.
const MISSED_SHOWN: usize = 5;

pub(crate) fn run(args: &MutantsArgs) -> Result<Outcome> {
    if args.list {
        out!("{}", list());
        return Ok(Outcome::Pass);
    }
    let (cases, load_errors) = super::select_cases(&args.scenarios, &args.filter)?;

    let start = Instant::now();
    let generator = FnGenerator::new("reference", |input| {
        Ok(kpconform_reference::generate(input))
    });
    let jobs = parallel::jobs(args.jobs);
    let progress = Progress::new("kpconform mutants", Some(cases.len() as u64), args.quiet);
    let outcomes = mutate_all(&generator, &cases, jobs, &progress);
    progress.finish();
    let mut results = Vec::new();
    let mut setup_errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(r) => results.push(r),
            Err(e) => setup_errors.push(e),
        }
    }
    let report = Report {
        scenarios: args.scenarios.display().to_string(),
        cases: cases.len(),
        tallies: tally(catalogue(), &results),
        results,
        setup_errors,
        load_errors,
        elapsed: start.elapsed(),
    };
    match args.format {
        MutantsFormatArg::Human => out!("{}", human(&report, args.quiet)),
        MutantsFormatArg::Json => {
            out!("{}", json(&report));
            eprint!("{}", summary(&report));
        }
    }
    Ok(
        if !report.setup_errors.is_empty() || !report.load_errors.is_empty() {
            Outcome::InputError
        } else if report.count(TallyVerdict::NotCaught) > 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
    )
}

/// Mutates every case on `jobs` threads; results come back in case order,
/// one line per case above the progress bar (when it is drawn) in
/// completion order.
fn mutate_all(
    generator: &dyn Generator,
    cases: &[Case],
    jobs: usize,
    progress: &Progress,
) -> Vec<Result<CaseResult, SetupError>> {
    let done = Mutex::new(0usize);
    ordered_map(cases, jobs, |case| {
        let start = Instant::now();
        let r = self_test(generator, &case.scenario, &case.node, catalogue());
        if progress.is_visible() {
            // Count and print under one lock so the numbers come out in order.
            let mut n = done.lock().unwrap_or_else(PoisonError::into_inner);
            *n += 1;
            progress.step(case.name());
            progress.println(progress_line(
                *n,
                cases.len(),
                &case.name(),
                &r,
                start.elapsed(),
            ));
        }
        r
    })
}

fn progress_line(
    done: usize,
    total: usize,
    name: &str,
    r: &Result<CaseResult, SetupError>,
    elapsed: Duration,
) -> String {
    let width = total.to_string().len();
    let what = match r {
        Ok(c) => {
            let caught = c.applications.iter().filter(|a| a.caught()).count();
            format!("{caught}/{} caught", c.applications.len())
        }
        Err(_) => "setup error".into(),
    };
    format!(
        "[{done:>width$}/{total}] {name}: {what} ({} ms)",
        elapsed.as_millis()
    )
}

/// Everything one run found.
struct Report {
    scenarios: String,
    cases: usize,
    tallies: Vec<MutantTally>,
    results: Vec<CaseResult>,
    setup_errors: Vec<SetupError>,
    load_errors: Vec<(String, ScenarioError)>,
    elapsed: Duration,
}

impl Report {
    fn count(&self, verdict: TallyVerdict) -> usize {
        self.tallies
            .iter()
            .filter(|t| t.verdict() == verdict)
            .count()
    }

    /// How many mutants have `verdict` on the rules of `family`.
    fn count_in(&self, family: Family, verdict: TallyVerdict) -> usize {
        self.tallies
            .iter()
            .filter(|t| t.family(family).is_some_and(|f| f.verdict() == verdict))
            .count()
    }

    /// The families whose rules some mutant applied to, IPv4 first.
    fn families(&self) -> Vec<Family> {
        [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .filter(|&f| self.tallies.len() > self.count_in(f, TallyVerdict::NotApplicable))
            .collect()
    }
}

/// Where an application edited, for the report: its place, and for IPv6
/// rules `(IPv6)` (a dual-stack case has two rule sets with the same chains).
fn place(a: &Application) -> String {
    match a.family {
        Family::Ipv4 => a.place.clone(),
        Family::Ipv6 => format!("{} (IPv6)", a.place),
    }
}

/// `kpconform mutants --list`: id, bug and description of every mutant.
fn list() -> String {
    let width = catalogue().iter().map(|m| m.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for m in catalogue() {
        let bug = m.bug.map(|b| format!(" [{b}]")).unwrap_or_default();
        let _ = writeln!(out, "{:<width$}  {}{bug}", m.id, m.description);
    }
    out
}

/// Setup errors, the per-mutant table (not when `quiet`), the places no
/// scenario noticed, and [`summary`].
fn human(report: &Report, quiet: bool) -> String {
    let mut out = String::new();
    for (id, error) in &report.load_errors {
        let _ = writeln!(out, "error: scenario {id} does not load\n{error}\n");
    }
    for e in &report.setup_errors {
        let _ = writeln!(out, "{}", e.render());
    }
    let width = report
        .tallies
        .iter()
        .map(|t| t.mutant.id.len())
        .max()
        .unwrap_or(0);
    if !quiet {
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:>12}  {:>8}  verdict",
            "mutant", "cases", "applications", "by flows"
        );
    }
    for t in report.tallies.iter().filter(|_| !quiet) {
        let (cases, applications, flows) = match t.verdict() {
            TallyVerdict::NotApplicable => ("-".to_string(), "-".to_string(), "-".to_string()),
            _ => (
                format!("{}/{}", t.caught_cases, t.applicable_cases),
                format!("{}/{}", t.caught_applications, t.applications),
                t.caught_by_flows.to_string(),
            ),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {cases:>7}  {applications:>12}  {flows:>8}  {}",
            t.mutant.id,
            verdict(t)
        );
    }
    let missed: Vec<&MutantTally> = report
        .tallies
        .iter()
        .filter(|t| t.verdict() == TallyVerdict::NotCaught)
        .collect();
    if !missed.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "not caught:");
        for t in missed {
            let _ = writeln!(out, "  {}: {}", t.mutant.id, t.mutant.description);
            // The places in the families no case caught it in.
            let families = t.missed_families();
            let places: Vec<String> = report
                .results
                .iter()
                .flat_map(|r| {
                    r.applications
                        .iter()
                        .filter(|a| a.mutant == t.mutant.id && families.contains(&a.family))
                        .map(move |a| format!("{} at {}", r.name(), place(a)))
                })
                .collect();
            for place in places.iter().take(MISSED_SHOWN) {
                let _ = writeln!(out, "    {place}");
            }
            if places.len() > MISSED_SHOWN {
                let _ = writeln!(out, "    and {} more", places.len() - MISSED_SHOWN);
            }
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary(report));
    out
}

/// The verdict column: caught (by flows or only by invariants) with the
/// first cases that caught it, NOT CAUGHT, or not applicable.
fn verdict(t: &MutantTally) -> String {
    match t.verdict() {
        TallyVerdict::NotApplicable => "not applicable".into(),
        TallyVerdict::NotCaught => {
            let missed = t.missed_families();
            let applied = t
                .families
                .iter()
                .filter(|f| f.verdict() != TallyVerdict::NotApplicable)
                .count();
            if missed.len() < applied {
                // Caught in the other family's rules only.
                let names: Vec<&str> = missed.iter().map(|f| f.as_str()).collect();
                format!(
                    "NOT CAUGHT in {} rules (no scenario can detect it there: add one)",
                    names.join(", ")
                )
            } else {
                "NOT CAUGHT (no scenario can detect it: add one)".into()
            }
        }
        TallyVerdict::Caught => {
            let by = if t.caught_by_flows == 0 {
                "caught by invariants only"
            } else {
                "caught"
            };
            let mut s = format!(
                "{by}: {}",
                t.caught_in[..t.caught_in.len().min(SHOWN)].join(", ")
            );
            if t.caught_in.len() > SHOWN {
                let _ = write!(s, " and {} more", t.caught_in.len() - SHOWN);
            }
            s
        }
    }
}

/// One line per count: mutants caught, not caught, not applicable, setup errors.
fn summary(report: &Report) -> String {
    let applicable = report.tallies.len() - report.count(TallyVerdict::NotApplicable);
    let caught = report.count(TallyVerdict::Caught);
    let mut out = format!(
        "kpconform mutants: {} mutant(s) over {} case(s) from {}, {:.2} s\n",
        report.tallies.len(),
        report.cases,
        report.scenarios,
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  caught          {caught:>3} of {applicable} applicable"
    );
    for family in report.families() {
        let applicable =
            report.tallies.len() - report.count_in(family, TallyVerdict::NotApplicable);
        let _ = writeln!(
            out,
            "    in {} rules {:>3} of {applicable} applicable",
            family.as_str(),
            report.count_in(family, TallyVerdict::Caught)
        );
    }
    let _ = writeln!(
        out,
        "  not caught      {:>3}",
        report.count(TallyVerdict::NotCaught)
    );
    let _ = writeln!(
        out,
        "  not applicable  {:>3}",
        report.count(TallyVerdict::NotApplicable)
    );
    let setup = report.setup_errors.len() + report.load_errors.len();
    if setup > 0 {
        let _ = writeln!(out, "  setup errors    {setup:>3}");
    }
    out
}

#[derive(Serialize)]
struct Document<'a> {
    generator: &'static str,
    scenarios: &'a str,
    summary: Summary,
    mutants: Vec<MutantEntry<'a>>,
    cases: Vec<CaseEntry<'a>>,
    setup_errors: Vec<SetupEntry>,
}

#[derive(Serialize)]
struct Summary {
    mutants: usize,
    caught: usize,
    not_caught: usize,
    not_applicable: usize,
    cases: usize,
    setup_errors: usize,
    seconds: f64,
    families: BTreeMap<&'static str, FamilySummary>,
}

#[derive(Serialize)]
struct MutantEntry<'a> {
    id: &'static str,
    description: &'static str,
    bug: Option<&'static str>,
    verdict: &'static str,
    applicable_cases: usize,
    caught_cases: usize,
    applications: usize,
    caught_applications: usize,
    caught_by_flows: usize,
    caught_in: &'a [String],
    missed_in: &'a [String],
    /// The same per family of the rules it edited (`IPv4`, `IPv6`).
    families: BTreeMap<&'static str, FamilyEntry<'a>>,
}

#[derive(Serialize)]
struct FamilyEntry<'a> {
    verdict: &'static str,
    applicable_cases: usize,
    caught_cases: usize,
    applications: usize,
    caught_applications: usize,
    caught_by_flows: usize,
    caught_in: &'a [String],
    missed_in: &'a [String],
}

impl<'a> FamilyEntry<'a> {
    fn new(verdict: TallyVerdict, c: &'a Counts) -> Self {
        FamilyEntry {
            verdict: verdict.as_str(),
            applicable_cases: c.applicable_cases,
            caught_cases: c.caught_cases,
            applications: c.applications,
            caught_applications: c.caught_applications,
            caught_by_flows: c.caught_by_flows,
            caught_in: &c.caught_in,
            missed_in: &c.missed_in,
        }
    }
}

/// Per family: how many mutants applied to its rules and how they fared.
#[derive(Serialize)]
struct FamilySummary {
    caught: usize,
    not_caught: usize,
    not_applicable: usize,
}

#[derive(Serialize)]
struct CaseEntry<'a> {
    name: String,
    applications: Vec<ApplicationEntry<'a>>,
}

#[derive(Serialize)]
struct ApplicationEntry<'a> {
    mutant: &'static str,
    family: &'static str,
    place: &'a str,
    caught: bool,
    caught_by: &'a [String],
}

#[derive(Serialize)]
struct SetupEntry {
    name: String,
    message: String,
}

/// `--format json`: one document with the per-mutant tallies and every
/// application of every case.
fn json(report: &Report) -> String {
    let doc = Document {
        generator: "reference",
        scenarios: &report.scenarios,
        summary: Summary {
            mutants: report.tallies.len(),
            caught: report.count(TallyVerdict::Caught),
            not_caught: report.count(TallyVerdict::NotCaught),
            not_applicable: report.count(TallyVerdict::NotApplicable),
            cases: report.cases,
            setup_errors: report.setup_errors.len() + report.load_errors.len(),
            seconds: report.elapsed.as_secs_f64(),
            families: [Family::Ipv4, Family::Ipv6]
                .into_iter()
                .map(|f| {
                    let summary = FamilySummary {
                        caught: report.count_in(f, TallyVerdict::Caught),
                        not_caught: report.count_in(f, TallyVerdict::NotCaught),
                        not_applicable: report.count_in(f, TallyVerdict::NotApplicable),
                    };
                    (f.as_str(), summary)
                })
                .collect(),
        },
        mutants: report
            .tallies
            .iter()
            .map(|t| MutantEntry {
                id: t.mutant.id,
                description: t.mutant.description,
                bug: t.mutant.bug,
                verdict: t.verdict().as_str(),
                applicable_cases: t.applicable_cases,
                caught_cases: t.caught_cases,
                applications: t.applications,
                caught_applications: t.caught_applications,
                caught_by_flows: t.caught_by_flows,
                caught_in: &t.caught_in,
                missed_in: &t.missed_in,
                families: t
                    .families
                    .iter()
                    .map(|f| (f.family.as_str(), FamilyEntry::new(f.verdict(), &f.counts)))
                    .collect(),
            })
            .collect(),
        cases: report
            .results
            .iter()
            .map(|r| CaseEntry {
                name: r.name(),
                applications: r
                    .applications
                    .iter()
                    .map(|a| ApplicationEntry {
                        mutant: a.mutant,
                        family: a.family.as_str(),
                        place: &a.place,
                        caught: a.caught(),
                        caught_by: &a.caught_by,
                    })
                    .collect(),
            })
            .collect(),
        setup_errors: report
            .load_errors
            .iter()
            .map(|(id, e)| SetupEntry {
                name: id.clone(),
                message: e.to_string(),
            })
            .chain(report.setup_errors.iter().map(|e| SetupEntry {
                name: e.evaluation.name(),
                message: e.render(),
            }))
            .collect(),
    };
    let mut text =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
