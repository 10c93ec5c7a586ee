use super::*;
use crate::services::PortKey;
use k8s_openapi::api::discovery::v1::{
    Endpoint as K8sEndpoint, EndpointConditions, EndpointHints, EndpointPort, ForZone,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn key() -> PortKey {
    PortKey {
        namespace: "shop".into(),
        service: "web".into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
    }
}

fn svc() -> ServicePort {
    ServicePort {
        key: key(),
        name: "shop/web:http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: IpAddr::V4(std::net::Ipv4Addr::new(10, 96, 0, 5)),
        port: 80,
        node_port: 0,
        external_ips: vec![],
        lb_vips: vec![],
        source_ranges: vec![],
        health_check_node_port: 0,
        sticky_seconds: None,
        external_policy_local: false,
        internal_policy_local: false,
        topology_hints: false,
    }
}

/// An endpoint: `flags` is "r" ready, "s" serving, "t" terminating, "l" local.
fn ep(ip: [u8; 4], flags: &str, zones: &[&str]) -> Endpoint {
    let ip = std::net::Ipv4Addr::from(ip);
    Endpoint {
        ip: IpAddr::V4(ip),
        port: 8080,
        addr: format!("{ip}:8080"),
        local: flags.contains('l'),
        ready: flags.contains('r'),
        serving: flags.contains('s'),
        terminating: flags.contains('t'),
        zone_hints: zones.iter().map(|z| z.to_string()).collect(),
    }
}

fn addrs(eps: &[&Endpoint]) -> Vec<String> {
    eps.iter().map(|e| e.addr.clone()).collect()
}

fn slice(name: &str, endpoints: Vec<K8sEndpoint>) -> EndpointSlice {
    EndpointSlice {
        address_type: "IPv4".into(),
        endpoints,
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            labels: Some([("kubernetes.io/service-name".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

fn k8s_ep(ip: &str, node: Option<&str>, ready: Option<bool>) -> K8sEndpoint {
    K8sEndpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready,
            serving: None,
            terminating: None,
        }),
        node_name: node.map(Into::into),
        hints: Some(EndpointHints {
            for_zones: Some(vec![ForZone {
                name: "zone-a".into(),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn slices_merge_into_a_sorted_set() {
    let a = slice(
        "web-a",
        vec![
            k8s_ep("10.64.2.7", Some("node-c"), Some(true)),
            k8s_ep("fd00::1", None, None),
        ],
    );
    let b = slice(
        "web-b",
        vec![
            k8s_ep("10.64.0.135", Some("node-a"), None),
            k8s_ep("10.64.0.69", None, Some(false)),
        ],
    );
    let map = endpoints_map([&b, &a], "node-a", Family::Ipv4);
    let eps = &map[&key()];
    // Text order, as kube-proxy sorts: .135 before .69.
    let got: Vec<&str> = eps.iter().map(|e| e.addr.as_str()).collect();
    assert_eq!(
        got,
        ["10.64.0.135:8080", "10.64.0.69:8080", "10.64.2.7:8080"]
    );
    assert!(
        eps[0].local && eps[0].ready,
        "missing readiness counts as ready"
    );
    assert!(!eps[1].ready && eps[1].serving && !eps[1].terminating);
    assert_eq!(eps[2].zone_hints.iter().collect::<Vec<_>>(), ["zone-a"]);
}

#[test]
fn duplicate_endpoint_prefers_the_local_copy() {
    let a = slice(
        "web-a",
        vec![k8s_ep("10.64.0.9", Some("node-b"), Some(false))],
    );
    let b = slice(
        "web-b",
        vec![k8s_ep("10.64.0.9", Some("node-a"), Some(true))],
    );
    let map = endpoints_map([&a, &b], "node-a", Family::Ipv4);
    assert_eq!(map[&key()].len(), 1);
    assert!(map[&key()][0].local && map[&key()][0].ready);
    // Neither local: the first slice (by name) wins.
    let map = endpoints_map([&b, &a], "node-z", Family::Ipv4);
    assert!(!map[&key()][0].ready);
}

#[test]
fn ignored_slices() {
    let mut headless = slice("web-a", vec![k8s_ep("10.64.0.9", None, None)]);
    headless
        .metadata
        .labels
        .as_mut()
        .map(|l| l.insert("service.kubernetes.io/headless".into(), "".into()));
    let mut ipv6 = slice("web-b", vec![k8s_ep("10.64.0.9", None, None)]);
    ipv6.address_type = "IPv6".into();
    let mut unlabelled = slice("web-c", vec![k8s_ep("10.64.0.9", None, None)]);
    unlabelled.metadata.labels = None;
    let mut no_port = slice("web-d", vec![k8s_ep("10.64.0.9", None, None)]);
    no_port.ports = Some(vec![EndpointPort {
        name: Some("http".into()),
        port: None,
        ..Default::default()
    }]);
    assert!(endpoints_map(
        [&headless, &ipv6, &unlabelled, &no_port],
        "node-a",
        Family::Ipv4
    )
    .is_empty());
}

#[test]
fn ipv6_slices_keep_their_spelling() {
    // ipv6-endpoint-address-spelling: the text as written, sorted as text.
    let mut s = slice(
        "web-a",
        vec![
            k8s_ep("fd00:0010:0064:000c::af", None, None),
            k8s_ep("FD00:10:64:A::DA", None, None),
            k8s_ep("10.64.0.9", None, None),
        ],
    );
    s.address_type = "IPv6".into();
    assert!(endpoints_map([&s], "node-a", Family::Ipv4).is_empty());
    let map = endpoints_map([&s], "node-a", Family::Ipv6);
    let eps = &map[&key()];
    let texts: Vec<&str> = eps.iter().map(|e| e.addr.as_str()).collect();
    assert_eq!(
        texts,
        ["[FD00:10:64:A::DA]:8080", "[fd00:0010:0064:000c::af]:8080"]
    );
    assert_eq!(eps[0].ip, "fd00:10:64:a::da".parse::<IpAddr>().unwrap());
}

#[test]
fn cluster_uses_ready_then_serving_terminating() {
    let eps = [
        ep([10, 0, 0, 1], "rs", &[]),
        ep([10, 0, 0, 2], "st", &[]),
        ep([10, 0, 0, 3], "t", &[]),
    ];
    let c = categorize(&eps, &svc(), &BTreeMap::new());
    assert_eq!(addrs(&c.cluster), ["10.0.0.1:8080"]);
    assert!(c.has_any && c.local.is_empty());
    let c = categorize(&eps[1..], &svc(), &BTreeMap::new());
    assert_eq!(addrs(&c.cluster), ["10.0.0.2:8080"]);
    let c = categorize(&eps[2..], &svc(), &BTreeMap::new());
    assert!(c.cluster.is_empty() && !c.has_any);
}

#[test]
fn local_policy_falls_back_to_local_serving_terminating() {
    let mut s = svc();
    s.node_port = 30080;
    s.external_policy_local = true;
    let eps = [
        ep([10, 0, 0, 1], "rs", &[]),
        ep([10, 0, 0, 2], "stl", &[]),
        ep([10, 0, 0, 3], "rs", &[]),
    ];
    let c = categorize(&eps, &s, &BTreeMap::new());
    assert_eq!(addrs(&c.cluster), ["10.0.0.1:8080", "10.0.0.3:8080"]);
    assert_eq!(addrs(&c.local), ["10.0.0.2:8080"]);
    // Every endpoint that any chain uses gets a SEP chain.
    assert_eq!(
        addrs(&c.reachable),
        ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"]
    );
    // A ready local endpoint hides the terminating one.
    let eps = [ep([10, 0, 0, 1], "rsl", &[]), ep([10, 0, 0, 2], "stl", &[])];
    assert_eq!(
        addrs(&categorize(&eps, &s, &BTreeMap::new()).local),
        ["10.0.0.1:8080"]
    );
}

#[test]
fn internal_local_only_uses_local_endpoints() {
    let mut s = svc();
    s.internal_policy_local = true;
    let eps = [ep([10, 0, 0, 1], "rs", &[]), ep([10, 0, 0, 2], "rsl", &[])];
    let c = categorize(&eps, &s, &BTreeMap::new());
    assert!(c.cluster.is_empty());
    assert_eq!(addrs(&c.reachable), ["10.0.0.2:8080"]);
    let c = categorize(&eps[..1], &s, &BTreeMap::new());
    assert!(c.has_any && c.local.is_empty() && c.reachable.is_empty());
}

#[test]
fn topology_hints_need_every_condition() {
    let mut s = svc();
    s.topology_hints = true;
    let zone_a: BTreeMap<String, String> = [(ZONE_LABEL.to_string(), "zone-a".to_string())].into();
    let eps = [
        ep([10, 0, 0, 1], "rs", &["zone-a"]),
        ep([10, 0, 0, 2], "rs", &["zone-b"]),
    ];
    assert_eq!(
        addrs(&categorize(&eps, &s, &zone_a).cluster),
        ["10.0.0.1:8080"]
    );
    // No zone label, no annotation, a missing hint, or no hint for this zone: all endpoints.
    assert_eq!(categorize(&eps, &s, &BTreeMap::new()).cluster.len(), 2);
    assert_eq!(categorize(&eps, &svc(), &zone_a).cluster.len(), 2);
    let unhinted = [
        ep([10, 0, 0, 1], "rs", &["zone-a"]),
        ep([10, 0, 0, 2], "rs", &[]),
    ];
    assert_eq!(categorize(&unhinted, &s, &zone_a).cluster.len(), 2);
    let elsewhere = [
        ep([10, 0, 0, 1], "rs", &["zone-c"]),
        ep([10, 0, 0, 2], "rs", &["zone-b"]),
    ];
    assert_eq!(categorize(&elsewhere, &s, &zone_a).cluster.len(), 2);
    // A not-ready endpoint without hints does not disable topology.
    let with_unready = [
        ep([10, 0, 0, 1], "rs", &["zone-a"]),
        ep([10, 0, 0, 2], "s", &[]),
    ];
    assert_eq!(
        addrs(&categorize(&with_unready, &s, &zone_a).cluster),
        ["10.0.0.1:8080"]
    );
}
