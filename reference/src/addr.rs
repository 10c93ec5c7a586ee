//! IPv4 address and CIDR parsing as kube-proxy's `netutils.ParseIPSloppy` does it.
//!
//! Go's pre-1.17 parser, which Kubernetes keeps for compatibility, reads
//! dotted decimals with leading zeros as plain decimals (`010.1.1.1` is
//! 10.1.1.1) and treats an IPv4-mapped IPv6 address as IPv4. Anything that is
//! not IPv4 (IPv6, hostnames, junk) is `None`: this generator only writes the
//! IPv4 rule set, so kube-proxy's IPv4 proxier would skip those too.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Parses an IPv4 address, sloppily.
pub(crate) fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
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
pub(crate) fn parse_ipv4_cidr(text: &str) -> Option<Ipv4Net> {
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
}
