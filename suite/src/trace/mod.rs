//! The packet tracer (contract §3): every path a first packet can take through
//! a node's netfilter hooks, with its exact probability and chain walk.

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
