//! Scenario-level tests: the contract's example, and where errors point.

use std::net::{IpAddr, SocketAddr};

use kpconform_iptables::model::Family;
use std::path::Path;
use std::str::FromStr;

use bigdecimal::BigDecimal;

use super::*;
use kpconform_iptables::SourceFile;

/// The example of contract §1, verbatim.
const EXAMPLE: &str = r#"description: NodePort, externalTrafficPolicy Local; only node-a hosts an endpoint.
tags: [nodeport, local-policy]          # free-form, used for filtering
cluster:
  clusterCIDR: 10.64.0.0/16             # kube-proxy --cluster-cidr (pod network)
  masqueradeAll: false                  # optional, default false
  masqueradeBit: 14                     # optional, default 14
  nodePortAddresses: []                 # optional, default [] = all local addresses
  nodes:
    - name: node-a
      addresses: [192.168.0.10]         # the node's own IPs (addrtype LOCAL)
    - name: node-b
      addresses: [192.168.0.11]
  objects:                              # Kubernetes objects as `kubectl get -o yaml` prints them
    - apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: default}
      spec:
        type: NodePort
        clusterIP: 10.96.0.50
        externalTrafficPolicy: Local
        selector: {app: web}
        ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
    - apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: web-1
        namespace: default
        labels: {kubernetes.io/service-name: web}
      addressType: IPv4
      endpoints:
        - addresses: [10.64.1.5]
          conditions: {ready: true, serving: true, terminating: false}
          nodeName: node-a
      ports: [{name: http, port: 8080, protocol: TCP}]
flows:
  - name: external client through node-a keeps its source address
    node: node-a                        # whose rules the packet meets
    from: 203.0.113.7                   # an IP arriving from the network, or `node` (sent by the node itself)
    to: 192.168.0.10:30080/tcp          # IP:PORT/PROTO, PROTO = tcp | udp | sctp
    expect:
      endpoints: {10.64.1.5:8080: 1}    # DNAT destinations and their probabilities
      masquerade: false
  - name: node-b has no local endpoint and drops
    node: node-b
    from: 203.0.113.7
    to: 192.168.0.11:30080/tcp
    expect: {verdict: drop}
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_source(&SourceFile::new("s.yaml", text), "group/example")
}

/// The example with one line's `from` replaced by `to`; panics if it is absent.
fn edited(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "{from}");
    EXAMPLE.replacen(from, to, 1)
}

/// Asserts where an error points and that its message mentions `needle`.
fn assert_error(text: &str, kind: ErrorKind, line: usize, column: usize, path: &str, needle: &str) {
    let err = parse(text).expect_err("an error");
    assert_eq!(
        (err.kind(), err.line(), err.column(), err.path()),
        (kind, line, column, path),
        "{err}"
    );
    assert!(err.message().contains(needle), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("s.yaml:{line}:{column}: {path}: ")),
        "{err}"
    );
}

#[test]
fn contract_example_reads_with_its_values() {
    let s = parse(EXAMPLE).expect("the contract example");
    assert_eq!(s.id, "group/example");
    assert!(s
        .description
        .starts_with("NodePort, externalTrafficPolicy Local;"));
    assert_eq!(s.tags, ["nodeport", "local-policy"]);
    let c = &s.cluster;
    assert_eq!(
        c.cluster_cidr(Family::Ipv4)
            .map(|n| n.to_string())
            .as_deref(),
        Some("10.64.0.0/16")
    );
    assert!(!c.masquerade_all);
    assert_eq!(c.masquerade_bit, 14);
    assert!(c.node_port_addresses.is_empty());
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b"]);
    assert_eq!(
        s.node("node-b")
            .map(|n| n.addresses[0].to_string())
            .as_deref(),
        Some("192.168.0.11/32")
    );
    assert_eq!(c.objects.len(), 2);
    let Object::Service(svc) = &c.objects[0] else {
        panic!("{:?}", c.objects[0])
    };
    let spec = svc.spec.as_ref().expect("spec");
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
    assert_eq!(
        spec.ports.as_ref().map(|p| p[0].node_port),
        Some(Some(30080))
    );
    let Object::EndpointSlice(slice) = &c.objects[1] else {
        panic!("{:?}", c.objects[1])
    };
    assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("node-a"));

    assert_eq!(s.flows.len(), 2);
    let f = &s.flows[0];
    assert_eq!(f.node, "node-a");
    assert_eq!(
        f.from,
        FlowSource::Ip(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)))
    );
    assert_eq!(
        f.to.addr,
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 10)), 30080)
    );
    assert_eq!(f.to.protocol, kpconform_iptables::model::Protocol::Tcp);
    let endpoints = f.expect.endpoints.as_ref().expect("endpoints");
    let ep = SocketAddr::from_str("10.64.1.5:8080").expect("addr");
    assert_eq!(endpoints.get(&ep), Some(&crate::exact::integer(1)));
    assert_eq!(f.expect.masquerade, Some(false));
    assert_eq!((f.expect.verdict, f.expect.sticky), (None, None));
    assert_eq!(f.tolerance, BigDecimal::from_str("0.000001").expect("1e-6"));
    assert_eq!(f.span.line, 36);
    let g = &s.flows[1];
    assert_eq!(g.expect.verdict, Some(kpconform_iptables::Verdict::Drop));
    assert_eq!(g.expect.endpoints, None);
}

#[test]
fn generator_input_is_the_node_plus_cluster_settings() {
    let s = parse(&edited("  masqueradeBit: 14", "  masqueradeBit: 9")).expect("scenario");
    let input = s.generator_input("node-b").expect("node-b exists");
    assert_eq!(input.node.name, "node-b");
    assert_eq!(input.node.addresses, s.cluster.nodes[1].addresses);
    assert_eq!(input.node.cluster_cidrs, s.cluster.cluster_cidrs);
    assert_eq!(input.node.masquerade_bit, 9);
    assert_eq!(input.objects, s.cluster.objects);
    assert!(s.generator_input("node-z").is_none());
    let again =
        GeneratorInput::from_yaml(&SourceFile::new("in", input.to_yaml())).expect("re-read");
    assert_eq!(again, input);
}

#[test]
fn unknown_top_level_key() {
    let text = edited("flows:\n", "flow:\n");
    assert_error(
        &text,
        ErrorKind::UnknownKey,
        35,
        1,
        "flow",
        "did you mean `flows`?",
    );
}

#[test]
fn unknown_keys_in_a_flow_and_its_expect() {
    let text = edited("    expect: {verdict: drop}", "    expct: {verdict: drop}");
    assert_error(
        &text,
        ErrorKind::UnknownKey,
        47,
        5,
        "flows[1].expct",
        "did you mean `expect`?",
    );
    let text = edited("      endpoints: {", "      endpoint: {");
    assert_error(
        &text,
        ErrorKind::UnknownKey,
        41,
        7,
        "flows[0].expect.endpoint",
        "did you mean `endpoints`?",
    );
}

#[test]
fn typo_inside_a_service_spec() {
    let text = edited(
        "externalTrafficPolicy: Local",
        "externalTraficPolicy: Local",
    );
    assert_error(
        &text,
        ErrorKind::UnknownKey,
        20,
        9,
        "cluster.objects[0].spec.externalTraficPolicy",
        "did you mean `externalTrafficPolicy`?",
    );
}

#[test]
fn bad_addresses() {
    let text = edited("[192.168.0.11]", "[192.168.0.311]");
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        12,
        19,
        "cluster.nodes[1].addresses[0]",
        "192.168.0.311",
    );
    let text = edited(
        "    from: 203.0.113.7\n    to: 192.168.0.11",
        "    from: 203.0.113.777\n    to: 192.168.0.11",
    );
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        45,
        11,
        "flows[1].from",
        "`203.0.113.777`",
    );
    let text = edited("clusterCIDR: 10.64.0.0/16", "clusterCIDR: 10.64.0.0/33");
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        4,
        16,
        "cluster.clusterCIDR",
        "CIDR",
    );
}

#[test]
fn bad_to() {
    let text = edited("to: 192.168.0.11:30080/tcp", "to: 192.168.0.11:30080/TCP");
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        46,
        9,
        "flows[1].to",
        "IP:PORT/PROTO",
    );
    let text = edited("to: 192.168.0.11:30080/tcp", "to: 192.168.0.11/tcp");
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        46,
        9,
        "flows[1].to",
        "IP:PORT/PROTO",
    );
}

#[test]
fn unknown_node_in_a_flow() {
    let text = edited("    node: node-b\n", "    node: node-c\n");
    assert_error(
        &text,
        ErrorKind::UnknownNode,
        44,
        11,
        "flows[1].node",
        "no node `node-c`",
    );
}

#[test]
fn empty_expect() {
    let text = edited("expect: {verdict: drop}", "expect: {}");
    assert_error(
        &text,
        ErrorKind::MissingKey,
        47,
        13,
        "flows[1].expect",
        "at least one of",
    );
}

#[test]
fn unsupported_kind() {
    let text = edited("kind: EndpointSlice", "kind: Deployment");
    assert_error(
        &text,
        ErrorKind::UnsupportedKind,
        24,
        13,
        "cluster.objects[1].kind",
        "`Deployment`",
    );
}

#[test]
fn duplicates_and_structure() {
    let text = edited(
        "  - name: node-b has no local endpoint and drops",
        "  - name: external client through node-a keeps its source address",
    );
    assert_error(
        &text,
        ErrorKind::Duplicate,
        43,
        11,
        "flows[1].name",
        "unique",
    );
    let text = edited("    - name: node-b\n", "    - name: node-a\n");
    assert_error(
        &text,
        ErrorKind::Duplicate,
        11,
        13,
        "cluster.nodes[1].name",
        "twice",
    );
    let text = format!("{EXAMPLE}---\ndescription: another\n");
    let err = parse(&text).expect_err("two documents");
    assert_eq!((err.kind(), err.line()), (ErrorKind::MultipleDocuments, 49));
    let text = edited(
        "  nodes:\n    - name: node-a",
        "  nodes: []\n  xnodes:\n    - name: node-a",
    );
    assert!(parse(&text).is_err());
    let err = parse("cluster: {nodes: []}\n").expect_err("no nodes");
    assert_eq!((err.path(), err.column()), ("cluster.nodes", 18));
    let err = parse("description: x\n").expect_err("no cluster");
    assert_eq!(
        (err.kind(), err.line(), err.column()),
        (ErrorKind::MissingKey, 1, 1)
    );
}

#[test]
fn node_object_must_name_a_scenario_node() {
    let node = "    - apiVersion: v1\n      kind: Node\n      metadata: {name: node-x, labels: {topology.kubernetes.io/zone: a}}\n";
    let text = edited("  objects:                              # Kubernetes objects as `kubectl get -o yaml` prints them\n",
        &format!("  objects:\n{node}"));
    assert_error(
        &text,
        ErrorKind::UnknownNode,
        16,
        24,
        "cluster.objects[0].metadata.name",
        "node-x",
    );
    let ok = text.replace("name: node-x", "name: node-b");
    let s = parse(&ok).expect("Node object for node-b");
    assert!(matches!(s.cluster.objects[0], Object::Node(_)));
}

#[test]
fn kubectl_list_with_managed_fields_and_status_is_accepted() {
    let list = r#"  objects:
    - apiVersion: v1
      kind: List
      metadata: {resourceVersion: ""}
      items:
      - apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: default
          uid: 6af578bf-19f4-4c97-a6a3-3987e87ee7ed
          resourceVersion: "355684"
          creationTimestamp: "2024-05-14T09:12:33Z"
          annotations: {kubectl.kubernetes.io/last-applied-configuration: '{"kind":"Service"}'}
          managedFields:
          - manager: kube-controller-manager
            operation: Update
            apiVersion: v1
            time: "2024-05-14T09:12:33Z"
            fieldsType: FieldsV1
            fieldsV1: {"f:status": {"f:loadBalancer": {}}}
        spec: {type: ClusterIP, clusterIP: 10.96.0.50, ports: [{port: 80, protocol: TCP}]}
        status: {loadBalancer: {}}
      - apiVersion: v1
        kind: Node
        metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
        spec: {podCIDR: 10.64.0.0/24}
        status:
          addresses: [{type: InternalIP, address: 192.168.0.10}]
          conditions: [{type: Ready, status: "True", lastHeartbeatTime: "2024-05-14T09:12:33Z"}]
          nodeInfo: {kubeletVersion: v1.30.5, kubeProxyVersion: v1.30.5, architecture: amd64,
            bootID: x, containerRuntimeVersion: containerd://1.7, kernelVersion: "6.1",
            machineID: y, operatingSystem: linux, osImage: Debian, systemUUID: z}
flows:
"#;
    let start = EXAMPLE.find("  objects:").expect("objects");
    let end = EXAMPLE.find("flows:\n").expect("flows");
    let text = format!(
        "{}{}{}",
        &EXAMPLE[..start],
        list,
        &EXAMPLE[end + "flows:\n".len()..]
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.cluster.objects.len(), 2);
    let Object::Service(svc) = &s.cluster.objects[0] else {
        panic!("{:?}", s.cluster.objects[0])
    };
    assert_eq!(svc.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
    assert!(svc.status.is_some());
    assert!(matches!(s.cluster.objects[1], Object::Node(_)));
}

#[test]
fn load_names_scenarios_by_path_and_discover_sorts() {
    let root = std::env::temp_dir().join(format!("kpconform-scenario-test-{}", std::process::id()));
    let group = root.join("nodeport");
    std::fs::create_dir_all(group.join("deeper")).expect("mkdir");
    for file in [
        "nodeport/b.yaml",
        "nodeport/a.yaml",
        "nodeport/deeper/c.yaml",
        "top.yaml",
        "notes.txt",
    ] {
        std::fs::write(root.join(file), EXAMPLE).expect("write");
    }
    let found = discover(&root).expect("discover");
    let relative: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("below root")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(
        relative,
        [
            "nodeport/a.yaml",
            "nodeport/b.yaml",
            "nodeport/deeper/c.yaml",
            "top.yaml"
        ]
    );
    let s = Scenario::load(&group.join("deeper/c.yaml"), &root).expect("load");
    assert_eq!(s.id, "nodeport/deeper/c");
    let missing = Scenario::load(&root.join("missing.yaml"), &root).expect_err("missing file");
    assert_eq!(missing.kind(), ErrorKind::Io);
    std::fs::remove_dir_all(&root).expect("cleanup");
    assert_eq!(
        Scenario::load(Path::new("/nonexistent/x.yaml"), &root)
            .map(|_| ())
            .map_err(|e| e.kind()),
        Err(ErrorKind::Io)
    );
}

#[test]
fn crlf_files_read_the_same_and_point_at_the_same_columns() {
    let crlf = EXAMPLE.replace('\n', "\r\n");
    let s = parse(&crlf).expect("CRLF example");
    assert_eq!(s.flows.len(), 2);
    let typo = crlf.replacen(
        "externalTrafficPolicy: Local",
        "externalTraficPolicy: Local",
        1,
    );
    let err = parse(&typo).expect_err("typo");
    assert_eq!((err.line(), err.column()), (20, 9));
    assert!(!err.to_string().contains('\r'), "{err}");
}

#[test]
fn mangled_files_give_errors_not_panics() {
    // Every prefix, and the example with each line removed: whatever the
    // result, reading must not panic and errors must point inside the text.
    let mut inputs: Vec<String> = (0..EXAMPLE.len())
        .filter(|&i| EXAMPLE.is_char_boundary(i))
        .map(|i| EXAMPLE[..i].to_string())
        .collect();
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for skip in 0..lines.len() {
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != skip)
            .map(|(_, l)| *l)
            .collect();
        inputs.push(kept.join("\n"));
    }
    for text in inputs {
        if let Err(err) = parse(&text) {
            assert!(
                err.line() >= 1 && err.line() <= text.lines().count().max(1) + 1,
                "{err}"
            );
        }
        let _ = GeneratorInput::from_yaml(&SourceFile::new("in", text.as_str()));
    }
}

#[test]
fn a_scenario_that_is_not_utf8_is_an_error_at_its_line_and_column() {
    let dir = std::env::temp_dir().join(format!("kpconform-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, b"description: caf\xe9\n").unwrap();
    let err = Scenario::load(&path, &dir).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((err.line(), err.column()), (1, 17));
    assert!(
        err.to_string().contains("not UTF-8 text (byte 0xe9)"),
        "{err}"
    );
}

/// A dual-stack cluster: node-a has both families, node-b IPv4 only; one
/// IPv6 and one IPv4 flow.
const DUAL: &str = r#"description: dual-stack
cluster:
  clusterCIDR: "10.64.0.0/16,fd00:10:64::/48"
  nodePortAddresses: [192.168.0.0/24, "fd00:192:168::/64"]
  nodes:
    - name: node-a
      addresses: [192.168.0.10, "fd00:192:168::10/64"]
    - name: node-b
      addresses: [192.168.0.11]
  objects: []
flows:
  - name: ipv6 client
    node: node-a
    from: "fd00:10:64:b::7"
    to: "[fd00:10:96::1234]:80/tcp"
    expect:
      endpoints: {"[fd00:10:64:a::5]:3000": 0.5, "[fd00:10:64:b::6]:3000": 1/2}
  - name: ipv4 from the node
    node: node-a
    from: node
    to: 10.96.0.10:53/udp
    expect: {endpoints: {10.64.1.5:53: 1}}
"#;

#[test]
fn ipv6_and_dual_stack_flows_read() {
    let s = parse(DUAL).expect("dual-stack scenario");
    assert_eq!(
        s.cluster.cluster_cidrs,
        vec![
            "10.64.0.0/16".parse::<IpNet>().unwrap(),
            "fd00:10:64::/48".parse().unwrap()
        ]
    );
    assert_eq!(
        s.cluster.cluster_cidr(Family::Ipv6),
        "fd00:10:64::/48".parse().ok()
    );
    assert_eq!(s.cluster.node_port_addresses.len(), 2);
    assert_eq!(
        s.node("node-a").unwrap().families(),
        vec![Family::Ipv4, Family::Ipv6]
    );
    let v6 = &s.flows[0];
    assert_eq!(
        v6.from,
        FlowSource::Ip(IpAddr::from_str("fd00:10:64:b::7").unwrap())
    );
    assert_eq!(
        v6.to.addr,
        SocketAddr::from_str("[fd00:10:96::1234]:80").unwrap()
    );
    assert_eq!(v6.to.to_string(), "[fd00:10:96::1234]:80/tcp");
    let eps = v6.expect.endpoints.as_ref().unwrap();
    let half = crate::exact::BigRational::new(1.into(), 2.into());
    assert_eq!(
        eps[&SocketAddr::from_str("[fd00:10:64:a::5]:3000").unwrap()],
        half
    );
    assert_eq!(
        eps[&SocketAddr::from_str("[fd00:10:64:b::6]:3000").unwrap()],
        half
    );
    assert_eq!(s.flows[1].from, FlowSource::Node);
    // An IPv6 `from: node` flow is fine on a node with an IPv6 address.
    let text = DUAL.replace("    from: \"fd00:10:64:b::7\"", "    from: node");
    assert_eq!(
        parse(&text).expect("from node").flows[0].from,
        FlowSource::Node
    );
    // Each family's generator input.
    let input = s
        .cluster
        .generator_input_for("node-a", Family::Ipv6)
        .unwrap();
    assert_eq!(input.node.family, Family::Ipv6);
    assert!(s
        .cluster
        .generator_input_for("node-b", Family::Ipv6)
        .is_none());
}

#[test]
fn a_flow_whose_from_and_to_families_differ_is_an_error() {
    let text = DUAL.replace("from: \"fd00:10:64:b::7\"", "from: 203.0.113.7");
    let err = parse(&text).expect_err("mixed families");
    assert_eq!(
        (err.kind(), err.line(), err.column(), err.path()),
        (ErrorKind::InvalidValue, 14, 11, "flows[0].from"),
        "{err}"
    );
    assert!(
        err.message().contains(
            "`from` 203.0.113.7 is an IPv4 address, but `to` [fd00:10:96::1234]:80/tcp is IPv6"
        ),
        "{err}"
    );
}

#[test]
fn a_flow_on_a_node_without_an_address_of_its_family_is_an_error() {
    let text = DUAL.replacen("    node: node-a\n", "    node: node-b\n", 1);
    let err = parse(&text).expect_err("node-b is IPv4 only");
    assert_eq!(
        (err.kind(), err.line(), err.column(), err.path()),
        (ErrorKind::InvalidValue, 15, 9, "flows[0].to"),
        "{err}"
    );
    assert!(
        err.message().contains(
            "is an IPv6 destination, but node `node-b` has no IPv6 address (addresses: 192.168.0.11)"
        ),
        "{err}"
    );
    // The same for an IPv4 flow on an IPv6-only node.
    let text = edited(
        "addresses: [192.168.0.11]",
        "addresses: [\"fd00:192:168::11\"]",
    );
    assert_error(
        &text,
        ErrorKind::InvalidValue,
        46,
        9,
        "flows[1].to",
        "node `node-b` has no IPv4 address (addresses: fd00:192:168::11)",
    );
}

#[test]
fn an_endpoint_of_the_other_family_is_an_error() {
    let text = DUAL.replace("\"[fd00:10:64:b::6]:3000\"", "10.64.1.6:3000");
    let err = parse(&text).expect_err("IPv4 endpoint of an IPv6 flow");
    assert_eq!(
        (err.kind(), err.line(), err.path()),
        (
            ErrorKind::InvalidValue,
            17,
            "flows[0].expect.endpoints.10.64.1.6:3000"
        ),
        "{err}"
    );
    assert!(
        err.message()
            .contains("endpoint 10.64.1.6:3000 is an IPv4 address, but the flow is IPv6"),
        "{err}"
    );
    // An unbracketed IPv6 key is no IP:PORT.
    let text = DUAL.replace("\"[fd00:10:64:b::6]:3000\"", "\"fd00:10:64:b::6:3000\"");
    let err = parse(&text).expect_err("no brackets");
    assert!(err.message().contains("[fd00:10:64:a::5]:8080"), "{err}");
    // Nor is an unbracketed destination.
    let text = DUAL.replace(
        "\"[fd00:10:96::1234]:80/tcp\"",
        "\"fd00:10:96::1234:80/tcp\"",
    );
    let err = parse(&text).expect_err("no brackets");
    assert_eq!((err.line(), err.path()), (15, "flows[0].to"), "{err}");
}
