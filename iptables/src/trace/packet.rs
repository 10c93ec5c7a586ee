//! The packet being traced, the state it picks up on its way (marks, NAT,
//! conntrack status), and how the node classifies addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::model::{AddrType, Family, Protocol};

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
    Ip(IpAddr),
    /// Sent by the node itself, from its first address of the flow's family.
    Node,
}

/// Where a flow is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// Destination address.
    pub addr: SocketAddr,
    /// Protocol.
    pub protocol: Protocol,
}

/// `10.96.0.10:53/udp` or `[fd00:10:96::a]:53/udp`: the spelling
/// [`Destination::from_str`] reads.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.protocol)
    }
}

/// `203.0.113.7`, or `node`: the spelling scenarios and `--from` use.
impl fmt::Display for FlowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowSource::Ip(ip) => write!(f, "{ip}"),
            FlowSource::Node => f.write_str("node"),
        }
    }
}

/// Why a text is not an `IP:PORT/PROTO` [`Destination`]; each variant holds
/// the whole text, and the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// There is no `/` before a protocol.
    #[error("`{0}` has no /PROTO; expected IP:PORT/PROTO like 10.96.0.10:53/udp")]
    NoProtocol(String),
    /// The protocol (second field) is not tcp, udp or sctp.
    #[error("`{0}` has an unknown protocol `{1}` (tcp, udp or sctp); expected IP:PORT/PROTO like 10.96.0.10:53/udp")]
    UnknownProtocol(String, String),
    /// The part before the `/` is not an address with a port in 1..=65535.
    #[error(
        "`{0}` is not a valid address and port; expected IP:PORT/PROTO like 10.96.0.10:53/udp, or [IPv6]:PORT/PROTO like [fd00:10:96::a]:53/udp"
    )]
    Address(String),
}

/// `IP:PORT/PROTO`: an IPv4 address or a bracketed IPv6 one
/// (`[fd00::1]:80/tcp`), a port in 1..=65535 (no flow goes to port 0), and `tcp`, `udp` or `sctp` in any case (`TCP` as kubectl
/// writes it is read too). [`Destination`]'s `Display` writes it back.
impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Destination, DestinationError> {
        let (addr, proto) = s
            .rsplit_once('/')
            .ok_or_else(|| DestinationError::NoProtocol(s.to_string()))?;
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => {
                return Err(DestinationError::UnknownProtocol(
                    s.to_string(),
                    proto.to_string(),
                ))
            }
        };
        let addr = SocketAddr::from_str(addr)
            .ok()
            .filter(|a| a.port() != 0)
            .ok_or_else(|| DestinationError::Address(s.to_string()))?;
        Ok(Destination { addr, protocol })
    }
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
    pub fn new(from: FlowSource, addr: SocketAddr, protocol: Protocol) -> Packet {
        Packet {
            from,
            to: Destination { addr, protocol },
        }
    }

    /// The packet's family: that of its destination.
    pub fn family(&self) -> Family {
        Family::of(self.to.addr.ip())
    }
}

/// `203.0.113.7 -> 192.168.0.10:30080/tcp`, or `node -> ...`.
impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

/// The node's view of addresses: its own are LOCAL (as are 127.0.0.0/8 and
/// ::1), the broadcast addresses of its IPv4 subnets and 255.255.255.255
/// are BROADCAST, multicast ranges MULTICAST, anything else UNICAST
/// (reachable by a default route). `--limit-iface-in/out` is not modelled:
/// all local addresses count on every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddrs {
    nets: Vec<IpNet>,
}

impl NodeAddrs {
    pub(crate) fn new(nets: &[IpNet]) -> NodeAddrs {
        NodeAddrs {
            nets: nets.to_vec(),
        }
    }

    /// The node IP of `family` (its first address of that family), the
    /// source of node-sent packets and what MASQUERADE writes.
    pub(crate) fn first(&self, family: Family) -> Option<IpAddr> {
        self.nets
            .iter()
            .map(IpNet::addr)
            .find(|ip| Family::of(*ip) == family)
    }

    pub(crate) fn addr_type(&self, ip: IpAddr) -> AddrType {
        let subnet_broadcast = |ip: IpAddr| {
            self.nets.iter().any(|n| match n {
                IpNet::V4(n) => n.prefix_len() < 31 && IpAddr::V4(n.broadcast()) == ip,
                IpNet::V6(_) => false,
            })
        };
        if ip.is_loopback() || self.nets.iter().any(|n| n.addr() == ip) {
            AddrType::Local
        } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) || subnet_broadcast(ip) {
            AddrType::Broadcast
        } else if ip.is_multicast() {
            AddrType::Multicast
        } else {
            AddrType::Unicast
        }
    }

    pub(crate) fn is_local(&self, ip: IpAddr) -> bool {
        self.addr_type(ip) == AddrType::Local
    }
}

/// Everything the rules can see or change about the packet and its
/// connection at one point of its journey.
#[derive(Debug, Clone)]
pub(crate) struct PacketState {
    pub(crate) src: IpAddr,
    pub(crate) sport: u16,
    pub(crate) dst: IpAddr,
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
    pub(crate) fn new(src: IpAddr, to: Destination) -> PacketState {
        PacketState {
            src,
            sport: SOURCE_PORT,
            dst: to.addr.ip(),
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

    pub(crate) fn destination(&self) -> SocketAddr {
        SocketAddr::new(self.dst, self.dport)
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
        assert_eq!(node.first(Family::Ipv4), "192.168.0.10".parse().ok());
        assert_eq!(node.first(Family::Ipv6), None);
    }

    #[test]
    fn address_types_of_a_dual_stack_node() {
        let node = NodeAddrs::new(&[
            "192.168.0.10/24".parse().unwrap(),
            "fd00:192:168::10/64".parse().unwrap(),
        ]);
        let t = |s: &str| node.addr_type(s.parse().unwrap());
        assert_eq!(t("fd00:192:168::10"), AddrType::Local);
        assert_eq!(t("::1"), AddrType::Local);
        assert_eq!(t("fd00:192:168::11"), AddrType::Unicast);
        assert_eq!(t("ff02::1"), AddrType::Multicast);
        assert_eq!(node.first(Family::Ipv6), "fd00:192:168::10".parse().ok());
        assert_eq!(node.first(Family::Ipv4), "192.168.0.10".parse().ok());
    }

    #[test]
    fn packet_display() {
        let p = Packet::new(
            FlowSource::Ip("203.0.113.7".parse().unwrap()),
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

    #[test]
    fn destinations_parse_and_print_back() {
        for text in [
            "10.96.0.1:80/tcp",
            "10.96.0.10:53/udp",
            "192.168.0.10:65535/sctp",
            "[fd00:10:96::a]:53/udp",
            "[::1]:30080/tcp",
        ] {
            let d: Destination = text.parse().expect(text);
            assert_eq!(d.to_string(), text);
        }
        let d: Destination = "10.96.0.10:53/udp".parse().expect("dns");
        assert_eq!(d.addr, "10.96.0.10:53".parse().unwrap());
        assert_eq!(d.protocol, Protocol::Udp);
    }

    #[test]
    fn destination_protocols_are_case_insensitive() {
        // kubectl spells protocols in upper case.
        for (text, protocol) in [
            ("10.96.0.1:80/TCP", Protocol::Tcp),
            ("10.96.0.1:80/Udp", Protocol::Udp),
            ("10.96.0.1:80/SCTP", Protocol::Sctp),
        ] {
            assert_eq!(
                text.parse::<Destination>().map(|d| d.protocol),
                Ok(protocol)
            );
        }
    }

    #[test]
    fn bad_destinations_say_why() {
        let err = |s: &str| s.parse::<Destination>().expect_err(s);
        assert_eq!(
            err("10.96.0.10:53"),
            DestinationError::NoProtocol("10.96.0.10:53".into())
        );
        assert_eq!(
            err("10.96.0.1:80/icmp"),
            DestinationError::UnknownProtocol("10.96.0.1:80/icmp".into(), "icmp".into())
        );
        assert_eq!(
            err("10.96.0.1:80/"),
            DestinationError::UnknownProtocol("10.96.0.1:80/".into(), "".into())
        );
        for bad in [
            "10.96.0.10/tcp",
            "10.96.0.10:0/tcp",
            "10.96.0.256:53/tcp",
            "10.96.0.1:65536/tcp",
            ":80/tcp",
            "10.96.0.0/24:80/tcp",
            "fd00::1:80/tcp",
            "[fd00::1]/tcp",
        ] {
            assert!(
                matches!(
                    err(bad),
                    DestinationError::Address(_) | DestinationError::UnknownProtocol(..)
                ),
                "{bad}"
            );
        }
        assert_eq!(
            err("10.96.0.10:0/tcp"),
            DestinationError::Address("10.96.0.10:0/tcp".into())
        );
        assert_eq!(
            err("10.96.0.10:53").to_string(),
            "`10.96.0.10:53` has no /PROTO; expected IP:PORT/PROTO like 10.96.0.10:53/udp"
        );
        assert!(err("10.96.0.1:80/icmp")
            .to_string()
            .contains("unknown protocol `icmp`"));
    }
}
