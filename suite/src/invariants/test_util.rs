//! Helpers for the invariants' unit tests.

use super::{catalogue, Context, Report, Violation};
use kpconform_iptables::model::RuleSet;

/// Parses a snippet in strict mode, failing the test on a parse error.
pub(super) fn parsed(text: &str) -> RuleSet {
    match kpconform_iptables::parse_str(text) {
        Ok(rules) => rules,
        Err(errors) => panic!("snippet does not parse: {errors:?}\n{text}"),
    }
}

/// Runs the one invariant `id` on a snippet.
pub(super) fn run(id: &str, text: &str) -> Vec<Violation> {
    let rules = parsed(text);
    let Some(inv) = catalogue().iter().find(|i| i.id == id) else {
        panic!("no invariant {id}");
    };
    let cx = Context::new(&rules);
    let mut out = Vec::new();
    (inv.check)(
        &cx,
        &mut Report {
            id: inv.id,
            out: &mut out,
        },
    );
    for v in &out {
        assert_eq!(v.invariant, id);
    }
    // As `check` does.
    out.sort_by_key(|v| (v.span.line, v.span.start));
    out
}

/// The invariant ids of some violations, in order.
pub(super) fn ids(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.invariant).collect()
}

/// The line of the only violation, failing the test if there is not exactly one.
pub(super) fn only_line(violations: &[Violation]) -> u32 {
    assert_eq!(
        violations.len(),
        1,
        "expected one violation: {violations:#?}"
    );
    violations[0].span.line
}

/// The 1-based line of the first line of `text` containing `needle`.
pub(super) fn line_of(text: &str, needle: &str) -> u32 {
    match text.lines().position(|l| l.contains(needle)) {
        Some(i) => i as u32 + 1,
        None => panic!("no line contains {needle:?}"),
    }
}

/// A small rule set shaped like kube-proxy's: one service with three
/// endpoints (KUBE-SVC-X) and a Local-policy chain with session affinity
/// over two of them (KUBE-SVL-X). It satisfies every invariant.
pub(super) const KUBE_OK: &str = r#"*filter
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
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-X - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-SEP-C - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-X - [0:0]
:KUBE-SVL-X - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-X -s 10.64.0.0/16 -j KUBE-SVC-X
-A KUBE-EXT-X -j KUBE-SVL-X
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-EXT-X
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-A -s 10.64.0.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-A -p tcp -m recent --set --name KUBE-SEP-A --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.0.5:8080
-A KUBE-SEP-B -s 10.64.0.6/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-B -p tcp -m recent --set --name KUBE-SEP-B --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.0.6:8080
-A KUBE-SEP-C -s 10.64.1.7/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-C -p tcp -m recent --set --name KUBE-SEP-C --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.1.7:8080
-A KUBE-SERVICES -d 10.96.0.50/32 -p tcp -m comment --comment "default/api:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-X
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-X ! -s 10.64.0.0/16 -d 10.96.0.50/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j KUBE-SEP-A
-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-B --mask 255.255.255.255 --rsource -j KUBE-SEP-B
-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-C --mask 255.255.255.255 --rsource -j KUBE-SEP-C
-A KUBE-SVC-X -m comment --comment "-> A" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A
-A KUBE-SVC-X -m comment --comment "-> B" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVC-X -m comment --comment "-> C" -j KUBE-SEP-C
-A KUBE-SVL-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j KUBE-SEP-A
-A KUBE-SVL-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-B --mask 255.255.255.255 --rsource -j KUBE-SEP-B
-A KUBE-SVL-X -m comment --comment "local -> A" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
-A KUBE-SVL-X -m comment --comment "local -> B" -j KUBE-SEP-B
COMMIT
"#;

/// `text` with the first occurrence of `from` replaced, failing the test if
/// `from` is not there (so a typo cannot make a test pass vacuously).
pub(super) fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "snippet does not contain {from:?}");
    text.replacen(from, to, 1)
}
