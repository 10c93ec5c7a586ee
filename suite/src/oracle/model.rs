//! The cluster state as kube-proxy's service and endpoint trackers see it:
//! Services become service ports, EndpointSlices become each port's
//! endpoint list. Only this module reads the Kubernetes objects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::scenario::Object;
use kpconform_iptables::model::{Family, Protocol};

/// Services and slices with this label belong to another service proxy.
pub(crate) const LABEL_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
/// kube-proxy's informers also skip objects with this label.
pub(crate) const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The label tying an EndpointSlice to its Service.
pub(crate) const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The node label topology hints are compared with.
pub(crate) const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// Topology-aware routing annotation (1.27+), preferred over the next one.
pub(crate) const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
/// The deprecated topology annotation.
pub(crate) const ANNOTATION_TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// One port of a proxied Service.
#[derive(Debug, Clone)]
pub(crate) struct ServicePort {
    /// `namespace/name:port`, or `namespace/name` for an unnamed port.
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) cluster_ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) node_port: Option<u16>,
    pub(crate) external_ips: Vec<IpAddr>,
    /// VIP-mode load-balancer ingress IPs.
    pub(crate) lb_ips: Vec<IpAddr>,
    pub(crate) source_ranges: Vec<IpNet>,
    /// `externalTrafficPolicy: Local` on an externally accessible service.
    pub(crate) external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub(crate) internal_local: bool,
    /// `sessionAffinity: ClientIP`.
    pub(crate) affinity: bool,
    /// The topology annotation asks for topology-aware routing.
    pub(crate) topology: bool,
    pub(crate) health_check_node_port: Option<u16>,
    /// Endpoints for this port, deduplicated by `IP:port`, in object order.
    pub(crate) endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// kube-proxy's `ExternallyAccessible()` for a service port.
    pub(crate) fn externally_accessible(&self) -> bool {
        self.node_port.is_some() || !self.lb_ips.is_empty() || !self.external_ips.is_empty()
    }
}

/// One endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) node: Option<String>,
    /// Hosted on the node whose rules are predicted.
    pub(crate) local: bool,
    pub(crate) ready: bool,
    pub(crate) serving: bool,
    pub(crate) terminating: bool,
    pub(crate) zone_hints: BTreeSet<String>,
}

/// Key of a service port for endpoint matching: namespace, service, port
/// name, protocol (kube-proxy's `ServicePortName`).
type PortKey = (String, String, String, Protocol);

/// Reads the proxied service ports of `objects` as seen from `node` by
/// kube-proxy's proxier of `family`. Also returns the node's zone label,
/// from the Node object named `node`.
pub(crate) fn read(
    objects: &[Object],
    node: &str,
    family: Family,
) -> (Vec<ServicePort>, Option<String>) {
    let mut endpoints: BTreeMap<PortKey, Vec<Endpoint>> = BTreeMap::new();
    let mut zone = None;
    for object in objects {
        match object {
            Object::EndpointSlice(slice) => add_slice(slice, node, family, &mut endpoints),
            Object::Node(n) if n.metadata.name.as_deref() == Some(node) => {
                zone = n
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_ZONE))
                    .filter(|z| !z.is_empty())
                    .cloned();
            }
            _ => {}
        }
    }
    let mut ports = Vec::new();
    for object in objects {
        if let Object::Service(svc) = object {
            ports.extend(service_ports(svc, family, &endpoints));
        }
    }
    (ports, zone)
}

fn has_label(labels: Option<&BTreeMap<String, String>>, key: &str) -> bool {
    labels.is_some_and(|l| l.contains_key(key))
}

/// Objects without a namespace are in `default`, where kubectl puts them.
fn namespace(ns: Option<&String>) -> String {
    ns.filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| "default".to_string())
}

/// The Kubernetes protocol names (case-sensitive, as the API validates them);
/// an absent protocol is the API default, TCP.
fn protocol(p: Option<&String>) -> Option<Protocol> {
    match p.map(String::as_str) {
        None | Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        Some(_) => None,
    }
}

fn port_number(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

fn add_slice(
    slice: &EndpointSlice,
    node: &str,
    family: Family,
    out: &mut BTreeMap<PortKey, Vec<Endpoint>>,
) {
    let labels = slice.metadata.labels.as_ref();
    // kube-proxy's informers select objects without these labels, and the
    // dual-stack metaproxier hands a slice only to the proxier of its
    // `addressType` (FQDN slices to none).
    if has_label(labels, LABEL_PROXY_NAME)
        || has_label(labels, LABEL_HEADLESS)
        || slice.address_type != family.as_str()
    {
        return;
    }
    let Some(service) = labels
        .and_then(|l| l.get(LABEL_SERVICE_NAME))
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let ns = namespace(slice.metadata.namespace.as_ref());
    for port in slice.ports.iter().flatten() {
        let Some(number) = port.port.and_then(port_number) else {
            continue;
        };
        let Some(proto) = protocol(port.protocol.as_ref()) else {
            continue;
        };
        // The API defaults an absent port name to "".
        let name = port.name.clone().unwrap_or_default();
        let list = out
            .entry((ns.clone(), service.clone(), name, proto))
            .or_default();
        for ep in &slice.endpoints {
            // Only the first address counts, as in kube-proxy; a slice of
            // the family holds addresses of the family (API validation).
            let Some(ip) = ep
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .filter(|ip| Family::of(*ip) == family)
            else {
                continue;
            };
            let conditions = ep.conditions.clone().unwrap_or_default();
            let local = ep.node_name.as_deref() == Some(node);
            let endpoint = Endpoint {
                addr: SocketAddr::new(ip, number),
                node: ep.node_name.clone(),
                local,
                // Unset conditions: ready and serving default to true,
                // terminating to false (EndpointConditions API doc).
                ready: conditions.ready.unwrap_or(true),
                serving: conditions.serving.unwrap_or(true),
                terminating: conditions.terminating.unwrap_or(false),
                zone_hints: ep
                    .hints
                    .iter()
                    .flat_map(|h| h.for_zones.iter().flatten())
                    .map(|z| z.name.clone())
                    .collect(),
            };
            // Duplicates: the first one stays unless a later one is local
            // (kube-proxy's endpoint slice cache prefers a local copy).
            match list.iter_mut().find(|e| e.addr == endpoint.addr) {
                Some(existing) if local => *existing = endpoint,
                Some(_) => {}
                None => list.push(endpoint),
            }
        }
    }
}

/// The cluster IP of `family` the way kube-proxy picks it
/// (`GetClusterIPByFamily`): the entry of `clusterIPs` at the family's index
/// in `ipFamilies`, or, when `ipFamilies` is not set, `clusterIP` if it is of
/// the family.
fn cluster_ip(spec: &ServiceSpec, family: Family) -> Option<IpAddr> {
    let text = match spec.ip_families.as_deref() {
        Some(families) if !families.is_empty() => {
            let i = families.iter().position(|f| f == family.as_str())?;
            spec.cluster_ips.as_ref()?.get(i)?.clone()
        }
        _ => spec.cluster_ip.clone()?,
    };
    text.parse().ok().filter(|ip| Family::of(*ip) == family)
}

fn service_ports(
    svc: &Service,
    family: Family,
    endpoints: &BTreeMap<PortKey, Vec<Endpoint>>,
) -> Vec<ServicePort> {
    let meta = &svc.metadata;
    let labels = meta.labels.as_ref();
    if has_label(labels, LABEL_PROXY_NAME) || has_label(labels, LABEL_HEADLESS) {
        return Vec::new();
    }
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    // An absent type is the API default, ClusterIP.
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    // Headless (`None`) and unset cluster IPs fail to parse, as they should.
    let Some(cluster_ip) = cluster_ip(spec, family) else {
        return Vec::new();
    };
    if kind == "ExternalName" {
        return Vec::new();
    }
    let ns = namespace(meta.namespace.as_ref());
    let name = meta.name.clone().unwrap_or_default();
    // Each proxier keeps the external IPs, ingress IPs and source ranges of
    // its own family (kube-proxy's newBaseServiceInfo).
    let of_family = |ip: &IpAddr| Family::of(*ip) == family;
    let external_ips: Vec<IpAddr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .filter(of_family)
        .collect();
    let lb_ips: Vec<IpAddr> = svc
        .status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        // LoadBalancerIPMode: only VIP mode (or unset) is captured.
        .filter(|ing| matches!(ing.ip_mode.as_deref(), None | Some("VIP")))
        .filter_map(|ing| ing.ip.as_deref()?.parse().ok())
        .filter(of_family)
        .collect();
    let source_ranges: Vec<IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| r.trim().parse::<IpNet>().ok())
        .map(|r| r.trunc())
        .filter(|r| of_family(&r.addr()))
        .collect();
    let externally_accessible = kind == "LoadBalancer"
        || kind == "NodePort"
        || (kind == "ClusterIP" && !spec.external_ips.as_deref().unwrap_or_default().is_empty());
    let external_local =
        externally_accessible && spec.external_traffic_policy.as_deref() == Some("Local");
    let annotations = meta.annotations.as_ref();
    let hints = annotations
        .and_then(|a| {
            a.get(ANNOTATION_TOPOLOGY_MODE)
                .or_else(|| a.get(ANNOTATION_TOPOLOGY_HINTS))
        })
        .map(String::as_str)
        .unwrap_or("");
    let health_check_node_port = if kind == "LoadBalancer" && external_local {
        spec.health_check_node_port.and_then(port_number)
    } else {
        None
    };
    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let (Some(proto), Some(number)) =
            (protocol(port.protocol.as_ref()), port_number(port.port))
        else {
            continue;
        };
        let port_name = port.name.clone().unwrap_or_default();
        let key = (ns.clone(), name.clone(), port_name.clone(), proto);
        out.push(ServicePort {
            name: if port_name.is_empty() {
                format!("{ns}/{name}")
            } else {
                format!("{ns}/{name}:{port_name}")
            },
            protocol: proto,
            cluster_ip,
            port: number,
            node_port: port.node_port.and_then(port_number),
            external_ips: external_ips.clone(),
            lb_ips: lb_ips.clone(),
            source_ranges: source_ranges.clone(),
            external_local,
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            affinity: spec.session_affinity.as_deref() == Some("ClientIP"),
            topology: !matches!(hints, "" | "disabled" | "Disabled"),
            health_check_node_port,
            endpoints: endpoints.get(&key).cloned().unwrap_or_default(),
        });
    }
    out
}
