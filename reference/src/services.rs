//! Service ports as kube-proxy's proxier of one family sees them (its
//! `svcPortMap`).
//!
//! One [`ServicePort`] per port of every proxied Service, with the Service's
//! settings already filtered to the proxier's family and resolved to what the rule writer
//! needs (traffic policies, LB VIPs without `ipMode: Proxy`, affinity timeout…).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use kpconform_iptables::model::Family;

use crate::addr::{parse_cidr, parse_ip};
use crate::rule::Protocol;

/// Labels that make kube-proxy's informers ignore a Service or EndpointSlice.
pub(crate) const IGNORED_LABELS: [&str; 2] = [
    "service.kubernetes.io/service-proxy-name",
    "service.kubernetes.io/headless",
];

/// kube-apiserver's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

/// Identifies the endpoints of a service port: kube-proxy's `ServicePortName`
/// (namespace, service, port name) plus the protocol, which slices must match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PortKey {
    pub(crate) namespace: String,
    pub(crate) service: String,
    pub(crate) port_name: String,
    pub(crate) protocol: Protocol,
}

impl PortKey {
    /// `namespace/name:port`, or `namespace/name` for an unnamed port.
    pub(crate) fn display_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.service)
        } else {
            format!("{}/{}:{}", self.namespace, self.service, self.port_name)
        }
    }
}

/// One port of a proxied Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServicePort {
    /// Which endpoints belong to it.
    pub(crate) key: PortKey,
    /// `namespace/name[:port]`, used in comments and chain hashes.
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    /// The cluster IP of the proxier's family.
    pub(crate) cluster_ip: IpAddr,
    pub(crate) port: u16,
    /// 0 when the port has none.
    pub(crate) node_port: u16,
    /// External IPs of the proxier's family.
    pub(crate) external_ips: Vec<IpAddr>,
    /// Load-balancer ingress IPs of the proxier's family, in VIP mode.
    pub(crate) lb_vips: Vec<IpAddr>,
    /// loadBalancerSourceRanges of the proxier's family.
    pub(crate) source_ranges: Vec<IpNet>,
    /// 0 when the Service needs no health check.
    pub(crate) health_check_node_port: u16,
    /// `Some(timeout)` with ClientIP session affinity.
    pub(crate) sticky_seconds: Option<u32>,
    pub(crate) external_policy_local: bool,
    pub(crate) internal_policy_local: bool,
    /// The topology hints annotation allows topology-aware routing.
    pub(crate) topology_hints: bool,
}

impl ServicePort {
    /// Reachable from outside through a node port, external IP or LB IP.
    pub(crate) fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.lb_vips.is_empty() || !self.external_ips.is_empty()
    }

    /// Needs the cluster-wide endpoint set (Cluster internal policy, or any
    /// external access: Local external policy still short-circuits pod traffic).
    pub(crate) fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }

    /// Needs this node's endpoint set.
    pub(crate) fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }
}

/// All service ports of `services` that the proxier of `family` proxies,
/// sorted by key.
pub(crate) fn service_ports<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    family: Family,
) -> Vec<ServicePort> {
    // A later object with the same namespace/name replaces the earlier one,
    // as an informer update would: keyed by service first (one lookup per
    // service, not a scan of every port so far), then by port.
    let mut by_service: BTreeMap<(String, String), Vec<ServicePort>> = BTreeMap::new();
    for service in services {
        let ns_name = (
            namespace_of(service),
            service.metadata.name.clone().unwrap_or_default(),
        );
        by_service.insert(ns_name, ports_of(service, family));
    }
    let mut by_key: BTreeMap<PortKey, ServicePort> = BTreeMap::new();
    for port in by_service.into_values().flatten() {
        by_key.insert(port.key.clone(), port);
    }
    by_key.into_values().collect()
}

/// The namespace of an object; kubectl always prints one, `default` otherwise.
pub(crate) fn namespace_of_meta(ns: &Option<String>) -> String {
    namespace_str(ns).to_string()
}

/// [`namespace_of_meta`], borrowed.
pub(crate) fn namespace_str(ns: &Option<String>) -> &str {
    match ns.as_deref() {
        Some(ns) if !ns.is_empty() => ns,
        _ => "default",
    }
}

fn namespace_of(service: &Service) -> String {
    namespace_of_meta(&service.metadata.namespace)
}

/// Whether a label set carries one of [`IGNORED_LABELS`].
pub(crate) fn has_ignored_label(labels: &Option<BTreeMap<String, String>>) -> bool {
    labels
        .as_ref()
        .is_some_and(|l| IGNORED_LABELS.iter().any(|k| l.contains_key(*k)))
}

/// kube-proxy's `GetClusterIPByFamily`, tolerant of inputs that give
/// `ipFamilies` without `clusterIPs` (the apiserver always fills both).
fn cluster_ip_of(service: &Service, family: Family) -> Option<IpAddr> {
    let spec = service.spec.as_ref()?;
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let families = spec.ip_families.as_deref().unwrap_or(&[]);
    if families.is_empty() {
        return parse_ip(cluster_ip, family);
    }
    let index = families.iter().position(|f| f == family.as_str())?;
    match spec.cluster_ips.as_deref() {
        Some(ips) if !ips.is_empty() => parse_ip(ips.get(index)?, family),
        _ => parse_ip(cluster_ip, family),
    }
}

fn ports_of(service: &Service, family: Family) -> Vec<ServicePort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    if has_ignored_label(&service.metadata.labels) {
        return Vec::new();
    }
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    let cluster_ip_text = spec.cluster_ip.as_deref().unwrap_or("");
    if cluster_ip_text.is_empty() || cluster_ip_text == "None" || type_ == "ExternalName" {
        return Vec::new();
    }
    let Some(cluster_ip) = cluster_ip_of(service, family) else {
        return Vec::new();
    };
    let raw_external_ips = spec.external_ips.as_deref().unwrap_or(&[]);
    // apiservice.ExternalPolicyLocal: only meaningful for externally reachable types.
    let externally_typed =
        type_ == "LoadBalancer" || type_ == "NodePort" || !raw_external_ips.is_empty();
    let external_policy_local =
        externally_typed && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let sticky_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let external_ips: Vec<IpAddr> = raw_external_ips
        .iter()
        .filter_map(|ip| parse_ip(ip, family))
        .collect();
    // Validation once allowed whitespace around source ranges; kube-proxy trims it.
    let source_ranges: Vec<IpNet> = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter_map(|r| parse_cidr(r.trim(), family))
        .collect();
    let lb_vips: Vec<IpAddr> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or(&[])
        .iter()
        // ipMode Proxy: the LB rewrites the destination itself, so kube-proxy
        // must not capture its IP (LoadBalancerIPMode is on in v1.30).
        .filter(|ing| ing.ip_mode.as_deref().is_none_or(|m| m == "VIP"))
        .filter_map(|ing| parse_ip(ing.ip.as_deref()?, family))
        .collect();
    let health_check_node_port = if type_ == "LoadBalancer" && external_policy_local {
        spec.health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0)
    } else {
        0
    };
    let annotations = service.metadata.annotations.as_ref();
    let hints = annotations
        .and_then(|a| a.get("service.kubernetes.io/topology-aware-hints"))
        .or_else(|| annotations.and_then(|a| a.get("service.kubernetes.io/topology-mode")))
        .map(String::as_str)
        .unwrap_or("");
    let topology_hints = !matches!(hints, "" | "disabled" | "Disabled");

    let namespace = namespace_of(service);
    let service_name = service.metadata.name.clone().unwrap_or_default();
    spec.ports
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| {
            let protocol = Protocol::from_k8s(p.protocol.as_deref().unwrap_or("TCP"))?;
            let port = u16::try_from(p.port).ok().filter(|p| *p != 0)?;
            let key = PortKey {
                namespace: namespace.clone(),
                service: service_name.clone(),
                port_name: p.name.clone().unwrap_or_default(),
                protocol,
            };
            Some(ServicePort {
                name: key.display_name(),
                key,
                protocol,
                cluster_ip,
                port,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
                external_ips: external_ips.clone(),
                lb_vips: lb_vips.clone(),
                source_ranges: source_ranges.clone(),
                health_check_node_port,
                sticky_seconds,
                external_policy_local,
                internal_policy_local,
                topology_hints,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, ServicePort as K8sPort,
        ServiceSpec, ServiceStatus, SessionAffinityConfig,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn service_ports_v4<const N: usize>(services: [&Service; N]) -> Vec<ServicePort> {
        service_ports(services, Family::Ipv4)
    }

    fn service(spec: ServiceSpec) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    fn port(name: &str, port: i32, protocol: &str) -> K8sPort {
        K8sPort {
            name: Some(name.into()),
            port,
            protocol: Some(protocol.into()),
            ..Default::default()
        }
    }

    fn base() -> ServiceSpec {
        ServiceSpec {
            cluster_ip: Some("10.96.12.34".into()),
            ports: Some(vec![port("http", 80, "TCP")]),
            ..Default::default()
        }
    }

    #[test]
    fn one_service_port_per_port_with_names() {
        let mut spec = base();
        spec.ports = Some(vec![
            port("http", 80, "TCP"),
            port("dns", 53, "UDP"),
            port("", 9, "SCTP"),
        ]);
        let ports = service_ports_v4([&service(spec)]);
        let names: Vec<_> = ports
            .iter()
            .map(|p| (p.name.as_str(), p.protocol))
            .collect();
        assert_eq!(
            names,
            [
                ("shop/web", Protocol::Sctp),
                ("shop/web:dns", Protocol::Udp),
                ("shop/web:http", Protocol::Tcp)
            ]
        );
    }

    #[test]
    fn skipped_services() {
        let mut headless = base();
        headless.cluster_ip = Some("None".into());
        let mut external_name = base();
        external_name.type_ = Some("ExternalName".into());
        let mut ipv6 = base();
        ipv6.cluster_ip = Some("fd00::1".into());
        ipv6.ip_families = Some(vec!["IPv6".into()]);
        ipv6.cluster_ips = Some(vec!["fd00::1".into()]);
        for spec in [headless, external_name, ipv6] {
            assert!(service_ports_v4([&service(spec)]).is_empty());
        }
        let mut labelled = service(base());
        labelled.metadata.labels = Some(
            [(
                "service.kubernetes.io/service-proxy-name".to_string(),
                "other".to_string(),
            )]
            .into(),
        );
        assert!(service_ports_v4([&labelled]).is_empty());
    }

    #[test]
    fn dual_stack_uses_the_ipv4_cluster_ip() {
        let mut spec = base();
        spec.cluster_ip = Some("fd00::5".into());
        spec.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        spec.cluster_ips = Some(vec!["fd00::5".into(), "10.96.0.7".into()]);
        let ports = service_ports_v4([&service(spec.clone())]);
        assert_eq!(ports[0].cluster_ip, Ipv4Addr::new(10, 96, 0, 7));
        let ports = service_ports([&service(spec)], Family::Ipv6);
        assert_eq!(ports[0].cluster_ip, "fd00::5".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn single_stack_services_belong_to_one_family() {
        // dualstack-single-stack-ipv4-service: each proxier keeps its own.
        let mut v6 = base();
        v6.cluster_ip = Some("fd00:10:96::1234".into());
        v6.cluster_ips = Some(vec!["fd00:10:96::1234".into()]);
        v6.ip_families = Some(vec!["IPv6".into()]);
        v6.external_ips = Some(vec!["2001:db8:203::7".into(), "198.51.100.7".into()]);
        assert!(service_ports([&service(v6.clone())], Family::Ipv4).is_empty());
        let p = &service_ports([&service(v6)], Family::Ipv6)[0];
        assert_eq!(
            p.external_ips,
            ["2001:db8:203::7".parse::<IpAddr>().unwrap()]
        );
        assert!(service_ports([&service(base())], Family::Ipv6).is_empty());
    }

    #[test]
    fn external_policy_only_counts_for_external_types() {
        let mut spec = base();
        spec.external_traffic_policy = Some("Local".into());
        assert!(!service_ports_v4([&service(spec.clone())])[0].external_policy_local);
        spec.external_ips = Some(vec!["198.51.100.7".into(), "2001:db8::1".into()]);
        let p = &service_ports_v4([&service(spec)])[0];
        assert!(p.external_policy_local);
        assert_eq!(p.external_ips, [IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))]);
    }

    #[test]
    fn load_balancer_details() {
        let mut spec = base();
        spec.type_ = Some("LoadBalancer".into());
        spec.external_traffic_policy = Some("Local".into());
        spec.health_check_node_port = Some(32100);
        spec.load_balancer_source_ranges = Some(vec![" 192.168.0.10/16".into(), "fd00::/8".into()]);
        spec.session_affinity = Some("ClientIP".into());
        let mut svc = service(spec);
        let ingress = |ip: Option<&str>, mode: Option<&str>| LoadBalancerIngress {
            ip: ip.map(Into::into),
            hostname: Some("lb.example".into()),
            ip_mode: mode.map(Into::into),
            ..Default::default()
        };
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![
                    ingress(Some("203.0.113.10"), Some("VIP")),
                    ingress(Some("203.0.113.11"), Some("Proxy")),
                    ingress(None, None),
                    ingress(Some("203.0.113.12"), None),
                ]),
            }),
            ..Default::default()
        });
        let p = &service_ports_v4([&svc])[0];
        assert_eq!(
            p.lb_vips,
            [
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 12))
            ]
        );
        assert_eq!(
            p.source_ranges,
            ["192.168.0.0/16".parse::<IpNet>().unwrap()]
        );
        assert_eq!(p.health_check_node_port, 32100);
        assert_eq!(p.sticky_seconds, Some(10800));
        assert!(p.uses_local_endpoints() && p.uses_cluster_endpoints());
    }

    #[test]
    fn affinity_timeout_and_internal_policy() {
        let mut spec = base();
        spec.session_affinity = Some("ClientIP".into());
        spec.session_affinity_config = Some(SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(600),
            }),
        });
        spec.internal_traffic_policy = Some("Local".into());
        let p = &service_ports_v4([&service(spec)])[0];
        assert_eq!(p.sticky_seconds, Some(600));
        assert!(!p.uses_cluster_endpoints());
        assert!(p.uses_local_endpoints());
    }

    #[test]
    fn later_object_replaces_earlier() {
        let first = service(base());
        let mut spec = base();
        spec.ports = Some(vec![port("https", 443, "TCP")]);
        let second = service(spec);
        let ports = service_ports_v4([&first, &second]);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name, "shop/web:https");
    }
}
