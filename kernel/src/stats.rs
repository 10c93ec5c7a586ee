//! The statistical test kernel mode judges counts with.
//!
//! Each connection of a flow is an independent trial (fresh source port,
//! affinity lists cleared), so the number of connections that reach a
//! given destination is binomial. A count is compared with a probability by
//! the exact two-sided binomial test (twice the smaller tail, at most 1):
//! no normal approximation, so it stays right for the small and large
//! probabilities kube-proxy's shares produce. Probability 0 and 1 need no
//! statistics: any other count is a certain failure.

/// The significance level of one judgement of a flow (the listed
/// endpoints; the cross-check with the tracer), split among its tests. A
/// run of the golden corpus makes about a thousand such judgements, so the
/// chance that any of them fails while the rules are right stays far below
/// 1 in 1000 (every run report prints the bound for what it actually did).
pub const ALPHA: f64 = 1e-7;

/// What comparing a count with a probability found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Test {
    /// The count is consistent with the probability.
    Consistent {
        /// The test's p-value (1 for the exact cases).
        p_value: f64,
        /// Whether a statistical test was needed (0 < p < 1).
        statistical: bool,
    },
    /// The count cannot come from the probability.
    Inconsistent {
        /// The p-value (0 for the exact cases).
        p_value: f64,
    },
}

impl Test {
    /// Whether the count is consistent.
    pub fn holds(self) -> bool {
        matches!(self, Test::Consistent { .. })
    }

    /// Whether it took a statistical test (and so adds to the run's risk
    /// of a false failure).
    pub fn statistical(self) -> bool {
        match self {
            Test::Consistent { statistical, .. } => statistical,
            Test::Inconsistent { p_value } => p_value > 0.0,
        }
    }
}

/// `ln(k!)` for `k` in `0..=n`.
fn ln_factorials(n: u32) -> Vec<f64> {
    let mut out = Vec::with_capacity(n as usize + 1);
    let mut acc = 0.0f64;
    out.push(0.0);
    for k in 1..=n {
        acc += f64::from(k).ln();
        out.push(acc);
    }
    out
}

/// Tests `count` successes out of `n` trials against probability `p`, at
/// [`ALPHA`].
pub fn binomial(count: u32, n: u32, p: f64) -> Test {
    binomial_at(count, n, p, ALPHA)
}

/// [`binomial`] at significance level `alpha` (one test of a group that
/// shares [`ALPHA`]).
pub fn binomial_at(count: u32, n: u32, p: f64, alpha: f64) -> Test {
    let p = p.clamp(0.0, 1.0);
    if p == 0.0 || p == 1.0 || n == 0 {
        let expected = if p == 0.0 { 0 } else { n };
        return if count == expected {
            Test::Consistent {
                p_value: 1.0,
                statistical: false,
            }
        } else {
            Test::Inconsistent { p_value: 0.0 }
        };
    }
    let p_value = two_sided(count.min(n), n, p);
    if p_value < alpha {
        Test::Inconsistent { p_value }
    } else {
        Test::Consistent {
            p_value,
            statistical: true,
        }
    }
}

/// Twice the smaller tail probability of `k` under Binomial(`n`, `p`).
fn two_sided(k: u32, n: u32, p: f64) -> f64 {
    let lf = ln_factorials(n);
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let pmf = |i: u32| -> f64 {
        let (i_, n_) = (i as usize, n as usize);
        (lf[n_] - lf[i_] - lf[n_ - i_] + f64::from(i) * lp + f64::from(n - i) * lq).exp()
    };
    let lower: f64 = (0..=k).map(pmf).sum();
    let upper: f64 = (k..=n).map(pmf).sum();
    (2.0 * lower.min(upper)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_probabilities_need_exact_counts() {
        assert!(binomial(0, 100, 0.0).holds());
        assert!(!binomial(1, 100, 0.0).holds());
        assert!(binomial(100, 100, 1.0).holds());
        assert!(!binomial(99, 100, 1.0).holds());
        assert!(!binomial(1, 100, 0.0).statistical());
    }

    #[test]
    fn a_fair_share_passes_and_a_skewed_one_fails() {
        // 1000 connections over three endpoints at 1/3 each.
        assert!(binomial(333, 1000, 1.0 / 3.0).holds());
        assert!(binomial(300, 1000, 1.0 / 3.0).holds());
        // "Equal probabilities" (1/3 on every rule) sends 4/9 to the last one.
        assert!(!binomial(444, 1000, 1.0 / 3.0).holds());
        assert!(!binomial(222, 1000, 1.0 / 3.0).holds());
    }

    #[test]
    fn the_tails_are_exact() {
        // P(X = 0) for Binomial(10, 0.5) is 1/1024; two-sided doubles it.
        let p = two_sided(0, 10, 0.5);
        assert!((p - 2.0 / 1024.0).abs() < 1e-12, "{p}");
        // The middle is never significant.
        assert_eq!(two_sided(5, 10, 0.5), 1.0);
    }
}
