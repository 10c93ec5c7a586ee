//! The packet tracer (contract §3): every path a first packet can take through
//! a node's netfilter hooks, with its exact probability and chain walk.
//!
//! Modelling decisions, where the contract leaves room:
//!
//! - The packet's source port is [`SOURCE_PORT`] (40000). Packets from the
//!   network arrive on `eth0`; forwarded ones leave by `eth0`; node-sent ones
//!   leave by `lo` when the destination (as NAT left it) is local, else `eth0`.
//! - Tables run per hook in kernel priority order (raw, mangle, nat DNAT,
//!   filter, security, nat SNAT). The raw table runs before conntrack, so
//!   there a fresh packet's state is INVALID.
//! - A node-sent packet to a local address comes back in through `lo`: raw
//!   and mangle PREROUTING, mangle/filter/security INPUT (its NAT is already
//!   bound, so nat PREROUTING/INPUT do not run again). This is what the
//!   kernel does, and it is where filter INPUT rules (e.g. REJECT in
//!   `KUBE-EXTERNAL-SERVICES`) meet node-sent traffic.
//! - After DNAT/REDIRECT the conntrack state includes `DNAT`, after
//!   SNAT/MASQUERADE `SNAT` (even if the rewrite happens to be a no-op).
//! - REDIRECT goes to the node IP (the first address) from PREROUTING, and to
//!   127.0.0.1 from OUTPUT; MASQUERADE uses the node IP (127.0.0.1 on `lo`).
//!   NAT ranges use their first address and first port.
//! - `-m statistic --mode nth` is evaluated for the first packet that reaches
//!   the rule: it matches iff `--packet` is 0 (xt_statistic's counter starts
//!   at `every - 1 - packet` and matches when it wraps to 0).
//! - `-m limit` always matches (a first packet is within the burst), and
//!   `-m recent` follows xt_recent ([`RecentState`]) without TTLs.
//! - `-m nfacct` always matches (it only counts). Unknown matches never
//!   match; unknown targets do nothing and are recorded as warnings in the
//!   walk.
//! - Without `route_localnet` ([`Tracer::with_route_localnet`]; on by
//!   default), the routing decision after nat PREROUTING drops a packet from
//!   the network whose destination, as DNAT left it, is in 127.0.0.0/8 (a
//!   martian destination), as the kernel's `ip_route_input_noref` does.
//! - Falling off the end of a user chain is a step of the walk
//!   ([`Action::FallOff`]); a dropped or rejected path's compact form shows
//!   its whole nat walk ([`Outcome::path`]), and [`Outcome::explain`] lists
//!   every step with its table, chain and source line(s).
//!
//! ```
//! use kpconform_iptables::{model::Protocol, parse_str};
//! use kpconform_iptables::FlowSource;
//! use kpconform_iptables::{Packet, Tracer};
//!
//! let rules = parse_str(
//!     "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n\
//!      -A PREROUTING -d 10.96.0.1/32 -j KUBE-SVC-X\n\
//!      -A KUBE-SVC-X -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.64.0.1:80\n\
//!      -A KUBE-SVC-X -j DNAT --to-destination 10.64.1.1:80\nCOMMIT\n",
//! )
//! .unwrap();
//! let tracer = Tracer::new(&rules, &["192.168.0.10/24".parse().unwrap()]);
//! let from = FlowSource::Ip("203.0.113.7".parse().unwrap());
//! let dist = tracer
//!     .trace(&Packet::new(from, "10.96.0.1:80".parse().unwrap(), Protocol::Tcp))
//!     .unwrap();
//! assert_eq!(
//!     dist.to_string(),
//!     "nat PREROUTING > KUBE-SVC-X > DNAT 10.64.0.1:80 | accept  p=0.5\n\
//!      nat PREROUTING > KUBE-SVC-X > DNAT 10.64.1.1:80 | accept  p=0.5\n"
//! );
//! assert!(dist.total().is_one());
//! ```

use std::fmt;

mod eval;
mod explain;
mod hooks;
mod index;
mod outcome;
mod packet;
mod recent;
mod walk;

#[cfg(test)]
mod tests;

pub use index::Scan;
pub use outcome::{format_probability, Action, Distribution, Outcome, Step, Walk, WalkItem};
pub use packet::{
    Destination, DestinationError, FlowSource, Packet, EXTERNAL_IFACE, LOOPBACK_IFACE, SOURCE_PORT,
};
pub use recent::{RecentEntry, RecentState, MAX_ENTRIES, MAX_STAMPS};
pub use walk::{TraceError, TraceErrorKind, Tracer, MAX_DEPTH, MAX_PATHS, MAX_RULE_EVALUATIONS};

/// Where a packet's probability mass ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Accepted (delivered locally or forwarded).
    Accept,
    /// Dropped silently.
    Drop,
    /// Rejected with an ICMP error or TCP reset.
    Reject,
}

impl Verdict {
    /// `accept`, `drop` or `reject`, as scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
