//! Endpoints per service port, merged from EndpointSlices (kube-proxy's
//! `EndpointSliceCache`), and their split into the sets each traffic policy
//! uses (`CategorizeEndpoints`, with topology hints).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kpconform_iptables::model::Family;

use crate::addr::parse_ip;
use crate::rule::Protocol;
use crate::services::{has_ignored_label, namespace_str, PortKey, ServicePort};

/// The node label topology hints are matched against.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// One endpoint of one service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The address, parsed: what the rules match and DNAT to (the save
    /// tools print it canonically).
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    /// `ip:port` (IPv4, canonical) or `[ip]:port` (IPv6, as the slice spells
    /// the address): the sort key, the SEP hash input and the comment text.
    pub(crate) addr: String,
    /// Its `nodeName` is this node.
    pub(crate) local: bool,
    pub(crate) ready: bool,
    pub(crate) serving: bool,
    pub(crate) terminating: bool,
    /// `hints.forZones` names.
    pub(crate) zone_hints: BTreeSet<String>,
}

impl Endpoint {
    fn serving_terminating(&self) -> bool {
        self.serving && self.terminating
    }
}

/// Endpoints of every service port, each list sorted by `ip:port` text.
pub(crate) type EndpointsMap = BTreeMap<PortKey, Vec<Endpoint>>;

/// Merges `slices` as kube-proxy's proxier of `family` on `node_name` does:
/// it only receives the slices whose `addressType` is its family.
pub(crate) fn endpoints_map<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
    family: Family,
) -> EndpointsMap {
    // (namespace, service, slice name) -> slice; a later object replaces an
    // earlier one of the same name, as an informer update would.
    let mut cache: BTreeMap<(&str, &str, &str), &EndpointSlice> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != family.as_str() || has_ignored_label(&slice.metadata.labels) {
            continue;
        }
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .filter(|s| !s.is_empty());
        let (Some(service), Some(name)) = (service, slice.metadata.name.as_ref()) else {
            continue;
        };
        let namespace = namespace_str(&slice.metadata.namespace);
        cache.insert((namespace, service, name), slice);
    }

    // Each port's endpoints in the order met; duplicates are merged once
    // all are in (a tree keyed by endpoint text per port cost more).
    let mut by_port: BTreeMap<PortKey, Vec<Endpoint>> = BTreeMap::new();
    for ((namespace, service, _), slice) in &cache {
        for port in slice.ports.as_deref().unwrap_or(&[]) {
            let Some(number) = port
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            else {
                continue;
            };
            let Some(protocol) = Protocol::from_k8s(port.protocol.as_deref().unwrap_or("TCP"))
            else {
                continue;
            };
            let key = PortKey {
                namespace: namespace.to_string(),
                service: service.to_string(),
                // The apiserver defaults a missing port name to "".
                port_name: port.name.clone().unwrap_or_default(),
                protocol,
            };
            let set = by_port.entry(key).or_default();
            for ep in &slice.endpoints {
                let Some((text, ip)) = ep
                    .addresses
                    .first()
                    .and_then(|a| Some((a, parse_ip(a, family)?)))
                else {
                    continue;
                };
                let conditions = ep.conditions.clone().unwrap_or_default();
                let endpoint = Endpoint {
                    ip,
                    port: number,
                    addr: endpoint_text(text, ip, number),
                    local: ep.node_name.as_deref() == Some(node_name),
                    // Unknown readiness counts as ready and serving (the API's rule).
                    ready: conditions.ready.unwrap_or(true),
                    serving: conditions.serving.unwrap_or(true),
                    terminating: conditions.terminating.unwrap_or(false),
                    zone_hints: ep
                        .hints
                        .as_ref()
                        .and_then(|h| h.for_zones.as_ref())
                        .map(|z| z.iter().map(|z| z.name.clone()).collect())
                        .unwrap_or_default(),
                };
                set.push(endpoint);
            }
        }
    }
    by_port
        .into_iter()
        .filter(|(_, set)| !set.is_empty())
        .map(|(key, set)| (key, merge_duplicates(set)))
        .collect()
}

/// Sorts endpoints by their text and keeps one of each: the same endpoint
/// in two slices (it is moving between them) is the first copy met, unless
/// a later copy is local, and then the last local copy.
fn merge_duplicates(mut endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    // Stable: copies of one endpoint stay in the order they were met.
    endpoints.sort_by(|a, b| a.addr.cmp(&b.addr));
    let mut merged: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        match merged.last_mut() {
            Some(last) if last.addr == endpoint.addr => {
                if endpoint.local {
                    *last = endpoint;
                }
            }
            _ => merged.push(endpoint),
        }
    }
    merged
}

/// kube-proxy's `net.JoinHostPort(address, port)`. The IPv6 text is the
/// slice's own spelling (kube-proxy passes it through); IPv4 is written
/// canonically (see the README on non-canonical IPv4 addresses).
fn endpoint_text(text: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(_) => format!("[{text}]:{port}"),
    }
}

/// The endpoint sets of one service port on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Categorized<'a> {
    /// What the Cluster policy dispatches to (KUBE-SVC).
    pub(crate) cluster: Vec<&'a Endpoint>,
    /// What the Local policy dispatches to (KUBE-SVL).
    pub(crate) local: Vec<&'a Endpoint>,
    /// Union of both, sorted: every endpoint that gets a KUBE-SEP chain.
    pub(crate) reachable: Vec<&'a Endpoint>,
    /// Some endpoint anywhere in the cluster is usable.
    pub(crate) has_any: bool,
}

/// kube-proxy's `CategorizeEndpoints`.
pub(crate) fn categorize<'a>(
    endpoints: &'a [Endpoint],
    svc: &ServicePort,
    node_labels: &BTreeMap<String, String>,
) -> Categorized<'a> {
    let mut out = Categorized::default();
    if svc.uses_cluster_endpoints() {
        let zone = topology_zone(endpoints, svc, node_labels);
        out.cluster = endpoints
            .iter()
            .filter(|ep| ep.ready && zone.is_none_or(|z| ep.zone_hints.contains(z)))
            .collect();
        // No ready endpoint anywhere: fall back to terminating ones that
        // still serve, ignoring topology (best effort not to drop traffic).
        if out.cluster.is_empty() {
            out.cluster = endpoints
                .iter()
                .filter(|ep| ep.serving_terminating())
                .collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !svc.uses_local_endpoints() {
        out.reachable = out.cluster.clone();
        return out;
    }

    let usable = |ep: &&Endpoint| ep.ready || ep.serving_terminating();
    out.has_any |= endpoints.iter().any(|ep| usable(&ep));
    let local_ready = endpoints.iter().any(|ep| ep.local && ep.ready);
    out.local = if local_ready {
        endpoints.iter().filter(|ep| ep.local && ep.ready).collect()
    } else {
        endpoints
            .iter()
            .filter(|ep| ep.local && ep.serving_terminating())
            .collect()
    };

    if !svc.uses_cluster_endpoints() {
        out.reachable = out.local.clone();
        return out;
    }
    let mut merged: BTreeMap<&str, &Endpoint> = BTreeMap::new();
    for ep in out.cluster.iter().chain(out.local.iter()) {
        merged.insert(&ep.addr, ep);
    }
    out.reachable = merged.into_values().collect();
    out
}

/// The zone to filter on when topology-aware routing applies: the Service
/// asks for it, this node has a zone, every ready endpoint has hints and at
/// least one is hinted for this zone.
fn topology_zone<'l>(
    endpoints: &[Endpoint],
    svc: &ServicePort,
    node_labels: &'l BTreeMap<String, String>,
) -> Option<&'l str> {
    if !svc.topology_hints {
        return None;
    }
    let zone = node_labels.get(ZONE_LABEL).filter(|z| !z.is_empty())?;
    let mut hinted_here = false;
    for ep in endpoints.iter().filter(|ep| ep.ready) {
        if ep.zone_hints.is_empty() {
            return None;
        }
        hinted_here |= ep.zone_hints.contains(zone);
    }
    hinted_here.then_some(zone.as_str())
}

#[cfg(test)]
mod tests;
