//! `kpconform check`: one node's rules against a scenario's flows and the invariants.

use anyhow::Result;
use kpconform_suite::check::check_node;

use super::Outcome;
use crate::cli::{CheckArgs, ProfileArg};
use crate::{rules_file, scenario_file};

pub(crate) fn run(args: &CheckArgs) -> Result<Outcome> {
    let scenario = scenario_file::load(&args.scenario)?;
    // Fail on a wrong node name before reading (possibly stdin) rules.
    scenario_file::input_for(&scenario, &args.node)?;
    let source = rules_file::read(&args.rules)?;
    let rules = rules_file::parse(&source, &args.parse)?;
    let profile = match args.profile {
        ProfileArg::Auto => None,
        other => Some(super::lint::resolve_profile(other, &rules)),
    };
    let report = check_node(
        &rules,
        &scenario,
        &args.node,
        profile,
        args.probability.into(),
    )
    .expect("the node was checked above");
    out!("{}", report.render(Some(&source)));
    let flows = report.flows.len();
    let failed = report.failed_flows();
    let violations = report.violations.len();
    if flows == 0 {
        outln!(
            "note: scenario `{}` has no flows on {}",
            scenario.id,
            args.node
        );
    }
    let summary = format!(
        "{}@{}: {} of {flows} flow(s) passed, {violations} invariant violation(s) ({} profile)",
        scenario.id,
        args.node,
        flows - failed,
        report.profile,
    );
    if report.passed() {
        outln!("ok: {summary}");
        Ok(Outcome::Pass)
    } else {
        outln!("FAILED: {summary}");
        Ok(Outcome::Fail)
    }
}
