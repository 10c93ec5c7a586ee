//! What a probe is, in a reviewer's terms: which service port it is about,
//! through which of its addresses, and what kind of client sent it. Reports
//! that group many probes (the behavioural diff) name a group by these
//! instead of by the probe's addresses.

use std::fmt;

use kpconform_iptables::{FlowSource, Packet};
use serde::Serialize;

use super::{Oracle, ServicePortName};

/// The kind of client a probe comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The node itself.
    Node,
    /// A pod (an address of the pod network that is no endpoint of the
    /// service port).
    Pod,
    /// An endpoint of the service port (hairpin traffic).
    Endpoint,
    /// One of the service's load-balancer IPs.
    LoadBalancerIp,
    /// A client inside one of the service's `loadBalancerSourceRanges`.
    InsideSourceRange,
    /// Anything else: a client outside the cluster.
    External,
}

impl SourceKind {
    /// The kind as an English plural: `external clients`.
    pub fn plural(self) -> &'static str {
        match self {
            SourceKind::Node => "the node itself",
            SourceKind::Pod => "pods",
            SourceKind::Endpoint => "the service's own endpoints (hairpin)",
            SourceKind::LoadBalancerIp => "the load-balancer IP",
            SourceKind::InsideSourceRange => "clients inside loadBalancerSourceRanges",
            SourceKind::External => "external clients",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Node => "node",
            SourceKind::Pod => "pod",
            SourceKind::Endpoint => "endpoint",
            SourceKind::LoadBalancerIp => "load-balancer-ip",
            SourceKind::InsideSourceRange => "inside-source-range",
            SourceKind::External => "external",
        })
    }
}

/// Which address of its service port a probe is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// The cluster IP and port.
    ClusterIp,
    /// An external IP and the port.
    ExternalIp,
    /// A load-balancer IP and the port.
    LoadBalancerIp,
    /// The node port on a local address.
    NodePort,
    /// The health-check node port.
    HealthCheckNodePort,
    /// One of the service's addresses, with another port or protocol.
    OtherPort,
    /// An address that is no service's.
    NoService,
}

impl EntryKind {
    /// `cluster IP`, `node port`, ...
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::ClusterIp => "cluster IP",
            EntryKind::ExternalIp => "external IP",
            EntryKind::LoadBalancerIp => "load-balancer IP",
            EntryKind::NodePort => "node port",
            EntryKind::HealthCheckNodePort => "health-check node port",
            EntryKind::OtherPort => "address with another port or protocol",
            EntryKind::NoService => "address that is no service's",
        }
    }
}

/// A probe's service port, entry and source kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeContext {
    /// The service port it is about ([`Oracle::service_port_of`]); `None`
    /// for an address that is no service's.
    pub service: Option<ServicePortName>,
    /// Which of the port's addresses.
    pub entry: EntryKind,
    /// Who sent it.
    pub source: SourceKind,
}

impl Oracle {
    /// Names `packet` for reports: its service port, entry and source kind.
    pub fn context(&self, packet: &Packet) -> ProbeContext {
        let dst = packet.to.addr.ip();
        let dport = packet.to.addr.port();
        let service = self.service_port_of(packet);
        let port = service.as_ref().and_then(|s| {
            self.ports
                .iter()
                .find(|p| p.name == s.name && p.port == s.port && p.protocol == s.protocol)
        });
        let entry = match port {
            None => EntryKind::NoService,
            Some(p) => {
                let same_port = p.port == dport && p.protocol == packet.to.protocol;
                if same_port && p.cluster_ip == dst {
                    EntryKind::ClusterIp
                } else if same_port && p.external_ips.contains(&dst) {
                    EntryKind::ExternalIp
                } else if same_port && p.lb_ips.contains(&dst) {
                    EntryKind::LoadBalancerIp
                } else if self.is_local(dst)
                    && p.node_port == Some(dport)
                    && p.protocol == packet.to.protocol
                {
                    EntryKind::NodePort
                } else if self.is_local(dst) && p.health_check_node_port == Some(dport) {
                    EntryKind::HealthCheckNodePort
                } else {
                    EntryKind::OtherPort
                }
            }
        };
        let source = match packet.from {
            FlowSource::Node => SourceKind::Node,
            FlowSource::Ip(ip) => {
                if port.is_some_and(|p| p.endpoints.iter().any(|e| e.addr.ip() == ip)) {
                    SourceKind::Endpoint
                } else if port.is_some_and(|p| p.lb_ips.contains(&ip)) {
                    SourceKind::LoadBalancerIp
                } else if port.is_some_and(|p| p.source_ranges.iter().any(|r| r.contains(&ip))) {
                    SourceKind::InsideSourceRange
                } else if self.cluster_cidr.is_some_and(|c| c.contains(&ip)) {
                    SourceKind::Pod
                } else {
                    SourceKind::External
                }
            }
        };
        ProbeContext {
            service,
            entry,
            source,
        }
    }
}
