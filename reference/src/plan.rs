//! The typed model the rule writers work from: this node's settings
//! ([`NodeContext`]) and, per service port, which endpoints and chains it
//! uses ([`Plan`]). Every decision kube-proxy makes per service port is taken
//! here, so the section writers only spell rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kpconform_iptables::model::Family;
use kpconform_suite::scenario::{GeneratorInput, Object};

use crate::endpoints::{categorize, endpoints_map, Categorized, Endpoint, EndpointsMap};
use crate::names;
use crate::services::{service_ports, ServicePort};

/// Over this many endpoints (summed over service ports, within the proxier's
/// family) kube-proxy drops the per-endpoint comments to keep the rule set
/// small.
const LARGE_CLUSTER_THRESHOLD: usize = 1000;

/// Where the `KUBE-SERVICES` → `KUBE-NODEPORTS` jump applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodePortDestinations {
    /// `--nodeport-addresses` has no CIDR of the family (or holds 0.0.0.0/0,
    /// ::/0): any local address.
    AllLocal,
    /// The node's addresses inside `--nodeport-addresses`, sorted.
    Addresses(Vec<IpAddr>),
}

/// The node and kube-proxy's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeContext {
    /// The proxier's family: every address below is of this family.
    pub(crate) family: Family,
    /// kube-proxy's node IP (the first address of the family), for
    /// source-range checks.
    pub(crate) node_ip: Option<IpAddr>,
    /// `--cluster-cidr` of the family: pod traffic detection, when set.
    pub(crate) cluster_cidr: Option<IpNet>,
    pub(crate) masquerade_all: bool,
    /// `1 << masqueradeBit`.
    pub(crate) mark: u32,
    pub(crate) node_ports: NodePortDestinations,
    /// IPv4 only: `--nodeport-addresses` admits 127.0.0.0/8, so localhost
    /// node ports (and the route_localnet guard in `KUBE-FIREWALL`) are on.
    /// The IPv6 proxier always has them off.
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
        let family = cfg.family;
        let service_ports = service_ports(services, family);
        let endpoints = endpoints_map(slices, &cfg.name, family);
        let total: usize = service_ports
            .iter()
            .map(|p| endpoints.get(&p.key).map_or(0, Vec::len))
            .sum();

        // The proxier of `family` sees only the addresses and CIDRs of its
        // own family.
        let node_addrs: Vec<IpAddr> = cfg
            .addresses
            .iter()
            .map(IpNet::addr)
            .filter(|a| Family::of(*a) == family)
            .collect();
        let node_port_cidrs: Vec<IpNet> = cfg
            .node_port_addresses
            .iter()
            .filter(|c| Family::of(c.addr()) == family)
            .copied()
            .collect();
        let (node_ports, localhost_node_ports) =
            node_port_destinations(family, &node_port_cidrs, &node_addrs);
        let node = NodeContext {
            family,
            node_ip: cfg.node_ip(),
            cluster_cidr: cfg
                .cluster_cidr()
                .filter(|c| Family::of(c.addr()) == family)
                .map(|c| c.trunc()),
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
    // The four chains differ only in their prefix: one hash serves them all.
    let hash = names::ServiceHash::new(&svc.name, svc.protocol.as_str());
    let chains = Chains {
        cluster: hash.chain(names::CLUSTER_PREFIX),
        local: hash.chain(names::LOCAL_PREFIX),
        external: hash.chain(names::EXTERNAL_PREFIX),
        firewall: hash.chain(names::FIREWALL_PREFIX),
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

/// kube-proxy's `NodePortAddresses` for `family` (given the CIDRs and node
/// addresses of that family): the jump's destinations, and whether localhost
/// node ports stay on.
///
/// IPv4 keeps 127.0.0.1 when a CIDR covers it (and then localhost node ports
/// stay on); IPv6 has no localhost node ports, so `::1` is never a
/// destination (kube-proxy logs an error and skips it).
fn node_port_destinations(
    family: Family,
    cidrs: &[IpNet],
    node_addrs: &[IpAddr],
) -> (NodePortDestinations, bool) {
    let ipv4 = family == Family::Ipv4;
    let cidrs: Vec<IpNet> = cidrs.iter().map(|c| c.trunc()).collect();
    if cidrs.is_empty() || cidrs.iter().any(|c| c.prefix_len() == 0) {
        return (NodePortDestinations::AllLocal, ipv4);
    }
    let localhost = family.localhost();
    // ContainsIPv4Loopback: a CIDR that is or covers 127.0.0.0/8.
    let loopback_net = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0));
    let localhost_node_ports = ipv4
        && cidrs
            .iter()
            .any(|c| c.addr().is_loopback() || c.contains(&loopback_net));
    // The host's interface addresses: its own plus lo's loopback address.
    let mut ips: Vec<IpAddr> = node_addrs
        .iter()
        .copied()
        .chain([localhost])
        .filter(|ip| cidrs.iter().any(|c| c.contains(ip)))
        .filter(|ip| ipv4 || !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    (NodePortDestinations::Addresses(ips), localhost_node_ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn node_ports_on_all_local_addresses_by_default() {
        let addrs = [ip("192.168.0.10")];
        let v4 = Family::Ipv4;
        assert_eq!(
            node_port_destinations(v4, &[], &addrs),
            (NodePortDestinations::AllLocal, true)
        );
        assert_eq!(
            node_port_destinations(v4, &[net("0.0.0.0/0")], &addrs),
            (NodePortDestinations::AllLocal, true)
        );
        // IPv6: all local addresses, never localhost node ports.
        assert_eq!(
            node_port_destinations(Family::Ipv6, &[], &[ip("fd00:192:168::10")]),
            (NodePortDestinations::AllLocal, false)
        );
    }

    #[test]
    fn node_ports_restricted_to_matching_addresses() {
        // nodeport-nodeportaddresses-one-cidr: only 192.168.0.10, no localhost.
        let addrs = [ip("192.168.0.10"), ip("172.16.5.10")];
        let v4 = Family::Ipv4;
        assert_eq!(
            node_port_destinations(v4, &[net("192.168.0.0/24")], &addrs),
            (
                NodePortDestinations::Addresses(vec![ip("192.168.0.10")]),
                false
            )
        );
        let (dests, localhost) =
            node_port_destinations(v4, &[net("127.0.0.1/32"), net("172.16.0.0/12")], &addrs);
        assert!(localhost);
        assert_eq!(
            dests,
            NodePortDestinations::Addresses(vec![ip("127.0.0.1"), ip("172.16.5.10")])
        );
    }

    #[test]
    fn ipv6_node_ports_skip_localhost() {
        // dualstack-nodeport-nodeportaddresses-ipv6: ::1/128 is left out.
        let addrs = [ip("fd00:192:168::10")];
        assert_eq!(
            node_port_destinations(
                Family::Ipv6,
                &[net("fd00:192:168::/64"), net("::1/128")],
                &addrs
            ),
            (
                NodePortDestinations::Addresses(vec![ip("fd00:192:168::10")]),
                false
            )
        );
    }
}
