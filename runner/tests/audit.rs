//! `kpconform audit`: every node real kube-proxy set up is right for its
//! cluster state; a broken copy is not, and the report says where.

use std::path::Path;

use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;

use crate::util::{kpconform, recordings, recordings_ipv6, Output, TempDir};

/// What the kubectl file and the flags say about where pods live.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pods {
    /// `--cluster-cidr` as the recording's kube-proxy had it.
    Flag,
    /// No flag, but Node objects with the recordings' podCIDRs (pods
    /// 10.64.0.0/16: node-a 10.64.0.0/24, node-b 10.64.1.0/24, node-c
    /// 10.64.2.0/24).
    Nodes,
    /// Nothing: no flag, and no podCIDR in the objects.
    Nothing,
}

/// Node objects with the recordings' pod CIDRs, for the nodes `objects`
/// does not already hold.
fn nodes_with_pod_cidrs(objects: &str) -> String {
    let mut out = String::new();
    for (name, cidr) in [
        ("node-a", "10.64.0.0/24"),
        ("node-b", "10.64.1.0/24"),
        ("node-c", "10.64.2.0/24"),
    ] {
        if objects.contains("kind: Node\n  metadata:")
            && objects.contains(&format!("    name: {name}\n"))
        {
            continue;
        }
        out.push_str(&format!(
            "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: {name}\n  spec:\n    podCIDR: {cidr}\n    podCIDRs:\n    - {cidr}\n"
        ));
    }
    out
}

/// The audit arguments that describe a recorded case's node and settings,
/// and its objects as one kubectl List file.
fn case_args(case: &str, dir: &Path) -> Vec<String> {
    case_args_with(case, dir, Pods::Flag)
}

/// [`case_args`], with `pods` saying where pods live.
fn case_args_with(case: &str, dir: &Path, pods: Pods) -> Vec<String> {
    case_args_in(&recordings(), case, dir, pods)
}

/// [`case_args_with`] for a case of the recordings under `root`. The
/// node gets all its addresses, `--cluster-cidr` the input's CIDRs (both
/// families' in the comma-separated form).
fn case_args_in(root: &Path, case: &str, dir: &Path, pods: Pods) -> Vec<String> {
    let path = root.join(format!("inputs/{case}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let input =
        GeneratorInput::from_yaml(&SourceFile::new(path.display().to_string(), text.clone()))
            .unwrap();
    let mut objects = text[text.find("objects:\n").unwrap() + "objects:\n".len()..].to_string();
    match pods {
        Pods::Flag => {}
        Pods::Nodes => objects.push_str(&nodes_with_pod_cidrs(&objects)),
        Pods::Nothing => {
            // Drop `podCIDR: X` and `podCIDRs:` with its list items (at
            // the key's indentation).
            let mut kept = String::new();
            let mut list_indent = None;
            for l in objects.lines() {
                let indent = l.len() - l.trim_start().len();
                if list_indent == Some(indent) && l.trim_start().starts_with("- ") {
                    continue;
                }
                list_indent = (l.trim_start() == "podCIDRs:").then_some(indent);
                if !l.contains("podCIDR") {
                    kept.push_str(l);
                    kept.push('\n');
                }
            }
            objects = kept;
        }
    }
    let kubectl = dir.join(format!("{case}.yaml"));
    std::fs::write(
        &kubectl,
        format!("apiVersion: v1\nkind: List\nitems:\n{objects}"),
    )
    .unwrap();
    let n = &input.node;
    let addresses: Vec<String> = n.addresses.iter().map(|a| a.to_string()).collect();
    let mut args = vec![
        "audit".to_string(),
        "--kubectl".into(),
        kubectl.display().to_string(),
        "--node".into(),
        format!("{}={}", n.name, addresses.join(",")),
        "--masquerade-bit".into(),
        n.masquerade_bit.to_string(),
    ];
    if !n.cluster_cidrs.is_empty() && pods == Pods::Flag {
        let list: Vec<String> = n.cluster_cidrs.iter().map(|c| c.to_string()).collect();
        args.extend(["--cluster-cidr".into(), list.join(",")]);
    }
    if n.masquerade_all {
        args.push("--masquerade-all".into());
    }
    if !n.node_port_addresses.is_empty() {
        let list: Vec<String> = n
            .node_port_addresses
            .iter()
            .map(|c| c.to_string())
            .collect();
        args.extend(["--node-port-addresses".into(), list.join(",")]);
    }
    args
}

/// Every recorded case's name, sorted.
fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(recordings().join("inputs"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 44);
    cases
}

fn recorded_rules(case: &str) -> String {
    std::fs::read_to_string(recordings().join(format!("outputs/{case}.rules"))).unwrap()
}

/// `kpconform audit ARGS --rules -` with `rules` on standard input.
fn audit(args: &[String], rules: &str) -> Output {
    let mut args = args.to_vec();
    args.extend(["--rules".into(), "-".into()]);
    kpconform(&args, Some(rules))
}

#[test]
fn every_recorded_node_is_right_for_its_cluster_state() {
    let dir = TempDir::new("audit-all");
    for case in cases() {
        let rules = recorded_rules(&case);
        let out = audit(&case_args(&case, dir.path()), &rules);
        let text = &out.stdout;
        assert_eq!(out.code, 0, "{case}:\n{text}{}", out.stderr);
        assert!(text.contains(", 0 not,"), "{case}: {text}");
    }
    drop(dir);
}

#[test]
fn a_node_that_rejects_instead_of_dropping_is_reported() {
    let dir = TempDir::new("audit-broken");
    // ETP Local with no local endpoint must drop external traffic, not reject it.
    let case = "extra-loadbalancer-etp-local-no-local-endpoint";
    let rules =
        std::fs::read_to_string(recordings().join(format!("outputs/{case}.rules"))).unwrap();
    assert!(rules.contains("has no local endpoints"));
    let broken: String = rules
        .lines()
        .map(|l| {
            if l.contains("has no local endpoints") {
                l.replace("-j DROP", "-j REJECT --reject-with icmp-port-unreachable")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    let out = audit(&case_args(case, dir.path()), &broken);
    drop(dir);
    let text = &out.stdout;
    assert_eq!(out.code, 1, "{text}");
    assert!(
        text.contains("reject") && text.contains("oracle's reasoning"),
        "{text}"
    );
    assert!(text.contains("FAILED:"), "{text}");
}

#[test]
fn the_report_is_the_same_whatever_the_number_of_threads() {
    let dir = TempDir::new("audit-jobs");
    // Rejects instead of drops: several probes fail, each with its report,
    // which must come in probe order however the work is shared.
    let case = "extra-loadbalancer-etp-local-no-local-endpoint";
    let broken: String = recorded_rules(case)
        .lines()
        .map(|l| l.replace("-j DROP", "-j REJECT --reject-with icmp-port-unreachable") + "\n")
        .collect();
    let args = case_args(case, dir.path());
    let with = |jobs: &str| {
        let mut args = args.clone();
        args.extend(["--jobs".into(), jobs.into(), "--verbose".into()]);
        audit(&args, &broken)
    };
    let one = with("1");
    assert_eq!(one.code, 1, "{}", one.stdout);
    assert!(one.stdout.matches("FAIL ").count() > 1, "{}", one.stdout);
    for jobs in ["2", "7"] {
        let many = with(jobs);
        assert_eq!(many.code, one.code);
        assert_eq!(many.stdout, one.stdout, "--jobs {jobs}");
        assert_eq!(many.stderr, one.stderr, "--jobs {jobs}");
    }
    drop(dir);
}

#[test]
fn the_pod_network_comes_from_the_nodes_pod_cidrs() {
    let dir = TempDir::new("audit-nodes");
    for case in cases() {
        if case == "clusterip-no-cluster-cidr" {
            // That kube-proxy ran without --cluster-cidr: the Nodes' podCIDRs
            // are not its pod network, and the flag-less audit is tested below.
            continue;
        }
        let rules = recorded_rules(&case);
        let out = audit(&case_args_with(&case, dir.path(), Pods::Nodes), &rules);
        let text = &out.stdout;
        assert_eq!(out.code, 0, "{case}:\n{text}{}", out.stderr);
        assert!(
            text.starts_with("pod network 10.64.0.0/16, from the Nodes' spec.podCIDRs (10.64."),
            "{case}: {text}"
        );
        assert!(!out.stderr.contains("warning"), "{case}: {}", out.stderr);
        // Exactly the audit that --cluster-cidr gives: every probe judged.
        let flagged = audit(&case_args(&case, dir.path()), &rules);
        assert_eq!(text.lines().last(), flagged.stdout.lines().last(), "{case}");
        assert!(!text.contains("left out"), "{case}: {text}");
    }
    drop(dir);
}

#[test]
fn without_pod_information_the_audit_warns_and_judges_only_what_it_can() {
    let dir = TempDir::new("audit-no-pods");
    let mut left_out = 0;
    for case in cases() {
        let rules = recorded_rules(&case);
        let out = audit(&case_args_with(&case, dir.path(), Pods::Nothing), &rules);
        let text = &out.stdout;
        assert_eq!(out.code, 0, "{case}:\n{text}{}", out.stderr);
        assert!(
            out.stderr
                .contains("warning: nothing says where pods live (no --cluster-cidr, and no Node with spec.podCIDRs)"),
            "{case}: {}",
            out.stderr
        );
        assert!(text.contains(", 0 not,"), "{case}: {text}");
        assert!(
            text.contains(" left out for want of the pod network"),
            "{case}: {text}"
        );
        if !text.contains(", 0 left out") {
            left_out += 1;
        }
    }
    // Probes from endpoints (pods, perhaps) to Local-policy node ports and
    // LB IPs depend on the pod network.
    assert!(left_out > 0);
    drop(dir);
}

#[test]
fn without_pod_information_a_broken_node_still_fails() {
    let dir = TempDir::new("audit-no-pods-broken");
    let case = "extra-loadbalancer-etp-local-no-local-endpoint";
    let broken = recorded_rules(case).replace(
        "has no local endpoints\" -m tcp --dport 443 -j DROP",
        "has no local endpoints\" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable",
    );
    assert!(broken.contains("icmp-port-unreachable"), "{broken}");
    let out = audit(&case_args_with(case, dir.path(), Pods::Nothing), &broken);
    drop(dir);
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(out.stdout.contains("FAILED:"), "{}", out.stdout);
}

#[test]
fn verbose_prints_a_table_per_service_port() {
    let dir = TempDir::new("audit-verbose");
    let case = "nodeport-etp-local-local-endpoint";
    let mut args = case_args(case, dir.path());
    args.push("--verbose".into());
    let out = audit(&args, &recorded_rules(case));
    drop(dir);
    let text = &out.stdout;
    assert_eq!(out.code, 0, "{text}{}", out.stderr);
    let header = text.lines().next().unwrap();
    for column in ["SERVICE", "PORT", "ADDRESSES PROBED", "RESULT"] {
        assert!(header.contains(column), "{text}");
    }
    let row = text
        .lines()
        .find(|l| l.starts_with("shop/web "))
        .unwrap_or_else(|| panic!("no shop/web row:\n{text}"));
    for cell in [
        "http 80/tcp, node port 30080",
        "10.96.12.34:80/tcp",
        "192.168.0.10:30080/tcp",
        "127.0.0.1:30080/tcp",
        "ok (",
    ] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    assert!(text.lines().last().unwrap().starts_with("ok: "), "{text}");
    // Without --verbose, no table.
    let dir = TempDir::new("audit-quiet");
    let out = audit(&case_args(case, dir.path()), &recorded_rules(case));
    drop(dir);
    assert!(!out.stdout.contains("ADDRESSES PROBED"), "{}", out.stdout);
}

/// Every IPv6 and dual-stack recorded case's name, sorted.
fn ipv6_cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(recordings_ipv6().join("inputs"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 37);
    cases
}

fn recorded_ipv6_rules(case: &str) -> String {
    std::fs::read_to_string(recordings_ipv6().join(format!("outputs/{case}.rules"))).unwrap()
}

fn ipv6_case_args(case: &str, dir: &Path) -> Vec<String> {
    case_args_in(&recordings_ipv6(), case, dir, Pods::Flag)
}

#[test]
fn every_recorded_ipv6_and_dual_stack_node_is_right_for_its_cluster_state() {
    let dir = TempDir::new("audit-ipv6-all");
    let mut ipv6 = 0;
    for case in ipv6_cases() {
        let rules = recorded_ipv6_rules(&case);
        ipv6 += usize::from(rules.contains("icmp6") || rules.contains("/128"));
        let out = audit(&ipv6_case_args(&case, dir.path()), &rules);
        let text = &out.stdout;
        assert_eq!(out.code, 0, "{case}:\n{text}{}", out.stderr);
        assert!(text.contains(", 0 not,"), "{case}: {text}");
        assert!(
            text.lines().last().unwrap().starts_with("ok: "),
            "{case}: {text}"
        );
    }
    assert!(ipv6 >= 30, "only {ipv6} ip6tables-save dumps");
    drop(dir);
}

#[test]
fn a_broken_ipv6_node_is_reported() {
    let dir = TempDir::new("audit-ipv6-broken");
    // No endpoints: the REJECT turned into an ACCEPT.
    let case = "ipv6-clusterip-0-endpoints";
    let rules = recorded_ipv6_rules(case);
    let broken = rules.replace(
        "-j REJECT --reject-with icmp6-port-unreachable",
        "-j ACCEPT",
    );
    assert_ne!(broken, rules);
    let out = audit(&ipv6_case_args(case, dir.path()), &broken);
    let text = &out.stdout;
    assert_eq!(out.code, 1, "{text}{}", out.stderr);
    assert!(
        text.contains("FAIL oracle and trace disagree for"),
        "{text}"
    );
    assert!(text.contains("[fd00:10:96::50]:80"), "{text}");
    assert!(text.contains("FAILED:"), "{text}");
    // A DNAT to the wrong port.
    let case = "ipv6-clusterip-1-endpoint";
    let rules = recorded_ipv6_rules(case);
    let broken = rules.replace(
        "--to-destination [fd00:10:64:b::77]:8080",
        "--to-destination [fd00:10:64:b::77]:8081",
    );
    assert_ne!(broken, rules);
    let out = audit(&ipv6_case_args(case, dir.path()), &broken);
    drop(dir);
    let text = &out.stdout;
    assert_eq!(out.code, 1, "{text}{}", out.stderr);
    assert!(text.contains("[fd00:10:64:b::77]:8081"), "{text}");
    assert!(text.contains("FAILED:"), "{text}");
}

/// The audit arguments of dual-stack `case` (its IPv4 input) with both
/// recorded dumps: the IPv4 one from a file, `ipv6` on standard input.
fn dual_stack(case: &str, dir: &Path, ipv6: &str) -> Output {
    let mut args = ipv6_case_args(case, dir);
    let v4 = dir.join(format!("{case}.rules"));
    std::fs::write(&v4, recorded_ipv6_rules(case)).unwrap();
    args.extend(["--rules".into(), v4.display().to_string()]);
    audit(&args, ipv6)
}

#[test]
fn a_dual_stack_node_is_audited_with_both_dumps() {
    let dir = TempDir::new("audit-dual-stack");
    for case in [
        "dualstack-clusterip",
        "dualstack-nodeport-etp-local",
        "dualstack-loadbalancer-source-range-contains-node-ip",
        "dualstack-nodeport-nodeportaddresses",
        "dualstack-single-stack-ipv4-service",
    ] {
        let out = dual_stack(
            case,
            dir.path(),
            &recorded_ipv6_rules(&format!("{case}-ipv6")),
        );
        let text = &out.stdout;
        assert_eq!(out.code, 0, "{case}:\n{text}{}", out.stderr);
        assert!(text.contains("IPv4 rules ("), "{case}: {text}");
        assert!(text.contains("IPv6 rules (<stdin>):"), "{case}: {text}");
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("ok: IPv4 and IPv6 rules, "),
            "{case}: {text}"
        );
        assert!(last.contains(", 0 not,"), "{case}: {text}");
        // The combined count is the sum of both families'.
        let count = |line: &str| -> usize {
            let rest = line.split_once(": ").unwrap().1;
            let rest = rest.trim_start_matches("IPv4 and IPv6 rules, ");
            rest.split(' ').next().unwrap().parse().unwrap()
        };
        let per_family: usize = text
            .lines()
            .filter(|l| l.starts_with("IPv4: ") || l.starts_with("IPv6: "))
            .map(count)
            .sum();
        assert_eq!(per_family, count(last), "{case}: {text}");
    }
    // The IPv6 dump broken: the dual-stack audit fails on it alone.
    let case = "dualstack-nodeport-etp-local";
    let broken = recorded_ipv6_rules(&format!("{case}-ipv6"))
        .replace("[fd00:10:64:a::77]:8080", "[fd00:10:64:a::77]:9090");
    let out = dual_stack(case, dir.path(), &broken);
    let text = &out.stdout;
    assert_eq!(out.code, 1, "{text}{}", out.stderr);
    assert!(text.contains("[fd00:10:64:a::77]:9090"), "{text}");
    assert!(
        text.contains("IPv4: ") && text.contains(" 0 not,"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("FAILED: IPv4 and IPv6 rules, "),
        "{text}"
    );
    // Two dumps of one family are refused.
    let out = dual_stack(case, dir.path(), &recorded_ipv6_rules(case));
    drop(dir);
    assert_eq!(out.code, 2, "{}", out.text());
    assert!(out.stderr.contains("are both IPv4 rules"), "{}", out.stderr);
}
