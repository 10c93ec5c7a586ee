//! `kpconform new-scenario --from-kubectl`: the skeleton loads, and its
//! suggested flows hold against the rules real kube-proxy installed for the
//! same objects.

use std::path::PathBuf;
use std::process::Command;

fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpconform-new-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A recording's objects as `kubectl get -o yaml` prints them: one List.
fn kubectl_list(case: &str) -> String {
    let input = std::fs::read_to_string(recordings().join(format!("inputs/{case}.yaml"))).unwrap();
    let objects = &input[input.find("objects:\n").unwrap() + "objects:\n".len()..];
    format!("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{objects}")
}

fn kpconform(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kpconform"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn skeletons_of_recorded_states_pass_against_the_recordings() {
    for case in [
        "clusterip-3-endpoints",
        "nodeport-etp-local-2-local-1-remote",
        "loadbalancer-etp-local",
        "loadbalancer-source-ranges",
        "externalip-etp-cluster",
        "clusterip-session-affinity",
        "clusterip-0-endpoints",
    ] {
        let dir = tmp(case);
        let list = dir.join("kubectl.yaml");
        std::fs::write(&list, kubectl_list(case)).unwrap();
        let (code, yaml, err) = kpconform(&[
            "new-scenario",
            "--from-kubectl",
            list.to_str().unwrap(),
            "--node",
            "node-a=192.168.0.10",
            "--cluster-cidr",
            "10.64.0.0/16",
        ]);
        assert_eq!(code, Some(0), "{case}: {err}");
        assert!(
            yaml.contains("flows:\n  - name: "),
            "{case}: no suggested flow\n{yaml}"
        );
        let scenario = dir.join("scenario.yaml");
        std::fs::write(&scenario, &yaml).unwrap();
        let rules = recordings().join(format!("outputs/{case}.rules"));
        let (code, out, err) = kpconform(&[
            "check",
            "--scenario",
            scenario.to_str().unwrap(),
            "--node",
            "node-a",
            "--rules",
            rules.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            code,
            Some(0),
            "{case}: suggested flows disagree with kube-proxy:\n{out}{err}\n{yaml}"
        );
    }
}

#[test]
fn node_objects_give_the_nodes_and_the_cluster_cidr() {
    let dir = tmp("nodes");
    let list = dir.join("kubectl.yaml");
    let nodes = "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-a\n  spec:\n    podCIDR: 10.64.0.0/24\n  status:\n    addresses:\n    - {type: InternalIP, address: 192.168.0.10}\n    - {type: Hostname, address: node-a}\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-b\n  spec:\n    podCIDR: 10.64.1.0/24\n  status:\n    addresses:\n    - {type: InternalIP, address: 192.168.0.11}\n";
    std::fs::write(
        &list,
        format!("{}{nodes}", kubectl_list("nodeport-etp-cluster")),
    )
    .unwrap();
    let (code, yaml, err) = kpconform(&["new-scenario", "--from-kubectl", list.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "{err}");
    assert!(yaml.contains("clusterCIDR: 10.64.0.0/16"), "{yaml}");
    assert!(
        yaml.contains("- name: node-a\n      addresses: [192.168.0.10]"),
        "{yaml}"
    );
    assert!(
        yaml.contains("- name: node-b\n      addresses: [192.168.0.11]"),
        "{yaml}"
    );
    assert!(
        yaml.contains("to: 192.168.0.10:30080/tcp"),
        "node port on node-a: {yaml}"
    );
}

#[test]
fn without_nodes_it_says_which_to_name() {
    let dir = tmp("nonodes");
    let list = dir.join("kubectl.yaml");
    std::fs::write(&list, kubectl_list("clusterip-3-endpoints")).unwrap();
    let (code, _, err) = kpconform(&["new-scenario", "--from-kubectl", list.to_str().unwrap()]);
    let (code2, _, err2) = kpconform(&["new-scenario", "--from-kubectl", "/nonexistent.yaml"]);
    std::fs::write(&list, "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n").unwrap();
    let (code3, _, err3) = kpconform(&["new-scenario", "--from-kubectl", list.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--node NAME=IP") && err.contains("node-a"),
        "{err}"
    );
    assert_eq!(code2, Some(2), "{err2}");
    assert_eq!(code3, Some(2));
    assert!(
        err3.contains("Pod") && err3.contains("kubectl.yaml:2:7"),
        "{err3}"
    );
}
