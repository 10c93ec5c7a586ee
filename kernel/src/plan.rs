//! What a node's topology must contain, worked out from the scenario alone
//! (no kernel involved, so it is unit-tested anywhere).
//!
//! Every address a flow can reach gets an owner that answers on every port
//! a flow can reach it on:
//! - the **node** owns its own addresses and loopback, and listens on every
//!   NodePort of every Service (so an un-DNATed node-port connection is
//!   answered, not refused) and on every port a flow sends to it;
//! - one **pod** namespace per EndpointSlice address (this node's and other
//!   nodes' pods alike), listening on its slices' ports;
//! - the **sink**, the node's default route, owns every other address a
//!   flow can end at (a cluster IP, external or load-balancer IP left
//!   un-DNATed, another node's address), so that "accepted, destination
//!   unchanged" is answered and visible;
//! - the **client** owns every `from` address that is not a pod's.
//!
//! Where a flow can end is taken from three places: its own `to`, its
//! `expect.endpoints`, and every destination the tracer predicts for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kpconform_iptables::model::{Family, Protocol};
use kpconform_iptables::{Distribution, FlowSource};
use kpconform_suite::scenario::{Flow, Object, Scenario};

/// The transport protocols a listener can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl L4 {
    /// The flow protocol's listener protocol, if it has one.
    pub fn of(p: Protocol) -> Option<L4> {
        match p {
            Protocol::Tcp => Some(L4::Tcp),
            Protocol::Udp => Some(L4::Udp),
            Protocol::Sctp => Some(L4::Sctp),
            _ => None,
        }
    }

    fn from_k8s(name: Option<&str>) -> Option<L4> {
        match name.unwrap_or("TCP") {
            "TCP" => Some(L4::Tcp),
            "UDP" => Some(L4::Udp),
            "SCTP" => Some(L4::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for L4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Sctp => "sctp",
        })
    }
}

/// A listening socket's address.
pub type Listen = (SocketAddr, L4);

/// The topology of one (scenario, node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The node's addresses (both families), first of each family first.
    pub node_addresses: Vec<IpAddr>,
    /// What the node listens on (its addresses and loopback).
    pub node_listens: BTreeSet<Listen>,
    /// One pod namespace per endpoint address, and what it listens on.
    pub pods: BTreeMap<IpAddr, BTreeSet<Listen>>,
    /// Addresses of the client namespace.
    pub clients: BTreeSet<IpAddr>,
    /// What the client listens on: client addresses that are also where a
    /// flow can end (a load balancer's address used as a source, say).
    pub client_listens: BTreeSet<Listen>,
    /// Addresses of the sink and what it listens on.
    pub sink: BTreeMap<IpAddr, BTreeSet<Listen>>,
}

/// Who owns an address in a [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The node (its own addresses and loopback).
    Node,
    /// The pod namespace of this address.
    Pod(IpAddr),
    /// The client namespace.
    Client,
    /// The sink.
    Sink,
}

/// Whether an address is the node's: one of its own, or loopback.
fn node_local(node_addresses: &[IpAddr], ip: IpAddr) -> bool {
    ip.is_loopback() || node_addresses.contains(&ip)
}

/// Every EndpointSlice address of `families`, with the slice's ports.
fn endpoints(scenario: &Scenario, families: &[Family]) -> BTreeMap<IpAddr, BTreeSet<(u16, L4)>> {
    let mut out: BTreeMap<IpAddr, BTreeSet<(u16, L4)>> = BTreeMap::new();
    for object in &scenario.cluster.objects {
        let Object::EndpointSlice(slice) = object else {
            continue;
        };
        let ports = slice_ports(slice);
        for endpoint in &slice.endpoints {
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                if !families.contains(&Family::of(ip)) {
                    continue;
                }
                out.entry(ip).or_default().extend(ports.iter().copied());
            }
        }
    }
    out
}

fn slice_ports(slice: &EndpointSlice) -> Vec<(u16, L4)> {
    slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let port = u16::try_from(p.port?).ok().filter(|p| *p != 0)?;
            Some((port, L4::from_k8s(p.protocol.as_deref())?))
        })
        .collect()
}

fn node_ports(scenario: &Scenario) -> BTreeSet<(u16, L4)> {
    let mut out = BTreeSet::new();
    for object in &scenario.cluster.objects {
        let Object::Service(service) = object else {
            continue;
        };
        out.extend(service_node_ports(service));
    }
    out
}

fn service_node_ports(service: &Service) -> Vec<(u16, L4)> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let port = u16::try_from(p.node_port?).ok().filter(|p| *p != 0)?;
            Some((port, L4::from_k8s(p.protocol.as_deref())?))
        })
        .collect()
}

fn loopback(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

impl Plan {
    /// The topology for `node` of `scenario`, whose rules of `families` are
    /// loaded, for `flows` (this node's flows of those families), each with
    /// the tracer's distribution when it could be traced.
    pub fn new(
        scenario: &Scenario,
        node: &str,
        families: &[Family],
        flows: &[(&Flow, Option<&Distribution>)],
    ) -> Plan {
        let mut plan = Plan::default();
        if let Some(spec) = scenario.node(node) {
            plan.node_addresses = spec.addresses.iter().map(|a| a.addr()).collect();
        }
        let mut pods: BTreeMap<IpAddr, BTreeSet<Listen>> = BTreeMap::new();
        for (ip, ports) in endpoints(scenario, families) {
            if node_local(&plan.node_addresses, ip) {
                // A host-network endpoint of this node: the node answers.
                for (port, l4) in ports {
                    plan.node_listen(ip, port, l4);
                }
                continue;
            }
            let listens = pods.entry(ip).or_default();
            listens.extend(
                ports
                    .into_iter()
                    .map(|(port, l4)| (SocketAddr::new(ip, port), l4)),
            );
        }
        plan.pods = pods;
        for (port, l4) in node_ports(scenario) {
            for &family in families {
                plan.node_listen(loopback(family), port, l4);
            }
        }

        for (flow, distribution) in flows {
            let Some(l4) = L4::of(flow.to.protocol) else {
                continue;
            };
            let mut ends = vec![flow.to.addr];
            if let Some(expected) = &flow.expect.endpoints {
                ends.extend(expected.keys().copied());
            }
            if let Some(d) = distribution {
                ends.extend(d.outcomes.iter().map(|o| o.destination));
            }
            for end in ends {
                plan.listen(end, l4);
            }
            if let FlowSource::Ip(ip) = flow.from {
                if !node_local(&plan.node_addresses, ip) && !plan.pods.contains_key(&ip) {
                    plan.clients.insert(ip);
                }
            }
        }
        // An address that is a flow's source and another's destination
        // belongs to the client, which answers for it too.
        let clients = plan.clients.clone();
        let (moved, kept) = std::mem::take(&mut plan.sink)
            .into_iter()
            .partition(|(ip, _)| clients.contains(ip));
        plan.sink = kept;
        let moved: BTreeMap<IpAddr, BTreeSet<Listen>> = moved;
        plan.client_listens = moved.into_values().flatten().collect();
        plan
    }

    /// The node listens on `port` at `ip`, or at each of its addresses of
    /// `ip`'s family when `ip` is loopback.
    fn node_listen(&mut self, ip: IpAddr, port: u16, l4: L4) {
        let family = Family::of(ip);
        let mut ips: Vec<IpAddr> = self
            .node_addresses
            .iter()
            .copied()
            .filter(|a| Family::of(*a) == family)
            .collect();
        ips.push(loopback(family));
        if !ip.is_loopback() && !ips.contains(&ip) {
            ips.push(ip);
        }
        for ip in ips {
            self.node_listens.insert((SocketAddr::new(ip, port), l4));
        }
    }

    /// Someone answers at `addr` over `l4`.
    fn listen(&mut self, addr: SocketAddr, l4: L4) {
        let ip = addr.ip();
        if ip.is_unspecified() || ip.is_multicast() || addr.port() == 0 {
            return;
        }
        match self.owner(ip) {
            Owner::Node => self.node_listen(ip, addr.port(), l4),
            Owner::Pod(_) => {
                self.pods.entry(ip).or_default().insert((addr, l4));
            }
            Owner::Client | Owner::Sink => {
                self.sink.entry(ip).or_default().insert((addr, l4));
            }
        }
    }

    /// Who owns `ip`.
    pub fn owner(&self, ip: IpAddr) -> Owner {
        if node_local(&self.node_addresses, ip) {
            Owner::Node
        } else if self.pods.contains_key(&ip) {
            Owner::Pod(ip)
        } else if self.clients.contains(&ip) {
            Owner::Client
        } else {
            Owner::Sink
        }
    }

    /// The node's first address of `family`.
    pub fn node_ip(&self, family: Family) -> Option<IpAddr> {
        self.node_addresses
            .iter()
            .copied()
            .find(|a| Family::of(*a) == family)
    }

    /// How many namespaces the topology has.
    pub fn namespaces(&self) -> usize {
        3 + self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_iptables::SourceFile;

    const SCENARIO: &str = r#"
cluster:
  clusterCIDR: 10.64.0.0/16
  nodes:
  - {name: node-a, addresses: [192.168.0.10]}
  - {name: node-b, addresses: [192.168.0.11]}
  objects:
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.0.10
      ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-1
      namespace: default
      labels: {kubernetes.io/service-name: web}
    addressType: IPv4
    ports: [{name: http, port: 8080, protocol: TCP}]
    endpoints:
    - {addresses: [10.64.0.5], nodeName: node-a}
    - {addresses: [10.64.1.5], nodeName: node-b}
    - {addresses: [192.168.0.10], nodeName: node-a}
flows:
- {name: cluster-ip, node: node-a, from: 10.64.0.5, to: 10.96.0.10:80/tcp, expect: {verdict: accept}}
- {name: node-port, node: node-a, from: 203.0.113.7, to: 192.168.0.10:30080/tcp, expect: {verdict: accept}}
- {name: from-node, node: node-a, from: node, to: 10.96.0.10:80/tcp, expect: {verdict: accept}}
"#;

    fn plan() -> Plan {
        let scenario = Scenario::from_source(&SourceFile::new("s.yaml", SCENARIO), "t/s").unwrap();
        let flows: Vec<_> = scenario.flows.iter().map(|f| (f, None)).collect();
        Plan::new(&scenario, "node-a", &[Family::Ipv4], &flows)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_endpoint_is_a_pod_but_the_node_answers_for_its_own_address() {
        let p = plan();
        let pods: Vec<String> = p.pods.keys().map(|ip| ip.to_string()).collect();
        assert_eq!(pods, ["10.64.0.5", "10.64.1.5"]);
        assert!(p.pods[&"10.64.0.5".parse().unwrap()].contains(&(sa("10.64.0.5:8080"), L4::Tcp)));
        // The host-network endpoint on the node's own address.
        assert!(p.node_listens.contains(&(sa("192.168.0.10:8080"), L4::Tcp)));
    }

    #[test]
    fn the_node_listens_on_node_ports_at_every_address_and_loopback() {
        let p = plan();
        assert!(p
            .node_listens
            .contains(&(sa("192.168.0.10:30080"), L4::Tcp)));
        assert!(p.node_listens.contains(&(sa("127.0.0.1:30080"), L4::Tcp)));
    }

    #[test]
    fn un_dnated_destinations_go_to_the_sink_and_sources_to_the_client() {
        let p = plan();
        let cluster_ip: IpAddr = "10.96.0.10".parse().unwrap();
        assert_eq!(p.owner(cluster_ip), Owner::Sink);
        assert!(p.sink[&cluster_ip].contains(&(sa("10.96.0.10:80"), L4::Tcp)));
        // A pod sends from its own namespace; an outside client from the client's.
        let clients: Vec<String> = p.clients.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(clients, ["203.0.113.7"]);
        assert_eq!(
            p.owner("10.64.0.5".parse().unwrap()),
            Owner::Pod("10.64.0.5".parse().unwrap())
        );
        assert_eq!(
            p.node_ip(Family::Ipv4),
            Some("192.168.0.10".parse().unwrap())
        );
        assert_eq!(p.node_ip(Family::Ipv6), None);
    }
}
