//! Typed rules, printed in iptables-save's spelling.
//!
//! kube-proxy hands iptables-restore its own argument order
//! (`-m comment --comment X -m tcp -p tcp -d IP --dport N`), but what the
//! recordings show is iptables-save's: the basic matches first (`-s`, `-d`,
//! `-p`), then the extension matches in the order they were given, each with
//! its options in the module's canonical order, then the target. A [`Rule`]
//! keeps the parts apart so that [`Rule::fmt`](std::fmt::Display) can emit
//! exactly that.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::rc::Rc;

use ipnet::IpNet;
use kpconform_iptables::model::Family;

/// A layer-4 protocol a Service port can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Protocol {
    /// `TCP`
    Tcp,
    /// `UDP`
    Udp,
    /// `SCTP`
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, `UDP`, `SCTP`).
    pub(crate) fn from_k8s(name: &str) -> Option<Protocol> {
        match name {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lowercase spelling iptables and the chain-name hash use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// An extension match (`-m ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// `-m comment --comment "TEXT"`.
    Comment(String),
    /// `-m addrtype --src-type LOCAL`.
    SrcLocal,
    /// `-m addrtype --dst-type LOCAL`.
    DstLocal,
    /// `-m tcp|udp|sctp [--dport N]`.
    Port(Protocol, Option<u16>),
    /// `-m statistic --mode random --probability P` (P already in save
    /// spelling; shared, as every chain of n endpoints uses the same ones).
    Random(Rc<str>),
    /// `-m recent --rcheck --seconds N --reap --name CHAIN` (the save tool
    /// adds the family's full `--mask` and `--rsource`).
    RecentCheck {
        name: String,
        seconds: u32,
        family: Family,
    },
    /// `-m recent --set --name CHAIN` (plus the family's `--mask`, `--rsource`).
    RecentSet { name: String, family: Family },
    /// `-m mark [!] --mark MARK/MARK`.
    Mark { negated: bool, mark: u32 },
    /// `-m conntrack [!] --ctstate STATES`.
    CtState { negated: bool, states: &'static str },
}

/// A rule's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `-j CHAIN`.
    Jump(String),
    /// `-j ACCEPT`.
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j RETURN`.
    Return,
    /// kube-proxy's plain `REJECT`, which the save tools print with the
    /// family's default: `--reject-with icmp-port-unreachable` (IPv4) or
    /// `icmp6-port-unreachable` (IPv6).
    Reject(Family),
    /// `-j DNAT --to-destination IP:PORT` (`[IP]:PORT` for IPv6).
    Dnat(SocketAddr),
    /// `-j MARK --set-xmark VALUE/MASK` (`--or-mark M` is `M/M`, `--xor-mark M` is `M/0`).
    SetXmark { value: u32, mask: u32 },
    /// `-j MASQUERADE --random-fully`.
    MasqueradeRandomFully,
}

/// One rule of a chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rule {
    source: Option<(bool, IpNet)>,
    destination: Option<(bool, IpNet)>,
    protocol: Option<Protocol>,
    matches: Vec<Match>,
    target: Option<Target>,
}

impl Rule {
    /// An empty rule (matches everything, no target).
    pub(crate) fn new() -> Rule {
        Rule::default()
    }

    /// `-s NET`.
    pub(crate) fn src(mut self, net: impl Into<IpNet>) -> Rule {
        self.source = Some((false, net.into()));
        self
    }

    /// `! -s NET`.
    pub(crate) fn not_src(mut self, net: impl Into<IpNet>) -> Rule {
        self.source = Some((true, net.into()));
        self
    }

    /// `-d NET`.
    pub(crate) fn dst(mut self, net: impl Into<IpNet>) -> Rule {
        self.destination = Some((false, net.into()));
        self
    }

    /// `! -d NET`.
    pub(crate) fn not_dst(mut self, net: impl Into<IpNet>) -> Rule {
        self.destination = Some((true, net.into()));
        self
    }

    /// `-p PROTO ... -m PROTO --dport PORT`.
    pub(crate) fn dport(mut self, protocol: Protocol, port: u16) -> Rule {
        self.protocol = Some(protocol);
        self.matches.push(Match::Port(protocol, Some(port)));
        self
    }

    /// `-p PROTO ... -m PROTO` without ports (kube-proxy's DNAT rules).
    pub(crate) fn proto_module(mut self, protocol: Protocol) -> Rule {
        self.protocol = Some(protocol);
        self.matches.push(Match::Port(protocol, None));
        self
    }

    /// `-m comment --comment TEXT`.
    pub(crate) fn comment(mut self, text: impl Into<String>) -> Rule {
        self.matches.push(Match::Comment(text.into()));
        self
    }

    /// Any other extension match, appended in order.
    pub(crate) fn with(mut self, m: Match) -> Rule {
        self.matches.push(m);
        self
    }

    /// `-j CHAIN`.
    pub(crate) fn jump(self, chain: impl Into<String>) -> Rule {
        self.target(Target::Jump(chain.into()))
    }

    /// Sets the target.
    pub(crate) fn target(mut self, target: Target) -> Rule {
        self.target = Some(target);
        self
    }

    /// The text of the first `-m comment`, if any (the key the shared chains are sorted by).
    pub(crate) fn comment_text(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match m {
            Match::Comment(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

/// Text appended to a `String` without the formatting machinery: a dump
/// has hundreds of thousands of rules, and `write!` per part (with its
/// padding checks and dynamic dispatch) was a fifth of the generator's time.
/// Only the rare parts (IPv6 addresses, hexadecimal marks) go through `fmt`.
mod text {
    use std::fmt::Write as _;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use ipnet::IpNet;

    /// `n` in decimal.
    pub(super) fn number(out: &mut String, n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            // n % 10 < 10, so the cast cannot truncate.
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            out.push(char::from(d));
        }
    }

    fn ipv4(out: &mut String, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            number(out, u32::from(octet));
        }
    }

    /// An address as the save tools print it (IPv6 canonical, via std).
    pub(super) fn ip(out: &mut String, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => ipv4(out, v4),
            // Writing into a String cannot fail.
            IpAddr::V6(v6) => drop(write!(out, "{v6}")),
        }
    }

    /// `ADDR/PREFIX`.
    pub(super) fn net(out: &mut String, net: IpNet) {
        ip(out, net.addr());
        out.push('/');
        number(out, u32::from(net.prefix_len()));
    }

    /// `IP:PORT`, `[IP]:PORT` for IPv6.
    pub(super) fn socket(out: &mut String, to: SocketAddr) {
        match to {
            SocketAddr::V4(v4) => {
                ipv4(out, *v4.ip());
                out.push(':');
                number(out, u32::from(v4.port()));
            }
            // Writing into a String cannot fail.
            SocketAddr::V6(v6) => drop(write!(out, "{v6}")),
        }
    }

    /// iptables-save quotes every comment and escapes `"` and `\` inside it.
    pub(super) fn quoted(out: &mut String, text: &str) {
        out.push('"');
        // Copied in runs between the characters that need a backslash.
        let mut rest = text;
        while let Some(i) = rest.find(['"', '\\']) {
            out.push_str(&rest[..i]);
            out.push('\\');
            out.push_str(&rest[i..i + 1]);
            rest = &rest[i + 1..];
        }
        out.push_str(rest);
        out.push('"');
    }
}

impl Match {
    /// Appends the match as iptables-save prints it.
    fn write_to(&self, out: &mut String) {
        match self {
            Match::Comment(comment) => {
                out.push_str("-m comment --comment ");
                text::quoted(out, comment);
            }
            Match::SrcLocal => out.push_str("-m addrtype --src-type LOCAL"),
            Match::DstLocal => out.push_str("-m addrtype --dst-type LOCAL"),
            Match::Port(p, port) => {
                out.push_str("-m ");
                out.push_str(p.as_str());
                if let Some(port) = port {
                    out.push_str(" --dport ");
                    text::number(out, u32::from(*port));
                }
            }
            Match::Random(p) => {
                out.push_str("-m statistic --mode random --probability ");
                out.push_str(p);
            }
            Match::RecentCheck {
                name,
                seconds,
                family,
            } => {
                out.push_str("-m recent --rcheck --seconds ");
                text::number(out, *seconds);
                out.push_str(" --reap --name ");
                out.push_str(name);
                out.push_str(" --mask ");
                text::ip(out, family.full_mask());
                out.push_str(" --rsource");
            }
            Match::RecentSet { name, family } => {
                out.push_str("-m recent --set --name ");
                out.push_str(name);
                out.push_str(" --mask ");
                text::ip(out, family.full_mask());
                out.push_str(" --rsource");
            }
            Match::Mark { negated, mark } => {
                let not = if *negated { "! " } else { "" };
                // Writing into a String cannot fail.
                let _ = write!(out, "-m mark {not}--mark {mark:#x}/{mark:#x}");
            }
            Match::CtState { negated, states } => {
                out.push_str("-m conntrack ");
                if *negated {
                    out.push_str("! ");
                }
                out.push_str("--ctstate ");
                out.push_str(states);
            }
        }
    }
}

impl Target {
    /// Appends the target as iptables-save prints it.
    fn write_to(&self, out: &mut String) {
        match self {
            Target::Jump(chain) => {
                out.push_str("-j ");
                out.push_str(chain);
            }
            Target::Accept => out.push_str("-j ACCEPT"),
            Target::Drop => out.push_str("-j DROP"),
            Target::Return => out.push_str("-j RETURN"),
            Target::Reject(Family::Ipv4) => {
                out.push_str("-j REJECT --reject-with icmp-port-unreachable")
            }
            Target::Reject(Family::Ipv6) => {
                out.push_str("-j REJECT --reject-with icmp6-port-unreachable")
            }
            Target::Dnat(to) => {
                out.push_str("-j DNAT --to-destination ");
                text::socket(out, *to);
            }
            Target::SetXmark { value, mask } => {
                // Writing into a String cannot fail.
                let _ = write!(out, "-j MARK --set-xmark {value:#x}/{mask:#x}");
            }
            Target::MasqueradeRandomFully => out.push_str("-j MASQUERADE --random-fully"),
        }
    }
}

impl Rule {
    /// Appends the rule's arguments after `-A CHAIN `, without a leading
    /// space or a newline: what [`Rule`]'s `Display` prints.
    pub(crate) fn write_to(&self, out: &mut String) {
        let start = out.len();
        let sep = |out: &mut String| {
            if out.len() > start {
                out.push(' ');
            }
        };
        for (flag, part) in [("-s ", self.source), ("-d ", self.destination)] {
            if let Some((negated, net)) = part {
                sep(out);
                if negated {
                    out.push_str("! ");
                }
                out.push_str(flag);
                text::net(out, net);
            }
        }
        if let Some(p) = self.protocol {
            sep(out);
            out.push_str("-p ");
            out.push_str(p.as_str());
        }
        for m in &self.matches {
            sep(out);
            m.write_to(out);
        }
        if let Some(t) = &self.target {
            sep(out);
            t.write_to(out);
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Display for Rule {
    /// The rule's arguments after `-A CHAIN`, without a leading space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(128);
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;
    use std::net::Ipv4Addr;

    fn host(a: [u8; 4]) -> Ipv4Net {
        Ipv4Net::from(Ipv4Addr::from(a))
    }

    #[test]
    fn basic_matches_come_first_in_save_order() {
        // kube-proxy writes comment, -m tcp -p tcp, -d, --dport; the save
        // spelling (clusterip-1-endpoint) puts -d and -p first.
        let r = Rule::new()
            .comment("default/api:http cluster IP")
            .dport(Protocol::Tcp, 80)
            .dst(host([10, 96, 0, 50]))
            .jump("KUBE-SVC-KKDGWRPDK6Z5NCHS");
        assert_eq!(
            r.to_string(),
            "-d 10.96.0.50/32 -p tcp -m comment --comment \"default/api:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-KKDGWRPDK6Z5NCHS"
        );
    }

    #[test]
    fn marks_and_negations() {
        let r = Rule::new()
            .with(Match::Mark {
                negated: true,
                mark: 0x4000,
            })
            .target(Target::Return);
        assert_eq!(r.to_string(), "-m mark ! --mark 0x4000/0x4000 -j RETURN");
        let r = Rule::new().target(Target::SetXmark {
            value: 0x20,
            mask: 0,
        });
        assert_eq!(r.to_string(), "-j MARK --set-xmark 0x20/0x0");
        let r = Rule::new()
            .not_src("127.0.0.0/8".parse::<Ipv4Net>().unwrap())
            .dst("127.0.0.0/8".parse::<Ipv4Net>().unwrap())
            .with(Match::CtState {
                negated: true,
                states: "RELATED,ESTABLISHED,DNAT",
            })
            .target(Target::Drop);
        assert_eq!(
            r.to_string(),
            "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        );
    }

    #[test]
    fn recent_and_dnat() {
        let r = Rule::new()
            .comment("default/api:http")
            .with(Match::RecentSet {
                name: "KUBE-SEP-X".into(),
                family: Family::Ipv4,
            })
            .proto_module(Protocol::Sctp)
            .target(Target::Dnat("10.64.0.5:8080".parse().unwrap()));
        assert_eq!(
            r.to_string(),
            "-p sctp -m comment --comment \"default/api:http\" -m recent --set --name KUBE-SEP-X --mask 255.255.255.255 --rsource -m sctp -j DNAT --to-destination 10.64.0.5:8080"
        );
    }

    #[test]
    fn ipv6_spelling() {
        // ipv6-clusterip-session-affinity, ipv6-clusterip-0-endpoints and
        // the IPv6 node-port jump.
        let r = Rule::new()
            .comment("shop/session:http")
            .with(Match::RecentSet {
                name: "KUBE-SEP-X".into(),
                family: Family::Ipv6,
            })
            .proto_module(Protocol::Tcp)
            .target(Target::Dnat("[fd00:10:64:a::5]:8080".parse().unwrap()));
        assert_eq!(
            r.to_string(),
            "-p tcp -m comment --comment \"shop/session:http\" -m recent --set --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -m tcp -j DNAT --to-destination [fd00:10:64:a::5]:8080"
        );
        let r = Rule::new().target(Target::Reject(Family::Ipv6));
        assert_eq!(
            r.to_string(),
            "-j REJECT --reject-with icmp6-port-unreachable"
        );
        let r = Rule::new()
            .not_dst("::1/128".parse::<IpNet>().unwrap())
            .comment("x")
            .with(Match::DstLocal);
        assert_eq!(
            r.to_string(),
            "! -d ::1/128 -m comment --comment \"x\" -m addrtype --dst-type LOCAL"
        );
    }

    #[test]
    fn numbers_and_addresses_print_as_std_prints_them() {
        for n in [0, 7, 10, 99, 100, 65535, 1 << 31, u32::MAX] {
            let mut out = String::new();
            text::number(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for net in [
            "0.0.0.0/0",
            "255.255.255.255/32",
            "10.0.100.9/8",
            "fd00::1/128",
            "::/0",
        ] {
            let net: IpNet = net.parse().unwrap();
            let mut out = String::new();
            text::net(&mut out, net);
            assert_eq!(out, net.to_string());
        }
        for to in ["0.0.0.0:0", "10.64.200.5:65535", "[fd00:10::a]:53"] {
            let to: SocketAddr = to.parse().unwrap();
            let mut out = String::new();
            text::socket(&mut out, to);
            assert_eq!(out, to.to_string());
        }
    }

    #[test]
    fn comments_are_quoted_and_escaped() {
        let r = Rule::new().comment(r#"a "b" \c"#);
        assert_eq!(r.to_string(), r#"-m comment --comment "a \"b\" \\c""#);
        assert_eq!(r.comment_text(), Some(r#"a "b" \c"#));
        assert_eq!(Rule::new().comment_text(), None);
    }
}
