//! Production-shaped cluster states of any size, for benchmarks and scale
//! tests: what a big cluster looks like to kube-proxy on one node.
//!
//! [`Cluster::new`] is deterministic in its size alone, so a benchmark at
//! 10,000 Services measures the same node on every machine and every run.
//! The shape follows what large clusters carry:
//!
//! - every Service has a ClusterIP and an `http` port (80 → 8080/TCP);
//!   one in seven also serves `dns` (53/UDP);
//! - one in fifty is external: alternately a NodePort Service (policy
//!   Cluster) and a LoadBalancer Service with `externalTrafficPolicy: Local`,
//!   an ingress IP and a health-check node port (Local policies are where
//!   kube-proxy's rules branch the most);
//! - most Services have 2 to 10 ready endpoints spread over three nodes;
//!   one in a thousand is large, with 1,000 endpoints;
//! - pods live in their node's podCIDR, as the IPAM of a real cluster puts
//!   them, so `audit` finds the pod network from the Nodes.
//!
//! Two renderings of the same state: [`Cluster::generator_input`] (what a
//! generator reads) and [`Cluster::kubectl_list`] (what
//! `kubectl get svc,endpointslices,nodes -A -o yaml` prints, for `audit`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The node the rules are generated for.
pub const NODE: &str = "node-a";

/// The nodes of the cluster: name, node IP, podCIDR base (each a /14).
const NODES: [(&str, Ipv4Addr, Ipv4Addr); 3] = [
    (
        NODE,
        Ipv4Addr::new(192, 168, 0, 10),
        Ipv4Addr::new(10, 64, 0, 0),
    ),
    (
        "node-b",
        Ipv4Addr::new(192, 168, 0, 11),
        Ipv4Addr::new(10, 68, 0, 0),
    ),
    (
        "node-c",
        Ipv4Addr::new(192, 168, 0, 12),
        Ipv4Addr::new(10, 72, 0, 0),
    ),
];

/// The cluster CIDR: the three nodes' podCIDRs are inside it.
pub const CLUSTER_CIDR: &str = "10.64.0.0/12";

/// The first port of the default NodePort range, and the range's size.
const NODE_PORT_BASE: u32 = 30_000;
const NODE_PORTS: u32 = 2_768;

/// A cluster of a given number of Services, rendered as YAML.
#[derive(Debug, Clone)]
pub struct Cluster {
    services: usize,
    /// The Service and EndpointSlice objects, as a YAML sequence at
    /// column 0 (`- apiVersion: ...`).
    objects: String,
    endpoints: usize,
}

impl Cluster {
    /// The cluster with `services` Services (and one EndpointSlice each).
    pub fn new(services: usize) -> Cluster {
        let mut objects = String::with_capacity(services * 700);
        let mut pods_per_node = [0u32; NODES.len()];
        let mut next_node_port = NODE_PORT_BASE;
        let mut endpoints_total = 0;
        for i in 0..services {
            let name = format!("svc-{i}");
            let namespace = format!("ns-{}", i % 50);
            let cluster_ip = offset(Ipv4Addr::new(10, 96, 0, 0), i as u32 + 1);
            let dns = i % 7 == 3;
            // External Services need one node port (NodePort) or two
            // (LoadBalancer with Local policy: the health check too);
            // beyond the range's size, Services stay ClusterIP.
            let external = i % 50 == 25
                && next_node_port + 2 * (1 + dns as u32) <= NODE_PORT_BASE + NODE_PORTS;
            let load_balancer = external && (i / 50) % 2 == 1;
            let mut take_port = || {
                let p = next_node_port;
                next_node_port += 1;
                p
            };
            let ty = match (external, load_balancer) {
                (false, _) => "ClusterIP",
                (true, false) => "NodePort",
                (true, true) => "LoadBalancer",
            };
            let _ = write!(
                objects,
                "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {name}, namespace: {namespace}}}\n  spec:\n    type: {ty}\n    clusterIP: {cluster_ip}\n    clusterIPs: [{cluster_ip}]\n"
            );
            if load_balancer {
                let _ = write!(
                    objects,
                    "    externalTrafficPolicy: Local\n    healthCheckNodePort: {}\n",
                    take_port()
                );
            }
            objects.push_str("    ports:\n");
            let mut ports = vec![("http", 80, 8080, "TCP")];
            if dns {
                ports.push(("dns", 53, 53, "UDP"));
            }
            for (port_name, port, target, protocol) in &ports {
                let _ = write!(
                    objects,
                    "    - {{name: {port_name}, port: {port}, targetPort: {target}, protocol: {protocol}"
                );
                if external {
                    let _ = write!(objects, ", nodePort: {}", take_port());
                }
                objects.push_str("}\n");
            }
            if load_balancer {
                let ingress = offset(Ipv4Addr::new(172, 16, 0, 0), i as u32 / 50 + 1);
                let _ = write!(
                    objects,
                    "  status:\n    loadBalancer:\n      ingress: [{{ip: {ingress}}}]\n"
                );
            }
            let _ = write!(
                objects,
                "- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata:\n    name: {name}-abcde\n    namespace: {namespace}\n    labels: {{kubernetes.io/service-name: {name}}}\n  addressType: IPv4\n  ports:\n"
            );
            for (port_name, _, target, protocol) in &ports {
                let _ = writeln!(
                    objects,
                    "  - {{name: {port_name}, port: {target}, protocol: {protocol}}}"
                );
            }
            objects.push_str("  endpoints:\n");
            let count = if i % 1000 == 999 { 1000 } else { 2 + i % 9 };
            for e in 0..count {
                let node = (i + e) % NODES.len();
                pods_per_node[node] += 1;
                let (node_name, _, pod_base) = NODES[node];
                let ip = offset(pod_base, pods_per_node[node]);
                let _ = writeln!(
                    objects,
                    "  - {{addresses: [{ip}], nodeName: {node_name}, conditions: {{ready: true, serving: true, terminating: false}}}}"
                );
            }
            endpoints_total += count;
        }
        Cluster {
            services,
            objects,
            endpoints: endpoints_total,
        }
    }

    /// How many Services.
    pub fn services(&self) -> usize {
        self.services
    }

    /// How many endpoints, over all EndpointSlices.
    pub fn endpoints(&self) -> usize {
        self.endpoints
    }

    /// This node's IP.
    pub fn node_ip(&self) -> Ipv4Addr {
        NODES[0].1
    }

    /// The generator input for [`NODE`] (kube-proxy's defaults otherwise).
    pub fn generator_input(&self) -> String {
        let mut y = String::with_capacity(self.objects.len() + 200);
        let _ = write!(
            y,
            "node:\n  name: {NODE}\n  addresses: [{}]\n  clusterCIDR: {CLUSTER_CIDR}\nobjects:\n",
            self.node_ip()
        );
        y.push_str(&self.objects);
        y
    }

    /// The same state as `kubectl get svc,endpointslices,nodes -A -o yaml`
    /// prints it: a `List` whose items are the objects and the Nodes.
    pub fn kubectl_list(&self) -> String {
        let mut y = String::with_capacity(self.objects.len() * 11 / 10 + 1000);
        y.push_str("apiVersion: v1\nkind: List\nitems:\n");
        for line in self.objects.lines() {
            y.push_str("  ");
            y.push_str(line);
            y.push('\n');
        }
        for (name, ip, pod_base) in NODES {
            let _ = write!(
                y,
                "  - apiVersion: v1\n    kind: Node\n    metadata: {{name: {name}}}\n    spec: {{podCIDR: {pod_base}/14, podCIDRs: [{pod_base}/14]}}\n    status:\n      addresses: [{{type: InternalIP, address: {ip}}}]\n"
            );
        }
        y
    }
}

/// `base + n` as an IPv4 address.
fn offset(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_iptables::SourceFile;
    use kpconform_suite::scenario::GeneratorInput;

    #[test]
    fn the_shape_has_every_kind_of_service_and_valid_objects() {
        let cluster = Cluster::new(2_000);
        let input = cluster.generator_input();
        for needle in [
            "type: NodePort",
            "type: LoadBalancer",
            "externalTrafficPolicy: Local",
            "protocol: UDP",
        ] {
            assert!(input.contains(needle), "no `{needle}` in the cluster");
        }
        // Two large services (999 and 1999) of 1,000 endpoints; the rest 2-10.
        assert!(cluster.endpoints() > 2_000 + 1_998 * 2);
        let read = GeneratorInput::from_yaml(&SourceFile::new("cluster.yaml", input))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.node.name, NODE);
    }

    #[test]
    fn node_ports_stay_in_range_and_unique_at_any_size() {
        let input = Cluster::new(200_000).generator_input();
        let mut seen = std::collections::BTreeSet::new();
        for part in input.split("odePort: ").skip(1) {
            let port: u32 = part[..5].parse().expect("a port");
            assert!((NODE_PORT_BASE..NODE_PORT_BASE + NODE_PORTS).contains(&port));
            assert!(seen.insert(port), "node port {port} given twice");
        }
        assert!(seen.len() > 2_000, "the range is used, not avoided");
    }
}
