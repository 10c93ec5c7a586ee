//! How `kpconform trace` and the failure explanations of `check` show a
//! packet's walk (issue #9): every rule line labelled with its table and
//! chain, the nat walk in the header of a dropped or rejected path, the end
//! of a user chain the packet fell off, a `\`-continued command whole; and
//! two pieces of kernel behaviour the walk must get right, `-m nfacct` and
//! martian destinations without route_localnet.

use std::path::PathBuf;

use crate::util::{assert_exit, kpconform, recordings, root, TempDir};

fn recording(case: &str) -> PathBuf {
    recordings().join("outputs").join(format!("{case}.rules"))
}

fn read_recording(case: &str) -> String {
    std::fs::read_to_string(recording(case)).unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn trace(rules: &str, stdin: Option<&str>, node_ip: &str, from: &str, to: &str) -> String {
    trace_with(&[], rules, stdin, node_ip, from, to)
}

fn trace_with(
    flags: &[&str],
    rules: &str,
    stdin: Option<&str>,
    node_ip: &str,
    from: &str,
    to: &str,
) -> String {
    let mut args = vec![
        "trace",
        "--rules",
        rules,
        "--node-ip",
        node_ip,
        "--from",
        from,
        "--to",
        to,
    ];
    args.extend_from_slice(flags);
    let out = kpconform(&args, stdin);
    assert_exit!(out, 0);
    out.stdout
}

#[test]
fn a_dropped_path_shows_its_nat_walk_labels_and_chain_ends() {
    let r = recording("nodeport-etp-local-no-local-endpoint");
    let t = trace(
        r.to_str().unwrap(),
        None,
        "192.168.0.11",
        "203.0.113.7",
        "192.168.0.11:30080/tcp",
    );
    for needle in [
        // The header: the nat walk that led to the filter DROP.
        "\npath 1:  nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-67NZLRHBNDSAWJRO (end, return) \
         | filter INPUT > KUBE-EXTERNAL-SERVICES > DROP  p=1\n",
        // Rule lines labelled with table and chain, under their hook.
        "\n  nat PREROUTING:\n    nat PREROUTING line 51: -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "\n    nat KUBE-NODEPORTS line 58: -A KUBE-NODEPORTS -p tcp ",
        // The chains the packet fell off, innermost first.
        "\n    nat KUBE-EXT-67NZLRHBNDSAWJRO (end, return)\n    nat KUBE-NODEPORTS (end, return)\n    nat KUBE-SERVICES (end, return)\n",
        "\n  filter INPUT:\n    filter INPUT line 20: -A INPUT -j KUBE-FIREWALL\n    filter KUBE-FIREWALL (end, return)\n",
        "\n    filter KUBE-EXTERNAL-SERVICES line 31: -A KUBE-EXTERNAL-SERVICES -p tcp ",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
    // Deterministic.
    let again = trace(
        r.to_str().unwrap(),
        None,
        "192.168.0.11",
        "203.0.113.7",
        "192.168.0.11:30080/tcp",
    );
    assert_eq!(t, again);
}

#[test]
fn an_accepted_path_keeps_its_compact_header_and_labels_statistic_rules() {
    let r = recording("nodeport-etp-local-2-local-1-remote");
    let t = trace_with(
        &["--full"],
        r.to_str().unwrap(),
        None,
        "192.168.0.10",
        "203.0.113.7",
        "192.168.0.10:31080/tcp",
    );
    for needle in [
        "\npath 2:  nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-KKDGWRPDK6Z5NCHS > \
         KUBE-SVL-KKDGWRPDK6Z5NCHS > KUBE-SEP-LHDNCNAPGHTVXN4B > DNAT 10.64.0.77:8080 | accept  p=0.5\n",
        "    nat KUBE-SVL-KKDGWRPDK6Z5NCHS line 76: -A KUBE-SVL-KKDGWRPDK6Z5NCHS -m comment --comment \
         \"default/api:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.50000000000 \
         -j KUBE-SEP-4LXD63IHTXJHBTAZ  [statistic not taken, p=0.5]\n",
        "    nat KUBE-SEP-LHDNCNAPGHTVXN4B line 67: -A KUBE-SEP-LHDNCNAPGHTVXN4B ",
        "\n  nat POSTROUTING:\n    nat POSTROUTING line 54: ",
        "    nat KUBE-POSTROUTING line 61: -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

/// Without `--full`, a run of statistic rules a path fell through is one
/// line: path i of an n-endpoint service is a few lines, not i + a few.
#[test]
fn statistic_rules_not_taken_are_one_line_unless_full() {
    let r = recording("scale-1-service-200-endpoints");
    let args = (
        r.to_str().unwrap(),
        None,
        "192.168.0.10",
        "10.64.0.9",
        "10.96.60.200:80/tcp",
    );
    let brief = trace(args.0, args.1, args.2, args.3, args.4);
    let full = trace_with(&["--full"], args.0, args.1, args.2, args.3, args.4);
    let not_taken = |t: &str| t.matches("[statistic not taken, p=").count();
    assert_eq!(not_taken(&brief), 0, "{brief}");
    // Paths 2..=200 fell through 1..=199 rules.
    assert_eq!(not_taken(&full), (1..200).sum::<usize>());
    assert!(
        brief.contains(": not taken (199 statistic rule(s))\n"),
        "{brief}"
    );
    // The brief output is linear in the endpoints: a bounded number of
    // lines per path.
    let paths = brief.matches("\npath ").count();
    assert_eq!(paths, 200);
    assert!(
        brief.lines().count() < 30 * paths,
        "{}",
        brief.lines().count()
    );
    assert!(full.lines().count() > 100 * paths);
    // Both agree on the paths and the summary.
    let headers = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("path ") || l.starts_with("  ") && l.contains("accept "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(headers(&brief), headers(&full));
}

#[test]
fn a_continued_command_is_shown_whole() {
    let dir = TempDir::new("walks");
    let path = dir.path().join("rules.sh");
    std::fs::write(
        &path,
        "iptables -t filter -N KUBE-X\n\
         iptables -t nat -N KUBE-SVC-X\n\
         iptables -t nat -A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 \\\n    \
         -m comment --comment \"svc x\" \\\n    \
         -j KUBE-SVC-X\n\
         iptables -t nat -A KUBE-SVC-X -j DNAT --to-destination 10.64.0.1:80\n",
    )
    .unwrap();
    let t = trace(
        path.to_str().unwrap(),
        None,
        "192.168.0.10",
        "203.0.113.7",
        "10.96.0.1:80/tcp",
    );
    let head = "    nat PREROUTING lines 3-5: ";
    let pad = " ".repeat(head.len());
    let expected = format!(
        "{head}iptables -t nat -A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 \\\n\
         {pad}-m comment --comment \"svc x\" \\\n\
         {pad}-j KUBE-SVC-X\n    \
         nat KUBE-SVC-X line 6: iptables -t nat -A KUBE-SVC-X -j DNAT --to-destination 10.64.0.1:80\n"
    );
    assert!(t.contains(&expected), "missing {expected:?} in:\n{t}");
}

/// The recording with kube-proxy v1.29+'s nfacct counter on KUBE-FORWARD's
/// INVALID drop (edited in memory; recordings are never written).
fn with_nfacct(rules: &str) -> String {
    let plain = "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n";
    assert_eq!(rules.matches(plain).count(), 1, "{rules}");
    rules.replace(
        plain,
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\n",
    )
}

#[test]
fn nfacct_parses_strictly_and_changes_no_trace_or_check() {
    let text = read_recording("nodeport-etp-cluster");
    let edited = with_nfacct(&text);
    for (from, to) in [
        ("203.0.113.7", "192.168.0.10:30080/tcp"),
        ("10.64.0.9", "10.96.12.34:80/tcp"),
        ("node", "192.168.0.10:30080/tcp"),
    ] {
        let before = trace("-", Some(&text), "192.168.0.10", from, to);
        let after = trace("-", Some(&edited), "192.168.0.10", from, to);
        assert_eq!(before, after, "{from} -> {to}");
    }
    let scenario = root().join("golden/scenarios/nodeport/etp-cluster.yaml");
    let out = kpconform(
        &[
            "check",
            "--scenario",
            scenario.to_str().unwrap(),
            "--node",
            "node-a",
            "--rules",
            "-",
        ],
        Some(&edited),
    );
    assert_exit!(out, 0);
    let out = kpconform(&["lint", "--rules", "-"], Some(&edited));
    assert_exit!(out, 0);
}

/// The golden scenario for nodePortAddresses [192.168.0.0/24], with one more
/// flow: from the network to 127.0.0.1's node port, expecting `verdict`.
fn one_cidr_with_localhost_flow(dir: &TempDir, verdict: &str) -> PathBuf {
    let golden = root().join("golden/scenarios/nodeport/nodeport-addresses-one-cidr.yaml");
    let mut text = std::fs::read_to_string(golden).unwrap();
    assert!(text.ends_with('\n'));
    text.push_str(&format!(
        "  - name: localhost node port from the network\n    \
         node: node-a\n    \
         from: 203.0.113.7\n    \
         to: 127.0.0.1:30080/tcp\n    \
         expect:\n      \
         verdict: {verdict}\n"
    ));
    let path = dir.path().join(format!("one-cidr-{verdict}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn without_route_localnet_a_localhost_node_port_from_the_network_is_dropped() {
    let dir = TempDir::new("martian");
    let rules = recording("nodeport-nodeportaddresses-one-cidr");
    let check = |scenario: &PathBuf| {
        kpconform(
            &[
                "check",
                "--scenario",
                scenario.to_str().unwrap(),
                "--node",
                "node-a",
                "--rules",
                rules.to_str().unwrap(),
            ],
            None,
        )
    };
    // kube-proxy leaves route_localnet off: routing drops the packet.
    let out = check(&one_cidr_with_localhost_flow(&dir, "drop"));
    assert_exit!(out, 0);
    let out = check(&one_cidr_with_localhost_flow(&dir, "accept"));
    assert_exit!(out, 1);
    let t = out.text();
    for needle in [
        "FAIL \"localhost node port from the network\" on node-a",
        "        nat PREROUTING > KUBE-SERVICES (end, return) | routing > DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)\n",
        "        routing:\n          DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)\n",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }

    // With every local address a node port address, kube-proxy turns
    // route_localnet on and the node port DNATs the same packet.
    let t = trace(
        recording("nodeport-etp-cluster").to_str().unwrap(),
        None,
        "192.168.0.10",
        "203.0.113.7",
        "127.0.0.1:30080/tcp",
    );
    assert!(t.contains("> DNAT 10.64."), "{t}");
    assert!(!t.contains("martian"), "{t}");
}
