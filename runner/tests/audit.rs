//! `kpconform audit`: every node real kube-proxy set up is right for its
//! cluster state; a broken copy is not, and the report says where.

use std::path::Path;

use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;

use crate::util::{kpconform, recordings, Output, TempDir};

/// The audit arguments that describe a recorded case's node and settings,
/// and its objects as one kubectl List file.
fn case_args(case: &str, dir: &Path) -> Vec<String> {
    let path = recordings().join(format!("inputs/{case}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let input =
        GeneratorInput::from_yaml(&SourceFile::new(path.display().to_string(), text.clone()))
            .unwrap();
    let objects = &text[text.find("objects:\n").unwrap() + "objects:\n".len()..];
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
    if let Some(c) = n.cluster_cidr {
        args.extend(["--cluster-cidr".into(), c.to_string()]);
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

/// `kpconform audit ARGS --rules -` with `rules` on standard input.
fn audit(args: &[String], rules: &str) -> Output {
    let mut args = args.to_vec();
    args.extend(["--rules".into(), "-".into()]);
    kpconform(&args, Some(rules))
}

#[test]
fn every_recorded_node_is_right_for_its_cluster_state() {
    let dir = TempDir::new("audit-all");
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
    for case in cases {
        let rules =
            std::fs::read_to_string(recordings().join(format!("outputs/{case}.rules"))).unwrap();
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
