//! Indexed chain scanning: where the next rule of a chain that can match a
//! packet is, without evaluating every rule before it.
//!
//! kube-proxy's dispatch chains (`KUBE-SERVICES`, `KUBE-NODEPORTS`,
//! `KUBE-EXTERNAL-SERVICES`) hold one rule per service port, each of which
//! can only match one destination address, protocol and port. Scanning them
//! in order makes every trace linear in the number of services, and an audit
//! of every service quadratic. The index is decided by the rules' shape, not
//! by chain names: any chain long enough gets one.
//!
//! A rule is *keyed* when one of its matches pins a packet field so that the
//! rule cannot match a packet with another value there:
//!
//! - `-d ADDR/32` (or `/128`), not negated: the destination address;
//! - `-m tcp|udp|sctp --dport PORT` (one port, not negated): the protocol
//!   and destination port, provided no match before it has a side effect
//!   (`-m recent`) or forks (`-m statistic --mode random`) — skipping the rule
//!   must be unobservable, and those are observable even when a later match
//!   fails;
//! - both: the three together.
//!
//! Every other rule is *unkeyed* and is always a candidate. The next rule to
//! evaluate at position `r` is the first unkeyed rule at or after `r` or the
//! first keyed rule at or after `r` whose key is the packet's, whichever
//! comes first: exactly the first rule at or after `r` that the plain scan
//! could see match, since every rule skipped provably fails on its key and
//! evaluating it would have had no effect but to move on. First-match
//! semantics stay exact, with jumps, returns and gotos in between, because
//! the question is asked afresh for the packet as it is at every step.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::{Match, Neg, PortRange, Rule, Statistic, Table};

use super::packet::{protocol_number, PacketState};

/// How a [`Tracer`](super::Tracer) finds the next rule of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Every rule in order: the reference the index is tested against.
    Plain,
    /// Chains of at least `min_rules` rules, some of them keyed, are indexed
    /// by destination address, protocol and port; shorter ones are scanned.
    Indexed {
        /// The shortest chain worth an index.
        min_rules: usize,
    },
}

/// The default: index chains of [`Scan::DEFAULT_MIN_RULES`] rules or more.
impl Default for Scan {
    fn default() -> Scan {
        Scan::Indexed {
            min_rules: Scan::DEFAULT_MIN_RULES,
        }
    }
}

impl Scan {
    /// Below this many rules a scan is as fast as a lookup (a few hash
    /// probes and binary searches), and kube-proxy's per-service chains stay
    /// unindexed.
    pub const DEFAULT_MIN_RULES: usize = 16;
}

/// What a keyed rule requires of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// Destination address, protocol number and destination port.
    Exact(IpAddr, u8, u16),
    /// Protocol number and destination port.
    Port(u8, u16),
    /// Destination address.
    Dst(IpAddr),
}

/// The index of one chain.
#[derive(Debug, Clone)]
struct ChainIndex {
    /// How many rules the chain has.
    len: usize,
    /// Rules that must always be evaluated, ascending.
    unkeyed: Vec<u32>,
    /// Keyed rules by key, each list ascending.
    keyed: HashMap<Key, Vec<u32>>,
}

/// The indexes of one table's chains (only those worth one).
#[derive(Debug, Clone, Default)]
pub(crate) struct TableScan {
    /// By chain position in the table, ascending.
    chains: Vec<(usize, ChainIndex)>,
}

impl TableScan {
    /// Indexes the chains of `table` as `scan` says.
    pub(crate) fn new(table: &Table, scan: Scan) -> TableScan {
        let Scan::Indexed { min_rules } = scan else {
            return TableScan::default();
        };
        let chains = table
            .chains
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rules.len() >= min_rules && !c.rules.is_empty())
            .filter_map(|(i, c)| ChainIndex::new(&c.rules).map(|x| (i, x)))
            .collect();
        TableScan { chains }
    }

    /// The position of the first rule at or after `from` in chain `chain`
    /// that can match `pkt` (the chain's length when none can: the walk falls
    /// off its end, as the plain scan would). Only called
    /// at the start of a rule, never while resuming one after a fork.
    pub(crate) fn next(&self, chain: usize, from: usize, pkt: &PacketState) -> usize {
        match self.chains.binary_search_by_key(&chain, |(i, _)| *i) {
            Ok(at) => self.chains[at].1.next(from, pkt),
            Err(_) => from,
        }
    }
}

impl ChainIndex {
    /// The index of `rules`, or `None` when no rule is keyed (nothing to
    /// skip).
    fn new(rules: &[Rule]) -> Option<ChainIndex> {
        let mut unkeyed = Vec::new();
        let mut keyed: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            // Chains have far fewer than 2^32 rules; a longer one is simply
            // not indexed.
            let i = u32::try_from(i).ok()?;
            match key_of(rule) {
                Some(key) => keyed.entry(key).or_default().push(i),
                None => unkeyed.push(i),
            }
        }
        (!keyed.is_empty()).then_some(ChainIndex {
            len: rules.len(),
            unkeyed,
            keyed,
        })
    }

    fn next(&self, from: usize, pkt: &PacketState) -> usize {
        let first_from = |list: &[u32]| {
            let at = list.partition_point(|&i| (i as usize) < from);
            list.get(at).map(|&i| i as usize)
        };
        let mut best = first_from(&self.unkeyed);
        let mut consider = |key: Key| {
            if let Some(i) = self.keyed.get(&key).and_then(|l| first_from(l)) {
                best = Some(best.map_or(i, |b| b.min(i)));
            }
        };
        consider(Key::Dst(pkt.dst));
        if let Some(proto) = protocol_number(pkt.protocol) {
            consider(Key::Port(proto, pkt.dport));
            consider(Key::Exact(pkt.dst, proto, pkt.dport));
        }
        // No candidate: the scan would fall off the chain's end.
        best.unwrap_or(self.len)
    }
}

/// What `rule` requires of the packet's destination, protocol and port, if
/// anything the index can use.
fn key_of(rule: &Rule) -> Option<Key> {
    // Basic matches are evaluated before any extension match, and have no
    // side effects.
    let dst = rule
        .basic
        .destination
        .as_ref()
        .filter(|n| !n.negated && n.value.prefix_len() == n.value.max_prefix_len())
        .map(|n| n.value.network());
    let mut port = None;
    for m in &rule.matches {
        match m {
            Match::Ports {
                protocol,
                dport:
                    Some(Neg {
                        negated: false,
                        value: PortRange { first, last },
                    }),
                ..
            } if first == last => {
                // A protocol the module cannot match never matches; leave
                // such a rule to the scan.
                port = protocol_number(*protocol).map(|p| (p, *first));
                break;
            }
            // Evaluating these has an effect even when a later match fails:
            // a recent list is updated, a statistic forks the walk.
            Match::Recent(_)
            | Match::Statistic(Neg {
                value: Statistic::Random(_),
                ..
            }) => break,
            _ => {}
        }
    }
    match (dst, port) {
        (Some(ip), Some((p, port))) => Some(Key::Exact(ip, p, port)),
        (None, Some((p, port))) => Some(Key::Port(p, port)),
        (Some(ip), None) => Some(Key::Dst(ip)),
        (None, None) => None,
    }
}
