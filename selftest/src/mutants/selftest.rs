//! Running the catalogue over one (scenario, node), and summing the results
//! per mutant.

use std::fmt::Write as _;

use super::Mutant;
use kpconform_harness::{evaluate, Evaluation, Status};
use kpconform_harness::{FnGenerator, Generator};
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::{parse, print, Mode};
use kpconform_suite::scenario::Scenario;

/// One mutation of one case and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// The mutant's id.
    pub mutant: &'static str,
    /// The family of the rules it edited (a dual-stack node's two rule
    /// sets are mutated one at a time).
    pub family: Family,
    /// Where it edited (see [`Mutation::place`](super::Mutation::place)).
    pub place: String,
    /// What noticed the change, in report order: `parse error`,
    /// `flow "NAME"`, `invariant ID`; empty when nothing did.
    pub caught_by: Vec<String>,
}

impl Application {
    /// Whether the suite noticed the mutation.
    pub fn caught(&self) -> bool {
        !self.caught_by.is_empty()
    }

    /// Whether a flow (not only an invariant or the parser) noticed it.
    pub fn caught_by_flow(&self) -> bool {
        self.caught_by.iter().any(|c| c.starts_with("flow "))
    }
}

/// Every mutation of one (scenario, node).
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The scenario id.
    pub scenario: String,
    /// The node.
    pub node: String,
    /// One per mutant and place, in catalogue order.
    pub applications: Vec<Application>,
}

impl CaseResult {
    /// `<scenario-id>@<node>`.
    pub fn name(&self) -> String {
        format!("{}@{}", self.scenario, self.node)
    }
}

/// Why a case cannot be mutated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupFailure {
    /// The generator's own output does not pass (or could not be produced).
    NotPassing,
    /// The output passes, but printing its parsed rule set back does not:
    /// every mutant would be "caught" by the printer, not by the suite.
    ReprintFails,
}

/// A case whose unmutated rules do not pass, so its mutants would prove nothing.
#[derive(Debug, Clone)]
pub struct SetupError {
    /// What failed.
    pub failure: SetupFailure,
    /// The evaluation that failed.
    pub evaluation: Box<Evaluation>,
}

impl SetupError {
    /// The explanation, with the failed evaluation in full.
    pub fn render(&self) -> String {
        let what = match self.failure {
            SetupFailure::NotPassing => "the generator's own output does not pass",
            SetupFailure::ReprintFails => {
                "the generator's output passes, but printed back from its parsed rules it does not"
            }
        };
        format!(
            "setup error: {}: {what}, so its mutants would prove nothing\n{}",
            self.evaluation.name(),
            self.evaluation.render()
        )
    }
}

/// Runs `generator` for `node` of `scenario`, checks that its output passes
/// (as is, and printed back from the parsed rules), then applies every
/// mutant and evaluates each variant with [`evaluate`], as `kpconform run`
/// would judge that output.
pub fn self_test(
    generator: &dyn Generator,
    scenario: &Scenario,
    node: &str,
    mutants: &[Mutant],
) -> Result<CaseResult, SetupError> {
    let setup = |failure, evaluation| SetupError {
        failure,
        evaluation: Box::new(evaluation),
    };
    let baseline = evaluate(generator, scenario, node, None);
    if baseline.status() != Status::Passed {
        return Err(setup(SetupFailure::NotPassing, baseline));
    }
    // Each family's output, parsed; a dual-stack node's families are
    // mutated one at a time, the other keeping its own output.
    let mut outputs: Vec<(Family, String, RuleSet)> = Vec::new();
    for f in &baseline.families {
        let text = f.output.as_ref().map(|o| o.text()).unwrap_or_default();
        match parse(text, Mode::Strict) {
            Ok(parsed) => outputs.push((f.family, text.to_string(), parsed.rules)),
            // Cannot happen for a passed evaluation, which parsed the same text.
            Err(_) => return Err(setup(SetupFailure::NotPassing, baseline)),
        }
    }
    let judge = |name: String, family: Family, text: String| {
        let others: Vec<(Family, String)> = outputs
            .iter()
            .filter(|(f, _, _)| *f != family)
            .map(|(f, t, _)| (*f, t.clone()))
            .collect();
        let fixed = FnGenerator::new(name, move |input| {
            Ok(others
                .iter()
                .find(|(f, _)| *f == input.node.family)
                .map_or_else(|| text.clone(), |(_, t)| t.clone()))
        });
        evaluate(&fixed, scenario, node, None)
    };
    for (family, _, rules) in &outputs {
        let reprinted = judge(generator.name().to_string(), *family, print(rules));
        if reprinted.status() != Status::Passed {
            return Err(setup(SetupFailure::ReprintFails, reprinted));
        }
    }
    let mut applications = Vec::new();
    for (family, _, rules) in &outputs {
        for mutant in mutants {
            for mutation in mutant.apply(rules) {
                let name = format!("{}+{}", generator.name(), mutant.id);
                let evaluation = judge(name, *family, print(&mutation.rules));
                applications.push(Application {
                    mutant: mutant.id,
                    family: *family,
                    place: mutation.place,
                    caught_by: caught_by(&evaluation),
                });
            }
        }
    }
    Ok(CaseResult {
        scenario: scenario.id.clone(),
        node: node.to_string(),
        applications,
    })
}

/// What failed in an evaluation, each named once, in report order.
fn caught_by(e: &Evaluation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    if e.error.is_some() {
        push("generator error".into());
    }
    for f in &e.families {
        if f.error.is_some() {
            push("generator error".into());
        }
        if !f.parse_errors.is_empty() {
            push("parse error".into());
        }
        if let Some(report) = &f.report {
            for flow in report.flows.iter().filter(|flow| !flow.passed()) {
                push(format!("flow {:?}", flow.flow));
            }
            for v in &report.violations {
                push(format!("invariant {}", v.invariant));
            }
        }
    }
    out
}

/// How a mutant fared over a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TallyVerdict {
    /// Some case noticed it.
    Caught,
    /// It applied somewhere and no case noticed it: a scenario is missing.
    NotCaught,
    /// It applied nowhere.
    NotApplicable,
}

impl TallyVerdict {
    /// Kebab-case name, as JSON reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            TallyVerdict::Caught => "caught",
            TallyVerdict::NotCaught => "not-caught",
            TallyVerdict::NotApplicable => "not-applicable",
        }
    }
}

/// What one mutant's applications came to, over every case or over the
/// rules of one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cases it applied to.
    pub applicable_cases: usize,
    /// Cases where at least one of its variants was noticed.
    pub caught_cases: usize,
    /// Variants made, over all cases.
    pub applications: usize,
    /// Variants noticed.
    pub caught_applications: usize,
    /// Variants a flow noticed (the rest of the caught ones only an
    /// invariant or the parser did).
    pub caught_by_flows: usize,
    /// The cases that noticed it, in corpus order.
    pub caught_in: Vec<String>,
    /// The cases it applied to where nothing noticed it, in corpus order.
    pub missed_in: Vec<String>,
}

impl Counts {
    /// Sums the applications of `mutant` that `keep` selects, per case.
    fn of(mutant: &str, results: &[CaseResult], keep: impl Fn(&Application) -> bool) -> Counts {
        let mut t = Counts::default();
        for case in results {
            let mine: Vec<&Application> = case
                .applications
                .iter()
                .filter(|a| a.mutant == mutant && keep(a))
                .collect();
            if mine.is_empty() {
                continue;
            }
            t.applicable_cases += 1;
            t.applications += mine.len();
            t.caught_applications += mine.iter().filter(|a| a.caught()).count();
            t.caught_by_flows += mine.iter().filter(|a| a.caught_by_flow()).count();
            if mine.iter().any(|a| a.caught()) {
                t.caught_cases += 1;
                t.caught_in.push(case.name());
            } else {
                t.missed_in.push(case.name());
            }
        }
        t
    }

    /// Caught (by some case), not caught, or not applicable.
    fn verdict(&self) -> TallyVerdict {
        if self.applicable_cases == 0 {
            TallyVerdict::NotApplicable
        } else if self.caught_cases == 0 {
            TallyVerdict::NotCaught
        } else {
            TallyVerdict::Caught
        }
    }
}

/// One mutant's results on the rules of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyTally {
    /// The family of the rules it edited.
    pub family: Family,
    /// Its applications to rules of that family.
    pub counts: Counts,
}

impl FamilyTally {
    /// Caught, not caught, or not applicable, on this family's rules.
    pub fn verdict(&self) -> TallyVerdict {
        self.counts.verdict()
    }
}

/// One mutant's results over every case.
#[derive(Debug, Clone)]
pub struct MutantTally {
    /// The mutant.
    pub mutant: &'static Mutant,
    /// Cases it applied to (to the rules of either family).
    pub applicable_cases: usize,
    /// Cases where at least one of its variants was noticed.
    pub caught_cases: usize,
    /// Variants made, over all cases.
    pub applications: usize,
    /// Variants noticed.
    pub caught_applications: usize,
    /// Variants a flow noticed (the rest of the caught ones only an
    /// invariant or the parser did).
    pub caught_by_flows: usize,
    /// The cases that noticed it, in corpus order.
    pub caught_in: Vec<String>,
    /// The cases it applied to where nothing noticed it, in corpus order.
    pub missed_in: Vec<String>,
    /// The same per family of the rules it edited, IPv4 first; both
    /// families, applicable or not.
    pub families: Vec<FamilyTally>,
}

impl MutantTally {
    /// Caught, not caught, or not applicable. A mutant is caught when,
    /// for each family whose rules it applied to, some case noticed it
    /// there: one caught only in IPv4 rules while it also applied to IPv6
    /// rules is not caught (no IPv6 case can see it).
    pub fn verdict(&self) -> TallyVerdict {
        if self.applicable_cases == 0 {
            TallyVerdict::NotApplicable
        } else if self.missed_families().is_empty() {
            TallyVerdict::Caught
        } else {
            TallyVerdict::NotCaught
        }
    }

    /// The families whose rules it applied to where no case noticed it.
    pub fn missed_families(&self) -> Vec<Family> {
        self.families
            .iter()
            .filter(|f| f.verdict() == TallyVerdict::NotCaught)
            .map(|f| f.family)
            .collect()
    }

    /// The tally of `family`'s rules.
    pub fn family(&self, family: Family) -> Option<&FamilyTally> {
        self.families.iter().find(|f| f.family == family)
    }

    /// `12/14 cases, 20/25 applications`.
    pub fn counts(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{}/{} cases, {}/{} applications",
            self.caught_cases, self.applicable_cases, self.caught_applications, self.applications
        );
        s
    }
}

/// Sums `results` per mutant of `mutants`, in catalogue order, overall and
/// per family.
pub fn tally(mutants: &'static [Mutant], results: &[CaseResult]) -> Vec<MutantTally> {
    mutants
        .iter()
        .map(|mutant| {
            let all = Counts::of(mutant.id, results, |_| true);
            let families = [Family::Ipv4, Family::Ipv6]
                .into_iter()
                .map(|family| FamilyTally {
                    family,
                    counts: Counts::of(mutant.id, results, |a| a.family == family),
                })
                .collect();
            MutantTally {
                mutant,
                applicable_cases: all.applicable_cases,
                caught_cases: all.caught_cases,
                applications: all.applications,
                caught_applications: all.caught_applications,
                caught_by_flows: all.caught_by_flows,
                caught_in: all.caught_in,
                missed_in: all.missed_in,
                families,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::{catalogue, find};
    use kpconform_iptables::SourceFile;

    /// A node-port service with two endpoints on node-a, and flows that see
    /// its dispatch (both endpoints at 1/2) but never its hairpin.
    const SCENARIO: &str = "
cluster:
  clusterCIDR: 10.64.0.0/16
  nodes: [{name: node-a, addresses: [192.168.0.10]}]
flows:
- {name: cluster IP, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp,
   expect: {endpoints: {10.64.0.5:8080: 0.5, 10.64.0.6:8080: 0.5}, masquerade: true}}
";

    const RULES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -j KUBE-PROXY-FIREWALL
-A INPUT -j KUBE-NODEPORTS
-A INPUT -j KUBE-EXTERNAL-SERVICES
-A FORWARD -j KUBE-PROXY-FIREWALL
-A FORWARD -j KUBE-FORWARD
-A FORWARD -j KUBE-SERVICES
-A FORWARD -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-PROXY-FIREWALL
-A OUTPUT -j KUBE-SERVICES
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-X - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
-A KUBE-SEP-A -s 10.64.0.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.64.0.5:8080
-A KUBE-SEP-B -s 10.64.0.6/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.64.0.6:8080
-A KUBE-SERVICES -d 10.96.0.50/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
-A KUBE-SVC-X ! -s 10.64.0.0/16 -d 10.96.0.50/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVC-X -j KUBE-SEP-A
COMMIT
";

    /// The 1-based line of `RULES` containing `needle`.
    fn line_of(needle: &str) -> usize {
        RULES.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    fn scenario() -> Scenario {
        Scenario::from_source(&SourceFile::new("s.yaml", SCENARIO), "g/s").unwrap()
    }

    fn fixed(text: impl Into<String>) -> impl Generator {
        let text = text.into();
        FnGenerator::new("fixed", move |_| Ok(text.clone()))
    }

    fn only(ids: &[&str]) -> Vec<Mutant> {
        ids.iter().map(|id| *find(id).unwrap()).collect()
    }

    #[test]
    fn flows_and_invariants_catch_what_they_see() {
        let mutants = only(&[
            "wrong-dnat-port",
            "missing-hairpin-masquerade",
            "missing-ext-masquerade",
        ]);
        let result = self_test(&fixed(RULES), &scenario(), "node-a", &mutants).unwrap();
        assert_eq!(result.name(), "g/s@node-a");
        let summary: Vec<(&str, String, bool)> = result
            .applications
            .iter()
            .map(|a| (a.mutant, a.place.clone(), a.caught()))
            .collect();
        let at = |chain: &str, needle: &str| format!("nat {chain}, line {}", line_of(needle));
        // One variant per endpoint chain; no KUBE-EXT chain, so no third mutant.
        assert_eq!(
            summary,
            [
                (
                    "wrong-dnat-port",
                    at("KUBE-SEP-A", "--to-destination 10.64.0.5"),
                    true
                ),
                (
                    "wrong-dnat-port",
                    at("KUBE-SEP-B", "--to-destination 10.64.0.6"),
                    true
                ),
                (
                    "missing-hairpin-masquerade",
                    at("KUBE-SEP-A", "-s 10.64.0.5/32"),
                    true
                ),
                (
                    "missing-hairpin-masquerade",
                    at("KUBE-SEP-B", "-s 10.64.0.6/32"),
                    true
                ),
            ]
        );
        // A wrong port breaks the flow; a missing hairpin only the invariant
        // (no flow comes from an endpoint).
        assert_eq!(result.applications[0].caught_by, ["flow \"cluster IP\""]);
        assert_eq!(result.applications[2].caught_by, ["invariant sep-hairpin"]);
        assert!(!result.applications[2].caught_by_flow());

        let tallies = tally(catalogue(), &[result]);
        let of = |id: &str| tallies.iter().find(|t| t.mutant.id == id).unwrap();
        assert_eq!(of("wrong-dnat-port").verdict(), TallyVerdict::Caught);
        assert_eq!(
            of("wrong-dnat-port").counts(),
            "1/1 cases, 2/2 applications"
        );
        assert_eq!(of("wrong-dnat-port").caught_by_flows, 2);
        assert_eq!(of("wrong-dnat-port").caught_in, ["g/s@node-a"]);
        assert_eq!(of("missing-hairpin-masquerade").caught_by_flows, 0);
        assert_eq!(
            of("missing-ext-masquerade").verdict(),
            TallyVerdict::NotApplicable
        );
    }

    #[test]
    fn a_mutant_no_flow_or_invariant_sees_is_not_caught() {
        // The flow sees the cluster IP rule turned udp; 1/n equals 1/(n-i)
        // for two endpoints, so equal-probabilities has nothing to change.
        let mutants = only(&["protocol-swapped", "equal-probabilities"]);
        let result = self_test(&fixed(RULES), &scenario(), "node-a", &mutants).unwrap();
        let tallies = tally(catalogue(), std::slice::from_ref(&result));
        let of = |id: &str| tallies.iter().find(|t| t.mutant.id == id).unwrap();
        assert_eq!(of("protocol-swapped").verdict(), TallyVerdict::Caught);
        assert_eq!(
            of("equal-probabilities").verdict(),
            TallyVerdict::NotApplicable
        );

        // Without the flow, nothing notices the swapped protocol.
        let silent = SCENARIO.split("flows:").next().unwrap().to_string() + "flows: []\n";
        let silent =
            Scenario::from_source(&SourceFile::new("s.yaml", &silent), "g/silent").unwrap();
        let result = self_test(&fixed(RULES), &silent, "node-a", &mutants).unwrap();
        let tallies = tally(catalogue(), &[result]);
        let swapped = tallies
            .iter()
            .find(|t| t.mutant.id == "protocol-swapped")
            .unwrap();
        assert_eq!(swapped.verdict(), TallyVerdict::NotCaught);
        assert_eq!(swapped.missed_in, ["g/silent@node-a"]);
        assert_eq!(swapped.counts(), "0/1 cases, 0/1 applications");
    }

    #[test]
    fn a_dual_stack_node_is_mutated_in_each_family() {
        let root = std::path::Path::new(kpconform_golden::SCENARIOS);
        let scenario = Scenario::load(&root.join("dualstack/dualstack-clusterip.yaml"), root)
            .expect("golden scenario loads");
        let reference = FnGenerator::new("reference", |input| {
            Ok(kpconform_reference::generate(input))
        });
        let mutants = only(&[
            "missing-hairpin-masquerade",
            "missing-localnet-drop",
            "wrong-dnat-port",
        ]);
        let result = self_test(&reference, &scenario, "node-a", &mutants).unwrap();
        let of = |id: &str, family: Family| -> Vec<&Application> {
            result
                .applications
                .iter()
                .filter(|a| a.mutant == id && a.family == family)
                .collect()
        };
        // The IPv6 hairpin rules are `-s EP/128`: three endpoints, three places.
        for family in [Family::Ipv4, Family::Ipv6] {
            assert_eq!(of("missing-hairpin-masquerade", family).len(), 3);
            let dnat = of("wrong-dnat-port", family);
            assert_eq!(dnat.len(), 3);
            // The flows of each family see its endpoints' ports.
            assert!(dnat.iter().all(|a| a.caught_by_flow()), "{dnat:?}");
        }
        // IPv6 has no route_localnet, so no localnet DROP to remove.
        assert_eq!(of("missing-localnet-drop", Family::Ipv4).len(), 1);
        assert!(of("missing-localnet-drop", Family::Ipv6).is_empty());

        let tallies = tally(catalogue(), std::slice::from_ref(&result));
        let t = tallies
            .iter()
            .find(|t| t.mutant.id == "missing-localnet-drop")
            .unwrap();
        // No flow of the scenario goes to 127.0.0.1.
        assert_eq!(t.verdict(), TallyVerdict::NotCaught);
        assert_eq!(t.missed_families(), [Family::Ipv4]);
        assert_eq!(
            t.family(Family::Ipv6).unwrap().verdict(),
            TallyVerdict::NotApplicable
        );
        let t = tallies
            .iter()
            .find(|t| t.mutant.id == "wrong-dnat-port")
            .unwrap();
        assert_eq!(t.verdict(), TallyVerdict::Caught);
        assert_eq!(t.applications, 6);
        for f in &t.families {
            assert_eq!(f.counts.applications, 3, "{f:?}");
            assert_eq!(f.verdict(), TallyVerdict::Caught, "{f:?}");
        }
    }

    #[test]
    fn a_mutant_caught_in_one_family_only_is_not_caught() {
        let app = |family, caught: bool| Application {
            mutant: "wrong-dnat-port",
            family,
            place: "nat KUBE-SEP-A, line 3".into(),
            caught_by: if caught {
                vec!["flow \"x\"".into()]
            } else {
                Vec::new()
            },
        };
        let case = CaseResult {
            scenario: "g/dual".into(),
            node: "node-a".into(),
            applications: vec![app(Family::Ipv4, true), app(Family::Ipv6, false)],
        };
        let tallies = tally(catalogue(), &[case]);
        let t = tallies
            .iter()
            .find(|t| t.mutant.id == "wrong-dnat-port")
            .unwrap();
        // Overall the case caught it, but not in its IPv6 rules.
        assert_eq!(t.caught_cases, 1);
        assert_eq!(t.verdict(), TallyVerdict::NotCaught);
        assert_eq!(t.missed_families(), [Family::Ipv6]);
        assert_eq!(
            t.family(Family::Ipv6).unwrap().counts.missed_in,
            ["g/dual@node-a"]
        );
    }

    #[test]
    fn output_that_does_not_pass_is_a_setup_error() {
        // Endpoint A only: the flow's 1/2 for B fails before any mutant runs.
        let broken = RULES.replace(
            "-A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B\n",
            "",
        );
        assert_ne!(broken, RULES);
        let err = self_test(&fixed(broken), &scenario(), "node-a", catalogue()).unwrap_err();
        assert_eq!(err.failure, SetupFailure::NotPassing);
        let text = err.render();
        assert!(
            text.starts_with("setup error: g/s@node-a: the generator's own output does not pass"),
            "{text}"
        );
        assert!(text.contains("cluster IP"), "{text}");
    }
}
