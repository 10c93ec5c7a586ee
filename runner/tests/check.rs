//! `kpconform check`, `trace`, `lint` and `input` driven as a user would:
//! real kube-proxy recordings pass, broken copies of them (edited in memory
//! and fed on stdin, never written over a recording) fail with the right
//! explanation, and bad input is an error with a position, exit 2.

use std::path::PathBuf;

use crate::util::{kpconform, recordings, root, Output, TempDir};

fn recording(case: &str) -> PathBuf {
    recordings().join("outputs").join(format!("{case}.rules"))
}

fn read_recording(case: &str) -> String {
    std::fs::read_to_string(recording(case)).unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn scenario(id: &str) -> PathBuf {
    root().join("golden/scenarios").join(format!("{id}.yaml"))
}

/// `check` of scenario `id` on `node` against rules given on stdin.
fn check_stdin(id: &str, node: &str, rules: &str) -> Output {
    let s = scenario(id);
    kpconform(
        &[
            "check",
            "--scenario",
            s.to_str().unwrap(),
            "--node",
            node,
            "--rules",
            "-",
        ],
        Some(rules),
    )
}

/// Replaces the single line containing all of `needles` with `with` (None deletes it).
fn edit_line(rules: &str, needles: &[&str], with: Option<&str>) -> String {
    let hits: Vec<usize> = rules
        .lines()
        .enumerate()
        .filter(|(_, l)| needles.iter().all(|n| l.contains(n)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{needles:?} should pick exactly one line, got {hits:?}"
    );
    let mut out = String::new();
    for (i, l) in rules.lines().enumerate() {
        if i == hits[0] {
            if let Some(w) = with {
                out.push_str(w);
                out.push('\n');
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn real_kube_proxy_output_passes() {
    for (id, node, case) in [
        (
            "clusterip/three-endpoints",
            "node-a",
            "clusterip-3-endpoints",
        ),
        (
            "nodeport/etp-local-two-local-one-remote",
            "node-a",
            "nodeport-etp-local-2-local-1-remote",
        ),
        (
            "nodeport/etp-local-no-local-endpoint",
            "node-b",
            "nodeport-etp-local-no-local-endpoint",
        ),
        (
            "loadbalancer/source-ranges",
            "node-a",
            "loadbalancer-source-ranges",
        ),
    ] {
        let s = scenario(id);
        let r = recording(case);
        let out = kpconform(
            &[
                "check",
                "--scenario",
                s.to_str().unwrap(),
                "--node",
                node,
                "--rules",
                r.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(out.code, 0, "{id}: {}", out.text());
        assert!(out.text().contains("ok: "), "{}", out.text());
    }
}

#[test]
fn equal_probabilities_fail_the_flow_and_the_invariant() {
    // Every endpoint rule given 1/3 instead of 1/3, 1/2, rest.
    let rules = read_recording("clusterip-3-endpoints").replace("0.50000000000", "0.33333333349");
    let out = check_stdin("clusterip/three-endpoints", "node-a", &rules);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(t.contains("FAIL"), "{t}");
    assert!(t.contains("dispatch-even"), "{t}");
    // The explanation shows expected against actual: 2/9 and 4/9 instead of 1/3.
    assert!(t.contains("0.222222222"), "{t}");
    assert!(t.contains("0.444444444"), "{t}");
}

#[test]
fn conditional_last_endpoint_rule_leaks_traffic() {
    let rules = read_recording("clusterip-3-endpoints");
    let last = rules
        .lines()
        .find(|l| l.starts_with("-A KUBE-SVC-") && l.contains(" -> ") && !l.contains("statistic"))
        .unwrap()
        .to_string();
    let broken = last.replace(
        " -j KUBE-SEP-",
        " -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-",
    );
    let rules = rules.replace(&last, &broken);
    let out = check_stdin("clusterip/three-endpoints", "node-a", &rules);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(t.contains("dispatch-complete"), "{t}");
    // Some traffic now falls through the service chain untouched: the flow
    // sees the cluster IP itself accepted, which no endpoint list allows.
    assert!(t.contains(":80 is not expected"), "{t}");
}

#[test]
fn nodeports_jump_moved_first_is_caught() {
    let rules = read_recording("nodeport-etp-cluster");
    let np = rules
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES") && l.contains("-j KUBE-NODEPORTS"))
        .unwrap()
        .to_string();
    let first = rules
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES"))
        .unwrap()
        .to_string();
    let moved =
        rules
            .replacen(&format!("{np}\n"), "", 1)
            .replacen(&first, &format!("{np}\n{first}"), 1);
    let out = check_stdin("nodeport/etp-cluster", "node-a", &moved);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(t.contains("nodeports-last"), "{t}");
}

#[test]
fn missing_masquerade_in_the_ext_chain_keeps_the_client_address() {
    // ETP Cluster: an outside client must be SNATed so replies come back
    // through this node. Drop KUBE-EXT's mark rule and the flow says so.
    let rules = read_recording("nodeport-etp-cluster");
    let rules = edit_line(&rules, &["-A KUBE-EXT-", "-j KUBE-MARK-MASQ"], None);
    let out = check_stdin("nodeport/etp-cluster", "node-a", &rules);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(
        t.contains("external client is spread and masqueraded"),
        "{t}"
    );
    assert!(t.to_lowercase().contains("masquerade"), "{t}");
    // The walk of the offending path is shown, ending in the DNAT.
    assert!(t.contains("KUBE-EXT-") && t.contains("DNAT 10.64."), "{t}");
}

#[test]
fn dangling_jump_and_jump_loop_are_reported_at_their_lines() {
    let rules = read_recording("clusterip-1-endpoint");
    let sep = rules.lines().find(|l| l.starts_with(":KUBE-SEP-")).unwrap()[1..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // The chain is gone (declaration and rules); the KUBE-SVC jump to it stays.
    let dangling: String = rules
        .lines()
        .filter(|l| !l.starts_with(&format!(":{sep} ")) && !l.starts_with(&format!("-A {sep} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = check_stdin("clusterip/one-endpoint", "node-a", &dangling);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(t.contains("jump-target-declared"), "{t}");

    // KUBE-SEP jumps back to its KUBE-SVC chain.
    let svc = rules.lines().find(|l| l.starts_with(":KUBE-SVC-")).unwrap()[1..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let looped = rules.replacen(
        &format!("-A {sep} -s"),
        &format!("-A {sep} -j {svc}\n-A {sep} -s"),
        1,
    );
    let out = check_stdin("clusterip/one-endpoint", "node-a", &looped);
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
    assert!(t.contains("no-jump-loop"), "{t}");
    assert!(t.contains("loop"), "{t}");
}

#[test]
fn bad_rules_are_an_input_error_with_line_and_column() {
    let rules = read_recording("clusterip-1-endpoint").replacen("--dport 80", "--dport eighty", 1);
    let out = check_stdin("clusterip/one-endpoint", "node-a", &rules);
    let t = out.text();
    assert_eq!(out.code, 2, "{t}");
    let line = rules.lines().position(|l| l.contains("eighty")).unwrap() + 1;
    assert!(t.contains(&format!("<stdin>:{line}:")), "{t}");
    assert!(t.contains("not a port number"), "{t}");
}

#[test]
fn bad_scenario_yaml_is_an_input_error_with_line_and_column() {
    let dir = TempDir::new("check-bad-scenario");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "description: x\ncluster:\n  nodes:\n    - name: node-a\n      adresses: [192.168.0.10]\n",
    )
    .unwrap();
    let r = recording("clusterip-1-endpoint");
    let out = kpconform(
        &[
            "check",
            "--scenario",
            path.to_str().unwrap(),
            "--node",
            "node-a",
            "--rules",
            r.to_str().unwrap(),
        ],
        None,
    );
    let t = out.text();
    drop(dir);
    assert_eq!(out.code, 2, "{t}");
    assert!(t.contains("bad.yaml:5:7"), "{t}");
    assert!(t.contains("addresses"), "did you mean: {t}");
}

#[test]
fn unknown_node_is_an_input_error() {
    let s = scenario("clusterip/one-endpoint");
    let r = recording("clusterip-1-endpoint");
    let out = kpconform(
        &[
            "check",
            "--scenario",
            s.to_str().unwrap(),
            "--node",
            "node-z",
            "--rules",
            r.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.text().contains("node-a"),
        "lists the scenario's nodes: {}",
        out.text()
    );
}

#[test]
fn trace_prints_every_path_with_its_probability() {
    let r = recording("clusterip-3-endpoints");
    let rules = read_recording("clusterip-3-endpoints");
    let cluster_ip = rules
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES -d "))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .trim_end_matches("/32")
        .to_string();
    let port = rules
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES -d "))
        .unwrap()
        .split("--dport ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let to = format!("{cluster_ip}:{port}/tcp");
    let out = kpconform(
        &[
            "trace",
            "--rules",
            r.to_str().unwrap(),
            "--node-ip",
            "192.168.0.10",
            "--from",
            "10.64.0.9",
            "--to",
            &to,
        ],
        None,
    );
    let t = out.text();
    assert_eq!(out.code, 0, "{t}");
    assert_eq!(t.matches("\npath ").count(), 3, "{t}");
    assert!(t.contains("PREROUTING > KUBE-SERVICES > KUBE-SVC-"), "{t}");
    assert!(t.contains("p=0.333333333489"), "kernel-quantized 1/3: {t}");
    // As written, 1/3 is exact to 10 decimals instead.
    let out = kpconform(
        &[
            "trace",
            "--rules",
            r.to_str().unwrap(),
            "--node-ip",
            "192.168.0.10",
            "--from",
            "10.64.0.9",
            "--to",
            &to,
            "--probability",
            "written",
        ],
        None,
    );
    assert!(out.text().contains("p=0.33333333349"), "{}", out.text());
}

#[test]
fn trace_rejects_bad_arguments() {
    let r = recording("clusterip-3-endpoints");
    let out = kpconform(
        &[
            "trace",
            "--rules",
            r.to_str().unwrap(),
            "--node-ip",
            "192.168.0.10",
            "--from",
            "nowhere",
            "--to",
            "10.96.0.1:80/tcp",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(out.text().contains("--from"), "{}", out.text());
    let out = kpconform(
        &[
            "trace",
            "--rules",
            r.to_str().unwrap(),
            "--node-ip",
            "192.168.0.10",
            "--from",
            "node",
            "--to",
            "10.96.0.1:80/icmp",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(out.text().contains("unknown protocol"), "{}", out.text());
}

#[test]
fn lint_passes_recordings_and_fails_broken_ones() {
    let r = recording("multinode-etp-local-node-a");
    let out = kpconform(&["lint", "--rules", r.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", out.text());
    let broken = read_recording("multinode-etp-local-node-a").replace(
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
        "",
    );
    let out = kpconform(&["lint", "--rules", "-"], Some(&broken));
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(out.text().contains("nat-hooks"), "{}", out.text());
    // The generic profile does not know kube-proxy's hooks.
    let out = kpconform(
        &["lint", "--rules", "-", "--profile", "generic"],
        Some(&broken),
    );
    assert_eq!(out.code, 0, "{}", out.text());
}

#[test]
fn lint_of_a_file_reports_as_lint_of_its_text() {
    // A file is parsed while it is read, and read whole again only for
    // something to report; standard input is always read whole. Both ways
    // must say the same, byte for byte: violations with their lines, parse
    // errors, and the warnings of a pasted transcript.
    let dump = read_recording("multinode-etp-local-node-a");
    let texts = [
        ("clean", dump.clone()),
        (
            "violation",
            dump.replace(
                "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
                "",
            ),
        ),
        ("error", dump.replacen("-j KUBE-POSTROUTING", "-d 10.0.0.300 -j KUBE-POSTROUTING", 1)),
        ("warning", format!("$ kubectl get nodes\nNAME STATUS\n{dump}")),
        ("empty", String::new()),
    ];
    let dir = TempDir::new("lint-file");
    for (what, text) in texts {
        let path = dir.path().join(format!("{what}.rules"));
        std::fs::write(&path, &text).unwrap();
        let from_file = kpconform(&["lint", "--rules", path.to_str().unwrap()], None);
        let from_stdin = kpconform(&["lint", "--rules", "-"], Some(&text));
        let name = path.display().to_string();
        assert_eq!(
            (from_file.code, from_file.text()),
            (from_stdin.code, from_stdin.text().replace("<stdin>", &name)),
            "{what}"
        );
        let expected = match what {
            "clean" | "warning" => 0,
            "violation" => 1,
            _ => 2,
        };
        assert_eq!(from_file.code, expected, "{what}: {}", from_file.text());
    }
}

/// Every recorded case's name, sorted.
fn recorded_cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(recordings().join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

/// A v1.30 dump as kube-proxy v1.27 writes it: no KUBE-FIREWALL (the
/// kubelet's chain, which v1.27 leaves to the kubelet) and no jumps to it.
fn as_v1_27(rules: &str) -> String {
    let fw = |l: &str| {
        l == ":KUBE-FIREWALL - [0:0]"
            || l.starts_with("-A KUBE-FIREWALL ")
            || l.ends_with("-j KUBE-FIREWALL")
    };
    let removed = rules.lines().filter(|l| fw(l)).count();
    assert!(removed >= 3, "no KUBE-FIREWALL to remove:\n{rules}");
    let out: String = rules
        .lines()
        .filter(|l| !fw(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!out.contains("KUBE-FIREWALL "), "{out}");
    out
}

/// A v1.27 dump on a node whose kubelet has its own KUBE-FIREWALL with the
/// marked-packet DROP.
fn with_kubelet_firewall(v1_27: &str) -> String {
    let mut out = String::new();
    let mut in_filter = false;
    for l in v1_27.lines() {
        if in_filter && l == "COMMIT" {
            out.push_str("-A INPUT -j KUBE-FIREWALL\n-A OUTPUT -j KUBE-FIREWALL\n");
            out.push_str("-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP\n");
            in_filter = false;
        }
        out.push_str(l);
        out.push('\n');
        if l == "*filter" {
            in_filter = true;
            out.push_str(":KUBE-FIREWALL - [0:0]\n");
        }
    }
    assert!(out.contains("-j DROP\nCOMMIT"), "{out}");
    out
}

#[test]
fn lint_accepts_every_release_from_1_27() {
    let cases = recorded_cases();
    assert_eq!(cases.len(), 44);
    for case in &cases {
        let v1_30 = read_recording(case);
        let v1_27 = as_v1_27(&v1_30);
        let kubelet = with_kubelet_firewall(&v1_27);
        for (shape, rules) in [
            ("v1.30", &v1_30),
            ("v1.27", &v1_27),
            ("v1.27 + kubelet", &kubelet),
        ] {
            let out = kpconform(&["lint", "--rules", "-"], Some(rules));
            assert_eq!(out.code, 0, "{case} ({shape}):\n{}\n{rules}", out.text());
            assert!(
                out.stdout.contains("every kube-proxy invariant holds"),
                "{case} ({shape}): {}",
                out.text()
            );
        }
    }
}

#[test]
fn lint_of_a_v1_27_dump_still_catches_release_independent_breakage() {
    let v1_27 = as_v1_27(&read_recording("multinode-etp-local-node-a"));
    // Release-independent: the FORWARD hook into KUBE-FORWARD.
    let broken = edit_line(&v1_27, &["-A FORWARD", "-j KUBE-FORWARD"], None);
    let out = kpconform(&["lint", "--rules", "-"], Some(&broken));
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(out.text().contains("[filter-hooks]"), "{}", out.text());
    // A KUBE-FIREWALL that some release writes, but not hooked from OUTPUT.
    let kubelet = with_kubelet_firewall(&v1_27);
    let broken = edit_line(&kubelet, &["-A OUTPUT -j KUBE-FIREWALL"], None);
    let out = kpconform(&["lint", "--rules", "-"], Some(&broken));
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(
        out.text().contains("OUTPUT: no jump to KUBE-FIREWALL")
            && out.text().contains("[kube-firewall]"),
        "{}",
        out.text()
    );
    // A KUBE-FIREWALL that accepts instead of dropping.
    let broken = kubelet.replace(
        "--mark 0x8000/0x8000 -j DROP",
        "--mark 0x8000/0x8000 -j ACCEPT",
    );
    let out = kpconform(&["lint", "--rules", "-"], Some(&broken));
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(out.text().contains("[kube-firewall]"), "{}", out.text());
}

#[test]
fn lint_lists_its_invariants_without_rules() {
    let out = kpconform(&["lint", "--list"], None);
    assert_eq!(out.code, 0, "{}", out.text());
    let t = out.text();
    for id in [
        "jump-target-declared",
        "no-jump-loop",
        "nodeports-last",
        "dispatch-even",
    ] {
        assert!(t.contains(id), "{id} missing from --list:\n{t}");
    }
    // Which releases each invariant holds for.
    assert!(t.starts_with("ID "), "{t}");
    assert!(t.lines().next().unwrap().contains("RELEASES"), "{t}");
    let row = |id: &str| {
        t.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{t}"))
            .to_string()
    };
    assert!(row("no-jump-loop").contains(" any "), "{t}");
    assert!(row("nodeports-last").contains(" 1.27+ "), "{t}");
    assert!(row("kube-firewall").contains(" 1.27, 1.28+ "), "{t}");
    let out = kpconform(&["lint"], None);
    assert_eq!(out.code, 2, "{}", out.text());
}

#[test]
fn input_prints_the_generator_input() {
    let s = scenario("nodeport/etp-local-no-local-endpoint");
    let out = kpconform(
        &[
            "input",
            "--scenario",
            s.to_str().unwrap(),
            "--node",
            "node-b",
        ],
        None,
    );
    let t = out.text();
    assert_eq!(out.code, 0, "{t}");
    assert!(t.starts_with("node:\n  name: node-b\n"), "{t}");
    assert!(t.contains("kind: EndpointSlice"), "{t}");
}

/// A dual-stack recording of the IPv6 folder.
fn ipv6_recording(case: &str) -> String {
    crate::util::recordings_ipv6()
        .join("outputs")
        .join(format!("{case}.rules"))
        .display()
        .to_string()
}

/// `check` of `id` on node-a with each of `rules` as a `--rules`.
fn check_files(id: &str, rules: &[&str], stdin: Option<&str>) -> Output {
    let s = scenario(id);
    let mut args = vec![
        "check",
        "--scenario",
        s.to_str().unwrap(),
        "--node",
        "node-a",
    ];
    for r in rules {
        args.extend(["--rules", r]);
    }
    kpconform(&args, stdin)
}

const DUAL: &str = "dualstack/dualstack-clusterip";

#[test]
fn a_dual_stack_node_is_checked_with_both_dumps() {
    if !scenario(DUAL).is_file() {
        eprintln!("note: {DUAL} is not in the corpus yet");
        return;
    }
    let v4 = ipv6_recording("dualstack-clusterip");
    let v6 = ipv6_recording("dualstack-clusterip-ipv6");
    // Either order: each dump's family comes from its addresses.
    for rules in [[&*v4, &*v6], [&*v6, &*v4]] {
        let out = check_files(DUAL, &rules, None);
        crate::util::assert_exit!(out, 0);
        assert!(
            out.stdout
                .contains(&format!("ok: {DUAL}@node-a (IPv4): 2 of 2 flow(s) passed")),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains(&format!("ok: {DUAL}@node-a (IPv6): 2 of 2 flow(s) passed")),
            "{}",
            out.stdout
        );
    }

    // One dump only: the other family's flows are not checked, and that fails.
    let out = check_files(DUAL, &[&v4], None);
    crate::util::assert_exit!(out, 1);
    assert!(
        out.stdout.contains(
            "FAILED: IPv6 flows not checked: no IPv6 rules given (2 IPv6 flow(s) on node-a"
        ),
        "{}",
        out.stdout
    );

    // A broken IPv6 DNAT port is caught, and named as IPv6.
    let text = std::fs::read_to_string(&v6).unwrap();
    let broken = text.replace(
        "--to-destination [fd00:10:64:a::218]:3000",
        "--to-destination [fd00:10:64:a::218]:3001",
    );
    assert_ne!(broken, text);
    let out = check_files(DUAL, &[&v4, "-"], Some(&broken));
    crate::util::assert_exit!(out, 1);
    assert!(
        out.stdout.contains(&format!("ok: {DUAL}@node-a (IPv4)")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("FAILED: {DUAL}@node-a (IPv6)")),
        "{}",
        out.stdout
    );
}

#[test]
fn dumps_of_one_family_or_of_a_family_the_node_lacks_are_usage_errors() {
    if !scenario(DUAL).is_file() {
        eprintln!("note: {DUAL} is not in the corpus yet");
        return;
    }
    let v4 = ipv6_recording("dualstack-clusterip");
    let out = check_files(DUAL, &[&v4, &v4], None);
    crate::util::assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("are both IPv4 rules; give one dump per family"),
        "{}",
        out.stderr
    );
    let out = check_files(DUAL, &["-", "-"], Some(""));
    crate::util::assert_exit!(out, 2);
    assert!(out.stderr.contains("only once"), "{}", out.stderr);
    // An IPv4-only node given IPv6 rules.
    let v6 = ipv6_recording("dualstack-clusterip-ipv6");
    let out = check_files("clusterip/one-endpoint", &[&v6], None);
    crate::util::assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("IPv6 rules, but node `node-a` of scenario `clusterip/one-endpoint` has no IPv6 address"),
        "{}",
        out.stderr
    );
}

#[test]
fn trace_follows_an_ipv6_packet_and_refuses_a_family_mismatch() {
    let v6 = ipv6_recording("dualstack-clusterip-ipv6");
    let trace = |from: &str, to: &str, node_ip: &str| {
        kpconform(
            &[
                "trace",
                "--rules",
                &v6,
                "--node-ip",
                node_ip,
                "--cluster-cidr",
                "10.64.0.0/16,fd00:10:64::/48",
                "--from",
                from,
                "--to",
                to,
            ],
            None,
        )
    };
    let dual = "192.168.0.10,fd00:192:168::10";
    let out = trace("fd00:10:64:a::200", "[fd00:10:96::1234]:80/tcp", dual);
    crate::util::assert_exit!(out, 0);
    for endpoint in [
        "[fd00:10:64:a::218]:3000",
        "[fd00:10:64:b::81]:3000",
        "[fd00:10:64:c::175]:3000",
    ] {
        assert!(out.stdout.contains(endpoint), "{endpoint}: {}", out.stdout);
    }
    assert!(
        out.stdout
            .contains("source: a pod (inside the cluster CIDR)"),
        "{}",
        out.stdout
    );
    let out = trace("node", "[fd00:10:96::1234]:80/tcp", dual);
    crate::util::assert_exit!(out, 0);
    assert!(out.stdout.contains("(masqueraded)"), "{}", out.stdout);

    // The IPv6 dump cannot trace an IPv4 packet.
    let out = trace("10.64.0.200", "10.96.12.34:80/tcp", dual);
    crate::util::assert_exit!(out, 2);
    assert!(
        out.stderr.contains("is IPv4, but") && out.stderr.contains("holds IPv6 rules"),
        "{}",
        out.stderr
    );
    // A packet has one family.
    let out = trace("10.64.0.200", "[fd00:10:96::1234]:80/tcp", dual);
    crate::util::assert_exit!(out, 2);
    assert!(
        out.stderr.contains("a packet has one family"),
        "{}",
        out.stderr
    );
    // The node needs an address of the packet's family.
    let out = trace("node", "[fd00:10:96::1234]:80/tcp", "192.168.0.10");
    crate::util::assert_exit!(out, 2);
    assert!(out.stderr.contains("no IPv6 address"), "{}", out.stderr);
}
