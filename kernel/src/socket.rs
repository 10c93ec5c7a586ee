//! Listeners that say who they are, and client connections that read it.
//!
//! A listener answers every connection (or datagram) with one line,
//! `kpconform <local address> <peer address>`: the address the packet
//! arrived at after every NAT (which endpoint, or the untouched
//! destination) and the source it arrived from (masquerade shows here).
//! Reading that line back is also the proof that the reply found its way
//! through the node's connection tracking.

use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::plan::L4;

const MAGIC: &str = "kpconform";

/// A UDP socket (`datagram`) or a TCP one for `addr`'s family, in the
/// calling thread's namespace. (SCTP goes through raw sockets: see
/// [`crate::sctp`].)
fn new_socket(addr: SocketAddr, datagram: bool) -> io::Result<Socket> {
    let (ty, proto) = if datagram {
        (Type::DGRAM, Protocol::UDP)
    } else {
        (Type::STREAM, Protocol::TCP)
    };
    Socket::new(Domain::for_address(addr), ty, Some(proto))
}

/// `IP_TRANSPARENT`: the socket may use an address its namespace does not
/// have (the client's addresses are routed to it, not assigned: see
/// `topology`).
fn set_transparent(s: &Socket, addr: SocketAddr) -> io::Result<()> {
    if addr.is_ipv6() {
        s.set_ip_transparent_v6(true)
    } else {
        s.set_ip_transparent_v4(true)
    }
}

/// How a listening socket is served.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listener {
    /// TCP: accept and answer.
    Stream,
    /// UDP: answer every datagram, and log its token.
    Datagram,
    /// A raw SCTP socket bound to this address: log every INIT.
    Sctp(std::net::IpAddr),
}

/// A TCP or UDP listening socket bound to `addr`, created in the calling
/// thread's namespace (for SCTP see [`crate::sctp`]).
pub(crate) fn listen(addr: SocketAddr, l4: L4, transparent: bool) -> io::Result<Socket> {
    let datagram = l4 == L4::Udp;
    let s = new_socket(addr, datagram)?;
    s.set_reuse_address(true)?;
    if transparent {
        set_transparent(&s, addr)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}/{l4}: {e}")))?;
    if !datagram {
        s.listen(1024)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// What the listeners saw, shared with the clients.
#[derive(Default)]
pub(crate) struct Seen {
    /// Completed passes over every listener: once it has moved on twice
    /// after a datagram was sent, every datagram that reached a listener
    /// has been read.
    cycles: AtomicU64,
    /// Datagrams by their token: where they arrived and from which source.
    datagrams: Mutex<HashMap<u64, (SocketAddr, SocketAddr)>>,
    /// Signalled whenever a datagram is logged.
    logged: Condvar,
}

impl Seen {
    fn record(&self, token: u64, at: SocketAddr, from: SocketAddr) {
        self.datagrams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, (at, from));
        self.logged.notify_all();
    }

    /// Where datagram `token` arrived, waiting up to `wait` for it to be
    /// logged.
    pub(crate) fn wait_take(&self, token: u64, wait: Duration) -> Option<(SocketAddr, SocketAddr)> {
        let log = self
            .datagrams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (mut log, _) = self
            .logged
            .wait_timeout_while(log, wait, |log| !log.contains_key(&token))
            .unwrap_or_else(PoisonError::into_inner);
        log.remove(&token)
    }

    /// Where datagram `token` arrived, if it has been read yet.
    pub(crate) fn take(&self, token: u64) -> Option<(SocketAddr, SocketAddr)> {
        self.datagrams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token)
    }

    /// Waits until the server has drained every listener since this call
    /// began (at most `limit`), then says where datagram `token` arrived.
    pub(crate) fn datagram(&self, token: u64, limit: Duration) -> Option<(SocketAddr, SocketAddr)> {
        let start = Instant::now();
        let first = self.cycles.load(Ordering::Acquire);
        while self.cycles.load(Ordering::Acquire) < first + 2 && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.take(token)
    }
}

/// The thread answering every listener of a topology; stops when dropped.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub(crate) seen: Arc<Seen>,
}

impl Server {
    /// Starts answering on `sockets`.
    pub(crate) fn start(sockets: Vec<(Socket, Listener)>) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let seen = Arc::new(Seen::default());
        let shared = Arc::clone(&seen);
        let thread = std::thread::Builder::new()
            .name("kpconform-listeners".into())
            .spawn(move || serve(&sockets, &flag, &shared))?;
        Ok(Server {
            stop,
            thread: Some(thread),
            seen,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sockets: &[(Socket, Listener)], stop: &AtomicBool, seen: &Seen) {
    while !stop.load(Ordering::Relaxed) {
        seen.cycles.fetch_add(1, Ordering::Release);
        let mut fds: Vec<PollFd<'_>> = sockets
            .iter()
            .map(|(s, _)| PollFd::new(std::os::fd::AsFd::as_fd(s), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::from(20u8)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        for ((socket, kind), ready) in sockets.iter().zip(ready) {
            if ready {
                answer(socket, *kind, seen);
            }
        }
    }
}

fn reply(local: &SockAddr, peer: &SockAddr) -> String {
    let show = |a: &SockAddr| {
        a.as_socket()
            .map_or_else(|| "?".to_string(), |a| a.to_string())
    };
    format!("{MAGIC} {} {}\n", show(local), show(peer))
}

/// Answers everything waiting on `socket`.
fn answer(socket: &Socket, kind: Listener, seen: &Seen) {
    match kind {
        Listener::Sctp(ip) => {
            let mut buf = [0u8; 2048];
            let mut reader = socket;
            while let Ok(peer) = socket.peek_sender() {
                let Ok(n) = reader.read(&mut buf) else {
                    break;
                };
                let packet = &buf[..n];
                let source = if ip.is_ipv4() {
                    crate::sctp::ipv4_source(packet)
                } else {
                    peer.as_socket().map(|a| a.ip())
                };
                if let (Some((sport, dport, tag)), Some(source)) =
                    (crate::sctp::parse_init(packet, ip.is_ipv4()), source)
                {
                    seen.record(
                        u64::from(tag),
                        SocketAddr::new(ip, dport),
                        SocketAddr::new(source, sport),
                    );
                }
            }
        }
        Listener::Datagram => {
            let Ok(local) = socket.local_addr() else {
                return;
            };
            let mut buf = [0u8; 512];
            let mut reader = socket;
            // `Read` for a datagram socket is recv(); the source comes from
            // peek_sender, asked before each read.
            while let Ok(peer) = socket.peek_sender() {
                let Ok(n) = reader.read(&mut buf) else {
                    break;
                };
                let _ = socket.send_to(reply(&local, &peer).as_bytes(), &peer);
                let token = std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.strip_prefix(MAGIC))
                    .and_then(|t| t.trim().parse::<u64>().ok());
                if let (Some(token), Some(at), Some(from)) =
                    (token, local.as_socket(), peer.as_socket())
                {
                    seen.datagrams
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(token, (at, from));
                }
            }
        }
        Listener::Stream => {
            while let Ok((stream, peer)) = socket.accept() {
                if let Ok(local) = stream.local_addr() {
                    let _ = (&stream).write_all(reply(&local, &peer).as_bytes());
                }
            }
        }
    }
}

/// What one connection attempt saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A listener answered: where the packet arrived, and from which source.
    Answered {
        /// The listener's address (the destination after NAT).
        at: SocketAddr,
        /// The source address the listener saw.
        seen: SocketAddr,
    },
    /// Refused at once: a TCP reset or an ICMP unreachable (a REJECT, or
    /// nothing listening).
    Refused,
    /// Nothing came back in time, or sending was not permitted (a DROP in
    /// OUTPUT shows as EPERM for a local sender).
    Dropped,
}

/// In words, for messages.
impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Answered { at, seen } => write!(f, "answered at {at}, from source {seen}"),
            Attempt::Refused => f.write_str("refused at once (a TCP reset or an ICMP unreachable)"),
            Attempt::Dropped => f.write_str("no answer in time (dropped)"),
        }
    }
}

/// Connects from `src` to `dst` (in the calling thread's namespace) and
/// reads the listener's answer; `Err` for a failure of the attempt itself
/// (the source port is taken, say), which is no observation.
pub(crate) fn attempt(
    src: SocketAddr,
    dst: SocketAddr,
    l4: L4,
    timeout: Duration,
    transparent: bool,
    seen: &Seen,
) -> io::Result<Attempt> {
    if l4 == L4::Sctp {
        return crate::sctp::attempt(src, dst, timeout, transparent, seen, REPLY_LIMIT);
    }
    let datagram = l4 == L4::Udp;
    let s = new_socket(dst, datagram)?;
    if transparent {
        set_transparent(&s, src)?;
    }
    if dst.is_ipv6() && !datagram {
        // Without it, an ICMPv6 unreachable during connect() is a soft
        // error and the refusal shows only on the next retransmission.
        setsockopt(&s, sockopt::Ipv6RecvErr, &true)?;
    }
    s.bind(&src.into())?;
    let start = Instant::now();
    let result = if datagram {
        // The source port is unique within the topology: a fine token.
        let token = u64::from(src.port());
        match udp(&s, dst, timeout, token) {
            // Silence may only mean the listener thread was slow to
            // answer: it keeps a log of what it read.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(match seen.datagram(token, REPLY_LIMIT) {
                    Some((at, seen)) => Attempt::Answered { at, seen },
                    None => Attempt::Dropped,
                });
            }
            other => other,
        }
    } else {
        stream(&s, dst, timeout)
    };
    match result {
        Ok(text) => Ok(parse_reply(&text)
            .ok_or_else(|| io::Error::other(format!("unexpected answer {text:?} from {dst}")))?),
        Err(e) => classify(e, start.elapsed(), timeout),
    }
}

/// An error of sending or receiving as an observation: refused, dropped,
/// or no observation at all.
pub(crate) fn classify_error(e: io::Error) -> io::Result<Attempt> {
    classify(e, Duration::ZERO, Duration::from_secs(1))
}

/// How long an answer may take once the connection is known to be
/// accepted (a slow listener thread on a loaded machine is no drop).
const REPLY_LIMIT: Duration = Duration::from_secs(10);

fn classify(e: io::Error, elapsed: Duration, timeout: Duration) -> io::Result<Attempt> {
    use nix::errno::Errno;
    let errno = e.raw_os_error().map(Errno::from_raw);
    match errno {
        Some(
            Errno::ECONNREFUSED
            | Errno::EHOSTUNREACH
            | Errno::ENETUNREACH
            | Errno::EACCES
            | Errno::ECONNRESET,
        ) => Ok(Attempt::Refused),
        Some(Errno::EPERM) => Ok(Attempt::Dropped),
        Some(Errno::ETIMEDOUT | Errno::EAGAIN) => Ok(Attempt::Dropped),
        _ if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            Ok(Attempt::Dropped)
        }
        _ if elapsed >= timeout => Ok(Attempt::Dropped),
        _ => Err(e),
    }
}

fn stream(s: &Socket, dst: SocketAddr, timeout: Duration) -> io::Result<String> {
    s.connect_timeout(&dst.into(), timeout)?;
    // Connected: the kernel accepted it. The answer comes from the
    // listener thread, which may be slow; that is not a drop.
    s.set_read_timeout(Some(REPLY_LIMIT))?;
    let mut text = String::new();
    let mut reader = s;
    reader.read_to_string(&mut text).map_err(|e| {
        io::Error::other(format!(
            "connected to {dst}, but no answer came within {} s: {e}",
            REPLY_LIMIT.as_secs()
        ))
    })?;
    Ok(text)
}

fn udp(s: &Socket, dst: SocketAddr, timeout: Duration, token: u64) -> io::Result<String> {
    s.connect(&dst.into())?;
    s.send(format!("{MAGIC} {token}").as_bytes())?;
    s.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 512];
    let mut reader = s;
    let n = reader.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn parse_reply(text: &str) -> Option<Attempt> {
    let mut words = text.split_whitespace();
    if words.next()? != MAGIC {
        return None;
    }
    let at = words.next()?.parse().ok()?;
    let seen = words.next()?.parse().ok()?;
    Some(Attempt::Answered { at, seen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let local: SockAddr = "[fd00::5]:8080".parse::<SocketAddr>().unwrap().into();
        let peer: SockAddr = "192.168.0.10:40000".parse::<SocketAddr>().unwrap().into();
        let text = reply(&local, &peer);
        assert_eq!(
            parse_reply(&text),
            Some(Attempt::Answered {
                at: "[fd00::5]:8080".parse().unwrap(),
                seen: "192.168.0.10:40000".parse().unwrap()
            })
        );
        assert_eq!(parse_reply("HTTP/1.1 200 OK"), None);
    }
}
