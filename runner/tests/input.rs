//! `kpconform input --family`, and `--node NAME=IP[,IP..]` of audit and
//! new-scenario with IPv6 addresses.

use crate::util::{kpconform, recordings_ipv6, Output, TempDir};

const DUAL_STACK: &str = "golden/scenarios/dualstack/dualstack-clusterip.yaml";
const IPV4_ONLY: &str = "golden/scenarios/clusterip/three-endpoints.yaml";
const IPV6_ONLY: &str = "golden/scenarios/clusterip/ipv6-three-endpoints.yaml";

fn input(scenario: &str, node: &str, family: Option<&str>) -> Output {
    let mut args = vec!["input", "--scenario", scenario, "--node", node];
    if let Some(f) = family {
        args.extend(["--family", f]);
    }
    kpconform(&args, None)
}

#[test]
fn a_dual_stack_node_has_one_input_per_family() {
    let default = input(DUAL_STACK, "node-a", None);
    assert_eq!(default.code, 0, "{}", default.text());
    let ipv4 = input(DUAL_STACK, "node-a", Some("ipv4"));
    assert_eq!(ipv4.code, 0, "{}", ipv4.text());
    // The default is the family of the node's first address, IPv4 here;
    // an IPv4 input does not name its family (contract section 2).
    assert_eq!(default.stdout, ipv4.stdout);
    assert!(!ipv4.stdout.contains("family:"), "{}", ipv4.stdout);
    assert!(
        ipv4.stdout.starts_with(
            "node:\n  name: node-a\n  addresses:\n  - 192.168.0.10\n  - fd00:192:168::10"
        ),
        "{}",
        ipv4.stdout
    );

    let ipv6 = input(DUAL_STACK, "node-a", Some("ipv6"));
    assert_eq!(ipv6.code, 0, "{}", ipv6.text());
    assert!(ipv6.stdout.contains("  family: IPv6\n"), "{}", ipv6.stdout);
    assert_ne!(ipv6.stdout, ipv4.stdout);
    // The same cluster state otherwise: only the family line differs.
    let without_family: String = ipv6
        .stdout
        .lines()
        .filter(|l| l.trim() != "family: IPv6")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without_family, ipv4.stdout);
    // Any case.
    let upper = input(DUAL_STACK, "node-a", Some("IPv6"));
    assert_eq!(upper.stdout, ipv6.stdout, "{}", upper.text());
}

#[test]
fn a_single_stack_node_has_its_own_family_only() {
    let ipv6 = input(IPV6_ONLY, "node-a", None);
    assert_eq!(ipv6.code, 0, "{}", ipv6.text());
    assert!(ipv6.stdout.contains("  family: IPv6\n"), "{}", ipv6.stdout);
    let explicit = input(IPV6_ONLY, "node-a", Some("ipv6"));
    assert_eq!(explicit.stdout, ipv6.stdout, "{}", explicit.text());

    let none = input(IPV6_ONLY, "node-a", Some("ipv4"));
    assert_eq!(none.code, 2, "{}", none.text());
    assert!(none.stdout.is_empty(), "{}", none.stdout);
    assert!(
        none.stderr.starts_with(
            "error: node `node-a` of scenario `clusterip/ipv6-three-endpoints` has no IPv4 address (its addresses: "
        ) && none.stderr.contains("so it gets no IPv4 input"),
        "{}",
        none.stderr
    );

    let none = input(IPV4_ONLY, "node-a", Some("ipv6"));
    assert_eq!(none.code, 2, "{}", none.text());
    assert!(
        none.stderr.contains(
            "node `node-a` of scenario `clusterip/three-endpoints` has no IPv6 address (its addresses: 192.168.0.10)"
        ),
        "{}",
        none.stderr
    );
}

#[test]
fn family_and_node_are_checked() {
    let bad = input(DUAL_STACK, "node-a", Some("ipv5"));
    assert_eq!(bad.code, 2, "{}", bad.text());
    assert!(
        bad.stderr
            .contains("`ipv5` is not a family (expected ipv4 or ipv6)"),
        "{}",
        bad.stderr
    );
    // An unknown node is reported as such, whatever the family.
    let missing = input(DUAL_STACK, "node-z", Some("ipv6"));
    assert_eq!(missing.code, 2, "{}", missing.text());
    assert!(
        missing
            .stderr
            .contains("has no node `node-z` (its nodes: node-a, node-b, node-c)"),
        "{}",
        missing.stderr
    );
}

/// An IPv6 recording's objects as `kubectl get -o yaml` prints them.
fn kubectl_list_ipv6(case: &str) -> String {
    let path = recordings_ipv6().join(format!("inputs/{case}.yaml"));
    let input = std::fs::read_to_string(path).unwrap();
    let objects = &input[input.find("objects:\n").unwrap() + "objects:\n".len()..];
    format!("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{objects}")
}

#[test]
fn node_specs_take_ipv6_addresses() {
    let dir = TempDir::new("node-spec-ipv6");
    let list = dir.path().join("kubectl.yaml");
    std::fs::write(&list, kubectl_list_ipv6("ipv6-clusterip-3-endpoints")).unwrap();
    let list = list.to_str().unwrap();
    let new_scenario = |node: &str| {
        kpconform(
            &[
                "new-scenario",
                "--from-kubectl",
                list,
                "--node",
                node,
                "--cluster-cidr",
                "fd00:10:64::/48",
            ],
            None,
        )
    };
    // A bare IPv6 address is a /128, like a bare IPv4 one is a /32.
    // A dual-stack spec (`node-a=192.168.0.10,fd00:192:168::10`) parses
    // too, but the skeleton then writes an unquoted `[IPv6]:port` flow
    // destination that does not load (suite/src/skeleton, reported).
    let (spec, addresses) = ("node-a=fd00:192:168::10", ["fd00:192:168::10"]);
    {
        let out = new_scenario(spec);
        assert_eq!(out.code, 0, "{spec}: {}", out.text());
        let line = out
            .stdout
            .lines()
            .skip_while(|l| l.trim() != "- name: node-a")
            .nth(1)
            .unwrap_or_default();
        assert!(
            line.trim_start().starts_with("addresses: ["),
            "{spec}: {}",
            out.stdout
        );
        let listed: Vec<&str> = line
            .trim()
            .trim_start_matches("addresses: [")
            .trim_end_matches(']')
            .split(", ")
            .map(|a| a.trim_matches('"'))
            .map(|a| a.strip_suffix("/128").unwrap_or(a))
            .collect();
        assert_eq!(listed, addresses, "{spec}: {}", out.stdout);
    }

    // A bad address: the message names no family it must be.
    for bad in ["node-a=fd00::zz", "node-a=192.168.0.10,not-an-ip"] {
        let out = new_scenario(bad);
        assert_eq!(out.code, 2, "{bad}: {}", out.text());
        let ip = bad.rsplit([',', '=']).next().unwrap();
        assert!(
            out.stderr.contains(&format!(
                "--node `{bad}`: `{ip}` is not an IP address (IPv4 or IPv6)"
            )),
            "{bad}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("not an IPv4"), "{}", out.stderr);
    }
    let audit = kpconform(
        &[
            "audit",
            "--rules",
            "-",
            "--kubectl",
            list,
            "--node",
            "node-a=fd00:192:168::10,fd00::zz",
        ],
        Some(""),
    );
    assert_eq!(audit.code, 2, "{}", audit.text());
    assert!(
        audit.stderr.contains(
            "--node `node-a=fd00:192:168::10,fd00::zz`: `fd00::zz` is not an IP address (IPv4 or IPv6)"
        ),
        "{}",
        audit.stderr
    );
}
