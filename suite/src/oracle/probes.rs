//! Probe packets that exercise every entry point of a cluster state from
//! every kind of source, for fuzzers and audits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Oracle;
use crate::scenario::FlowSource;
use kpconform_iptables::model::{Family, Protocol};
use kpconform_iptables::Packet;

/// Outside clients used when nothing better is known (TEST-NET addresses,
/// RFC 5737).
const OUTSIDE_V4: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 99)),
];

/// The IPv6 outside clients: the documentation range 2001:db8::/32
/// (RFC 3849), in the recordings' translation of the IPv4 ones.
const OUTSIDE_V6: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 7)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x99)),
];

/// An address that is no service's and no node's.
fn nobody(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 254)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x254)),
    }
}

impl Oracle {
    /// Packets worth asking about: for every service port, its cluster IP,
    /// external IPs, LB IPs and node ports (on every node-port address and
    /// on addresses that do not serve node ports), from a pod, the node, an
    /// outside client, a source inside and outside each source range, the LB
    /// IP itself and an endpoint (hairpin); the same addresses with another
    /// protocol or port; health-check node ports; and an address that is no
    /// service. Loopback destinations only from the node: a packet from
    /// anywhere else cannot carry one (a pod's 127.0.0.1 is its own). All of
    /// the oracle's family (IPv6 clients from 2001:db8::/32). Sorted and
    /// without duplicates.
    pub fn probes(&self) -> Vec<Packet> {
        let endpoint_ips: BTreeSet<IpAddr> = self
            .ports
            .iter()
            .flat_map(|p| p.endpoints.iter().map(|e| e.addr.ip()))
            .collect();
        let mut sources: Vec<FlowSource> = vec![FlowSource::Node];
        let outside = match self.family {
            Family::Ipv4 => OUTSIDE_V4,
            Family::Ipv6 => OUTSIDE_V6,
        };
        sources.extend(outside.iter().map(|ip| FlowSource::Ip(*ip)));
        if let Some(cidr) = self.cluster_cidr {
            // A pod that is nobody's endpoint, so no outcome is a hairpin.
            if let Some(pod) = cidr.hosts().rev().find(|ip| !endpoint_ips.contains(ip)) {
                sources.push(FlowSource::Ip(pod));
            }
        }
        let mut out: BTreeMap<String, Packet> = BTreeMap::new();
        let mut add = |from: FlowSource, ip: IpAddr, port: u16, protocol: Protocol| {
            if ip.is_loopback() && from != FlowSource::Node {
                return;
            }
            let p = Packet::new(from, SocketAddr::new(ip, port), protocol);
            out.insert(p.to_string(), p);
        };
        let mut local: Vec<IpAddr> = self.addresses.clone();
        local.push(self.family.localhost());
        for port in &self.ports {
            let other = match port.protocol {
                Protocol::Tcp => Protocol::Udp,
                _ => Protocol::Tcp,
            };
            let mut extra: Vec<FlowSource> = port
                .endpoints
                .iter()
                .take(1)
                .chain(port.endpoints.last())
                .map(|e| FlowSource::Ip(e.addr.ip()))
                .collect();
            for range in &port.source_ranges {
                extra.push(FlowSource::Ip(range.hosts().next().unwrap_or(range.addr())));
            }
            extra.extend(port.lb_ips.iter().map(|ip| FlowSource::Ip(*ip)));
            let all: Vec<FlowSource> = sources.iter().chain(&extra).copied().collect();
            let mut vips = vec![port.cluster_ip];
            vips.extend(&port.external_ips);
            vips.extend(&port.lb_ips);
            for vip in vips {
                for from in &all {
                    add(*from, vip, port.port, port.protocol);
                }
                add(sources[1], vip, port.port, other);
                add(
                    sources[1],
                    vip,
                    port.port.wrapping_add(1).max(1),
                    port.protocol,
                );
            }
            if let Some(node_port) = port.node_port {
                for ip in &local {
                    for from in &all {
                        add(*from, *ip, node_port, port.protocol);
                    }
                    add(FlowSource::Node, *ip, node_port, other);
                }
            }
            if let Some(hc) = port.health_check_node_port {
                for ip in &local {
                    add(FlowSource::Node, *ip, hc, Protocol::Tcp);
                    add(sources[1], *ip, hc, Protocol::Tcp);
                }
            }
        }
        for ip in local.iter().chain([&nobody(self.family)]) {
            for from in &sources {
                add(*from, *ip, 1, Protocol::Tcp);
            }
        }
        out.into_values().collect()
    }
}
