//! Spells a drawn [`World`] as the Kubernetes objects `kubectl get -o yaml`
//! would show for it: apiserver defaults filled in (cluster IPs, IP
//! families, traffic policies, affinity timeout), EndpointSlices labelled
//! and shaped as the EndpointSlice controller writes them: one set of
//! slices per IP family of the service, of that `addressType`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, Node as K8sNode,
    Service as K8sService, ServicePort, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as K8sEndpoint, EndpointConditions, EndpointHints, EndpointPort, EndpointSlice,
    ForZone,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cluster::{Condition, Kind, Node, Service, TargetPort, World};
use kpconform_iptables::model::{Family, Protocol};
use kpconform_suite::scenario::{Cluster, Object};

/// Slice name suffixes, as the controller's `generateName` makes them:
/// for the IPv4 slices, then for the IPv6 ones.
const SLICE_SUFFIXES: [[&str; 2]; 2] = [["x7k2p", "m4q9z"], ["h3v8d", "r6t1w"]];

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

impl World {
    /// The scenario cluster this world is: its settings, nodes and objects.
    pub(super) fn to_cluster(&self) -> Cluster {
        Cluster {
            cluster_cidrs: self.cluster_cidrs.clone(),
            masquerade_all: self.masquerade_all,
            masquerade_bit: self.masquerade_bit,
            node_port_addresses: self.node_port_addresses.clone(),
            nodes: self.nodes.iter().map(|n| n.spec.clone()).collect(),
            objects: objects(self),
        }
    }
}

/// Node objects first, then each Service followed by its slices.
fn objects(world: &World) -> Vec<Object> {
    let mut out = Vec::new();
    for node in &world.nodes {
        if let Some(o) = node_object(node) {
            out.push(Object::Node(Box::new(o)));
        }
    }
    for svc in &world.services {
        out.push(Object::Service(Box::new(service(svc))));
        for family in &svc.families {
            for slice in 0..svc.slices {
                out.push(Object::EndpointSlice(Box::new(endpoint_slice(
                    world, svc, *family, slice,
                ))));
            }
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn node_object(node: &Node) -> Option<K8sNode> {
    let zone = node.zone?;
    let name = node.spec.name.as_str();
    let mut pairs = vec![("kubernetes.io/hostname", name)];
    if let Some(z) = zone {
        pairs.push((ZONE_LABEL, z));
    }
    Some(K8sNode {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: labels(&pairs),
            ..Default::default()
        },
        ..Default::default()
    })
}

fn protocol_name(p: Protocol) -> String {
    match p {
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        _ => "TCP",
    }
    .to_string()
}

fn service(svc: &Service) -> K8sService {
    let external_name = svc.kind == Kind::ExternalName;
    let type_ = match svc.kind {
        Kind::ClusterIp | Kind::Headless => "ClusterIP",
        Kind::NodePort => "NodePort",
        Kind::LoadBalancer => "LoadBalancer",
        Kind::ExternalName => "ExternalName",
    };
    let cluster_ips: Option<Vec<String>> = match svc.kind {
        Kind::Headless => Some(vec!["None".to_string()]),
        Kind::ExternalName => None,
        _ => Some(svc.cluster_ips().iter().map(|ip| ip.to_string()).collect()),
    };
    let cluster_ip = cluster_ips.as_ref().and_then(|ips| ips.first().cloned());
    let ports = svc
        .ports
        .iter()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: i32::from(p.port),
            protocol: Some(protocol_name(p.protocol)),
            target_port: match &p.target {
                TargetPort::Absent => None,
                TargetPort::Number(n) => Some(IntOrString::Int(i32::from(*n))),
                TargetPort::Name(n) => Some(IntOrString::String(n.clone())),
            },
            node_port: p.node_port.map(i32::from),
            ..Default::default()
        })
        .collect();
    let policy = |local: bool| Some(if local { "Local" } else { "Cluster" }.to_string());
    let spec = ServiceSpec {
        type_: Some(type_.to_string()),
        cluster_ips,
        cluster_ip,
        ip_families: (!external_name).then(|| {
            svc.families
                .iter()
                .map(|f| f.as_str().to_string())
                .collect()
        }),
        ip_family_policy: (!external_name).then(|| svc.family_policy.to_string()),
        external_name: external_name.then(|| format!("{}.example.com", svc.name)),
        ports: Some(ports),
        selector: (!external_name)
            .then(|| labels(&[("app", &svc.name)]))
            .flatten(),
        session_affinity: (!external_name).then(|| {
            if svc.affinity.is_some() {
                "ClientIP"
            } else {
                "None"
            }
            .to_string()
        }),
        session_affinity_config: svc.affinity.flatten().map(|t| SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(t as i32),
            }),
        }),
        external_ips: (!svc.external_ips.is_empty())
            .then(|| svc.external_ips.iter().map(|ip| ip.to_string()).collect()),
        external_traffic_policy: svc.external_local.and_then(policy),
        internal_traffic_policy: (!external_name)
            .then_some(svc.internal_local)
            .and_then(policy),
        health_check_node_port: svc.health_check_node_port.map(i32::from),
        load_balancer_source_ranges: (!svc.source_ranges.is_empty())
            .then(|| svc.source_ranges.iter().map(|r| r.to_string()).collect()),
        allocate_load_balancer_node_ports: (svc.kind == Kind::LoadBalancer)
            .then_some(svc.lb_node_ports),
        ..Default::default()
    };
    let ingress: Vec<LoadBalancerIngress> = svc
        .ingress
        .iter()
        .map(|(ip, mode)| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: mode.map(str::to_string),
            ..Default::default()
        })
        .collect();
    let status = ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: (!ingress.is_empty()).then_some(ingress),
        }),
        ..Default::default()
    };
    let annotations = svc
        .topology
        .then(|| labels(&[("service.kubernetes.io/topology-mode", "Auto")]))
        .flatten();
    K8sService {
        metadata: ObjectMeta {
            name: Some(svc.name.clone()),
            namespace: Some(svc.namespace.to_string()),
            labels: labels(&[("app", &svc.name)]),
            annotations,
            ..Default::default()
        },
        spec: Some(spec),
        status: Some(status),
    }
}

fn conditions(c: Condition) -> Option<EndpointConditions> {
    let (ready, serving, terminating) = match c {
        Condition::Ready => (true, true, false),
        Condition::NotReady => (false, false, false),
        Condition::ServingTerminating => (false, true, true),
        Condition::Terminating => (false, false, true),
        Condition::Unset => return None,
    };
    Some(EndpointConditions {
        ready: Some(ready),
        serving: Some(serving),
        terminating: Some(terminating),
    })
}

fn endpoint_slice(world: &World, svc: &Service, family: Family, slice: usize) -> EndpointSlice {
    let endpoints = svc
        .endpoints
        .iter()
        .filter(|ep| ep.slice == slice)
        .map(|ep| {
            let node = ep.node.and_then(|n| world.nodes.get(n));
            K8sEndpoint {
                addresses: vec![ep.ip(family).to_string()],
                conditions: conditions(ep.condition),
                node_name: node.map(|n| n.spec.name.clone()),
                zone: node.and_then(|n| n.zone.flatten()).map(str::to_string),
                hints: ep.zone_hint.map(|z| EndpointHints {
                    for_zones: Some(vec![ForZone {
                        name: z.to_string(),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let ports = svc
        .ports
        .iter()
        .map(|p| EndpointPort {
            // The controller writes "" for an unnamed service port.
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(i32::from(p.endpoint_port)),
            protocol: Some(protocol_name(p.protocol)),
            ..Default::default()
        })
        .collect();
    let mut pairs = vec![
        ("kubernetes.io/service-name", svc.name.as_str()),
        (
            "endpointslice.kubernetes.io/managed-by",
            "endpointslice-controller.k8s.io",
        ),
    ];
    if svc.kind == Kind::Headless {
        pairs.push(("service.kubernetes.io/headless", ""));
    }
    EndpointSlice {
        address_type: family.as_str().to_string(),
        endpoints,
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{}",
                svc.name,
                SLICE_SUFFIXES[usize::from(family == Family::Ipv6)][slice % 2]
            )),
            namespace: Some(svc.namespace.to_string()),
            labels: labels(&pairs),
            ..Default::default()
        },
        ports: Some(ports),
    }
}
