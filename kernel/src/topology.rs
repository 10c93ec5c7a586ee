//! A [`Plan`] made real: namespaces, veths, addresses, routes, sysctls,
//! the generator's rules and the listeners.
//!
//! Every far namespace (client, sink, each pod) hangs off the node by its
//! own veth pair. Both ends carry fixed link-scope addresses (169.254.0.1
//! and fe80::1 on the node's side, .2 and ::2 on the far side) that serve
//! only as next hops: being link-scoped, they are never picked as a source,
//! so a masquerade picks the node's own address as it would in a cluster.
//! The node's addresses sit on `eth0`, the veth to the client ("the
//! network"); `eth1` leads to the sink, the node's default route; `p<N>`
//! lead to the pods, each reached by a /32 (/128) route as a CNI would set
//! it up. Addresses are added without duplicate-address detection so that
//! IPv6 ones are usable at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kpconform_iptables::model::Family;
use kpconform_iptables::FlowSource;

use crate::netns::Netns;
use crate::plan::{Owner, Plan, L4};
use crate::sctp;
use crate::socket::{self, Attempt, Listener, Server};
use crate::Backend;
use socket2::Socket;

/// After this many connections that were all dropped, a flow sends no more.
pub(crate) const DROPS_ENOUGH: u32 = 3;

/// A topology, torn down (every namespace destroyed) when dropped.
pub(crate) struct Topology {
    pub(crate) plan: Plan,
    backend: Backend,
    // Field order is drop order: stop answering, then close the
    // namespaces.
    server: Server,
    recent: Vec<File>,
    node: Netns,
    client: Netns,
    /// Only ever reached through the node; held to keep it alive.
    _sink: Netns,
    pods: BTreeMap<IpAddr, Netns>,
    next_port: std::sync::atomic::AtomicU32,
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

fn address(ip: IpAddr, dev: &str) -> String {
    match ip {
        IpAddr::V4(_) => format!("address add {ip}/32 dev {dev}\n"),
        IpAddr::V6(_) => format!("address add {ip}/128 dev {dev} nodad\n"),
    }
}

/// The addresses a masquerade out of node interface `name` picks: from the
/// benchmarking ranges (198.18.0.0/15, 2001:2::/48), which no cluster uses.
pub(crate) fn masquerade_source(name: &str) -> Option<(IpAddr, IpAddr)> {
    let (v4, v6) = match name {
        "eth0" => return None,
        "eth1" => ("198.18.0.1", "2001:2::1"),
        _ => ("198.18.1.1", "2001:2:0:1::1"),
    };
    Some((v4.parse().expect("valid"), v6.parse().expect("valid")))
}

fn route_to(ip: IpAddr, dev: &str) -> String {
    match ip {
        IpAddr::V4(_) => format!("route add {} via 169.254.0.2 dev {dev} onlink\n", host(ip)),
        IpAddr::V6(_) => format!("route add {} via fe80::2 dev {dev}\n", host(ip)),
    }
}

/// The sysctls every namespace gets before it has interfaces: no DAD (new
/// interfaces copy `default`), no reverse-path filter, and no ICMP rate
/// limit (several rejected connections in a row must all be refused, not
/// look dropped).
const COMMON_SYSCTLS: [(&str, &str); 7] = [
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv6.icmp.ratelimit", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
];

fn setup(ns: &Netns) -> io::Result<()> {
    for (key, value) in COMMON_SYSCTLS {
        ns.sysctl(key, value)?;
    }
    Ok(())
}

/// The far end of a veth: up, with its next hop and default routes, and
/// its own addresses on `eth0` (or `lo`, for the sink).
/// The MAC address of one end of veth pair `link` (1: the node's end, 2:
/// the far end). Fixed, so that every next hop can be a permanent
/// neighbour entry.
fn mac(link: usize, end: u8) -> String {
    format!(
        "02:6b:70:{:02x}:{:02x}:{end:02x}",
        (link >> 8) & 0xff,
        link & 0xff
    )
}

/// The far end of veth pair `link`: up, with its next hop (a permanent
/// neighbour: no ARP or neighbour discovery) and default routes, and its
/// own addresses on `eth0` (or `lo`, for the sink).
///
/// The kernel's neighbour tables are shared by every namespace and hold
/// 1024 learned entries (`gc_thresh3` of the host); a few topologies of
/// 250 pods each would fill them, and packets to a next hop that cannot be
/// learned are dropped. Permanent entries do not count against the limit.
fn far_side(
    ns: &Netns,
    link: usize,
    addresses: &[IpAddr],
    on_lo: bool,
    loopback: bool,
) -> io::Result<()> {
    let mut batch = String::from("link set lo up\n");
    if !loopback {
        batch.push_str("address del 127.0.0.1/8 dev lo\n");
    }
    let node_mac = mac(link, 1);
    let _ = write!(
        batch,
        "link set eth0 up\n\
         address add 169.254.0.2/32 dev eth0 scope link\n\
         address add fe80::2/64 dev eth0 nodad\n\
         neigh replace 169.254.0.1 lladdr {node_mac} dev eth0 nud permanent\n\
         neigh replace fe80::1 lladdr {node_mac} dev eth0 nud permanent\n\
         route add default via 169.254.0.1 dev eth0 onlink\n\
         route add default via fe80::1 dev eth0\n",
    );
    for &ip in addresses {
        batch.push_str(&address(ip, if on_lo { "lo" } else { "eth0" }));
    }
    ns.command("ip", &["-batch", "-"], &batch).map(drop)
}

impl Topology {
    /// Builds `plan`'s namespaces and listeners (no rules loaded yet).
    pub(crate) fn build(
        plan: Plan,
        route_localnet: bool,
        backend: Backend,
    ) -> io::Result<Topology> {
        let node = Netns::new("node")?;
        let client = Netns::new("client")?;
        let sink = Netns::new("sink")?;
        let mut pods = BTreeMap::new();
        for &ip in plan.pods.keys() {
            pods.insert(ip, Netns::new(format!("pod {ip}"))?);
        }
        for ns in [&node, &client, &sink].into_iter().chain(pods.values()) {
            setup(ns)?;
        }
        node.sysctl("net.ipv4.ip_forward", "1")?;
        node.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        if route_localnet {
            // As kube-proxy sets it when node ports are open on localhost.
            node.sysctl("net.ipv4.conf.all.route_localnet", "1")?;
        }

        // The veth pairs, created in the node with their far ends placed
        // straight into the other namespaces.
        let mut links: Vec<(String, &Netns)> =
            vec![("eth0".into(), &client), ("eth1".into(), &sink)];
        for (i, ns) in pods.values().enumerate() {
            links.push((format!("p{i}"), ns));
        }
        let mut batch = String::from("link set lo up\n");
        for (i, (name, ns)) in links.iter().enumerate() {
            let _ = writeln!(
                batch,
                "link add {name} address {} type veth peer name eth0 address {} netns {}",
                mac(i, 1),
                mac(i, 2),
                ns.path()
            );
        }
        node.command("ip", &["-batch", "-"], &batch)?;

        let clients: Vec<IpAddr> = plan.clients.iter().copied().collect();
        // The client has no 127.0.0.1: it never talks to itself, and
        // without the local routes of that address a packet to 127.0.0.1
        // leaves for the node like any other, as a neighbour's packet to
        // the node's localhost would (route_localnet lets the answer from
        // 127.0.0.1 back in).
        far_side(&client, 0, &[], false, false)?;
        client.sysctl("net.ipv4.conf.all.route_localnet", "1")?;
        // The client's addresses are not assigned to it but routed to it:
        // arriving from the node they are local (table 100, consulted for
        // packets that come in on eth0), while the client's own packets to
        // them go out to the node. A flow from a load balancer's address to
        // that same address then really crosses the node. Sockets use them
        // with IP_TRANSPARENT.
        let mut batch = String::from("rule add iif eth0 lookup 100 pref 100\n");
        for &ip in &clients {
            let _ = writeln!(batch, "route add local {} dev lo table 100", host(ip));
        }
        client.command("ip", &["-batch", "-"], &batch)?;
        client.command(
            "ip",
            &[
                "-6", "rule", "add", "iif", "eth0", "lookup", "100", "pref", "100",
            ],
            "",
        )?;
        let sinks: Vec<IpAddr> = plan.sink.keys().copied().collect();
        far_side(&sink, 1, &sinks, true, true)?;
        for (i, (&ip, ns)) in pods.iter().enumerate() {
            far_side(ns, i + 2, &[ip], false, true)?;
        }

        let mut batch = String::new();
        for (i, (name, _)) in links.iter().enumerate() {
            let far = mac(i, 2);
            let _ = write!(
                batch,
                "link set {name} up\naddress add 169.254.0.1/32 dev {name} scope link\n\
                 address add fe80::1/64 dev {name} nodad\n\
                 neigh replace 169.254.0.2 lladdr {far} dev {name} nud permanent\n\
                 neigh replace fe80::2 lladdr {far} dev {name} nud permanent\n"
            );
            // A global address of its own on the way to the pods and the
            // sink: MASQUERADE picks it, so that a masqueraded connection
            // shows at its destination with a source no flow has.
            if let Some((v4, v6)) = masquerade_source(name) {
                let _ = write!(batch, "{}{}", address(v4, name), address(v6, name));
            }
        }
        for &ip in &plan.node_addresses {
            batch.push_str(&address(ip, "eth0"));
        }
        for &ip in &clients {
            batch.push_str(&route_to(ip, "eth0"));
        }
        for (i, &ip) in pods.keys().enumerate() {
            batch.push_str(&route_to(ip, &format!("p{i}")));
        }
        batch.push_str("route add default via 169.254.0.2 dev eth1 onlink\n");
        batch.push_str("route add default via fe80::2 dev eth1\n");
        node.command("ip", &["-batch", "-"], &batch)?;

        let mut sockets = Vec::new();
        let mut open = |ns: &Netns,
                        listens: &mut dyn Iterator<Item = &(SocketAddr, L4)>,
                        transparent: bool|
         -> io::Result<()> {
            let wanted: Vec<(SocketAddr, L4)> = listens.copied().collect();
            let made =
                ns.run(|| -> io::Result<Vec<(Socket, Listener)>> {
                    let mut made = Vec::new();
                    let mut sctp: Vec<IpAddr> = Vec::new();
                    for &(addr, l4) in &wanted {
                        match l4 {
                            L4::Tcp => made
                                .push((socket::listen(addr, l4, transparent)?, Listener::Stream)),
                            L4::Udp => made
                                .push((socket::listen(addr, l4, transparent)?, Listener::Datagram)),
                            // One raw socket per address hears every port.
                            L4::Sctp if !sctp.contains(&addr.ip()) => {
                                sctp.push(addr.ip());
                                let raw = sctp::raw(addr.ip(), transparent)?;
                                raw.set_nonblocking(true)?;
                                made.push((raw, Listener::Sctp(addr.ip())));
                            }
                            L4::Sctp => {}
                        }
                    }
                    Ok(made)
                })??;
            sockets.extend(made);
            Ok(())
        };
        open(&node, &mut plan.node_listens.iter(), false)?;
        open(&sink, &mut plan.sink.values().flatten(), false)?;
        open(&client, &mut plan.client_listens.iter(), true)?;
        for (ip, ns) in &pods {
            open(ns, &mut plan.pods[ip].iter(), false)?;
        }
        let server = Server::start(sockets)?;
        Ok(Topology {
            plan,
            backend,
            server,
            recent: Vec::new(),
            node,
            client,
            _sink: sink,
            pods,
            next_port: std::sync::atomic::AtomicU32::new(10_000),
        })
    }

    /// Loads `text` as the node's `family` rules with `iptables-restore`;
    /// `Err` carries the kernel's (iptables-restore's) message.
    pub(crate) fn load(&self, family: Family, text: &str) -> Result<(), String> {
        let program = self.backend.restore(family);
        self.node
            .command(&program, &["--wait=60"], text)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Opens the `-m recent` lists the rules created, so that they can be
    /// cleared between connections.
    pub(crate) fn open_recent(&mut self) -> io::Result<()> {
        let files = self.node.run(|| -> io::Result<Vec<File>> {
            let dir = match std::fs::read_dir("/proc/thread-self/net/xt_recent") {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut files = Vec::new();
            for entry in dir {
                files.push(OpenOptions::new().write(true).open(entry?.path())?);
            }
            Ok(files)
        })??;
        self.recent = files;
        Ok(())
    }

    /// Forgets every `-m recent` entry (session affinity), so that the next
    /// connection is a first one.
    pub(crate) fn clear_recent(&self) -> io::Result<()> {
        for mut f in &self.recent {
            f.write_all(b"/\n")?;
        }
        Ok(())
    }

    /// Where a flow from `from` of `family` is sent from: a namespace and
    /// a source address; `Err` says why it cannot be sent.
    pub(crate) fn source(
        &self,
        from: FlowSource,
        family: Family,
    ) -> Result<(&Netns, IpAddr), String> {
        match from {
            FlowSource::Node => self
                .plan
                .node_ip(family)
                .map(|ip| (&self.node, ip))
                .ok_or_else(|| format!("the node has no {family} address to send from")),
            FlowSource::Ip(ip) if ip.is_loopback() => Err(format!(
                "a packet from the network with the loopback source {ip} cannot be sent"
            )),
            FlowSource::Ip(ip) => match self.plan.owner(ip) {
                Owner::Node => Err(format!(
                    "a packet from the network with the node's own address {ip} as its source \
                     cannot be sent from outside the node"
                )),
                Owner::Pod(ip) => Ok((&self.pods[&ip], ip)),
                Owner::Client => Ok((&self.client, ip)),
                Owner::Sink => Err(format!("{ip} has no namespace to send from")),
            },
        }
    }

    /// Runs `count` connection attempts from `source` to `dst`, calling
    /// `between` before each; returns each attempt's result.
    pub(crate) fn connect(
        &self,
        source: (&Netns, IpAddr),
        dst: SocketAddr,
        l4: L4,
        count: u32,
        timeout: Duration,
        mut between: impl FnMut(u32) -> io::Result<()> + Send,
    ) -> io::Result<Vec<Attempt>> {
        use std::sync::atomic::Ordering;
        let (ns, ip) = source;
        let transparent = std::ptr::eq(ns, &self.client);
        let next_port = &self.next_port;
        let seen = &*self.server.seen;
        ns.run(|| -> io::Result<Vec<Attempt>> {
            let mut out: Vec<Attempt> = Vec::with_capacity(count as usize);
            for i in 0..count {
                // Every drop costs the whole timeout: once the first three
                // connections were all dropped, more of them tell nothing
                // new (the statistics use the connections actually made).
                if i >= DROPS_ENOUGH && out.iter().all(|a| *a == Attempt::Dropped) {
                    break;
                }
                between(i)?;
                // Every connection of a topology gets a source port of its
                // own: no conntrack entry is ever reused, and no NAT has a
                // port clash to resolve.
                loop {
                    let port = next_port.fetch_add(1, Ordering::Relaxed);
                    let Some(port) = u16::try_from(port).ok().filter(|p| *p <= 65_000) else {
                        return Err(io::Error::other(
                            "out of source ports for this node (more than 55,000 connections)",
                        ));
                    };
                    let src = SocketAddr::new(ip, port);
                    match socket::attempt(src, dst, l4, timeout, transparent, seen) {
                        Ok(a) => {
                            out.push(a);
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(out)
        })?
    }

    /// What the topology holds, for messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "node, client ({} address(es)), sink ({} address(es)), {} pod(s)",
            self.plan.clients.len(),
            self.plan.sink.len(),
            self.pods.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masquerade_sources_are_outside_every_scenario_range() {
        assert_eq!(masquerade_source("eth0"), None);
        let (v4, v6) = masquerade_source("p3").unwrap();
        assert_eq!(
            (v4.to_string(), v6.to_string()),
            ("198.18.1.1".into(), "2001:2:0:1::1".into())
        );
    }
}
