//! One test (or a few) per rule of the module documentation. Expectations
//! are Kubernetes semantics written by hand, not the oracle's own output.

use std::collections::BTreeMap;

use bigdecimal::BigDecimal;

use super::*;
use crate::scenario::{Expect, FlowSource};
use kpconform_iptables::model::{Family, Protocol};
use kpconform_iptables::Distribution;
use kpconform_iptables::SourceFile;

const NODE: &str =
    "name: node-a, addresses: [192.168.0.10, 172.16.5.10], clusterCIDR: 10.64.0.0/16";
const POD: &str = "10.64.0.200";
const CLIENT: &str = "203.0.113.7";

fn input(node: &str, objects: &str) -> GeneratorInput {
    let text = format!("node: {{{node}}}\nobjects:\n{objects}");
    GeneratorInput::from_yaml(&SourceFile::new("test.yaml", text)).unwrap_or_else(|e| panic!("{e}"))
}

fn oracle(node: &str, objects: &str) -> Oracle {
    Oracle::new(&input(node, objects))
}

/// A packet from `from` (an IP or `node`) to `to` (`IP:PORT` or `IP:PORT/udp`).
fn packet(from: &str, to: &str) -> Packet {
    let (addr, proto) = to.split_once('/').unwrap_or((to, "tcp"));
    let proto = Protocol::from_name(proto).expect("protocol");
    let from = if from == "node" {
        FlowSource::Node
    } else {
        FlowSource::Ip(from.parse().expect("source IP"))
    };
    Packet::new(from, addr.parse().expect("IP:PORT"), proto)
}

/// The prediction as `verdict destination [masq] p` lines.
fn ask(o: &Oracle, from: &str, to: &str) -> Vec<String> {
    show(
        &o.predict(&packet(from, to))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn show(p: &Prediction) -> Vec<String> {
    p.outcomes
        .iter()
        .map(|((v, d, m), p)| {
            format!(
                "{v} {d}{} {}",
                if *m { " masq" } else { "" },
                crate::exact::show(p)
            )
        })
        .collect()
}

/// A service with the given spec (flow YAML) and endpoints
/// (`IP@node[:state]`, state r = ready, t = serving+terminating, x = gone),
/// port `http` 80 -> 8080/TCP.
fn service(name: &str, spec: &str, status: &str, endpoints: &[&str]) -> String {
    let mut eps = String::new();
    for e in endpoints {
        let (e, state) = e.split_once(':').unwrap_or((e, "r"));
        let (ip, node) = e.split_once('@').unwrap_or((e, ""));
        let cond = match state {
            "t" => "{ready: false, serving: true, terminating: true}",
            "x" => "{ready: false, serving: false, terminating: true}",
            _ => "{ready: true, serving: true, terminating: false}",
        };
        let node = if node.is_empty() {
            String::new()
        } else {
            format!(", nodeName: {node}")
        };
        eps.push_str(&format!(
            "  - {{addresses: [{ip}], conditions: {cond}{node}}}\n"
        ));
    }
    if eps.is_empty() {
        eps = "    []\n".into();
    }
    // Only Services with node ports carry one: the API server refuses a
    // nodePort on a ClusterIP Service.
    let node_port = if spec.contains("type: NodePort") || spec.contains("type: LoadBalancer") {
        ", nodePort: 30080"
    } else {
        ""
    };
    format!(
        "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {name}, namespace: ns}}\n  \
         spec: {{clusterIP: 10.96.0.50, ports: [{{name: http, port: 80, protocol: TCP{node_port}}}]{spec}}}\n  \
         status: {{loadBalancer: {{{status}}}}}\n\
         - apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  \
         metadata: {{name: {name}-1, namespace: ns, labels: {{kubernetes.io/service-name: {name}}}}}\n  \
         addressType: IPv4\n  ports: [{{name: http, port: 8080, protocol: TCP}}]\n  endpoints:\n{eps}"
    )
}

fn simple(endpoints: &[&str]) -> Oracle {
    oracle(NODE, &service("web", "", "", endpoints))
}

// Rule 1-3: what is proxied, and entry points.

#[test]
fn cluster_ip_from_a_pod_spreads_evenly_and_keeps_the_source() {
    let o = simple(&["10.64.1.5@node-b", "10.64.2.5@node-c", "10.64.2.6@node-c"]);
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80"),
        [
            "accept 10.64.1.5:8080 0.333333333333",
            "accept 10.64.2.5:8080 0.333333333333",
            "accept 10.64.2.6:8080 0.333333333333"
        ]
    );
    let p = o.predict(&packet(POD, "10.96.0.50:80")).unwrap();
    // Exactly 1: thirds are thirds.
    let total: crate::exact::BigRational = p.outcomes.values().sum();
    assert_eq!(total, crate::exact::integer(1));
}

#[test]
fn other_protocols_ports_and_addresses_are_untouched() {
    let o = simple(&["10.64.1.5@node-b"]);
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80/udp"),
        ["accept 10.96.0.50:80 1"]
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:81"), ["accept 10.96.0.50:81 1"]);
    assert_eq!(ask(&o, POD, "10.96.0.51:80"), ["accept 10.96.0.51:80 1"]);
    assert_eq!(
        ask(&o, "node", "192.168.0.10:22"),
        ["accept 192.168.0.10:22 1"]
    );
}

#[test]
fn headless_externalname_and_foreign_services_are_not_proxied() {
    let eps = ["10.64.1.5@node-b"];
    let headless = service("db", "", "", &eps).replace("clusterIP: 10.96.0.50", "clusterIP: None");
    // The API server gives an ExternalName Service no cluster IP.
    let external = service(
        "ext",
        ", type: ExternalName, externalName: x.example.com",
        "",
        &eps,
    )
    .replace("clusterIP: 10.96.0.50, ", "");
    let foreign = service("mesh", "", "", &eps).replace(
        "metadata: {name: mesh, namespace: ns}",
        "metadata: {name: mesh, namespace: ns, labels: {service.kubernetes.io/service-proxy-name: other}}",
    );
    for objects in [headless, external, foreign] {
        let o = oracle(NODE, &objects);
        assert_eq!(
            ask(&o, POD, "10.96.0.50:80"),
            ["accept 10.96.0.50:80 1"],
            "{objects}"
        );
        assert_eq!(
            ask(&o, CLIENT, "192.168.0.10:30080"),
            ["accept 192.168.0.10:30080 1"]
        );
    }
}

#[test]
fn the_ipv4_cluster_ip_follows_ip_families() {
    let dual = service(
        "web",
        ", ipFamilies: [IPv6, IPv4], clusterIPs: ['fd00::1', 10.96.0.60]",
        "",
        &["10.64.1.5"],
    )
    .replace("clusterIP: 10.96.0.50", "clusterIP: 'fd00::1'");
    let o = oracle(NODE, &dual);
    assert_eq!(ask(&o, POD, "10.96.0.60:80"), ["accept 10.64.1.5:8080 1"]);
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["accept 10.96.0.50:80 1"]);
}

#[test]
fn vip_mode_ingress_ips_are_captured_proxy_mode_and_hostnames_are_not() {
    let status = "ingress: [{ip: 203.0.113.10}, {ip: 203.0.113.11, ipMode: VIP}, \
                  {ip: 203.0.113.12, ipMode: Proxy}, {hostname: lb.example.com}]";
    let o = oracle(
        NODE,
        &service("lb", ", type: LoadBalancer", status, &["10.64.1.5"]),
    );
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.10:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.11:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.12:80"),
        ["accept 203.0.113.12:80 1"]
    );
}

// Rule 4: node-port addresses.

#[test]
fn node_ports_answer_on_every_local_address_by_default() {
    let o = oracle(NODE, &service("np", ", type: NodePort", "", &["10.64.1.5"]));
    for to in [
        "192.168.0.10:30080",
        "172.16.5.10:30080",
        "127.0.0.1:30080",
        "127.0.0.2:30080",
    ] {
        assert_eq!(
            ask(&o, "node", to),
            ["accept 10.64.1.5:8080 masq 1"],
            "{to}"
        );
    }
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.11:30080"),
        ["accept 192.168.0.11:30080 1"]
    );
}

#[test]
fn node_port_addresses_limit_where_node_ports_are_captured() {
    let node = format!("{NODE}, nodePortAddresses: [172.16.5.0/24, 127.0.0.0/8]");
    let o = oracle(
        &node,
        &service("np", ", type: NodePort", "", &["10.64.1.5"]),
    );
    assert_eq!(
        ask(&o, CLIENT, "172.16.5.10:30080"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&o, "node", "127.0.0.1:30080"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.10:30080"),
        ["accept 192.168.0.10:30080 1"]
    );
    // 127.0.0.2 is no interface address, and not DNATed it meets the guard.
    assert_eq!(
        ask(&o, "node", "127.0.0.2:30080"),
        ["drop 127.0.0.2:30080 1"]
    );
}

#[test]
fn a_rejecting_node_port_rejects_on_every_local_address() {
    // The filter rule matches `--dst-type LOCAL` whatever nodePortAddresses say.
    let node = format!("{NODE}, nodePortAddresses: [172.16.5.0/24]");
    let o = oracle(&node, &service("np", ", type: NodePort", "", &[]));
    assert_eq!(
        ask(&o, CLIENT, "172.16.5.10:30080"),
        ["reject 172.16.5.10:30080 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.10:30080"),
        ["reject 192.168.0.10:30080 1"]
    );
    let local = service(
        "np",
        ", type: NodePort, externalTrafficPolicy: Local",
        "",
        &["10.64.1.5@node-b"],
    );
    let o = oracle(&node, &local);
    // Not captured by nat on 192.168.0.10, so not even pods are short-circuited.
    assert_eq!(
        ask(&o, POD, "192.168.0.10:30080"),
        ["drop 192.168.0.10:30080 1"]
    );
    assert_eq!(
        ask(&o, POD, "172.16.5.10:30080"),
        ["accept 10.64.1.5:8080 1"]
    );
}

// Rules 5-8: endpoints.

#[test]
fn endpoints_merge_across_slices_by_service_name_and_port_name() {
    let mut objects = service("web", "", "", &["10.64.1.5"]);
    objects.push_str(
        "- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,\n   \
         metadata: {name: web-2, namespace: ns, labels: {kubernetes.io/service-name: web}},\n   \
         ports: [{name: http, port: 8080, protocol: TCP}, {name: other, port: 9090, protocol: TCP}],\n   \
         endpoints: [{addresses: [10.64.1.5]}, {addresses: [10.64.2.5], conditions: {}}]}\n\
         - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,\n   \
         metadata: {name: web-x, namespace: elsewhere, labels: {kubernetes.io/service-name: web}},\n   \
         ports: [{name: http, port: 8080, protocol: TCP}], endpoints: [{addresses: [10.64.3.5]}]}\n\
         - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,\n   \
         metadata: {name: web-y, namespace: ns, labels: {app: web}},\n   \
         ports: [{name: http, port: 8080, protocol: TCP}], endpoints: [{addresses: [10.64.4.5]}]}\n\
         - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,\n   \
         metadata: {name: web-z, namespace: ns, labels: {kubernetes.io/service-name: web}},\n   \
         ports: [{name: web, port: 8080, protocol: TCP}, {name: http, port: 8080, protocol: UDP}],\n   \
         endpoints: [{addresses: [10.64.5.5]}]}\n",
    );
    let o = oracle(NODE, &objects);
    // The duplicate counts once; unset conditions mean ready; another
    // namespace, a slice without the label and mismatched names or
    // protocols do not count.
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 0.5", "accept 10.64.2.5:8080 0.5"]
    );
}

#[test]
fn unnamed_ports_match_unnamed_slice_ports() {
    let objects = service("echo", "", "", &["10.64.1.5"])
        .replace("{name: http, port: 80,", "{port: 80,")
        .replace("ports: [{name: http, port: 8080", "ports: [{port: 8080");
    assert_eq!(
        ask(&oracle(NODE, &objects), POD, "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 1"]
    );
}

#[test]
fn ready_then_serving_terminating_then_reject() {
    let o = simple(&["10.64.1.5:r", "10.64.1.6:t", "10.64.1.7:x"]);
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["accept 10.64.1.5:8080 1"]);
    let o = simple(&["10.64.1.6:t", "10.64.1.7:x", "10.64.1.8:t"]);
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80"),
        ["accept 10.64.1.6:8080 0.5", "accept 10.64.1.8:8080 0.5"]
    );
    let o = simple(&["10.64.1.7:x"]);
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["reject 10.96.0.50:80 1"]);
    assert_eq!(
        ask(&simple(&[]), "node", "10.96.0.50:80"),
        ["reject 10.96.0.50:80 1"]
    );
}

#[test]
fn zone_hints_keep_traffic_in_the_nodes_zone() {
    let node_obj = "- {apiVersion: v1, kind: Node, metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}}\n";
    let hinted = |annotation: &str| {
        let objects = service("web", "", "", &["10.64.1.5", "10.64.2.5"])
            .replace(
                "metadata: {name: web, namespace: ns}",
                &format!("metadata: {{name: web, namespace: ns, annotations: {{{annotation}}}}}"),
            )
            .replace(
                "{addresses: [10.64.1.5],",
                "{hints: {forZones: [{name: zone-a}]}, addresses: [10.64.1.5],",
            )
            .replace(
                "{addresses: [10.64.2.5],",
                "{hints: {forZones: [{name: zone-b}]}, addresses: [10.64.2.5],",
            );
        format!("{node_obj}{objects}")
    };
    let zone_a = ["accept 10.64.1.5:8080 1"];
    let both = ["accept 10.64.1.5:8080 0.5", "accept 10.64.2.5:8080 0.5"];
    let o = oracle(NODE, &hinted("service.kubernetes.io/topology-mode: Auto"));
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), zone_a);
    let o = oracle(
        NODE,
        &hinted("service.kubernetes.io/topology-aware-hints: auto"),
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), zone_a);
    let o = oracle(
        NODE,
        &hinted("service.kubernetes.io/topology-mode: Disabled"),
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), both);
    let o = oracle(NODE, &hinted("other: x"));
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), both);
    // Without the Node object the node has no zone.
    let o = oracle(
        NODE,
        &hinted("service.kubernetes.io/topology-mode: Auto").replace(node_obj, ""),
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), both);
}

// Rules 9-10: cluster IP.

#[test]
fn cluster_ip_masquerade_depends_on_the_source_and_settings() {
    let objects = service("web", "", "", &["10.64.1.5"]);
    let o = oracle(NODE, &objects);
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["accept 10.64.1.5:8080 1"]);
    assert_eq!(
        ask(&o, "node", "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    let o = oracle("name: node-a, addresses: [192.168.0.10]", &objects);
    assert_eq!(
        ask(&o, "node", "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 1"]
    );
    let o = oracle(&format!("{NODE}, masqueradeAll: true"), &objects);
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    let o = oracle(
        "name: node-a, addresses: [192.168.0.10], masqueradeAll: true",
        &objects,
    );
    assert_eq!(
        ask(&o, POD, "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
}

#[test]
fn internal_traffic_policy_local_uses_local_endpoints_or_drops() {
    let spec = ", internalTrafficPolicy: Local";
    let o = oracle(
        NODE,
        &service("agent", spec, "", &["10.64.0.5@node-a", "10.64.1.5@node-b"]),
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["accept 10.64.0.5:8080 1"]);
    let o = oracle(
        NODE,
        &service(
            "agent",
            spec,
            "",
            &["10.64.0.5@node-a:t", "10.64.1.5@node-b"],
        ),
    );
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["accept 10.64.0.5:8080 1"]);
    let o = oracle(NODE, &service("agent", spec, "", &["10.64.1.5@node-b"]));
    assert_eq!(ask(&o, "node", "10.96.0.50:80"), ["drop 10.96.0.50:80 1"]);
    let o = oracle(NODE, &service("agent", spec, "", &["10.64.1.5@node-b:x"]));
    assert_eq!(ask(&o, POD, "10.96.0.50:80"), ["reject 10.96.0.50:80 1"]);
    // It does not touch node ports under externalTrafficPolicy Cluster.
    let np = ", type: NodePort, internalTrafficPolicy: Local";
    let o = oracle(NODE, &service("agent", np, "", &["10.64.1.5@node-b"]));
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.10:30080"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
}

// Rules 11-14: external destinations.

#[test]
fn external_cluster_policy_masquerades_everyone() {
    let spec = ", type: LoadBalancer, externalIPs: [198.51.100.7]";
    let o = oracle(
        NODE,
        &service("lb", spec, "ingress: [{ip: 203.0.113.10}]", &["10.64.1.5"]),
    );
    for to in ["198.51.100.7:80", "203.0.113.10:80", "192.168.0.10:30080"] {
        for from in [CLIENT, POD, "node"] {
            assert_eq!(
                ask(&o, from, to),
                ["accept 10.64.1.5:8080 masq 1"],
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn external_local_policy_keeps_the_client_and_short_circuits_pods_and_the_node() {
    let spec = ", type: NodePort, externalTrafficPolicy: Local";
    let eps = ["10.64.0.5@node-a", "10.64.1.5@node-b"];
    let o = oracle(NODE, &service("np", spec, "", &eps));
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.10:30080"),
        ["accept 10.64.0.5:8080 1"]
    );
    let both = ["accept 10.64.0.5:8080 0.5", "accept 10.64.1.5:8080 0.5"];
    assert_eq!(ask(&o, "10.64.1.200", "192.168.0.10:30080"), both);
    let both_masq = [
        "accept 10.64.0.5:8080 masq 0.5",
        "accept 10.64.1.5:8080 masq 0.5",
    ];
    assert_eq!(ask(&o, "node", "192.168.0.10:30080"), both_masq);
    // Without a cluster CIDR a pod cannot be told from an outside client.
    let o = oracle(
        "name: node-a, addresses: [192.168.0.10]",
        &service("np", spec, "", &eps),
    );
    assert_eq!(
        ask(&o, POD, "192.168.0.10:30080"),
        ["accept 10.64.0.5:8080 1"]
    );
    assert_eq!(ask(&o, "node", "192.168.0.10:30080"), both_masq);
}

#[test]
fn external_local_policy_without_local_endpoints_drops_outside_clients() {
    let spec = ", type: LoadBalancer, externalTrafficPolicy: Local, externalIPs: [198.51.100.7]";
    let status = "ingress: [{ip: 203.0.113.10}]";
    let o = oracle(NODE, &service("lb", spec, status, &["10.64.1.5@node-b"]));
    for to in ["198.51.100.7:80", "203.0.113.10:80", "192.168.0.10:30080"] {
        assert_eq!(ask(&o, CLIENT, to), [format!("drop {to} 1")]);
        assert_eq!(ask(&o, POD, to), ["accept 10.64.1.5:8080 1"]);
        assert_eq!(ask(&o, "node", to), ["accept 10.64.1.5:8080 masq 1"]);
    }
    // No usable endpoint at all: reject, even under the Local policy.
    let o = oracle(NODE, &service("lb", spec, status, &["10.64.1.5@node-b:x"]));
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.10:80"),
        ["reject 203.0.113.10:80 1"]
    );
    assert_eq!(
        ask(&o, POD, "192.168.0.10:30080"),
        ["reject 192.168.0.10:30080 1"]
    );
}

#[test]
fn node_sent_packets_to_a_dead_service_reject_only_where_they_loop_back() {
    let spec = ", type: LoadBalancer, externalIPs: [192.168.0.10]";
    let o = oracle(
        NODE,
        &service("lb", spec, "ingress: [{ip: 203.0.113.10}]", &[]),
    );
    assert_eq!(
        ask(&o, "node", "203.0.113.10:80"),
        ["accept 203.0.113.10:80 1"]
    );
    assert_eq!(
        ask(&o, "node", "192.168.0.10:80"),
        ["reject 192.168.0.10:80 1"]
    );
    assert_eq!(
        ask(&o, "node", "192.168.0.10:30080"),
        ["reject 192.168.0.10:30080 1"]
    );
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.10:80"),
        ["reject 203.0.113.10:80 1"]
    );
}

#[test]
fn source_ranges_guard_the_lb_ip_only() {
    let spec = ", type: LoadBalancer, loadBalancerSourceRanges: [198.51.100.0/24]";
    let status = "ingress: [{ip: 203.0.113.10}]";
    let o = oracle(NODE, &service("lb", spec, status, &["10.64.1.5"]));
    assert_eq!(
        ask(&o, "198.51.100.3", "203.0.113.10:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    for from in [CLIENT, POD, "node", "203.0.113.10"] {
        assert_eq!(
            ask(&o, from, "203.0.113.10:80"),
            ["drop 203.0.113.10:80 1"],
            "{from}"
        );
    }
    assert_eq!(
        ask(&o, CLIENT, "192.168.0.10:30080"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    // A range holding the node IP lets the node and the LB IP itself in.
    let spec = ", type: LoadBalancer, loadBalancerSourceRanges: [192.168.0.0/24]";
    let o = oracle(NODE, &service("lb", spec, status, &["10.64.1.5"]));
    for from in ["node", "203.0.113.10"] {
        assert_eq!(
            ask(&o, from, "203.0.113.10:80"),
            ["accept 10.64.1.5:8080 masq 1"],
            "{from}"
        );
    }
    assert_eq!(
        ask(&o, CLIENT, "203.0.113.10:80"),
        ["drop 203.0.113.10:80 1"]
    );
}

// Rules 15-18.

#[test]
fn hairpin_connections_are_masqueraded() {
    let o = simple(&["10.64.0.5@node-a", "10.64.1.5@node-b"]);
    assert_eq!(
        ask(&o, "10.64.0.5", "10.96.0.50:80"),
        [
            "accept 10.64.0.5:8080 masq 0.5",
            "accept 10.64.1.5:8080 0.5"
        ]
    );
}

#[test]
fn packets_delivered_to_the_node_itself_skip_postrouting() {
    let o = simple(&["192.168.0.10", "192.168.0.11"]);
    assert_eq!(
        ask(&o, CLIENT, "10.96.0.50:80"),
        [
            "accept 192.168.0.10:8080 0.5",
            "accept 192.168.0.11:8080 masq 0.5"
        ]
    );
    // The node's own packets always pass POSTROUTING.
    assert_eq!(
        ask(&o, "node", "10.96.0.50:80"),
        [
            "accept 192.168.0.10:8080 masq 0.5",
            "accept 192.168.0.11:8080 masq 0.5"
        ]
    );
}

#[test]
fn the_localnet_guard_drops_undnated_loopback_traffic_when_node_ports_use_loopback() {
    let o = simple(&["10.64.1.5"]);
    assert_eq!(ask(&o, "node", "127.0.0.1:8080"), ["drop 127.0.0.1:8080 1"]);
    assert_eq!(ask(&o, CLIENT, "127.0.0.1:8080"), ["drop 127.0.0.1:8080 1"]);
    for cidrs in ["[127.0.0.1/32]", "[0.0.0.0/0]", "[64.0.0.0/2]"] {
        let o = oracle(
            &format!("{NODE}, nodePortAddresses: {cidrs}"),
            &service("web", "", "", &[]),
        );
        assert_eq!(
            ask(&o, "node", "127.0.0.1:8080"),
            ["drop 127.0.0.1:8080 1"],
            "{cidrs}"
        );
    }
    let o = oracle(
        &format!("{NODE}, nodePortAddresses: [192.168.0.0/24]"),
        &service("web", "", "", &[]),
    );
    assert_eq!(
        ask(&o, "node", "127.0.0.1:8080"),
        ["accept 127.0.0.1:8080 1"]
    );
}

#[test]
fn affinity_makes_dnated_flows_sticky() {
    let o = oracle(
        NODE,
        &service(
            "s",
            ", sessionAffinity: ClientIP",
            "",
            &["10.64.1.5", "10.64.2.5"],
        ),
    );
    assert!(o.predict(&packet(POD, "10.96.0.50:80")).unwrap().sticky);
    assert!(!o.predict(&packet(POD, "10.96.0.51:80")).unwrap().sticky);
    assert!(
        !simple(&["10.64.1.5"])
            .predict(&packet(POD, "10.96.0.50:80"))
            .unwrap()
            .sticky
    );
}

#[test]
fn two_claims_on_one_destination_are_an_error() {
    let mut objects = service("a", ", externalIPs: [198.51.100.7]", "", &["10.64.1.5"]);
    objects.push_str(
        &service("b", ", externalIPs: [198.51.100.7]", "", &["10.64.2.5"])
            .replace("10.96.0.50", "10.96.0.51"),
    );
    let err = oracle(NODE, &objects)
        .predict(&packet(CLIENT, "198.51.100.7:80"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "203.0.113.7 -> 198.51.100.7:80/tcp: several entry points claim the destination \
         (external IP of ns/a:http, external IP of ns/b:http); the outcome depends on rule order"
    );
}

// The comparison helpers.

fn expect(yaml_endpoints: &[(&str, &str)]) -> Expect {
    Expect {
        endpoints: Some(
            yaml_endpoints
                .iter()
                .map(|(d, p)| {
                    (
                        d.parse().unwrap(),
                        crate::exact::from_decimal(&p.parse().unwrap()),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Expect::default()
    }
}

#[test]
fn check_expect_reads_expectations_like_kpconform_check() {
    let o = oracle(
        NODE,
        &service(
            "s",
            ", sessionAffinity: ClientIP",
            "",
            &["10.64.1.5", "10.64.2.5"],
        ),
    );
    let p = o.predict(&packet(POD, "10.96.0.50:80")).unwrap();
    let tol = BigDecimal::new(1.into(), 6);
    let good = expect(&[("10.64.1.5:8080", "0.5"), ("10.64.2.5:8080", "0.5000001")]);
    assert!(p.check_expect(&good, &tol).is_ok());
    let bad = expect(&[("10.64.1.5:8080", "1")]);
    let m = p.check_expect(&bad, &tol).unwrap_err();
    assert_eq!(
        m.problems,
        [
            "endpoint 10.64.1.5:8080: expected 1, oracle 0.5",
            "oracle accepts 0.5 to unlisted 10.64.2.5:8080",
        ]
    );
    let flags = Expect {
        verdict: Some(Verdict::Drop),
        masquerade: Some(true),
        sticky: Some(false),
        ..Expect::default()
    };
    let m = p.check_expect(&flags, &tol).unwrap_err();
    assert_eq!(m.problems.len(), 4, "{m}");
    assert!(m
        .to_string()
        .contains("expected not sticky, but session affinity applies"));
    // Stickiness cannot be seen with one reachable endpoint.
    let one = simple(&["10.64.1.5"])
        .predict(&packet(POD, "10.96.0.50:80"))
        .unwrap();
    let sticky = Expect {
        sticky: Some(true),
        ..Expect::default()
    };
    assert!(one.check_expect(&sticky, &tol).is_ok());
}

#[test]
fn compare_finds_every_differing_outcome() {
    let p = simple(&["10.64.1.5", "10.64.2.5"])
        .predict(&packet(POD, "10.96.0.50:80"))
        .unwrap();
    let traced = Distribution::default();
    let m = p
        .compare(&traced, &BigDecimal::new(1.into(), 6))
        .unwrap_err();
    assert_eq!(m.problems.len(), 2);
    let text = m.to_string();
    assert!(
        text.starts_with("oracle and trace disagree for 10.64.0.200 -> 10.96.0.50:80/tcp"),
        "{text}"
    );
    assert!(
        text.contains("accept 10.64.1.5:8080     0.5  0  <"),
        "{text}"
    );
    assert!(
        text.contains("oracle's reasoning:\n  10.96.0.50:80/tcp is the cluster IP of ns/web:http"),
        "{text}"
    );
}

#[test]
fn prediction_summaries() {
    let p = simple(&["10.64.0.200", "10.64.2.5"])
        .predict(&packet(POD, "10.96.0.50:80"))
        .unwrap();
    assert_eq!(p.verdict(), Some(Verdict::Accept));
    assert_eq!(
        p.masquerade(),
        None,
        "the hairpin half is masqueraded, the other not"
    );
    assert_eq!(p.accepted().len(), 2);
    let p = simple(&[]).predict(&packet(POD, "10.96.0.50:80")).unwrap();
    assert_eq!((p.verdict(), p.masquerade()), (Some(Verdict::Reject), None));
}

#[test]
fn probes_reach_every_entry_point_from_every_kind_of_source() {
    let spec = ", type: LoadBalancer, externalIPs: [198.51.100.7], loadBalancerSourceRanges: [198.51.100.0/24], \
                externalTrafficPolicy: Local, healthCheckNodePort: 32000";
    let o = oracle(
        NODE,
        &service(
            "lb",
            spec,
            "ingress: [{ip: 203.0.113.10}]",
            &["10.64.0.5@node-a"],
        ),
    );
    let probes: Vec<String> = o.probes().iter().map(|p| p.to_string()).collect();
    for want in [
        "node -> 10.96.0.50:80/tcp",
        "10.64.255.254 -> 10.96.0.50:80/tcp",
        "203.0.113.7 -> 198.51.100.7:80/tcp",
        "198.51.100.1 -> 203.0.113.10:80/tcp",
        "203.0.113.10 -> 203.0.113.10:80/tcp",
        "10.64.0.5 -> 10.96.0.50:80/tcp",
        "203.0.113.7 -> 172.16.5.10:30080/tcp",
        "node -> 127.0.0.1:30080/tcp",
        "203.0.113.7 -> 10.96.0.50:80/udp",
        "203.0.113.7 -> 192.168.0.10:32000/tcp",
        "203.0.113.7 -> 198.51.100.254:1/tcp",
    ] {
        assert!(
            probes.iter().any(|p| p == want),
            "{want} missing from {probes:#?}"
        );
    }
    let mut sorted = probes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), probes.len());
    // Only the node can send to a loopback address: a pod's is its own.
    for p in o.probes() {
        assert!(
            !p.to.addr.ip().is_loopback() || p.from == FlowSource::Node,
            "{p} cannot occur"
        );
    }
}

/// A dual-stack node and state, seen by the proxier of `family`.
fn dual_stack(family: &str, node_port_addresses: &str) -> Oracle {
    let node = format!(
        "name: node-a, family: {family}, addresses: [192.168.0.10, fd00:192:168::10], \
         clusterCIDR: '10.64.0.0/16,fd00:10:64::/48', nodePortAddresses: [{node_port_addresses}]"
    );
    let objects = "\
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.0.50
    clusterIPs: [10.96.0.50, fd00:10:96::50]
    ipFamilies: [IPv4, IPv6]
    externalIPs: [198.51.100.7, 2001:db8:203::7]
    loadBalancerSourceRanges: [198.51.100.0/24]
    ports: [{name: http, port: 80, nodePort: 30080, protocol: TCP}]
  status: {loadBalancer: {ingress: [{ip: 203.0.113.10}, {ip: '2001:db8:203::10'}]}}
- apiVersion: v1
  kind: Service
  metadata: {name: v4only, namespace: shop}
  spec: {clusterIP: 10.96.0.60, ports: [{name: http, port: 80, protocol: TCP}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-v4, namespace: shop, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.64.1.5], nodeName: node-b}]
  ports: [{name: http, port: 8080, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-v6, namespace: shop, labels: {kubernetes.io/service-name: web}}
  addressType: IPv6
  endpoints: [{addresses: ['fd00:10:64:b::5'], nodeName: node-b}, {addresses: ['fd00:10:64:c::5']}]
  ports: [{name: http, port: 8080, protocol: TCP}]
";
    oracle(&node, objects)
}

#[test]
fn each_family_proxier_sees_its_own_family_only() {
    let v6 = dual_stack("IPv6", "");
    let ends = [
        "accept [fd00:10:64:b::5]:8080 masq 0.5",
        "accept [fd00:10:64:c::5]:8080 masq 0.5",
    ];
    // The IPv6 cluster IP, external IP, LB IP and node port; the node IP of
    // the family masquerades (outside fd00:10:64::/48), a pod does not.
    assert_eq!(ask(&v6, "node", "[fd00:10:96::50]:80"), ends);
    assert_eq!(
        ask(&v6, "fd00:10:64:a::9", "[fd00:10:96::50]:80"),
        [
            "accept [fd00:10:64:b::5]:8080 0.5",
            "accept [fd00:10:64:c::5]:8080 0.5"
        ]
    );
    assert_eq!(ask(&v6, "2001:db8:100::9", "[2001:db8:203::7]:80"), ends);
    assert_eq!(
        ask(&v6, "2001:db8:100::9", "[fd00:192:168::10]:30080"),
        ends
    );
    // The IPv4 source range does not filter the IPv6 LB IP.
    assert_eq!(ask(&v6, "2001:db8:100::9", "[2001:db8:203::10]:80"), ends);
    // No localhost node ports on IPv6; from the network, ::1 is dropped.
    assert_eq!(ask(&v6, "node", "[::1]:30080"), ["accept [::1]:30080 1"]);
    assert_eq!(
        ask(&v6, "2001:db8:100::9", "[::1]:30080"),
        ["drop [::1]:30080 1"]
    );
    // A v4-only service and the IPv4 addresses are not the IPv6 proxier's.
    assert!(v6.ports.iter().all(|p| p.cluster_ip.is_ipv6()));
    assert!(v6.probes().iter().all(|p| p.family() == Family::Ipv6));
    // An explicit list: the IPv6 CIDRs count, ::1 never does.
    let listed = dual_stack("IPv6", "192.168.0.0/24, 127.0.0.0/8");
    assert_eq!(listed.node_port_ips, None, "no IPv6 CIDR: every address");
    let listed = dual_stack("IPv6", "192.168.0.0/24, '::1/128'");
    assert_eq!(listed.node_port_ips, Some(Vec::new()), "::1 is skipped");
    let listed = dual_stack("IPv6", "'fd00:192:168::/64', '::1/128'");
    assert_eq!(
        listed.node_port_ips,
        Some(vec!["fd00:192:168::10".parse().unwrap()])
    );
    assert!(!listed.localnet_guard);
    // The IPv4 proxier of the same state: the IPv4 endpoint only.
    let v4 = dual_stack("IPv4", "");
    assert_eq!(
        ask(&v4, "node", "10.96.0.50:80"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&v4, "node", "127.0.0.1:30080"),
        ["accept 10.64.1.5:8080 masq 1"]
    );
    assert_eq!(
        ask(&v4, "203.0.113.9", "203.0.113.10:80"),
        ["drop 203.0.113.10:80 1"]
    );
    assert_eq!(v4.ports.len(), 2);
}

// The port index against a scan of every port.

/// Services whose entry points overlap every way the index keys them: one
/// address for several services and entry kinds, a node port equal to
/// another service's port, the same port over two protocols.
const OVERLAPPING: &str = "\
- apiVersion: v1
  kind: Service
  metadata: {name: a, namespace: ns}
  spec: {clusterIP: 10.96.0.1, externalIPs: [10.96.0.2, 192.168.0.10],
         ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]}
- apiVersion: v1
  kind: Service
  metadata: {name: b, namespace: ns}
  spec: {type: NodePort, clusterIP: 10.96.0.2,
         ports: [{name: web, port: 80, protocol: TCP, nodePort: 30080},
                 {name: odd, port: 30081, protocol: UDP, nodePort: 80}]}
- apiVersion: v1
  kind: Service
  metadata: {name: c, namespace: ns}
  spec: {type: LoadBalancer, clusterIP: 10.96.0.3, externalIPs: [10.96.0.3],
         ports: [{name: web, port: 80, protocol: TCP, nodePort: 30081}]}
  status: {loadBalancer: {ingress: [{ip: 10.96.0.1}]}}
- apiVersion: v1
  kind: Service
  metadata: {name: d, namespace: ns}
  spec: {clusterIP: 10.96.0.1, ports: [{name: tls, port: 443, protocol: TCP},
                                       {name: again, port: 80, protocol: UDP}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: c-1, namespace: ns, labels: {kubernetes.io/service-name: c}}
  addressType: IPv4
  ports: [{name: web, port: 8080, protocol: TCP}]
  endpoints: [{addresses: [10.64.1.5], nodeName: node-b}]
";

#[test]
fn indexed_claims_and_names_are_those_of_a_scan_of_every_port() {
    let nodes = [
        NODE.to_string(),
        format!("{NODE}, nodePortAddresses: [172.16.5.0/24]"),
    ];
    for node in nodes {
        let o = oracle(&node, OVERLAPPING);
        let mut packets = o.probes();
        for to in [
            "10.96.0.1",
            "10.96.0.2",
            "10.96.0.3",
            "192.168.0.10",
            "172.16.5.10",
            "127.0.0.1",
            "10.1.1.1",
        ] {
            for port in [53, 80, 443, 30080, 30081] {
                for proto in ["tcp", "udp"] {
                    packets.push(packet("node", &format!("{to}:{port}/{proto}")));
                }
            }
        }
        let mut overlaps = 0;
        let mut filter_only = 0;
        for p in &packets {
            let names = |claims: Vec<(&model::ServicePort, decide::Entry)>| {
                claims
                    .into_iter()
                    .map(|(port, entry)| (port.name.clone(), entry))
                    .collect::<Vec<_>>()
            };
            let indexed = names(o.claims(p));
            assert_eq!(indexed, names(o.claims_by_scan(p)), "{node}: {p}");
            overlaps += usize::from(indexed.len() > 1);
            filter_only += usize::from(
                indexed
                    .iter()
                    .any(|(_, e)| *e == decide::Entry::NodePortFilterOnly),
            );
            // service_port_of's fallback: the first port with the address
            // among its IPs, or its node port on a local address.
            let dst = p.to.addr.ip();
            let dport = p.to.addr.port();
            let scanned = o
                .claims_by_scan(p)
                .first()
                .map(|(x, _)| x.name.clone())
                .or_else(|| {
                    o.ports
                        .iter()
                        .find(|x| {
                            x.cluster_ip == dst
                                || x.external_ips.contains(&dst)
                                || x.lb_ips.contains(&dst)
                                || (x.node_port == Some(dport) && o.is_local(dst))
                        })
                        .map(|x| x.name.clone())
                });
            assert_eq!(o.service_port_of(p).map(|n| n.name), scanned, "{node}: {p}");
        }
        // The state does exercise what it is meant to.
        assert!(overlaps > 0, "{node}: no overlapping claims");
        if node.contains("nodePortAddresses") {
            assert!(filter_only > 0, "{node}: no filter-only node port");
        }
    }
}
