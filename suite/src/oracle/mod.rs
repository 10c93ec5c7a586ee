//! The semantic oracle: what Kubernetes Service semantics (as kube-proxy
//! v1.30 implements them in iptables mode, IPv4 or IPv6) say must happen to a
//! flow's first packet on one node, worked out from the cluster state alone,
//! without looking at any rules. It is a second opinion for the tracer:
//! fuzzers and `kpconform fuzz` compare `trace(generator(state))` with it.
//!
//! ```
//! use kpconform_iptables::model::Protocol;
//! use kpconform_suite::oracle::Oracle;
//! use kpconform_suite::scenario::{FlowSource, GeneratorInput};
//! use kpconform_iptables::SourceFile;
//! use kpconform_iptables::{Packet, Verdict};
//!
//! let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", "
//! node: {name: node-a, addresses: [192.168.0.10], clusterCIDR: 10.64.0.0/16}
//! objects:
//! - {apiVersion: v1, kind: Service, metadata: {name: api, namespace: default},
//!    spec: {clusterIP: 10.96.0.50, ports: [{name: http, port: 80, protocol: TCP}]}}
//! - apiVersion: discovery.k8s.io/v1
//!   kind: EndpointSlice
//!   metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}
//!   addressType: IPv4
//!   endpoints: [{addresses: [10.64.1.5], nodeName: node-b}, {addresses: [10.64.2.5]}]
//!   ports: [{name: http, port: 8080, protocol: TCP}]
//! "))?;
//! let oracle = Oracle::new(&input);
//! let pod = FlowSource::Ip("10.64.0.200".parse()?);
//! let p = oracle.predict(&Packet::new(pod, "10.96.0.50:80".parse()?, Protocol::Tcp))?;
//! assert_eq!(p.accepted().len(), 2); // 1/2 each
//! assert_eq!(p.masquerade(), Some(false)); // pods keep their address
//! let node = oracle.predict(&Packet::new(FlowSource::Node, "10.96.0.50:80".parse()?, Protocol::Tcp))?;
//! assert_eq!(node.masquerade(), Some(true));
//! let udp = oracle.predict(&Packet::new(pod, "10.96.0.50:80".parse()?, Protocol::Udp))?;
//! assert_eq!(udp.verdict(), Some(Verdict::Accept)); // untouched: no UDP port
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The rules
//!
//! Sources: kube-proxy v1.30 (`pkg/proxy/{service,endpointslicecache,
//! topology}.go`, `pkg/proxy/iptables/proxier.go`,
//! `pkg/proxy/util/nodeport_addresses.go`), the Kubernetes Service,
//! EndpointSlice and traffic-policy documentation, and the recordings'
//! README/FACTS. Each rule was checked against the recordings, IPv4, IPv6
//! and dual-stack, through the tracer (`suite/tests/oracle.rs`).
//!
//! The oracle is that of one family's proxier (`node.family`), as the
//! dual-stack metaproxier runs one per family: everything below is of that
//! family, and the other family's objects and addresses are ignored.
//!
//! Which objects count:
//! 1. Services and EndpointSlices labelled `service.kubernetes.io/service-proxy-name`
//!    or `service.kubernetes.io/headless` are invisible (kube-proxy's informer
//!    label selector). ExternalName services, and services whose cluster IP of
//!    the family is unset or `None` (headless), are not proxied. That cluster
//!    IP is `clusterIPs[i]` where `ipFamilies[i]` is the family, else
//!    `clusterIP` if it is of the family (`GetClusterIPByFamily`).
//! 2. A service port is (namespace, name, port name, protocol); protocols are
//!    `TCP` (the default), `UDP`, `SCTP`. Absent `type` means ClusterIP and
//!    absent namespace `default` (API defaults).
//! 3. Entry points: the cluster IP and port; each `externalIPs` entry of the
//!    family and port; each `status.loadBalancer.ingress[].ip` of the family
//!    whose `ipMode` is unset or `VIP` (LoadBalancerIPMode is on in 1.30;
//!    hostname-only ingresses carry no IP); the node port, on the node-port
//!    addresses. A packet must match the protocol too.
//! 4. Node-port addresses (`--nodeport-addresses`, its CIDRs of the family):
//!    none, or a zero CIDR, means every local address (`--dst-type LOCAL`:
//!    the node's addresses of the family and 127.0.0.0/8, but IPv6 leaves out
//!    ::1: `! -d ::1/128`); otherwise the node's interface addresses (its
//!    addresses, and 127.0.0.1 for IPv4; never ::1) inside one of the CIDRs.
//!    Local addresses are the node's of the family and 127.0.0.0/8 or ::1.
//!
//! Which endpoints count (`CategorizeEndpoints`):
//! 5. Endpoints come from EndpointSlices of the family (`addressType`) labelled
//!    `kubernetes.io/service-name` in the service's namespace, slice port matched
//!    by name (absent = `""`) and protocol; the first address of each endpoint;
//!    duplicates (`IP:port`) merged, a local copy preferred. Unset `ready` and
//!    `serving` mean true, unset `terminating` false.
//! 6. Cluster endpoints: the ready ones; if none is ready, the serving and
//!    terminating ones; never not-serving ones. Local endpoints: the same rule
//!    among the endpoints whose `nodeName` is this node, decided on its own.
//! 7. Topology: when the service's `service.kubernetes.io/topology-mode`
//!    (else `topology-aware-hints`) annotation is set and not `disabled`, the node
//!    (its Node object) has a `topology.kubernetes.io/zone` label, every ready
//!    endpoint has a zone hint and one is hinted for the node's zone, cluster
//!    endpoints are the ready ones hinted for that zone. The terminating
//!    fallback ignores hints; Local lists ignore them.
//! 8. Each of n endpoints gets exactly 1/n (the oracle's probabilities are the
//!    ideal ones, exact fractions; comparisons with a trace use a tolerance,
//!    applied exactly: see [`crate::exact`]).
//!
//! Cluster IP:
//! 9. No usable endpoint anywhere: reject. That includes a service with no
//!    EndpointSlice at all, selector or not: kube-proxy never reads selectors.
//!    `internalTrafficPolicy: Local`: the local endpoints; none: drop.
//! 10. Masqueraded when `masqueradeAll`, else when the source is outside the
//!     family's cluster CIDR (a node, a router); never without one (a
//!     dual-stack `clusterCIDR` without a CIDR of the family included).
//!
//! External destinations (external IPs, LB IPs, node ports):
//! 11. No usable endpoint anywhere: reject — except a node-sent packet to a
//!     remote address, which leaves the node untouched (the reject sits in
//!     filter INPUT/FORWARD; what happens further is not this node's business).
//!     The reject, and the drop of rule 14, for a node port match every local
//!     address (`--dst-type LOCAL`), also those outside `--nodeport-addresses`,
//!     where nat does not capture the port and so nobody is short-circuited.
//! 12. An LB IP with `loadBalancerSourceRanges` of the family (ranges of the
//!     other family alone filter nothing): a source in no range is dropped,
//!     the node's own packets included, unless a range holds the node IP and the
//!     source is one of the service's LB IPs. Node ports and external IPs are
//!     not filtered.
//! 13. `externalTrafficPolicy: Cluster`: all cluster endpoints, masqueraded.
//! 14. `externalTrafficPolicy: Local`: a source in the cluster CIDR (a pod) goes
//!     to all cluster endpoints unmasqueraded; a local source (the node) to all
//!     cluster endpoints, masqueraded; anyone else to the local endpoints with
//!     its address kept, or is dropped when there is none.
//!
//! Everything:
//! 15. Hairpin: a connection DNATed to the client's own address is masqueraded.
//! 16. A packet from the network DNATed to one of the node's own addresses is
//!     delivered locally and never passes nat POSTROUTING, so it is not
//!     masqueraded.
//! 17. Localnet guard (IPv4 only): when node ports answer on loopback
//!     (`--nodeport-addresses` without IPv4 CIDRs, or a CIDR holding a
//!     127.0.0.0/8 address), a packet to
//!     127.0.0.0/8 from a non-loopback source that was not DNATed is dropped
//!     (kube-proxy's `KUBE-FIREWALL` rule). Node-sent packets carry the node IP
//!     (contract §3), so this hits them too.
//! 18. IPv6 has no `route_localnet`: a packet from the network to ::1 is
//!     dropped by the kernel (`ip6_rcv_core`), and a node-sent one to a node
//!     port on ::1 is not DNATed (it meets only the filter REJECT/DROP of
//!     rule 11 and 14).
//! 19. Anything else is accepted untouched. `sessionAffinity: ClientIP` makes
//!     every DNATed flow sticky.
//!
//! # Known gaps
//!
//! - Two entry points claiming the same IP, port and protocol (say an external
//!   IP equal to another service's LB IP) are ambiguous: kube-proxy's outcome
//!   depends on rule order. [`Oracle::predict`] returns [`OracleError::Overlap`].
//! - Duplicate endpoints with conflicting conditions depend on kube-proxy's map
//!   order; the oracle keeps the first copy in object order (or a local one).
//! - `trafficDistribution` (alpha in
//!   1.30, off), `--nodeport-addresses primary`, health-check node ports
//!   colliding with node ports, and a cluster IP that is also a node address
//!   are not modelled. Routing outside the node (return paths, rp_filter) is not
//!   either: the oracle says what this node does.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::exact::BigRational;
use crate::scenario::GeneratorInput;
use kpconform_iptables::model::Family;
use kpconform_iptables::{Packet, Verdict};

mod compare;
mod context;
mod decide;
mod endpoints;
mod index;
mod model;
mod probes;
mod unknown;

#[cfg(test)]
mod tests;

pub use compare::Mismatch;
pub use context::{EntryKind, ProbeContext, SourceKind};
pub use unknown::PodNetworkDependence;

/// The cluster state seen from one node, ready to answer for many packets.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// The family of the proxier whose rules are predicted.
    family: Family,
    /// The node IP of that family.
    node_ip: Option<IpAddr>,
    /// The node's addresses of that family.
    addresses: Vec<IpAddr>,
    cluster_cidr: Option<IpNet>,
    masquerade_all: bool,
    /// `None`: node ports on every local address (but loopback without
    /// localhost node ports).
    node_port_ips: Option<Vec<IpAddr>>,
    /// Localhost node ports are on (IPv4), and with them the localnet guard.
    localnet_guard: bool,
    zone: Option<String>,
    ports: Vec<model::ServicePort>,
    /// `ports` by address, protocol and port.
    index: index::PortIndex,
}

/// A service port as reports name it ([`Oracle::service_port_of`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    /// `namespace/name:port`, or `namespace/name` for an unnamed port.
    pub name: String,
    /// The service port.
    pub port: u16,
    /// Its protocol.
    pub protocol: kpconform_iptables::model::Protocol,
    /// Its node port, if any.
    pub node_port: Option<u16>,
}

/// What must happen to one packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The packet.
    pub packet: Packet,
    /// Probability per (verdict, destination after DNAT, masqueraded), in
    /// the terms of [`kpconform_iptables::Distribution::summary`]; exact
    /// (`1/n` per endpoint), they sum to exactly 1.
    pub outcomes: BTreeMap<(Verdict, SocketAddr, bool), BigRational>,
    /// Session affinity applies: a second connection from the same client
    /// reaches the first one's endpoint.
    pub sticky: bool,
    /// Why, one rule per line.
    pub reasons: Vec<String>,
}

/// Why the oracle cannot answer.
// Exhaustive on purpose: the fuzz properties match every kind, so that a new
// one must be decided there rather than silently skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleError {
    /// The node has no address, so node-sent packets have no source.
    NoNodeAddress,
    /// Several entry points claim the packet; the outcome depends on rule order.
    Overlap {
        /// The packet.
        packet: Packet,
        /// What claims it, e.g. `cluster IP of default/api:http`.
        claims: Vec<String>,
    },
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OracleError::NoNodeAddress => f.write_str("the node has no address"),
            OracleError::Overlap { packet, claims } => write!(
                f,
                "{packet}: several entry points claim the destination ({}); \
                 the outcome depends on rule order",
                claims.join(", ")
            ),
        }
    }
}

impl std::error::Error for OracleError {}

/// What must happen to `packet` on the node of `input`; a shortcut for
/// [`Oracle::new`] then [`Oracle::predict`].
pub fn predict(input: &GeneratorInput, packet: &Packet) -> Result<Prediction, OracleError> {
    Oracle::new(input).predict(packet)
}

impl Oracle {
    /// Reads the cluster state of `input` as its node's kube-proxy would:
    /// the proxier of `input.node.family`.
    pub fn new(input: &GeneratorInput) -> Oracle {
        let node = &input.node;
        let family = node.family;
        let (ports, zone) = model::read(&input.objects, &node.name, family);
        let addresses: Vec<IpAddr> = node
            .addresses
            .iter()
            .map(IpNet::addr)
            .filter(|ip| Family::of(*ip) == family)
            .collect();
        // NewNodePortAddresses: each proxier keeps the CIDRs of its family;
        // none (or a zero CIDR) means every local address.
        let cidrs: Vec<IpNet> = node
            .node_port_addresses
            .iter()
            .copied()
            .filter(|c| Family::of(c.addr()) == family)
            .collect();
        let match_all = cidrs.is_empty() || cidrs.iter().any(|c| c.prefix_len() == 0);
        // Localhost node ports: IPv4 only, and only when the node-port
        // addresses hold loopback (NodePortAddresses.ContainsIPv4Loopback: a
        // CIDR whose address is a loopback one or that contains 127.0.0.0;
        // matching everything includes it). The IPv6 proxier never has them
        // (no route_localnet): it writes `! -d ::1/128` on the node-port jump
        // and skips ::1 in an explicit list.
        let localhost_node_ports = family == Family::Ipv4
            && (match_all
                || cidrs.iter().any(|c| {
                    c.network().is_loopback()
                        || c.contains(&IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)))
                }));
        let node_port_ips = (!match_all).then(|| {
            addresses
                .iter()
                .copied()
                .chain([family.localhost()])
                .filter(|ip| localhost_node_ports || !ip.is_loopback())
                .filter(|ip| cidrs.iter().any(|c| c.contains(ip)))
                .collect()
        });
        Oracle {
            family,
            node_ip: node.node_ip(),
            addresses,
            cluster_cidr: node.cluster_cidr(),
            masquerade_all: node.masquerade_all,
            node_port_ips,
            localnet_guard: localhost_node_ports,
            zone,
            index: index::PortIndex::new(&ports),
            ports,
        }
    }

    /// The service port a packet is about, for reports: one whose address
    /// captures it (cluster IP, external or LB IP and port, node port), else
    /// one with the destination among its IPs or its node port on a local
    /// address (another port or protocol there); `None` for an address that
    /// is no service's. Its name is
    /// `namespace/name:port` (`namespace/name` for an unnamed port), with
    /// its port, protocol and node port.
    pub fn service_port_of(&self, packet: &Packet) -> Option<ServicePortName> {
        let port = self.claims(packet).first().map(|(p, _)| *p).or_else(|| {
            let dst = packet.to.addr.ip();
            let dport = packet.to.addr.port();
            // The first port with the destination among its addresses, or
            // its node port on a local address.
            let at = self.index.first_about(dst, dport, self.is_local(dst))?;
            self.ports.get(at)
        })?;
        Some(ServicePortName {
            name: port.name.clone(),
            port: port.port,
            protocol: port.protocol,
            node_port: port.node_port,
        })
    }

    /// `--src-type/--dst-type LOCAL`: the node's addresses and 127.0.0.0/8
    /// or ::1.
    fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.addresses.contains(&ip)
    }

    fn serves_node_ports(&self, ip: IpAddr) -> bool {
        match &self.node_port_ips {
            // IPv6: `--dst-type LOCAL ! -d ::1/128`.
            None => self.is_local(ip) && (self.localnet_guard || !ip.is_loopback()),
            Some(ips) => ips.contains(&ip),
        }
    }

    /// The family of the proxier whose rules are predicted.
    pub fn family(&self) -> Family {
        self.family
    }
}

impl Prediction {
    /// The same prediction with every outcome unmasqueraded (masses merged):
    /// for comparisons where masquerading is not judged.
    pub fn without_masquerade(&self) -> Prediction {
        let mut outcomes: BTreeMap<(Verdict, SocketAddr, bool), BigRational> = BTreeMap::new();
        for ((verdict, dst, _), p) in &self.outcomes {
            *outcomes.entry((*verdict, *dst, false)).or_default() += p;
        }
        Prediction {
            outcomes,
            ..self.clone()
        }
    }

    /// The accepted mass per destination.
    pub fn accepted(&self) -> BTreeMap<SocketAddr, BigRational> {
        let mut out: BTreeMap<SocketAddr, BigRational> = BTreeMap::new();
        for ((verdict, dst, _), p) in &self.outcomes {
            if *verdict == Verdict::Accept {
                *out.entry(*dst).or_default() += p;
            }
        }
        out
    }

    /// The verdict, when all the mass ends in one.
    pub fn verdict(&self) -> Option<Verdict> {
        let mut verdicts = self.outcomes.keys().map(|(v, _, _)| *v);
        let first = verdicts.next()?;
        verdicts.all(|v| v == first).then_some(first)
    }

    /// Whether accepted traffic is masqueraded, when it all agrees; `None`
    /// when nothing is accepted or outcomes differ (a hairpin among others).
    pub fn masquerade(&self) -> Option<bool> {
        let mut masq = self
            .outcomes
            .keys()
            .filter(|(v, _, _)| *v == Verdict::Accept)
            .map(|(_, _, m)| *m);
        let first = masq.next()?;
        masq.all(|m| m == first).then_some(first)
    }
}

/// `packet: verdict destination p=... [masquerade]` lines, then the reasons.
impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:", self.packet)?;
        for ((verdict, dst, masq), p) in &self.outcomes {
            writeln!(
                f,
                "  {verdict} {dst}{}  p={}",
                if *masq { " masquerade" } else { "" },
                crate::exact::show(p)
            )?;
        }
        if self.sticky {
            writeln!(f, "  sticky")?;
        }
        for reason in &self.reasons {
            writeln!(f, "  because {reason}")?;
        }
        Ok(())
    }
}
