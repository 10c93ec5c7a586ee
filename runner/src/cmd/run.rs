//! `kpconform run`: a generator over every scenario of a directory.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use kpconform_harness::{evaluate, evaluate_families, Case, Evaluation, Snapshots};
use kpconform_harness::{Command, FnGenerator, Generator, RecordedDir};
use kpconform_iptables::model::Family;

use super::{run_files, Outcome};
use crate::cli::{FormatArg, RunArgs};
use crate::parallel::{self, ordered_map};
use crate::progress::Progress;
use crate::report::{self, RunReport};

pub(crate) fn run(args: &RunArgs) -> Result<Outcome> {
    let kernel = args.kernel.options();
    if let Some(k) = &kernel {
        kpconform_kernel::preflight(k.backend, &[Family::Ipv4, Family::Ipv6])?;
    }
    let generator = generator(args)?;
    let snapshots = match &args.snapshots {
        // A new generator's first `--update` starts the directory.
        Some(dir) if args.update && !dir.exists() => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("--snapshots: cannot create {}: {e}", dir.display()))?;
            Some(Snapshots::read_only(dir))
        }
        Some(dir) if !dir.is_dir() => bail!("--snapshots: {} is not a directory", dir.display()),
        Some(dir) => Some(Snapshots::read_only(dir)),
        None => None,
    };
    if let Some(dir) = &args.save_outputs {
        run_files::prepare_output_dir(dir)?;
    }
    let (mut cases, load_errors) = super::select_cases(&args.scenarios, &args.filter)?;
    if let Some(dir) = &args.rules_dir {
        // A recorded-rules directory usually holds the nodes someone
        // recorded, not every node a scenario lists. A node with neither
        // rules nor flows has nothing to judge; one with flows but no rules
        // stays a case, and fails as missing.
        let recorded = RecordedDir::new(dir);
        let before = cases.len();
        cases.retain(|c| {
            let has_rules = [Family::Ipv4, Family::Ipv6]
                .into_iter()
                .any(|f| recorded.path_for(&c.scenario.id, &c.node, f).is_file());
            has_rules || c.scenario.flows.iter().any(|f| f.node == c.node)
        });
        let skipped = before - cases.len();
        if skipped > 0 && !args.quiet {
            eprintln!(
                "note: {skipped} case(s) skipped: their node has no rules in {} and no flows",
                dir.display()
            );
        }
        if cases.is_empty() {
            bail!(
                "--rules-dir {}: no rules for any selected case",
                dir.display()
            );
        }
    }

    let start = Instant::now();
    // Kernel mode spends most of its time waiting (for answers, and for the
    // timeout of every dropped connection): more cases at once than CPUs.
    let jobs = match (&kernel, args.jobs) {
        (Some(_), None) => parallel::jobs(None) * 2,
        _ => parallel::jobs(args.jobs),
    };
    let progress = Progress::new("kpconform run", Some(cases.len() as u64), args.quiet);
    let mut evaluations = evaluate_all(
        &*generator,
        &cases,
        snapshots.as_ref(),
        args.rules_dir.as_deref().map(RecordedDir::new).as_ref(),
        kernel.as_ref(),
        jobs,
        &progress,
    );
    progress.finish();
    if let Some(dir) = &args.save_outputs {
        let written = run_files::save_outputs(dir, &evaluations)?;
        eprintln!(
            "saved {written} generator output(s) in {} (`kpconform run --rules-dir {}` reruns them)",
            dir.display(),
            dir.display()
        );
    }
    if let Some(s) = snapshots.as_ref().filter(|_| args.update) {
        let updates = run_files::update_snapshots(s, &mut evaluations);
        eprintln!(
            "snapshots in {}: {updates}",
            s.root().join(generator.name()).display()
        );
    }
    let report = RunReport {
        generator: generator.name().to_string(),
        scenarios: args.scenarios.display().to_string(),
        snapshots: snapshots.as_ref().map(|s| s.root().display().to_string()),
        evaluations,
        load_errors,
        elapsed: start.elapsed(),
        rerun: Some(report::Rerun::new(&program(), args)),
    };
    match args.format {
        FormatArg::Human if args.quiet => out!("{}", report::human_quiet(&report)),
        FormatArg::Human => out!("{}", report::human(&report)),
        FormatArg::Json => {
            out!("{}", report::json(&report));
            eprint!("{}", report::summary(&report));
        }
        FormatArg::Junit => {
            out!("{}", report::junit(&report));
            eprint!("{}", report::summary(&report));
        }
        FormatArg::Html => {
            out!("{}", report::html(&report));
            eprint!("{}", report::summary(&report));
        }
    }
    Ok(if !report.load_errors.is_empty() {
        // The corpus itself is broken: a setup error, whatever the generator did.
        Outcome::InputError
    } else if report.passed() {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}

/// How kpconform was invoked (`kpconform` on the `PATH`, or the path typed),
/// so that a printed rerun command works where the run did.
fn program() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| a.into_string().ok())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "kpconform".into())
}

fn generator(args: &RunArgs) -> Result<Box<dyn Generator>> {
    choose_generator(
        args.generator.as_deref(),
        args.rules_dir.as_deref(),
        args.name.as_deref(),
        args.timeout,
        "",
    )
}

/// The generator a command line chooses: an external command, a
/// recorded-rules directory, or else the reference generator. `flag` is the
/// prefix of the options in messages (`""` for `run`'s `--generator`,
/// `"old-"` for `diff`'s `--old-generator`). Shared by `run` and `diff`.
pub(crate) fn choose_generator(
    command: Option<&str>,
    rules_dir: Option<&std::path::Path>,
    name: Option<&str>,
    timeout: std::time::Duration,
    flag: &str,
) -> Result<Box<dyn Generator>> {
    let generator: Box<dyn Generator> = if let Some(command) = command {
        let mut c = Command::parse(command)
            .map_err(|e| anyhow!("--{flag}generator: {e}"))?
            .with_timeout(timeout);
        if let Some(name) = name {
            c = c.with_name(name);
        }
        // One setup error, not the same failure once per case.
        c.ensure_available()
            .map_err(|e| anyhow!("--{flag}generator: {}", e.message))?;
        Box::new(c)
    } else if let Some(dir) = rules_dir {
        if !dir.is_dir() {
            bail!("--{flag}rules-dir: {} is not a directory", dir.display());
        }
        let mut d = RecordedDir::new(dir);
        if let Some(name) = name {
            d = d.with_name(name);
        }
        Box::new(d)
    } else {
        let name = name.unwrap_or("reference").to_string();
        Box::new(FnGenerator::new(name, |input| {
            Ok(kpconform_reference::generate(input))
        }))
    };
    Ok(generator)
}

/// Evaluates every case on `jobs` threads; results come back in case order,
/// one line per case above the progress bar (when it is drawn) in
/// completion order.
fn evaluate_all(
    generator: &dyn Generator,
    cases: &[Case],
    snapshots: Option<&Snapshots>,
    recorded: Option<&RecordedDir>,
    kernel: Option<&kpconform_kernel::Options>,
    jobs: usize,
    progress: &Progress,
) -> Vec<Evaluation> {
    let done = Mutex::new(0usize);
    ordered_map(cases, jobs, |case| {
        let mut e = match recorded {
            // A recorded node often has rules of one family only (say, a
            // dual-stack scenario recorded for IPv6): a family with neither
            // rules nor flows has nothing to judge.
            Some(dir) => {
                let families: Vec<Family> = case
                    .scenario
                    .node(&case.node)
                    .map(|n| n.families())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&f| {
                        dir.path_for(&case.scenario.id, &case.node, f).is_file()
                            || case.scenario.flows.iter().any(|flow| {
                                flow.node == case.node
                                    && kpconform_suite::check::flow_family(flow) == f
                            })
                    })
                    .collect();
                evaluate_families(generator, &case.scenario, &case.node, &families, snapshots)
            }
            None => evaluate(generator, &case.scenario, &case.node, snapshots),
        };
        if let Some(options) = kernel {
            e.run_in_kernel(&case.scenario, options);
        }
        if progress.is_visible() {
            // Count and print under one lock so the numbers come out in order.
            let mut n = done.lock().unwrap_or_else(PoisonError::into_inner);
            *n += 1;
            progress.step(e.name());
            progress.println(report::progress_line(*n, cases.len(), &e));
        }
        e
    })
}
