//! The report for people: every failure explained, then a summary table.

use std::fmt::Write as _;

use kpconform_harness::{Evaluation, Status};

use super::RunReport;

/// `[ 3/91] passed  clusterip/one-endpoint@node-a (2 ms)`, for the terminal.
pub(crate) fn progress_line(done: usize, total: usize, e: &Evaluation) -> String {
    let width = total.to_string().len();
    format!(
        "[{done:>width$}/{total}] {:<7} {} ({} ms)",
        e.status().as_str(),
        e.name(),
        e.elapsed.as_millis()
    )
}

/// Failure details (every case that did not pass, in corpus order, each
/// with the command that reruns it when the report knows it), then
/// [`summary`].
pub(crate) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    for (id, error) in &report.load_errors {
        let _ = writeln!(out, "error: scenario {id} does not load\n{error}\n");
    }
    for e in report
        .evaluations
        .iter()
        .filter(|e| e.status() != Status::Passed)
    {
        out.push_str(&e.render());
        if let Some(rerun) = &report.rerun {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            let _ = writeln!(out, "rerun: {}", rerun.command(&e.name()));
        }
        out.push('\n');
    }
    out.push_str(&summary(report));
    out
}

/// `--quiet`: each failure in a few lines (the case's summary line, each
/// failing flow with its failed expectations, each broken invariant with
/// its id and line, the rerun command), no chain walks or distributions, then the summary
/// table without the kernel-mode list of flows not sent.
pub(crate) fn render_quiet(report: &RunReport) -> String {
    let mut out = String::new();
    for (id, error) in &report.load_errors {
        let _ = writeln!(
            out,
            "error: scenario {id} does not load
{error}"
        );
    }
    for e in report
        .evaluations
        .iter()
        .filter(|e| e.status() != Status::Passed)
    {
        let _ = writeln!(out, "{}", e.summary());
        for f in super::detail::flows(e).iter().filter(|f| !f.passed) {
            let _ = writeln!(out, "  FAIL {:?} ({})", f.name, f.family);
            for failure in &f.failures {
                let _ = writeln!(out, "    - {failure}");
            }
        }
        for v in super::detail::violations(e) {
            let _ = writeln!(
                out,
                "  invariant {} at {}:{}: {}",
                v.invariant, v.file, v.line, v.message
            );
        }
        // The one line a failure needs most even when quiet: how to rerun it.
        if let Some(rerun) = &report.rerun {
            let _ = writeln!(out, "  rerun: {}", rerun.command(&e.name()));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let table = summary(report);
    // The kernel-mode list of flows not sent is information, not a failure.
    match table.find("not sent through the kernel") {
        Some(at) => {
            let rest = &table[at..];
            let not_passed = rest.find("not passed:").map_or("", |i| &rest[i..]);
            out.push_str(&table[..at]);
            out.push_str(not_passed);
        }
        None => out.push_str(&table),
    }
    out
}

/// The summary table: how many cases passed, broke, changed or erred, the
/// time taken, and the names of the cases that did not pass.
pub(crate) fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let snapshots = match &report.snapshots {
        Some(dir) => format!("snapshots in {dir}"),
        None => "snapshots not compared".to_string(),
    };
    let _ = writeln!(
        out,
        "kpconform run: generator `{}`, {} case(s) from {}, {snapshots}, {:.2} s",
        report.generator,
        report.total(),
        report.scenarios,
        report.elapsed.as_secs_f64()
    );
    for status in Status::ALL {
        let _ = writeln!(out, "  {:<8} {:>5}", status.as_str(), report.count(status));
    }
    if let Some(k) = report.kernel_totals() {
        let _ = writeln!(
            out,
            "kernel mode ({} backend): {} flow(s) in {} case(s), {} connection(s): {} passed, {} failed, {} skipped\n\
             \x20 {} statistical judgement(s) at α = {:e} each: the chance that this run failed falsely is at most {:.1e}",
            k.backend,
            k.flows,
            k.cases,
            k.connections,
            k.passed,
            k.failed,
            k.skipped,
            k.tests,
            kpconform_kernel::stats::ALPHA,
            kpconform_kernel::false_failure_bound(k.tests),
        );
        let skipped: Vec<String> = report
            .evaluations
            .iter()
            .filter_map(|e| e.kernel.as_ref().map(|k| (e, k)))
            .flat_map(|(e, k)| {
                k.flows.iter().filter_map(move |f| {
                    f.skipped
                        .as_ref()
                        .map(|why| format!("  {} {:?} ({}): {why}", e.name(), f.name, f.to))
                })
            })
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(
                out,
                "not sent through the kernel (checked by the tracer only):"
            );
            for line in skipped {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let failed: Vec<String> = report
        .load_errors
        .iter()
        .map(|(id, _)| format!("  error    {id}"))
        .chain(
            report
                .evaluations
                .iter()
                .filter(|e| e.status() != Status::Passed)
                .map(|e| format!("  {:<8} {}", e.status().as_str(), e.name())),
        )
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "not passed:");
        for line in failed {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn details_then_table() {
        let text = render(&sample());
        let details = text.find("broken: g/s@node-a").expect(&text);
        let table = text.find("kpconform run: generator `gen`").expect(&text);
        assert!(details < table, "{text}");
        assert!(
            text.contains("gen/g/s/node-a.rules:1:1: expected `*table`"),
            "{text}"
        );
        assert!(
            text.contains("error: scenario g/bad does not load\nbad.yaml:1:1:"),
            "{text}"
        );
        assert!(
            text.contains("4 case(s) from golden/scenarios, snapshots not compared, 1.50 s\n  passed       1\n  broken       1\n  changed      0\n  error        2\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "not passed:\n  error    g/bad\n  broken   g/s@node-a\n  error    g/s@node-a\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn each_failure_ends_with_the_command_that_reruns_it() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["kpconform", "run", "--reference"]).unwrap();
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let mut report = sample();
        report.rerun = Some(super::super::Rerun::new("kpconform", &args));
        let text = render(&report);
        let rerun =
            "rerun: kpconform run --reference --scenarios golden/scenarios --filter g/s@node-a\n\n";
        // Under the broken case and under the erring one; not for the one that passed.
        assert_eq!(text.matches(rerun).count(), 2, "{text}");
        let broken = text.find("broken: g/s@node-a").expect(&text);
        let first = text.find(rerun).expect(&text);
        let error = text.find("error: g/s@node-a").expect(&text);
        assert!(broken < first && first < error, "{text}");
        assert!(!render(&sample()).contains("rerun:"));
        let quiet = render_quiet(&report);
        assert_eq!(
            quiet.matches("  rerun: kpconform run --reference --scenarios golden/scenarios --filter g/s@node-a\n").count(),
            2,
            "{quiet}"
        );
    }

    #[test]
    fn quiet_is_failures_in_a_line_or_two_then_the_table() {
        let r = super::super::tests::dual_stack_sample();
        let text = render_quiet(&r);
        assert!(
            text.starts_with("broken: g/d@node-a: IPv4 passed"),
            "{text}"
        );
        assert!(text.contains("\n  FAIL \"v6\" (IPv6)\n    - expected all traffic to accept, but p=1 ends in drop\n"), "{text}");
        assert!(!text.contains("paths:"), "no walks: {text}");
        assert!(
            text.ends_with("not passed:\n  broken   g/d@node-a\n"),
            "{text}"
        );
        let kernel = render_quiet(&super::super::tests::kernel_sample());
        assert!(kernel.contains("kernel mode (nft backend)"), "{kernel}");
        assert!(!kernel.contains("not sent through the kernel"), "{kernel}");
        // The kernel's failure breaks the first case, which passed the tracer.
        assert!(
            kernel.starts_with("error: scenario g/bad does not load\n"),
            "{kernel}"
        );
        assert!(
            kernel.contains("\nbroken: g/s@node-a: 1 of 1 flow(s) passed, 0 invariant violation(s); kernel (nft): 0 of 1 flow(s) passed, 1 skipped\n"),
            "{kernel}"
        );
    }

    #[test]
    fn kernel_mode_adds_its_totals_and_the_flows_not_sent() {
        let text = summary(&super::super::tests::kernel_sample());
        assert!(
            text.contains("kernel mode (nft backend): 2 flow(s) in 1 case(s), 1000 connection(s): 0 passed, 1 failed, 1 skipped\n"),
            "{text}"
        );
        assert!(
            text.contains("statistical judgement(s) at α = 1e-7 each"),
            "{text}"
        );
        assert!(
            text.contains("not sent through the kernel (checked by the tracer only):\n  g/s@node-a \"from loopback\" (10.96.0.10:80/tcp): cannot be sent\n"),
            "{text}"
        );
        // Without kernel mode there is no such line.
        assert!(!summary(&sample()).contains("kernel mode"));
    }

    #[test]
    fn progress_is_one_aligned_line() {
        let r = sample();
        let line = progress_line(1, 12, &r.evaluations[0]);
        assert!(line.starts_with("[ 1/12] passed  g/s@node-a ("), "{line}");
    }
}
