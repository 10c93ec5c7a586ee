//! kube-proxy's fixed structure: the hooks into the built-in chains, the
//! order of KUBE-SERVICES, and the masquerade mark's round trip. The
//! per-service chains are in [`dispatch`].

use super::{Context, Report, TableIndex};
use kpconform_iptables::model::{
    BuiltinChain, Chain, ChainName, CtState, MarkMatch, Match, Rule, TableName, Target,
};

pub(super) mod dispatch;

const KUBE_SERVICES: &str = "KUBE-SERVICES";
const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
const KUBE_FORWARD: &str = "KUBE-FORWARD";
const KUBE_FIREWALL: &str = "KUBE-FIREWALL";

/// kube-proxy's `iptablesJumpChains` for nat: installed on every full sync,
/// whatever the configuration.
const NAT_HOOKS: &[(BuiltinChain, &str)] = &[
    (BuiltinChain::Prerouting, KUBE_SERVICES),
    (BuiltinChain::Output, KUBE_SERVICES),
    (BuiltinChain::Postrouting, KUBE_POSTROUTING),
];

/// The filter part of `iptablesJumpChains`: unconditional since v1.27, and
/// present in all 44 v1.30 recordings. Only presence is checked, not order,
/// because kube-proxy inserts them with `-I` and their order depends on what
/// ran before. The KUBE-FIREWALL jumps (`iptablesKubeletJumpChains`) are
/// release-specific: [`kube_firewall`].
const FILTER_HOOKS: &[(BuiltinChain, &str)] = &[
    (BuiltinChain::Input, "KUBE-PROXY-FIREWALL"),
    (BuiltinChain::Input, KUBE_NODEPORTS),
    (BuiltinChain::Input, "KUBE-EXTERNAL-SERVICES"),
    (BuiltinChain::Forward, "KUBE-PROXY-FIREWALL"),
    (BuiltinChain::Forward, KUBE_FORWARD),
    (BuiltinChain::Forward, KUBE_SERVICES),
    (BuiltinChain::Forward, "KUBE-EXTERNAL-SERVICES"),
    (BuiltinChain::Output, "KUBE-PROXY-FIREWALL"),
    (BuiltinChain::Output, KUBE_SERVICES),
];

/// The user chain a rule `-j`umps to (not `-g`: kube-proxy never uses goto,
/// and a goto from a built-in chain would apply the policy on return).
fn jumps_to(rule: &Rule) -> Option<&str> {
    match &rule.target {
        Some(Target::Jump(ChainName::User(name))) => Some(name),
        _ => None,
    }
}

/// The user chain a rule jumps or goes to.
fn enters(rule: &Rule) -> Option<&str> {
    match rule.jump_target() {
        Some(ChainName::User(name)) => Some(name),
        _ => None,
    }
}

/// `nat-hooks`
pub(super) fn nat_hooks(cx: &Context<'_>, r: &mut Report<'_>) {
    hooks(cx, r, TableName::Nat, NAT_HOOKS);
}

/// `filter-hooks`
pub(super) fn filter_hooks(cx: &Context<'_>, r: &mut Report<'_>) {
    hooks(cx, r, TableName::Filter, FILTER_HOOKS);
}

fn hooks(cx: &Context<'_>, r: &mut Report<'_>, table: TableName, hooks: &[(BuiltinChain, &str)]) {
    let mut seen = false;
    for t in cx.blocks(table) {
        seen = true;
        for &(hook, target) in hooks {
            let chain = t.chain(hook.as_str());
            let found =
                chain.is_some_and(|c| c.rules.iter().any(|rule| jumps_to(rule) == Some(target)));
            if found {
                continue;
            }
            let span = chain.map_or(t.table.span, |c| c.span);
            r.violation(
                table,
                Some(&ChainName::Builtin(hook)),
                span,
                format!(
                    "{hook}: no jump to {target} in table {table}; expected `-A {hook} ... -j {target}`",
                    hook = hook.as_str()
                ),
            );
        }
    }
    if !seen {
        let wanted: Vec<String> = hooks
            .iter()
            .map(|(h, t)| format!("{} -> {t}", h.as_str()))
            .collect();
        r.violation(
            table,
            None,
            cx.start_span(),
            format!(
                "no {table} table; expected one with the jumps {}",
                wanted.join(", ")
            ),
        );
    }
}

/// `kube-firewall`: the filter chain KUBE-FIREWALL changed hands. Up to
/// v1.27 it is the kubelet's alone (kube-proxy writes no KUBE-FIREWALL; the
/// kubelet's, if any, may hold `-m mark --mark M/M -j DROP`, "kubernetes
/// firewall for dropping marked packets"); from v1.28 kube-proxy writes it
/// with its INPUT and OUTPUT jumps and, when node ports answer on loopback,
/// the localnet DROP (`! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack !
/// --ctstate RELATED,ESTABLISHED,DNAT -j DROP`, "block incoming localnet
/// connections"), while a skewed kubelet may still add its own rules. So:
/// no chain at all is fine (v1.27); a chain is jumped to from INPUT and
/// OUTPUT (whoever wrote it does that), and each of its rules is one of the
/// two DROPs, or narrower (more conditions only ever drop less). Anything
/// else there — an ACCEPT, a DROP of all loopback traffic, of DNATed
/// traffic or of everything — breaks the node whatever the release.
pub(super) fn kube_firewall(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in cx.blocks(TableName::Filter) {
        let Some(chain) = t.chain(KUBE_FIREWALL) else {
            continue;
        };
        for hook in [BuiltinChain::Input, BuiltinChain::Output] {
            let builtin = t.chain(hook.as_str());
            let found = builtin.is_some_and(|c| {
                c.rules
                    .iter()
                    .any(|rule| jumps_to(rule) == Some(KUBE_FIREWALL))
            });
            if found {
                continue;
            }
            r.violation(
                TableName::Filter,
                Some(&ChainName::Builtin(hook)),
                builtin.map_or(chain.span, |c| c.span),
                format!(
                    "{hook}: no jump to {KUBE_FIREWALL}, which is declared (line {line}); expected \
                     `-A {hook} -j {KUBE_FIREWALL}` (kube-proxy 1.28+ and the kubelet both add it), \
                     or no {KUBE_FIREWALL} chain (kube-proxy 1.27)",
                    hook = hook.as_str(),
                    line = chain.span.line,
                ),
            );
        }
        for rule in &chain.rules {
            if is_localnet_drop(rule) || is_marked_drop(rule) {
                continue;
            }
            r.in_chain(
                TableName::Filter,
                chain,
                rule.span,
                format!(
                    "{KUBE_FIREWALL}: a rule that is neither kube-proxy's localnet DROP \
                     (`! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`, 1.28+) \
                     nor the kubelet's marked-packet DROP (`-m mark --mark M/M -j DROP`, 1.27)"
                ),
            );
        }
    }
}

/// 127.0.0.0/8, the localnet.
fn loopback_net() -> ipnet::IpNet {
    ipnet::IpNet::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
        8,
    )
    .expect("a valid prefix")
}

/// A DROP of packets to 127.0.0.0/8 (or part of it) from outside it that were
/// not DNATed, as kube-proxy (1.28+) and the kubelet write it.
fn is_localnet_drop(rule: &Rule) -> bool {
    let lo = loopback_net();
    let b = &rule.basic;
    let to_localnet = b
        .destination
        .as_ref()
        .is_some_and(|d| !d.negated && lo.contains(&d.value));
    // `! -s 127.0.0.0/8`, or a source wholly outside it.
    let from_elsewhere = b.source.as_ref().is_some_and(|s| {
        if s.negated {
            s.value.contains(&lo)
        } else {
            !lo.contains(&s.value) && !s.value.contains(&lo)
        }
    });
    // A DNATed connection is NEW and DNAT at once: only `! --ctstate ...DNAT`
    // spares it (localhost node ports are DNATed).
    let not_dnat = rule.matches.iter().any(|m| match m {
        Match::Conntrack { states, .. } => states.negated && states.value.contains(&CtState::Dnat),
        _ => false,
    });
    matches!(rule.target, Some(Target::Drop)) && to_localnet && from_elsewhere && not_dnat
}

/// A DROP of packets carrying a mark bit, as the kubelet (1.27) writes it.
fn is_marked_drop(rule: &Rule) -> bool {
    matches!(rule.target, Some(Target::Drop))
        && mark_matches(rule).any(|(negated, m)| !negated && m.mask != 0 && m.value != 0)
}

/// `nodeports-last`: kube-proxy's KUBE-NODEPORTS jump matches every packet
/// to a local address, so a service rule after it is skipped for node ports
/// of the same address. With `nodePortAddresses` there is one jump per
/// address, so the requirement is that they form the tail of the chain.
pub(super) fn nodeports_last(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in cx.blocks(TableName::Nat) {
        let Some(chain) = t.chain(KUBE_SERVICES) else {
            continue;
        };
        // Backwards, remembering the nearest rule after this one that is
        // not a NODEPORTS jump: any NODEPORTS jump that has one is misplaced.
        let mut next_other: Option<u32> = None;
        for rule in chain.rules.iter().rev() {
            if enters(rule) != Some(KUBE_NODEPORTS) {
                next_other = Some(rule.span.line);
                continue;
            }
            let Some(later) = next_other else {
                continue;
            };
            r.in_chain(
                TableName::Nat,
                chain,
                rule.span,
                format!(
                    "{KUBE_SERVICES}: the {KUBE_NODEPORTS} jump is followed by other rules (line {later}); \
                     expected it to be the last rule of the chain"
                ),
            );
        }
    }
}

/// The mark KUBE-MARK-MASQ leaves on an unmarked packet, and the rule that sets it.
fn masq_mark<'a>(t: &TableIndex<'a>) -> Option<(u32, &'a Rule)> {
    let chain = t.chain(KUBE_MARK_MASQ)?;
    let mut mark = 0;
    let mut last = None;
    for rule in &chain.rules {
        if let Some(Target::Mark(op)) = rule.target {
            mark = op.apply(mark);
            last = Some(rule);
        }
    }
    last.filter(|_| mark != 0).map(|rule| (mark, rule))
}

fn mark_matches(rule: &Rule) -> impl Iterator<Item = (bool, MarkMatch)> + '_ {
    rule.matches.iter().filter_map(|m| match m {
        Match::Mark(neg) => Some((neg.negated, neg.value)),
        _ => None,
    })
}

fn show_mark(m: MarkMatch) -> String {
    format!("{:#x}/{:#x}", m.value, m.mask)
}

/// `masq-mark-consistent`: the mark that KUBE-MARK-MASQ sets is the one
/// KUBE-POSTROUTING masquerades on and KUBE-FORWARD accepts; a mismatch
/// (for example a changed `--masquerade-bit` in only one place) silently
/// breaks SNAT for every service.
pub(super) fn masq_mark_consistent(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in cx.blocks(TableName::Nat) {
        let Some(masq) = t.chain(KUBE_MARK_MASQ) else {
            continue;
        };
        let Some((marked, _)) = masq_mark(t) else {
            r.in_chain(
                TableName::Nat,
                masq,
                masq.span,
                format!(
                    "{KUBE_MARK_MASQ}: sets no mark; expected `-j MARK --set-xmark M/M` for the masquerade bit"
                ),
            );
            continue;
        };
        let mut tested: Vec<(TableName, &Chain)> = Vec::new();
        if let Some(c) = t.chain(KUBE_POSTROUTING) {
            tested.push((TableName::Nat, c));
        }
        // Of several blocks of one table iptables-restore keeps the last, so
        // the last nat block's mark is the one filter must agree with.
        let last_nat = cx.blocks(TableName::Nat).last().map(|l| l.table.span);
        if last_nat == Some(t.table.span) {
            for f in cx.blocks(TableName::Filter) {
                if let Some(c) = f.chain(KUBE_FORWARD) {
                    tested.push((TableName::Filter, c));
                }
            }
        }
        for (table, chain) in tested {
            for rule in &chain.rules {
                for (_, m) in mark_matches(rule) {
                    if !m.matches(marked) || m.matches(0) {
                        r.in_chain(
                            table,
                            chain,
                            rule.span,
                            format!(
                                "{}: tests mark {}, but {KUBE_MARK_MASQ} sets {marked:#x}; expected a test \
                                 that matches packets {KUBE_MARK_MASQ} marked and no others",
                                chain.name,
                                show_mark(m)
                            ),
                        );
                    }
                }
                // kube-proxy clears the bit before MASQUERADE so that a
                // packet re-entering the stack is not masqueraded twice.
                if let (TableName::Nat, Some(Target::Mark(op))) = (table, &rule.target) {
                    let after = op.apply(marked);
                    if after & marked != 0 {
                        r.in_chain(
                            table,
                            chain,
                            rule.span,
                            format!(
                                "{}: MARK turns {KUBE_MARK_MASQ}'s mark {marked:#x} into {after:#x}; \
                                 expected it to clear the masquerade bit",
                                chain.name
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Whether a rule matches a packet with `mark`, as far as the rule depends
/// on the mark alone: `Some` for rules with only mark tests and comments,
/// `None` when anything else decides.
fn matches_on_mark(rule: &Rule, mark: u32) -> Option<bool> {
    if rule.basic != Default::default() {
        return None;
    }
    let mut all = true;
    for m in &rule.matches {
        match m {
            Match::Comment(_) => {}
            Match::Mark(neg) => all &= neg.eval(neg.value.matches(mark)),
            _ => return None,
        }
    }
    Some(all)
}

fn is_snat(rule: &Rule) -> bool {
    matches!(
        rule.target,
        Some(Target::Masquerade { .. } | Target::Snat { .. })
    )
}

/// What happens to a packet with `mark` walking KUBE-POSTROUTING: the rule
/// that certainly ends its walk before any SNAT rule could apply, or the
/// first SNAT rule it may reach.
enum Walk<'a> {
    /// A rule that certainly matches and leaves the chain (RETURN, ACCEPT, ...).
    Leaves(&'a Rule),
    /// The first MASQUERADE/SNAT rule that may match.
    Snat(&'a Rule),
    /// Fell off the end.
    End,
}

fn walk(chain: &Chain, mut mark: u32) -> Walk<'_> {
    for rule in &chain.rules {
        let m = matches_on_mark(rule, mark);
        if m == Some(false) {
            continue;
        }
        if is_snat(rule) {
            return Walk::Snat(rule);
        }
        if m != Some(true) {
            continue;
        }
        match &rule.target {
            Some(Target::Mark(op)) => mark = op.apply(mark),
            Some(Target::Return | Target::Accept | Target::Drop | Target::Reject { .. }) => {
                return Walk::Leaves(rule)
            }
            _ => {}
        }
    }
    Walk::End
}

/// `postrouting-masquerade`: unmarked packets leave KUBE-POSTROUTING before
/// any SNAT (or every connection through a node would be masqueraded), and
/// marked ones reach one.
pub(super) fn postrouting_masquerade(cx: &Context<'_>, r: &mut Report<'_>) {
    for t in cx.blocks(TableName::Nat) {
        let Some(chain) = t.chain(KUBE_POSTROUTING) else {
            continue;
        };
        let marked = masq_mark(t).map(|(m, _)| m).or_else(|| {
            // Without KUBE-MARK-MASQ, take the bit the chain itself tests.
            chain
                .rules
                .iter()
                .flat_map(mark_matches)
                .map(|(_, m)| m.value)
                .find(|&v| v != 0)
        });
        let Some(marked) = marked else {
            r.in_chain(
                TableName::Nat,
                chain,
                chain.span,
                format!(
                    "{KUBE_POSTROUTING}: no mark test and no {KUBE_MARK_MASQ} mark; expected \
                     `-m mark ! --mark M/M -j RETURN` then `-j MASQUERADE`"
                ),
            );
            continue;
        };
        match walk(chain, 0) {
            Walk::Leaves(_) | Walk::End => {}
            Walk::Snat(rule) => r.in_chain(
                TableName::Nat,
                chain,
                rule.span,
                format!(
                    "{KUBE_POSTROUTING}: unmarked packets reach this {}; expected \
                     `-m mark ! --mark {marked:#x}/{marked:#x} -j RETURN` before it",
                    snat_name(rule)
                ),
            ),
        }
        match walk(chain, marked) {
            Walk::Snat(_) => {}
            Walk::Leaves(rule) => r.in_chain(
                TableName::Nat,
                chain,
                rule.span,
                format!(
                    "{KUBE_POSTROUTING}: packets marked {marked:#x} leave the chain here before any \
                     MASQUERADE; expected them to reach `-j MASQUERADE`"
                ),
            ),
            Walk::End => {
                let span = chain.rules.iter().find(|r| is_snat(r)).map_or(chain.span, |r| r.span);
                r.in_chain(
                    TableName::Nat,
                    chain,
                    span,
                    format!(
                        "{KUBE_POSTROUTING}: no MASQUERADE rule matches packets marked {marked:#x}; \
                         expected `-j MASQUERADE` after the unmarked RETURN"
                    ),
                );
            }
        }
    }
}

fn snat_name(rule: &Rule) -> &'static str {
    match rule.target {
        Some(Target::Snat { .. }) => "SNAT",
        _ => "MASQUERADE",
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{edit, kube_ok, line_of, only_line, run};

    #[test]
    fn nat_hooks() {
        assert!(run("nat-hooks", kube_ok()).is_empty());
        let text = edit(
            kube_ok(),
            "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
            "",
        );
        let v = run("nat-hooks", &text);
        assert_eq!(only_line(&v), line_of(&text, ":POSTROUTING ACCEPT"));
        assert!(v[0]
            .message
            .starts_with("POSTROUTING: no jump to KUBE-POSTROUTING in table nat"));
    }

    #[test]
    fn nat_hooks_without_a_nat_table() {
        let filter_only = &kube_ok()[..kube_ok().find("*nat").unwrap_or(kube_ok().len())];
        let v = run("nat-hooks", filter_only);
        assert_eq!(only_line(&v), 1);
        assert!(v[0].message.contains("no nat table"), "{}", v[0].message);
    }

    #[test]
    fn filter_hooks() {
        assert!(run("filter-hooks", kube_ok()).is_empty());
        let text = edit(
            kube_ok(),
            "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n",
            "",
        );
        let v = run("filter-hooks", &text);
        assert_eq!(only_line(&v), line_of(&text, ":FORWARD ACCEPT"));
        assert!(
            v[0].message.contains("FORWARD: no jump to KUBE-FORWARD"),
            "{}",
            v[0].message
        );
    }

    /// The fixture as kube-proxy v1.27 writes it: no KUBE-FIREWALL and no
    /// jumps to it.
    fn v1_27() -> String {
        let mut text = kube_ok().to_string();
        for line in [
            ":KUBE-FIREWALL - [0:0]\n",
            "-A INPUT -j KUBE-FIREWALL\n",
            "-A OUTPUT -j KUBE-FIREWALL\n",
            "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n",
        ] {
            text = edit(&text, line, "");
        }
        text
    }

    const MARKED_DROP: &str = "-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP\n";

    #[test]
    fn kube_firewall_accepts_every_release_shape() {
        // 1.28+: kube-proxy's localnet DROP.
        assert!(run("kube-firewall", kube_ok()).is_empty());
        assert!(run("filter-hooks", kube_ok()).is_empty());
        // 1.27: none at all.
        let old = v1_27();
        assert!(run("kube-firewall", &old).is_empty());
        assert!(run("filter-hooks", &old).is_empty());
        // 1.27 with the kubelet's chain and its marked-packet DROP.
        let kubelet = edit(
            &edit(
                &edit(
                    &old,
                    ":KUBE-FORWARD",
                    ":KUBE-FIREWALL - [0:0]\n:KUBE-FORWARD",
                ),
                "-A INPUT ",
                "-A INPUT -j KUBE-FIREWALL\n-A INPUT ",
            ),
            "-A OUTPUT ",
            &format!("-A OUTPUT -j KUBE-FIREWALL\n{MARKED_DROP}-A OUTPUT "),
        );
        assert!(run("kube-firewall", &kubelet).is_empty(), "{kubelet}");
        // A skewed kubelet adding its rule to kube-proxy's chain.
        let both = edit(
            kube_ok(),
            "-A KUBE-FIREWALL ",
            &format!("{MARKED_DROP}-A KUBE-FIREWALL "),
        );
        assert!(run("kube-firewall", &both).is_empty());
        // 1.28+ without localhost node ports: the chain and its jumps, empty.
        let empty = edit(
            kube_ok(),
            "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n",
            "",
        );
        assert!(run("kube-firewall", &empty).is_empty());
    }

    #[test]
    fn kube_firewall_must_be_hooked_and_only_drop() {
        let text = edit(kube_ok(), "-A OUTPUT -j KUBE-FIREWALL\n", "");
        let v = run("kube-firewall", &text);
        assert_eq!(only_line(&v), line_of(&text, ":OUTPUT ACCEPT"));
        assert!(
            v[0].message.contains("OUTPUT: no jump to KUBE-FIREWALL")
                && v[0].message.contains("1.27"),
            "{}",
            v[0].message
        );
        // Dropping DNATed loopback traffic breaks localhost node ports.
        let text = edit(
            kube_ok(),
            " ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
            " --ctstate NEW -j DROP",
        );
        let v = run("kube-firewall", &text);
        assert_eq!(only_line(&v), line_of(&text, "-A KUBE-FIREWALL "));
        assert!(v[0].message.contains("localnet DROP"), "{}", v[0].message);
        // So does dropping the node's own loopback traffic.
        let text = edit(
            kube_ok(),
            "-A KUBE-FIREWALL ! -s 127.0.0.0/8 ",
            "-A KUBE-FIREWALL ",
        );
        assert_eq!(
            only_line(&run("kube-firewall", &text)),
            line_of(&text, "-A KUBE-FIREWALL ")
        );
        // An ACCEPT skips the rest of INPUT.
        let text = edit(
            kube_ok(),
            "-A KUBE-FIREWALL ",
            "-A KUBE-FIREWALL -j ACCEPT\n-A KUBE-FIREWALL ",
        );
        assert_eq!(
            only_line(&run("kube-firewall", &text)),
            line_of(&text, "-j ACCEPT")
        );
        // An unmarked drop drops everything.
        let text = edit(
            kube_ok(),
            "-A KUBE-FIREWALL ",
            "-A KUBE-FIREWALL -m mark ! --mark 0x8000/0x8000 -j DROP\n-A KUBE-FIREWALL ",
        );
        assert_eq!(
            only_line(&run("kube-firewall", &text)),
            line_of(&text, "! --mark 0x8000")
        );
    }

    #[test]
    fn nodeports_last() {
        assert!(run("nodeports-last", kube_ok()).is_empty());
        let nodeports = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
        let moved = edit(
            &edit(kube_ok(), nodeports, ""),
            "-A KUBE-SERVICES -d 10.96.0.50/32",
            &format!("{nodeports}-A KUBE-SERVICES -d 10.96.0.50/32"),
        );
        let v = run("nodeports-last", &moved);
        assert_eq!(
            only_line(&v),
            line_of(&moved, "--dst-type LOCAL -j KUBE-NODEPORTS")
        );
        assert!(v[0].message.contains(&format!(
            "line {}",
            line_of(&moved, "-A KUBE-SERVICES -d 10.96.0.50/32")
        )));
    }

    #[test]
    fn several_nodeports_jumps_may_share_the_tail() {
        // nodePortAddresses gives one jump per address.
        let tail = "-A KUBE-SERVICES -d 192.168.0.10/32 -j KUBE-NODEPORTS\n-A KUBE-SERVICES -d 172.16.5.10/32 -j KUBE-NODEPORTS\n";
        let text = edit(
            kube_ok(),
            "-A KUBE-SVC-DNS ! -s",
            &format!("{tail}-A KUBE-SVC-DNS ! -s"),
        );
        assert!(run("nodeports-last", &text).is_empty());
        let split = edit(&text, "-A KUBE-SERVICES -d 172.16.5.10/32 -j KUBE-NODEPORTS\n", "-A KUBE-SERVICES -d 10.96.0.9/32 -j KUBE-SVC-WEB\n-A KUBE-SERVICES -d 172.16.5.10/32 -j KUBE-NODEPORTS\n");
        let v = run("nodeports-last", &split);
        // Both the addrtype jump and the first -d jump are followed by the service rule.
        assert_eq!(v.len(), 2, "{v:#?}");
        assert_eq!(
            v[1].span.line,
            line_of(&split, "192.168.0.10/32 -j KUBE-NODEPORTS")
        );
    }

    #[test]
    fn masq_mark_consistent() {
        assert!(run("masq-mark-consistent", kube_ok()).is_empty());
        // Bit 5 in KUBE-MARK-MASQ only: both tests and the clear are wrong.
        let text = edit(
            kube_ok(),
            "-j MARK --set-xmark 0x4000/0x4000",
            "-j MARK --set-xmark 0x20/0x20",
        );
        let v = run("masq-mark-consistent", &text);
        let lines: Vec<u32> = v.iter().map(|v| v.span.line).collect();
        assert_eq!(
            lines,
            [
                line_of(&text, "-A KUBE-FORWARD -m comment"),
                line_of(&text, "-A KUBE-POSTROUTING -m mark"),
                line_of(&text, "-A KUBE-POSTROUTING -j MARK"),
            ]
        );
        assert!(v[0]
            .message
            .starts_with("KUBE-FORWARD: tests mark 0x4000/0x4000"));
        assert!(
            v[1].message
                .contains("tests mark 0x4000/0x4000, but KUBE-MARK-MASQ sets 0x20"),
            "{}",
            v[1].message
        );
        assert!(v[2].message.contains("into 0x4020"), "{}", v[2].message);
    }

    #[test]
    fn masq_mark_consistent_with_another_bit_everywhere() {
        let text = kube_ok().replace("0x4000", "0x20");
        assert!(run("masq-mark-consistent", &text).is_empty());
        let unset = edit(
            kube_ok(),
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n",
            "-A KUBE-MARK-MASQ -j RETURN\n",
        );
        let v = run("masq-mark-consistent", &unset);
        assert_eq!(only_line(&v), line_of(&unset, ":KUBE-MARK-MASQ"));
    }

    #[test]
    fn postrouting_masquerade() {
        assert!(run("postrouting-masquerade", kube_ok()).is_empty());
        let no_return = edit(
            kube_ok(),
            "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n",
            "",
        );
        let v = run("postrouting-masquerade", &no_return);
        assert_eq!(only_line(&v), line_of(&no_return, "-j MASQUERADE"));
        assert!(
            v[0].message
                .contains("unmarked packets reach this MASQUERADE"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn postrouting_masquerade_unreachable() {
        // A RETURN for marked packets (negation dropped) hides the MASQUERADE.
        let inverted = edit(
            kube_ok(),
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-j RETURN",
        );
        let v = run("postrouting-masquerade", &inverted);
        assert_eq!(
            only_line(&v),
            line_of(&inverted, "-A KUBE-POSTROUTING -j RETURN")
        );
        assert!(v[0]
            .message
            .contains("leave the chain here before any MASQUERADE"));
        // Testing the mark after clearing it: the MASQUERADE never matches.
        let late = edit(kube_ok(), "--comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE", "--comment \"kubernetes service traffic requiring SNAT\" -m mark --mark 0x4000/0x4000 -j MASQUERADE");
        let v = run("postrouting-masquerade", &late);
        assert_eq!(only_line(&v), line_of(&late, "-j MASQUERADE"));
        assert!(v[0]
            .message
            .contains("no MASQUERADE rule matches packets marked 0x4000"));
        let none = edit(kube_ok(), "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n", "");
        assert_eq!(
            only_line(&run("postrouting-masquerade", &none)),
            line_of(&none, ":KUBE-POSTROUTING")
        );
    }
}
