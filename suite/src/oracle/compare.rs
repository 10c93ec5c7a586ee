//! Comparing a prediction with a traced distribution or with a flow's
//! expectations, and showing the difference.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use bigdecimal::BigDecimal;

use super::Prediction;
use crate::exact::{self, BigRational};
use crate::scenario::Expect;
use kpconform_iptables::{format_probability, Distribution, Mass, Packet, Verdict};

type Key = (Verdict, SocketAddr, bool);

/// How a prediction and something else differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The packet.
    pub packet: Packet,
    /// What the prediction was compared with: `trace` or `flow expectation`.
    pub against: &'static str,
    /// The tolerance used.
    pub tolerance: BigDecimal,
    /// Each difference, one line each.
    pub problems: Vec<String>,
    /// Every outcome with the oracle's (exact) and the traced probability
    /// (only when compared with a trace).
    pub table: Vec<(Key, BigRational, Mass)>,
    /// The oracle's reasoning.
    pub reasons: Vec<String>,
    /// The traced paths, when compared with a trace.
    pub paths: Option<String>,
}

fn show_key((verdict, dst, masq): &Key) -> String {
    format!("{verdict} {dst}{}", if *masq { " masquerade" } else { "" })
}

impl Prediction {
    /// Compares with a traced distribution: every (verdict, destination,
    /// masquerade) must carry the same mass within `tolerance`.
    pub fn compare(
        &self,
        traced: &Distribution,
        tolerance: &BigDecimal,
    ) -> Result<(), Box<Mismatch>> {
        self.compare_summary(traced.summary(), traced, tolerance)
    }

    /// [`compare`](Self::compare) without judging masquerading: the masses
    /// per verdict and destination must agree, masqueraded or not.
    pub fn compare_ignoring_masquerade(
        &self,
        traced: &Distribution,
        tolerance: &BigDecimal,
    ) -> Result<(), Box<Mismatch>> {
        let mut actual: BTreeMap<Key, Mass> = BTreeMap::new();
        for ((verdict, dst, _), p) in traced.summary() {
            *actual.entry((verdict, dst, false)).or_default() += &p;
        }
        self.without_masquerade()
            .compare_summary(actual, traced, tolerance)
    }

    fn compare_summary(
        &self,
        actual: BTreeMap<Key, Mass>,
        traced: &Distribution,
        tolerance: &BigDecimal,
    ) -> Result<(), Box<Mismatch>> {
        let (zero, none) = (Mass::zero(), exact::integer(0));
        let keys: BTreeSet<&Key> = self.outcomes.keys().chain(actual.keys()).collect();
        let mut table = Vec::new();
        let mut problems = Vec::new();
        for key in keys {
            let want = self.outcomes.get(key).unwrap_or(&none);
            let got = actual.get(key).unwrap_or(&zero);
            if !exact::decimal_within(got, want, tolerance) {
                problems.push(format!(
                    "{}: oracle {}, traced {}",
                    show_key(key),
                    exact::show(want),
                    format_probability(got)
                ));
            }
            table.push((*key, want.clone(), got.clone()));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Box::new(Mismatch {
            packet: self.packet,
            against: "trace",
            tolerance: tolerance.clone(),
            problems,
            table,
            reasons: self.reasons.clone(),
            paths: Some(traced.to_string()),
        }))
    }

    /// Checks a flow's expectations against the prediction, with the
    /// meaning `kpconform check` gives them (contract §3). `sticky: true`
    /// holds when affinity applies or at most one destination is reachable;
    /// `sticky: false` when affinity does not apply or fewer than two are.
    pub fn check_expect(
        &self,
        expect: &Expect,
        tolerance: &BigDecimal,
    ) -> Result<(), Box<Mismatch>> {
        let mut problems = Vec::new();
        let accepted = self.accepted();
        let zero = exact::integer(0);
        let tol = exact::from_decimal(tolerance);
        if let Some(endpoints) = &expect.endpoints {
            for (dst, want) in endpoints {
                let got = accepted.get(dst).unwrap_or(&zero);
                if !exact::within(want, got, &tol) {
                    problems.push(format!(
                        "endpoint {dst}: expected {}, oracle {}",
                        exact::show(want),
                        exact::show(got)
                    ));
                }
            }
            for (dst, got) in &accepted {
                if !endpoints.contains_key(dst) && *got != zero {
                    problems.push(format!(
                        "oracle accepts {} to unlisted {dst}",
                        exact::show(got)
                    ));
                }
            }
            let want: BigRational = endpoints.values().sum();
            let got: BigRational = accepted.values().sum();
            if !exact::within(&want, &got, &tol) {
                problems.push(format!(
                    "listed endpoints sum to {}, oracle accepts {}",
                    exact::show(&want),
                    exact::show(&got)
                ));
            }
        }
        if let Some(verdict) = expect.verdict {
            let mut elsewhere: BTreeMap<Verdict, BigRational> = BTreeMap::new();
            for ((v, _, _), p) in self.outcomes.iter().filter(|((v, _, _), _)| *v != verdict) {
                *elsewhere.entry(*v).or_insert_with(|| exact::integer(0)) += p;
            }
            for (v, p) in elsewhere {
                problems.push(format!(
                    "expected verdict {verdict}, oracle sends {} to {v}",
                    exact::show(&p)
                ));
            }
        }
        if let Some(masq) = expect.masquerade {
            let accepted_keys: Vec<&Key> = self
                .outcomes
                .keys()
                .filter(|(v, _, _)| *v == Verdict::Accept)
                .collect();
            if accepted_keys.is_empty() {
                problems.push(format!(
                    "expected masquerade {masq}, but the oracle accepts nothing"
                ));
            }
            for key in accepted_keys.into_iter().filter(|(_, _, m)| *m != masq) {
                problems.push(format!(
                    "expected masquerade {masq}, oracle: {}",
                    show_key(key)
                ));
            }
        }
        if let Some(sticky) = expect.sticky {
            let observable = accepted.len() >= 2;
            if sticky && !self.sticky && observable {
                problems.push("expected sticky, but no session affinity applies".into());
            }
            if !sticky && self.sticky && observable {
                problems.push("expected not sticky, but session affinity applies".into());
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Box::new(Mismatch {
            packet: self.packet,
            against: "flow expectation",
            tolerance: tolerance.clone(),
            problems,
            table: Vec::new(),
            reasons: self.reasons.clone(),
            paths: None,
        }))
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "oracle and {} disagree for {} (tolerance {}):",
            self.against,
            self.packet,
            exact::show_decimal(&self.tolerance)
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        if !self.table.is_empty() {
            let rows: Vec<(String, String, String)> = self
                .table
                .iter()
                .map(|(k, a, b)| {
                    let mark = if exact::decimal_within(b, a, &self.tolerance) {
                        ""
                    } else {
                        "  <"
                    };
                    (
                        show_key(k),
                        exact::show(a),
                        format!("{}{mark}", format_probability(b)),
                    )
                })
                .collect();
            let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
            let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
            writeln!(f, "  {:w0$}  {:>w1$}  traced", "outcome", "oracle")?;
            for (k, a, b) in rows {
                writeln!(f, "  {k:w0$}  {a:>w1$}  {b}")?;
            }
        }
        writeln!(f, "oracle's reasoning:")?;
        for r in &self.reasons {
            writeln!(f, "  {r}")?;
        }
        if let Some(paths) = &self.paths {
            writeln!(f, "traced paths:")?;
            for line in paths.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}
