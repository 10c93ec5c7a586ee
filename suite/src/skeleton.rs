//! Scenario skeletons from `kubectl get svc,endpointslices,nodes -o yaml`
//! output: the objects as a cluster, one suggested flow per service address,
//! with expectations the semantic [`oracle`](crate::oracle) predicts. The
//! suggestions are a starting point that a person must check against
//! Kubernetes semantics before committing (the file says so).

use kpconform_iptables::model::Family;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::oracle::Oracle;
use crate::scenario::{
    Cluster, Expect, FlowSource, GeneratorInput, NodeConfig, NodeSpec, Object, ScenarioWriter,
};
use kpconform_iptables::model::Protocol;
use kpconform_iptables::{Packet, Verdict};

/// What the skeleton is built from besides the objects.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The scenario's description.
    pub description: Option<String>,
    /// kube-proxy's `--cluster-cidr`; [`pod_network_from_nodes`] when `None`.
    pub cluster_cidr: Option<IpNet>,
    /// Node names and addresses that override or complete the Node objects.
    pub nodes: Vec<(String, Vec<IpNet>)>,
}

/// Why no skeleton could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkeletonError {
    /// No node is known: no Node objects and no `--node`; the endpoints' node names, if any.
    #[error("no node is known: add the Node objects (`kubectl get nodes -o yaml`) or name one with `--node NAME=IP` (endpoints run on: {0})")]
    NoNodes(String),
    /// A node has no address to put in the scenario.
    #[error("node `{0}` has no InternalIP in its status; give one with `--node {0}=IP`")]
    NoAddress(String),
    /// The objects contain no Service.
    #[error("the objects contain no Service")]
    NoServices,
}

/// The scenario YAML (contract §1) for `objects`.
pub fn skeleton(objects: &[Object], options: &Options) -> Result<String, SkeletonError> {
    let nodes = nodes(objects, options)?;
    let cluster_cidr = options
        .cluster_cidr
        .or_else(|| pod_network_from_nodes(objects).map(|(net, _)| net));
    let services = objects
        .iter()
        .filter(|o| matches!(o, Object::Service(_)))
        .count();
    if services == 0 {
        return Err(SkeletonError::NoServices);
    }
    // Node objects are kept only for scenario nodes (the loader requires it);
    // managedFields are noise in a test fixture.
    let names: BTreeSet<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
    let kept: Vec<Object> = objects
        .iter()
        .filter(|o| match o {
            Object::Node(n) => n
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| names.contains(n)),
            _ => true,
        })
        .cloned()
        .map(strip_managed_fields)
        .collect();

    let (first, first_addresses) = &nodes[0];
    let input = GeneratorInput {
        node: NodeConfig {
            name: first.clone(),
            family: Family::Ipv4,
            addresses: first_addresses.clone(),
            cluster_cidrs: cluster_cidr.into_iter().collect(),
            masquerade_all: false,
            masquerade_bit: 14,
            node_port_addresses: Vec::new(),
        },
        objects: kept.clone(),
    };
    let oracle = Oracle::new(&input);

    let cluster = Cluster {
        cluster_cidrs: cluster_cidr.into_iter().collect(),
        masquerade_all: false,
        masquerade_bit: 14,
        node_port_addresses: Vec::new(),
        nodes: nodes
            .iter()
            .map(|(name, addresses)| NodeSpec {
                name: name.clone(),
                addresses: addresses.clone(),
            })
            .collect(),
        objects: kept,
    };
    let description = options.description.clone().unwrap_or_else(|| {
        format!("TODO: what this scenario shows ({services} service(s), from kubectl output).")
    });
    let mut y = ScenarioWriter::new();
    y.description(&description)
        .tags(&["from-kubectl"])
        .cluster(
            &cluster,
            Some("TODO: kube-proxy's --cluster-cidr (the pod network), if it has one."),
        )
        .comment(
            0,
            "Suggested by kpconform's semantic oracle, one flow per service address on the first\n\
             node. Check every expectation against Kubernetes Service semantics before committing.",
        );
    let mut names_used = BTreeSet::new();
    let node_ip = first_addresses.first().map(IpNet::addr);
    for (name, packet) in suggested_packets(&cluster.objects, node_ip, cluster_cidr) {
        let Ok(prediction) = oracle.predict(&packet) else {
            continue;
        };
        if !names_used.insert(name.clone()) {
            continue;
        }
        let accepted = prediction.accepted();
        let verdict = match prediction.verdict() {
            Some(Verdict::Accept) if !accepted.is_empty() => None,
            v => v,
        };
        let expect = Expect {
            endpoints: (!accepted.is_empty()).then_some(accepted),
            verdict,
            masquerade: prediction.masquerade(),
            sticky: prediction.sticky.then_some(true),
        };
        y.flow(&name, first, packet.from, packet.to, &expect);
    }
    Ok(y.finish())
}

/// One packet per service address: the cluster IP from a pod (or the node),
/// every external and LB IP and node port from an outside client.
fn suggested_packets(
    objects: &[Object],
    node_ip: Option<IpAddr>,
    cluster_cidr: Option<IpNet>,
) -> Vec<(String, Packet)> {
    let outside = FlowSource::Ip(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)));
    let pod = cluster_cidr
        .and_then(|c| c.hosts().last())
        .map(FlowSource::Ip)
        .unwrap_or(FlowSource::Node);
    let mut out = Vec::new();
    for o in objects {
        let Object::Service(svc) = o else { continue };
        let name = format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or("default"),
            svc.metadata.name.as_deref().unwrap_or("?")
        );
        let Some(spec) = &svc.spec else { continue };
        for port in spec.ports.iter().flatten() {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let label = match &port.name {
                Some(p) if !p.is_empty() => format!("{name}:{p}"),
                _ => name.clone(),
            };
            let mut add = |what: String, from: FlowSource, ip: IpAddr, port: u16| {
                out.push((what, Packet::new(from, SocketAddr::new(ip, port), protocol)));
            };
            if let Some(ip) = spec.cluster_ip.as_deref().and_then(|c| c.parse().ok()) {
                let who = if matches!(pod, FlowSource::Node) {
                    "the node"
                } else {
                    "a pod"
                };
                add(format!("{who} to {label} cluster IP"), pod, ip, number);
            }
            for ip in spec
                .external_ips
                .iter()
                .flatten()
                .filter_map(|e| e.parse().ok())
            {
                add(
                    format!("outside client to {label} external IP {ip}"),
                    outside,
                    ip,
                    number,
                );
            }
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            for ip in ingress
                .iter()
                .flat_map(|i| i.iter())
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
            {
                add(
                    format!("outside client to {label} load balancer {ip}"),
                    outside,
                    ip,
                    number,
                );
            }
            if let (Some(np), Some(node_ip)) =
                (port.node_port.and_then(|n| u16::try_from(n).ok()), node_ip)
            {
                add(
                    format!("outside client to {label} node port"),
                    outside,
                    node_ip,
                    np,
                );
            }
        }
    }
    out
}

/// Scenario nodes: Node objects with their InternalIPs, completed or
/// overridden by `options.nodes`, else the endpoints' `nodeName`s (which then
/// need addresses from `options.nodes`).
fn nodes(
    objects: &[Object],
    options: &Options,
) -> Result<Vec<(String, Vec<IpNet>)>, SkeletonError> {
    let mut out: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    for o in objects {
        if let Object::Node(n) = o {
            let Some(name) = n.metadata.name.clone() else {
                continue;
            };
            let addresses = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .map(|a| {
                    a.iter()
                        .filter(|a| a.type_ == "InternalIP")
                        .filter_map(|a| a.address.parse::<IpAddr>().ok())
                        .map(IpNet::from)
                        .collect()
                })
                .unwrap_or_default();
            out.insert(name, addresses);
        }
    }
    if out.is_empty() && options.nodes.is_empty() {
        // Endpoints name their nodes, but not their addresses.
        let named: BTreeSet<String> = objects
            .iter()
            .filter_map(|o| match o {
                Object::EndpointSlice(s) => {
                    Some(s.endpoints.iter().filter_map(|e| e.node_name.clone()))
                }
                _ => None,
            })
            .flatten()
            .collect();
        return Err(SkeletonError::NoNodes(
            named.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    for (name, addresses) in &options.nodes {
        out.insert(name.clone(), addresses.clone());
    }
    if let Some((name, _)) = out.iter().find(|(_, a)| a.is_empty()) {
        return Err(SkeletonError::NoAddress(name.clone()));
    }
    // Nodes named on the command line come first: the first node gets the flows.
    let mut ordered: Vec<(String, Vec<IpNet>)> = Vec::new();
    for (name, _) in &options.nodes {
        if let Some(a) = out.remove(name) {
            ordered.push((name.clone(), a));
        }
    }
    ordered.extend(out);
    Ok(ordered)
}

/// The pod network the Node objects imply, and the pod CIDRs it was derived
/// from: the smallest network of prefix /16 or shorter holding every IPv4
/// entry of the Nodes' `spec.podCIDRs` (else `spec.podCIDR`), a common
/// layout (a /16 cluster CIDR cut into per-node /24s); `None` without IPv4
/// pod CIDRs. A guess at kube-proxy's `--cluster-cidr`, used by
/// `new-scenario` and `audit` when none is given.
pub fn pod_network_from_nodes(objects: &[Object]) -> Option<(IpNet, Vec<IpNet>)> {
    let cidrs: Vec<IpNet> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Node(n) => n.spec.as_ref(),
            _ => None,
        })
        .flat_map(|spec| {
            let listed = spec.pod_cidrs.as_deref().unwrap_or_default();
            let all: Vec<&str> = if listed.is_empty() {
                spec.pod_cidr.as_deref().into_iter().collect()
            } else {
                listed.iter().map(String::as_str).collect()
            };
            // IPv4 only for now: the IPv6 pod network is a second CIDR of
            // a dual-stack `--cluster-cidr`.
            all.into_iter()
                .filter_map(|c| c.parse::<ipnet::Ipv4Net>().ok())
                .map(IpNet::V4)
                .collect::<Vec<_>>()
        })
        .collect();
    let first = cidrs.first()?;
    let mut prefix = first.prefix_len().min(16);
    loop {
        let net = IpNet::new(first.network(), prefix).ok()?.trunc();
        if cidrs.iter().all(|c| net.contains(c)) {
            return Some((net, cidrs));
        }
        prefix = prefix.checked_sub(1)?;
    }
}

fn strip_managed_fields(mut o: Object) -> Object {
    let meta = match &mut o {
        Object::Service(s) => &mut s.metadata,
        Object::EndpointSlice(s) => &mut s.metadata,
        Object::Node(n) => &mut n.metadata,
    };
    meta.managed_fields = None;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess_cluster_cidr(objects: &[Object]) -> Option<IpNet> {
        pod_network_from_nodes(objects).map(|(net, _)| net)
    }

    #[test]
    fn cluster_cidr_covers_every_pod_cidr() {
        let node = |cidr: &str| {
            Object::Node(Box::new(k8s_openapi::api::core::v1::Node {
                spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                    pod_cidr: Some(cidr.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        let objects = [node("10.244.0.0/24"), node("10.244.3.0/24")];
        assert_eq!(
            guess_cluster_cidr(&objects),
            Some("10.244.0.0/16".parse().unwrap())
        );
        let objects = [node("10.244.0.0/24"), node("10.245.0.0/24")];
        assert_eq!(
            guess_cluster_cidr(&objects),
            Some("10.244.0.0/15".parse().unwrap())
        );
        assert_eq!(guess_cluster_cidr(&[]), None);
    }

    #[test]
    fn pod_cidrs_come_before_pod_cidr_and_ipv6_is_ignored() {
        let node = |single: Option<&str>, list: &[&str]| {
            Object::Node(Box::new(k8s_openapi::api::core::v1::Node {
                spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                    pod_cidr: single.map(Into::into),
                    pod_cidrs: Some(list.iter().map(|c| c.to_string()).collect()),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        let objects = [
            node(
                Some("fd00:10:64::/64"),
                &["fd00:10:64::/64", "10.64.0.0/24"],
            ),
            node(None, &["10.64.2.0/24"]),
            node(Some("10.64.1.0/24"), &[]),
        ];
        let (net, from) = pod_network_from_nodes(&objects).unwrap();
        assert_eq!(net, "10.64.0.0/16".parse().unwrap());
        assert_eq!(from.len(), 3);
        assert_eq!(
            pod_network_from_nodes(&[node(Some("fd00::/64"), &[])]),
            None
        );
    }
}
