//! The invariants against real kube-proxy output: every recording satisfies
//! all of them, and copies broken in memory the way generators break are
//! caught by the right invariant at the right line.

use std::fs;
use std::path::PathBuf;

use kpconform_iptables::parse_str;
use kpconform_iptables::Probability;
use kpconform_suite::invariants::{catalogue, check, detect_profile, Profile, Violation};

fn outputs() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30/outputs")
}

fn recordings() -> Vec<(String, String)> {
    let dir = outputs();
    let mut out: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 44, "expected the 44 kube-proxy v1.30 recordings");
    out
}

fn recording(name: &str) -> String {
    fs::read_to_string(outputs().join(format!("{name}.rules"))).unwrap()
}

fn violations(name: &str, text: &str) -> Vec<Violation> {
    let rules =
        parse_str(text).unwrap_or_else(|e| panic!("{name}: broken copy does not parse: {e:?}"));
    assert_eq!(detect_profile(&rules), Profile::KubeProxy, "{name}");
    check(&rules, Profile::KubeProxy)
}

/// Asserts that `id` is reported at `line`, showing everything reported if not.
fn assert_caught(name: &str, v: &[Violation], id: &str, line: usize) {
    assert!(
        v.iter()
            .any(|v| v.invariant == id && v.span.line as usize == line),
        "{name}: expected {id} at line {line}, got {:#?}",
        v.iter()
            .map(|v| format!("{}: {v}", v.span.line))
            .collect::<Vec<_>>()
    );
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Index of the `*nat` line.
fn nat_start(lines: &[String]) -> usize {
    lines.iter().position(|l| l == "*nat").expect("a nat table")
}

/// The chain an `-A` line appends to.
fn chain_of(line: &str) -> Option<&str> {
    line.strip_prefix("-A ")?.split(' ').next()
}

/// Line indexes of the dispatch rules (endpoint jumps without `-m recent`)
/// of each KUBE-SVC chain, by chain, in order.
fn svc_dispatch(lines: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(chain) = chain_of(l) else { continue };
        if !chain.starts_with("KUBE-SVC-") || !l.contains("-j KUBE-SEP-") || l.contains("-m recent")
        {
            continue;
        }
        match out.iter_mut().find(|(c, _)| c == chain) {
            Some((_, idx)) => idx.push(i),
            None => out.push((chain.to_string(), vec![i])),
        }
    }
    out
}

#[test]
fn every_recording_satisfies_every_invariant() {
    for (name, text) in recordings() {
        let rules = parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(detect_profile(&rules), Profile::KubeProxy, "{name}");
        for profile in [Profile::KubeProxy, Profile::Generic] {
            let v = check(&rules, profile);
            assert!(v.is_empty(), "{name} under {profile}: {v:#?}");
        }
    }
}

#[test]
fn catalogue_covers_both_profiles() {
    assert!(catalogue().iter().any(|i| i.profile == Profile::Generic));
    assert!(catalogue().iter().any(|i| i.profile == Profile::KubeProxy));
}

#[test]
fn equal_probabilities_are_caught() {
    let mut edited = 0;
    for (name, text) in recordings() {
        let mut ls = lines(&text);
        for (_, idx) in svc_dispatch(&ls) {
            let n = idx.len();
            if n < 3 {
                // With two endpoints 1/2 is already right.
                continue;
            }
            let even = Probability::one_over(n as u32, 10);
            for &i in &idx {
                if let Some(at) = ls[i].find("--probability ") {
                    let start = at + "--probability ".len();
                    let end = ls[i][start..].find(' ').map_or(ls[i].len(), |e| start + e);
                    ls[i].replace_range(start..end, even.text());
                }
            }
            edited += 1;
            let v = violations(&name, &join(&ls));
            // The first endpoint still gets 1/n; the second gets (1 - 1/n)/n.
            assert_caught(&name, &v, "dispatch-even", idx[1] + 1);
            assert!(
                v.iter().all(|v| v.invariant == "dispatch-even"),
                "{name}: {v:#?}"
            );
            ls = lines(&text);
        }
    }
    assert!(
        edited >= 10,
        "only {edited} chains with 3 or more endpoints"
    );
}

#[test]
fn conditional_last_endpoint_rule_is_caught() {
    for (name, text) in recordings() {
        let base = lines(&text);
        for (_, idx) in svc_dispatch(&base) {
            let last = *idx.last().unwrap();
            let mut ls = base.clone();
            ls[last].push_str(" -m statistic --mode random --probability 0.50000000000");
            let v = violations(&name, &join(&ls));
            assert_caught(&name, &v, "dispatch-complete", last + 1);
        }
    }
}

#[test]
fn nodeports_jump_moved_first_is_caught() {
    let name = "nodeport-etp-cluster";
    let mut ls = lines(&recording(name));
    let nat = nat_start(&ls);
    let jump = ls
        .iter()
        .rposition(|l| l.starts_with("-A KUBE-SERVICES ") && l.ends_with("-j KUBE-NODEPORTS"))
        .unwrap();
    let first = nat
        + ls[nat..]
            .iter()
            .position(|l| l.starts_with("-A KUBE-SERVICES "))
            .unwrap();
    assert!(first < jump);
    let moved = ls.remove(jump);
    ls.insert(first, moved);
    let v = violations(name, &join(&ls));
    assert_caught(name, &v, "nodeports-last", first + 1);
    assert!(v.iter().all(|v| v.invariant == "nodeports-last"), "{v:#?}");
}

#[test]
fn dangling_jump_is_caught() {
    let name = "clusterip-3-endpoints";
    let mut ls = lines(&recording(name));
    let i = ls
        .iter()
        .position(|l| l.starts_with("-A KUBE-SVC-") && l.contains("-j KUBE-SEP-"))
        .unwrap();
    let at = ls[i].rfind("-j KUBE-SEP-").unwrap();
    ls[i].replace_range(at.., "-j KUBE-SEP-DOESNOTEXIST0000");
    let v = violations(name, &join(&ls));
    assert_caught(name, &v, "jump-target-declared", i + 1);
    let msg = &v
        .iter()
        .find(|v| v.invariant == "jump-target-declared")
        .unwrap()
        .message;
    assert!(
        msg.contains("jumps to KUBE-SEP-DOESNOTEXIST0000, which is not declared in table nat"),
        "{msg}"
    );
}

#[test]
fn jump_loop_is_caught() {
    let name = "clusterip-3-endpoints";
    let mut ls = lines(&recording(name));
    // An endpoint chain that jumps back to its service.
    let svc_rule = ls
        .iter()
        .find(|l| l.starts_with("-A KUBE-SVC-") && l.contains("-j KUBE-SEP-"))
        .unwrap()
        .clone();
    let svc = chain_of(&svc_rule).unwrap().to_string();
    let sep = svc_rule.rsplit(' ').next().unwrap().to_string();
    let commit = ls.iter().rposition(|l| l == "COMMIT").unwrap();
    ls.insert(commit, format!("-A {sep} -j {svc}"));
    let v = violations(name, &join(&ls));
    assert_caught(name, &v, "no-jump-loop", commit + 1);
    let msg = &v
        .iter()
        .find(|v| v.invariant == "no-jump-loop")
        .unwrap()
        .message;
    assert!(msg.contains(&format!("{svc} -> {sep} -> {svc}")), "{msg}");
}

#[test]
fn missing_hairpin_is_caught() {
    let name = "clusterip-5-endpoints";
    let mut ls = lines(&recording(name));
    let i = ls
        .iter()
        .position(|l| l.starts_with("-A KUBE-SEP-") && l.ends_with("-j KUBE-MARK-MASQ"))
        .unwrap();
    ls.remove(i);
    // The DNAT that followed the hairpin is now at index i.
    assert!(ls[i].contains("-j DNAT"));
    let v = violations(name, &join(&ls));
    assert_caught(name, &v, "sep-hairpin", i + 1);
    assert!(v.iter().all(|v| v.invariant == "sep-hairpin"), "{v:#?}");
}

#[test]
fn postrouting_jump_removed_is_caught() {
    let name = "loadbalancer-etp-local";
    let mut ls = lines(&recording(name));
    let nat = nat_start(&ls);
    let jump = ls
        .iter()
        .position(|l| l.starts_with("-A POSTROUTING ") && l.ends_with("-j KUBE-POSTROUTING"))
        .unwrap();
    ls.remove(jump);
    let decl = nat
        + ls[nat..]
            .iter()
            .position(|l| l.starts_with(":POSTROUTING "))
            .unwrap();
    let v = violations(name, &join(&ls));
    assert_caught(name, &v, "nat-hooks", decl + 1);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message
            .contains("POSTROUTING: no jump to KUBE-POSTROUTING"),
        "{}",
        v[0].message
    );
}

/// A node with `services` ClusterIP services of `endpoints` endpoints each,
/// built on a real recording's fixed chains.
fn synthetic_node(services: usize, endpoints: usize) -> String {
    let base = recording("clusterip-0-endpoints");
    let mut decls = String::new();
    let mut service_rules = String::new();
    let mut chain_rules = String::new();
    for s in 0..services {
        let svc = format!("KUBE-SVC-{s:016}");
        let ip = format!("10.96.{}.{}", s / 250, s % 250 + 1);
        decls.push_str(&format!(":{svc} - [0:0]\n"));
        service_rules.push_str(&format!(
            "-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment \"ns/svc{s}:http cluster IP\" -m tcp --dport 80 -j {svc}\n"
        ));
        chain_rules.push_str(&format!(
            "-A {svc} ! -s 10.64.0.0/16 -d {ip}/32 -p tcp -m comment --comment \"ns/svc{s}:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n"
        ));
        for e in 0..endpoints {
            let sep = format!("KUBE-SEP-{s:012}{e:04}");
            let ep = format!("10.{}.{}.{}", 64 + e, s / 250, s % 250 + 1);
            decls.push_str(&format!(":{sep} - [0:0]\n"));
            let stat = if e + 1 < endpoints {
                let p = Probability::one_over((endpoints - e) as u32, 10);
                format!(
                    " -m statistic --mode random --probability {}",
                    p.save_spelling()
                )
            } else {
                String::new()
            };
            chain_rules.push_str(&format!(
                "-A {svc} -m comment --comment \"ns/svc{s}:http -> {ep}:8080\"{stat} -j {sep}\n"
            ));
            chain_rules.push_str(&format!(
                "-A {sep} -s {ep}/32 -m comment --comment \"ns/svc{s}:http\" -j KUBE-MARK-MASQ\n"
            ));
            chain_rules.push_str(&format!(
                "-A {sep} -p tcp -m comment --comment \"ns/svc{s}:http\" -m tcp -j DNAT --to-destination {ep}:8080\n"
            ));
        }
    }
    let nat = base.find("*nat\n").unwrap();
    let decl_at = nat + base[nat..].find(":KUBE-SERVICES - [0:0]\n").unwrap();
    let nodeports_at = nat
        + base[nat..]
            .find("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports")
            .unwrap();
    let commit_at = base.rfind("COMMIT\n").unwrap();
    [
        &base[..decl_at],
        &decls,
        &base[decl_at..nodeports_at],
        &service_rules,
        &base[nodeports_at..commit_at],
        &chain_rules,
        &base[commit_at..],
    ]
    .concat()
}

#[test]
fn synthetic_node_is_clean() {
    let text = synthetic_node(20, 7);
    let rules = parse_str(&text).unwrap();
    let v = check(&rules, Profile::KubeProxy);
    assert!(v.is_empty(), "{v:#?}");
}

/// The IPv6 and dual-stack recordings (`ip6tables-save` and `iptables-save`
/// output of one proxier each) satisfy every invariant too: nothing in the
/// catalogue is IPv4-only (`sep-hairpin` takes `-s EP/128` for IPv6).
#[test]
fn every_ipv6_and_dual_stack_recording_satisfies_every_invariant() {
    let dir = kpconform_golden::recordings().join("kube-proxy-v1.30-ipv6/outputs");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        37,
        "expected the 37 IPv6/dual-stack recordings"
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let v = violations(&name, &fs::read_to_string(path).unwrap());
        failures.extend(v.iter().map(|v| format!("{name}:{}: {v}", v.span.line)));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
