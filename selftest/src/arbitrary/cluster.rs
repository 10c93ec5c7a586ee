//! The random cluster state: nodes, kube-proxy settings, Services and their
//! EndpointSlices, drawn so that the apiserver would accept every object.
//!
//! The state is first drawn as a small typed [`World`] that the probe writer
//! can read (which addresses a service answers on, which clients a source
//! range admits), then spelled as Kubernetes objects.
//!
//! The shape of the world (nodes, services, ports, endpoints, settings) is
//! drawn on an IPv4 address plan first, exactly as for an IPv4-only
//! cluster; then the cluster's IP families are drawn ([`Stack`], IPv4 the
//! first and simplest choice) and the plan is spelled in them: every IPv4
//! address of the plan has one IPv6 counterpart ([`six`], [`six_net`]) in
//! the address plan of the IPv6 recordings (pods `fd00:10:64:a::/64` per
//! node, services `fd00:10:96::/112`, nodes `fd00:192:168::10`, clients
//! `2001:db8:203::7`). A dual-stack cluster then draws, item by item,
//! which family (or both) each service, external IP, ingress IP, source
//! range and node-port CIDR gets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Entropy;
use kpconform_iptables::model::{Family, Protocol};
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

/// The IPv6 counterparts of the plan's networks (source ranges,
/// node-port CIDRs, the cluster CIDR); each keeps which clients, nodes and
/// pods it holds.
const SIX_NETS: [(&str, &str); 9] = [
    ("198.51.100.0/24", "2001:db8:198:51::/64"),
    ("203.0.113.128/25", "2001:db8:203::200/120"),
    ("192.168.0.0/24", "fd00:192:168::/64"),
    ("10.64.0.0/16", "fd00:10:64::/48"),
    ("203.0.113.7/32", "2001:db8:203::7/128"),
    ("0.0.0.0/0", "::/0"),
    ("127.0.0.0/8", "::1/128"),
    ("192.168.0.10/32", "fd00:192:168::10/128"),
    ("172.16.0.0/16", "fd00:172:16::/64"),
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
    /// The pod's IPv4 address in the plan; [`Endpoint::ip`] gives it per family.
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
    /// The IPv4 cluster IP of the plan; `None` for headless and
    /// ExternalName services. [`Service::cluster_ips`] spells it per family.
    pub(super) cluster_ip: Option<Ipv4Addr>,
    /// `ipFamilies`, primary first (empty for ExternalName services).
    pub(super) families: Vec<Family>,
    /// `ipFamilyPolicy`.
    pub(super) family_policy: &'static str,
    pub(super) ports: Vec<Port>,
    pub(super) external_ips: Vec<IpAddr>,
    /// Ingress IPs and their `ipMode` (`None`: not written).
    pub(super) ingress: Vec<(IpAddr, Option<&'static str>)>,
    pub(super) source_ranges: Vec<IpNet>,
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

/// The cluster's IP families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stack {
    Ipv4,
    Ipv6,
    Dual,
}

impl Stack {
    pub(super) fn families(self) -> Vec<Family> {
        match self {
            Stack::Ipv4 => vec![Family::Ipv4],
            Stack::Ipv6 => vec![Family::Ipv6],
            Stack::Dual => vec![Family::Ipv4, Family::Ipv6],
        }
    }
}

/// The drawn state, before it is spelled as objects.
#[derive(Debug, Clone)]
pub(super) struct World {
    pub(super) stack: Stack,
    pub(super) nodes: Vec<Node>,
    /// `--cluster-cidr`: none, or one per family of the cluster.
    pub(super) cluster_cidrs: Vec<IpNet>,
    pub(super) masquerade_all: bool,
    pub(super) masquerade_bit: u8,
    pub(super) node_port_addresses: Vec<IpNet>,
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

/// `n`'s decimal digits read as hex: 10 -> 0x10, so that
/// `192.168.0.10` becomes `fd00:192:168::10`.
fn decimal_as_hex(n: u8) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(0)
}

/// The IPv6 counterpart of an address of the IPv4 plan.
pub(super) fn six(ip: Ipv4Addr) -> Ipv6Addr {
    let [a, b, c, d] = ip.octets();
    let (c16, d16, dx) = (u16::from(c), u16::from(d), decimal_as_hex(d));
    let s = |p: [u16; 4], last: u16| Ipv6Addr::new(p[0], p[1], p[2], p[3], 0, 0, 0, last);
    match [a, b, c] {
        // fd00:10:96::/112: the cluster IPs, one for each IPv4 one.
        [10, 96, _] => s([0xfd00, 0x10, 0x96, 0], (c16 << 8) | d16),
        // fd00:10:64:a::/64 for node 0's pods, :b:: for node 1's, ...
        [10, 64, _] => s([0xfd00, 0x10, 0x64, 0xa + c16], dx),
        [192, 168, 0] => s([0xfd00, 0x192, 0x168, 0], dx),
        [172, 16, 0] => s([0xfd00, 0x172, 0x16, 0], dx),
        [192, 0, 2] => s([0x2001, 0xdb8, 0x2, 0], dx),
        [203, 0, 113] => s([0x2001, 0xdb8, 0x203, 0], dx),
        [198, 51, 100] => s([0x2001, 0xdb8, 0x198, 0x51], dx),
        [100, 64, 0] => s([0x2001, 0xdb8, 0x100, 0x64], dx),
        [127, _, _] => Ipv6Addr::LOCALHOST,
        // Not in the plan: an address of a network no other one is in.
        _ => Ipv6Addr::from(0xfd00_ffff_u128 << 96 | u128::from(u32::from(ip))),
    }
}

/// The IPv6 counterpart of a network of the plan ([`SIX_NETS`]).
pub(super) fn six_net(n: Ipv4Net) -> Ipv6Net {
    SIX_NETS
        .iter()
        .find(|(v4, _)| net(v4) == n)
        .and_then(|(_, v6)| v6.parse().ok())
        .unwrap_or_else(|| Ipv6Net::new(six(n.network()), 96 + n.prefix_len()).unwrap_or_default())
}

/// An address of the plan in `family`.
pub(super) fn in_family(ip: Ipv4Addr, family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(ip),
        Family::Ipv6 => IpAddr::V6(six(ip)),
    }
}

fn net_in_family(n: Ipv4Net, family: Family) -> IpNet {
    match family {
        Family::Ipv4 => IpNet::V4(n),
        Family::Ipv6 => IpNet::V6(six_net(n)),
    }
}

/// The families one item of a dual-stack cluster gets, drawn with
/// weights for (IPv4, IPv6, both); single-stack clusters draw nothing.
fn item_families<E: Entropy + ?Sized>(stack: Stack, weights: [u64; 3], e: &mut E) -> Vec<Family> {
    match stack {
        Stack::Ipv4 => vec![Family::Ipv4],
        Stack::Ipv6 => vec![Family::Ipv6],
        Stack::Dual => match e.weighted(&weights) {
            0 => vec![Family::Ipv4],
            1 => vec![Family::Ipv6],
            _ => vec![Family::Ipv4, Family::Ipv6],
        },
    }
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(v4) => v4,
        // The plan is drawn in IPv4 only.
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn v4_net(n: IpNet) -> Ipv4Net {
    match n {
        IpNet::V4(v4) => v4,
        IpNet::V6(_) => Ipv4Net::default(),
    }
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
        let cluster_cidr = (!e.chance(20)).then(|| IpNet::V4(net("10.64.0.0/16")));
        let masquerade_all = e.chance(15);
        let masquerade_bit = if e.chance(40) { e.below(32) as u8 } else { 14 };
        let npa = NODE_PORT_ADDRESSES[e.weighted(&[14, 1, 1, 1, 1, 1, 1])];
        let node_port_addresses = npa.iter().map(|c| IpNet::V4(net(c))).collect();
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
        let mut world = World {
            stack: Stack::Ipv4,
            nodes,
            cluster_cidrs: cluster_cidr.into_iter().collect(),
            masquerade_all,
            masquerade_bit,
            node_port_addresses,
            services,
        };
        // The families come last, so that a seed's shape stays what it was
        // before there were families, and a dry source stays IPv4-only.
        let stack = [Stack::Ipv4, Stack::Ipv6, Stack::Dual][e.weighted(&[5, 2, 3])];
        world.spell_in(stack, e);
        world
    }

    /// The families of the cluster, IPv4 first.
    pub(super) fn families(&self) -> Vec<Family> {
        self.stack.families()
    }

    /// Spells the IPv4 plan in `stack`'s families.
    fn spell_in<E: Entropy + ?Sized>(&mut self, stack: Stack, e: &mut E) {
        self.stack = stack;
        if stack == Stack::Ipv4 {
            // Only the rare PreferDualStack on a single-stack cluster.
            for svc in &mut self.services {
                svc.families = if svc.kind == Kind::ExternalName {
                    Vec::new()
                } else {
                    vec![Family::Ipv4]
                };
                svc.family_policy = single_stack_policy(e);
            }
            return;
        }
        let six_first = stack == Stack::Dual && e.chance(20);
        let spell_nets = |nets: &[IpNet], families: &[Family]| -> Vec<IpNet> {
            let mut out = Vec::new();
            for f in families {
                out.extend(nets.iter().map(|n| net_in_family(v4_net(*n), *f)));
            }
            out
        };
        let mut order = stack.families();
        if six_first {
            order.reverse();
        }
        self.cluster_cidrs = spell_nets(&self.cluster_cidrs, &order);
        for node in &mut self.nodes {
            let mut order = stack.families();
            if stack == Stack::Dual && e.chance(20) {
                order.reverse();
            }
            node.spec.addresses = spell_nets(&node.spec.addresses, &order);
        }
        let mut npa = Vec::new();
        for n in &self.node_port_addresses {
            for f in item_families(stack, [1, 1, 2], e) {
                npa.push(net_in_family(v4_net(*n), f));
            }
        }
        self.node_port_addresses = npa;
        for svc in &mut self.services {
            let (families, policy) = if svc.kind == Kind::ExternalName {
                (Vec::new(), "SingleStack")
            } else if stack == Stack::Ipv6 {
                (vec![Family::Ipv6], single_stack_policy(e))
            } else {
                use Family::{Ipv4, Ipv6};
                match e.weighted(&[3, 3, 2, 1, 2, 1]) {
                    0 => (vec![Ipv4], "SingleStack"),
                    1 => (vec![Ipv6], "SingleStack"),
                    2 => (vec![Ipv4, Ipv6], "PreferDualStack"),
                    3 => (vec![Ipv6, Ipv4], "PreferDualStack"),
                    4 => (vec![Ipv4, Ipv6], "RequireDualStack"),
                    _ => (vec![Ipv6, Ipv4], "RequireDualStack"),
                }
            };
            svc.families = families;
            svc.family_policy = policy;
            let mut external_ips = Vec::new();
            for ip in &svc.external_ips {
                for f in item_families(stack, [2, 2, 1], e) {
                    external_ips.push(in_family(v4(*ip), f));
                }
            }
            svc.external_ips = external_ips;
            let mut ingress = Vec::new();
            for (ip, mode) in &svc.ingress {
                for f in item_families(stack, [2, 2, 1], e) {
                    ingress.push((in_family(v4(*ip), f), *mode));
                }
            }
            svc.ingress = ingress;
            let mut ranges = Vec::new();
            for r in &svc.source_ranges {
                for f in item_families(stack, [2, 2, 1], e) {
                    ranges.push(net_in_family(v4_net(*r), f));
                }
            }
            svc.source_ranges = ranges;
        }
    }

    /// The subnet a pod on node `node` (or on no known node) gets its IP from.
    pub(super) fn pod_ip(node: Option<usize>, host: u32) -> Ipv4Addr {
        let subnet = node.map_or(200, |n| n as u32);
        ip_at(Ipv4Addr::new(10, 64, 0, 0), (subnet << 8) | (host & 0xff))
    }
}

/// A single-stack cluster's service: SingleStack, or now and then
/// PreferDualStack (which the apiserver gives the one family there is).
fn single_stack_policy<E: Entropy + ?Sized>(e: &mut E) -> &'static str {
    if e.chance(10) {
        "PreferDualStack"
    } else {
        "SingleStack"
    }
}

impl Service {
    /// The service's cluster IP of `family`, if it has one.
    pub(super) fn cluster_ip(&self, family: Family) -> Option<IpAddr> {
        let ip = self.cluster_ip?;
        self.families
            .contains(&family)
            .then(|| in_family(ip, family))
    }

    /// `clusterIPs`: one per family, primary first.
    pub(super) fn cluster_ips(&self) -> Vec<IpAddr> {
        self.families
            .iter()
            .filter_map(|f| self.cluster_ip(*f))
            .collect()
    }
}

impl Endpoint {
    /// The pod's address of `family`.
    pub(super) fn ip(&self, family: Family) -> IpAddr {
        in_family(self.ip, family)
    }
}

impl Node {
    /// The node's addresses of `family`, the node IP first.
    pub(super) fn addresses(&self, family: Family) -> Vec<IpAddr> {
        self.spec
            .addresses
            .iter()
            .map(IpNet::addr)
            .filter(|a| Family::of(*a) == family)
            .collect()
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
            external_ips.push(IpAddr::V4(Ipv4Addr::from(pools.external_ips.take(e))));
        }
        // A node's own IP as an external IP: legal, and kube-proxy handles it.
        if e.chance(10) {
            external_ips.push(IpAddr::V4(NODE_IP));
        }
    }
    let mut ingress = Vec::new();
    let mut source_ranges = Vec::new();
    if kind == Kind::LoadBalancer {
        for _ in 0..e.below(3) {
            let mode = [None, Some("VIP"), Some("Proxy")][e.weighted(&[5, 3, 2])];
            ingress.push((IpAddr::V4(Ipv4Addr::from(pools.ingress_ips.take(e))), mode));
        }
        if e.chance(30) {
            let count = e.range(1, 2);
            let mut picked = BTreeSet::new();
            for _ in 0..count {
                picked.insert(e.below(SOURCE_RANGES.len() as u64) as usize);
            }
            source_ranges = picked
                .into_iter()
                .map(|r| IpNet::V4(net(SOURCE_RANGES[r])))
                .collect();
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
        families: Vec::new(),
        family_policy: "SingleStack",
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
