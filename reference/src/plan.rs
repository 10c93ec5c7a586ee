//! The typed model the rule writers work from: this node's settings
//! ([`NodeContext`]) and, per service port, which endpoints and chains it
//! uses ([`Plan`]). Every decision kube-proxy makes per service port is taken
//! here, so the section writers only spell rules.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use kpconform_suite::scenario::{GeneratorInput, Object};

use crate::endpoints::{categorize, endpoints_map, Categorized, Endpoint, EndpointsMap};
use crate::names;
use crate::services::{service_ports, ServicePort};

/// Over this many endpoints (summed over service ports) kube-proxy drops the
/// per-endpoint comments to keep the rule set small.
const LARGE_CLUSTER_THRESHOLD: usize = 1000;

/// Where the `KUBE-SERVICES` → `KUBE-NODEPORTS` jump applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodePortDestinations {
    /// `--nodeport-addresses` is empty (or holds 0.0.0.0/0): any local address.
    AllLocal,
    /// The node's addresses inside `--nodeport-addresses`, sorted.
    Addresses(Vec<Ipv4Addr>),
}

/// The node and kube-proxy's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeContext {
    /// kube-proxy's node IP (the first address), for source-range checks.
    pub(crate) node_ip: Option<Ipv4Addr>,
    /// `--cluster-cidr`: pod traffic detection, when set.
    pub(crate) cluster_cidr: Option<Ipv4Net>,
    pub(crate) masquerade_all: bool,
    /// `1 << masqueradeBit`.
    pub(crate) mark: u32,
    pub(crate) node_ports: NodePortDestinations,
    /// `--nodeport-addresses` admits 127.0.0.0/8, so localhost node ports
    /// (and the route_localnet guard in `KUBE-FIREWALL`) are on.
    pub(crate) localhost_node_ports: bool,
    /// More than [`LARGE_CLUSTER_THRESHOLD`] endpoints: no endpoint comments.
    pub(crate) large_cluster: bool,
}

/// The per-service-port chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chains {
    /// `KUBE-SVC-…`
    pub(crate) cluster: String,
    /// `KUBE-SVL-…`
    pub(crate) local: String,
    /// `KUBE-EXT-…`
    pub(crate) external: String,
    /// `KUBE-FW-…`
    pub(crate) firewall: String,
}

/// Everything kube-proxy decides for one service port on this node.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    pub(crate) svc: &'a ServicePort,
    pub(crate) endpoints: Categorized<'a>,
    pub(crate) chains: Chains,
    /// Some endpoint anywhere is usable (else: REJECT, no nat chains).
    pub(crate) has_endpoints: bool,
    /// Cluster-IP traffic has somewhere to go (else: DROP "no local endpoints").
    pub(crate) has_internal: bool,
    /// External traffic that is not short-circuited has somewhere to go.
    pub(crate) has_external: bool,
    pub(crate) uses_cluster_chain: bool,
    pub(crate) uses_local_chain: bool,
    pub(crate) uses_external_chain: bool,
    pub(crate) uses_firewall_chain: bool,
}

impl Plan<'_> {
    /// Where cluster-IP traffic goes: SVL with internalTrafficPolicy Local, else SVC.
    pub(crate) fn internal_chain(&self) -> &str {
        if self.svc.internal_policy_local {
            &self.chains.local
        } else {
            &self.chains.cluster
        }
    }

    /// Where external traffic ends after KUBE-EXT: SVL with externalTrafficPolicy Local.
    pub(crate) fn external_policy_chain(&self) -> &str {
        if self.svc.external_policy_local {
            &self.chains.local
        } else {
            &self.chains.cluster
        }
    }

    /// Where load-balancer IP traffic goes: KUBE-FW with source ranges, else KUBE-EXT.
    pub(crate) fn load_balancer_chain(&self) -> &str {
        if self.uses_firewall_chain {
            &self.chains.firewall
        } else {
            &self.chains.external
        }
    }
}

/// Cluster state as one node's kube-proxy sees it.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) node: NodeContext,
    node_labels: BTreeMap<String, String>,
    service_ports: Vec<ServicePort>,
    endpoints: EndpointsMap,
}

impl Cluster {
    /// Resolves the generator input.
    pub(crate) fn new(input: &GeneratorInput) -> Cluster {
        let cfg = &input.node;
        let services = input.objects.iter().filter_map(|o| match o {
            Object::Service(s) => Some(s.as_ref()),
            _ => None,
        });
        let slices = input.objects.iter().filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(s.as_ref()),
            _ => None,
        });
        // kube-proxy watches only its own Node; the last such object wins.
        let node_labels = input
            .objects
            .iter()
            .rev()
            .find_map(|o| match o {
                Object::Node(n) if n.metadata.name.as_deref() == Some(cfg.name.as_str()) => {
                    Some(n.metadata.labels.clone().unwrap_or_default())
                }
                _ => None,
            })
            .unwrap_or_default();
        let service_ports = service_ports(services);
        let endpoints = endpoints_map(slices, &cfg.name);
        let total: usize = service_ports
            .iter()
            .map(|p| endpoints.get(&p.key).map_or(0, Vec::len))
            .sum();

        // The reference writes the IPv4 proxier's rules: each proxier sees
        // only the addresses and CIDRs of its own family.
        let node_addrs: Vec<Ipv4Addr> = cfg
            .addresses
            .iter()
            .filter_map(|a| match a.addr() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let node_port_cidrs: Vec<Ipv4Net> = cfg
            .node_port_addresses
            .iter()
            .filter_map(|c| match c {
                IpNet::V4(v4) => Some(*v4),
                IpNet::V6(_) => None,
            })
            .collect();
        let (node_ports, localhost_node_ports) =
            node_port_destinations(&node_port_cidrs, &node_addrs);
        let node = NodeContext {
            node_ip: node_addrs.first().copied(),
            cluster_cidr: cfg.cluster_cidr().and_then(|c| match c {
                IpNet::V4(v4) => Some(v4.trunc()),
                IpNet::V6(_) => None,
            }),
            masquerade_all: cfg.masquerade_all,
            mark: 1u32.checked_shl(u32::from(cfg.masquerade_bit)).unwrap_or(0),
            node_ports,
            localhost_node_ports,
            large_cluster: total > LARGE_CLUSTER_THRESHOLD,
        };
        Cluster {
            node,
            node_labels,
            service_ports,
            endpoints,
        }
    }

    /// One plan per service port, sorted by service-port key.
    pub(crate) fn plans(&self) -> Vec<Plan<'_>> {
        self.service_ports
            .iter()
            .map(|svc| {
                let eps: &[Endpoint] = self.endpoints.get(&svc.key).map_or(&[], Vec::as_slice);
                plan(svc, categorize(eps, svc, &self.node_labels))
            })
            .collect()
    }
}

fn plan<'a>(svc: &'a ServicePort, endpoints: Categorized<'a>) -> Plan<'a> {
    let protocol = svc.protocol.as_str();
    let chains = Chains {
        cluster: names::cluster_chain(&svc.name, protocol),
        local: names::local_chain(&svc.name, protocol),
        external: names::external_chain(&svc.name, protocol),
        firewall: names::firewall_chain(&svc.name, protocol),
    };
    let has_endpoints = endpoints.has_any;
    let no_local = endpoints.local.is_empty();
    Plan {
        has_internal: has_endpoints && !(svc.internal_policy_local && no_local),
        has_external: has_endpoints && !(svc.external_policy_local && no_local),
        uses_cluster_chain: !endpoints.cluster.is_empty() && svc.uses_cluster_endpoints(),
        uses_local_chain: !no_local && svc.uses_local_endpoints(),
        // Built even without external endpoints: it short-circuits local traffic.
        uses_external_chain: has_endpoints && svc.externally_accessible(),
        uses_firewall_chain: has_endpoints
            && !svc.lb_vips.is_empty()
            && !svc.source_ranges.is_empty(),
        has_endpoints,
        svc,
        endpoints,
        chains,
    }
}

/// kube-proxy's `NodePortAddresses` for IPv4: the jump's destinations, and
/// whether localhost node ports stay on.
fn node_port_destinations(
    cidrs: &[Ipv4Net],
    node_addrs: &[Ipv4Addr],
) -> (NodePortDestinations, bool) {
    let cidrs: Vec<Ipv4Net> = cidrs.iter().map(|c| c.trunc()).collect();
    if cidrs.is_empty() || cidrs.iter().any(|c| c.prefix_len() == 0) {
        return (NodePortDestinations::AllLocal, true);
    }
    let loopback_net = Ipv4Addr::new(127, 0, 0, 0);
    let localhost = cidrs
        .iter()
        .any(|c| c.addr().is_loopback() || c.contains(&loopback_net));
    // The host's interface addresses: its own plus lo's 127.0.0.1.
    let mut ips: Vec<Ipv4Addr> = node_addrs
        .iter()
        .copied()
        .chain([Ipv4Addr::LOCALHOST])
        .filter(|ip| cidrs.iter().any(|c| c.contains(ip)))
        .collect();
    ips.sort();
    ips.dedup();
    (NodePortDestinations::Addresses(ips), localhost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn node_ports_on_all_local_addresses_by_default() {
        let addrs = [Ipv4Addr::new(192, 168, 0, 10)];
        assert_eq!(
            node_port_destinations(&[], &addrs),
            (NodePortDestinations::AllLocal, true)
        );
        assert_eq!(
            node_port_destinations(&[net("0.0.0.0/0")], &addrs),
            (NodePortDestinations::AllLocal, true)
        );
    }

    #[test]
    fn node_ports_restricted_to_matching_addresses() {
        // nodeport-nodeportaddresses-one-cidr: only 192.168.0.10, no localhost.
        let addrs = [
            Ipv4Addr::new(192, 168, 0, 10),
            Ipv4Addr::new(172, 16, 5, 10),
        ];
        assert_eq!(
            node_port_destinations(&[net("192.168.0.0/24")], &addrs),
            (
                NodePortDestinations::Addresses(vec![Ipv4Addr::new(192, 168, 0, 10)]),
                false
            )
        );
        let (dests, localhost) =
            node_port_destinations(&[net("127.0.0.1/32"), net("172.16.0.0/12")], &addrs);
        assert!(localhost);
        assert_eq!(
            dests,
            NodePortDestinations::Addresses(vec![
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(172, 16, 5, 10)
            ])
        );
    }
}
