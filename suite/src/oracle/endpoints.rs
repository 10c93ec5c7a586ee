//! Which endpoints a service port may use from one node: kube-proxy's
//! `CategorizeEndpoints` (pkg/proxy/topology.go), restated.

use super::model::{Endpoint, ServicePort};

/// The endpoints of a service port sorted by purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usable<'a> {
    /// For Cluster policies (and short-circuited external traffic).
    pub(crate) cluster: Vec<&'a Endpoint>,
    /// For Local policies: the node's own endpoints.
    pub(crate) local: Vec<&'a Endpoint>,
    /// Whether any endpoint anywhere can serve (decides REJECT).
    pub(crate) any: bool,
    /// Whether zone hints narrowed `cluster`.
    pub(crate) topology: bool,
    /// Whether a list fell back to serving-and-terminating endpoints:
    /// (cluster, local).
    pub(crate) fallback: (bool, bool),
}

fn serving_terminating(e: &Endpoint) -> bool {
    e.serving && e.terminating
}

/// Topology hints apply when the service asks for them, the node has a
/// zone, every ready endpoint carries a zone hint, and at least one is
/// hinted for the node's zone (kube-proxy `canUseTopology`).
fn use_topology(port: &ServicePort, zone: Option<&str>) -> bool {
    let Some(zone) = zone.filter(|_| port.topology) else {
        return false;
    };
    let ready: Vec<&Endpoint> = port.endpoints.iter().filter(|e| e.ready).collect();
    ready.iter().all(|e| !e.zone_hints.is_empty())
        && ready.iter().any(|e| e.zone_hints.contains(zone))
}

/// Categorizes `port`'s endpoints for a node in `zone`.
pub(crate) fn categorize<'a>(port: &'a ServicePort, zone: Option<&str>) -> Usable<'a> {
    let mut out = Usable::default();
    let eps = &port.endpoints;
    // kube-proxy computes each list only when a policy needs it: cluster
    // endpoints unless only Local policies apply, local endpoints only under
    // a Local policy.
    let uses_cluster = !port.internal_local || port.externally_accessible();
    let uses_local = port.internal_local || (port.externally_accessible() && port.external_local);
    if uses_cluster {
        out.topology = use_topology(port, zone);
        out.cluster = eps
            .iter()
            .filter(|e| e.ready)
            .filter(|e| !out.topology || zone.is_some_and(|z| e.zone_hints.contains(z)))
            .collect();
        if out.cluster.is_empty() {
            // Falling back to terminating endpoints ignores topology.
            out.cluster = eps.iter().filter(|e| serving_terminating(e)).collect();
            out.fallback.0 = !out.cluster.is_empty();
        }
        out.any = !out.cluster.is_empty();
    }
    if uses_local {
        out.any |= eps.iter().any(|e| e.ready || serving_terminating(e));
        out.local = eps.iter().filter(|e| e.local && e.ready).collect();
        if out.local.is_empty() {
            out.local = eps
                .iter()
                .filter(|e| e.local && serving_terminating(e))
                .collect();
            out.fallback.1 = !out.local.is_empty();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_iptables::model::Protocol;
    use std::collections::BTreeSet;

    fn ep(ip: &str, local: bool, (ready, serving, terminating): (bool, bool, bool)) -> Endpoint {
        Endpoint {
            addr: format!("{ip}:80").parse().unwrap(),
            node: None,
            local,
            ready,
            serving,
            terminating,
            zone_hints: BTreeSet::new(),
        }
    }

    const READY: (bool, bool, bool) = (true, true, false);
    const DRAINING: (bool, bool, bool) = (false, true, true);
    const GONE: (bool, bool, bool) = (false, false, true);
    const NOT_READY: (bool, bool, bool) = (false, false, false);

    fn port(endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            name: "ns/svc:p".into(),
            protocol: Protocol::Tcp,
            cluster_ip: "10.96.0.1".parse().unwrap(),
            port: 80,
            node_port: None,
            external_ips: Vec::new(),
            lb_ips: Vec::new(),
            source_ranges: Vec::new(),
            external_local: false,
            internal_local: false,
            affinity: false,
            topology: false,
            health_check_node_port: None,
            endpoints,
        }
    }

    fn ips(list: &[&Endpoint]) -> Vec<String> {
        list.iter().map(|e| e.addr.ip().to_string()).collect()
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let p = port(vec![
            ep("10.0.0.1", false, READY),
            ep("10.0.0.2", false, DRAINING),
            ep("10.0.0.3", false, GONE),
            ep("10.0.0.4", false, NOT_READY),
        ]);
        let u = categorize(&p, None);
        assert_eq!(ips(&u.cluster), ["10.0.0.1"]);
        assert!(u.any && !u.fallback.0);
        assert!(u.local.is_empty(), "no Local policy, no local list");
    }

    #[test]
    fn serving_terminating_is_the_fallback_and_not_serving_never_counts() {
        let p = port(vec![
            ep("10.0.0.2", false, DRAINING),
            ep("10.0.0.3", false, GONE),
        ]);
        let u = categorize(&p, None);
        assert_eq!(ips(&u.cluster), ["10.0.0.2"]);
        assert!(u.fallback.0);
        let p = port(vec![
            ep("10.0.0.3", false, GONE),
            ep("10.0.0.4", false, NOT_READY),
        ]);
        let u = categorize(&p, None);
        assert!(u.cluster.is_empty() && !u.any);
    }

    #[test]
    fn local_fallback_is_decided_per_node() {
        let mut p = port(vec![
            ep("10.0.0.1", false, READY),
            ep("10.0.0.2", true, DRAINING),
            ep("10.0.0.3", true, GONE),
        ]);
        p.internal_local = true;
        let u = categorize(&p, None);
        assert_eq!(
            ips(&u.local),
            ["10.0.0.2"],
            "ready elsewhere does not stop the local fallback"
        );
        assert!(u.fallback.1 && u.any);
        assert!(
            u.cluster.is_empty(),
            "ITP Local without external access uses no cluster list"
        );
    }

    #[test]
    fn internal_local_without_any_usable_endpoint_has_none() {
        let mut p = port(vec![ep("10.0.0.3", true, GONE)]);
        p.internal_local = true;
        let u = categorize(&p, None);
        assert!(!u.any && u.local.is_empty());
    }

    #[test]
    fn external_local_computes_both_lists() {
        let mut p = port(vec![
            ep("10.0.0.1", false, READY),
            ep("10.0.0.2", true, READY),
        ]);
        p.node_port = Some(30080);
        p.external_local = true;
        let u = categorize(&p, None);
        assert_eq!(ips(&u.cluster), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&u.local), ["10.0.0.2"]);
    }

    fn hinted(ip: &str, zones: &[&str], state: (bool, bool, bool)) -> Endpoint {
        let mut e = ep(ip, false, state);
        e.zone_hints = zones.iter().map(|z| z.to_string()).collect();
        e
    }

    #[test]
    fn zone_hints_narrow_cluster_endpoints_only_when_complete() {
        let mut p = port(vec![
            hinted("10.0.0.1", &["zone-a"], READY),
            hinted("10.0.0.2", &["zone-b"], READY),
            hinted("10.0.0.3", &[], NOT_READY),
        ]);
        p.topology = true;
        let u = categorize(&p, Some("zone-a"));
        assert!(
            u.topology,
            "an unhinted endpoint that is not ready does not count"
        );
        assert_eq!(ips(&u.cluster), ["10.0.0.1"]);
        // No annotation, no zone label, or no endpoint for the zone: all.
        assert_eq!(categorize(&p, None).cluster.len(), 2);
        assert_eq!(categorize(&p, Some("zone-c")).cluster.len(), 2);
        p.topology = false;
        assert_eq!(categorize(&p, Some("zone-a")).cluster.len(), 2);
        // One ready endpoint without a hint disables hints.
        p.topology = true;
        p.endpoints.push(hinted("10.0.0.4", &[], READY));
        assert_eq!(categorize(&p, Some("zone-a")).cluster.len(), 3);
    }
}
