//! Parsers for option values: addresses, ports, marks, NAT ranges.
//!
//! Each returns a message describing what was expected; the caller attaches
//! the token's span.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{NatRange, PortRange};

/// `ADDR`, `ADDR/LEN` or `ADDR/MASK` of either family, masked like iptables
/// does (`a.b.c.d/255.255.0.0`, `fd00::/48`).
pub(crate) fn net(s: &str) -> Result<IpNet, String> {
    let bad = || {
        format!(
            "`{s}` is not an IP address or CIDR (expected e.g. 10.64.0.0/16 or fd00:10:64::/48)"
        )
    };
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(len) if len <= max => len,
            Ok(_) => return Err(bad()),
            Err(_) => {
                let mask: IpAddr = l.parse().map_err(|_| bad())?;
                let bits = match (addr, mask) {
                    (IpAddr::V4(_), IpAddr::V4(m)) => u128::from(u32::from(m)) << 96,
                    (IpAddr::V6(_), IpAddr::V6(m)) => u128::from(m),
                    _ => return Err(format!("`{l}` is a netmask of the other IP family")),
                };
                if bits.leading_ones() + bits.trailing_zeros() != 128 {
                    return Err(format!("`{l}` is not a contiguous netmask"));
                }
                bits.leading_ones() as u8
            }
        },
    };
    IpNet::new(addr, len).map(|n| n.trunc()).map_err(|_| bad())
}

/// A port number.
pub(crate) fn port(s: &str) -> Result<u16, String> {
    s.parse::<u16>().map_err(|_| {
        format!("`{s}` is not a port number (0-65535; service names are not resolved)")
    })
}

/// `N`, `N:M`, `:M` or `N:` (iptables also takes `N-M` in NAT targets).
pub(crate) fn port_range(s: &str) -> Result<PortRange, String> {
    let sep = s.find([':', '-']);
    let range = match sep {
        None => PortRange::single(port(s)?),
        Some(i) => {
            let (a, b) = (&s[..i], &s[i + 1..]);
            let first = if a.is_empty() { 0 } else { port(a)? };
            let last = if b.is_empty() { u16::MAX } else { port(b)? };
            PortRange { first, last }
        }
    };
    if range.first > range.last {
        return Err(format!(
            "port range `{s}` is empty (first port is above the last)"
        ));
    }
    Ok(range)
}

/// A comma-separated list of ports or ranges (multiport, at most 15 entries).
pub(crate) fn port_list(s: &str) -> Result<Vec<PortRange>, String> {
    let list = s
        .split(',')
        .map(port_range)
        .collect::<Result<Vec<_>, _>>()?;
    if list.len() > 15 {
        return Err(format!(
            "multiport takes at most 15 ports, `{s}` has {}",
            list.len()
        ));
    }
    Ok(list)
}

/// A 32-bit number in decimal or `0x` hex (marks).
pub(crate) fn u32_value(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse::<u32>(),
    };
    parsed.map_err(|_| format!("`{s}` is not a 32-bit number (decimal or 0x hex)"))
}

/// `VALUE[/MASK]`, the mask defaulting to all ones.
pub(crate) fn value_mask(s: &str) -> Result<(u32, u32), String> {
    match s.split_once('/') {
        Some((v, m)) => Ok((u32_value(v)?, u32_value(m)?)),
        None => Ok((u32_value(s)?, u32::MAX)),
    }
}

/// `ADDR[-ADDR][:PORT[-PORT]]` for DNAT/SNAT; IPv6 addresses are bracketed
/// when ports follow (`[fd00::1]:8080`, `[fd00::1]-[fd00::9]:80-90`) and
/// may stand bare without them.
pub(crate) fn nat_range(s: &str) -> Result<NatRange, String> {
    let bad = |a: &str| {
        format!(
            "`{a}` is not an IP address (expected ADDR[-ADDR][:PORT[-PORT]], IPv6 as [ADDR]:PORT)"
        )
    };
    let (addrs, ports) = if s.starts_with('[') {
        // Bracketed IPv6: the ports follow the last `]`.
        let close = s.rfind(']').ok_or_else(|| bad(s))?;
        let ports = match &s[close + 1..] {
            "" => None,
            rest => Some(port_range(rest.strip_prefix(':').ok_or_else(|| bad(s))?)?),
        };
        (&s[..=close], ports)
    } else if s.bytes().filter(|&b| b == b':').count() > 1 {
        (s, None) // a bare IPv6 address or range
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(port_range(p)?)),
            None => (s, None),
        }
    };
    let one = |a: &str| {
        let a = a
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(a);
        a.parse::<IpAddr>().map_err(|_| bad(a))
    };
    let (first, last) = match split_range(addrs) {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let a = one(addrs)?;
            (a, a)
        }
    };
    let in_order = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => return Err(format!("address range `{addrs}` mixes IPv4 and IPv6")),
    };
    if !in_order {
        return Err(format!("address range `{addrs}` is empty"));
    }
    Ok(NatRange { first, last, ports })
}

/// `A-B` of two addresses (bracketed or bare IPv6, or IPv4).
fn split_range(addrs: &str) -> Option<(&str, &str)> {
    // Nearly every DNAT of a dump is `A.B.C.D:PORT`, with no `]` to look
    // for `]-[` around (a substring search is slow to set up).
    let bracketed = addrs.bytes().any(|b| b == b']');
    match bracketed.then(|| addrs.find("]-[")).flatten() {
        Some(i) => Some((&addrs[..=i], &addrs[i + 2..])),
        None => addrs.split_once('-'),
    }
}

/// `[packets:bytes]` (with or without brackets).
pub(crate) fn counters(s: &str) -> Option<(u64, u64)> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let (p, b) = inner.split_once(':')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_are_masked_like_iptables() {
        assert_eq!(net("10.64.0.5/16").unwrap().to_string(), "10.64.0.0/16");
        assert_eq!(net("10.64.0.5").unwrap().to_string(), "10.64.0.5/32");
        assert_eq!(
            net("10.0.0.0/255.255.0.0").unwrap().to_string(),
            "10.0.0.0/16"
        );
        assert!(net("10.0.0.0/255.0.255.0").is_err());
        assert!(net("10.0.0.0/33").is_err());
        assert!(net("example.com").is_err());
        assert_eq!(
            net("fd00:10:64::5/48").unwrap().to_string(),
            "fd00:10:64::/48"
        );
        assert_eq!(net("::1").unwrap().to_string(), "::1/128");
        assert!(net("fd00::/129").is_err());
        assert!(net("fd00::/255.255.0.0").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("80").unwrap(), PortRange::single(80));
        assert_eq!(
            port_range("1000:2000").unwrap(),
            PortRange {
                first: 1000,
                last: 2000
            }
        );
        assert_eq!(
            port_range(":100").unwrap(),
            PortRange {
                first: 0,
                last: 100
            }
        );
        assert_eq!(
            port_range("100:").unwrap(),
            PortRange {
                first: 100,
                last: 65535
            }
        );
        assert!(port_range("2000:1000").is_err());
        assert!(port_range("http").is_err());
        assert!(port_range("70000").is_err());
        assert_eq!(port_list("80,443,8000:8080").unwrap().len(), 3);
    }

    #[test]
    fn marks() {
        assert_eq!(value_mask("0x4000/0x4000").unwrap(), (0x4000, 0x4000));
        assert_eq!(value_mask("0x00004000").unwrap(), (0x4000, u32::MAX));
        assert_eq!(value_mask("16384").unwrap(), (0x4000, u32::MAX));
        assert!(value_mask("0xZZ").is_err());
    }

    #[test]
    fn nat_ranges() {
        let r = nat_range("10.64.0.5:8080").unwrap();
        assert_eq!(r.first, IpAddr::from([10, 64, 0, 5]));
        assert_eq!(r.ports, Some(PortRange::single(8080)));
        let r = nat_range("10.0.0.1-10.0.0.9:80-90").unwrap();
        assert_eq!(r.last, IpAddr::from([10, 0, 0, 9]));
        assert_eq!(
            r.ports,
            Some(PortRange {
                first: 80,
                last: 90
            })
        );
        assert!(nat_range("10.0.0.9-10.0.0.1").is_err());
        assert!(nat_range("pod:80").is_err());
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = nat_range("[fd00:10:64:a::77]:8080").unwrap();
        assert_eq!(
            (r.first, r.ports),
            (v6("fd00:10:64:a::77"), Some(PortRange::single(8080)))
        );
        let r = nat_range("fd00::1").unwrap();
        assert_eq!(
            (r.first, r.last, r.ports),
            (v6("fd00::1"), v6("fd00::1"), None)
        );
        let r = nat_range("[fd00::1]-[fd00::9]:80-90").unwrap();
        assert_eq!((r.first, r.last), (v6("fd00::1"), v6("fd00::9")));
        let r = nat_range("fd00::1-fd00::9").unwrap();
        assert_eq!(r.last, v6("fd00::9"));
        assert!(nat_range("[fd00::1]8080").is_err());
        assert!(nat_range("10.0.0.1-fd00::9").is_err());
    }

    #[test]
    fn counters_with_and_without_brackets() {
        assert_eq!(counters("[12:3400]"), Some((12, 3400)));
        assert_eq!(counters("0:0"), Some((0, 0)));
        assert_eq!(counters("[x:0]"), None);
    }
}
