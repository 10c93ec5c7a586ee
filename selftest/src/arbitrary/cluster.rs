//! The random cluster state: nodes, kube-proxy settings, Services and their
//! EndpointSlices, drawn so that the apiserver would accept every object.
//!
//! The state is first drawn as a small typed [`World`] that the probe writer
//! can read (which addresses a service answers on, which clients a source
//! range admits), then spelled as Kubernetes objects.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use super::Entropy;
use kpconform_iptables::model::Protocol;
use kpconform_suite::scenario::NodeSpec;

pub(super) const NODE_NAMES: [&str; 3] = ["node-a", "node-b", "node-c"];
pub(super) const ZONES: [&str; 2] = ["zone-a", "zone-b"];
const SERVICE_NAMES: [&str; 6] = ["web", "api", "dns", "db", "cache", "metrics"];
const PORT_NAMES: [&str; 5] = ["http", "https", "dns", "grpc", "metrics"];
const TARGET_PORT_NAMES: [&str; 3] = ["web", "serve", "listen"];
const NODE_PORTS: (u16, u16) = (30000, 32767);
/// The first node's IP; node `i` has the `i`-th address after it.
pub(super) const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);

/// Clients outside the cluster; source ranges are drawn so that at least the
/// last one is outside all of them.
pub(super) const CLIENTS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(203, 0, 113, 7),
    Ipv4Addr::new(198, 51, 100, 23),
    Ipv4Addr::new(203, 0, 113, 200),
    Ipv4Addr::new(100, 64, 0, 9),
];

/// `loadBalancerSourceRanges` entries: client networks, the nodes' network,
/// the pod network, and single clients.
const SOURCE_RANGES: [&str; 6] = [
    "198.51.100.0/24",
    "203.0.113.128/25",
    "192.168.0.0/24",
    "10.64.0.0/16",
    "203.0.113.7/32",
    "0.0.0.0/0",
];

/// `--nodeport-addresses` choices, the first being kube-proxy's default.
const NODE_PORT_ADDRESSES: [&[&str]; 7] = [
    &[],
    &["192.168.0.0/24"],
    &["127.0.0.0/8"],
    &["192.168.0.0/24", "127.0.0.0/8"],
    &["192.168.0.10/32"],
    &["172.16.0.0/16"],
    &["0.0.0.0/0"],
];

/// What kind of Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    ClusterIp,
    NodePort,
    LoadBalancer,
    /// `clusterIP: None`
    Headless,
    ExternalName,
}

/// How a service port names its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TargetPort {
    /// Not written: the apiserver's default, the port itself.
    Absent,
    Number(u16),
    /// A container port name; the slice carries the number it resolved to.
    Name(String),
}

#[derive(Debug, Clone)]
pub(super) struct Port {
    pub(super) name: Option<String>,
    pub(super) port: u16,
    pub(super) protocol: Protocol,
    pub(super) target: TargetPort,
    /// The port the endpoints listen on (what the slice says).
    pub(super) endpoint_port: u16,
    pub(super) node_port: Option<u16>,
}

/// An endpoint's conditions: kube-proxy's four cases, and "unset" as a
/// hand-written slice leaves them (ready and serving by the API's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Condition {
    Ready,
    NotReady,
    ServingTerminating,
    Terminating,
    Unset,
}

#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) ip: Ipv4Addr,
    /// Index into the nodes; `None` for an endpoint without `nodeName`.
    pub(super) node: Option<usize>,
    pub(super) condition: Condition,
    pub(super) zone_hint: Option<&'static str>,
    /// Which of the service's slices lists it.
    pub(super) slice: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Service {
    pub(super) name: String,
    pub(super) namespace: &'static str,
    pub(super) kind: Kind,
    /// A LoadBalancer's `allocateLoadBalancerNodePorts`.
    pub(super) lb_node_ports: bool,
    /// `None` for headless and ExternalName services.
    pub(super) cluster_ip: Option<Ipv4Addr>,
    pub(super) ports: Vec<Port>,
    pub(super) external_ips: Vec<Ipv4Addr>,
    /// Ingress IPs and their `ipMode` (`None`: not written).
    pub(super) ingress: Vec<(Ipv4Addr, Option<&'static str>)>,
    pub(super) source_ranges: Vec<Ipv4Net>,
    /// `Some(local)` for externally accessible services (the apiserver sets it).
    pub(super) external_local: Option<bool>,
    pub(super) internal_local: bool,
    pub(super) health_check_node_port: Option<u16>,
    /// `Some(timeout)` for ClientIP affinity (`None` inside: not written).
    pub(super) affinity: Option<Option<u32>>,
    pub(super) topology: bool,
    /// How many EndpointSlices (0 when nothing publishes endpoints).
    pub(super) slices: usize,
    pub(super) endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) spec: NodeSpec,
    /// `None`: no Node object; `Some(None)`: a Node object without a zone.
    pub(super) zone: Option<Option<&'static str>>,
}

/// The drawn state, before it is spelled as objects.
#[derive(Debug, Clone)]
pub(super) struct World {
    pub(super) nodes: Vec<Node>,
    pub(super) cluster_cidr: Option<Ipv4Net>,
    pub(super) masquerade_all: bool,
    pub(super) masquerade_bit: u8,
    pub(super) node_port_addresses: Vec<Ipv4Net>,
    pub(super) services: Vec<Service>,
}

/// Unique values from a pool: a drawn candidate, or the next free one after it.
struct Pool {
    used: BTreeSet<u32>,
    first: u32,
    last: u32,
}

impl Pool {
    fn new(first: u32, last: u32) -> Pool {
        Pool {
            used: BTreeSet::new(),
            first,
            last,
        }
    }

    fn take<E: Entropy + ?Sized>(&mut self, e: &mut E) -> u32 {
        let size = u64::from(self.last - self.first) + 1;
        let start = self.first + e.below(size) as u32;
        // Walking on from a taken candidate keeps a dry source (always 0)
        // from looping; the pools are far larger than any case needs.
        let mut v = start;
        while self.used.contains(&v) {
            v = if v == self.last { self.first } else { v + 1 };
            if v == start {
                break;
            }
        }
        self.used.insert(v);
        v
    }
}

fn net(text: &str) -> Ipv4Net {
    // Only called on the literals above, which are valid.
    text.parse().unwrap_or_default()
}

fn ip_at(base: Ipv4Addr, offset: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(offset))
}

/// Everything unique across the cluster.
struct Pools {
    cluster_ips: Pool,
    node_ports: Pool,
    external_ips: Pool,
    ingress_ips: Pool,
    /// Next host number per pod subnet (node index, or the last for "no node").
    pod_hosts: Vec<u32>,
}

impl World {
    pub(super) fn generate<E: Entropy + ?Sized>(e: &mut E) -> World {
        let node_count = 1 + e.below(3) as usize;
        let nodes = (0..node_count).map(|i| node(i, e)).collect();
        let cluster_cidr = (!e.chance(20)).then(|| net("10.64.0.0/16"));
        let masquerade_all = e.chance(15);
        let masquerade_bit = if e.chance(40) { e.below(32) as u8 } else { 14 };
        let npa = NODE_PORT_ADDRESSES[e.weighted(&[14, 1, 1, 1, 1, 1, 1])];
        let node_port_addresses = npa.iter().map(|c| net(c)).collect();
        let mut pools = Pools {
            cluster_ips: Pool::new(
                u32::from(Ipv4Addr::new(10, 96, 0, 1)),
                u32::from(Ipv4Addr::new(10, 96, 255, 254)),
            ),
            node_ports: Pool::new(u32::from(NODE_PORTS.0), u32::from(NODE_PORTS.1)),
            external_ips: Pool::new(
                u32::from(Ipv4Addr::new(192, 0, 2, 10)),
                u32::from(Ipv4Addr::new(192, 0, 2, 99)),
            ),
            ingress_ips: Pool::new(
                u32::from(Ipv4Addr::new(203, 0, 113, 32)),
                u32::from(Ipv4Addr::new(203, 0, 113, 127)),
            ),
            pod_hosts: vec![2; node_count + 1],
        };
        let service_count = 1 + e.below(SERVICE_NAMES.len() as u64) as usize;
        let services = (0..service_count)
            .map(|i| service(i, node_count, &mut pools, e))
            .collect();
        World {
            nodes,
            cluster_cidr,
            masquerade_all,
            masquerade_bit,
            node_port_addresses,
            services,
        }
    }

    /// The subnet a pod on node `node` (or on no known node) gets its IP from.
    pub(super) fn pod_ip(node: Option<usize>, host: u32) -> Ipv4Addr {
        let subnet = node.map_or(200, |n| n as u32);
        ip_at(Ipv4Addr::new(10, 64, 0, 0), (subnet << 8) | (host & 0xff))
    }
}

fn node<E: Entropy + ?Sized>(i: usize, e: &mut E) -> Node {
    let mut addresses = vec![Ipv4Net::from(ip_at(NODE_IP, i as u32))];
    if e.chance(15) {
        addresses.push(Ipv4Net::from(ip_at(
            Ipv4Addr::new(172, 16, 0, 10),
            i as u32,
        )));
    }
    let zone = match e.weighted(&[4, 1, 4]) {
        0 => None,
        1 => Some(None),
        _ => Some(Some(ZONES[e.below(2) as usize])),
    };
    Node {
        spec: NodeSpec {
            name: NODE_NAMES[i].to_string(),
            addresses: addresses.into_iter().map(IpNet::V4).collect(),
        },
        zone,
    }
}

fn service<E: Entropy + ?Sized>(
    i: usize,
    node_count: usize,
    pools: &mut Pools,
    e: &mut E,
) -> Service {
    let kind = match e.weighted(&[4, 3, 3, 1, 1]) {
        0 => Kind::ClusterIp,
        1 => Kind::NodePort,
        2 => Kind::LoadBalancer,
        3 => Kind::Headless,
        _ => Kind::ExternalName,
    };
    let namespace = ["default", "shop"][e.below(2) as usize];
    let cluster_ip = matches!(kind, Kind::ClusterIp | Kind::NodePort | Kind::LoadBalancer)
        .then(|| Ipv4Addr::from(pools.cluster_ips.take(e)));
    let allocate_node_ports = match kind {
        Kind::NodePort => true,
        Kind::LoadBalancer => !e.chance(15),
        _ => false,
    };
    let ports = ports(kind, allocate_node_ports, pools, e);
    let mut external_ips = Vec::new();
    if cluster_ip.is_some() && e.chance(20) {
        for _ in 0..e.range(1, 2) {
            external_ips.push(Ipv4Addr::from(pools.external_ips.take(e)));
        }
        // A node's own IP as an external IP: legal, and kube-proxy handles it.
        if e.chance(10) {
            external_ips.push(NODE_IP);
        }
    }
    let mut ingress = Vec::new();
    let mut source_ranges = Vec::new();
    if kind == Kind::LoadBalancer {
        for _ in 0..e.below(3) {
            let mode = [None, Some("VIP"), Some("Proxy")][e.weighted(&[5, 3, 2])];
            ingress.push((Ipv4Addr::from(pools.ingress_ips.take(e)), mode));
        }
        if e.chance(30) {
            let count = e.range(1, 2);
            let mut picked = BTreeSet::new();
            for _ in 0..count {
                picked.insert(e.below(SOURCE_RANGES.len() as u64) as usize);
            }
            source_ranges = picked.into_iter().map(|r| net(SOURCE_RANGES[r])).collect();
        }
    }
    let externally_accessible =
        matches!(kind, Kind::NodePort | Kind::LoadBalancer) || !external_ips.is_empty();
    let external_local = externally_accessible.then(|| e.chance(50));
    let health_check_node_port = (kind == Kind::LoadBalancer && external_local == Some(true))
        .then(|| pools.node_ports.take(e) as u16);
    let internal_local = kind != Kind::ExternalName && e.chance(20);
    let affinity = (kind != Kind::ExternalName && e.chance(20))
        .then(|| [Some(10800), Some(600), Some(60), None][e.weighted(&[3, 2, 1, 1])]);
    let topology = cluster_ip.is_some() && e.chance(15);
    let (slices, endpoints) = if kind == Kind::ExternalName || e.chance(8) {
        (0, Vec::new())
    } else {
        endpoints(node_count, topology, pools, e)
    };
    Service {
        name: SERVICE_NAMES[i].to_string(),
        namespace,
        kind,
        lb_node_ports: allocate_node_ports,
        cluster_ip,
        ports,
        external_ips,
        ingress,
        source_ranges,
        external_local,
        internal_local,
        health_check_node_port,
        affinity,
        topology,
        slices,
        endpoints,
    }
}

fn ports<E: Entropy + ?Sized>(
    kind: Kind,
    node_ports: bool,
    pools: &mut Pools,
    e: &mut E,
) -> Vec<Port> {
    let count = if kind == Kind::ExternalName && e.chance(50) {
        0
    } else {
        1 + e.below(3) as usize
    };
    let mut out: Vec<Port> = Vec::new();
    let mut names = BTreeSet::new();
    while out.len() < count {
        let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][e.weighted(&[6, 3, 1])];
        let port = if e.chance(15) {
            e.range(1, 65535) as u16
        } else {
            [80, 443, 53, 8080, 9090, 5432][e.below(6) as usize]
        };
        // (port, protocol) is unique in a Service; a clash is redrawn on the
        // next free port so that a dry source still terminates.
        let mut port = port;
        while out.iter().any(|p| p.port == port && p.protocol == protocol) {
            port = port.checked_add(1).unwrap_or(1);
        }
        // A single port may be unnamed; several must all be named, uniquely.
        let name = if count == 1 && !e.chance(50) {
            None
        } else {
            let mut n = e.below(PORT_NAMES.len() as u64) as usize;
            while names.contains(&n) {
                n = (n + 1) % PORT_NAMES.len();
            }
            names.insert(n);
            Some(PORT_NAMES[n].to_string())
        };
        let (target, endpoint_port) = match e.weighted(&[3, 4, 2]) {
            0 => (TargetPort::Absent, port),
            1 => {
                let t = if e.chance(20) {
                    e.range(1, 65535) as u16
                } else {
                    8000 + port % 1000
                };
                (TargetPort::Number(t), t)
            }
            _ => {
                let name = TARGET_PORT_NAMES[e.below(3) as usize].to_string();
                (TargetPort::Name(name), e.range(1024, 9999) as u16)
            }
        };
        let node_port = node_ports.then(|| pools.node_ports.take(e) as u16);
        out.push(Port {
            name,
            port,
            protocol,
            target,
            endpoint_port,
            node_port,
        });
    }
    out
}

fn endpoints<E: Entropy + ?Sized>(
    node_count: usize,
    topology: bool,
    pools: &mut Pools,
    e: &mut E,
) -> (usize, Vec<Endpoint>) {
    let slices = 1 + e.below(2) as usize;
    let count = if e.chance(5) {
        e.range(10, 40)
    } else {
        e.below(7)
    } as usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let node = if e.chance(10) {
            None
        } else {
            Some(e.below(node_count as u64) as usize)
        };
        let subnet = node.unwrap_or(node_count);
        let host = pools.pod_hosts[subnet];
        pools.pod_hosts[subnet] += 1;
        let condition = [
            Condition::Ready,
            Condition::NotReady,
            Condition::ServingTerminating,
            Condition::Terminating,
            Condition::Unset,
        ][e.weighted(&[13, 2, 2, 2, 1])];
        let zone_hint = (topology && !e.chance(15)).then(|| ZONES[e.below(2) as usize]);
        out.push(Endpoint {
            ip: World::pod_ip(node, host),
            node,
            condition,
            zone_hint,
            slice: e.below(slices as u64) as usize,
        });
    }
    (slices, out)
}
