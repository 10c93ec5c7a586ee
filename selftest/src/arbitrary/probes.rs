//! Probes: first packets aimed at every address a drawn service answers on
//! (cluster IP, node ports, external IPs, load-balancer IPs), from pods, the
//! node, hairpinning endpoints and outside clients inside and outside source
//! ranges — and at addresses no service owns; in every IP family of the
//! cluster, each probe's source and destination of the same family.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::cluster::{in_family, Kind, Port, Service, World, CLIENTS};
use super::{Entropy, Probe};
use kpconform_iptables::model::{Family, Protocol};
use kpconform_suite::scenario::{Destination, FlowSource};

/// The most probes one case carries (each is traced on one node).
const MAX_PROBES: u64 = 12;

/// A pod that is no endpoint, on node `node`.
fn client_pod(node: usize, family: Family) -> IpAddr {
    in_family(World::pod_ip(Some(node), 250), family)
}

/// Client `i` outside the cluster, in `family`.
fn client(i: usize, family: Family) -> IpAddr {
    in_family(CLIENTS[i], family)
}

struct Candidates<'w> {
    world: &'w World,
    out: Vec<Probe>,
}

impl Candidates<'_> {
    fn push(
        &mut self,
        node: usize,
        from: FlowSource,
        to: impl Into<IpAddr>,
        port: u16,
        protocol: Protocol,
        what: String,
    ) {
        let node_name = self.world.nodes[node].spec.name.clone();
        let source = match from {
            FlowSource::Node => "the node".to_string(),
            FlowSource::Ip(ip) => ip.to_string(),
        };
        self.out.push(Probe {
            name: format!("{what} from {source} on {node_name}"),
            node: node_name,
            from,
            to: Destination {
                addr: SocketAddr::new(to.into(), port),
                protocol,
            },
        });
    }

    /// Node `n`'s addresses of `family`, the node IP first.
    fn node_addresses(&self, n: usize, family: Family) -> Vec<IpAddr> {
        self.world.nodes[n].addresses(family)
    }
}

/// Up to [`MAX_PROBES`] probes, drawn from every candidate the world
/// offers, and at least one of each family of the cluster.
pub(super) fn probes<E: Entropy + ?Sized>(world: &World, e: &mut E) -> Vec<Probe> {
    let mut c = Candidates {
        world,
        out: Vec::new(),
    };
    for svc in world.services.iter() {
        for port in &svc.ports {
            for family in world.families() {
                service_port(&mut c, svc, port, family, e);
            }
        }
    }
    for family in world.families() {
        unowned(&mut c, family, e);
    }
    let candidates = c.out;
    let wanted = 1 + e.below(MAX_PROBES) as usize;
    let mut chosen = BTreeSet::new();
    while chosen.len() < wanted.min(candidates.len()) {
        let mut i = e.below(candidates.len() as u64) as usize;
        while chosen.contains(&i) {
            i = (i + 1) % candidates.len();
        }
        chosen.insert(i);
    }
    for family in world.families() {
        let has = chosen.iter().any(|i| candidates[*i].family() == family);
        if let Some(first) = candidates.iter().position(|p| p.family() == family) {
            if !has {
                chosen.insert(first);
            }
        }
    }
    let mut out: Vec<Probe> = Vec::with_capacity(chosen.len());
    for i in chosen {
        let mut probe = candidates[i].clone();
        let base = probe.name.clone();
        let mut n = 2;
        while out.iter().any(|p| p.name == probe.name) {
            probe.name = format!("{base} ({n})");
            n += 1;
        }
        out.push(probe);
    }
    out
}

fn label(svc: &Service, port: &Port) -> String {
    match &port.name {
        Some(n) => format!("{}/{}:{n}", svc.namespace, svc.name),
        None => format!("{}/{}", svc.namespace, svc.name),
    }
}

/// The candidates of one service port in `family`: at the service's
/// addresses of that family, and at the node ports on the node's
/// addresses of that family (which a service of the other family only
/// must leave alone).
fn service_port<E: Entropy + ?Sized>(
    c: &mut Candidates<'_>,
    svc: &Service,
    port: &Port,
    family: Family,
    e: &mut E,
) {
    let nodes = c.world.nodes.len() as u64;
    let mut node = || e.below(nodes) as usize;
    let name = label(svc, port);
    let proto = port.protocol;
    if svc.kind == Kind::Headless {
        // Headless: clients talk to the pods directly, no rule applies.
        if let Some(ep) = svc
            .endpoints
            .first()
            .filter(|_| svc.families.contains(&family))
        {
            let n = node();
            c.push(
                n,
                FlowSource::Ip(client_pod(n, family)),
                ep.ip(family),
                port.endpoint_port,
                proto,
                format!("{name} pod IP (headless)"),
            );
        }
        return;
    }
    if let Some(cluster_ip) = svc.cluster_ip(family) {
        cluster_ip_port(c, svc, port, cluster_ip, &mut node);
    }
    if let Some(np) = port.node_port {
        node_port(c, &name, np, proto, node(), family);
    }
    for ip in svc
        .external_ips
        .iter()
        .filter(|ip| Family::of(**ip) == family)
    {
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client(0, family)),
            *ip,
            port.port,
            proto,
            format!("{name} external IP"),
        );
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client_pod(n, family)),
            *ip,
            port.port,
            proto,
            format!("{name} external IP"),
        );
        let n = node();
        c.push(
            n,
            FlowSource::Node,
            *ip,
            port.port,
            proto,
            format!("{name} external IP"),
        );
    }
    // kube-proxy keeps the source ranges of the proxier's own family.
    let ranges: Vec<_> = svc
        .source_ranges
        .iter()
        .filter(|r| Family::of(r.addr()) == family)
        .collect();
    for (ip, _) in svc
        .ingress
        .iter()
        .filter(|(ip, _)| Family::of(*ip) == family)
    {
        let clients: Vec<IpAddr> = (0..CLIENTS.len()).map(|i| client(i, family)).collect();
        let allowed = clients
            .iter()
            .find(|cl| ranges.is_empty() || ranges.iter().any(|r| r.contains(*cl)));
        if let Some(cl) = allowed {
            let n = node();
            c.push(
                n,
                FlowSource::Ip(*cl),
                *ip,
                port.port,
                proto,
                format!("{name} load-balancer IP"),
            );
        }
        let blocked = clients
            .iter()
            .find(|cl| !ranges.is_empty() && !ranges.iter().any(|r| r.contains(*cl)));
        if let Some(cl) = blocked {
            let n = node();
            c.push(
                n,
                FlowSource::Ip(*cl),
                *ip,
                port.port,
                proto,
                format!("{name} load-balancer IP, outside the source ranges,"),
            );
        }
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client_pod(n, family)),
            *ip,
            port.port,
            proto,
            format!("{name} load-balancer IP"),
        );
        let n = node();
        c.push(
            n,
            FlowSource::Node,
            *ip,
            port.port,
            proto,
            format!("{name} load-balancer IP"),
        );
    }
    if let (Some(hc), Kind::LoadBalancer) = (svc.health_check_node_port, svc.kind) {
        let n = node();
        if let Some(addr) = c.node_addresses(n, family).first() {
            c.push(
                n,
                FlowSource::Ip(client(0, family)),
                *addr,
                hc,
                Protocol::Tcp,
                format!("{name} health check node port"),
            );
        }
    }
}

/// The candidates at one cluster IP of a service port.
fn cluster_ip_port(
    c: &mut Candidates<'_>,
    svc: &Service,
    port: &Port,
    cluster_ip: IpAddr,
    node: &mut dyn FnMut() -> usize,
) {
    let family = Family::of(cluster_ip);
    let name = label(svc, port);
    let proto = port.protocol;
    let n = node();
    c.push(
        n,
        FlowSource::Ip(client_pod(n, family)),
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP"),
    );
    let n = node();
    c.push(
        n,
        FlowSource::Node,
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP"),
    );
    let n = node();
    let other = (n + 1) % c.world.nodes.len();
    c.push(
        n,
        FlowSource::Ip(client_pod(other, family)),
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP, pod routed from another node,"),
    );
    let n = node();
    c.push(
        n,
        FlowSource::Ip(client(0, family)),
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP from outside,"),
    );
    if let Some(ep) = svc.endpoints.first() {
        let n = ep.node.unwrap_or_else(&mut *node);
        c.push(
            n,
            FlowSource::Ip(ep.ip(family)),
            cluster_ip,
            port.port,
            proto,
            format!("{name} cluster IP, hairpin,"),
        );
    }
    // The same port on a protocol the service does not serve there.
    let other_proto = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
        .into_iter()
        .find(|p| {
            !svc.ports
                .iter()
                .any(|q| q.port == port.port && q.protocol == *p)
        });
    if let Some(p) = other_proto {
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client_pod(n, family)),
            cluster_ip,
            port.port,
            p,
            format!("{name} cluster IP on the wrong protocol"),
        );
    }
}

fn node_port(
    c: &mut Candidates<'_>,
    name: &str,
    np: u16,
    proto: Protocol,
    n: usize,
    family: Family,
) {
    let addresses = c.node_addresses(n, family);
    let Some(first) = addresses.first().copied() else {
        return;
    };
    let what = format!("{name} node port");
    c.push(
        n,
        FlowSource::Ip(client(0, family)),
        first,
        np,
        proto,
        what.clone(),
    );
    if let Some(second) = addresses.get(1) {
        c.push(
            n,
            FlowSource::Ip(client(1, family)),
            *second,
            np,
            proto,
            format!("{what} on the second address"),
        );
    }
    c.push(n, FlowSource::Node, first, np, proto, what.clone());
    // 127.0.0.1 (a localhost node port where route_localnet allows it);
    // ::1, which the IPv6 proxier never DNATs.
    c.push(
        n,
        FlowSource::Node,
        family.localhost(),
        np,
        proto,
        format!("{what} on localhost"),
    );
    c.push(
        n,
        FlowSource::Ip(client_pod(n, family)),
        first,
        np,
        proto,
        what.clone(),
    );
    if c.world.nodes.len() > 1 {
        // Addressed to another node but routed through this one.
        let other = (n + 1) % c.world.nodes.len();
        if let Some(other) = c.node_addresses(other, family).first().copied() {
            c.push(
                n,
                FlowSource::Ip(client(0, family)),
                other,
                np,
                proto,
                format!("{what} of another node"),
            );
        }
    }
}

/// Addresses no service owns: nothing may touch these packets.
fn unowned<E: Entropy + ?Sized>(c: &mut Candidates<'_>, family: Family, e: &mut E) {
    let n = e.below(c.world.nodes.len() as u64) as usize;
    c.push(
        n,
        FlowSource::Ip(client(0, family)),
        in_family(Ipv4Addr::new(192, 0, 2, 200), family),
        80,
        Protocol::Tcp,
        "an address no service owns".to_string(),
    );
    c.push(
        n,
        FlowSource::Ip(client_pod(n, family)),
        in_family(Ipv4Addr::new(10, 96, 255, 255), family),
        443,
        Protocol::Tcp,
        "an unallocated cluster IP".to_string(),
    );
    let endpoint = c
        .world
        .services
        .iter()
        .filter(|s| s.families.contains(&family))
        .find_map(|s| Some((s.endpoints.first()?, s.ports.first()?)));
    if let Some((ep, port)) = endpoint {
        c.push(
            n,
            FlowSource::Ip(client_pod(n, family)),
            ep.ip(family),
            port.endpoint_port,
            port.protocol,
            "a pod directly".to_string(),
        );
    }
    if let Some(addr) = c.node_addresses(n, family).first().copied() {
        c.push(
            n,
            FlowSource::Ip(client(0, family)),
            addr,
            22,
            Protocol::Tcp,
            "the node's ssh port".to_string(),
        );
    }
}
