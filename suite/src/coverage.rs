//! Which Service features the golden corpus exercises, read from what the
//! scenarios contain (objects and flows), never from their tags: a row is
//! covered only by a scenario that has both the feature and a flow that
//! meets it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::scenario::{Flow, FlowSource, Object, Scenario};
use kpconform_iptables::model::{Family, Protocol};
use kpconform_iptables::Verdict;

/// One row of the coverage table: a feature and the scenarios covering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What is covered.
    pub feature: String,
    /// Ids of the scenarios covering it, sorted.
    pub scenarios: BTreeSet<String>,
}

/// The coverage of `scenarios`, one row per feature of the checklist, in a
/// fixed order (rows may be empty: that is a gap).
pub fn coverage(scenarios: &[Scenario]) -> Vec<Row> {
    let mut rows: Vec<Row> = features()
        .into_iter()
        .map(|(feature, _)| Row {
            feature,
            scenarios: BTreeSet::new(),
        })
        .collect();
    let checks = features();
    for s in scenarios {
        let view = View::new(s);
        for (row, (_, check)) in rows.iter_mut().zip(&checks) {
            if check(&view) {
                row.scenarios.insert(s.id.clone());
            }
        }
    }
    rows
}

/// The table as Markdown; each cell lists the covering scenario ids.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| feature | # | scenarios |\n|---|---|---|\n");
    for r in rows {
        // A few ids per cell keep the table readable; the count says the rest.
        const SHOWN: usize = 6;
        let ids: Vec<String> = r
            .scenarios
            .iter()
            .take(SHOWN)
            .map(|id| format!("`{id}`"))
            .collect();
        let cell = match r.scenarios.len() {
            0 => "**none**".to_string(),
            n if n > SHOWN => format!("{}, +{} more", ids.join(", "), n - SHOWN),
            _ => ids.join(", "),
        };
        let _ = writeln!(out, "| {} | {} | {cell} |", r.feature, r.scenarios.len());
    }
    out
}

type Check = Box<dyn Fn(&View<'_>) -> bool>;

/// The checklist of issue #4, each with its test on a scenario.
fn features() -> Vec<(String, Check)> {
    let mut f: Vec<(String, Check)> = Vec::new();
    let mut add = |name: &str, c: Check| f.push((name.to_string(), c));
    for n in [1usize, 2, 3, 4, 5, 7, 10, 100, 200] {
        add(
            &format!(
                "ClusterIP, {n} endpoint{} (exact 1/{n} each)",
                if n == 1 { "" } else { "s" }
            ),
            Box::new(move |v| {
                v.flows_to_cluster_ip()
                    .any(|(f, _)| f.expect.endpoints.as_ref().is_some_and(|e| e.len() == n))
            }),
        );
    }
    add(
        "no usable endpoints: reject",
        Box::new(|v| v.flows().any(|f| f.expect.verdict == Some(Verdict::Reject))),
    );
    add(
        "not-ready endpoints are never used",
        Box::new(|v| {
            v.has_flows()
                && v.endpoints().any(|e| {
                    cond(e, Cond::Ready) == Some(false) && cond(e, Cond::Serving) == Some(false)
                })
        }),
    );
    add(
        "terminating+serving fallback when none is ready",
        Box::new(|v| {
            v.has_flows()
                && v.slices_by_service().any(|eps| {
                    !eps.iter().any(|e| is_ready(e))
                        && eps.iter().any(|e| is_serving_terminating(e))
                })
        }),
    );
    add(
        "terminating endpoints unused while ready ones exist",
        Box::new(|v| {
            v.has_flows()
                && v.slices_by_service().any(|eps| {
                    eps.iter().any(|e| is_ready(e)) && eps.iter().any(|e| is_serving_terminating(e))
                })
        }),
    );
    add(
        "multi-port service with named target ports",
        Box::new(|v| {
            v.has_flows()
                && v.services().any(|s| {
                    ports(s).len() >= 2
                        && ports(s)
                            .iter()
                            .any(|p| matches!(p.target_port, Some(IntOrString::String(_))))
                })
        }),
    );
    for (proto, name) in [
        (Protocol::Tcp, "TCP"),
        (Protocol::Udp, "UDP"),
        (Protocol::Sctp, "SCTP"),
    ] {
        add(
            &format!("{name} flow"),
            Box::new(move |v| v.flows().any(|f| f.to.protocol == proto)),
        );
    }
    add(
        "same port on two protocols",
        Box::new(|v| {
            v.has_flows()
                && v.services().any(|s| {
                    let ps = ports(s);
                    ps.iter().any(|a| {
                        ps.iter()
                            .any(|b| a.port == b.port && a.protocol != b.protocol)
                    })
                })
        }),
    );
    add(
        "session affinity: sticky",
        Box::new(|v| v.flows().any(|f| f.expect.sticky == Some(true))),
    );
    add(
        "session affinity with a non-default timeout",
        Box::new(|v| {
            v.flows().any(|f| f.expect.sticky.is_some())
                && v.services().any(|s| {
                    spec_of(s)
                        .and_then(|sp| sp.session_affinity_config.as_ref())
                        .and_then(|c| c.client_ip.as_ref())
                        .and_then(|c| c.timeout_seconds)
                        .is_some_and(|t| t != 10800)
                })
        }),
    );
    for (local, name) in [(true, "with"), (false, "without")] {
        add(
            &format!("internalTrafficPolicy Local {name} a local endpoint"),
            Box::new(move |v| {
                v.flows_to_cluster_ip().any(|(f, s)| {
                    policy(s, Policy::Internal) == "Local"
                        && v.has_local_endpoint(s, &f.node) == local
                })
            }),
        );
    }
    for etp in ["Cluster", "Local"] {
        for kind in [
            AddrKind::NodePort,
            AddrKind::LoadBalancer,
            AddrKind::ExternalIp,
        ] {
            for src in [
                Source::External,
                Source::PodHere,
                Source::Node,
                Source::PodElsewhere,
            ] {
                add(
                    &format!("ETP {etp}, {}, from {}", kind.name(), src.name()),
                    Box::new(move |v| {
                        v.flows().any(|f| {
                            v.external_target(f).is_some_and(|(k, s)| {
                                k == kind && policy(s, Policy::External) == etp
                            }) && v.source(f) == src
                        })
                    }),
                );
            }
        }
    }
    add(
        "hairpin: an endpoint calls its own service",
        Box::new(|v| v.flows().any(|f| v.is_hairpin(f))),
    );
    add(
        "masqueradeAll",
        Box::new(|v| v.has_flows() && v.s.cluster.masquerade_all),
    );
    add(
        "no cluster CIDR",
        Box::new(|v| v.has_flows() && v.s.cluster.cluster_cidrs.is_empty()),
    );
    add(
        "masqueradeBit other than 14",
        Box::new(|v| v.has_flows() && v.s.cluster.masquerade_bit != 14),
    );
    add(
        "nodePortAddresses restricted",
        Box::new(|v| v.has_flows() && !v.s.cluster.node_port_addresses.is_empty()),
    );
    add(
        "LoadBalancer source ranges: allowed client",
        Box::new(|v| {
            v.flows().any(|f| {
                v.lb_with_ranges(f)
                    && f.expect.verdict != Some(Verdict::Drop)
                    && f.expect.endpoints.as_ref().is_some_and(|e| !e.is_empty())
            })
        }),
    );
    add(
        "LoadBalancer source ranges: blocked client",
        Box::new(|v| {
            v.flows()
                .any(|f| v.lb_with_ranges(f) && f.expect.verdict == Some(Verdict::Drop))
        }),
    );
    add(
        "LoadBalancer source range containing the node",
        Box::new(|v| {
            v.flows().any(|f| v.lb_with_ranges(f))
                && v.services().any(|s| {
                    ranges(s).iter().any(|r| {
                        v.s.cluster
                            .nodes
                            .iter()
                            .flat_map(|n| &n.addresses)
                            .any(|a| r.contains(&a.addr()))
                    })
                })
        }),
    );
    add(
        "health-check node port",
        Box::new(|v| {
            v.flows().any(|f| {
                v.services().any(|s| {
                    spec_of(s).and_then(|sp| sp.health_check_node_port)
                        == Some(i32::from(f.to.addr.port()))
                })
            })
        }),
    );
    add(
        "LoadBalancer ingress with ipMode Proxy",
        Box::new(|v| {
            v.flows().any(|f| {
                v.services()
                    .any(|s| lb_ips(s, true).contains(&f.to.addr.ip()))
            })
        }),
    );
    add(
        "headless service: no rules, traffic untouched",
        Box::new(|v| {
            v.has_flows()
                && v.services()
                    .any(|s| spec_of(s).and_then(|sp| sp.cluster_ip.as_deref()) == Some("None"))
        }),
    );
    add(
        "ExternalName service: no rules, traffic untouched",
        Box::new(|v| {
            v.has_flows()
                && v.services()
                    .any(|s| spec_of(s).and_then(|sp| sp.type_.as_deref()) == Some("ExternalName"))
        }),
    );
    add(
        "topology hints",
        Box::new(|v| {
            v.has_flows()
                && v.endpoints().any(|e| {
                    e.hints
                        .as_ref()
                        .is_some_and(|h| h.for_zones.as_ref().is_some_and(|z| !z.is_empty()))
                })
        }),
    );
    add(
        "multi-node: flows on every node",
        Box::new(|v| {
            v.s.cluster.nodes.len() >= 2
                && v.s
                    .cluster
                    .nodes
                    .iter()
                    .all(|n| v.flows().any(|f| f.node == n.name))
        }),
    );
    add(
        "50+ services in one scenario",
        Box::new(|v| v.has_flows() && v.services().count() >= 50),
    );
    add(
        "IPv6 flow (ip6tables rules)",
        Box::new(|v| v.flows().any(|f| flow_family(f) == Family::Ipv6)),
    );
    add(
        "dual-stack: IPv4 and IPv6 flows on one node",
        Box::new(|v| {
            v.s.cluster.nodes.iter().any(|n| {
                [Family::Ipv4, Family::Ipv6]
                    .iter()
                    .all(|&fam| v.flows().any(|f| f.node == n.name && flow_family(f) == fam))
            })
        }),
    );
    f
}

/// A flow's family: that of its destination.
fn flow_family(f: &Flow) -> Family {
    Family::of(f.to.addr.ip())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrKind {
    NodePort,
    LoadBalancer,
    ExternalIp,
}

impl AddrKind {
    fn name(self) -> &'static str {
        match self {
            AddrKind::NodePort => "NodePort",
            AddrKind::LoadBalancer => "LoadBalancer IP",
            AddrKind::ExternalIp => "external IP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    External,
    PodHere,
    Node,
    PodElsewhere,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::External => "an external client",
            Source::PodHere => "a pod on the node",
            Source::Node => "the node itself",
            Source::PodElsewhere => "a pod on another node",
        }
    }
}

enum Policy {
    Internal,
    External,
}

enum Cond {
    Ready,
    Serving,
    Terminating,
}

/// A scenario with lookups the checks share.
struct View<'a> {
    s: &'a Scenario,
}

impl<'a> View<'a> {
    fn new(s: &'a Scenario) -> View<'a> {
        View { s }
    }

    fn flows(&self) -> impl Iterator<Item = &'a Flow> {
        self.s.flows.iter()
    }

    fn has_flows(&self) -> bool {
        !self.s.flows.is_empty()
    }

    fn services(&self) -> impl Iterator<Item = &'a Service> {
        self.s.cluster.objects.iter().filter_map(|o| match o {
            Object::Service(s) => Some(&**s),
            _ => None,
        })
    }

    fn slices(&self) -> impl Iterator<Item = &'a EndpointSlice> {
        self.s.cluster.objects.iter().filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(&**s),
            _ => None,
        })
    }

    fn endpoints(&self) -> impl Iterator<Item = &'a Endpoint> {
        self.slices().flat_map(|s| s.endpoints.iter())
    }

    /// The endpoints of each service, across its slices.
    fn slices_by_service(&self) -> impl Iterator<Item = Vec<&'a Endpoint>> + '_ {
        self.services().map(|svc| self.endpoints_of(svc))
    }

    fn endpoints_of(&self, svc: &Service) -> Vec<&'a Endpoint> {
        let (ns, name) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        );
        self.slices()
            .filter(|sl| {
                sl.metadata.namespace.as_deref() == ns
                    && sl
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        .map(String::as_str)
                        == name
            })
            .flat_map(|sl| sl.endpoints.iter())
            .collect()
    }

    fn has_local_endpoint(&self, svc: &Service, node: &str) -> bool {
        self.endpoints_of(svc)
            .iter()
            .any(|e| e.node_name.as_deref() == Some(node))
    }

    /// Flows to a service's cluster IP (and port), with the service.
    fn flows_to_cluster_ip(&self) -> impl Iterator<Item = (&'a Flow, &'a Service)> + '_ {
        self.flows().filter_map(move |f| {
            self.services()
                .find(|s| {
                    cluster_ips(s).contains(&f.to.addr.ip())
                        && ports(s)
                            .iter()
                            .any(|p| p.port == i32::from(f.to.addr.port()))
                })
                .map(|s| (f, s))
        })
    }

    /// The external address kind a flow targets, with its service.
    fn external_target(&self, f: &Flow) -> Option<(AddrKind, &'a Service)> {
        let ip = f.to.addr.ip();
        let port = i32::from(f.to.addr.port());
        for s in self.services() {
            let ps = ports(s);
            if ps.iter().any(|p| p.node_port == Some(port)) && self.is_node_address(ip, &f.node) {
                return Some((AddrKind::NodePort, s));
            }
            if ps.iter().any(|p| p.port == port) {
                if lb_ips(s, false).contains(&ip) {
                    return Some((AddrKind::LoadBalancer, s));
                }
                let external = spec_of(s).and_then(|sp| sp.external_ips.as_ref());
                if external.is_some_and(|e| e.iter().any(|x| x.parse::<IpAddr>().ok() == Some(ip)))
                {
                    return Some((AddrKind::ExternalIp, s));
                }
            }
        }
        None
    }

    fn is_node_address(&self, ip: IpAddr, node: &str) -> bool {
        ip.is_loopback()
            || self
                .s
                .node(node)
                .is_some_and(|n| n.addresses.iter().any(|a| a.addr() == ip))
    }

    fn source(&self, f: &Flow) -> Source {
        let ip = match f.from {
            FlowSource::Node => return Source::Node,
            FlowSource::Ip(ip) => ip,
        };
        let in_cluster = self.s.cluster.cluster_cidrs.iter().any(|c| c.contains(&ip));
        if !in_cluster {
            return Source::External;
        }
        // A pod is on the flow's node when an endpoint there has its address
        // or shares its /24 (/64 for IPv6: the recordings' per-node pod ranges).
        let here = self.endpoints().any(|e| {
            e.node_name.as_deref() == Some(&f.node)
                && e.addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .any(|a| a == ip || same_node_range(a, ip))
        });
        if here {
            Source::PodHere
        } else {
            Source::PodElsewhere
        }
    }

    fn is_hairpin(&self, f: &Flow) -> bool {
        let FlowSource::Ip(ip) = f.from else {
            return false;
        };
        let Some(eps) = &f.expect.endpoints else {
            return false;
        };
        eps.keys().any(|d| d.ip() == ip)
    }

    fn lb_with_ranges(&self, f: &Flow) -> bool {
        self.services()
            .any(|s| !ranges(s).is_empty() && lb_ips(s, false).contains(&f.to.addr.ip()))
    }
}

fn spec_of(s: &Service) -> Option<&k8s_openapi::api::core::v1::ServiceSpec> {
    s.spec.as_ref()
}

/// A service's cluster IPs: `clusterIP` and `clusterIPs` (both families of
/// a dual-stack service), parsed, so that any spelling of an IPv6 address
/// matches a flow's.
fn cluster_ips(s: &Service) -> Vec<IpAddr> {
    let Some(sp) = spec_of(s) else {
        return Vec::new();
    };
    sp.cluster_ip
        .iter()
        .chain(sp.cluster_ips.iter().flatten())
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

fn ports(s: &Service) -> &[k8s_openapi::api::core::v1::ServicePort] {
    spec_of(s).and_then(|sp| sp.ports.as_deref()).unwrap_or(&[])
}

fn policy(s: &Service, which: Policy) -> &str {
    let sp = spec_of(s);
    let p = match which {
        Policy::Internal => sp.and_then(|sp| sp.internal_traffic_policy.as_deref()),
        Policy::External => sp.and_then(|sp| sp.external_traffic_policy.as_deref()),
    };
    p.unwrap_or("Cluster")
}

fn ranges(s: &Service) -> Vec<ipnet::IpNet> {
    spec_of(s)
        .and_then(|sp| sp.load_balancer_source_ranges.as_ref())
        .map(|r| r.iter().filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// LB ingress IPs: with `proxy_mode`, only those with `ipMode: Proxy`; else only the others.
fn lb_ips(s: &Service, proxy_mode: bool) -> Vec<IpAddr> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ing| {
            ing.iter()
                .filter(|i| (i.ip_mode.as_deref() == Some("Proxy")) == proxy_mode)
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cond(e: &Endpoint, c: Cond) -> Option<bool> {
    let cs = e.conditions.as_ref()?;
    match c {
        Cond::Ready => cs.ready,
        Cond::Serving => cs.serving,
        Cond::Terminating => cs.terminating,
    }
}

fn is_ready(e: &Endpoint) -> bool {
    // An unset `ready` means ready (the API's documented default).
    cond(e, Cond::Ready).unwrap_or(true)
}

fn is_serving_terminating(e: &Endpoint) -> bool {
    !is_ready(e) && cond(e, Cond::Serving) == Some(true) && cond(e, Cond::Terminating) == Some(true)
}

/// Scenarios built on a recording of real kube-proxy: `(scenario id, recorded cases)`
/// from their `recorded:<case>` tags, sorted.
pub fn recorded(scenarios: &[Scenario]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = scenarios
        .iter()
        .filter_map(|s| {
            let cases: Vec<String> = s
                .tags
                .iter()
                .filter_map(|t| t.strip_prefix("recorded:").map(str::to_string))
                .collect();
            (!cases.is_empty()).then(|| (s.id.clone(), cases))
        })
        .collect();
    out.sort();
    out
}

/// [`recorded`] as a Markdown table.
pub fn recorded_markdown(scenarios: &[Scenario]) -> String {
    let mut out = String::from("| scenario | real kube-proxy v1.30 recording(s) |\n|---|---|\n");
    for (id, cases) in recorded(scenarios) {
        let cases: Vec<String> = cases.iter().map(|c| format!("`{c}`")).collect();
        let _ = writeln!(out, "| `{id}` | {} |", cases.join(", "));
    }
    out
}

/// Whether two pod addresses share a node's pod range: a /24 for IPv4, a
/// /64 for IPv6.
fn same_node_range(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_iptables::SourceFile;

    fn scenario(flows: &str) -> Scenario {
        let text = format!(
            "description: t\ncluster:\n  clusterCIDR: 10.64.0.0/16\n  nodes:\n    - name: node-a\n      addresses: [192.168.0.10]\n  objects:\n    - apiVersion: v1\n      kind: Service\n      metadata: {{name: web, namespace: default}}\n      spec:\n        type: NodePort\n        clusterIP: 10.96.0.50\n        externalTrafficPolicy: Local\n        ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}}]\n    - apiVersion: discovery.k8s.io/v1\n      kind: EndpointSlice\n      metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\n      addressType: IPv4\n      endpoints:\n        - addresses: [10.64.0.5]\n          conditions: {{ready: true, serving: true, terminating: false}}\n          nodeName: node-a\n      ports: [{{name: http, port: 8080, protocol: TCP}}]\nflows:\n{flows}"
        );
        Scenario::from_source(&SourceFile::new("t.yaml", text), "t").unwrap()
    }

    fn covered(s: &Scenario) -> Vec<String> {
        coverage(std::slice::from_ref(s))
            .into_iter()
            .filter(|r| !r.scenarios.is_empty())
            .map(|r| r.feature)
            .collect()
    }

    #[test]
    fn a_row_needs_a_flow_that_meets_the_feature() {
        let s = scenario("  - {name: ext, node: node-a, from: 203.0.113.7, to: '192.168.0.10:30080/tcp', expect: {endpoints: {'10.64.0.5:8080': 1}, masquerade: false}}\n");
        let c = covered(&s);
        assert!(
            c.contains(&"ETP Local, NodePort, from an external client".to_string()),
            "{c:?}"
        );
        assert!(!c.iter().any(|f| f.starts_with("ETP Cluster")), "{c:?}");
        assert!(
            !c.iter().any(|f| f.starts_with("ClusterIP, 1 endpoint")),
            "no flow to the cluster IP: {c:?}"
        );
        assert!(c.contains(&"TCP flow".to_string()));
    }

    #[test]
    fn sources_are_told_apart() {
        let s = scenario(
            "  - {name: pod, node: node-a, from: 10.64.0.77, to: '192.168.0.10:30080/tcp', expect: {verdict: accept}}\n  - {name: other, node: node-a, from: 10.64.1.7, to: '192.168.0.10:30080/tcp', expect: {verdict: accept}}\n  - {name: self, node: node-a, from: node, to: '127.0.0.1:30080/tcp', expect: {verdict: accept}}\n  - {name: hairpin, node: node-a, from: 10.64.0.5, to: '10.96.0.50:80/tcp', expect: {endpoints: {'10.64.0.5:8080': 1}}}\n",
        );
        let c = covered(&s);
        for f in [
            "from a pod on the node",
            "from a pod on another node",
            "from the node itself",
        ] {
            assert!(
                c.contains(&format!("ETP Local, NodePort, {f}")),
                "{f}: {c:?}"
            );
        }
        assert!(c.contains(&"hairpin: an endpoint calls its own service".to_string()));
        assert!(c.contains(&"ClusterIP, 1 endpoint (exact 1/1 each)".to_string()));
    }

    #[test]
    fn ipv6_and_dual_stack_rows() {
        let text = "description: t\ncluster:\n  clusterCIDR: 10.64.0.0/16,fd00:10:64::/48\n  nodes:\n    - {name: node-a, addresses: [192.168.0.10, 'fd00:192:168::10']}\n  objects:\n    - apiVersion: v1\n      kind: Service\n      metadata: {name: web, namespace: default}\n      spec:\n        clusterIP: 10.96.0.50\n        clusterIPs: [10.96.0.50, 'fd00:10:96:0:0::50']\n        ipFamilies: [IPv4, IPv6]\n        ipFamilyPolicy: RequireDualStack\n        ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]\nflows:\n  - {name: v6, node: node-a, from: 'fd00:10:64:a::7', to: '[fd00:10:96::50]:80/tcp', expect: {endpoints: {'[fd00:10:64:a::5]:8080': 1}}}\n";
        let v6_only = Scenario::from_source(&SourceFile::new("t.yaml", text), "t").unwrap();
        let c = covered(&v6_only);
        assert!(
            c.contains(&"IPv6 flow (ip6tables rules)".to_string()),
            "{c:?}"
        );
        // The IPv6 cluster IP of a dual-stack service, however spelled.
        assert!(
            c.contains(&"ClusterIP, 1 endpoint (exact 1/1 each)".to_string()),
            "{c:?}"
        );
        assert!(
            !c.iter().any(|f| f.starts_with("dual-stack")),
            "one family only: {c:?}"
        );
        let both = format!(
            "{text}  - {{name: v4, node: node-a, from: node, to: '10.96.0.50:80/tcp', expect: {{verdict: accept}}}}\n"
        );
        let both = Scenario::from_source(&SourceFile::new("t.yaml", both), "t").unwrap();
        assert!(covered(&both).contains(&"dual-stack: IPv4 and IPv6 flows on one node".to_string()));
    }

    #[test]
    fn markdown_marks_gaps() {
        let md = markdown(&coverage(&[]));
        assert!(md.starts_with("| feature | # | scenarios |"));
        assert!(md.contains("| masqueradeAll | 0 | **none** |"));
    }
}
