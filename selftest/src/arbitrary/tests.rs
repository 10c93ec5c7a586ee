//! The generated states are valid as the apiserver validates them, cover
//! every feature the brief lists, and print as scenarios the loader reads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kpconform_suite::exact::BigRational;

use super::properties::{self, shuffle_order_free};
use super::{Case, Entropy, Seeded};
use kpconform_harness::{FnGenerator, GeneratorError};
use kpconform_iptables::model::Family;
use kpconform_iptables::SourceFile;
use kpconform_iptables::Verdict;
use kpconform_suite::scenario::{Expect, Object, Scenario};

const SEEDS: u64 = 400;

fn services(case: &Case) -> Vec<&Service> {
    case.cluster
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::Service(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

fn slices(case: &Case) -> Vec<&EndpointSlice> {
    case.cluster
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

#[test]
fn a_seed_always_gives_the_same_case() {
    for seed in [0, 1, 42, u64::MAX] {
        assert_eq!(
            format!("{:?}", Case::from_seed(seed)),
            format!("{:?}", Case::from_seed(seed))
        );
    }
    assert_ne!(
        format!("{:?}", Case::from_seed(1)),
        format!("{:?}", Case::from_seed(2))
    );
}

#[test]
fn no_bytes_give_the_smallest_case() {
    let case = Case::from_bytes(&[]);
    assert_eq!(case.families(), [Family::Ipv4], "IPv4 is the simplest");
    assert_eq!(case.cluster.nodes.len(), 1);
    assert_eq!(
        case.cluster.cluster_cidrs,
        vec!["10.64.0.0/16".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(case.cluster.masquerade_bit, 14);
    assert!(!case.cluster.masquerade_all);
    let svcs = services(&case);
    assert_eq!(svcs.len(), 1);
    let spec = svcs[0].spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.ports.as_ref().unwrap().len(), 1);
    assert_eq!(case.probes.len(), 1);
    // Bytes and the PRNG go through the same generator.
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let a = Case::from_bytes(&bytes);
    assert_eq!(format!("{a:?}"), format!("{:?}", Case::from_bytes(&bytes)));
    assert!(a.cluster.objects.len() > 1, "{a:?}");
}

/// What the apiserver's validation and allocators guarantee.
#[test]
fn states_are_valid_as_the_apiserver_would_accept_them() {
    for seed in 0..SEEDS {
        let case = Case::from_seed(seed);
        let mut cluster_ips = BTreeSet::new();
        let mut node_ports = BTreeSet::new();
        let service_nets: [IpNet; 2] = [
            "10.96.0.0/16".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ];
        let families = case.families();
        families_are_consistent(seed, &case, &families);
        for svc in services(&case) {
            let spec = svc.spec.as_ref().unwrap();
            let type_ = spec.type_.as_deref().unwrap();
            let ports = spec.ports.as_deref().unwrap_or(&[]);
            match spec.cluster_ip.as_deref() {
                Some("None") => assert_eq!(type_, "ClusterIP"),
                Some(_) => {
                    let ips = spec.cluster_ips.as_deref().unwrap();
                    assert_eq!(spec.cluster_ip.as_deref(), Some(ips[0].as_str()));
                    let svc_families = spec.ip_families.as_deref().unwrap();
                    assert_eq!(ips.len(), svc_families.len(), "seed {seed}");
                    for (ip, family) in ips.iter().zip(svc_families) {
                        let ip: IpAddr = ip.parse().unwrap();
                        assert_eq!(Family::of(ip).as_str(), family, "seed {seed}");
                        assert!(
                            families.contains(&Family::of(ip)),
                            "seed {seed}: {ip} of a family the cluster lacks"
                        );
                        assert!(
                            service_nets.iter().any(|n| n.contains(&ip)),
                            "seed {seed}: {ip}"
                        );
                        assert!(cluster_ips.insert(ip), "seed {seed}: {ip} twice");
                    }
                }
                None => assert_eq!(type_, "ExternalName", "seed {seed}"),
            }
            if type_ != "ExternalName" {
                let svc_families = spec.ip_families.as_deref().unwrap();
                let policy = spec.ip_family_policy.as_deref().unwrap();
                match policy {
                    "SingleStack" => assert_eq!(svc_families.len(), 1, "seed {seed}"),
                    "PreferDualStack" => {
                        assert_eq!(svc_families.len(), families.len(), "seed {seed}")
                    }
                    "RequireDualStack" => {
                        assert_eq!((svc_families.len(), families.len()), (2, 2), "seed {seed}")
                    }
                    other => panic!("seed {seed}: ipFamilyPolicy {other}"),
                }
            } else {
                assert!(spec.ip_families.is_none() && spec.cluster_ips.is_none());
            }
            if ports.len() > 1 {
                let names: BTreeSet<_> = ports.iter().map(|p| p.name.clone().unwrap()).collect();
                assert_eq!(names.len(), ports.len(), "seed {seed}: port names");
            }
            let keys: BTreeSet<_> = ports.iter().map(|p| (p.port, p.protocol.clone())).collect();
            assert_eq!(
                keys.len(),
                ports.len(),
                "seed {seed}: (port, protocol) pairs"
            );
            for p in ports {
                assert!((1..=65535).contains(&p.port));
                if let Some(np) = p.node_port {
                    assert!(matches!(type_, "NodePort" | "LoadBalancer"), "seed {seed}");
                    assert!((30000..=32767).contains(&np), "seed {seed}: {np}");
                    assert!(node_ports.insert(np), "seed {seed}: node port {np} twice");
                } else {
                    assert!(
                        type_ != "NodePort",
                        "seed {seed}: NodePort without node port"
                    );
                }
            }
            if let Some(hc) = spec.health_check_node_port {
                assert_eq!(type_, "LoadBalancer");
                assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
                assert!(
                    node_ports.insert(hc),
                    "seed {seed}: health check port {hc} reused"
                );
            } else if type_ == "LoadBalancer" {
                assert_ne!(
                    spec.external_traffic_policy.as_deref(),
                    Some("Local"),
                    "seed {seed}"
                );
            }
            let external = matches!(type_, "NodePort" | "LoadBalancer")
                || spec.external_ips.as_ref().is_some_and(|v| !v.is_empty());
            assert_eq!(
                spec.external_traffic_policy.is_some(),
                external,
                "seed {seed}"
            );
            if spec.load_balancer_source_ranges.is_some() {
                assert_eq!(type_, "LoadBalancer", "seed {seed}");
            }
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref());
            if ingress.is_some() {
                assert_eq!(type_, "LoadBalancer", "seed {seed}");
            }
            if let Some(t) = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
            {
                assert!((1..=86400).contains(&t));
                assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
            }
            if type_ == "ExternalName" {
                assert!(spec.external_name.is_some() && spec.selector.is_none());
            }
        }
        slices_are_valid(seed, &case);
    }
}

fn slices_are_valid(seed: u64, case: &Case) {
    let svcs = services(case);
    let mut pod_ips = BTreeSet::new();
    for slice in slices(case) {
        let labels = slice.metadata.labels.as_ref().unwrap();
        let owner = &labels["kubernetes.io/service-name"];
        let svc = svcs
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(owner))
            .unwrap();
        assert_eq!(slice.metadata.namespace, svc.metadata.namespace);
        let spec = svc.spec.as_ref().unwrap();
        assert_ne!(spec.type_.as_deref(), Some("ExternalName"), "seed {seed}");
        assert_eq!(
            labels.contains_key("service.kubernetes.io/headless"),
            spec.cluster_ip.as_deref() == Some("None")
        );
        // Every service port has a slice port of the same name and protocol.
        let slice_ports = slice.ports.as_deref().unwrap();
        for p in spec.ports.as_deref().unwrap_or(&[]) {
            let sp = slice_ports
                .iter()
                .find(|sp| {
                    sp.name.as_deref().unwrap_or("") == p.name.as_deref().unwrap_or("")
                        && sp.protocol == p.protocol
                })
                .unwrap();
            if let Some(IntOrString::Int(t)) = p.target_port {
                assert_eq!(sp.port, Some(t), "seed {seed}");
            }
            if p.target_port.is_none() {
                assert_eq!(sp.port, Some(p.port), "seed {seed}");
            }
        }
        // A slice per family of the service, of that address type.
        let svc_families = spec.ip_families.as_deref().unwrap();
        assert!(
            svc_families.contains(&slice.address_type),
            "seed {seed}: {} slice of {svc_families:?}",
            slice.address_type
        );
        for ep in &slice.endpoints {
            let ip: IpAddr = ep.addresses[0].parse().unwrap();
            assert_eq!(Family::of(ip).as_str(), slice.address_type, "seed {seed}");
            assert!(pod_ips.insert(ip), "seed {seed}: pod {ip} twice");
            // 10.64.N.x and fd00:10:64:(a+N)::x on node N, N = 200 on none.
            let subnet = match ip {
                IpAddr::V4(v4) => {
                    assert_eq!(&v4.octets()[..2], &[10, 64]);
                    usize::from(v4.octets()[2])
                }
                IpAddr::V6(v6) => {
                    assert_eq!(&v6.segments()[..3], &[0xfd00, 0x10, 0x64]);
                    usize::from(v6.segments()[3] - 0xa)
                }
            };
            match ep.node_name.as_deref() {
                Some(node) => {
                    let index = case
                        .cluster
                        .nodes
                        .iter()
                        .position(|n| n.name == node)
                        .unwrap();
                    assert_eq!(subnet, index, "seed {seed}: {ip} on {node}");
                }
                None => assert_eq!(subnet, 200),
            }
            if let Some(c) = &ep.conditions {
                // ready = serving && !terminating, as the controller sets it.
                let (r, s, t) = (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap());
                assert_eq!(r, s && !t, "seed {seed}: {c:?}");
            }
        }
    }
}

/// Every node has an address of each family of the cluster, the cluster
/// CIDRs are one per family, and every address the objects and probes name
/// is of a family the cluster has; the probes cover every family.
fn families_are_consistent(seed: u64, case: &Case, families: &[Family]) {
    let c = &case.cluster;
    for node in &c.nodes {
        assert_eq!(node.families(), families, "seed {seed}: {}", node.name);
    }
    let cidr_families: Vec<Family> = c
        .cluster_cidrs
        .iter()
        .map(|n| Family::of(n.addr()))
        .collect();
    assert!(
        cidr_families.is_empty() || cidr_families.len() == families.len(),
        "seed {seed}: {:?}",
        c.cluster_cidrs
    );
    for family in families {
        if !cidr_families.is_empty() {
            assert!(cidr_families.contains(family), "seed {seed}");
        }
        assert!(
            case.probes.iter().any(|p| p.family() == *family),
            "seed {seed}: no {family} probe"
        );
    }
    for n in &c.node_port_addresses {
        assert!(families.contains(&Family::of(n.addr())), "seed {seed}: {n}");
    }
    for p in &case.probes {
        if let kpconform_suite::scenario::FlowSource::Ip(ip) = p.from {
            assert_eq!(Family::of(ip), p.family(), "seed {seed}: {}", p.name);
        }
        assert!(families.contains(&p.family()), "seed {seed}: {}", p.name);
    }
    for svc in services(case) {
        let spec = svc.spec.as_ref().unwrap();
        let ips = spec.external_ips.iter().flatten().cloned();
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone());
        for ip in ips.chain(ingress) {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(families.contains(&Family::of(ip)), "seed {seed}: {ip}");
        }
        for r in spec.load_balancer_source_ranges.iter().flatten() {
            let r: IpNet = r.parse().unwrap();
            assert!(families.contains(&Family::of(r.addr())), "seed {seed}: {r}");
        }
    }
}

/// Across many seeds, every feature the fuzzer is meant to exercise shows up.
#[test]
fn states_cover_every_feature() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut mark = |what: &str, yes: bool| {
        if yes {
            seen.insert(what.to_string());
        }
    };
    for seed in 0..SEEDS {
        let case = Case::from_seed(seed);
        let c = &case.cluster;
        mark(&format!("{} nodes", c.nodes.len()), true);
        let families = case.families();
        mark("IPv4-only", families == [Family::Ipv4]);
        mark("IPv6-only", families == [Family::Ipv6]);
        mark("dual-stack", families.len() == 2);
        mark("dual-stack cluster CIDR", c.cluster_cidrs.len() == 2);
        mark(
            "IPv6 first on a node",
            c.nodes
                .iter()
                .any(|n| n.addresses.len() > 1 && n.addresses[0].addr().is_ipv6()),
        );
        let npa: BTreeSet<bool> = c
            .node_port_addresses
            .iter()
            .map(|n| n.addr().is_ipv6())
            .collect();
        mark("mixed nodePortAddresses", npa.len() == 2);
        mark(
            "IPv6 nodePortAddresses",
            c.node_port_addresses.iter().any(|n| n.addr().is_ipv6()),
        );
        mark("no cluster CIDR", c.cluster_cidrs.is_empty());
        mark("masqueradeAll", c.masquerade_all);
        mark("other masquerade bit", c.masquerade_bit != 14);
        mark("nodePortAddresses", !c.node_port_addresses.is_empty());
        mark(
            "second node address",
            c.nodes.iter().any(|n| n.addresses.len() > 1),
        );
        mark("zone label", c.objects.iter().any(|o| matches!(o, Object::Node(n) if n.metadata.labels.as_ref().unwrap().contains_key("topology.kubernetes.io/zone"))));
        for svc in services(&case) {
            let spec = svc.spec.as_ref().unwrap();
            mark(spec.type_.as_deref().unwrap(), true);
            if let Some(svc_families) = &spec.ip_families {
                mark(
                    &format!(
                        "{} {}",
                        spec.ip_family_policy.as_deref().unwrap(),
                        svc_families.join(",")
                    ),
                    true,
                );
            }
            mark(
                "IPv6 external IP",
                spec.external_ips
                    .iter()
                    .flatten()
                    .any(|ip| ip.contains(':')),
            );
            mark(
                "IPv6 source range",
                spec.load_balancer_source_ranges
                    .iter()
                    .flatten()
                    .any(|r| r.contains(':')),
            );
            mark("headless", spec.cluster_ip.as_deref() == Some("None"));
            let ports = spec.ports.as_deref().unwrap_or(&[]);
            mark(&format!("{} ports", ports.len()), true);
            for p in ports {
                mark(p.protocol.as_deref().unwrap(), true);
                mark("unnamed port", p.name.is_none());
                mark(
                    "named target port",
                    matches!(p.target_port, Some(IntOrString::String(_))),
                );
                mark(
                    "numbered target port",
                    matches!(p.target_port, Some(IntOrString::Int(_))),
                );
            }
            mark("external IPs", spec.external_ips.is_some());
            mark("source ranges", spec.load_balancer_source_ranges.is_some());
            mark(
                "health check node port",
                spec.health_check_node_port.is_some(),
            );
            mark(
                "ETP Local",
                spec.external_traffic_policy.as_deref() == Some("Local"),
            );
            mark(
                "ITP Local",
                spec.internal_traffic_policy.as_deref() == Some("Local"),
            );
            mark(
                "ClientIP",
                spec.session_affinity.as_deref() == Some("ClientIP"),
            );
            mark("affinity timeout", spec.session_affinity_config.is_some());
            mark(
                "no LB node ports",
                spec.allocate_load_balancer_node_ports == Some(false),
            );
            mark("topology", svc.metadata.annotations.is_some());
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.clone())
                .unwrap_or_default();
            mark("LB ingress", !ingress.is_empty());
            mark(
                "ipMode Proxy",
                ingress
                    .iter()
                    .any(|i| i.ip_mode.as_deref() == Some("Proxy")),
            );
            mark("ipMode absent", ingress.iter().any(|i| i.ip_mode.is_none()));
            mark(
                "IPv6 LB ingress",
                ingress
                    .iter()
                    .any(|i| i.ip.as_deref().is_some_and(|ip| ip.contains(':'))),
            );
        }
        let per_service: BTreeMap<&String, usize> =
            slices(&case).iter().fold(BTreeMap::new(), |mut m, s| {
                *m.entry(&s.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"])
                    .or_default() += 1;
                m
            });
        mark("two slices", per_service.values().any(|n| *n == 2));
        mark(
            "IPv6 slice",
            slices(&case).iter().any(|s| s.address_type == "IPv6"),
        );
        mark(
            "slices of both families for one service",
            slices(&case).iter().any(|a| {
                slices(&case).iter().any(|b| {
                    a.address_type != b.address_type
                        && a.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"]
                            == b.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"]
                })
            }),
        );
        for ep in slices(&case).iter().flat_map(|s| &s.endpoints) {
            let c = ep.conditions.as_ref();
            let key = c.map(|c| (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap()));
            mark(&format!("conditions {key:?}"), true);
            mark("no nodeName", ep.node_name.is_none());
            mark("zone hint", ep.hints.is_some());
        }
        mark(
            "many endpoints",
            slices(&case)
                .iter()
                .map(|s| s.endpoints.len())
                .sum::<usize>()
                >= 10,
        );
        for p in &case.probes {
            mark(
                &format!("from {:?}", p.from).replace(|c: char| c.is_ascii_digit() || c == '.', ""),
                true,
            );
            mark(p.to.protocol.as_str().as_str(), true);
            mark(&format!("{} probe", p.family()), true);
            mark(
                "node to [::1]:port",
                p.from == kpconform_suite::scenario::FlowSource::Node
                    && p.to.addr.ip() == "::1".parse::<IpAddr>().unwrap(),
            );
        }
    }
    let wanted = [
        "IPv4-only",
        "IPv6-only",
        "dual-stack",
        "dual-stack cluster CIDR",
        "IPv6 first on a node",
        "mixed nodePortAddresses",
        "IPv6 nodePortAddresses",
        "SingleStack IPv4",
        "SingleStack IPv6",
        "PreferDualStack IPv4",
        "PreferDualStack IPv6",
        "PreferDualStack IPv4,IPv6",
        "PreferDualStack IPv6,IPv4",
        "RequireDualStack IPv4,IPv6",
        "RequireDualStack IPv6,IPv4",
        "IPv6 external IP",
        "IPv6 source range",
        "IPv6 LB ingress",
        "IPv6 slice",
        "slices of both families for one service",
        "IPv4 probe",
        "IPv6 probe",
        "node to [::1]:port",
        "1 nodes",
        "2 nodes",
        "3 nodes",
        "no cluster CIDR",
        "masqueradeAll",
        "other masquerade bit",
        "nodePortAddresses",
        "second node address",
        "zone label",
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
        "ExternalName",
        "headless",
        "1 ports",
        "2 ports",
        "3 ports",
        "TCP",
        "UDP",
        "SCTP",
        "unnamed port",
        "named target port",
        "numbered target port",
        "external IPs",
        "source ranges",
        "health check node port",
        "ETP Local",
        "ITP Local",
        "ClientIP",
        "affinity timeout",
        "no LB node ports",
        "topology",
        "LB ingress",
        "ipMode Proxy",
        "ipMode absent",
        "two slices",
        "conditions Some((true, true, false))",
        "conditions Some((false, false, false))",
        "conditions Some((false, true, true))",
        "conditions Some((false, false, true))",
        "conditions None",
        "no nodeName",
        "zone hint",
        "many endpoints",
        "from Node",
        "from Ip()",
        "tcp",
        "udp",
        "sctp",
    ];
    let missing: Vec<&str> = wanted.into_iter().filter(|w| !seen.contains(*w)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn the_reproducer_is_a_scenario_with_the_same_state() {
    let mut bracketed = 0;
    for seed in 0..60 {
        let case = Case::from_seed(seed);
        let expect = |p: &super::Probe| {
            (p.name.len() % 2 == 0).then(|| Expect {
                endpoints: Some([(p.to.addr, BigRational::new(1.into(), 4.into()))].into()),
                verdict: Some(Verdict::Accept),
                masquerade: Some(true),
                sticky: None,
            })
        };
        let yaml = case.to_scenario_yaml(expect);
        if yaml.contains("    to: \"[") && yaml.contains("        \"[") {
            bracketed += 1;
        }
        let back = Scenario::from_source(&SourceFile::new("case.yaml", yaml.as_str()), "fuzz/case")
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{yaml}"));
        let c = &case.cluster;
        assert_eq!(back.cluster.objects, c.objects, "seed {seed}");
        assert_eq!(back.cluster.nodes, c.nodes);
        assert_eq!(
            (
                back.cluster.cluster_cidrs,
                back.cluster.masquerade_all,
                back.cluster.masquerade_bit,
                &back.cluster.node_port_addresses
            ),
            (
                c.cluster_cidrs.clone(),
                c.masquerade_all,
                c.masquerade_bit,
                &c.node_port_addresses
            )
        );
        let flows: Vec<_> = case.probes.iter().filter(|p| expect(p).is_some()).collect();
        assert_eq!(back.flows.len(), flows.len());
        for (flow, probe) in back.flows.iter().zip(flows) {
            assert_eq!(
                (&flow.name, &flow.node, flow.from, flow.to),
                (&probe.name, &probe.node, probe.from, probe.to)
            );
            assert_eq!(Some(flow.expect.clone()), expect(probe));
        }
    }
    // IPv6 flows and endpoint keys are written bracketed and quoted, and read back.
    assert!(bracketed > 5, "{bracketed} cases with IPv6 flows");
}

/// The reproducer `{:?}` prints, with the oracle's expectations, loads for
/// IPv6-only and dual-stack cases, and its IPv6 flows keep their family.
#[test]
fn ipv6_reproducers_load_with_the_oracles_expectations() {
    let mut seen = BTreeSet::new();
    for seed in 0..80 {
        let case = Case::from_seed(seed);
        let families = case.families();
        if !families.contains(&Family::Ipv6) {
            continue;
        }
        seen.insert(families.len());
        let yaml = format!("{case:?}");
        let back = Scenario::from_source(&SourceFile::new("case.yaml", yaml.as_str()), "fuzz/v6")
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{yaml}"));
        assert_eq!(back.cluster.nodes, case.cluster.nodes);
        for flow in &back.flows {
            let probe = case.probes.iter().find(|p| p.name == flow.name).unwrap();
            assert_eq!((flow.from, flow.to), (probe.from, probe.to), "seed {seed}");
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "IPv6-only and dual-stack cases among the seeds"
    );
}

const DUMP: &str =
    "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n\
-A PREROUTING -j KUBE-SERVICES\n\
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.64.0.1:80\n\
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.64.0.2:80\n\
-A KUBE-SERVICES -d 10.96.0.3/32 -j DROP\n\
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n\
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30001 -j DROP\n\
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30002 -j DROP\n\
COMMIT\n";

#[test]
fn shuffles_move_only_order_free_rules_and_keep_the_nodeports_jump() {
    let mut orders = BTreeSet::new();
    for seed in 0..200 {
        let out = shuffle_order_free(DUMP, &mut Seeded::new(seed));
        let mut a: Vec<&str> = out.lines().collect();
        let mut b: Vec<&str> = DUMP.lines().collect();
        assert_eq!(out.lines().nth(4), Some("-A PREROUTING -j KUBE-SERVICES"));
        assert_eq!(out.lines().nth(8), DUMP.lines().nth(8), "{out}");
        orders.insert(out.clone());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
    // 3! orders of KUBE-SERVICES times 2 of KUBE-NODEPORTS.
    assert_eq!(orders.len(), 12);
}

fn fixed(
    text: &'static str,
) -> impl Fn(&kpconform_suite::scenario::GeneratorInput) -> Result<String, GeneratorError> + Send + Sync
{
    move |_| Ok(text.to_string())
}

#[test]
fn an_order_dependent_chain_is_caught_by_the_shuffle() {
    let generator = FnGenerator::new("order-dependent", fixed(DUMP));
    let mut case = Case::from_bytes(&[]);
    case.probes[0].from =
        kpconform_suite::scenario::FlowSource::Ip(Ipv4Addr::new(203, 0, 113, 7).into());
    case.probes[0].to.addr = "10.96.0.1:80".parse().unwrap();
    // Some shuffle swaps the two DNAT rules for 10.96.0.1:80; the trace notices.
    let found = (0..20).find_map(|s| {
        properties::normalize_roundtrip(&case, &generator, &mut Seeded::new(s)).err()
    });
    let f = found.expect("a shuffle that swaps the DNATs");
    assert_eq!(f.property, "normalize_roundtrip");
    assert!(f.message.contains("changes the trace"), "{f}");
}

#[test]
fn quantization_that_hides_an_endpoint_is_caught() {
    // 1e-10 rounds to 0 in the kernel: 10.64.0.1 is reachable only on paper.
    let dump = "*nat\n:OUTPUT ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n-A OUTPUT -j KUBE-SVC-X\n\
-A KUBE-SVC-X -m statistic --mode random --probability 0.0000000001 -j DNAT --to-destination 10.64.0.1:80\n\
-A KUBE-SVC-X -j DNAT --to-destination 10.64.0.2:80\nCOMMIT\n";
    let generator = FnGenerator::new("tiny-probability", fixed(dump));
    let mut case = Case::from_bytes(&[]);
    case.probes[0].from = kpconform_suite::scenario::FlowSource::Node;
    let f = properties::distributions(&case, &generator).expect_err("unreachable in the kernel");
    assert!(f.message.contains("kernel quantization"), "{f}");
}

#[test]
fn broken_generators_are_findings_not_panics() {
    let case = Case::from_seed(3);
    let failing = FnGenerator::new("fails", |_: &_| {
        Err(GeneratorError::new(
            kpconform_harness::GeneratorErrorKind::Failed,
            "boom",
        ))
    });
    let f = properties::invariants(&case, &failing).expect_err("fails");
    assert!(f.message.contains("boom"), "{f}");
    let garbage = FnGenerator::new("garbage", fixed("*nat\n-A BOGUS -x\n"));
    let f = properties::print_roundtrip(&case, &garbage).expect_err("garbage");
    assert!(f.message.contains("do not parse"), "{f}");
}

#[test]
fn parse_rules_accepts_errors_inside_the_text() {
    for text in [
        "",
        "*nat\n-A X -j\n",
        "*filter\n:INPUT DROP\n-A INPUT -m bogus --x\nCOMMIT",
        "\u{feff}*nat\r\n",
        DUMP,
    ] {
        properties::parse_rules(text).unwrap_or_else(|f| panic!("{text:?}: {f}"));
    }
}

#[test]
fn entropy_helpers_stay_in_range() {
    let mut e = Seeded::new(9);
    for _ in 0..1000 {
        assert!(e.below(3) < 3);
        let r = e.range(5, 7);
        assert!((5..=7).contains(&r));
        assert!(e.weighted(&[0, 1, 0]) == 1);
    }
    let mut dry = ::arbitrary::Unstructured::new(&[]);
    assert_eq!(
        (
            dry.below(10),
            dry.range(3, 9),
            dry.chance(99),
            dry.weighted(&[2, 5])
        ),
        (0, 3, false, 0)
    );
}

#[test]
fn shrinking_keeps_only_what_the_failure_needs() {
    let is_lb = |o: &Object| matches!(o, Object::Service(s) if s.spec.as_ref().unwrap().type_.as_deref() == Some("LoadBalancer"));
    let seed = (0..100)
        .find(|s| {
            let c = Case::from_seed(*s);
            c.cluster.objects.len() > 3 && c.probes.len() > 2 && c.cluster.objects.iter().any(is_lb)
        })
        .expect("a seed with a LoadBalancer among other objects");
    let case = Case::from_seed(seed);
    let mut calls = 0;
    let small = case.shrink(1000, |c| {
        calls += 1;
        c.cluster.objects.iter().any(is_lb)
    });
    assert_eq!(small.cluster.objects.len(), 1, "{small:?}");
    assert!(is_lb(&small.cluster.objects[0]));
    assert_eq!(small.probes.len(), 1);
    assert!(!small.cluster.masquerade_all && small.cluster.masquerade_bit == 14);
    assert!(
        small
            .cluster
            .nodes
            .iter()
            .all(|n| small.probes.iter().any(|p| p.node == n.name))
            || small.cluster.nodes.len() == 1
    );
    assert!(calls > 1);
    // Nothing fails: nothing is taken.
    assert_eq!(
        format!("{:?}", case.shrink(10, |_| false)),
        format!("{case:?}")
    );
}

#[test]
fn smaller_cases_stay_loadable_scenarios() {
    for seed in 0..25 {
        for (i, small) in Case::from_seed(seed).smaller().into_iter().enumerate() {
            let yaml = small.to_scenario_yaml(|_| None);
            let back = Scenario::from_source(&SourceFile::new("s.yaml", yaml.as_str()), "fuzz/s")
                .unwrap_or_else(|e| panic!("seed {seed} step {i}: {e:?}\n{yaml}"));
            assert_eq!(back.cluster.objects, small.cluster.objects);
        }
    }
}
