//! SCTP without SCTP sockets.
//!
//! Many kernels have SCTP connection tracking, NAT and the `sctp` match
//! built in while the SCTP protocol itself (`CONFIG_IP_SCTP`, the `sctp`
//! module) is absent, so no SCTP socket can be opened. The first packet of
//! an SCTP association is an INIT chunk; that is all a flow needs. It is
//! built by hand and sent through a raw IP socket, and every address that
//! may receive SCTP has a raw socket bound to it that records what arrived
//! (where, from which source, with which initiate tag). A raw socket also
//! keeps the receiving kernel from answering "protocol unreachable". An
//! ICMP error coming back to the sender's raw socket is a refusal.

use std::io::{self, Read as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

use crate::socket::{classify_error, Attempt, Seen};

/// IPPROTO_SCTP.
const SCTP: i32 = 132;

/// A raw SCTP socket for `addr`'s family, bound to `addr`'s address.
pub(crate) fn raw(addr: IpAddr, transparent: bool) -> io::Result<Socket> {
    let domain = match addr {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(SCTP)))?;
    if transparent {
        match addr {
            IpAddr::V4(_) => s.set_ip_transparent_v4(true)?,
            IpAddr::V6(_) => s.set_ip_transparent_v6(true)?,
        }
    }
    s.bind(&SocketAddr::new(addr, 0).into()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind a raw SCTP socket to {addr}: {e}"),
        )
    })?;
    Ok(s)
}

/// An SCTP packet holding one INIT chunk from `src` to `dst` whose
/// initiate tag is `tag`, with its CRC32c.
pub(crate) fn init_packet(src_port: u16, dst_port: u16, tag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // verification tag: 0 in an INIT
    p.extend_from_slice(&0u32.to_be_bytes()); // checksum, filled in below
    p.push(1); // chunk type INIT
    p.push(0); // flags
    p.extend_from_slice(&20u16.to_be_bytes()); // chunk length
    p.extend_from_slice(&tag.to_be_bytes()); // initiate tag
    p.extend_from_slice(&65_535u32.to_be_bytes()); // advertised receiver window
    p.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
    p.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
    p.extend_from_slice(&tag.to_be_bytes()); // initial TSN
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&p);
    // RFC 9260 appendix A: the CRC32c goes in least significant byte first.
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// What a raw listener read: the SCTP source and destination ports and the
/// INIT's initiate tag, from `packet` (an IPv4 packet with its header, or an
/// IPv6 payload, as raw sockets deliver them).
pub(crate) fn parse_init(packet: &[u8], ipv4: bool) -> Option<(u16, u16, u32)> {
    let sctp = if ipv4 {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    } else {
        packet
    };
    let src = u16::from_be_bytes(sctp.get(0..2)?.try_into().ok()?);
    let dst = u16::from_be_bytes(sctp.get(2..4)?.try_into().ok()?);
    if *sctp.get(12)? != 1 {
        return None; // not an INIT
    }
    let tag = u32::from_be_bytes(sctp.get(16..20)?.try_into().ok()?);
    Some((src, dst, tag))
}

/// The source address of an IPv4 packet with its header.
pub(crate) fn ipv4_source(packet: &[u8]) -> Option<IpAddr> {
    let b: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    Some(IpAddr::from(b))
}

/// Sends an INIT from `src` to `dst` (in the calling thread's namespace)
/// and waits for a listener to record it, an ICMP error, or `timeout`.
pub(crate) fn attempt(
    src: SocketAddr,
    dst: SocketAddr,
    timeout: Duration,
    transparent: bool,
    seen: &Seen,
    reply_limit: Duration,
) -> io::Result<Attempt> {
    let s = raw(src.ip(), transparent)?;
    if dst.is_ipv6() {
        setsockopt(&s, sockopt::Ipv6RecvErr, &true)?;
    } else {
        setsockopt(&s, sockopt::Ipv4RecvErr, &true)?;
    }
    // The source port is unique within the topology, so it makes a unique
    // (non-zero) initiate tag as well.
    let tag = 0x6b70_0000 | u32::from(src.port());
    let packet = init_packet(src.port(), dst.port(), tag);
    let to = SocketAddr::new(dst.ip(), 0);
    if let Err(e) = s.send_to(&packet, &to.into()) {
        return classify_error(e);
    }
    let start = Instant::now();
    // The listeners' log says when the INIT arrived (woken at once); in
    // between, the sender's socket is checked for an ICMP error.
    s.set_nonblocking(true)?;
    let mut buf = [0u8; 2048];
    let mut reader = &s;
    while start.elapsed() < timeout {
        if let Some((at, from)) = seen.wait_take(u64::from(tag), Duration::from_millis(2)) {
            return Ok(Attempt::Answered { at, seen: from });
        }
        match reader.read(&mut buf) {
            // Some other SCTP packet for this address (a hairpin copy).
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return classify_error(e),
        }
    }
    Ok(match seen.datagram(u64::from(tag), reply_limit) {
        Some((at, from)) => Attempt::Answered { at, seen: from },
        None => Attempt::Dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_round_trips_and_carries_a_crc32c() {
        let p = init_packet(40000, 3868, 0x1234_5678);
        assert_eq!(p.len(), 32);
        assert_eq!(parse_init(&p, false), Some((40000, 3868, 0x1234_5678)));
        // Recomputing over the packet with the checksum zeroed gives it back.
        let mut zeroed = p.clone();
        zeroed[8..12].fill(0);
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&zeroed);
        assert_eq!(&p[8..12], &crc.to_le_bytes());
        // Behind an IPv4 header of 20 bytes.
        let mut v4 = vec![0x45u8; 1];
        v4.extend_from_slice(&[0; 11]);
        v4.extend_from_slice(&[10, 64, 0, 5, 10, 96, 0, 1]);
        v4.extend_from_slice(&p);
        assert_eq!(parse_init(&v4, true), Some((40000, 3868, 0x1234_5678)));
        assert_eq!(ipv4_source(&v4), Some("10.64.0.5".parse().unwrap()));
        assert_eq!(parse_init(&p[..10], false), None);
    }

    #[test]
    fn the_crc32c_is_the_standard_one() {
        // The check value of CRC-32C ("123456789").
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(b"123456789");
        assert_eq!(crc, 0xE306_9283);
    }
}
