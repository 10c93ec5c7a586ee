//! From a packet to its fate: which service port it addresses, which
//! endpoints may take it, and whether it is masqueraded.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::endpoints::{categorize, Usable};
use super::model::{Endpoint, ServicePort};
use super::{Oracle, OracleError, Prediction};
use crate::exact::{self, BigRational};
use crate::scenario::FlowSource;
use kpconform_iptables::model::Family;
use kpconform_iptables::{Packet, Verdict};

/// How the packet addressed a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    ClusterIp,
    ExternalIp,
    LoadBalancerIp,
    NodePort,
    /// The node port on a local address outside `--nodeport-addresses`:
    /// nat does not capture it there, but the filter rule that rejects or
    /// drops it matches every local address (`--dst-type LOCAL`).
    NodePortFilterOnly,
}

impl Entry {
    fn describe(self) -> &'static str {
        match self {
            Entry::ClusterIp => "cluster IP",
            Entry::ExternalIp => "external IP",
            Entry::LoadBalancerIp => "load-balancer IP",
            Entry::NodePort => "node port",
            Entry::NodePortFilterOnly => "node port (outside --nodeport-addresses)",
        }
    }
}

/// What happens to the packet before the address-specific adjustments.
enum Fate<'a> {
    Untouched,
    Drop,
    Reject,
    Endpoints {
        endpoints: Vec<&'a Endpoint>,
        masquerade: bool,
    },
}

/// Facts about the packet's source.
struct Source {
    ip: IpAddr,
    from_node: bool,
    /// `--src-type LOCAL`: the node, or any local address.
    local: bool,
    /// Whether it is inside `--cluster-cidr` (kube-proxy's "local traffic",
    /// a pod); `None` when kube-proxy has no cluster CIDR.
    in_cluster_cidr: Option<bool>,
}

impl Source {
    /// Inside `--cluster-cidr`: a pod.
    fn pod(&self) -> bool {
        self.in_cluster_cidr == Some(true)
    }
}

impl Oracle {
    /// What must happen to `packet` on this node.
    pub fn predict(&self, packet: &Packet) -> Result<Prediction, OracleError> {
        let ip = self.source_ip(packet)?;
        self.predict_as(packet, self.cluster_cidr.map(|c| c.contains(&ip)))
    }

    /// The packet's source address: the node IP for a node-sent packet.
    pub(super) fn source_ip(&self, packet: &Packet) -> Result<IpAddr, OracleError> {
        let node_ip = self.node_ip.ok_or(OracleError::NoNodeAddress)?;
        Ok(match packet.from {
            FlowSource::Node => node_ip,
            FlowSource::Ip(ip) => ip,
        })
    }

    /// What must happen to `packet` when its source is inside kube-proxy's
    /// cluster CIDR (`Some(true)`), outside it (`Some(false)`), or kube-proxy
    /// has none (`None`), whatever `self.cluster_cidr` says.
    pub(super) fn predict_as(
        &self,
        packet: &Packet,
        in_cluster_cidr: Option<bool>,
    ) -> Result<Prediction, OracleError> {
        let ip = self.source_ip(packet)?;
        let source = Source {
            ip,
            from_node: packet.from == FlowSource::Node,
            local: packet.from == FlowSource::Node || self.is_local(ip),
            in_cluster_cidr,
        };
        let mut reasons = Vec::new();
        if !source.from_node && packet.to.addr.ip().is_loopback() && packet.family() == Family::Ipv6
        {
            // ip6_rcv_core: IPv6 has no route_localnet.
            reasons.push(format!(
                "{} arrived from the network: the kernel drops packets to ::1 that do not come \
                 from the loopback interface",
                packet.to.addr
            ));
            return Ok(Prediction {
                packet: *packet,
                outcomes: BTreeMap::from([(
                    (Verdict::Drop, packet.to.addr, false),
                    exact::integer(1),
                )]),
                sticky: false,
                reasons,
            });
        }
        let claims = self.claims(packet);
        let fate = match claims.as_slice() {
            [] => {
                reasons.push(format!(
                    "{}/{} is no proxied service's address: untouched",
                    packet.to.addr, packet.to.protocol
                ));
                Fate::Untouched
            }
            [(port, entry)] => {
                let usable = categorize(port, self.zone.as_deref());
                reasons.push(format!(
                    "{}/{} is the {} of {} ({})",
                    packet.to.addr,
                    packet.to.protocol,
                    entry.describe(),
                    port.name,
                    describe_usable(&usable),
                ));
                self.fate(port, *entry, &usable, &source, packet, &mut reasons)
            }
            many => {
                return Err(OracleError::Overlap {
                    packet: *packet,
                    claims: many
                        .iter()
                        .map(|(p, e)| format!("{} of {}", e.describe(), p.name))
                        .collect(),
                })
            }
        };
        let sticky = matches!(&fate, Fate::Endpoints { .. })
            && claims.first().is_some_and(|(p, _)| p.affinity);
        if sticky {
            reasons.push("sessionAffinity ClientIP: later connections stick".into());
        }
        let outcomes = self.outcomes(fate, &source, packet, &mut reasons);
        Ok(Prediction {
            packet: *packet,
            outcomes,
            sticky,
            reasons,
        })
    }

    /// Every service port entry that captures the packet's destination.
    pub(super) fn claims(&self, packet: &Packet) -> Vec<(&ServicePort, Entry)> {
        let dst = packet.to.addr.ip();
        let dport = packet.to.addr.port();
        let mut out = Vec::new();
        // Only the ports with the destination among their addresses and
        // the port, or with the node port, can claim it; the conditions
        // below still decide, in the ports' order.
        let candidates = self.index.claim_candidates(dst, packet.to.protocol, dport);
        for port in candidates
            .iter()
            .filter_map(|&i| self.ports.get(i))
            .filter(|p| p.protocol == packet.to.protocol)
        {
            if port.port == dport {
                if port.cluster_ip == dst {
                    out.push((port, Entry::ClusterIp));
                }
                if port.external_ips.contains(&dst) {
                    out.push((port, Entry::ExternalIp));
                }
                if port.lb_ips.contains(&dst) {
                    out.push((port, Entry::LoadBalancerIp));
                }
            }
            if port.node_port == Some(dport) {
                if self.serves_node_ports(dst) {
                    out.push((port, Entry::NodePort));
                } else if self.is_local(dst) && !has_external_endpoints(port, self.zone.as_deref())
                {
                    out.push((port, Entry::NodePortFilterOnly));
                }
            }
        }
        out
    }

    /// [`Oracle::claims`] by a scan of every port, as it was before the
    /// index: the reference the index is tested against.
    #[cfg(test)]
    pub(super) fn claims_by_scan(&self, packet: &Packet) -> Vec<(&ServicePort, Entry)> {
        let dst = packet.to.addr.ip();
        let dport = packet.to.addr.port();
        let mut out = Vec::new();
        for port in self
            .ports
            .iter()
            .filter(|p| p.protocol == packet.to.protocol)
        {
            if port.port == dport {
                if port.cluster_ip == dst {
                    out.push((port, Entry::ClusterIp));
                }
                if port.external_ips.contains(&dst) {
                    out.push((port, Entry::ExternalIp));
                }
                if port.lb_ips.contains(&dst) {
                    out.push((port, Entry::LoadBalancerIp));
                }
            }
            if port.node_port == Some(dport) {
                if self.serves_node_ports(dst) {
                    out.push((port, Entry::NodePort));
                } else if self.is_local(dst) && !has_external_endpoints(port, self.zone.as_deref())
                {
                    out.push((port, Entry::NodePortFilterOnly));
                }
            }
        }
        out
    }

    fn fate<'a>(
        &self,
        port: &'a ServicePort,
        entry: Entry,
        usable: &Usable<'a>,
        source: &Source,
        packet: &Packet,
        reasons: &mut Vec<String>,
    ) -> Fate<'a> {
        if entry == Entry::ClusterIp {
            return self.internal_fate(port, usable, source, reasons);
        }
        if entry == Entry::NodePortFilterOnly {
            // Not captured by nat, so no short-circuit: every source meets
            // the filter rule.
            return if usable.any {
                reasons.push("externalTrafficPolicy Local and no local endpoint: drop".into());
                Fate::Drop
            } else {
                reasons.push("no usable endpoint anywhere: reject".into());
                Fate::Reject
            };
        }
        let dst = packet.to.addr.ip();
        if !usable.any {
            // The REJECT is in filter KUBE-EXTERNAL-SERVICES, which only
            // INPUT and FORWARD traverse: a node-sent packet meets it only
            // when it loops back to a local address.
            if source.from_node && !self.is_local(dst) {
                reasons.push(
                    "no usable endpoint, but a node-sent packet to a remote address leaves \
                     the node untouched (rejected elsewhere)"
                        .into(),
                );
                return Fate::Untouched;
            }
            reasons.push("no usable endpoint anywhere: reject".into());
            return Fate::Reject;
        }
        if entry == Entry::LoadBalancerIp && !port.source_ranges.is_empty() {
            let in_range = port.source_ranges.iter().any(|r| r.contains(&source.ip));
            let node_in_range = self
                .node_ip
                .is_some_and(|n| port.source_ranges.iter().any(|r| r.contains(&n)));
            let from_lb_ip = node_in_range && port.lb_ips.contains(&source.ip);
            if !in_range && !from_lb_ip {
                reasons.push(format!(
                    "source {} is outside loadBalancerSourceRanges: drop",
                    source.ip
                ));
                return Fate::Drop;
            }
            reasons.push(if in_range {
                format!("source {} is inside loadBalancerSourceRanges", source.ip)
            } else {
                format!(
                    "source {} is the LB IP and a source range holds the node IP: allowed",
                    source.ip
                )
            });
        }
        if !port.external_local {
            reasons.push("externalTrafficPolicy Cluster: all endpoints, masqueraded".into());
            return Fate::Endpoints {
                endpoints: usable.cluster.clone(),
                masquerade: true,
            };
        }
        if source.pod() {
            reasons.push(format!(
                "source {} is in the cluster CIDR: short-circuited to all endpoints",
                source.ip
            ));
            return Fate::Endpoints {
                endpoints: usable.cluster.clone(),
                masquerade: false,
            };
        }
        if source.local {
            reasons.push(
                "source is the node itself: short-circuited to all endpoints, masqueraded".into(),
            );
            return Fate::Endpoints {
                endpoints: usable.cluster.clone(),
                masquerade: true,
            };
        }
        if usable.local.is_empty() {
            reasons.push("externalTrafficPolicy Local and no local endpoint: drop".into());
            return Fate::Drop;
        }
        reasons.push("externalTrafficPolicy Local: local endpoints, client IP kept".into());
        Fate::Endpoints {
            endpoints: usable.local.clone(),
            masquerade: false,
        }
    }

    fn internal_fate<'a>(
        &self,
        port: &'a ServicePort,
        usable: &Usable<'a>,
        source: &Source,
        reasons: &mut Vec<String>,
    ) -> Fate<'a> {
        if !usable.any {
            reasons.push("no usable endpoint anywhere: reject".into());
            return Fate::Reject;
        }
        let endpoints = if port.internal_local {
            if usable.local.is_empty() {
                reasons.push("internalTrafficPolicy Local and no local endpoint: drop".into());
                return Fate::Drop;
            }
            reasons.push("internalTrafficPolicy Local: local endpoints only".into());
            usable.local.clone()
        } else {
            usable.cluster.clone()
        };
        let masquerade = match source.in_cluster_cidr {
            _ if self.masquerade_all => {
                reasons.push("masqueradeAll: masqueraded".into());
                true
            }
            None => {
                reasons.push("no cluster CIDR: cluster-IP traffic is not masqueraded".into());
                false
            }
            Some(true) => {
                reasons.push(format!("source {} is a pod: not masqueraded", source.ip));
                false
            }
            Some(false) => {
                reasons.push(format!(
                    "source {} is outside the cluster CIDR: masqueraded",
                    source.ip
                ));
                true
            }
        };
        Fate::Endpoints {
            endpoints,
            masquerade,
        }
    }

    /// The fate as outcomes: 1/n per endpoint, hairpin and local-delivery
    /// adjustments, and the localnet guard.
    fn outcomes(
        &self,
        fate: Fate<'_>,
        source: &Source,
        packet: &Packet,
        reasons: &mut Vec<String>,
    ) -> BTreeMap<(Verdict, SocketAddr, bool), BigRational> {
        let dst = packet.to.addr;
        let mut out = BTreeMap::new();
        let verdict = match fate {
            Fate::Endpoints {
                endpoints,
                masquerade,
            } if !endpoints.is_empty() => {
                let share = BigRational::new(1.into(), endpoints.len().into());
                for ep in endpoints {
                    let mut masq = masquerade;
                    if ep.addr.ip() == source.ip {
                        reasons.push(format!(
                            "{} is the client itself: hairpin, masqueraded",
                            ep.addr
                        ));
                        masq = true;
                    }
                    if !source.from_node && self.is_local(ep.addr.ip()) {
                        // Delivered locally: the packet never reaches nat
                        // POSTROUTING, where masquerading happens.
                        reasons.push(format!(
                            "{} is a local address: delivered without POSTROUTING, not masqueraded",
                            ep.addr
                        ));
                        masq = false;
                    }
                    *out.entry((Verdict::Accept, ep.addr, masq))
                        .or_insert_with(|| exact::integer(0)) += &share;
                }
                return out;
            }
            // Cannot happen (a service with usable endpoints has a
            // non-empty list for each policy it uses); untouched is what
            // rules without a DNAT would do.
            Fate::Endpoints { .. } | Fate::Untouched => Verdict::Accept,
            Fate::Drop => Verdict::Drop,
            Fate::Reject => Verdict::Reject,
        };
        let verdict = if self.localnet_guard && dst.ip().is_loopback() && !source.ip.is_loopback() {
            reasons.push(
                "127.0.0.0/8 not DNATed from a non-loopback source: kube-proxy's localnet \
                 guard drops it"
                    .into(),
            );
            Verdict::Drop
        } else {
            verdict
        };
        out.insert((verdict, dst, false), exact::integer(1));
        out
    }
}

/// Whether external traffic has somewhere to go: kube-proxy writes a filter
/// REJECT (no endpoints) or DROP (Local policy, no local endpoint) otherwise.
fn has_external_endpoints(port: &ServicePort, zone: Option<&str>) -> bool {
    let usable = categorize(port, zone);
    usable.any && !(port.external_local && usable.local.is_empty())
}

fn describe_usable(u: &Usable<'_>) -> String {
    if !u.any {
        return "no usable endpoints".into();
    }
    let mut parts = vec![format!("{} cluster-wide", u.cluster.len())];
    if u.topology {
        parts[0].push_str(" after zone hints");
    }
    if u.fallback.0 {
        parts[0].push_str(" (serving-terminating fallback)");
    }
    let mut local = format!("{} local", u.local.len());
    if u.fallback.1 {
        local.push_str(" (serving-terminating fallback)");
    }
    parts.push(local);
    format!("usable endpoints: {}", parts.join(", "))
}
