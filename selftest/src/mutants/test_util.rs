//! The mutants' unit-test fixture and helpers.

use std::collections::BTreeMap;

use super::{find, Mutation};
use kpconform_iptables::model::RuleSet;
use kpconform_iptables::print;

/// A node's rules shaped like kube-proxy v1.30's, in iptables-save's
/// spelling (so that printing the parsed fixture gives it back), with one
/// of everything the catalogue edits:
/// - shop/web: cluster IP 10.96.0.50:80/tcp, node port 30080, session
///   affinity, externalTrafficPolicy Local; endpoints A and B on this node,
///   C on another (KUBE-SVC-WEB dispatches to all three, KUBE-SVL-WEB to A, B);
/// - shop/dns: 10.96.0.10:53/udp, one remote endpoint D;
/// - shop/lb: 10.96.0.70:443/tcp, load balancer 203.0.113.70 with source
///   range 198.51.100.0/24, policy Cluster, node port 31443, endpoint E;
/// - shop/empty: 10.96.0.60:443/tcp without endpoints (REJECT).
const FIXTURE: &str = r#"*filter
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
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-PROXY-FIREWALL -d 203.0.113.70/32 -p tcp -m comment --comment "shop/lb:https traffic not accepted by KUBE-FW-LB" -m tcp --dport 443 -j DROP
-A KUBE-SERVICES -d 10.96.0.60/32 -p tcp -m comment --comment "shop/empty:https has no endpoints" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-LB - [0:0]
:KUBE-EXT-WEB - [0:0]
:KUBE-FW-LB - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-SEP-C - [0:0]
:KUBE-SEP-D - [0:0]
:KUBE-SEP-E - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-DNS - [0:0]
:KUBE-SVC-LB - [0:0]
:KUBE-SVC-WEB - [0:0]
:KUBE-SVL-WEB - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-LB -m comment --comment "masquerade traffic for shop/lb:https external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-LB -j KUBE-SVC-LB
-A KUBE-EXT-WEB -s 10.64.0.0/16 -m comment --comment "pod traffic for shop/web:http external destinations" -j KUBE-SVC-WEB
-A KUBE-EXT-WEB -m comment --comment "masquerade LOCAL traffic for shop/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-WEB -m comment --comment "route LOCAL traffic for shop/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-WEB
-A KUBE-EXT-WEB -j KUBE-SVL-WEB
-A KUBE-FW-LB -s 198.51.100.0/24 -m comment --comment "shop/lb:https loadbalancer IP" -j KUBE-EXT-LB
-A KUBE-FW-LB -m comment --comment "other traffic to shop/lb:https will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "shop/web:http" -m tcp --dport 30080 -j KUBE-EXT-WEB
-A KUBE-NODEPORTS -p tcp -m comment --comment "shop/lb:https" -m tcp --dport 31443 -j KUBE-EXT-LB
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-A -s 10.64.0.5/32 -m comment --comment "shop/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-A -p tcp -m comment --comment "shop/web:http" -m recent --set --name KUBE-SEP-A --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.0.5:8080
-A KUBE-SEP-B -s 10.64.0.6/32 -m comment --comment "shop/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-B -p tcp -m comment --comment "shop/web:http" -m recent --set --name KUBE-SEP-B --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.0.6:8080
-A KUBE-SEP-C -s 10.64.2.7/32 -m comment --comment "shop/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-C -p tcp -m comment --comment "shop/web:http" -m recent --set --name KUBE-SEP-C --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.64.2.7:8080
-A KUBE-SEP-D -s 10.64.1.8/32 -m comment --comment "shop/dns:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-D -p udp -m comment --comment "shop/dns:dns" -m udp -j DNAT --to-destination 10.64.1.8:53
-A KUBE-SEP-E -s 10.64.1.9/32 -m comment --comment "shop/lb:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-E -p tcp -m comment --comment "shop/lb:https" -m tcp -j DNAT --to-destination 10.64.1.9:8443
-A KUBE-SERVICES -d 10.96.0.50/32 -p tcp -m comment --comment "shop/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "shop/dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-DNS
-A KUBE-SERVICES -d 10.96.0.70/32 -p tcp -m comment --comment "shop/lb:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-LB
-A KUBE-SERVICES -d 203.0.113.70/32 -p tcp -m comment --comment "shop/lb:https loadbalancer IP" -m tcp --dport 443 -j KUBE-FW-LB
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-DNS ! -s 10.64.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment "shop/dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-DNS -m comment --comment "shop/dns:dns -> 10.64.1.8:53" -j KUBE-SEP-D
-A KUBE-SVC-LB ! -s 10.64.0.0/16 -d 10.96.0.70/32 -p tcp -m comment --comment "shop/lb:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-LB -m comment --comment "shop/lb:https -> 10.64.1.9:8443" -j KUBE-SEP-E
-A KUBE-SVC-WEB ! -s 10.64.0.0/16 -d 10.96.0.50/32 -p tcp -m comment --comment "shop/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.0.5:8080" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j KUBE-SEP-A
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.0.6:8080" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-B --mask 255.255.255.255 --rsource -j KUBE-SEP-B
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.2.7:8080" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-C --mask 255.255.255.255 --rsource -j KUBE-SEP-C
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.0.5:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.0.6:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVC-WEB -m comment --comment "shop/web:http -> 10.64.2.7:8080" -j KUBE-SEP-C
-A KUBE-SVL-WEB -m comment --comment "shop/web:http -> 10.64.0.5:8080" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j KUBE-SEP-A
-A KUBE-SVL-WEB -m comment --comment "shop/web:http -> 10.64.0.6:8080" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-B --mask 255.255.255.255 --rsource -j KUBE-SEP-B
-A KUBE-SVL-WEB -m comment --comment "shop/web:http -> 10.64.0.5:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
-A KUBE-SVL-WEB -m comment --comment "shop/web:http -> 10.64.0.6:8080" -j KUBE-SEP-B
COMMIT
"#;

/// The fixture's text.
pub(super) fn fixture_text() -> String {
    FIXTURE.to_string()
}

/// The fixture, parsed.
pub(super) fn fixture() -> RuleSet {
    parsed(FIXTURE)
}

/// Parses a snippet in strict mode, failing the test on a parse error.
pub(super) fn parsed(text: &str) -> RuleSet {
    match kpconform_iptables::parse_str(text) {
        Ok(rules) => rules,
        Err(errors) => panic!("snippet does not parse: {errors:?}\n{text}"),
    }
}

/// [`parsed`], named for what the tests do with it.
pub(super) fn with_rules(text: &str) -> RuleSet {
    parsed(text)
}

fn mutant(id: &str) -> &'static super::Mutant {
    find(id).unwrap_or_else(|| panic!("no mutant {id}"))
}

/// The variants mutant `id` makes of the fixture.
pub(super) fn apply(id: &str) -> Vec<Mutation> {
    mutant(id).apply(&fixture())
}

/// Variant `i` of mutant `id` on the fixture: its place, the printed lines
/// it removed (in their order) and those it added (in theirs).
pub(super) fn changes(id: &str, i: usize) -> (String, Vec<String>, Vec<String>) {
    let original = fixture();
    let variants = mutant(id).apply(&original);
    let Some(m) = variants.get(i) else {
        panic!("{id} made {} variant(s), not {}", variants.len(), i + 1);
    };
    let before = print(&original);
    let after = print(&m.rules);
    (
        m.place.clone(),
        missing_from(&before, &after),
        missing_from(&after, &before),
    )
}

/// The lines of `a` that `b` does not have (as a multiset), in `a`'s order.
fn missing_from(a: &str, b: &str) -> Vec<String> {
    let mut have: BTreeMap<&str, usize> = BTreeMap::new();
    for line in b.lines() {
        *have.entry(line).or_default() += 1;
    }
    a.lines()
        .filter(|line| match have.get_mut(line) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(str::to_string)
        .collect()
}

/// Asserts that mutant `id` makes nothing of `rules`.
pub(super) fn not_applicable(id: &str, rules: &RuleSet) {
    let variants = mutant(id).apply(rules);
    let places: Vec<&str> = variants.iter().map(|m| m.place.as_str()).collect();
    assert!(places.is_empty(), "{id} applies at {places:?}");
}

/// The 1-based line of the fixture's first line containing `needle`.
pub(super) fn line_of(needle: &str) -> u32 {
    match FIXTURE.lines().position(|l| l.contains(needle)) {
        Some(i) => i as u32 + 1,
        None => panic!("no fixture line contains {needle:?}"),
    }
}

/// `text` without the lines containing `needle`, failing the test if there
/// is none (so a typo cannot make a test pass vacuously).
pub(super) fn without_lines(text: &str, needle: &str) -> String {
    assert!(text.contains(needle), "no line contains {needle:?}");
    text.lines()
        .filter(|l| !l.contains(needle))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `text` with the first occurrence of `from` replaced, failing the test if
/// `from` is not there.
pub(super) fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in the text");
    text.replacen(from, to, 1)
}

#[test]
fn the_fixture_prints_back_as_written() {
    assert_eq!(print(&fixture()), FIXTURE);
}
