//! The packet being traced, the state it picks up on its way (marks, NAT,
//! conntrack status), and how the node classifies addresses.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;

use crate::model::{AddrType, Protocol};

/// The source port every traced flow uses: a fixed ephemeral port, so that
/// `--sport` matches are deterministic.
pub const SOURCE_PORT: u16 = 40000;

/// The interface packets from the network arrive on and forwarded or
/// node-sent packets leave by.
pub const EXTERNAL_IFACE: &str = "eth0";

/// The loopback interface: node-sent packets to a local address leave by it.
pub const LOOPBACK_IFACE: &str = "lo";

/// The source of a flow's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSource {
    /// Arrives from the network (a remote client, or a pod through the node's bridge).
    Ip(Ipv4Addr),
    /// Sent by the node itself, from its first address.
    Node,
}

/// Where a flow is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// Destination address.
    pub addr: SocketAddrV4,
    /// Protocol.
    pub protocol: Protocol,
}

/// The first packet of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Where it comes from.
    pub from: FlowSource,
    /// Where it is sent, and its protocol.
    pub to: Destination,
}

impl Packet {
    /// A packet from `from` to `addr` over `protocol`.
    pub fn new(from: FlowSource, addr: SocketAddrV4, protocol: Protocol) -> Packet {
        Packet {
            from,
            to: Destination { addr, protocol },
        }
    }
}

/// `203.0.113.7 -> 192.168.0.10:30080/tcp`, or `node -> ...`.
impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            FlowSource::Ip(ip) => write!(f, "{ip}")?,
            FlowSource::Node => f.write_str("node")?,
        }
        write!(f, " -> {}/{}", self.to.addr, self.to.protocol)
    }
}

/// The node's view of addresses: its own are LOCAL (as is 127.0.0.0/8), the
/// broadcast addresses of its subnets and 255.255.255.255 are BROADCAST,
/// 224.0.0.0/4 is MULTICAST, anything else UNICAST (reachable by a default
/// route). `--limit-iface-in/out` is not modelled: all local addresses count
/// on every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddrs {
    nets: Vec<Ipv4Net>,
}

impl NodeAddrs {
    pub(crate) fn new(nets: &[Ipv4Net]) -> NodeAddrs {
        NodeAddrs {
            nets: nets.to_vec(),
        }
    }

    /// The node IP (first address), the source of node-sent packets.
    pub(crate) fn first(&self) -> Option<Ipv4Addr> {
        self.nets.first().map(Ipv4Net::addr)
    }

    pub(crate) fn addr_type(&self, ip: Ipv4Addr) -> AddrType {
        if ip.is_loopback() || self.nets.iter().any(|n| n.addr() == ip) {
            AddrType::Local
        } else if ip.is_broadcast()
            || self
                .nets
                .iter()
                .any(|n| n.prefix_len() < 31 && n.broadcast() == ip)
        {
            AddrType::Broadcast
        } else if ip.is_multicast() {
            AddrType::Multicast
        } else {
            AddrType::Unicast
        }
    }

    pub(crate) fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.addr_type(ip) == AddrType::Local
    }
}

/// Everything the rules can see or change about the packet and its
/// connection at one point of its journey.
#[derive(Debug, Clone)]
pub(crate) struct PacketState {
    pub(crate) src: Ipv4Addr,
    pub(crate) sport: u16,
    pub(crate) dst: Ipv4Addr,
    pub(crate) dport: u16,
    pub(crate) protocol: Protocol,
    pub(crate) mark: u32,
    /// The connection's destination was rewritten (conntrack `DNAT` status).
    pub(crate) dnat: bool,
    /// The connection's source was rewritten (conntrack `SNAT` status).
    pub(crate) snat: bool,
    /// A MASQUERADE or SNAT target applied.
    pub(crate) masquerade: bool,
    /// Whether conntrack has seen the packet yet: the raw table runs before
    /// conntrack, so there a fresh packet has no connection (state INVALID).
    pub(crate) tracked: bool,
    pub(crate) in_iface: &'static str,
    pub(crate) out_iface: &'static str,
}

impl PacketState {
    pub(crate) fn new(src: Ipv4Addr, to: Destination) -> PacketState {
        PacketState {
            src,
            sport: SOURCE_PORT,
            dst: *to.addr.ip(),
            dport: to.addr.port(),
            protocol: to.protocol,
            mark: 0,
            dnat: false,
            snat: false,
            masquerade: false,
            tracked: false,
            in_iface: "",
            out_iface: "",
        }
    }

    pub(crate) fn destination(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.dst, self.dport)
    }
}

/// The IP protocol number a rule's `-p` compares against; `None` for `all`.
pub(crate) fn protocol_number(p: Protocol) -> Option<u8> {
    match p {
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Sctp => Some(132),
        Protocol::Icmp => Some(1),
        Protocol::All | Protocol::Number(0) => None,
        Protocol::Number(n) => Some(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_types() {
        let node = NodeAddrs::new(&[
            "192.168.0.10/24".parse().unwrap(),
            "172.16.5.10/32".parse().unwrap(),
        ]);
        let t = |s: &str| node.addr_type(s.parse().unwrap());
        assert_eq!(t("192.168.0.10"), AddrType::Local);
        assert_eq!(t("172.16.5.10"), AddrType::Local);
        assert_eq!(t("127.0.0.53"), AddrType::Local);
        assert_eq!(t("192.168.0.11"), AddrType::Unicast);
        assert_eq!(t("192.168.0.255"), AddrType::Broadcast);
        assert_eq!(t("255.255.255.255"), AddrType::Broadcast);
        assert_eq!(t("224.0.0.251"), AddrType::Multicast);
        assert_eq!(node.first(), Some(Ipv4Addr::new(192, 168, 0, 10)));
    }

    #[test]
    fn packet_display() {
        let p = Packet::new(
            FlowSource::Ip(Ipv4Addr::new(203, 0, 113, 7)),
            "192.168.0.10:30080".parse().unwrap(),
            Protocol::Tcp,
        );
        assert_eq!(p.to_string(), "203.0.113.7 -> 192.168.0.10:30080/tcp");
        let p = Packet::new(
            FlowSource::Node,
            "10.96.0.10:53".parse().unwrap(),
            Protocol::Udp,
        );
        assert_eq!(p.to_string(), "node -> 10.96.0.10:53/udp");
    }
}
