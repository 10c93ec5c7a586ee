//! The structured facts of one case that the machine-readable and the HTML
//! reports share: per flow the expected and the actual distribution (as the
//! check computes them), the failed expectations and, for a failing flow,
//! every path with the rule lines it went through; per broken invariant its
//! id and rule line. Built from an [`Evaluation`], rendered by `json` (as is,
//! through serde) and `html`.

use kpconform_harness::{Evaluation, FamilyEvaluation};
use kpconform_iptables::{format_probability, Action, Outcome, SourceFile, Step, WalkItem};
use kpconform_suite::check::FlowReport;
use kpconform_suite::exact;
use kpconform_suite::invariants::Violation;
use serde::Serialize;

/// One flow of one family, checked.
#[derive(Debug, Serialize)]
pub(super) struct FlowDetail {
    pub(super) name: String,
    pub(super) family: &'static str,
    /// The flow's line in its scenario file (0 when unknown).
    pub(super) scenario_line: u32,
    pub(super) passed: bool,
    /// The packet traced, as `kpconform trace` prints it.
    pub(super) packet: String,
    pub(super) expected: Expected,
    /// The first connection's outcomes summed per (verdict, destination,
    /// masquerade); `null` when the packet could not be traced.
    pub(super) actual: Option<Vec<Share>>,
    /// One line per expectation that did not hold.
    pub(super) failures: Vec<String>,
    /// Every path of a failing flow with its rule lines; empty for a flow
    /// that passed (its walks explain nothing).
    pub(super) paths: Vec<PathDetail>,
}

/// What the scenario asks of a flow.
#[derive(Debug, Serialize)]
pub(super) struct Expected {
    /// Accepted mass per destination, when the flow lists endpoints.
    pub(super) endpoints: Option<Vec<Probability>>,
    pub(super) verdict: Option<&'static str>,
    pub(super) masquerade: Option<bool>,
    pub(super) sticky: Option<bool>,
    /// The tolerance on every probability, as a decimal.
    pub(super) tolerance: String,
}

/// An expected destination and its probability.
#[derive(Debug, Serialize)]
pub(super) struct Probability {
    pub(super) destination: String,
    /// The nearest double, for charts and tools (never for judging).
    pub(super) probability: f64,
    /// The value as kpconform prints it (exact, or 12 significant digits).
    pub(super) text: String,
}

/// One (verdict, destination, masquerade) of a distribution and its mass.
#[derive(Debug, Serialize)]
pub(super) struct Share {
    pub(super) verdict: &'static str,
    pub(super) destination: String,
    pub(super) masquerade: bool,
    pub(super) probability: f64,
    pub(super) text: String,
}

/// One path of a failing flow.
#[derive(Debug, Serialize)]
pub(super) struct PathDetail {
    pub(super) verdict: &'static str,
    pub(super) destination: String,
    pub(super) masquerade: bool,
    pub(super) probability: f64,
    pub(super) text: String,
    /// The compact walk, e.g. `nat PREROUTING > KUBE-SERVICES > ... | accept`.
    pub(super) walk: String,
    /// The rules that acted on the path, in order.
    pub(super) rules: Vec<RuleLine>,
}

/// A rule (or a run of statistic rules not taken, or a chain's end or
/// policy) on a path, where it is written and what it did.
#[derive(Debug, Serialize)]
pub(super) struct RuleLine {
    /// The rules file, as named in the report (`<generator>/<scenario>/<node>.rules`).
    pub(super) file: String,
    /// First line of the rule; 0 for a chain's end and the routing decision.
    pub(super) line: u32,
    /// Last line (a rule continued with `\`, or a run of statistic rules).
    pub(super) end_line: u32,
    pub(super) table: String,
    pub(super) chain: String,
    /// What the rule did on this path (`DNAT 10.64.0.5:8080`, `statistic
    /// taken p=0.5`, `not taken (3 statistic rule(s))`, ...).
    pub(super) action: String,
    /// The rule as written, its lines joined by newlines; empty when
    /// there is no rule text (a chain's end, the routing decision).
    pub(super) text: String,
}

/// A broken invariant of one family's rules.
#[derive(Debug, Serialize)]
pub(super) struct ViolationDetail {
    /// The invariant's id (`kpconform lint --list`).
    pub(super) invariant: &'static str,
    pub(super) family: &'static str,
    pub(super) table: String,
    pub(super) chain: Option<String>,
    pub(super) file: String,
    pub(super) line: u32,
    /// The offending line as written.
    pub(super) text: String,
    pub(super) message: String,
}

/// Every flow of every family of `e`, IPv4 first, in scenario order.
pub(super) fn flows(e: &Evaluation) -> Vec<FlowDetail> {
    e.families
        .iter()
        .flat_map(|f| {
            let reports = f.report.as_ref().map(|r| r.flows.as_slice()).unwrap_or(&[]);
            reports.iter().map(move |r| flow(f, r))
        })
        .collect()
}

/// Every broken invariant of every family of `e`.
pub(super) fn violations(e: &Evaluation) -> Vec<ViolationDetail> {
    e.families
        .iter()
        .flat_map(|f| {
            let list = f
                .report
                .as_ref()
                .map(|r| r.violations.as_slice())
                .unwrap_or(&[]);
            list.iter().map(move |v| violation(f, v))
        })
        .collect()
}

fn flow(f: &FamilyEvaluation, r: &FlowReport) -> FlowDetail {
    let source = f.output.as_ref();
    let passed = r.passed();
    FlowDetail {
        name: r.flow.clone(),
        family: f.family.as_str(),
        scenario_line: r.span.line,
        passed,
        packet: r.packet.to_string(),
        expected: Expected {
            endpoints: r.expect.endpoints.as_ref().map(|eps| {
                eps.iter()
                    .map(|(d, p)| {
                        let text = exact::show(p);
                        Probability {
                            destination: d.to_string(),
                            // `show` is exact or 12 significant digits:
                            // plenty for a double.
                            probability: text.parse().unwrap_or(f64::NAN),
                            text,
                        }
                    })
                    .collect()
            }),
            verdict: r.expect.verdict.map(|v| v.as_str()),
            masquerade: r.expect.masquerade,
            sticky: r.expect.sticky,
            tolerance: exact::show_decimal(&r.tolerance),
        },
        actual: r.distribution.as_ref().map(|d| {
            d.summary()
                .into_iter()
                .map(|((verdict, destination, masquerade), p)| Share {
                    verdict: verdict.as_str(),
                    destination: destination.to_string(),
                    masquerade,
                    probability: p.to_f64(),
                    text: format_probability(&p),
                })
                .collect()
        }),
        failures: r.failures.iter().map(ToString::to_string).collect(),
        paths: match (&r.distribution, passed) {
            (Some(d), false) => d.outcomes.iter().map(|o| path(o, source)).collect(),
            _ => Vec::new(),
        },
    }
}

fn path(o: &Outcome, source: Option<&SourceFile>) -> PathDetail {
    let rules = o
        .walk
        .items()
        .into_iter()
        .filter_map(|item| match item {
            // Control flow that neither acted nor matched a statistic
            // branch is in the compact walk already.
            WalkItem::Step(s) if matches!(s.action, Action::Jump(_) | Action::Goto(_)) => None,
            WalkItem::Step(s) => Some(rule_line(s, s.action.to_string(), source)),
            WalkItem::NotTaken { first, last, count } => {
                let mut r = rule_line(
                    first,
                    format!("not taken ({count} statistic rule(s))"),
                    source,
                );
                r.end_line = last.line.max(r.end_line);
                // The run's rules differ only in probability and target:
                // the first stands for them all.
                Some(r)
            }
        })
        .collect();
    PathDetail {
        verdict: o.verdict.as_str(),
        destination: o.destination.to_string(),
        masquerade: o.masquerade,
        probability: o.probability.to_f64(),
        text: format_probability(&o.probability),
        walk: o.path(),
        rules,
    }
}

fn rule_line(step: &Step, action: String, source: Option<&SourceFile>) -> RuleLine {
    let (end_line, text) = written(step.line, step.span, source);
    RuleLine {
        file: source.map(|s| s.name().to_string()).unwrap_or_default(),
        line: step.line,
        end_line,
        table: step.table.to_string(),
        chain: step.chain.to_string(),
        action,
        text,
    }
}

/// The last line of the rule starting at `line` whose whole text is
/// `span`, and that text (trimmed lines joined by newlines).
fn written(
    line: u32,
    span: kpconform_iptables::Span,
    source: Option<&SourceFile>,
) -> (u32, String) {
    let Some(src) = source.filter(|_| line > 0) else {
        return (line, String::new());
    };
    let first = line as usize;
    let last = if span.end > span.start {
        // The span ends after its last byte, which may be the newline.
        src.line_col(span.end as usize - 1).0.max(first)
    } else {
        first
    };
    let text: Vec<&str> = (first..=last).map(|l| src.line_text(l).trim()).collect();
    (u32::try_from(last).unwrap_or(line), text.join("\n"))
}

fn violation(f: &FamilyEvaluation, v: &Violation) -> ViolationDetail {
    let source = f.output.as_ref();
    let (_, text) = written(v.span.line, v.span, source);
    ViolationDetail {
        invariant: v.invariant,
        family: f.family.as_str(),
        table: v.table.to_string(),
        chain: v.chain.as_ref().map(ToString::to_string),
        file: source.map(|s| s.name().to_string()).unwrap_or_default(),
        line: v.span.line,
        text,
        message: v.message.clone(),
    }
}
