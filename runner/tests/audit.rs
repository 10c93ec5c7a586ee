//! `kpconform audit`: every node real kube-proxy set up is right for its
//! cluster state; a broken copy is not, and the report says where.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;

fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

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

fn audit(args: &[String], rules: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpconform"))
        .args(args)
        .args(["--rules", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn tmp() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpconform-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_recorded_node_is_right_for_its_cluster_state() {
    let dir = tmp().join("all");
    std::fs::create_dir_all(&dir).unwrap();
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
        let out = audit(&case_args(&case, &dir), &rules);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(", 0 not,"), "{case}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_that_rejects_instead_of_dropping_is_reported() {
    let dir = tmp().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
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
    let out = audit(&case_args(case, &dir), &broken);
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("reject") && text.contains("oracle's reasoning"),
        "{text}"
    );
    assert!(text.contains("FAILED:"), "{text}");
}
