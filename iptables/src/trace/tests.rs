//! Tracer tests: small rule sets parsed from iptables-save text, and the
//! recorded kube-proxy v1.30 outputs, whose expected behaviour comes from
//! Kubernetes semantics rather than from this tracer's own output.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::mass::Mass;
use ipnet::IpNet;

use super::*;
use crate::model::{ChainName, Protocol, RuleSet, Target};
use crate::probability::ProbabilityMode;
use crate::trace::FlowSource;
use crate::{parse, parse_str, Mode};

const CLIENT: &str = "203.0.113.7";

fn rules(text: &str) -> RuleSet {
    parse_str(text).unwrap_or_else(|e| panic!("test rules do not parse: {e:?}"))
}

fn recorded(case: &str) -> RuleSet {
    let path = kpconform_golden::recordings()
        .join(format!("kube-proxy-v1.30/outputs/{case}.rules"))
        .display()
        .to_string();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rules(&text)
}

fn node() -> Vec<IpNet> {
    vec!["192.168.0.10/24".parse().unwrap()]
}

fn dec(s: &str) -> Mass {
    Mass::from_str(s).unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn from(src: &str, to: &str) -> Packet {
    Packet::new(FlowSource::Ip(src.parse().unwrap()), sa(to), Protocol::Tcp)
}

fn from_node(to: &str) -> Packet {
    Packet::new(FlowSource::Node, sa(to), Protocol::Tcp)
}

fn trace(rs: &RuleSet, p: &Packet) -> Distribution {
    let d = Tracer::new(rs, &node())
        .trace(p)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.total(), Mass::one(), "mass must be conserved:\n{d}");
    d
}

/// The single outcome of a deterministic trace.
fn only(d: &Distribution) -> &Outcome {
    assert_eq!(d.outcomes.len(), 1, "expected one outcome:\n{d}");
    &d.outcomes[0]
}

fn verdict(rs: &RuleSet, p: &Packet) -> Verdict {
    only(&trace(rs, p)).verdict
}

/// A nat table whose PREROUTING and OUTPUT DNAT to 10.64.1.5:80 when `rule`
/// (match part, placed before the target) matches.
fn dnat_if(rule: &str) -> RuleSet {
    rules(&format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A PREROUTING {rule} -j DNAT --to-destination 10.64.1.5:80\n\
         -A OUTPUT {rule} -j DNAT --to-destination 10.64.1.5:80\nCOMMIT\n"
    ))
}

fn dnated(rule: &str, p: &Packet) -> bool {
    only(&trace(&dnat_if(rule), p)).destination == sa("10.64.1.5:80")
}

// ---- matches -------------------------------------------------------------

#[test]
fn no_rules_accepts_unchanged() {
    let o = trace(&RuleSet::default(), &from(CLIENT, "10.96.0.1:443"))
        .outcomes
        .remove(0);
    assert_eq!(
        (o.verdict, o.destination, o.masquerade),
        (Verdict::Accept, sa("10.96.0.1:443"), false)
    );
    assert_eq!(o.to_string(), "accept  p=1");
}

#[test]
fn source_and_destination_with_negation() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-s 203.0.113.0/24", &p));
    assert!(!dnated("-s 10.0.0.0/8", &p));
    assert!(dnated("! -s 10.0.0.0/8", &p));
    assert!(dnated("-d 10.96.0.1/32", &p));
    assert!(!dnated("! -d 10.96.0.1/32", &p));
}

#[test]
fn protocol_all_and_negation() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-p tcp", &p));
    assert!(!dnated("-p udp", &p));
    assert!(dnated("-p all", &p));
    assert!(dnated("! -p udp", &p));
    let udp = Packet::new(
        FlowSource::Ip(CLIENT.parse().unwrap()),
        sa("10.96.0.10:53"),
        Protocol::Udp,
    );
    assert!(dnated("-p udp", &udp));
}

#[test]
fn interfaces_with_wildcards() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-i eth0", &p));
    assert!(dnated("-i eth+", &p));
    assert!(!dnated("-i lo", &p));
    assert!(dnated("! -i cni+", &p));
    // OUTPUT has no input interface; a node-sent packet to a remote address
    // leaves by eth0.
    let n = from_node("10.96.0.1:443");
    assert!(!dnated("-i eth+", &n));
    assert!(dnated("-o eth0", &n));
    assert!(dnated("-o +", &n));
}

#[test]
fn first_packet_is_not_a_fragment() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(!dnated("-f", &p));
    assert!(dnated("! -f", &p));
}

#[test]
fn port_matches_and_ranges_need_the_protocol() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-p tcp -m tcp --dport 443", &p));
    assert!(dnated("-p tcp -m tcp --dport 400:500", &p));
    assert!(!dnated("-p tcp -m tcp --dport 444:500", &p));
    assert!(dnated("-p tcp -m tcp ! --dport 80", &p));
    assert!(dnated(&format!("-p tcp -m tcp --sport {SOURCE_PORT}"), &p));
    assert!(!dnated("-p tcp -m tcp --sport 1:1023", &p));
    // A udp match never matches a tcp packet, even where -p allows both.
    assert!(!dnated("-m udp --dport 443", &p));
}

#[test]
fn multiport_lists() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-p tcp -m multiport --dports 80,443", &p));
    assert!(dnated("-p tcp -m multiport --dports 80,440:450", &p));
    assert!(!dnated("-p tcp -m multiport --dports 80,8443", &p));
    assert!(dnated("-p tcp -m multiport ! --dports 80,8443", &p));
    assert!(dnated(
        &format!("-p tcp -m multiport --ports {SOURCE_PORT},1"),
        &p
    ));
}

#[test]
fn comment_and_limit_always_match_unknown_never() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-m comment --comment \"anything at all\"", &p));
    assert!(dnated("-m limit --limit 1/sec --limit-burst 1", &p));
    let lax = parse(
        "*nat\n:PREROUTING ACCEPT [0:0]\n\
         -A PREROUTING -m frobnicate --level 9 -j DNAT --to-destination 10.64.1.5:80\nCOMMIT\n",
        Mode::Lax,
    )
    .unwrap()
    .rules;
    assert_eq!(only(&trace(&lax, &p)).destination, sa("10.96.0.1:443"));
}

#[test]
fn addrtype_source_and_destination() {
    let p = from(CLIENT, "192.168.0.10:30080");
    assert!(dnated("-m addrtype --dst-type LOCAL", &p));
    assert!(!dnated("-m addrtype --src-type LOCAL", &p));
    assert!(dnated("-m addrtype --src-type UNICAST", &p));
    assert!(dnated("-m addrtype ! --src-type LOCAL", &p));
    assert!(dnated("-m addrtype --dst-type BROADCAST,LOCAL", &p));
    assert!(!dnated(
        "-m addrtype --dst-type LOCAL",
        &from(CLIENT, "192.168.0.11:30080")
    ));
    assert!(dnated(
        "-m addrtype --dst-type LOCAL",
        &from(CLIENT, "127.0.0.1:30080")
    ));
    // The node's own packets have a LOCAL source.
    assert!(dnated(
        "-m addrtype --src-type LOCAL",
        &from_node("10.96.0.1:443")
    ));
}

#[test]
fn conntrack_state_of_a_first_packet() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-m conntrack --ctstate NEW", &p));
    assert!(!dnated("-m conntrack --ctstate RELATED,ESTABLISHED", &p));
    assert!(dnated(
        "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
        &p
    ));
    assert!(!dnated("-m conntrack --ctstate DNAT", &p));
    assert!(dnated("-m state --state NEW", &p));
    assert!(!dnated("-m state --state INVALID", &p));
}

#[test]
fn raw_table_runs_before_conntrack() {
    let rs = rules(
        "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n",
    );
    assert_eq!(verdict(&rs, &from(CLIENT, "10.96.0.1:443")), Verdict::Drop);
}

#[test]
fn mark_match_tests_value_under_mask() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         -A PREROUTING -j MARK --set-xmark 0x4001/0xffffffff\n\
         -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\nCOMMIT\n",
    );
    assert!(only(&trace(&rs, &from(CLIENT, "10.96.0.1:443"))).masquerade);
    let exact = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         -A PREROUTING -j MARK --set-xmark 0x4001/0xffffffff\n\
         -A POSTROUTING -m mark --mark 0x4000 -j MASQUERADE\nCOMMIT\n",
    );
    assert!(!only(&trace(&exact, &from(CLIENT, "10.96.0.1:443"))).masquerade);
}

#[test]
fn statistic_nth_matches_the_first_packet_only_at_packet_zero() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated("-m statistic --mode nth --every 3 --packet 0", &p));
    assert!(!dnated("-m statistic --mode nth --every 3 --packet 1", &p));
    assert!(dnated("-m statistic --mode nth --every 1", &p));
}

// ---- probabilities -------------------------------------------------------

const THREE_ENDPOINTS: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n\
    :KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n:KUBE-SEP-C - [0:0]\n\
    -A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X\n\
    -A KUBE-SVC-X -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-A\n\
    -A KUBE-SVC-X -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-B\n\
    -A KUBE-SVC-X -j KUBE-SEP-C\n\
    -A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.64.0.1:8080\n\
    -A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.64.1.1:8080\n\
    -A KUBE-SEP-C -p tcp -j DNAT --to-destination 10.64.2.1:8080\nCOMMIT\n";

#[test]
fn three_endpoints_get_the_exact_kernel_products() {
    let rs = rules(THREE_ENDPOINTS);
    let d = trace(&rs, &from(CLIENT, "10.96.0.1:80"));
    let acc = d.accepted();
    // k = round(0.3333333333 * 2^31) = 715827883; computed independently
    // with exact fractions: p1 = k / 2^31, p2 = p3 = (1 - p1) / 2.
    assert_eq!(
        acc[&sa("10.64.0.1:8080")],
        dec("0.3333333334885537624359130859375")
    );
    assert_eq!(
        acc[&sa("10.64.1.1:8080")],
        dec("0.33333333325572311878204345703125")
    );
    assert_eq!(
        acc[&sa("10.64.2.1:8080")],
        dec("0.33333333325572311878204345703125")
    );
    assert_eq!(d.outcomes.len(), 3);
    assert_eq!(
        d.outcomes[0].to_string(),
        "nat PREROUTING > KUBE-SVC-X > KUBE-SEP-A > DNAT 10.64.0.1:8080 | accept  p=0.333333333489"
    );
}

#[test]
fn trace_each_hands_over_the_outcomes_of_trace_in_order() {
    let rs = rules(THREE_ENDPOINTS);
    let tracer = Tracer::new(&rs, &node());
    let packet = from(CLIENT, "10.96.0.1:80");
    let mut seen = Vec::new();
    let count = tracer
        .trace_each(&packet, &RecentState::new(), |o| {
            seen.push((o.to_string(), o.probability))
        })
        .unwrap();
    let d = trace(&rs, &packet);
    assert_eq!(count, 3);
    let collected: Vec<_> = d
        .outcomes
        .iter()
        .map(|o| (o.to_string(), o.probability.clone()))
        .collect();
    assert_eq!(seen, collected);
    // An error still ends the trace, after the outcomes before it.
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:R - [0:0]\n-A R -j RETURN\n");
    for _ in 0..12 {
        text.push_str("-A PREROUTING -m statistic --mode random --probability 0.5 -j R\n");
    }
    text.push_str("COMMIT\n");
    let rs = rules(&text);
    let mut visited = 0;
    let err = Tracer::new(&rs, &node())
        .with_limits(100, u64::MAX)
        .trace_each(&packet, &RecentState::new(), |_| visited += 1)
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::TooManyPaths);
    assert!(visited <= 100, "{visited}");
}

#[test]
fn kernel_and_as_written_modes_differ() {
    let rs = rules(THREE_ENDPOINTS);
    let p = from(CLIENT, "10.96.0.1:80");
    let written = Tracer::new(&rs, &node())
        .with_mode(ProbabilityMode::AsWritten)
        .trace(&p)
        .unwrap();
    assert_eq!(written.total(), Mass::one());
    let acc = written.accepted();
    assert_eq!(acc[&sa("10.64.0.1:8080")], dec("0.3333333333"));
    assert_eq!(acc[&sa("10.64.1.1:8080")], dec("0.33333333335"));
    let kernel = trace(&rs, &p).accepted();
    assert_ne!(kernel[&sa("10.64.0.1:8080")], acc[&sa("10.64.0.1:8080")]);
}

#[test]
fn certain_and_impossible_statistics_do_not_fork() {
    let rs = dnat_if("-m statistic --mode random --probability 1");
    assert_eq!(trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.len(), 1);
    assert!(!dnated(
        "-m statistic --mode random --probability 0",
        &from(CLIENT, "10.96.0.1:80")
    ));
    // Negated: matches with 1 - p.
    let neg = dnat_if("-m statistic --mode random ! --probability 0.25");
    let d = trace(&neg, &from(CLIENT, "10.96.0.1:80"));
    assert_eq!(d.accepted()[&sa("10.64.1.5:80")], dec("0.75"));
}

#[test]
fn two_hundred_endpoints_split_exactly() {
    let rs = recorded("scale-1-service-200-endpoints");
    let d = trace(&rs, &from("10.64.0.9", "10.96.60.200:80"));
    let acc = d.accepted();
    assert_eq!(acc.len(), 200);
    let tol = dec("0.000001");
    for (dest, p) in &acc {
        assert!(p.abs_diff(&dec("0.005")) <= tol, "{dest}: {p}");
    }
}

// ---- targets and chain semantics -----------------------------------------

#[test]
fn return_goes_back_to_the_caller_and_goto_skips_it() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:G - [0:0]\n\
         -A PREROUTING -d 10.96.0.1/32 -j A\n\
         -A PREROUTING -d 10.96.0.2/32 -g G\n\
         -A PREROUTING -j DNAT --to-destination 10.64.9.9:80\n\
         -A A -j B\n\
         -A A -j DNAT --to-destination 10.64.1.1:80\n\
         -A B -j RETURN\n\
         -A B -j DROP\n\
         -A G -j B\n\
         -A G -j RETURN\n\
         -A G -j DROP\nCOMMIT\n",
    );
    // Jump: B returns into A, whose next rule DNATs.
    assert_eq!(
        only(&trace(&rs, &from(CLIENT, "10.96.0.1:80"))).destination,
        sa("10.64.1.1:80")
    );
    // Goto from the built-in chain: RETURN in G returns to PREROUTING's
    // policy, not to the rule after the goto.
    let o = trace(&rs, &from(CLIENT, "10.96.0.2:80")).outcomes.remove(0);
    assert_eq!(
        (o.verdict, o.destination),
        (Verdict::Accept, sa("10.96.0.2:80"))
    );
    // Neither: falls through to the last PREROUTING rule.
    assert_eq!(
        only(&trace(&rs, &from(CLIENT, "10.96.0.3:80"))).destination,
        sa("10.64.9.9:80")
    );
}

#[test]
fn goto_from_a_user_chain_returns_to_the_callers_caller() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:G - [0:0]\n\
         -A PREROUTING -j A\n\
         -A PREROUTING -j DNAT --to-destination 10.64.2.2:80\n\
         -A A -g G\n\
         -A A -j DNAT --to-destination 10.64.1.1:80\n\
         -A G -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n",
    );
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    assert_eq!(o.destination, sa("10.64.2.2:80"));
    assert_eq!(
        o.path(),
        "nat PREROUTING > (A > G > MARK=0x1) > DNAT 10.64.2.2:80 | accept"
    );
}

#[test]
fn policies_apply_when_falling_off_or_returning_from_builtins() {
    let rs = rules(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -j RETURN\n-A FORWARD -j ACCEPT\nCOMMIT\n",
    );
    let d = trace(&rs, &from(CLIENT, "192.168.0.10:22"));
    let o = only(&d);
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(
        o.walk.last().map(|s| &s.action),
        Some(&Action::Policy(crate::model::Policy::Drop))
    );
    assert_eq!(verdict(&rs, &from(CLIENT, "10.64.1.1:22")), Verdict::Drop);
    assert_eq!(verdict(&rs, &from_node("10.64.1.1:22")), Verdict::Accept);
}

#[test]
fn accept_ends_only_the_current_table() {
    let rs = rules(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\n\
         -A PREROUTING -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n\
         *nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m mark --mark 0x0 -j DNAT --to-destination 10.64.1.1:80\nCOMMIT\n\
         *filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -d 10.64.1.1/32 -j REJECT\nCOMMIT\n",
    );
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    assert_eq!(
        (o.verdict, o.destination),
        (Verdict::Reject, sa("10.64.1.1:80"))
    );
    assert_eq!(
        o.path(),
        "mangle PREROUTING > ACCEPT | nat PREROUTING > DNAT 10.64.1.1:80 | filter FORWARD > REJECT"
    );
}

#[test]
fn log_and_unknown_targets_do_not_stop_the_walk() {
    let lax = parse(
        "*nat\n:PREROUTING ACCEPT [0:0]\n\
         -A PREROUTING -j LOG --log-prefix \"kp: \"\n\
         -A PREROUTING -j FROB --frob-level 3\n\
         -A PREROUTING -j DNAT --to-destination 10.64.1.1:80\nCOMMIT\n",
        Mode::Lax,
    )
    .unwrap()
    .rules;
    let o = trace(&lax, &from(CLIENT, "10.96.0.1:80"))
        .outcomes
        .remove(0);
    assert_eq!(o.destination, sa("10.64.1.1:80"));
    let warnings: Vec<_> = o.warnings().map(|s| (s.line, s.action.clone())).collect();
    assert_eq!(warnings, vec![(4, Action::Unknown("FROB".into()))]);
}

#[test]
fn dnat_keeps_the_port_unless_given_and_redirect_depends_on_the_hook() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.64.1.1\n\
         -A PREROUTING -p tcp -m tcp --dport 81 -j REDIRECT --to-ports 15001\n\
         -A OUTPUT -p tcp -j REDIRECT\nCOMMIT\n",
    );
    assert_eq!(
        only(&trace(&rs, &from(CLIENT, "10.96.0.1:80"))).destination,
        sa("10.64.1.1:80")
    );
    assert_eq!(
        only(&trace(&rs, &from(CLIENT, "10.96.0.1:81"))).destination,
        sa("192.168.0.10:15001")
    );
    assert_eq!(
        only(&trace(&rs, &from_node("10.96.0.1:81"))).destination,
        sa("127.0.0.1:81")
    );
}

#[test]
fn dnat_then_filter_sees_ctstate_dnat_and_the_new_destination() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n\
         -A PREROUTING -d 10.96.0.1/32 -j DNAT --to-destination 10.64.1.5:8080\nCOMMIT\n\
         *filter\n:FORWARD ACCEPT [0:0]\n\
         -A FORWARD -d 10.64.1.5/32 -m conntrack --ctstate DNAT -j ACCEPT\n\
         -A FORWARD -j DROP\nCOMMIT\n",
    );
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    assert_eq!(
        (o.verdict, o.destination),
        (Verdict::Accept, sa("10.64.1.5:8080"))
    );
    // Straight to the pod: no DNAT, so the state has no DNAT bit.
    assert_eq!(verdict(&rs, &from(CLIENT, "10.64.1.5:8080")), Verdict::Drop);
}

#[test]
fn localnet_firewall_spares_dnated_connections() {
    // kube-proxy's KUBE-FIREWALL rule, from the recordings.
    let rs = rules(
        "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n\
         -A INPUT -j KUBE-FIREWALL\n-A OUTPUT -j KUBE-FIREWALL\n\
         -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" \
         -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\nCOMMIT\n\
         *nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 \
         -j DNAT --to-destination 10.64.1.5:8080\nCOMMIT\n",
    );
    // From outside to 127.0.0.1: dropped on INPUT.
    assert_eq!(verdict(&rs, &from(CLIENT, "127.0.0.1:9999")), Verdict::Drop);
    // The node's own localhost node port connection is DNATed away.
    assert_eq!(verdict(&rs, &from_node("127.0.0.1:30080")), Verdict::Accept);
    // The node (source: its first address) to another localhost port: the
    // packet loops back through lo and meets filter INPUT.
    let d = trace(&rs, &from_node("127.0.0.1:9999"));
    assert_eq!(only(&d).verdict, Verdict::Drop);
    assert_eq!(
        only(&d).walk.last().map(|s| s.hook),
        Some(crate::model::BuiltinChain::Output)
    );
}

#[test]
fn node_sent_packets_to_local_addresses_come_back_through_input() {
    let rs = rules(
        "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -i lo -p tcp -m tcp --dport 30080 -j REJECT\nCOMMIT\n",
    );
    assert_eq!(
        verdict(&rs, &from_node("192.168.0.10:30080")),
        Verdict::Reject
    );
    assert_eq!(
        verdict(&rs, &from(CLIENT, "192.168.0.10:30080")),
        Verdict::Accept
    );
    assert_eq!(verdict(&rs, &from_node("10.64.1.5:30080")), Verdict::Accept);
}

#[test]
fn masquerade_only_when_marked() {
    let rs = recorded("clusterip-2-endpoints");
    // Outside the cluster CIDR: KUBE-SVC marks, KUBE-POSTROUTING masquerades.
    let outside = trace(&rs, &from("192.168.0.50", "10.96.14.20:8080"));
    // A pod: no mark, no masquerade.
    let pod = trace(&rs, &from("10.64.0.9", "10.96.14.20:8080"));
    for (d, masq) in [(&outside, true), (&pod, false)] {
        assert_eq!(d.outcomes.len(), 2, "{d}");
        for o in &d.outcomes {
            assert_eq!(o.verdict, Verdict::Accept);
            assert!(o.dnated());
            assert_eq!(o.masquerade, masq, "{o}");
        }
    }
}

#[test]
fn snat_sets_masquerade_and_the_snat_state() {
    let rs = rules(
        "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.64.0.0/16 -j SNAT --to-source 192.168.0.10\nCOMMIT\n",
    );
    assert!(only(&trace(&rs, &from(CLIENT, "10.64.1.1:80"))).masquerade);
    assert!(!only(&trace(&rs, &from(CLIENT, "10.65.1.1:80"))).masquerade);
}

// ---- errors --------------------------------------------------------------

#[test]
fn a_loop_is_an_error_naming_the_cycle() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n\
         -A PREROUTING -j A\n-A A -j B\n-A B -j A\nCOMMIT\n",
    );
    let err = Tracer::new(&rs, &node())
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::Loop);
    assert_eq!(err.message, "nat: chain loop A (line 6) -> B (line 7) -> A");
    assert_eq!(err.span.line, 7);
}

#[test]
fn a_goto_loop_is_an_error_too() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n\
         -A PREROUTING -g A\n-A A -g B\n-A B -g A\nCOMMIT\n",
    );
    let err = Tracer::new(&rs, &node())
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::Loop);
    assert_eq!(err.message, "nat: chain loop A (line 6) -> B (line 7) -> A");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
    for i in 0..100 {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    text.push_str("-A PREROUTING -j C0\n");
    for i in 0..99 {
        text.push_str(&format!("-A C{i} -j C{}\n", i + 1));
    }
    text.push_str("COMMIT\n");
    let rs = rules(&text);
    let err = Tracer::new(&rs, &node())
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::TooDeep);
}

#[test]
fn a_jump_to_an_undeclared_chain_is_an_error() {
    let mut rs = rules("*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n-A PREROUTING -j A\nCOMMIT\n");
    // The parser would refuse this; build it by hand.
    rs.tables[0].chains[0].rules[0].target = Some(Target::Jump(ChainName::new("NOPE")));
    let err = Tracer::new(&rs, &node())
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::UndeclaredChain);
    assert!(err.message.contains("NOPE"), "{}", err.message);
    // A node-sent packet needs a node address.
    let err = Tracer::new(&rs, &[])
        .trace(&from_node("10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::NoNodeAddress);
}

#[test]
fn exponential_branching_is_bounded() {
    // 40 independent coin flips, each into a chain that returns: 2^40 paths.
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:R - [0:0]\n-A R -j RETURN\n");
    for _ in 0..40 {
        text.push_str("-A PREROUTING -m statistic --mode random --probability 0.5 -j R\n");
    }
    text.push_str("COMMIT\n");
    let rs = rules(&text);
    let tracer = Tracer::new(&rs, &node());
    let err = tracer
        .clone()
        .with_limits(1000, u64::MAX)
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::TooManyPaths);
    let err = tracer
        .with_limits(usize::MAX, 5000)
        .trace(&from(CLIENT, "10.96.0.1:80"))
        .unwrap_err();
    assert_eq!(err.kind, TraceErrorKind::TooManyPaths);
}

// ---- -m recent -----------------------------------------------------------

#[test]
fn session_affinity_sticks_and_expires() {
    let rs = recorded("clusterip-session-affinity-timeout-600");
    let tracer = Tracer::new(&rs, &node());
    let p = from("10.64.3.3", "10.96.7.70:443");
    let first = tracer.trace(&p).unwrap();
    let dests: Vec<_> = first.accepted().into_keys().collect();
    assert_eq!(dests.len(), 2, "{first}");
    for o in &first.outcomes {
        // Within the timeout, every later connection goes where the first did.
        for age in [0, 600] {
            let again = tracer.trace_with(&p, &o.recent.aged(age)).unwrap();
            let acc = again.accepted();
            assert_eq!(acc.len(), 1, "after {age}s:\n{again}");
            assert_eq!(acc.get(&o.destination), Some(&Mass::one()));
        }
        // After it, the choice is random again.
        let later = tracer.trace_with(&p, &o.recent.aged(601)).unwrap();
        assert_eq!(later.accepted().len(), 2, "{later}");
    }
}

#[test]
fn recent_set_then_rcheck() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n\
         -A PREROUTING -m recent --rcheck --seconds 60 --name seen --mask 255.255.255.255 --rsource \
         -j DNAT --to-destination 10.64.1.1:80\n\
         -A PREROUTING -m recent --set --name seen --mask 255.255.255.255 --rsource \
         -j DNAT --to-destination 10.64.2.2:80\nCOMMIT\n",
    );
    let tracer = Tracer::new(&rs, &node());
    let p = from(CLIENT, "10.96.0.1:80");
    let first = tracer.trace(&p).unwrap().outcomes.remove(0);
    assert_eq!(first.destination, sa("10.64.2.2:80"));
    assert!(first
        .recent
        .entry("seen", CLIENT.parse::<IpAddr>().unwrap())
        .is_some());
    let second = tracer
        .trace_with(&p, &first.recent)
        .unwrap()
        .outcomes
        .remove(0);
    assert_eq!(second.destination, sa("10.64.1.1:80"));
    // Another client is not remembered.
    let other = tracer
        .trace_with(&from("198.51.100.1", "10.96.0.1:80"), &first.recent)
        .unwrap();
    assert_eq!(other.outcomes[0].destination, sa("10.64.2.2:80"));
}

// ---- recorded kube-proxy rule sets ---------------------------------------

#[test]
fn etp_local_nodeport_from_outside_reaches_only_local_endpoints_unmasqueraded() {
    let rs = recorded("nodeport-etp-local-2-local-1-remote");
    let d = trace(&rs, &from(CLIENT, "192.168.0.10:31080"));
    let s = d.summary();
    // Kubernetes: ETP Local keeps the client IP and only uses node-a's two
    // endpoints; 0.5 is exact in the kernel (2^30 / 2^31).
    let half = dec("0.5");
    assert_eq!(s.len(), 2, "{d}");
    assert_eq!(
        s.get(&(Verdict::Accept, sa("10.64.0.5:8080"), false)),
        Some(&half)
    );
    assert_eq!(
        s.get(&(Verdict::Accept, sa("10.64.0.77:8080"), false)),
        Some(&half)
    );
    assert_eq!(
        d.outcomes[0].to_string(),
        "nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-KKDGWRPDK6Z5NCHS > \
         KUBE-SVL-KKDGWRPDK6Z5NCHS > KUBE-SEP-4LXD63IHTXJHBTAZ > DNAT 10.64.0.5:8080 | accept  p=0.5"
    );
}

#[test]
fn etp_local_nodeport_from_the_node_uses_all_endpoints_masqueraded() {
    // Kubernetes: traffic from the node itself is not "external"; it may go
    // to any endpoint and is masqueraded.
    let rs = recorded("nodeport-etp-local-2-local-1-remote");
    let d = trace(&rs, &from_node("192.168.0.10:31080"));
    let acc = d.accepted();
    assert_eq!(acc.len(), 3, "{d}");
    assert!(d
        .outcomes
        .iter()
        .all(|o| o.masquerade && o.verdict == Verdict::Accept));
    assert!(acc.contains_key(&sa("10.64.1.28:8080")));
}

#[test]
fn etp_local_without_local_endpoints_drops_external_traffic() {
    // Recorded on node-b.
    let rs = recorded("nodeport-etp-local-no-local-endpoint");
    let node_b = ["192.168.0.11/24".parse().unwrap()];
    let d = Tracer::new(&rs, &node_b)
        .trace(&from(CLIENT, "192.168.0.11:30080"))
        .unwrap();
    let o = only(&d);
    assert_eq!(o.verdict, Verdict::Drop);
    // A dropped path shows the nat walk that led to the filter table: here
    // the node port's KUBE-EXT chain, which falls off its end without a DNAT.
    assert_eq!(
        o.to_string(),
        "nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-67NZLRHBNDSAWJRO (end, return) \
         | filter INPUT > KUBE-EXTERNAL-SERVICES > DROP  p=1"
    );
}

#[test]
fn service_without_endpoints_rejects_cluster_ip_traffic() {
    let rs = recorded("clusterip-0-endpoints");
    assert_eq!(
        verdict(&rs, &from("10.64.0.9", "10.96.0.50:80")),
        Verdict::Reject
    );
    assert_eq!(verdict(&rs, &from_node("10.96.0.50:80")), Verdict::Reject);
    assert_eq!(verdict(&rs, &from_node("10.96.0.50:81")), Verdict::Accept);
}

#[test]
fn ten_thousand_services_trace_in_one_linear_pass() {
    // 10k services with 4 ports each: 40k rules in nat KUBE-SERVICES.
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n");
    let mut body = String::from("-A PREROUTING -j KUBE-SERVICES\n");
    for i in 0..10_000u32 {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i);
        text.push_str(&format!(":KUBE-SVC-{i} - [0:0]\n:KUBE-SEP-{i} - [0:0]\n"));
        for port in [80, 443, 8080, 9090] {
            body.push_str(&format!(
                "-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment \"ns/svc{i}:p{port} cluster IP\" \
                 -m tcp --dport {port} -j KUBE-SVC-{i}\n"
            ));
        }
        body.push_str(&format!(
            "-A KUBE-SVC-{i} -j KUBE-SEP-{i}\n-A KUBE-SEP-{i} -p tcp -j DNAT --to-destination 10.64.{}.{}:8080\n",
            i / 250,
            i % 250
        ));
    }
    text.push_str(&body);
    text.push_str("COMMIT\n");
    let rs = rules(&text);
    // The last service's last port: every KUBE-SERVICES rule is evaluated
    // once, plus the jump from PREROUTING and one rule each in its SVC and
    // SEP chains. A budget of exactly that many evaluations is enough, one
    // fewer is not: the walk is one linear pass, deterministically (no
    // wall clock in unit tests; CI machines vary).
    // That is the plain scan; the index (the default) goes straight to
    // the one rule that can match: four evaluations in all.
    let packet = from(CLIENT, "10.96.39.15:9090");
    for (scan, evaluations) in [
        (crate::trace::Scan::Plain, 1 + 40_000 + 1 + 1),
        (crate::trace::Scan::default(), 1 + 1 + 1 + 1),
    ] {
        let tracer = Tracer::new(&rs, &node())
            .with_scan(scan)
            .with_limits(MAX_PATHS, evaluations);
        let d = tracer.trace(&packet).unwrap();
        assert_eq!(only(&d).destination, sa("10.64.39.249:8080"));
        let short = Tracer::new(&rs, &node())
            .with_scan(scan)
            .with_limits(MAX_PATHS, evaluations - 1);
        let e = short.trace(&packet).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::TooManyPaths, "{scan:?}: {e}");
    }
}

#[test]
fn hairpin_traffic_is_masqueraded_only_when_it_lands_on_its_sender() {
    let rs = recorded("clusterip-2-endpoints");
    let d = trace(&rs, &from("10.64.0.0", "10.96.14.20:8080"));
    let endpoints: Vec<_> = d.accepted().into_keys().collect();
    // Send from each endpoint in turn: only the path back to itself masquerades.
    for ep in &endpoints {
        let d = trace(&rs, &from(&ep.ip().to_string(), "10.96.14.20:8080"));
        for o in &d.outcomes {
            assert_eq!(o.masquerade, o.destination == *ep, "{o}");
        }
    }
}

#[test]
fn every_recorded_service_traces_cleanly() {
    use crate::model::{Match, TableName};
    let dir = kpconform_golden::recordings().join("kube-proxy-v1.30/outputs");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 44);
    let mut traced = 0;
    let zero = Mass::zero();
    for path in cases {
        let rs = rules(&std::fs::read_to_string(&path).unwrap());
        let Some(nat) = rs.table(TableName::Nat) else {
            continue;
        };
        let Some(services) = nat.chain_by_name("KUBE-SERVICES") else {
            continue;
        };
        let tracer = Tracer::new(&rs, &node());
        for rule in &services.rules {
            let (Some(d), Some(proto)) = (&rule.basic.destination, &rule.basic.protocol) else {
                continue;
            };
            let Some(port) = rule.matches.iter().find_map(|m| match m {
                Match::Ports { dport: Some(p), .. } => Some(p.value.first),
                _ => None,
            }) else {
                continue;
            };
            let to = SocketAddr::new(d.value.addr(), port);
            for src in [
                FlowSource::Ip("10.64.0.250".parse().unwrap()),
                FlowSource::Ip(CLIENT.parse().unwrap()),
                FlowSource::Node,
            ] {
                let p = Packet::new(src, to, proto.value);
                let dist = tracer
                    .trace(&p)
                    .unwrap_or_else(|e| panic!("{}: {p}: {e}", path.display()));
                assert_eq!(dist.total(), Mass::one(), "{}: {p}", path.display());
                // Outcomes are only accept/drop/reject with positive mass.
                assert!(dist.outcomes.iter().all(|o| o.probability > zero));
                traced += 1;
            }
        }
    }
    assert!(traced > 300, "only {traced} flows traced");
}

// ---- nfacct, route_localnet, walk rendering -------------------------------

#[test]
fn nfacct_only_counts_and_always_matches() {
    let p = from(CLIENT, "10.96.0.1:443");
    assert!(dnated(
        "-m nfacct --nfacct-name localhost_nps_accepted_pkts",
        &p
    ));
    assert!(dnated("-s 203.0.113.0/24 -m nfacct --nfacct-name x", &p));
    assert!(!dnated("-s 10.0.0.0/8 -m nfacct --nfacct-name x", &p));
    // Lax mode parses it as the same modelled match, not a never-matching
    // unknown one.
    let lax = parse(
        "*nat\n:PREROUTING ACCEPT [0:0]\n\
         -A PREROUTING -m nfacct --nfacct-name x -j DNAT --to-destination 10.64.1.5:80\nCOMMIT\n",
        Mode::Lax,
    )
    .unwrap()
    .rules;
    assert_eq!(only(&trace(&lax, &p)).destination, sa("10.64.1.5:80"));
}

#[test]
fn nfacct_on_the_invalid_drop_changes_no_outcome() {
    // kube-proxy v1.29+ counts what KUBE-FORWARD's INVALID rule drops.
    let path =
        kpconform_golden::recordings().join("kube-proxy-v1.30/outputs/nodeport-etp-cluster.rules");
    let text = std::fs::read_to_string(&path).unwrap();
    let plain = "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n";
    assert_eq!(text.matches(plain).count(), 1);
    let counted = text.replace(
        plain,
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\n",
    );
    let (before, after) = (rules(&text), rules(&counted));
    assert_ne!(before, after);
    for p in [
        from(CLIENT, "192.168.0.10:30080"),
        from("10.64.0.9", "10.96.12.34:80"),
        from(CLIENT, "10.64.0.218:8080"),
        from_node("192.168.0.10:30080"),
    ] {
        let (b, a) = (trace(&before, &p), trace(&after, &p));
        assert_eq!(b.summary(), a.summary(), "{p}");
        assert_eq!(b.to_string(), a.to_string(), "{p}");
    }
}

/// PREROUTING DNATs 127.0.0.1:30080 to a pod; nothing else.
const LOCALHOST_NODE_PORT: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
    -A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.64.1.5:8080\n\
    -A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.64.1.5:8080\n\
    COMMIT\n";

#[test]
fn without_route_localnet_loopback_destinations_from_the_network_are_martians() {
    let rs = rules(LOCALHOST_NODE_PORT);
    let nodes = node();
    let off = Tracer::new(&rs, &nodes).with_route_localnet(false);
    assert!(Tracer::new(&rs, &nodes).route_localnet(), "on by default");
    // Not DNATed: routing drops it after nat PREROUTING.
    let d = off.trace(&from(CLIENT, "127.0.0.1:9999")).unwrap();
    let o = only(&d);
    assert_eq!(
        (o.verdict, o.destination),
        (Verdict::Drop, sa("127.0.0.1:9999"))
    );
    assert_eq!(
        o.walk.last().map(|s| &s.action),
        Some(&Action::Martian(IpAddr::V4(Ipv4Addr::LOCALHOST)))
    );
    assert_eq!(
        o.to_string(),
        "routing > DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)  p=1"
    );
    assert_eq!(
        o.explain(None),
        [
            "routing:",
            "  DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)"
        ]
    );
    // DNATed in PREROUTING: routed to the pod, as the kernel routes on the
    // destination nat left.
    let d = off.trace(&from(CLIENT, "127.0.0.1:30080")).unwrap();
    assert_eq!(
        (only(&d).verdict, only(&d).destination),
        (Verdict::Accept, sa("10.64.1.5:8080"))
    );
    // Any other destination, and the node's own traffic (which comes back
    // in through lo), are not affected.
    let d = off.trace(&from(CLIENT, "192.168.0.10:9999")).unwrap();
    assert_eq!(only(&d).verdict, Verdict::Accept);
    let d = off.trace(&from_node("127.0.0.1:9999")).unwrap();
    assert_eq!(only(&d).verdict, Verdict::Accept);
    // With route_localnet, the un-DNATed packet is delivered locally.
    assert_eq!(
        verdict(&rs, &from(CLIENT, "127.0.0.1:9999")),
        Verdict::Accept
    );
}

#[test]
fn a_rejected_path_shows_the_whole_nat_walk_and_where_chains_ended() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n:G - [0:0]\n\
         -A PREROUTING -j A\n\
         -A A -j B\n\
         -A A -j C\n\
         -A B -j MARK --set-xmark 0x1/0x1\n\
         -A PREROUTING -d 10.96.0.2/32 -g G\n\
         COMMIT\n\
         *filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -d 10.96.0.1/32 -j REJECT\nCOMMIT\n",
    );
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    assert_eq!(o.verdict, Verdict::Reject);
    assert_eq!(
        o.path(),
        "nat PREROUTING > A > (B > MARK=0x1) > C (end, return) | filter FORWARD > REJECT"
    );
    // An accepted path keeps the compact form: only chains that did
    // something, side trips in parentheses.
    let o = trace(&rs, &from(CLIENT, "10.96.0.3:80")).outcomes.remove(0);
    assert_eq!(o.path(), "nat PREROUTING > (A > (B > MARK=0x1)) | accept");
    // Every fall-off is a step of the walk, at the depth of its chain.
    let ends: Vec<(String, usize)> = o
        .walk
        .iter()
        .filter(|s| s.action == Action::FallOff)
        .map(|s| (s.chain.to_string(), s.depth))
        .collect();
    assert_eq!(
        ends,
        [
            ("B".to_string(), 2),
            ("C".to_string(), 2),
            ("A".to_string(), 1)
        ]
    );
    assert_eq!(
        o.explain(None),
        [
            "nat PREROUTING:",
            "  nat PREROUTING line 7: -j A",
            "  nat A line 8: -j B",
            "  nat B line 10: MARK=0x1",
            "  nat B (end, return)",
            "  nat A line 9: -j C",
            "  nat C (end, return)",
            "  nat A (end, return)",
        ]
    );
}

#[test]
fn a_goto_chain_that_ends_returns_to_the_callers_caller_in_the_walk() {
    let rs = rules(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:G - [0:0]\n\
         -A PREROUTING -j A\n\
         -A A -g G\n\
         COMMIT\n\
         *filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
    );
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(
        o.path(),
        "nat PREROUTING > A > G (end, return) | filter FORWARD > policy DROP"
    );
}

#[test]
fn a_continued_command_is_explained_whole() {
    let text = "iptables -t filter -N KUBE-X\n\
                iptables -t nat -N KUBE-SVC-X\n\
                iptables -t nat -A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 \\\n    \
                -m comment --comment \"svc x\" \\\n    \
                -j KUBE-SVC-X\n\
                iptables -t nat -A KUBE-SVC-X -j DNAT --to-destination 10.64.0.1:80\n";
    let rs = rules(text);
    let source = crate::SourceFile::new("cont.sh", text);
    let o = trace(&rs, &from(CLIENT, "10.96.0.1:80")).outcomes.remove(0);
    let jump = &o.walk[0];
    assert_eq!(
        (jump.line, source.line_col(jump.span.end as usize - 1).0),
        (3, 5)
    );
    let pad = " ".repeat("  nat PREROUTING lines 3-5: ".len());
    assert_eq!(
        o.explain(Some(&source)),
        [
            "nat PREROUTING:".to_string(),
            "  nat PREROUTING lines 3-5: iptables -t nat -A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 \\".to_string(),
            format!("{pad}-m comment --comment \"svc x\" \\"),
            format!("{pad}-j KUBE-SVC-X"),
            "  nat KUBE-SVC-X line 6: iptables -t nat -A KUBE-SVC-X -j DNAT --to-destination 10.64.0.1:80".to_string(),
        ]
    );
}

#[test]
fn statistic_branches_are_noted_on_their_rule() {
    let rs = rules(THREE_ENDPOINTS);
    let d = trace(&rs, &from(CLIENT, "10.96.0.1:80"));
    let last = d.outcomes.last().unwrap();
    let each = last.explain(None);
    assert_eq!(
        each.iter()
            .filter(|l| l.contains("[statistic not taken, p="))
            .count(),
        2,
        "{each:#?}"
    );
    let brief = last.explain_brief(None);
    assert!(
        brief
            .iter()
            .any(|l| l.ends_with(": not taken (2 statistic rule(s))")),
        "{brief:#?}"
    );
    let first = d.outcomes[0].explain(None);
    assert!(
        first
            .iter()
            .any(|l| l.contains("[statistic taken, p=0.333333333489]")),
        "{first:#?}"
    );
}
