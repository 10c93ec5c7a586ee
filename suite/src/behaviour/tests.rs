//! The behavioural comparison on real kube-proxy v1.30 recordings: edits
//! that keep behaviour give nothing, edits that change it give one finding
//! with the right aspect.

use kpconform_iptables::model::RuleSet;
use kpconform_iptables::{parse_str, SourceFile};

use super::*;
use crate::oracle::{EntryKind, SourceKind};

fn recording(case: &str) -> (GeneratorInput, String) {
    let v130 = kpconform_golden::recordings().join("kube-proxy-v1.30");
    let input_path = v130.join(format!("inputs/{case}.yaml"));
    let source = SourceFile::new(
        input_path.display().to_string(),
        std::fs::read_to_string(&input_path).unwrap(),
    );
    let input = GeneratorInput::from_yaml(&source).unwrap();
    let rules = std::fs::read_to_string(v130.join(format!("outputs/{case}.rules"))).unwrap();
    (input, rules)
}

fn rules(text: &str) -> RuleSet {
    parse_str(text).unwrap()
}

/// `text` without its lines containing `needle` (at least one).
fn without_lines(text: &str, needle: &str) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains(needle)).collect();
    assert!(kept.len() < text.lines().count(), "no line has {needle:?}");
    kept.join("\n") + "\n"
}

#[test]
fn renamed_chains_and_reordered_dispatch_are_the_same_behaviour() {
    let (input, text) = recording("scale-50-services");
    // Every service chain renamed (its hash reversed), consistently, and the
    // KUBE-SERVICES dispatch lines in the opposite order.
    let mut renamed = text.clone();
    for prefix in ["KUBE-SVC-", "KUBE-SEP-"] {
        let hashes: std::collections::BTreeSet<String> = text
            .match_indices(prefix)
            .map(|(i, _)| {
                text[i + prefix.len()..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect()
            })
            .collect();
        for h in hashes {
            let reversed: String = h.chars().rev().collect();
            renamed = renamed.replace(&format!("{prefix}{h}"), &format!("{prefix}{reversed}"));
        }
    }
    assert_ne!(renamed, text);
    let dispatch: Vec<&str> = renamed
        .lines()
        .filter(|l| l.starts_with("-A KUBE-SERVICES ") && !l.contains("KUBE-NODEPORTS"))
        .collect();
    assert!(dispatch.len() >= 50);
    let mut reordered: Vec<String> = Vec::new();
    let mut reversed = dispatch.iter().rev();
    for line in renamed.lines() {
        if line.starts_with("-A KUBE-SERVICES ") && !line.contains("KUBE-NODEPORTS") {
            reordered.push(reversed.next().unwrap().to_string());
        } else {
            reordered.push(line.to_string());
        }
    }
    let reordered = reordered.join("\n") + "\n";
    assert!(compare_rule_sets(&input, &rules(&text), &rules(&reordered), &[]).is_empty());
}

#[test]
fn a_dropped_service_is_one_finding_per_kind_of_change() {
    let (input, text) = recording("clusterip-1-endpoint");
    let old = rules(&text);
    // The service's dispatch line gone: its cluster IP is no longer DNATed.
    let new = rules(&without_lines(&text, "cluster IP\" -m tcp --dport"));
    let findings = compare_rule_sets(&input, &old, &new, &[]);
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(f.entry, EntryKind::ClusterIp, "{}", f.sentence());
        assert!(f.aspects().contains(&Aspect::Endpoints), "{}", f.sentence());
        assert!(
            f.sentence().contains("untranslated (p 0 -> 1)"),
            "{}",
            f.sentence()
        );
    }
    // Pods, the node and outside clients change alike but for
    // masquerading: the ones masqueraded before are apart.
    let sources: Vec<SourceKind> = findings.iter().flat_map(|f| f.sources.clone()).collect();
    assert!(sources.contains(&SourceKind::Pod) && sources.contains(&SourceKind::External));
}

#[test]
fn losing_the_affinity_check_is_an_affinity_change_only() {
    let (input, text) = recording("clusterip-session-affinity");
    let old = rules(&text);
    let new = rules(&without_lines(&text, "--rcheck"));
    let findings = compare_rule_sets(&input, &old, &new, &[]);
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(f.aspects(), vec![Aspect::Affinity], "{}", f.sentence());
        assert_eq!(f.old.affinity, Affinity::Sticky);
        assert_eq!(f.new.affinity, Affinity::NotSticky);
    }
}

#[test]
fn phrases_name_verdicts_and_probabilities_exactly() {
    use std::collections::BTreeMap;
    let key = |verdict, masquerade| OutcomeKey {
        verdict,
        target: Target::To("10.64.1.5:8080".parse().unwrap()),
        masquerade,
    };
    let half: kpconform_iptables::Mass = "0.5".parse().unwrap();
    let one = kpconform_iptables::Mass::one();
    let behaviour = |outcomes: Vec<(OutcomeKey, kpconform_iptables::Mass)>| Behaviour {
        outcomes: outcomes.into_iter().collect::<BTreeMap<_, _>>(),
        affinity: Affinity::None,
        error: None,
    };
    let dropped = Behaviour {
        outcomes: BTreeMap::from([(
            OutcomeKey {
                verdict: kpconform_iptables::Verdict::Drop,
                target: Target::Untranslated,
                masquerade: false,
            },
            one.clone(),
        )]),
        affinity: Affinity::None,
        error: None,
    };
    let split = behaviour(vec![
        (key(kpconform_iptables::Verdict::Accept, true), half.clone()),
        (
            OutcomeKey {
                verdict: kpconform_iptables::Verdict::Drop,
                target: Target::Untranslated,
                masquerade: false,
            },
            half.clone(),
        ),
    ]);
    let d = differences(&dropped, &split);
    assert_eq!(
        d,
        vec![
            (
                Aspect::Verdict,
                "verdicts changed: ACCEPT p 0 -> 0.5, DROP p 1 -> 0.5".to_string()
            ),
            (
                Aspect::Endpoints,
                "now reach 10.64.1.5:8080 (p 0 -> 0.5), and are masqueraded".to_string()
            ),
        ]
    );
    assert!(differences(&split, &split).is_empty());
    // Masses equal to 12 digits are shown with every digit.
    let a = behaviour(vec![(
        key(kpconform_iptables::Verdict::Accept, false),
        one.clone(),
    )]);
    let near: kpconform_iptables::Mass = "0.9999999999999".parse().unwrap();
    let rest = one.checked_sub(&near).unwrap();
    let b = behaviour(vec![
        (key(kpconform_iptables::Verdict::Accept, false), near),
        (
            OutcomeKey {
                verdict: kpconform_iptables::Verdict::Reject,
                target: Target::Untranslated,
                masquerade: false,
            },
            rest,
        ),
    ]);
    let d = differences(&a, &b);
    assert!(d[0].1.contains("ACCEPT p 1 -> 0.9999999999999"), "{d:?}");
}

/// A behaviour accepting half to each of `a` and `b`, masqueraded as told.
fn two_endpoints(a_masq: bool, b_masq: bool) -> Behaviour {
    let half: kpconform_iptables::Mass = "0.5".parse().unwrap();
    let key = |addr: &str, masquerade| OutcomeKey {
        verdict: kpconform_iptables::Verdict::Accept,
        target: Target::To(addr.parse().unwrap()),
        masquerade,
    };
    Behaviour {
        outcomes: [
            (key("10.64.1.218:8080", a_masq), half.clone()),
            (key("10.64.2.81:8080", b_masq), half),
        ]
        .into_iter()
        .collect(),
        affinity: Affinity::None,
        error: None,
    }
}

#[test]
fn hairpin_changes_are_phrased_relative_to_the_client() {
    let (a, b) = (
        Some("10.64.1.218".parse().unwrap()),
        Some("10.64.2.81".parse().unwrap()),
    );
    let old = two_endpoints(true, true);
    // Each endpoint keeps masquerading only when it reaches itself (v1.30's
    // short-circuited hairpin): the other endpoint, as each sees it.
    let (new_a, new_b) = (two_endpoints(true, false), two_endpoints(false, true));
    let other = vec![(
        Aspect::Masquerade,
        "are no longer masqueraded when they reach another endpoint".to_string(),
    )];
    assert_eq!(differences_from(&old, &new_a, a), other);
    assert_eq!(differences_from(&old, &new_b, b), other);
    // Without a client, the addresses, which differ.
    assert_eq!(
        differences(&old, &new_a)[0].1,
        "are no longer masqueraded to 10.64.2.81:8080"
    );
    // The client's own address: themselves.
    assert_eq!(
        differences_from(&old, &new_b, a)[0].1,
        "are no longer masqueraded when they reach themselves"
    );
    // Neither exactly itself nor exactly the others: the addresses.
    assert_eq!(
        differences_from(&old, &two_endpoints(false, false), a)[0].1,
        "are no longer masqueraded to 10.64.1.218:8080, 10.64.2.81:8080"
    );
    assert_eq!(
        differences_from(&two_endpoints(false, false), &new_b, a)[0].1,
        "are now masqueraded when they reach another endpoint"
    );
}

#[test]
fn the_endpoints_hairpin_probes_are_one_finding_pods_another() {
    let context = |source| crate::oracle::ProbeContext {
        service: None,
        entry: EntryKind::ExternalIp,
        source,
    };
    let probe = |from: &str| {
        kpconform_iptables::Packet::new(
            kpconform_iptables::FlowSource::Ip(from.parse().unwrap()),
            "198.51.100.7:80".parse().unwrap(),
            kpconform_iptables::model::Protocol::Tcp,
        )
    };
    let old = two_endpoints(true, true);
    let results = vec![
        ProbeResult {
            packet: probe("10.64.1.218"),
            context: context(SourceKind::Endpoint),
            old: old.clone(),
            new: two_endpoints(true, false),
        },
        ProbeResult {
            packet: probe("10.64.2.81"),
            context: context(SourceKind::Endpoint),
            old: old.clone(),
            new: two_endpoints(false, true),
        },
        ProbeResult {
            packet: probe("10.64.3.9"),
            context: context(SourceKind::Pod),
            old: old.clone(),
            new: two_endpoints(false, false),
        },
        // Unchanged: no finding.
        ProbeResult {
            packet: probe("203.0.113.50"),
            context: context(SourceKind::External),
            old: old.clone(),
            new: old.clone(),
        },
    ];
    let findings = group(results);
    let summary: Vec<(Vec<SourceKind>, usize)> = findings
        .iter()
        .map(|f| (f.sources.clone(), f.probes))
        .collect();
    assert_eq!(
        summary,
        vec![(vec![SourceKind::Pod], 1), (vec![SourceKind::Endpoint], 2)],
        "{findings:#?}"
    );
    assert!(findings[1]
        .sentence()
        .ends_with("from the service's own endpoints (hairpin): are no longer masqueraded when they reach another endpoint"));
}
