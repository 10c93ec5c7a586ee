//! `kpconform generate`: the reference rules, which reproduce the kube-proxy
//! recordings byte for byte.

use crate::util::{assert_exit, kpconform, recordings};

fn recorded(case: &str) -> String {
    let path = recordings().join("outputs").join(format!("{case}.rules"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_scenario_node_gives_the_rules_kube_proxy_recorded() {
    // golden/scenarios/clusterip/one-endpoint.yaml is built on this recording.
    let out = kpconform(
        &[
            "generate",
            "--scenario",
            "golden/scenarios/clusterip/one-endpoint.yaml",
            "--node",
            "node-a",
        ],
        None,
    );
    assert_exit!(out, 0);
    assert_eq!(out.stdout, recorded("clusterip-1-endpoint"));
}

#[test]
fn a_generator_input_file_or_stdin_gives_the_same_rules() {
    let input = recordings().join("inputs/nodeport-etp-local-2-local-1-remote.yaml");
    let want = recorded("nodeport-etp-local-2-local-1-remote");
    let out = kpconform(&["generate", "--input", input.to_str().unwrap()], None);
    assert_exit!(out, 0);
    assert_eq!(out.stdout, want);
    let text = std::fs::read_to_string(&input).unwrap();
    let out = kpconform(&["generate", "--input", "-"], Some(&text));
    assert_exit!(out, 0);
    assert_eq!(out.stdout, want);
}

#[test]
fn bad_arguments_and_inputs_exit_2() {
    let out = kpconform(
        &[
            "generate",
            "--scenario",
            "golden/scenarios/clusterip/one-endpoint.yaml",
            "--node",
            "node-z",
        ],
        None,
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("has no node `node-z` (its nodes: node-a)"),
        "{}",
        out.stderr
    );

    let out = kpconform(
        &["generate", "--input", "-"],
        Some("node: {name: a}\nobjcts: []\n"),
    );
    assert_exit!(out, 2);
    assert!(out.stderr.contains("<stdin>:"), "{}", out.stderr);

    // --scenario needs --node; one of --scenario and --input is required.
    assert_exit!(
        kpconform(
            &[
                "generate",
                "--scenario",
                "golden/scenarios/clusterip/one-endpoint.yaml"
            ],
            None
        ),
        2
    );
    assert_exit!(kpconform(&["generate"], None), 2);
}
