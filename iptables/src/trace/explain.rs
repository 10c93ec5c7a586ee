//! The long form of an outcome's walk: one line per step, each labelled with
//! its table, chain and source line(s), grouped under the hook it ran in.
//! `kpconform trace` and the failure explanations of `kpconform check` both
//! print it.

use crate::source::SourceFile;

use super::outcome::{format_probability, Action, Outcome, Step, WalkItem};

/// How the walk lists `-m statistic` rules a path fell through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotTaken {
    /// Each with its rule text.
    Each,
    /// One line per run of them in a chain.
    Collapse,
}

impl Outcome {
    /// The walk, step by step: a `TABLE HOOK:` header whenever the hook
    /// changes (`routing:` for the routing decision), then one indented line
    /// per step, e.g.
    ///
    /// ```text
    /// nat PREROUTING:
    ///   nat KUBE-SERVICES line 67: -A KUBE-SERVICES ... -j KUBE-NODEPORTS
    ///   nat KUBE-EXT-67NZLRHBNDSAWJRO (end, return)
    /// ```
    ///
    /// With the rules' `source`, a rule is shown as written; a command
    /// continued over several lines with `\` is shown whole, its later
    /// lines on lines of their own, aligned under the first. Without it, the
    /// step's action is shown instead. A taken statistic branch is noted on
    /// the rule's line, and so is each statistic rule the path fell through
    /// (`kpconform trace` lists them all).
    pub fn explain(&self, source: Option<&SourceFile>) -> Vec<String> {
        self.explain_with(source, NotTaken::Each)
    }

    /// Like [`Outcome::explain`], but each run of statistic rules the path
    /// fell through in one chain is one line, `nat KUBE-SVC-X lines 70-74:
    /// not taken (5 statistic rule(s))`: in failure explanations, big
    /// services would otherwise bury the rules that matter.
    pub fn explain_brief(&self, source: Option<&SourceFile>) -> Vec<String> {
        self.explain_with(source, NotTaken::Collapse)
    }

    fn explain_with(&self, source: Option<&SourceFile>, not_taken: NotTaken) -> Vec<String> {
        let mut out = Vec::new();
        let mut hook = None;
        // Collapsed, a run of statistic rules not taken is one item, so a
        // path through thousands of them costs a few items, not thousands.
        let items = match not_taken {
            NotTaken::Each => self.walk.iter().map(WalkItem::Step).collect(),
            NotTaken::Collapse => self.walk.items(),
        };
        let mut items = items.into_iter().peekable();
        while let Some(item) = items.next() {
            let step = match item {
                WalkItem::Step(step) => step,
                WalkItem::NotTaken { first, .. } => first,
            };
            let here = match step.action {
                Action::Martian(_) => None,
                _ => Some((step.table, step.hook)),
            };
            if hook != Some(here) {
                hook = Some(here);
                out.push(match here {
                    Some((table, hook)) => format!("{table} {}:", hook.as_str()),
                    None => "routing:".to_string(),
                });
            }
            if let WalkItem::NotTaken { first, last, count } = item {
                let lines = if count == 1 {
                    format!("line {}", first.line)
                } else {
                    format!("lines {}-{}", first.line, last.line)
                };
                out.push(format!(
                    "  {} {} {lines}: not taken ({count} statistic rule(s))",
                    first.table, first.chain
                ));
                continue;
            }
            match &step.action {
                Action::Statistic {
                    taken: false,
                    probability,
                } => {
                    let note = format!(
                        "  [statistic not taken, p={}]",
                        format_probability(probability)
                    );
                    rule_lines(&mut out, step, source, &note);
                }
                // A taken statistic rule is shown once, on the step its
                // target made.
                Action::Statistic {
                    taken: true,
                    probability,
                } => {
                    let note =
                        format!("  [statistic taken, p={}]", format_probability(probability));
                    let next = items.next_if(|n| {
                        matches!(n, WalkItem::Step(n) if n.chain == step.chain && n.rule == step.rule)
                    });
                    match next {
                        Some(WalkItem::Step(next)) => rule_lines(&mut out, next, source, &note),
                        _ => rule_lines(&mut out, step, source, &note),
                    }
                }
                Action::FallOff => {
                    out.push(format!("  {} {} {}", step.table, step.chain, step.action));
                }
                Action::Martian(_) => out.push(format!("  {}", step.action)),
                Action::Policy(_) => {
                    let note = format!("  [{}]", step.action);
                    rule_lines(&mut out, step, source, &note);
                }
                _ => rule_lines(&mut out, step, source, ""),
            }
        }
        out
    }
}

/// `  nat KUBE-SVC-X line 42: -A KUBE-SVC-X ...NOTE`, and the further lines
/// of a continued command.
fn rule_lines(out: &mut Vec<String>, step: &Step, source: Option<&SourceFile>, note: &str) {
    let warn = if matches!(step.action, Action::Unknown(_)) {
        "  WARNING: target not modelled"
    } else {
        ""
    };
    let first = step.line as usize;
    let text: Vec<&str> = match source {
        Some(src) if first > 0 => {
            let last = if step.span.end > step.span.start {
                // The span ends after its last byte (which may be the
                // newline); the line of that byte is the last line.
                src.line_col(step.span.end as usize - 1).0.max(first)
            } else {
                first
            };
            (first..=last).map(|l| src.line_text(l).trim()).collect()
        }
        _ => Vec::new(),
    };
    let label = format!("{} {}", step.table, step.chain);
    match text.as_slice() {
        [] | [""] => out.push(format!(
            "  {label} line {first}: {}{note}{warn}",
            step.action
        )),
        [only] => out.push(format!("  {label} line {first}: {only}{note}{warn}")),
        [head, more @ ..] => {
            let prefix = format!("  {label} lines {first}-{}: ", first + more.len());
            out.push(format!("{prefix}{head}"));
            let pad = " ".repeat(prefix.chars().count());
            for (i, line) in more.iter().enumerate() {
                let end = if i + 1 == more.len() {
                    format!("{note}{warn}")
                } else {
                    String::new()
                };
                out.push(format!("{pad}{line}{end}"));
            }
        }
    }
}
