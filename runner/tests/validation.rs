//! States the Kubernetes API server would refuse are refused by every
//! command that reads objects, at the same line and column: a scenario
//! (`check`, `input`), a generator input (`generate --input`) and kubectl
//! output (`new-scenario`, `audit`). Before, `input` printed a Service
//! without a cluster IP as if it were fine, and `check` judged rules on it.

use crate::util::{assert_exit, kpconform, recordings, TempDir};

/// The Service of the scenario, the generator input and the kubectl List
/// alike: written at the same lines in each, so the errors agree.
const OBJECTS: &str = "\
- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: default}
  spec:
    ports: [{port: 80, protocol: TCP}]
";

/// Line 8 is `    spec:` in every file below (the objects start at line 5).
const POSITION: &str = ":8:5: ";
const MESSAGE: &str = "`spec.clusterIP` is missing: the API server assigns every Service";

fn scenario() -> String {
    format!(
        "cluster:\n  clusterCIDR: 10.64.0.0/16\n  nodes: [{{name: node-a, addresses: [192.168.0.10]}}]\n  objects:\n{}\
         flows:\n- {{name: no endpoints, node: node-a, from: node, to: 10.96.0.50:80/tcp, expect: {{verdict: reject}}}}\n",
        indent(OBJECTS)
    )
}

fn generator_input() -> String {
    format!(
        "node: {{name: node-a, addresses: [192.168.0.10]}}\n# the objects\n# below\nobjects:\n{}",
        indent(OBJECTS)
    )
}

fn kubectl_list() -> String {
    format!(
        "apiVersion: v1\nkind: List\nmetadata: {{resourceVersion: ''}}\nitems:\n{}",
        indent(OBJECTS)
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Exit 2, and the error at `file:8:5` with the message and the carets.
#[track_caller]
fn assert_refused(out: &crate::util::Output, file: &std::path::Path, path: &str) {
    assert_exit!(out, 2);
    let expected = format!("{}{POSITION}{path}: {MESSAGE}", file.display());
    assert!(
        out.stderr.contains(&expected),
        "expected `{expected}` in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("8 |     spec:\n"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing is printed:\n{}", out.stdout);
}

#[test]
fn a_service_without_cluster_ip_is_refused_by_check_and_input_at_the_same_place() {
    let dir = TempDir::new("validation");
    let file = dir.path().join("no-cluster-ip.yaml");
    std::fs::write(&file, scenario()).unwrap();
    let rules = recordings().join("outputs/clusterip-0-endpoints.rules");
    let check = kpconform(
        &[
            "check",
            "--scenario",
            file.to_str().unwrap(),
            "--node",
            "node-a",
            "--rules",
            rules.to_str().unwrap(),
        ],
        None,
    );
    assert_refused(&check, &file, "cluster.objects[0].spec");
    let input = kpconform(
        &[
            "input",
            "--scenario",
            file.to_str().unwrap(),
            "--node",
            "node-a",
        ],
        None,
    );
    assert_refused(&input, &file, "cluster.objects[0].spec");
    assert_eq!(
        check.stderr, input.stderr,
        "check and input report the same error"
    );

    // A generator input and kubectl output holding the same Service.
    let gen_input = dir.path().join("input.yaml");
    std::fs::write(&gen_input, generator_input()).unwrap();
    let generate = kpconform(&["generate", "--input", gen_input.to_str().unwrap()], None);
    assert_refused(&generate, &gen_input, "objects[0].spec");

    let list = dir.path().join("kubectl.yaml");
    std::fs::write(&list, kubectl_list()).unwrap();
    let new_scenario = kpconform(
        &[
            "new-scenario",
            "--from-kubectl",
            list.to_str().unwrap(),
            "--node",
            "node-a=192.168.0.10",
        ],
        None,
    );
    assert_refused(&new_scenario, &list, "items[0].spec");
    let audit = kpconform(
        &[
            "audit",
            "--kubectl",
            list.to_str().unwrap(),
            "--node",
            "node-a=192.168.0.10",
            "--rules",
            rules.to_str().unwrap(),
        ],
        None,
    );
    assert_refused(&audit, &list, "items[0].spec");
}
