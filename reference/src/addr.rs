//! Address and CIDR parsing as kube-proxy's `netutils.ParseIPSloppy` does it,
//! for the proxier of one family.
//!
//! Go's pre-1.17 parser, which Kubernetes keeps for compatibility, reads
//! dotted decimals with leading zeros as plain decimals (`010.1.1.1` is
//! 10.1.1.1) and treats an IPv4-mapped IPv6 address as IPv4. Anything that is
//! not of the proxier's family (the other family, hostnames, junk) is `None`:
//! each of kube-proxy's per-family proxiers skips those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kpconform_iptables::model::Family;

/// Parses an address of `family`, sloppily.
pub(crate) fn parse_ip(text: &str, family: Family) -> Option<IpAddr> {
    match family {
        Family::Ipv4 => parse_ipv4(text).map(IpAddr::V4),
        Family::Ipv6 => parse_ipv6(text).map(IpAddr::V6),
    }
}

/// Parses a CIDR of `family` and masks it to its network, as Go's
/// `ParseCIDR` does.
pub(crate) fn parse_cidr(text: &str, family: Family) -> Option<IpNet> {
    match family {
        Family::Ipv4 => parse_ipv4_cidr(text).map(IpNet::V4),
        Family::Ipv6 => parse_ipv6_cidr(text).map(IpNet::V6),
    }
}

/// Parses an IPv6 address that Go would not read as IPv4 (no IPv4-mapped
/// form, no zone).
fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    if !text.contains(':') {
        return None;
    }
    let ip: Ipv6Addr = text.parse().ok()?;
    // Go's To4() turns ::ffff:a.b.c.d into IPv4, whatever its spelling.
    ip.to_ipv4_mapped().is_none().then_some(ip)
}

/// Parses `IPv6/N` and masks it to its network.
fn parse_ipv6_cidr(text: &str) -> Option<Ipv6Net> {
    let (addr, len) = text.split_once('/')?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let net = Ipv6Net::new(parse_ipv6(addr)?, len).ok()?;
    Some(net.trunc())
}

/// Parses an IPv4 address, sloppily.
fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let dotted = strip_mapped_prefix(text);
    let mut octets = [0u8; 4];
    let mut fields = dotted.split('.');
    for octet in &mut octets {
        let field = fields.next()?;
        if field.is_empty() || field.len() > 8 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = field
            .parse::<u16>()
            .ok()
            .and_then(|v| u8::try_from(v).ok())?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parses `A.B.C.D/N` and masks it to its network, as Go's `ParseCIDR` does.
fn parse_ipv4_cidr(text: &str) -> Option<Ipv4Net> {
    let (addr, len) = text.split_once('/')?;
    if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    // An IPv4-mapped prefix is written with an IPv6 length (96 + n); Go keeps
    // such CIDRs in the IPv6 family, so they are not ours.
    if addr.contains(':') {
        return None;
    }
    let net = Ipv4Net::new(parse_ipv4(addr)?, len).ok()?;
    Some(net.trunc())
}

fn strip_mapped_prefix(text: &str) -> &str {
    const PREFIX: &str = "::ffff:";
    match text.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) && text[PREFIX.len()..].contains('.') => {
            &text[PREFIX.len()..]
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_sloppy_addresses() {
        assert_eq!(parse_ipv4("10.96.0.10"), Some(Ipv4Addr::new(10, 96, 0, 10)));
        assert_eq!(
            parse_ipv4("010.096.000.010"),
            Some(Ipv4Addr::new(10, 96, 0, 10))
        );
        assert_eq!(
            parse_ipv4("::ffff:10.1.2.3"),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
    }

    #[test]
    fn non_ipv4_is_none() {
        for bad in [
            "",
            "fd00::1",
            "10.0.0",
            "10.0.0.0.1",
            "256.0.0.1",
            "a.b.c.d",
            "1..2.3",
            " 1.2.3.4",
            "None",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cidrs_are_masked() {
        assert_eq!(
            parse_ipv4_cidr("192.168.0.10/16"),
            Some("192.168.0.0/16".parse().unwrap())
        );
        assert_eq!(
            parse_ipv4_cidr("0.0.0.0/0"),
            Some("0.0.0.0/0".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0",
            "10.0.0.0/",
            "fd00::/64",
            "10.0.0.0/-1",
        ] {
            assert_eq!(parse_ipv4_cidr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ipv6_addresses_and_cidrs() {
        let v6 = |t: &str| parse_ip(t, Family::Ipv6);
        assert_eq!(
            v6("FD00:10:64:A::DA"),
            Some("fd00:10:64:a::da".parse().unwrap())
        );
        assert_eq!(
            v6("fd00:0010:0064:000c::af"),
            Some("fd00:10:64:c::af".parse().unwrap())
        );
        for bad in ["10.1.2.3", "::ffff:10.1.2.3", "fd00::1%eth0", "", "None"] {
            assert_eq!(v6(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ip("fd00::1", Family::Ipv4), None);
        assert_eq!(
            parse_cidr("2001:db8:203::85/121", Family::Ipv6),
            Some("2001:db8:203::80/121".parse().unwrap())
        );
        assert_eq!(parse_cidr("2001:db8::/129", Family::Ipv6), None);
        assert_eq!(parse_cidr("10.0.0.0/8", Family::Ipv6), None);
        assert_eq!(parse_cidr("fd00::/8", Family::Ipv4), None);
    }
}
