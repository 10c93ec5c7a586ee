//! The typed rule set: tables, chains, rules, matches and targets.
//!
//! The model is spelling-independent: kube-proxy's `--or-mark 0x4000` and
//! iptables-save's `--set-xmark 0x4000/0x4000` parse to the same [`MarkOp`],
//! and `-s 10.0.0.1` equals `-s 10.0.0.1/32`. What *is* kept is everything a
//! printer needs to reproduce a rule that parses back to the same model, and
//! the source position of every rule so that tracer walks and invariant
//! violations can point at a line.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::probability::Probability;
use crate::source::Span;

/// A whole `iptables-save` dump (or the result of replaying iptables commands).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// Tables in the order they appeared.
    pub tables: Vec<Table>,
}

/// One `*table` ... `COMMIT` block.
#[derive(Debug, Clone)]
pub struct Table {
    /// Which table.
    pub name: TableName,
    /// Chains in declaration order.
    pub chains: Vec<Chain>,
    /// Where `*table` was written; ignored by equality.
    pub span: Span,
    /// Whether the block was closed by `COMMIT` (commands replayed from a
    /// script are always committed).
    pub committed: bool,
}

/// The netfilter tables iptables knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableName {
    /// `raw`
    Raw,
    /// `mangle`
    Mangle,
    /// `filter`
    Filter,
    /// `nat`
    Nat,
    /// `security`
    Security,
}

impl TableName {
    /// All tables, in the order the normalizer prints them.
    pub const ALL: [TableName; 5] = [
        TableName::Raw,
        TableName::Mangle,
        TableName::Filter,
        TableName::Nat,
        TableName::Security,
    ];

    /// The name as iptables spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TableName::Raw => "raw",
            TableName::Mangle => "mangle",
            TableName::Filter => "filter",
            TableName::Nat => "nat",
            TableName::Security => "security",
        }
    }

    /// Parses a table name as iptables spells it.
    pub fn from_name(name: &str) -> Option<TableName> {
        TableName::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The built-in chains this table has, in kernel hook order.
    pub fn builtin_chains(self) -> &'static [BuiltinChain] {
        use BuiltinChain::*;
        match self {
            TableName::Raw => &[Prerouting, Output],
            TableName::Mangle => &[Prerouting, Input, Forward, Output, Postrouting],
            TableName::Filter | TableName::Security => &[Input, Forward, Output],
            TableName::Nat => &[Prerouting, Input, Output, Postrouting],
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five netfilter hooks, as chain names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltinChain {
    /// `PREROUTING`
    Prerouting,
    /// `INPUT`
    Input,
    /// `FORWARD`
    Forward,
    /// `OUTPUT`
    Output,
    /// `POSTROUTING`
    Postrouting,
}

impl BuiltinChain {
    /// The name as iptables spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinChain::Prerouting => "PREROUTING",
            BuiltinChain::Input => "INPUT",
            BuiltinChain::Forward => "FORWARD",
            BuiltinChain::Output => "OUTPUT",
            BuiltinChain::Postrouting => "POSTROUTING",
        }
    }
}

/// A chain name: one of the built-in hooks or a user-defined chain.
///
/// A user chain's name is shared: the parser stores each distinct name once
/// and every declaration and jump to it holds the same allocation (a
/// 10k-Service dump names ~100k chains ~400k times), so cloning a name
/// copies a pointer, not the text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainName {
    /// A built-in chain (only meaningful in tables that have it).
    Builtin(BuiltinChain),
    /// A user-defined chain such as `KUBE-SERVICES`.
    User(Arc<str>),
}

impl ChainName {
    /// Classifies a name: the five hook names are built-in, anything else is a user chain.
    pub fn new(name: &str) -> ChainName {
        ChainName::new_shared(name, || name.into())
    }

    /// The built-in chain called `name`, if it is one.
    pub fn builtin(name: &str) -> Option<BuiltinChain> {
        match name {
            "PREROUTING" => Some(BuiltinChain::Prerouting),
            "INPUT" => Some(BuiltinChain::Input),
            "FORWARD" => Some(BuiltinChain::Forward),
            "OUTPUT" => Some(BuiltinChain::Output),
            "POSTROUTING" => Some(BuiltinChain::Postrouting),
            _ => None,
        }
    }

    /// Like [`ChainName::new`], taking a user chain's shared name from
    /// `shared` (an interner) instead of allocating it.
    pub(crate) fn new_shared(name: &str, shared: impl FnOnce() -> Arc<str>) -> ChainName {
        match ChainName::builtin(name) {
            Some(b) => ChainName::Builtin(b),
            None => ChainName::User(shared()),
        }
    }

    /// Whether iptables accepts `name` as a chain name: not empty, not
    /// starting with `-` or `!`, and without whitespace, quotes or
    /// backslashes (which quoting or escapes can smuggle into a token but no
    /// iptables-save line can carry).
    pub fn is_valid(name: &str) -> bool {
        let bad = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\');
        !name.is_empty()
            && !name.starts_with(['-', '!'])
            // Names are nearly always ASCII, checked a byte at a time
            // without decoding characters (each distinct name is checked
            // once, but a 10k-Service dump has 92k of them).
            && if name.is_ascii() {
                !name.bytes().any(|b| bad(char::from(b)))
            } else {
                !name.contains(bad)
            }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        match self {
            ChainName::Builtin(b) => b.as_str(),
            ChainName::User(s) => s,
        }
    }

    /// Whether this is a built-in chain.
    pub fn is_builtin(&self) -> bool {
        matches!(self, ChainName::Builtin(_))
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A built-in chain's policy (user chains have none: `-` in iptables-save).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `ACCEPT`
    Accept,
    /// `DROP`
    Drop,
}

/// Packet and byte counters, as `[packets:bytes]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One chain with its rules.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The chain's name.
    pub name: ChainName,
    /// Policy of a built-in chain; `None` for user chains.
    pub policy: Option<Policy>,
    /// The declaration's counters, if written. Ignored by equality.
    pub counters: Option<Counters>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Where the chain was declared (`:NAME ...` or `-N NAME`); for chains
    /// that only appear in `-A` lines, the first such line. Ignored by equality.
    pub span: Span,
}

/// One rule: the basic matches, the extension matches in written order, and the target.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `-s`, `-d`, `-p`, `-i`, `-o` and `-f`.
    pub basic: BasicMatch,
    /// `-m` extension matches (and the implicit ones that `-p tcp --dport`
    /// loads), in the order written.
    pub matches: Box<[Match]>,
    /// `-j` / `-g`; `None` for a rule without a target (it only counts, or
    /// only runs its matches' side effects such as `-m recent --set`).
    pub target: Option<Target>,
    /// The per-rule counters `-c`/`[p:b]`, if written (rare: boxed, so
    /// that rules without them stay small). Ignored by equality.
    pub counters: Option<Box<Counters>>,
    /// The whole rule in the source. Ignored by equality.
    pub span: Span,
}

/// A value that may be negated with `!`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Neg<T> {
    /// Whether `!` was given.
    pub negated: bool,
    /// The value.
    pub value: T,
}

impl<T> Neg<T> {
    /// A non-negated value.
    pub fn pos(value: T) -> Neg<T> {
        Neg {
            negated: false,
            value,
        }
    }

    /// Applies the negation to the result of testing the value.
    pub fn eval(&self, matched: bool) -> bool {
        matched != self.negated
    }
}

/// The matches every rule has without `-m`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicMatch {
    /// `-s` / `--source`.
    pub source: Option<Neg<IpNet>>,
    /// `-d` / `--destination`.
    pub destination: Option<Neg<IpNet>>,
    /// `-p` / `--protocol`.
    pub protocol: Option<Neg<Protocol>>,
    /// `-i` / `--in-interface` (a trailing `+` is a wildcard). Boxed, as
    /// is `-o`: few rules name an interface, and inline the two slots were
    /// a fifth of every rule.
    pub in_interface: Option<Box<Neg<Interface>>>,
    /// `-o` / `--out-interface`.
    pub out_interface: Option<Box<Neg<Interface>>>,
    /// `-f` / `--fragment` (never matches a first packet unless negated).
    pub fragment: Option<Neg<()>>,
}

/// An interface name as `-i`/`-o` take it: 1 to 15 bytes (the kernel's
/// `IFNAMSIZ` less the terminating NUL), a trailing `+` being a wildcard.
/// Stored inline: one allocation per named interface, not two.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interface {
    len: u8,
    bytes: [u8; Interface::MAX_LEN],
}

impl Interface {
    /// The longest name the kernel accepts.
    pub const MAX_LEN: usize = 15;

    /// `name` as an interface name, if it is 1 to 15 bytes without `/` or a space.
    pub fn new(name: &str) -> Option<Interface> {
        if name.is_empty() || name.len() > Interface::MAX_LEN || name.contains(['/', ' ']) {
            return None;
        }
        let mut bytes = [0; Interface::MAX_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(Interface {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        // Only ever built from a whole `&str`, so the bytes are UTF-8; the
        // fallback cannot be reached.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::ops::Deref for Interface {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Interface {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Interface {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A layer-4 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
    /// `sctp`
    Sctp,
    /// `icmp`
    Icmp,
    /// `all` (or `0`)
    All,
    /// Any other protocol by number.
    Number(u8),
}

impl Protocol {
    /// Parses a protocol name or number as iptables accepts it.
    pub fn from_name(name: &str) -> Option<Protocol> {
        Some(match name.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "sctp" | "132" => Protocol::Sctp,
            "icmp" | "1" => Protocol::Icmp,
            "all" | "0" => Protocol::All,
            other => Protocol::Number(other.parse().ok()?),
        })
    }

    /// The name as iptables-save prints it.
    pub fn as_str(self) -> String {
        match self {
            Protocol::Tcp => "tcp".into(),
            Protocol::Udp => "udp".into(),
            Protocol::Sctp => "sctp".into(),
            Protocol::Icmp => "icmp".into(),
            Protocol::All => "all".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// An extension match (`-m NAME --option ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `-m tcp`, `-m udp` or `-m sctp` with optional `--sport`/`--dport`.
    Ports {
        /// Which protocol module.
        protocol: Protocol,
        /// `--sport` / `--source-port`.
        sport: Option<Neg<PortRange>>,
        /// `--dport` / `--destination-port`.
        dport: Option<Neg<PortRange>>,
    },
    /// `-m multiport`. The lists are boxed, as are the other rare
    /// variants' big fields: every match of a dump is as large as the
    /// largest variant, and a 10k-Service dump holds 230k matches, almost
    /// all comments, statistics and ports.
    Multiport {
        /// `--sports` / `--source-ports`.
        sports: Option<Box<Neg<Vec<PortRange>>>>,
        /// `--dports` / `--destination-ports`.
        dports: Option<Box<Neg<Vec<PortRange>>>>,
        /// `--ports` (either direction).
        ports: Option<Box<Neg<Vec<PortRange>>>>,
    },
    /// `-m comment --comment TEXT` (shared: kube-proxy repeats each
    /// service's comment on several rules, and the parser stores it once).
    Comment(Arc<str>),
    /// `-m statistic`.
    Statistic(Neg<Statistic>),
    /// `-m addrtype`.
    AddrType {
        /// `--src-type`.
        src_type: Option<Box<Neg<Vec<AddrType>>>>,
        /// `--dst-type`.
        dst_type: Option<Box<Neg<Vec<AddrType>>>>,
        /// `limit-iface-in` / `limit-iface-out`, the option's name without
        /// `--` (kept for printing only).
        limit_iface: Option<&'static str>,
    },
    /// `-m conntrack --ctstate ...` or the older `-m state --state ...`.
    Conntrack {
        /// Which module was named (for printing).
        module: CtModule,
        /// The states.
        states: Neg<Vec<CtState>>,
    },
    /// `-m mark --mark VALUE[/MASK]`.
    Mark(Neg<MarkMatch>),
    /// `-m recent` (boxed: rare, and four times a comment's size).
    Recent(Box<Recent>),
    /// `-m limit` (a first packet is always within the burst).
    Limit {
        /// `--limit`, as written.
        rate: Option<String>,
        /// `--limit-burst`.
        burst: Option<u32>,
    },
    /// `-m nfacct --nfacct-name NAME` (kube-proxy v1.29+ counts dropped
    /// conntrack-INVALID packets and accepted localhost node-port packets
    /// with it). It has no condition: it only adds the packet to the named
    /// accounting object, so it always matches.
    Nfacct {
        /// The accounting object's name.
        name: String,
    },
    /// A match module the parser does not model (lax mode only). Never matches.
    Unknown {
        /// The module name after `-m`.
        module: Box<str>,
        /// Its arguments, as written.
        args: Box<[String]>,
    },
}

/// Which module spelled a conntrack-state match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtModule {
    /// `-m conntrack --ctstate`
    Conntrack,
    /// `-m state --state`
    State,
}

/// A conntrack state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtState {
    /// `NEW`
    New,
    /// `ESTABLISHED`
    Established,
    /// `RELATED`
    Related,
    /// `INVALID`
    Invalid,
    /// `UNTRACKED`
    Untracked,
    /// `SNAT`
    Snat,
    /// `DNAT`
    Dnat,
}

impl CtState {
    /// Parses a state name.
    pub fn from_name(name: &str) -> Option<CtState> {
        Some(match name {
            "NEW" => CtState::New,
            "ESTABLISHED" => CtState::Established,
            "RELATED" => CtState::Related,
            "INVALID" => CtState::Invalid,
            "UNTRACKED" => CtState::Untracked,
            "SNAT" => CtState::Snat,
            "DNAT" => CtState::Dnat,
            _ => return None,
        })
    }

    /// The name as iptables prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
            CtState::Snat => "SNAT",
            CtState::Dnat => "DNAT",
        }
    }
}

/// An address type for `-m addrtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddrType {
    /// `UNSPEC`
    Unspec,
    /// `UNICAST`
    Unicast,
    /// `LOCAL`
    Local,
    /// `BROADCAST`
    Broadcast,
    /// `ANYCAST`
    Anycast,
    /// `MULTICAST`
    Multicast,
    /// `BLACKHOLE`
    Blackhole,
    /// `UNREACHABLE`
    Unreachable,
    /// `PROHIBIT`
    Prohibit,
    /// `THROW`
    Throw,
    /// `NAT`
    Nat,
    /// `XRESOLVE`
    Xresolve,
}

impl AddrType {
    /// Parses an address type name.
    pub fn from_name(name: &str) -> Option<AddrType> {
        Some(match name {
            "UNSPEC" => AddrType::Unspec,
            "UNICAST" => AddrType::Unicast,
            "LOCAL" => AddrType::Local,
            "BROADCAST" => AddrType::Broadcast,
            "ANYCAST" => AddrType::Anycast,
            "MULTICAST" => AddrType::Multicast,
            "BLACKHOLE" => AddrType::Blackhole,
            "UNREACHABLE" => AddrType::Unreachable,
            "PROHIBIT" => AddrType::Prohibit,
            "THROW" => AddrType::Throw,
            "NAT" => AddrType::Nat,
            "XRESOLVE" => AddrType::Xresolve,
            _ => return None,
        })
    }

    /// The name as iptables prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Unspec => "UNSPEC",
            AddrType::Unicast => "UNICAST",
            AddrType::Local => "LOCAL",
            AddrType::Broadcast => "BROADCAST",
            AddrType::Anycast => "ANYCAST",
            AddrType::Multicast => "MULTICAST",
            AddrType::Blackhole => "BLACKHOLE",
            AddrType::Unreachable => "UNREACHABLE",
            AddrType::Prohibit => "PROHIBIT",
            AddrType::Throw => "THROW",
            AddrType::Nat => "NAT",
            AddrType::Xresolve => "XRESOLVE",
        }
    }
}

/// `-m statistic` modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statistic {
    /// `--mode random --probability P`.
    Random(Probability),
    /// `--mode nth --every N [--packet P]`.
    Nth {
        /// `--every`.
        every: u32,
        /// `--packet` (default 0).
        packet: u32,
    },
}

/// `-m mark --mark VALUE/MASK` (mask defaults to all ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkMatch {
    /// The value compared after masking.
    pub value: u32,
    /// The mask.
    pub mask: u32,
}

impl MarkMatch {
    /// Whether a packet mark matches (before negation).
    pub fn matches(self, mark: u32) -> bool {
        mark & self.mask == self.value
    }
}

/// What `-m recent` does with its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecentAction {
    /// `--set`: add the address; always matches.
    Set,
    /// `--rcheck`: match if the address is in the list.
    Rcheck,
    /// `--update`: like rcheck, and refresh the timestamp.
    Update,
    /// `--remove`: match if present, and remove it.
    Remove,
}

/// `-m recent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    /// Whether the action was negated.
    pub negated: bool,
    /// The action.
    pub action: RecentAction,
    /// `--name` (default `DEFAULT`).
    pub name: String,
    /// `--seconds`.
    pub seconds: Option<u32>,
    /// `--reap`.
    pub reap: bool,
    /// `--hitcount`.
    pub hitcount: Option<u32>,
    /// `--rttl`.
    pub rttl: bool,
    /// `--mask`; `None` is the whole address (255.255.255.255, or
    /// ffff:...:ffff in an IPv6 rule set), which iptables-save prints.
    pub mask: Option<IpAddr>,
    /// Which address is remembered: `--rsource` (default) or `--rdest`.
    pub side: RecentSide,
}

/// Which address `-m recent` keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecentSide {
    /// `--rsource`
    Source,
    /// `--rdest`
    Dest,
}

/// A rule's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-j ACCEPT`
    Accept,
    /// `-j DROP`
    Drop,
    /// `-j REJECT [--reject-with TYPE]`
    Reject {
        /// `--reject-with`, as written.
        with: Option<String>,
    },
    /// `-j RETURN`
    Return,
    /// `-j CHAIN`
    Jump(ChainName),
    /// `-g CHAIN`
    Goto(ChainName),
    /// `-j DNAT --to-destination ADDR[-ADDR][:PORT[-PORT]]`
    Dnat(NatRange),
    /// `-j SNAT --to-source ...`
    /// The rare targets' big fields are boxed or kept as boxed strings:
    /// every rule is as large as the largest target, and DNAT's range
    /// (40 bytes, one per endpoint) is the size to stay within.
    Snat {
        /// `--to-source`.
        to: Box<NatRange>,
        /// `--random` / `--random-fully` / `--persistent` flags, as written.
        flags: Vec<String>,
    },
    /// `-j MASQUERADE`
    Masquerade {
        /// `--to-ports`.
        to_ports: Option<PortRange>,
        /// `--random-fully`.
        random_fully: bool,
        /// `--random`.
        random: bool,
    },
    /// `-j REDIRECT [--to-ports P]`: DNAT to the node's own address.
    Redirect {
        /// `--to-ports`.
        to_ports: Option<PortRange>,
    },
    /// `-j MARK` in any spelling, reduced to `mark = (mark & !mask) ^ value`.
    Mark(MarkOp),
    /// `-j LOG` (non-terminating).
    Log {
        /// `--log-prefix`.
        prefix: Option<Box<str>>,
        /// `--log-level`.
        level: Option<Box<str>>,
    },
    /// A target the parser does not model (lax mode only). Treated as non-terminating.
    Unknown {
        /// The target name.
        name: Box<str>,
        /// Its arguments, as written.
        args: Box<[String]>,
    },
}

/// The MARK target's effect: `mark = (mark & !mask) ^ value` (iptables' `--set-xmark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkOp {
    /// Bits XORed in after clearing.
    pub value: u32,
    /// Bits cleared first.
    pub mask: u32,
}

impl MarkOp {
    /// Applies the operation to a packet mark.
    pub fn apply(self, mark: u32) -> u32 {
        (mark & !self.mask) ^ self.value
    }
}

/// A NAT destination: an address range and an optional port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatRange {
    /// First address (the one the tracer uses).
    pub first: IpAddr,
    /// Last address of a range (`first` when there is none).
    pub last: IpAddr,
    /// Ports, if given.
    pub ports: Option<PortRange>,
}

impl RuleSet {
    /// The table with this name, if present.
    pub fn table(&self, name: TableName) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The IP family of the rule set: that of its first address
    /// (`iptables-save` and `ip6tables-save` text differ only in their
    /// addresses; the parser refuses a mix). `None` when no rule names an
    /// address.
    pub fn family(&self) -> Option<Family> {
        self.tables
            .iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
            .find_map(Rule::family)
    }
}

/// An IP family: iptables holds IPv4 rules, ip6tables IPv6 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 (`iptables`).
    Ipv4,
    /// IPv6 (`ip6tables`).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The loopback address (127.0.0.1, ::1).
    pub fn localhost(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    }

    /// The all-ones mask of the family's addresses.
    pub fn full_mask(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::BROADCAST),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        }
    }

    /// Kubernetes' spelling: `IPv4`, `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Chain name → position in [`Table::chains`] of its first declaration: the
/// one lookup structure for chains by name (the parser, the tracer and the
/// invariants all resolve jumps through it).
///
/// Keys borrow from the table when it is built with [`Table::chain_index`],
/// and share the table's names when the table is still being built (the
/// parser). Only ever looked up, never iterated, so hash order cannot leak
/// into any output.
#[derive(Debug, Clone, Default)]
pub struct ChainIndex<'a> {
    by_name: HashMap<IndexKey<'a>, usize, FastHash>,
}

/// A chain name as [`ChainIndex`] holds it: borrowed from a finished
/// table, shared with one being built, or (rarely) owned.
#[derive(Debug, Clone)]
enum IndexKey<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
    Owned(String),
}

impl IndexKey<'_> {
    fn as_str(&self) -> &str {
        match self {
            IndexKey::Borrowed(s) => s,
            IndexKey::Shared(s) => s,
            IndexKey::Owned(s) => s,
        }
    }
}

// Hash and equality are the text's, so that lookups by `&str` work.
impl Borrow<str> for IndexKey<'_> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
impl Hash for IndexKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}
impl PartialEq for IndexKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for IndexKey<'_> {}

impl<'a> ChainIndex<'a> {
    /// An index of `table`'s chains, borrowing their names.
    pub fn new(table: &'a Table) -> ChainIndex<'a> {
        let mut index = ChainIndex {
            by_name: HashMap::with_capacity_and_hasher(table.chains.len(), FastHash::default()),
        };
        for (i, c) in table.chains.iter().enumerate() {
            index.insert(IndexKey::Borrowed(c.name.as_str()), i);
        }
        index
    }

    /// Where the first chain called `name` is.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Whether a chain called `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Records that chain `i` is called `name`, unless an earlier chain
    /// already is (a duplicate declaration keeps pointing at the first).
    pub fn declare(&mut self, name: impl Into<Cow<'a, str>>, i: usize) {
        let key = match name.into() {
            Cow::Borrowed(s) => IndexKey::Borrowed(s),
            Cow::Owned(s) => IndexKey::Owned(s),
        };
        self.insert(key, i);
    }

    /// Like [`ChainIndex::declare`], sharing the chain's own name; false
    /// when an earlier chain already had it.
    pub(crate) fn declare_name(&mut self, name: &ChainName, i: usize) -> bool {
        let key = match name {
            ChainName::Builtin(b) => IndexKey::Borrowed(b.as_str()),
            ChainName::User(s) => IndexKey::Shared(Arc::clone(s)),
        };
        self.insert(key, i)
    }

    /// Inserts unless present; whether it was inserted.
    fn insert(&mut self, key: IndexKey<'a>, i: usize) -> bool {
        match self.by_name.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                true
            }
        }
    }

    /// Forgets everything and indexes `table` again, sharing its names
    /// (after chains were removed or renamed).
    pub fn rebuild(&mut self, table: &Table) {
        self.by_name.clear();
        for (i, c) in table.chains.iter().enumerate() {
            self.declare_name(&c.name, i);
        }
    }

    /// The chain called `name` in `table`, which this index was built from.
    pub fn chain<'t>(&self, table: &'t Table, name: &str) -> Option<&'t Chain> {
        self.get(name).and_then(|i| table.chains.get(i))
    }
}

/// Chain name → position of the first chain so called, holding only the
/// positions (four bytes a slot): the names are the chains' own, passed to
/// every call. A 10k-Service dump's nat table has 90k chains, and a map
/// that held a key per chain was several megabytes of `lint`'s peak; this
/// one is under one. The caller keeps it in step with the chain list it
/// passes (rebuild after chains move).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    slots: hashbrown::HashTable<u32>,
}

impl NameIndex {
    /// An index of `chains`, each name at its first chain.
    pub fn new(chains: &[Chain]) -> NameIndex {
        let mut index = NameIndex::with_capacity(chains.len());
        for i in 0..chains.len() {
            index.insert(chains, i);
        }
        index
    }

    /// An empty index with room for `n` names, to be filled by
    /// [`NameIndex::insert`] (whose answers tell the duplicates apart).
    pub fn with_capacity(n: usize) -> NameIndex {
        NameIndex {
            slots: hashbrown::HashTable::with_capacity(n),
        }
    }

    fn hash(name: &str) -> u64 {
        let mut h = FxHasher::default();
        name.hash(&mut h);
        h.finish()
    }

    /// Where the first chain of `chains` called `name` is.
    pub fn get(&self, chains: &[Chain], name: &str) -> Option<usize> {
        self.slots
            .find(NameIndex::hash(name), |&i| {
                chains
                    .get(i as usize)
                    .is_some_and(|c| c.name.as_str() == name)
            })
            .map(|&i| i as usize)
    }

    /// Records chain `i` of `chains` under its name, unless an earlier
    /// chain has that name; whether it was recorded.
    pub fn insert(&mut self, chains: &[Chain], i: usize) -> bool {
        let (Some(chain), Ok(at)) = (chains.get(i), u32::try_from(i)) else {
            return false;
        };
        let name = chain.name.as_str();
        let hash = NameIndex::hash(name);
        if self
            .slots
            .find(hash, |&j| {
                chains
                    .get(j as usize)
                    .is_some_and(|c| c.name.as_str() == name)
            })
            .is_some()
        {
            return false;
        }
        self.slots.insert_unique(hash, at, |&j| {
            chains
                .get(j as usize)
                .map_or(0, |c| NameIndex::hash(c.name.as_str()))
        });
        true
    }

    /// Forgets everything and indexes `chains` again.
    pub fn rebuild(&mut self, chains: &[Chain]) {
        self.slots.clear();
        for i in 0..chains.len() {
            self.insert(chains, i);
        }
    }
}

/// A fast, deterministic hasher for chain names and other short strings
/// (the multiply-rotate scheme of rustc's FxHash). SipHash's resistance to
/// chosen collisions buys nothing for maps that are only looked up, never
/// iterated, over names from one rule set; it cost ~8% of `lint`.
pub type FastHash = BuildHasherDefault<FxHasher>;

/// The hasher of [`FastHash`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FxHasher::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiplications leave the entropy in the high bits, and the
        // map picks buckets by the low ones: rotated, names that differ in
        // one character do not collide (as rustc-hash 2 does).
        self.hash.rotate_left(26)
    }
}

impl Table {
    /// An index of this table's chains by name, for many lookups (the
    /// lookups below search linearly).
    pub fn chain_index(&self) -> ChainIndex<'_> {
        ChainIndex::new(self)
    }

    /// The chain with this name, if declared.
    pub fn chain(&self, name: &ChainName) -> Option<&Chain> {
        self.chains.iter().find(|c| &c.name == name)
    }

    /// The chain with this name, by string.
    pub fn chain_by_name(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name.as_str() == name)
    }
}

impl Rule {
    /// The `-m comment` text, if any.
    pub fn comment(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match m {
            Match::Comment(c) => Some(&**c),
            _ => None,
        })
    }

    /// The chain this rule jumps or goes to, if any.
    pub fn jump_target(&self) -> Option<&ChainName> {
        match &self.target {
            Some(Target::Jump(c)) | Some(Target::Goto(c)) => Some(c),
            _ => None,
        }
    }

    /// The random probability of this rule's `-m statistic`, if any.
    pub fn probability(&self) -> Option<&Probability> {
        self.matches.iter().find_map(|m| match m {
            Match::Statistic(Neg {
                negated: false,
                value: Statistic::Random(p),
            }) => Some(p),
            _ => None,
        })
    }

    /// The family of the first address this rule names, if any.
    pub fn family(&self) -> Option<Family> {
        let b = &self.basic;
        let from_basic = [&b.source, &b.destination]
            .into_iter()
            .flatten()
            .map(|n| Family::of(n.value.addr()));
        let from_matches = self.matches.iter().filter_map(|m| match m {
            Match::Recent(r) => r.mask.map(Family::of),
            _ => None,
        });
        let from_target = self.target.as_ref().and_then(|t| match t {
            Target::Dnat(to) => Some(Family::of(to.first)),
            Target::Snat { to, .. } => Some(Family::of(to.first)),
            _ => None,
        });
        from_basic.chain(from_matches).chain(from_target).next()
    }
}

// Equality is semantic: where a thing was written and what its counters said
// do not change what the rule set does, and round-trip tests rely on that.
impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.chains == other.chains && self.committed == other.committed
    }
}
impl Eq for Table {}

impl PartialEq for Chain {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.policy == other.policy && self.rules == other.rules
    }
}
impl Eq for Chain {}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.basic == other.basic && self.matches == other.matches && self.target == other.target
    }
}
impl Eq for Rule {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The model's footprint is per rule (a 10k-Service dump has 300k
    /// rules): these bounds catch a field that makes every rule bigger.
    /// Bounds, not exact sizes, so that shrinking a type never fails here.
    #[test]
    fn model_types_stay_small() {
        assert_eq!(size_of::<Interface>(), 16);
        assert_eq!(size_of::<ChainName>(), 16);
        assert!(size_of::<BasicMatch>() <= 64, "{}", size_of::<BasicMatch>());
        assert!(
            size_of::<Option<Target>>() <= 48,
            "{}",
            size_of::<Option<Target>>()
        );
        assert!(size_of::<Match>() <= 40, "{}", size_of::<Match>());
        // Matches are a boxed slice, not a vector: 8 bytes less per rule.
        assert!(size_of::<Rule>() <= 144, "{}", size_of::<Rule>());
        assert!(size_of::<Chain>() <= 80, "{}", size_of::<Chain>());
    }

    #[test]
    fn chain_names_are_checked_alike_in_ascii_and_not() {
        // The ASCII path checks bytes; the other decodes characters. Every
        // ASCII character, alone and beside a non-ASCII one (which takes
        // the other path), gets the same verdict.
        let bad = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\');
        for c in (0u8..128).map(char::from) {
            let ascii = format!("KUBE{c}X");
            let other = format!("KUBE{c}X\u{e9}");
            assert_eq!(ChainName::is_valid(&ascii), !bad(c), "{ascii:?}");
            assert_eq!(ChainName::is_valid(&other), !bad(c), "{other:?}");
        }
        for name in [
            "",
            "-X",
            "!X",
            "KUBE\u{a0}X",
            "KUBE\u{2003}X",
            "KUBE\u{85}X",
        ] {
            assert!(!ChainName::is_valid(name), "{name:?}");
        }
        assert!(ChainName::is_valid("KUBE-SVC-\u{e9}"));
    }

    #[test]
    fn interface_names_are_checked_and_kept_inline() {
        let eth = Interface::new("eth0").expect("valid");
        assert_eq!(eth.as_str(), "eth0");
        assert_eq!(&*eth, "eth0");
        assert_eq!(eth.to_string(), "eth0");
        let longest = "a".repeat(Interface::MAX_LEN);
        assert_eq!(
            Interface::new(&longest).expect("15 bytes fit").as_str(),
            longest
        );
        for bad in ["", "a/b", "a b", &"a".repeat(Interface::MAX_LEN + 1)] {
            assert!(Interface::new(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn chain_index_finds_the_first_declaration_by_text() {
        let rules = crate::parse_str(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n:KUBE-A - [0:0]\nCOMMIT\n",
        )
        .expect("valid dump");
        let table = &rules.tables[0];
        let index = table.chain_index();
        assert_eq!(index.get("PREROUTING"), Some(0));
        assert_eq!(index.get("KUBE-A"), Some(1));
        assert_eq!(index.get("KUBE-B"), Some(2));
        assert_eq!(index.get("KUBE-C"), None);
        let mut rebuilt = ChainIndex::default();
        rebuilt.rebuild(table);
        assert_eq!(rebuilt.get("KUBE-A"), Some(1));
        rebuilt.declare(String::from("KUBE-C"), 7);
        assert_eq!(rebuilt.get("KUBE-C"), Some(7));
    }

    #[test]
    fn the_parser_stores_each_chain_name_once() {
        let rules = crate::parse_str(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-X - [0:0]\n\
             -A PREROUTING -j KUBE-X\n-A PREROUTING -j KUBE-X\nCOMMIT\n",
        )
        .expect("valid dump");
        let chains = &rules.tables[0].chains;
        let ChainName::User(declared) = &chains[1].name else {
            panic!("KUBE-X is a user chain");
        };
        for rule in &chains[0].rules {
            let Some(ChainName::User(target)) = rule.jump_target() else {
                panic!("a jump to KUBE-X");
            };
            assert!(Arc::ptr_eq(declared, target));
        }
    }
}
