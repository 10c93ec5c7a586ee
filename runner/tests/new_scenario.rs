//! `kpconform new-scenario --from-kubectl`: the skeleton loads, and its
//! suggested flows hold against the rules real kube-proxy installed for the
//! same objects.

use crate::util::{kpconform, recordings, Output, TempDir};

/// A recording's objects as `kubectl get -o yaml` prints them: one List.
fn kubectl_list(case: &str) -> String {
    let input = std::fs::read_to_string(recordings().join(format!("inputs/{case}.yaml"))).unwrap();
    let objects = &input[input.find("objects:\n").unwrap() + "objects:\n".len()..];
    format!("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{objects}")
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
        let dir = TempDir::new(&format!("new-scenario-{case}"));
        let list = dir.path().join("kubectl.yaml");
        std::fs::write(&list, kubectl_list(case)).unwrap();
        let Output {
            code,
            stdout: yaml,
            stderr: err,
            ..
        } = kpconform(
            &[
                "new-scenario",
                "--from-kubectl",
                list.to_str().unwrap(),
                "--node",
                "node-a=192.168.0.10",
                "--cluster-cidr",
                "10.64.0.0/16",
            ],
            None,
        );
        assert_eq!(code, 0, "{case}: {err}");
        assert!(
            yaml.contains("flows:\n  - name: "),
            "{case}: no suggested flow\n{yaml}"
        );
        let scenario = dir.path().join("scenario.yaml");
        std::fs::write(&scenario, &yaml).unwrap();
        let rules = recordings().join(format!("outputs/{case}.rules"));
        let Output {
            code,
            stdout: out,
            stderr: err,
            ..
        } = kpconform(
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
        );
        drop(dir);
        assert_eq!(
            code, 0,
            "{case}: suggested flows disagree with kube-proxy:\n{out}{err}\n{yaml}"
        );
    }
}

#[test]
fn node_objects_give_the_nodes_and_the_cluster_cidr() {
    let dir = TempDir::new("new-scenario-nodes");
    let list = dir.path().join("kubectl.yaml");
    let nodes = "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-a\n  spec:\n    podCIDR: 10.64.0.0/24\n  status:\n    addresses:\n    - {type: InternalIP, address: 192.168.0.10}\n    - {type: Hostname, address: node-a}\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-b\n  spec:\n    podCIDR: 10.64.1.0/24\n  status:\n    addresses:\n    - {type: InternalIP, address: 192.168.0.11}\n";
    std::fs::write(
        &list,
        format!("{}{nodes}", kubectl_list("nodeport-etp-cluster")),
    )
    .unwrap();
    let Output {
        code,
        stdout: yaml,
        stderr: err,
        ..
    } = kpconform(
        &["new-scenario", "--from-kubectl", list.to_str().unwrap()],
        None,
    );
    drop(dir);
    assert_eq!(code, 0, "{err}");
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
    let dir = TempDir::new("new-scenario-nonodes");
    let list = dir.path().join("kubectl.yaml");
    std::fs::write(&list, kubectl_list("clusterip-3-endpoints")).unwrap();
    let Output {
        code, stderr: err, ..
    } = kpconform(
        &["new-scenario", "--from-kubectl", list.to_str().unwrap()],
        None,
    );
    let Output {
        code: code2,
        stderr: err2,
        ..
    } = kpconform(
        &["new-scenario", "--from-kubectl", "/nonexistent.yaml"],
        None,
    );
    std::fs::write(&list, "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n").unwrap();
    let Output {
        code: code3,
        stderr: err3,
        ..
    } = kpconform(
        &["new-scenario", "--from-kubectl", list.to_str().unwrap()],
        None,
    );
    drop(dir);
    assert_eq!(code, 2);
    assert!(
        err.contains("--node NAME=IP") && err.contains("node-a"),
        "{err}"
    );
    assert_eq!(code2, 2, "{err2}");
    assert_eq!(code3, 2);
    assert!(
        err3.contains("Pod") && err3.contains("kubectl.yaml:2:7"),
        "{err3}"
    );
}
