//! The order in which a packet meets the tables, per netfilter hook.
//!
//! Within a hook the kernel runs tables by priority: raw (-300), conntrack
//! (-200), mangle (-150), nat destination (-100), filter (0), security (50),
//! nat source (100). A packet's journey is a sequence of legs; after a leg the
//! routing decision, taken on the destination as NAT left it, picks the next.

use crate::model::{BuiltinChain, TableName};

use super::packet::{NodeAddrs, PacketState, EXTERNAL_IFACE, LOOPBACK_IFACE};

use BuiltinChain::{Forward, Input, Output, Postrouting, Prerouting};
use TableName::{Filter, Mangle, Nat, Raw, Security};

/// One stretch of hooks between routing decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leg {
    /// Arrived from the network, before routing.
    Prerouting,
    /// Routed to a local address.
    LocalIn,
    /// Routed onwards: forwarded and sent out.
    Forward,
    /// Sent by the node itself.
    LocalOut,
    /// A node-sent packet to a local address coming back in through `lo`.
    /// Its connection already has both NAT bindings, so nat PREROUTING and
    /// nat INPUT are not run again (as in the kernel).
    Loopback,
}

impl Leg {
    /// The (table, hook) pairs of this leg, in kernel order.
    pub(crate) fn stages(self) -> &'static [(TableName, BuiltinChain)] {
        match self {
            Leg::Prerouting => &[(Raw, Prerouting), (Mangle, Prerouting), (Nat, Prerouting)],
            Leg::LocalIn => &[
                (Mangle, Input),
                (Filter, Input),
                (Security, Input),
                (Nat, Input),
            ],
            Leg::Forward => &[
                (Mangle, Forward),
                (Filter, Forward),
                (Security, Forward),
                (Mangle, Postrouting),
                (Nat, Postrouting),
            ],
            Leg::LocalOut => &[
                (Raw, Output),
                (Mangle, Output),
                (Nat, Output),
                (Filter, Output),
                (Security, Output),
                (Mangle, Postrouting),
                (Nat, Postrouting),
            ],
            Leg::Loopback => &[
                (Raw, Prerouting),
                (Mangle, Prerouting),
                (Mangle, Input),
                (Filter, Input),
                (Security, Input),
            ],
        }
    }

    /// The leg after this one, decided on the packet as it is now; `None`
    /// when the packet has been delivered or sent.
    pub(crate) fn next(self, pkt: &PacketState, node: &NodeAddrs) -> Option<Leg> {
        match self {
            Leg::Prerouting if node.is_local(pkt.dst) => Some(Leg::LocalIn),
            Leg::Prerouting => Some(Leg::Forward),
            Leg::LocalOut if node.is_local(pkt.dst) => Some(Leg::Loopback),
            Leg::LocalIn | Leg::Forward | Leg::LocalOut | Leg::Loopback => None,
        }
    }

    /// Sets the interfaces the packet has at `hook` during this leg, and
    /// whether conntrack has seen it yet in `table`.
    pub(crate) fn enter(
        self,
        table: TableName,
        hook: BuiltinChain,
        pkt: &mut PacketState,
        node: &NodeAddrs,
    ) {
        let (input, output) = match (self, hook) {
            (Leg::Prerouting | Leg::LocalIn | Leg::Forward, Prerouting | Input) => {
                (EXTERNAL_IFACE, "")
            }
            (_, Forward) => (EXTERNAL_IFACE, EXTERNAL_IFACE),
            // Node-sent packets are routed again after nat OUTPUT, so every
            // hook looks at the route of the destination as it is now.
            (Leg::LocalOut, _) if node.is_local(pkt.dst) => ("", LOOPBACK_IFACE),
            (Leg::LocalOut, _) => ("", EXTERNAL_IFACE),
            (Leg::Loopback, _) => (LOOPBACK_IFACE, ""),
            (_, _) => ("", EXTERNAL_IFACE),
        };
        pkt.in_iface = input;
        pkt.out_iface = output;
        // The raw table runs before conntrack; a looped-back packet keeps the
        // connection it was given on the way out.
        pkt.tracked = table != Raw || self == Leg::Loopback;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use crate::trace::Destination;

    #[test]
    fn routing_follows_the_destination_after_nat() {
        let node = NodeAddrs::new(&["192.168.0.10/32".parse().unwrap()]);
        let to = Destination {
            addr: "192.168.0.10:30080".parse().unwrap(),
            protocol: Protocol::Tcp,
        };
        let mut pkt = PacketState::new("203.0.113.7".parse().unwrap(), to);
        assert_eq!(Leg::Prerouting.next(&pkt, &node), Some(Leg::LocalIn));
        assert_eq!(Leg::LocalOut.next(&pkt, &node), Some(Leg::Loopback));
        pkt.dst = "10.64.1.5".parse().unwrap();
        assert_eq!(Leg::Prerouting.next(&pkt, &node), Some(Leg::Forward));
        assert_eq!(Leg::LocalOut.next(&pkt, &node), None);
        assert_eq!(Leg::Forward.next(&pkt, &node), None);
    }

    #[test]
    fn interfaces_and_conntrack_visibility() {
        let node = NodeAddrs::new(&["192.168.0.10/32".parse().unwrap()]);
        let to = Destination {
            addr: "127.0.0.1:30080".parse().unwrap(),
            protocol: Protocol::Tcp,
        };
        let mut pkt = PacketState::new("192.168.0.10".parse().unwrap(), to);
        Leg::LocalOut.enter(Raw, Output, &mut pkt, &node);
        assert_eq!(
            (pkt.in_iface, pkt.out_iface, pkt.tracked),
            ("", "lo", false)
        );
        pkt.dst = "10.64.1.5".parse().unwrap();
        Leg::LocalOut.enter(Filter, Output, &mut pkt, &node);
        assert_eq!(
            (pkt.in_iface, pkt.out_iface, pkt.tracked),
            ("", "eth0", true)
        );
        Leg::Forward.enter(Filter, Forward, &mut pkt, &node);
        assert_eq!((pkt.in_iface, pkt.out_iface), ("eth0", "eth0"));
        Leg::Forward.enter(Nat, Postrouting, &mut pkt, &node);
        assert_eq!((pkt.in_iface, pkt.out_iface), ("", "eth0"));
        Leg::Loopback.enter(Raw, Prerouting, &mut pkt, &node);
        assert_eq!((pkt.in_iface, pkt.out_iface, pkt.tracked), ("lo", "", true));
    }
}
