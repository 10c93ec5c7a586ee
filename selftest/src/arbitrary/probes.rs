//! Probes: first packets aimed at every address a drawn service answers on
//! (cluster IP, node ports, external IPs, load-balancer IPs), from pods, the
//! node, hairpinning endpoints and outside clients inside and outside source
//! ranges — and at addresses no service owns.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::cluster::{Kind, Port, Service, World, CLIENTS};
use super::{Entropy, Probe};
use kpconform_iptables::model::Protocol;
use kpconform_suite::scenario::{Destination, FlowSource};

/// The most probes one case carries (each is traced on one node).
const MAX_PROBES: u64 = 12;

/// A pod that is no endpoint, on node `node`.
fn client_pod(node: usize) -> Ipv4Addr {
    World::pod_ip(Some(node), 250)
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
}

/// Up to [`MAX_PROBES`] probes, drawn from every candidate the world offers.
pub(super) fn probes<E: Entropy + ?Sized>(world: &World, e: &mut E) -> Vec<Probe> {
    let mut c = Candidates {
        world,
        out: Vec::new(),
    };
    for svc in world.services.iter() {
        for port in &svc.ports {
            service_port(&mut c, svc, port, e);
        }
    }
    unowned(&mut c, e);
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

fn service_port<E: Entropy + ?Sized>(
    c: &mut Candidates<'_>,
    svc: &Service,
    port: &Port,
    e: &mut E,
) {
    let nodes = c.world.nodes.len() as u64;
    let mut node = || e.below(nodes) as usize;
    let name = label(svc, port);
    let proto = port.protocol;
    let Some(cluster_ip) = svc.cluster_ip else {
        // Headless: clients talk to the pods directly, no rule applies.
        if let Some(ep) = svc.endpoints.first() {
            let n = node();
            c.push(
                n,
                FlowSource::Ip(client_pod(n).into()),
                ep.ip,
                port.endpoint_port,
                proto,
                format!("{name} pod IP (headless)"),
            );
        }
        return;
    };
    let n = node();
    c.push(
        n,
        FlowSource::Ip(client_pod(n).into()),
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
        FlowSource::Ip(client_pod(other).into()),
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP, pod routed from another node,"),
    );
    let n = node();
    c.push(
        n,
        FlowSource::Ip(CLIENTS[0].into()),
        cluster_ip,
        port.port,
        proto,
        format!("{name} cluster IP from outside,"),
    );
    if let Some(ep) = svc.endpoints.first() {
        let n = ep.node.unwrap_or_else(&mut node);
        c.push(
            n,
            FlowSource::Ip(ep.ip.into()),
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
            FlowSource::Ip(client_pod(n).into()),
            cluster_ip,
            port.port,
            p,
            format!("{name} cluster IP on the wrong protocol"),
        );
    }
    if let Some(np) = port.node_port {
        node_port(c, &name, np, proto, node());
    }
    for ip in &svc.external_ips {
        let n = node();
        c.push(
            n,
            FlowSource::Ip(CLIENTS[0].into()),
            *ip,
            port.port,
            proto,
            format!("{name} external IP"),
        );
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client_pod(n).into()),
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
    for (ip, _) in &svc.ingress {
        let allowed = CLIENTS.iter().find(|cl| {
            svc.source_ranges.is_empty() || svc.source_ranges.iter().any(|r| r.contains(*cl))
        });
        if let Some(cl) = allowed {
            let n = node();
            c.push(
                n,
                FlowSource::Ip((*cl).into()),
                *ip,
                port.port,
                proto,
                format!("{name} load-balancer IP"),
            );
        }
        let blocked = CLIENTS.iter().find(|cl| {
            !svc.source_ranges.is_empty() && !svc.source_ranges.iter().any(|r| r.contains(*cl))
        });
        if let Some(cl) = blocked {
            let n = node();
            c.push(
                n,
                FlowSource::Ip((*cl).into()),
                *ip,
                port.port,
                proto,
                format!("{name} load-balancer IP, outside the source ranges,"),
            );
        }
        let n = node();
        c.push(
            n,
            FlowSource::Ip(client_pod(n).into()),
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
        let addr = c.world.nodes[n].spec.addresses[0].addr();
        c.push(
            n,
            FlowSource::Ip(CLIENTS[0].into()),
            addr,
            hc,
            Protocol::Tcp,
            format!("{name} health check node port"),
        );
    }
}

fn node_port(c: &mut Candidates<'_>, name: &str, np: u16, proto: Protocol, n: usize) {
    let addresses: Vec<IpAddr> = c.world.nodes[n]
        .spec
        .addresses
        .iter()
        .map(|a| a.addr())
        .collect();
    let what = format!("{name} node port");
    c.push(
        n,
        FlowSource::Ip(CLIENTS[0].into()),
        addresses[0],
        np,
        proto,
        what.clone(),
    );
    if let Some(second) = addresses.get(1) {
        c.push(
            n,
            FlowSource::Ip(CLIENTS[1].into()),
            *second,
            np,
            proto,
            format!("{what} on the second address"),
        );
    }
    c.push(n, FlowSource::Node, addresses[0], np, proto, what.clone());
    c.push(
        n,
        FlowSource::Node,
        Ipv4Addr::LOCALHOST,
        np,
        proto,
        format!("{what} on localhost"),
    );
    c.push(
        n,
        FlowSource::Ip(client_pod(n).into()),
        addresses[0],
        np,
        proto,
        what.clone(),
    );
    if c.world.nodes.len() > 1 {
        // Addressed to another node but routed through this one.
        let other = c.world.nodes[(n + 1) % c.world.nodes.len()].spec.addresses[0].addr();
        c.push(
            n,
            FlowSource::Ip(CLIENTS[0].into()),
            other,
            np,
            proto,
            format!("{what} of another node"),
        );
    }
}

/// Addresses no service owns: nothing may touch these packets.
fn unowned<E: Entropy + ?Sized>(c: &mut Candidates<'_>, e: &mut E) {
    let n = e.below(c.world.nodes.len() as u64) as usize;
    c.push(
        n,
        FlowSource::Ip(CLIENTS[0].into()),
        Ipv4Addr::new(192, 0, 2, 200),
        80,
        Protocol::Tcp,
        "an address no service owns".to_string(),
    );
    c.push(
        n,
        FlowSource::Ip(client_pod(n).into()),
        Ipv4Addr::new(10, 96, 255, 255),
        443,
        Protocol::Tcp,
        "an unallocated cluster IP".to_string(),
    );
    let endpoint = c
        .world
        .services
        .iter()
        .find_map(|s| Some((s.endpoints.first()?, s.ports.first()?)));
    if let Some((ep, port)) = endpoint {
        c.push(
            n,
            FlowSource::Ip(client_pod(n).into()),
            ep.ip,
            port.endpoint_port,
            port.protocol,
            "a pod directly".to_string(),
        );
    }
    let addr = c.world.nodes[n].spec.addresses[0].addr();
    c.push(
        n,
        FlowSource::Ip(CLIENTS[0].into()),
        addr,
        22,
        Protocol::Tcp,
        "the node's ssh port".to_string(),
    );
}
