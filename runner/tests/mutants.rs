//! `kpconform mutants`: the mutation self-test of issue #5. On the golden
//! corpus every applicable mutant must be caught (the CI gate); a corpus
//! that cannot see a mutant says so and fails.

use serde_json::Value;

use crate::util::{kpconform, Output, TempDir};

/// The catalogue the issue asks for, by id (plus the localnet guard, split
/// from "missing DROP" because no golden flow saw it).
const ISSUE_CATALOGUE: &[&str] = &[
    "equal-probabilities",
    "last-endpoint-conditional",
    "five-decimal-probabilities",
    "nodeports-not-last",
    "missing-ext-masquerade",
    "local-policy-falls-through",
    "missing-pod-short-circuit",
    "missing-node-short-circuit",
    "missing-drop",
    "missing-localnet-drop",
    "missing-reject",
    "reject-becomes-drop",
    "wrong-dnat-port",
    "missing-hairpin-masquerade",
    "inverted-cluster-cidr",
    "missing-prerouting-jump",
    "dangling-jump",
    "jump-loop",
    "affinity-removed",
    "source-range-opened",
    "protocol-swapped",
    "endpoint-never-chosen",
];

#[test]
fn the_golden_corpus_catches_every_applicable_mutant() {
    let Output {
        code,
        stdout,
        stderr,
        ..
    } = kpconform(&["mutants", "--format", "json"], None);
    assert_eq!(code, 0, "exit code\n{stderr}\n{stdout}");
    let doc: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let summary = &doc["summary"];
    assert_eq!(summary["not_caught"], 0, "{summary}");
    assert_eq!(summary["setup_errors"], 0, "{summary}");
    assert!(summary["cases"].as_u64().unwrap() >= 90, "{summary}");
    let mutants = doc["mutants"].as_array().expect("mutants is an array");
    let ids: Vec<&str> = mutants.iter().map(|m| m["id"].as_str().unwrap()).collect();
    for id in ISSUE_CATALOGUE {
        assert!(ids.contains(id), "no mutant {id} in {ids:?}");
    }
    for m in mutants {
        // The golden corpus exercises every mutant, so none is merely
        // "not applicable", and each is caught by at least one case.
        assert_eq!(m["verdict"], "caught", "{m}");
        assert!(m["caught_cases"].as_u64().unwrap() >= 1, "{m}");
        assert_eq!(
            m["caught_in"].as_array().unwrap().len() as u64,
            m["caught_cases"].as_u64().unwrap(),
            "{m}"
        );
    }
    // Semantic mistakes are caught by flows, not only by invariants.
    for id in [
        "missing-ext-masquerade",
        "local-policy-falls-through",
        "missing-pod-short-circuit",
        "missing-node-short-circuit",
        "missing-localnet-drop",
        "reject-becomes-drop",
        "source-range-opened",
        "affinity-removed",
        "protocol-swapped",
        "wrong-dnat-port",
    ] {
        let m = mutants.iter().find(|m| m["id"] == id).unwrap();
        assert!(m["caught_by_flows"].as_u64().unwrap() >= 1, "{m}");
    }
    let total = mutants.len();
    assert!(
        stderr.contains(&format!(
            "  caught          {total:>3} of {total} applicable\n"
        )),
        "{stderr}"
    );
    every_mutant_is_caught_in_each_family(&doc, &stderr);
}

/// Mutants that do not apply to IPv6 rules, and why.
const NOT_IN_IPV6: &[&str] = &[
    // IPv6 has no route_localnet, so no localnet DROP.
    "missing-localnet-drop",
];

/// Mutants that no IPv6 flow sees yet (caught in IPv6 rules by invariants only).
const IPV6_INVARIANTS_ONLY: &[&str] = &["nodeports-not-last"];

/// Per family: every mutant that applied to that family's rules was caught
/// there (the IPv6 and dual-stack scenarios catch what applies to IPv6 rules,
/// not only the IPv4 ones), and most of the catalogue applies to IPv6 rules.
fn every_mutant_is_caught_in_each_family(doc: &Value, stderr: &str) {
    let mutants = doc["mutants"].as_array().unwrap();
    let total = mutants.len();
    for family in ["IPv4", "IPv6"] {
        let summary = &doc["summary"]["families"][family];
        assert_eq!(summary["not_caught"], 0, "{family}: {summary}");
        let applicable = mutants
            .iter()
            .filter(|m| m["families"][family]["verdict"] != "not-applicable")
            .count();
        assert_eq!(
            summary["caught"].as_u64().unwrap() as usize,
            applicable,
            "{family}: {summary}"
        );
        assert!(
            stderr.contains(&format!(
                "    in {family} rules {applicable:>3} of {applicable} applicable\n"
            )),
            "{stderr}"
        );
        for m in mutants {
            let f = &m["families"][family];
            if f["verdict"] == "not-applicable" {
                assert_eq!(f["applications"], 0, "{m}");
                continue;
            }
            assert_eq!(f["verdict"], "caught", "{family}: {m}");
            assert!(f["caught_cases"].as_u64().unwrap() >= 1, "{family}: {m}");
        }
    }
    assert_eq!(doc["summary"]["families"]["IPv4"]["not_applicable"], 0);
    let ipv6 = |m: &&Value| m["families"]["IPv6"]["verdict"] == "caught";
    let in_ipv6: Vec<&str> = mutants
        .iter()
        .filter(ipv6)
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(in_ipv6.len() >= 15, "{in_ipv6:?}");
    assert_eq!(in_ipv6.len(), total - NOT_IN_IPV6.len(), "{in_ipv6:?}");
    for id in NOT_IN_IPV6 {
        assert!(!in_ipv6.contains(id), "{id} now applies to IPv6 rules");
    }
    // The semantic mistakes are caught in IPv6 rules by flows too.
    for m in mutants.iter().filter(ipv6) {
        let id = m["id"].as_str().unwrap();
        let by_flows = m["families"]["IPv6"]["caught_by_flows"].as_u64().unwrap();
        assert_eq!(
            by_flows == 0,
            IPV6_INVARIANTS_ONLY.contains(&id),
            "{id}: {by_flows} IPv6 application(s) caught by flows"
        );
    }
    // Every application says which family's rules it edited, and a
    // dual-stack case has both.
    let cases = doc["cases"].as_array().unwrap();
    let dual = cases
        .iter()
        .find(|c| c["name"] == "dualstack/dualstack-clusterip@node-a")
        .expect("the dual-stack case");
    let families: Vec<&str> = dual["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["family"].as_str().unwrap())
        .collect();
    assert!(
        families.contains(&"IPv4") && families.contains(&"IPv6"),
        "{dual}"
    );
}

#[test]
fn a_scenario_that_cannot_see_a_mutant_reports_it_not_caught() {
    // One cluster-IP service with one endpoint: no flow goes to 127.0.0.1,
    // so removing the localnet DROP goes unnoticed; with one endpoint there
    // are no probabilities to get wrong.
    let Output {
        code,
        stdout,
        stderr,
        ..
    } = kpconform(&["mutants", "--filter", "clusterip/one-endpoint"], None);
    assert_eq!(code, 1, "exit code\n{stderr}\n{stdout}");
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row for {id}\n{stdout}"))
            .to_string()
    };
    assert!(
        row("missing-localnet-drop").ends_with(
            "0/1           0/1         0  NOT CAUGHT (no scenario can detect it: add one)"
        ),
        "{stdout}"
    );
    assert!(
        row("equal-probabilities").ends_with("not applicable"),
        "{stdout}"
    );
    assert!(
        row("wrong-dnat-port").ends_with("caught: clusterip/one-endpoint@node-a"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not caught:\n  missing-localnet-drop: ")
            && stdout.contains("    clusterip/one-endpoint@node-a at filter KUBE-FIREWALL, line "),
        "{stdout}"
    );
    assert!(stdout.contains("  not caught        1\n"), "{stdout}");
}

/// A scratch scenario directory holding `files`.
fn scratch(name: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new(name);
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const WRONG_EXPECTATION: &str = "
cluster:
  clusterCIDR: 10.64.0.0/16
  nodes: [{name: node-a, addresses: [192.168.0.10]}]
  objects: []
flows:
- {name: nothing is there to drop it, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp,
   expect: {verdict: drop}}
";

#[test]
fn unmutated_output_that_fails_is_a_setup_error() {
    let dir = scratch("mutants-setup", &[("g/wrong.yaml", WRONG_EXPECTATION)]);
    let Output {
        code,
        stdout,
        stderr,
        ..
    } = kpconform(&["mutants", "--scenarios", dir.str()], None);
    assert_eq!(code, 2, "exit code\n{stderr}\n{stdout}");
    assert!(
        stdout.contains("setup error: g/wrong@node-a: the generator's own output does not pass"),
        "{stdout}"
    );
    assert!(stdout.contains("  setup errors      1\n"), "{stdout}");

    let dir = scratch("mutants-load", &[("g/typo.yaml", "clutser: {}\n")]);
    let Output { code, stdout, .. } = kpconform(&["mutants", "--scenarios", dir.str()], None);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("error: scenario g/typo does not load"),
        "{stdout}"
    );
}

#[test]
fn list_names_every_mutant_with_its_bug() {
    let Output {
        code,
        stdout,
        stderr,
        ..
    } = kpconform(&["mutants", "--list"], None);
    assert_eq!(code, 0, "{stderr}");
    for id in ISSUE_CATALOGUE {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id}\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("five-decimal-probabilities ")
                && l.ends_with("[kubernetes/kubernetes#83599]")),
        "{stdout}"
    );
}
