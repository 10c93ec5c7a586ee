//! Planted faults caught by the kernel alone.
//!
//! Each case takes the reference generator's rules for one golden
//! (scenario, node), plants a mutant from the self-test catalogue, loads
//! the result into real network namespaces and checks that some flow's
//! `expect` is contradicted by what the kernel did (`KernelFlow::failures`).
//! The tracer's verdict is deliberately not consulted for that: these tests
//! are the evidence that kernel mode stands on its own, so a tracer bug that
//! hid a fault could not hide it here too. The tracer is still required to
//! agree with the kernel on the mutated rules, because a mutant is a fault
//! of the rules, not of kpconform's model of iptables. (A hairpin without
//! masquerade is the case where the two see different things: the tracer
//! follows the first packet to the endpoint, while the endpoint's answer to
//! its own address never leaves it; kernel mode's prediction accounts for
//! that, and says so in a note.)
//!
//! The tests need root and network namespaces. Where those are missing
//! they fail, so that a CI job that silently lost its privileges does not
//! pass for free; `KPCONFORM_KERNEL_TESTS=skip` opts out explicitly.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::{parse, print, Mode, ProbabilityMode};
use kpconform_kernel::{preflight, run_node, Backend, FamilyRules, KernelReport, Options};
use kpconform_suite::check::check_node_family;
use kpconform_suite::scenario::Scenario;

const SKIP_VAR: &str = "KPCONFORM_KERNEL_TESTS";

/// Whether the kernel tests may run here; `false` means skipped (only with
/// `KPCONFORM_KERNEL_TESTS=skip`), and anything else missing panics.
fn kernel_available() -> bool {
    // One probe per test binary: preflight creates a namespace, and the
    // answer cannot change between tests.
    static PREFLIGHT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = PREFLIGHT.get_or_init(|| {
        let mut problem = match preflight(Backend::Nft, &[Family::Ipv4, Family::Ipv6]) {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if !nix::unistd::geteuid().is_root() {
            problem = format!(
                "kernel tests need root (run `sudo -E cargo test -p kpconform-kernel --test faults`): \
                 {problem}"
            );
        }
        Err(problem)
    });
    match result {
        Ok(()) => true,
        Err(problem) if std::env::var(SKIP_VAR).as_deref() == Ok("skip") => {
            println!("kernel tests skipped ({SKIP_VAR}=skip): {problem}");
            false
        }
        Err(problem) => panic!("{problem}\n(set {SKIP_VAR}=skip to skip the kernel tests instead)"),
    }
}

/// A golden scenario's node, its rules as the reference generator writes
/// them, and what the tracer and the kernel made of them.
struct Case {
    scenario: Scenario,
    node: &'static str,
    family: Family,
    rules: RuleSet,
}

impl Case {
    fn load(id: &str, node: &'static str, family: Family) -> Case {
        let root = Path::new(kpconform_golden::SCENARIOS);
        let path = root.join(format!("{id}.yaml"));
        let scenario = Scenario::load(&path, root).unwrap_or_else(|e| panic!("{id}: {e}"));
        let input = scenario
            .cluster
            .generator_input_for(node, family)
            .unwrap_or_else(|| panic!("{id}: no {family} input for {node}"));
        let text = kpconform_reference::generate(&input);
        let rules = match parse(&text, Mode::Strict) {
            Ok(parsed) => parsed.rules,
            Err(errors) => panic!("{id}@{node}: the reference output does not parse: {errors:?}"),
        };
        Case {
            scenario,
            node,
            family,
            rules,
        }
    }

    fn name(&self) -> String {
        format!("{}@{}", self.scenario.id, self.node)
    }

    /// The rules through the kernel. They are always printed from the
    /// parsed rule set, the baseline included, so that the baseline and the
    /// mutant differ by the mutation alone and not by the printer.
    fn run(&self, rules: &RuleSet, options: &Options) -> KernelReport {
        let report = check_node_family(
            rules,
            &self.scenario,
            self.node,
            self.family,
            None,
            ProbabilityMode::Kernel,
        )
        .unwrap_or_else(|| panic!("{}: the tracer knows no such node", self.name()));
        let printed = print(rules);
        let family_rules = FamilyRules {
            family: self.family,
            text: printed.into(),
            report: &report,
            unmodelled: false,
        };
        run_node(&self.scenario, self.node, &[family_rules], options)
    }
}

/// Failures that say the kernel could not be asked, not that it answered
/// against the expectation; a mutant "caught" by one of them proves nothing.
fn is_machinery_failure(failure: &str) -> bool {
    failure.starts_with("kpconform's topology is wrong")
        || failure.starts_with("the connections could not be made")
}

/// Plants `mutant` in the reference rules of `scenario`@`node` and checks
/// that the kernel passes the rules as generated and fails every variant
/// the mutant makes, with the tracer agreeing throughout.
fn caught_in_kernel(mutant: &str, scenario: &str, node: &'static str, family: Family) {
    if !kernel_available() {
        return;
    }
    let start = Instant::now();
    let case = Case::load(scenario, node, family);
    let name = case.name();

    let options = Options::default();
    let baseline = case.run(&case.rules, &options);
    assert!(
        baseline.passed() && !baseline.flows.iter().any(|f| f.failed()),
        "{name}: the unmutated reference rules must pass in the kernel, or a failure of the \
         mutant would prove nothing:\n{}",
        baseline.render()
    );
    assert!(
        baseline.skipped() < baseline.flows.len(),
        "{name}: every flow was skipped, so the kernel cannot judge this case:\n{}",
        baseline.render()
    );

    let m =
        kpconform_selftest::mutants::find(mutant).unwrap_or_else(|| panic!("no mutant {mutant}"));
    let mutations = m.apply(&case.rules);
    assert!(!mutations.is_empty(), "{mutant} does not apply to {name}");
    // Every place the mutant edits, not just the first: a scenario chosen
    // for this test should catch the fault wherever it is planted.
    for mutation in &mutations {
        let report = case.run(&mutation.rules, &options);
        let context = format!("{mutant} at {} in {name}", mutation.place);
        assert!(
            report.setup_error.is_none() && report.refused.is_empty(),
            "{context}: the kernel could not run the mutated rules:\n{}",
            report.render()
        );
        let caught: Vec<_> = report
            .flows
            .iter()
            .filter(|f| f.skipped.is_none())
            .flat_map(|f| f.failures.iter().map(move |failure| (f, failure)))
            .filter(|(_, failure)| !is_machinery_failure(failure))
            .collect();
        assert!(
            !caught.is_empty(),
            "{context}: no flow's expectation was contradicted by the kernel, so kernel mode alone \
             misses this fault:\n{}",
            report.render()
        );
        let disagreeing: Vec<_> = report
            .flows
            .iter()
            .filter(|f| !f.disagreements.is_empty())
            .collect();
        assert!(
            disagreeing.is_empty(),
            "{context}: the tracer and the kernel disagree on the mutated rules (a defect of \
             kpconform, not of the mutant):\n{}",
            report.render()
        );
        for (flow, failure) in caught {
            println!("{context}: flow {:?} ({}): {failure}", flow.name, flow.to);
        }
        print!("{}", report.render());
    }
    println!("{mutant} on {name}: {:.1} s", start.elapsed().as_secs_f64());
}

// Three endpoints is the smallest case where equal probabilities change
// anything: with two, 1/2 then 1/1 is already what 1/(n-i) gives.
#[test]
fn equal_probabilities() {
    caught_in_kernel(
        "equal-probabilities",
        "clusterip/three-endpoints",
        "node-a",
        Family::Ipv4,
    );
}

#[test]
fn missing_hairpin_masquerade() {
    caught_in_kernel(
        "missing-hairpin-masquerade",
        "clusterip/hairpin-single-endpoint",
        "node-a",
        Family::Ipv4,
    );
}

// Each dropped connection costs the full timeout, but only `refusals`
// (three) are sent per flow that is expected to be rejected.
#[test]
fn reject_becomes_drop() {
    caught_in_kernel(
        "reject-becomes-drop",
        "endpoints/empty-slice-rejects",
        "node-a",
        Family::Ipv4,
    );
}

// A remote endpoint is needed: with only local ones, KUBE-SVC and KUBE-SVL
// reach the same places.
#[test]
fn local_policy_falls_through() {
    caught_in_kernel(
        "local-policy-falls-through",
        "nodeport/etp-local-two-local-one-remote",
        "node-a",
        Family::Ipv4,
    );
}

#[test]
fn affinity_removed() {
    caught_in_kernel(
        "affinity-removed",
        "affinity/client-ip-default-timeout",
        "node-a",
        Family::Ipv4,
    );
}

#[test]
fn missing_ext_masquerade() {
    caught_in_kernel(
        "missing-ext-masquerade",
        "nodeport/etp-cluster",
        "node-a",
        Family::Ipv4,
    );
}

// The one flow that sends from the network to the node's 127.0.0.1: the
// client's loopback is down so that the packet really reaches the node.
#[test]
fn missing_localnet_drop() {
    caught_in_kernel(
        "missing-localnet-drop",
        "nodeport/localhost-guard-from-network",
        "node-a",
        Family::Ipv4,
    );
}
