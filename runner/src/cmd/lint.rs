//! `kpconform lint`: the invariants of a rule set, without a scenario.

use anyhow::Result;
use kpconform_iptables::model::RuleSet;
use kpconform_iptables::SourceFile;
use kpconform_suite::invariants::{self, Profile};

use super::Outcome;
use crate::cli::{LintArgs, ProfileArg};
use crate::rules_file;

pub(crate) fn run(args: &LintArgs) -> Result<Outcome> {
    if args.list {
        // Releases: the kube-proxy releases whose rule sets the invariant holds
        // for; `1.27, 1.28+` marks one whose accepted shape differs by release
        // (the description says which is whose).
        outln!(
            "{:<28} {:<10} {:<12} DESCRIPTION",
            "ID",
            "PROFILE",
            "RELEASES"
        );
        for inv in invariants::catalogue() {
            outln!(
                "{:<28} {:<10} {:<12} {}",
                inv.id,
                inv.profile.as_str(),
                inv.releases,
                inv.description
            );
        }
        return Ok(Outcome::Pass);
    }
    // clap requires --rules unless --list is given.
    let Some(path) = &args.rules else {
        anyhow::bail!("--rules FILE is required");
    };
    // A file that parses cleanly is parsed as it is read, its text never
    // held whole beside the model (it was a quarter of the peak: 27 MB of
    // a 10k-Service dump's 100), and read again only if something is to be
    // shown; anything to report, and standard input (which cannot be read
    // twice), is read whole and parsed as every command does.
    let (rules, kept) = match rules_file::parse_streaming(path, &args.parse)? {
        Some(streamed) => streamed,
        None => {
            let source = rules_file::read(path)?;
            let rules = rules_file::parse(&source, &args.parse)?;
            (rules, rules_file::Kept::new(path, source))
        }
    };
    let profile = resolve_profile(args.profile, &rules);
    let violations = invariants::check(&rules, profile);
    let failed = violations.len();
    if failed > 0 {
        let source = kept.get()?;
        for v in &violations {
            outln!("{}\n", source.render(v.span, v));
        }
        std::mem::forget(source);
    }
    let (tables, chains, count) = counts(&rules);
    // The process ends here: freeing a dump's model rule by rule would cost
    // a tenth of the run (400k rules), and the kernel takes it back whole.
    std::mem::forget(rules);
    if failed == 0 {
        outln!(
            "ok: {tables} tables, {chains} chains, {count} rules; every {profile} invariant holds",
        );
        Ok(Outcome::Pass)
    } else {
        outln!("FAILED: {failed} invariant violation(s) ({profile} profile)");
        Ok(Outcome::Fail)
    }
}

/// The profile to check: as asked, or detected from the chains present.
pub(crate) fn resolve_profile(arg: ProfileArg, rules: &RuleSet) -> Profile {
    match arg {
        ProfileArg::Auto => invariants::detect_profile(rules),
        ProfileArg::Generic => Profile::Generic,
        ProfileArg::KubeProxy => Profile::KubeProxy,
    }
}

/// Prints each violation at its line; returns how many there were.
pub(crate) fn report_violations(source: &SourceFile, rules: &RuleSet, profile: Profile) -> usize {
    let violations = invariants::check(rules, profile);
    for v in &violations {
        outln!("{}\n", source.render(v.span, v));
    }
    violations.len()
}

fn counts(rules: &RuleSet) -> (usize, usize, usize) {
    let chains = rules.tables.iter().map(|t| t.chains.len()).sum();
    let count = rules
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .map(|c| c.rules.len())
        .sum();
    (rules.tables.len(), chains, count)
}
