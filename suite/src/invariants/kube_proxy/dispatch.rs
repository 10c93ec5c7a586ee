//! The per-service chains: KUBE-SVC-*/KUBE-SVL-* (masquerade, affinity,
//! random endpoint dispatch) and KUBE-SEP-* (hairpin mark, DNAT).
//!
//! Probabilities are the kernel's (`k / 2^31`), exact: rule i of a chain is
//! reached by what rules 0..i left, so it takes
//! `p_i * prod_{j<i} (1 - p_j)` of the traffic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use kpconform_iptables::{Mass, KERNEL_SCALE};

use super::{Context, Report, KUBE_MARK_MASQ};
use kpconform_iptables::model::{Chain, FastHash, Match, Rule, Statistic, TableName, Target};

const SERVICE_CHAINS: &[&str] = &["KUBE-SVC-", "KUBE-SVL-"];
const SEP_PREFIX: &str = "KUBE-SEP-";

/// How far an endpoint's share may be from 1/n: kernel quantization moves
/// it by at most ~2.7e-10 even with thousands of endpoints.
fn tolerance() -> Mass {
    Mass::new(1u32.into(), 9, 9)
}

/// The endpoint chain a rule jumps or goes to.
fn sep_target(rule: &Rule) -> Option<&str> {
    rule.jump_target()
        .map(|c| c.as_str())
        .filter(|name| name.starts_with(SEP_PREFIX))
}

fn has_recent(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| matches!(m, Match::Recent(_)))
}

/// A dispatch rule: a jump to an endpoint that is not a session-affinity check.
fn dispatch_target(rule: &Rule) -> Option<&str> {
    sep_target(rule).filter(|_| !has_recent(rule))
}

/// Every KUBE-SVC/SVL chain of every nat block.
fn service_chains<'a>(cx: &'a Context<'_>) -> impl Iterator<Item = &'a Chain> + 'a {
    cx.blocks(TableName::Nat)
        .flat_map(|t| t.chains_with_prefix(SERVICE_CHAINS))
}

/// `masquerade-before-dispatch`: a packet sent to an endpoint never comes
/// back to be marked, so a later KUBE-MARK-MASQ jump misses the traffic it
/// was written for.
pub(in crate::invariants) fn masquerade_before_dispatch(cx: &Context<'_>, r: &mut Report<'_>) {
    for chain in service_chains(cx) {
        let Some(first) = chain
            .rules
            .iter()
            .position(|rule| sep_target(rule).is_some())
        else {
            continue;
        };
        for rule in &chain.rules[first + 1..] {
            if super::enters(rule) == Some(KUBE_MARK_MASQ) {
                r.in_chain(
                    TableName::Nat,
                    chain,
                    rule.span,
                    format!(
                        "{}: {KUBE_MARK_MASQ} jump comes after the endpoint jump at line {}; \
                         expected masquerade rules before endpoint dispatch",
                        chain.name, chain.rules[first].span.line
                    ),
                );
            }
        }
    }
}

/// `affinity-before-dispatch`: a returning client must meet its `--rcheck`
/// rule before the random rules pick a new endpoint.
pub(in crate::invariants) fn affinity_before_dispatch(cx: &Context<'_>, r: &mut Report<'_>) {
    for chain in service_chains(cx) {
        let Some(first) = chain
            .rules
            .iter()
            .position(|rule| dispatch_target(rule).is_some())
        else {
            continue;
        };
        for rule in &chain.rules[first + 1..] {
            let rcheck = rule.matches.iter().any(|m| {
                matches!(m, Match::Recent(rc) if rc.action == kpconform_iptables::model::RecentAction::Rcheck)
            });
            if rcheck {
                r.in_chain(
                    TableName::Nat,
                    chain,
                    rule.span,
                    format!(
                        "{}: session-affinity --rcheck rule comes after the dispatch rule at line {}; \
                         expected every --rcheck rule before the random dispatch",
                        chain.name, chain.rules[first].span.line
                    ),
                );
            }
        }
    }
}

/// `dispatch-unique`
pub(in crate::invariants) fn dispatch_unique(cx: &Context<'_>, r: &mut Report<'_>) {
    for chain in service_chains(cx) {
        // Only looked up, never iterated: hash order cannot reach a report.
        let mut first: HashMap<&str, &Rule, FastHash> = HashMap::default();
        for rule in &chain.rules {
            let Some(sep) = dispatch_target(rule) else {
                continue;
            };
            if let Some(earlier) = first.get(sep) {
                r.in_chain(
                    TableName::Nat,
                    chain,
                    rule.span,
                    format!(
                        "{}: second dispatch rule to {sep} (first at line {}); expected one rule per endpoint",
                        chain.name, earlier.span.line
                    ),
                );
            } else {
                first.insert(sep, rule);
            }
        }
    }
}

/// The probability that a rule's statistic matches pass, or the reason it
/// has none (only `--mode random` has a probability independent of history).
fn rule_probability(rule: &Rule) -> Result<Mass, &'static str> {
    let mut p = Mass::one();
    for m in &rule.matches {
        if let Match::Statistic(neg) = m {
            match &neg.value {
                Statistic::Random(q) => {
                    let k = q.kernel();
                    // k / 2^31 is within 0..=1, so 1 - k is too.
                    p *= &if neg.negated {
                        k.complement().unwrap_or_default()
                    } else {
                        k
                    };
                }
                Statistic::Nth { .. } => return Err("--mode nth"),
            }
        }
    }
    Ok(p)
}

/// One endpoint's share of a chain's traffic.
struct Share<'a> {
    sep: &'a str,
    /// Its first dispatch rule, where violations point.
    rule: &'a Rule,
    /// Its place among the chain's endpoints, by first dispatch rule.
    order: usize,
    share: Mass,
}

/// Hands each endpoint's exact share to `each` and returns what no rule
/// took, or names a rule whose probability is not defined (and then what
/// `each` was given does not count).
///
/// The share of endpoint `i` of `n` is a product of `i` kernel
/// probabilities (`31·i` bits), so all of a big service's shares at once
/// would be quadratic in memory; an endpoint with one dispatch rule (all of
/// kube-proxy's) is handed over as soon as it is known, so only the shares
/// of endpoints with several rules are kept until the end. `each` sees
/// those last; [`Share::order`] gives the order of first dispatch rules.
fn shares<'a>(
    chain: &'a Chain,
    mut each: impl FnMut(Share<'a>),
) -> Result<Mass, (&'a Rule, &'static str)> {
    let mut rules_of: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for rule in &chain.rules {
        if let Some(sep) = dispatch_target(rule) {
            let next = rules_of.len();
            rules_of.entry(sep).or_insert((next, 0)).1 += 1;
        }
    }
    let mut pending: BTreeMap<&str, Share<'a>> = BTreeMap::new();
    let mut remaining = Mass::one();
    for rule in &chain.rules {
        let Some(sep) = dispatch_target(rule) else {
            continue;
        };
        let p = rule_probability(rule).map_err(|why| (rule, why))?;
        let taken = &remaining * &p;
        // remaining · (1 - p): what the rule leaves, exactly, without a
        // subtraction of two long masses.
        remaining *= &p.complement().unwrap_or_default();
        let (order, count) = rules_of.get(sep).copied().unwrap_or((0, 1));
        if count == 1 {
            each(Share {
                sep,
                rule,
                order,
                share: taken,
            });
            continue;
        }
        match pending.get_mut(sep) {
            Some(s) => s.share += &taken,
            None => {
                pending.insert(
                    sep,
                    Share {
                        sep,
                        rule,
                        order,
                        share: taken,
                    },
                );
            }
        }
    }
    pending.into_values().for_each(each);
    Ok(remaining)
}

/// A share for a message: 10 decimals, trailing zeros dropped.
fn show(x: &Mass) -> String {
    x.to_decimal_places(10)
}

/// Whether every endpoint of `chain` (`n` of them, the endpoints its
/// dispatch rules name) surely gets within the
/// tolerance of 1/n, judged in floating point with room to spare; false
/// when that cannot be told so (then the exact shares judge, and word any
/// report). Every kube-proxy chain passes here, and exact shares of `31·i`
/// bits were most of `dispatch-even`'s time.
///
/// Sound: `k / 2^31` and `1 - k / 2^31` are exact in an `f64`, so the
/// only errors are the roundings of the products and sums, at most about
/// `(r + 2)·2^-53` relative for a chain of `r` rules: 1.2e-10 for the
/// million rules allowed here, under the margin of half the tolerance
/// (5e-10·n) that a share judged here must keep.
///
/// `n` is counted here, from the shares kept per endpoint, rather than
/// by the caller: a set of the names per chain, built for every chain,
/// was a good part of `dispatch-even`'s time.
fn clearly_even(chain: &Chain) -> bool {
    const SCALE: f64 = KERNEL_SCALE as f64;
    if chain.rules.len() > 1_000_000 {
        return false;
    }
    let mut shares: HashMap<&str, f64, FastHash> = HashMap::default();
    let mut remaining = 1.0f64;
    for rule in &chain.rules {
        let Some(sep) = dispatch_target(rule) else {
            continue;
        };
        let mut p = 1.0f64;
        for m in &rule.matches {
            match m {
                Match::Statistic(neg) => match &neg.value {
                    Statistic::Random(q) => {
                        let k = f64::from(q.kernel_units()) / SCALE;
                        p *= if neg.negated { 1.0 - k } else { k };
                    }
                    Statistic::Nth { .. } => return false,
                },
                _ => continue,
            }
        }
        *shares.entry(sep).or_default() += remaining * p;
        remaining *= 1.0 - p;
    }
    let n = shares.len();
    if n == 0 {
        return false;
    }
    let n_f = n as f64;
    let margin = 0.5e-9 * n_f;
    shares
        .values()
        .all(|share| (share * n_f - 1.0).abs() <= margin)
}

/// `dispatch-even`
pub(in crate::invariants) fn dispatch_even(cx: &Context<'_>, r: &mut Report<'_>) {
    let tolerance = tolerance();
    for chain in service_chains(cx) {
        if clearly_even(chain) {
            continue;
        }
        let n = chain
            .rules
            .iter()
            .filter_map(dispatch_target)
            .collect::<BTreeSet<_>>()
            .len();
        let n_dec = Mass::from(n as u64);
        // |share - 1/n| <= tol  <=>  |share * n - 1| <= tol * n, without dividing.
        let bound = &tolerance * &n_dec;
        let mut uneven: Vec<(usize, &Rule, String)> = Vec::new();
        let judged = shares(chain, |s| {
            if (&s.share * &n_dec).abs_diff(&Mass::one()) > bound {
                uneven.push((
                    s.order,
                    s.rule,
                    format!(
                        "{}: endpoint {} gets {} of the traffic, expected 1/{n} ({n} endpoints)",
                        chain.name,
                        s.sep,
                        show(&s.share)
                    ),
                ));
            }
        });
        if let Err((rule, why)) = judged {
            r.in_chain(
                TableName::Nat,
                chain,
                rule.span,
                format!(
                    "{}: dispatch rule uses -m statistic {why}; expected --mode random --probability",
                    chain.name
                ),
            );
            continue;
        }
        uneven.sort_by_key(|(order, _, _)| *order);
        for (_, rule, message) in uneven {
            r.in_chain(TableName::Nat, chain, rule.span, message);
        }
    }
}

/// What makes a rule match only some packets, beyond its comment.
fn conditions(rule: &Rule) -> Vec<&'static str> {
    let b = &rule.basic;
    let mut out: Vec<&'static str> = [
        (b.source.is_some(), "-s"),
        (b.destination.is_some(), "-d"),
        (b.protocol.is_some(), "-p"),
        (b.in_interface.is_some(), "-i"),
        (b.out_interface.is_some(), "-o"),
        (b.fragment.is_some(), "-f"),
    ]
    .into_iter()
    .filter_map(|(present, flag)| present.then_some(flag))
    .collect();
    for m in &rule.matches {
        let what = match m {
            // Neither narrows what matches: nfacct only counts.
            Match::Comment(_) | Match::Nfacct { .. } => continue,
            Match::Statistic(_) => "-m statistic",
            Match::Ports { .. } => "a port match",
            Match::Multiport { .. } => "-m multiport",
            Match::AddrType { .. } => "-m addrtype",
            Match::Conntrack { .. } => "a conntrack match",
            Match::Mark(_) => "-m mark",
            Match::Recent(_) => "-m recent",
            Match::Limit { .. } => "-m limit",
            Match::Unknown { .. } => "an unknown match",
        };
        out.push(what);
    }
    out
}

/// `dispatch-complete`: kube-proxy's last dispatch rule has no condition, so
/// no packet falls through the chain without an endpoint.
pub(in crate::invariants) fn dispatch_complete(cx: &Context<'_>, r: &mut Report<'_>) {
    for chain in service_chains(cx) {
        let Some(last) = chain
            .rules
            .iter()
            .rev()
            .find(|rule| dispatch_target(rule).is_some())
        else {
            r.in_chain(
                TableName::Nat,
                chain,
                chain.span,
                format!(
                    "{}: no endpoint dispatch rule; expected at least one `-j KUBE-SEP-...` \
                     (kube-proxy writes the chain only for services with endpoints)",
                    chain.name
                ),
            );
            continue;
        };
        let conds = conditions(last);
        if conds.is_empty() {
            continue;
        }
        let sep = dispatch_target(last).unwrap_or_default();
        let left = match shares(chain, |_| {}) {
            Ok(remaining) if !remaining.is_zero() => {
                format!("; {} of the traffic reaches no endpoint", show(&remaining))
            }
            _ => String::new(),
        };
        r.in_chain(
            TableName::Nat,
            chain,
            last.span,
            format!(
                "{}: the last dispatch rule (to {sep}) is conditional ({}){left}; \
                 expected an unconditional last rule",
                chain.name,
                conds.join(", ")
            ),
        );
    }
}

/// `sep-hairpin`: an endpoint that connects to its own service is DNATed
/// back to itself; without masquerade its reply would skip conntrack's
/// reverse NAT. kube-proxy marks such traffic first (`-s EP/32 -j
/// KUBE-MARK-MASQ`, `-s EP/128` for IPv6), then DNATs.
pub(in crate::invariants) fn sep_hairpin(cx: &Context<'_>, r: &mut Report<'_>) {
    for chain in cx
        .blocks(TableName::Nat)
        .flat_map(|t| t.chains_with_prefix(&[SEP_PREFIX]))
    {
        let name = &chain.name;
        let dnat = chain
            .rules
            .iter()
            .enumerate()
            .find_map(|(i, rule)| match &rule.target {
                Some(Target::Dnat(range)) => Some((i, rule, range.first)),
                _ => None,
            });
        let Some((di, dnat, ep)) = dnat else {
            r.in_chain(
                TableName::Nat,
                chain,
                chain.span,
                format!(
                    "{name}: no DNAT rule; expected `-s EP/32 (EP/128) -j {KUBE_MARK_MASQ}` then \
                     `-j DNAT --to-destination EP:PORT`"
                ),
            );
            continue;
        };
        // (index, rule, marked source) of every `-s X/32 -j KUBE-MARK-MASQ`
        // (`-s X/128` for IPv6: one host either way).
        let hairpins: Vec<(usize, &Rule, IpAddr)> = chain
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| super::enters(rule) == Some(KUBE_MARK_MASQ))
            .filter_map(|(i, rule)| match &rule.basic.source {
                Some(s) if !s.negated && s.value.prefix_len() == s.value.max_prefix_len() => {
                    Some((i, rule, s.value.addr()))
                }
                _ => None,
            })
            .collect();
        if hairpins.iter().any(|&(i, _, src)| i < di && src == ep) {
            continue;
        }
        let (span, problem) =
            if let Some(&(_, rule, _)) = hairpins.iter().find(|&&(_, _, src)| src == ep) {
                (
                    rule.span,
                    format!(
                        "hairpin rule comes after the DNAT at line {}",
                        dnat.span.line
                    ),
                )
            } else if let Some(&(_, rule, src)) = hairpins.first() {
                (
                    rule.span,
                    format!(
                        "hairpin rule marks source {src}/{}, but the DNAT at line {} goes to {ep}",
                        host_len(src),
                        dnat.span.line
                    ),
                )
            } else {
                (dnat.span, "no hairpin rule".to_string())
            };
        r.in_chain(
            TableName::Nat,
            chain,
            span,
            format!(
                "{name}: {problem}; expected `-s {ep}/{} -j {KUBE_MARK_MASQ}` before the DNAT to {ep}",
                host_len(ep)
            ),
        );
    }
}

/// The prefix length of one host of `ip`'s family: 32 or 128.
fn host_len(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::test_util::{edit, kube_ok, line_of, only_line, parsed, run};
    use proptest::prelude::*;

    /// A service chain of `n` endpoints with kube-proxy's probabilities
    /// (1/(n-i), 10 decimals), each moved by `nudge[i]` units of 1e-10.
    fn service(n: usize, nudge: &[i64]) -> String {
        let mut text = String::from("*nat\n:KUBE-SVC-X - [0:0]\n");
        for i in 0..n {
            text.push_str("-A KUBE-SVC-X ");
            if i + 1 < n {
                let p = (1e10 / (n - i) as f64).round() as i64 + nudge.get(i).copied().unwrap_or(0);
                let p = p.clamp(0, 10_000_000_000);
                text.push_str(&format!(
                    "-m statistic --mode random --probability {}.{:010} ",
                    p / 10_000_000_000,
                    p % 10_000_000_000
                ));
            }
            text.push_str(&format!("-j KUBE-SEP-{i}\n"));
        }
        text.push_str("COMMIT\n");
        text
    }

    #[test]
    fn kube_proxy_chains_are_clearly_even() {
        for n in [1, 2, 3, 7, 100, 1000] {
            let rules = parsed(&service(n, &[]));
            assert!(super::clearly_even(&rules.tables[0].chains[0]), "{n}");
        }
    }

    proptest! {
        /// The floating-point judgement never passes a chain the exact
        /// one fails: it may only say "even" when the shares are.
        #[test]
        fn clearly_even_only_passes_what_is_even(
            n in 1usize..30,
            nudge in prop::collection::vec(-3000i64..3000, 30),
            scale in 0u32..3,
        ) {
            let nudge: Vec<i64> = nudge.iter().map(|d| d * 10i64.pow(scale) / 100).collect();
            let text = service(n, &nudge);
            let rules = parsed(&text);
            if super::clearly_even(&rules.tables[0].chains[0]) {
                prop_assert!(run("dispatch-even", &text).is_empty(), "{text}");
            }
        }
    }

    #[test]
    fn masquerade_before_dispatch() {
        assert!(run("masquerade-before-dispatch", kube_ok()).is_empty());
        let late = edit(kube_ok(), "-A KUBE-SVL-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -j KUBE-SEP-B\n", "-A KUBE-SVL-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -j KUBE-SEP-B\n-A KUBE-SVL-WEB -j KUBE-MARK-MASQ\n");
        let v = run("masquerade-before-dispatch", &late);
        assert_eq!(
            only_line(&v),
            line_of(&late, "-A KUBE-SVL-WEB -j KUBE-MARK-MASQ")
        );
        assert!(v[0].message.starts_with(
            "KUBE-SVL-WEB: KUBE-MARK-MASQ jump comes after the endpoint jump at line"
        ));
    }

    #[test]
    fn affinity_before_dispatch() {
        assert!(run("affinity-before-dispatch", kube_ok()).is_empty());
        let rcheck_c = "-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.2.7:8080\" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-C --mask 255.255.255.255 --rsource -j KUBE-SEP-C\n";
        let late = edit(
            &edit(kube_ok(), rcheck_c, ""),
            "-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.2.7:8080\" -j KUBE-SEP-C\n",
            &format!("-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.2.7:8080\" -j KUBE-SEP-C\n{rcheck_c}"),
        );
        let v = run("affinity-before-dispatch", &late);
        assert_eq!(
            only_line(&v),
            line_of(
                &late,
                "--name KUBE-SEP-C --mask 255.255.255.255 --rsource -j KUBE-SEP-C"
            )
        );
    }

    #[test]
    fn dispatch_unique() {
        assert!(run("dispatch-unique", kube_ok()).is_empty());
        let twice = edit(kube_ok(), "--comment \"shop/web:http -> 10.64.0.6:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B", "--comment \"shop/web:http -> 10.64.0.6:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A");
        let v = run("dispatch-unique", &twice);
        assert_eq!(
            only_line(&v),
            line_of(&twice, "10.64.0.6:8080\" -m statistic")
        );
        assert!(v[0]
            .message
            .contains("second dispatch rule to KUBE-SEP-A (first at line"));
    }

    #[test]
    fn dispatch_even() {
        assert!(run("dispatch-even", kube_ok()).is_empty());
        // Every rule given 1/3: A gets 1/3, B 2/9, C the remaining 4/9.
        let flat = edit(
            kube_ok(),
            "--probability 0.50000000000 -j KUBE-SEP-B",
            "--probability 0.33333333349 -j KUBE-SEP-B",
        );
        let v = run("dispatch-even", &flat);
        let lines: Vec<u32> = v.iter().map(|v| v.span.line).collect();
        assert_eq!(
            lines,
            [
                line_of(&flat, "10.64.0.6:8080\" -m statistic"),
                line_of(&flat, "10.64.2.7:8080\" -j KUBE-SEP-C")
            ]
        );
        assert_eq!(v[0].message, "KUBE-SVC-WEB: endpoint KUBE-SEP-B gets 0.2222222223 of the traffic, expected 1/3 (3 endpoints)");
        assert!(
            v[1].message.contains("KUBE-SEP-C gets 0.4444444442 of"),
            "{}",
            v[1].message
        );
    }

    #[test]
    fn dispatch_even_uses_kernel_quantization() {
        // 7 decimals are 3.3e-8 off 1/3, which moves every share out of the
        // tolerance; 10 decimals quantize to the same k as the recording.
        let coarse = edit(kube_ok(), "0.33333333349", "0.3333333");
        let v = run("dispatch-even", &coarse);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(
            v[0].message.contains("KUBE-SEP-A gets 0.3333333"),
            "{}",
            v[0].message
        );
        let fine = edit(kube_ok(), "0.33333333349", "0.3333333333");
        assert!(run("dispatch-even", &fine).is_empty());
    }

    #[test]
    fn dispatch_even_refuses_nth() {
        let nth = edit(
            kube_ok(),
            "--mode random --probability 0.50000000000 -j KUBE-SEP-A",
            "--mode nth --every 2 --packet 0 -j KUBE-SEP-A",
        );
        let v = run("dispatch-even", &nth);
        assert_eq!(only_line(&v), line_of(&nth, "--mode nth"));
        assert!(v[0].message.contains("--mode nth"));
    }

    #[test]
    fn dispatch_complete() {
        assert!(run("dispatch-complete", kube_ok()).is_empty());
        let open = edit(kube_ok(), "--comment \"shop/web:http -> 10.64.2.7:8080\" -j KUBE-SEP-C", "--comment \"shop/web:http -> 10.64.2.7:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-C");
        let v = run("dispatch-complete", &open);
        assert_eq!(
            only_line(&v),
            line_of(&open, "10.64.2.7:8080\" -m statistic")
        );
        assert!(
            v[0].message.contains("(to KUBE-SEP-C) is conditional (-m statistic); 0.1666666666 of the traffic reaches no endpoint"),
            "{}",
            v[0].message
        );
        let empty = kube_ok()
            .lines()
            .filter(|l| !l.starts_with("-A KUBE-SVL-WEB"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            only_line(&run("dispatch-complete", &empty)),
            line_of(&empty, ":KUBE-SVL-WEB")
        );
    }

    #[test]
    fn sep_hairpin() {
        assert!(run("sep-hairpin", kube_ok()).is_empty());
        let missing = edit(
            kube_ok(),
            "-A KUBE-SEP-B -s 10.64.0.6/32 -m comment --comment \"shop/web:http\" -j KUBE-MARK-MASQ\n",
            "",
        );
        let v = run("sep-hairpin", &missing);
        assert_eq!(
            only_line(&v),
            line_of(&missing, "-j DNAT --to-destination 10.64.0.6:8080")
        );
        assert_eq!(
            v[0].message,
            "KUBE-SEP-B: no hairpin rule; expected `-s 10.64.0.6/32 -j KUBE-MARK-MASQ` before the DNAT to 10.64.0.6"
        );
    }

    #[test]
    fn sep_hairpin_wrong_address_or_order() {
        let wrong = edit(
            kube_ok(),
            "-A KUBE-SEP-B -s 10.64.0.6/32",
            "-A KUBE-SEP-B -s 10.64.0.5/32",
        );
        let v = run("sep-hairpin", &wrong);
        assert_eq!(only_line(&v), line_of(&wrong, "-A KUBE-SEP-B -s"));
        assert!(
            v[0].message
                .contains("marks source 10.64.0.5/32, but the DNAT at line"),
            "{}",
            v[0].message
        );
        let hairpin =
            "-A KUBE-SEP-C -s 10.64.2.7/32 -m comment --comment \"shop/web:http\" -j KUBE-MARK-MASQ\n";
        let after = edit(
            &edit(kube_ok(), hairpin, ""),
            "-A KUBE-SERVICES -d 10.96.0.50/32",
            &format!("{hairpin}-A KUBE-SERVICES -d 10.96.0.50/32"),
        );
        // The parser groups rules by chain, so the hairpin still follows the DNAT.
        let v = run("sep-hairpin", &after);
        assert_eq!(only_line(&v), line_of(&after, "-A KUBE-SEP-C -s"));
        assert!(
            v[0].message.contains("comes after the DNAT"),
            "{}",
            v[0].message
        );
        let no_dnat = kube_ok()
            .lines()
            .filter(|l| !l.contains("--to-destination 10.64.2.7:8080"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            only_line(&run("sep-hairpin", &no_dnat)),
            line_of(&no_dnat, ":KUBE-SEP-C")
        );
    }
}
