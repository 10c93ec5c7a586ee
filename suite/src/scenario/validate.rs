//! What the Kubernetes API server would refuse: objects that could never be
//! in a cluster are errors at their field, not states a generator is judged
//! on. The rules are those of the API server's `ValidateService` and
//! `ValidateEndpointSlice` (v1.33), applied to the object as stored (after
//! defaulting: an absent `type` is ClusterIP, an absent `protocol` TCP, an
//! absent `sessionAffinity` None). Only what is checked here is refused; the
//! suite does not try to be a complete API server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use std::str::FromStr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::error::{index_path, key_path, ErrorKind, Problem};
use super::yaml::{Node, Value};
use super::Object;

/// Refuses `object` (read from `node` at `path`) if the API server would.
pub(crate) fn validate(node: &Node<'_>, path: &str, object: &Object) -> Result<(), Problem> {
    let root = Loc {
        key: None,
        node,
        path: Rc::new(Path::Root(path.to_string())),
    };
    match object {
        Object::Service(svc) => service(&root, svc),
        Object::EndpointSlice(slice) => endpoint_slice(&root, slice),
        // Node objects are checked against the scenario's nodes (load.rs).
        Object::Node(_) => Ok(()),
    }
}

/// A node of the object, the key it was found under, and its path.
#[derive(Clone)]
struct Loc<'a> {
    key: Option<&'a Node<'a>>,
    node: &'a Node<'a>,
    path: Rc<Path<'a>>,
}

/// Where a node is, as steps from the object. Spelled out as text only for
/// an error: formatting the path of every field checked was a tenth of the
/// time spent reading a large input's objects.
enum Path<'a> {
    Root(String),
    Key(Rc<Path<'a>>, &'a str),
    Index(Rc<Path<'a>>, usize),
}

impl Path<'_> {
    /// `a.b[3].c`, as [`key_path`] and [`index_path`] spell it.
    fn render(&self) -> String {
        match self {
            Path::Root(root) => root.clone(),
            Path::Key(parent, key) => key_path(&parent.render(), key),
            Path::Index(parent, i) => index_path(&parent.render(), *i),
        }
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl<'a> Loc<'a> {
    /// The value under `key`, if written.
    fn get(&self, key: &str) -> Option<Loc<'a>> {
        let Value::Map(entries) = &self.node.value else {
            return None;
        };
        entries.iter().find_map(|(k, v)| {
            // The key's own text (equal to `key`) lives as long as the tree.
            let text: &'a str = &k.scalar()?.text;
            (text == key).then(|| Loc {
                key: Some(k),
                node: v,
                path: Rc::new(Path::Key(Rc::clone(&self.path), text)),
            })
        })
    }

    /// The value under `key`; this node when absent (the typed object had
    /// a value, so it was written: this only guards against surprises).
    fn field(&self, key: &str) -> Loc<'a> {
        self.get(key).unwrap_or_else(|| self.clone())
    }

    /// Item `i` of a sequence; this node when there is none.
    fn item(&self, i: usize) -> Loc<'a> {
        match &self.node.value {
            Value::Seq(items) if i < items.len() => Loc {
                key: None,
                node: &items[i],
                path: Rc::new(Path::Index(Rc::clone(&self.path), i)),
            },
            _ => self.clone(),
        }
    }

    /// A wrong value, at the value.
    fn invalid(&self, message: impl Into<String>) -> Problem {
        Problem::invalid(self.node.span, &self.path.render(), message)
    }

    /// A problem with the whole field, at its key (the value when it has none).
    fn at_key(&self, kind: ErrorKind, message: impl Into<String>) -> Problem {
        let span = self.key.map_or(self.node.span, |k| k.span);
        Problem::new(kind, span, &self.path.render(), message)
    }
}

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

fn service(root: &Loc<'_>, svc: &Service) -> Result<(), Problem> {
    let Some(spec) = &svc.spec else {
        // No spec at all: a ClusterIP Service without a cluster IP.
        return Err(root.field("kind").invalid(
            "`spec.clusterIP` is missing: the API server assigns every Service other than a \
             headless or ExternalName one a cluster IP; write the one `kubectl get svc -o yaml` shows",
        ));
    };
    let spec_at = root.field("spec");
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&type_) {
        return Err(spec_at.field("type").invalid(format!(
            "`{type_}` is not a Service type: the API server accepts ClusterIP, NodePort, \
             LoadBalancer or ExternalName (absent means ClusterIP)"
        )));
    }
    let external_name = type_ == "ExternalName";
    let cluster_ip = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty());
    let headless = cluster_ip == Some("None");

    // Cluster IPs.
    match cluster_ip {
        Some(ip) if external_name => {
            return Err(spec_at.field("clusterIP").invalid(format!(
                "an ExternalName Service has no cluster IP: the API server refuses \
                 `clusterIP: {ip}` on one; remove it"
            )))
        }
        None if !external_name => {
            return Err(spec_at.at_key(
                ErrorKind::MissingKey,
                "`spec.clusterIP` is missing: the API server assigns every Service other than a \
                 headless or ExternalName one a cluster IP; write the one `kubectl get svc -o yaml` shows",
            ))
        }
        Some("None") if matches!(type_, "NodePort" | "LoadBalancer") => {
            return Err(spec_at.field("clusterIP").invalid(format!(
                "a {type_} Service cannot be headless: the API server refuses `clusterIP: None` \
                 unless the type is ClusterIP"
            )))
        }
        Some(ip) if ip != "None" && IpAddr::from_str(ip).is_err() => {
            return Err(spec_at.field("clusterIP").invalid(format!(
                "`{ip}` is not an IP address: `spec.clusterIP` is the Service's IP address \
                 (like 10.96.0.10), or `None` for a headless Service"
            )))
        }
        _ => {}
    }
    if let Some(ips) = spec.cluster_ips.as_ref().filter(|ips| !ips.is_empty()) {
        cluster_ips(&spec_at.field("clusterIPs"), ips, cluster_ip, external_name)?;
    }

    service_ports(&spec_at, spec, type_, headless || external_name)?;

    // External IPs.
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let at = spec_at.field("externalIPs").item(i);
        let parsed =
            IpAddr::from_str(ip).map_err(|_| at.invalid(format!("`{ip}` is not an IP address")))?;
        special_ip(&at, parsed)?;
    }

    // Traffic policies.
    let externally_accessible = matches!(type_, "NodePort" | "LoadBalancer")
        || (type_ == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
    if let Some(policy) = &spec.external_traffic_policy {
        let at = spec_at.field("externalTrafficPolicy");
        if !externally_accessible {
            let what = if type_ == "ClusterIP" {
                "a ClusterIP Service without `externalIPs`"
            } else {
                "an ExternalName Service"
            };
            return Err(at.invalid(format!(
                "`externalTrafficPolicy` may only be set on an externally accessible Service \
                 (type NodePort or LoadBalancer, or with `externalIPs`): the API server refuses it \
                 on {what}; remove it"
            )));
        }
        traffic_policy(&at, policy)?;
    }
    if let Some(policy) = &spec.internal_traffic_policy {
        traffic_policy(&spec_at.field("internalTrafficPolicy"), policy)?;
    }

    // Session affinity.
    let affinity = spec.session_affinity.as_deref().unwrap_or("None");
    if !matches!(affinity, "None" | "ClientIP") {
        return Err(spec_at.field("sessionAffinity").invalid(format!(
            "`{affinity}` is not a session affinity: ClientIP or None"
        )));
    }
    if let Some(config) = &spec.session_affinity_config {
        let config_at = spec_at.field("sessionAffinityConfig");
        if affinity != "ClientIP" {
            return Err(config_at.at_key(
                ErrorKind::InvalidValue,
                "`sessionAffinityConfig` is set but `sessionAffinity` is not ClientIP: the API \
                 server refuses it; set `sessionAffinity: ClientIP` or remove it",
            ));
        }
        let timeout = config.client_ip.as_ref().and_then(|c| c.timeout_seconds);
        if let Some(t) = timeout.filter(|t| !(1..=86_400).contains(t)) {
            return Err(config_at
                .field("clientIP")
                .field("timeoutSeconds")
                .invalid(format!(
                    "timeoutSeconds {t} is out of range 1..=86400: the API server keeps \
                     client-IP affinity for at most a day"
                )));
        }
    }
    Ok(())
}

/// `spec.clusterIPs`: its first entry is `clusterIP`, then at most one
/// address of the other family.
fn cluster_ips(
    at: &Loc<'_>,
    ips: &[String],
    cluster_ip: Option<&str>,
    external_name: bool,
) -> Result<(), Problem> {
    if external_name {
        return Err(at.at_key(
            ErrorKind::InvalidValue,
            "an ExternalName Service has no cluster IPs: the API server refuses `clusterIPs` on \
             one; remove it",
        ));
    }
    let first = at.item(0);
    match cluster_ip {
        Some(ip) if ip != ips[0] => {
            return Err(first.invalid(format!(
                "`clusterIPs[0]` is `{}` but `clusterIP` is `{ip}`: the API server requires the \
                 first of `spec.clusterIPs` to be `spec.clusterIP`",
                ips[0]
            )))
        }
        _ => {}
    }
    if ips.len() > 2 {
        return Err(at.item(2).invalid(
            "a Service has at most two cluster IPs (one IPv4, one IPv6): the API server refuses a third",
        ));
    }
    if ips[0] == "None" {
        if ips.len() > 1 {
            return Err(at.item(1).invalid(
                "`None` must be the only entry of `clusterIPs`: a headless Service has no cluster IP",
            ));
        }
        return Ok(());
    }
    let mut parsed = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let parsed_ip = IpAddr::from_str(ip).map_err(|_| {
            at.item(i).invalid(format!(
                "`{ip}` is not an IP address: `spec.clusterIPs` lists the Service's IP addresses"
            ))
        })?;
        parsed.push(parsed_ip);
    }
    if parsed.len() == 2 && parsed[0].is_ipv4() == parsed[1].is_ipv4() {
        return Err(at.item(1).invalid(
            "both cluster IPs are of the same family: the API server allows one IPv4 and one IPv6 \
             cluster IP, not two of a kind",
        ));
    }
    Ok(())
}

fn service_ports(
    spec_at: &Loc<'_>,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    type_: &str,
    portless_allowed: bool,
) -> Result<(), Problem> {
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !portless_allowed {
        let at = spec_at.get("ports").unwrap_or_else(|| spec_at.clone());
        return Err(at.at_key(
            ErrorKind::MissingKey,
            "a Service needs at least one port in `spec.ports`: the API server refuses a Service \
             without ports unless it is headless or ExternalName",
        ));
    }
    let ports_at = spec_at.field("ports");
    // Where each was first seen, spelled out only for a duplicate.
    let mut seen: BTreeMap<(i32, &str), Rc<Path<'_>>> = BTreeMap::new();
    let mut names: BTreeMap<&str, Rc<Path<'_>>> = BTreeMap::new();
    let mut node_ports: BTreeMap<(i32, &str), Rc<Path<'_>>> = BTreeMap::new();
    for (i, port) in ports.iter().enumerate() {
        let at = ports_at.item(i);
        let Some(port_at) = at.get("port").filter(|p| !p.node.is_null()) else {
            // k8s-openapi reads a missing `port` as 0.
            return Err(at.at_key(
                ErrorKind::MissingKey,
                "this port has no `port`: every Service port has a number (1..=65535)",
            ));
        };
        if !(1..=65535).contains(&port.port) {
            return Err(port_at.invalid(format!("port {} is out of range 1..=65535", port.port)));
        }
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            return Err(at.field("protocol").invalid(format!(
                "`{protocol}` is not a protocol: Service ports are TCP, UDP or SCTP (absent means TCP)"
            )));
        }
        match port.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => {
                let name_at = at.field("name");
                port_name(&name_at, name)?;
                if let Some(first) = names.insert(name, name_at.path.clone()) {
                    return Err(name_at.at_key(
                        ErrorKind::Duplicate,
                        format!(
                            "port name `{name}` is used twice (first at `{first}`): the API \
                             server requires the ports of a Service to have different names"
                        ),
                    ));
                }
            }
            None if ports.len() > 1 => {
                return Err(at.get("name").unwrap_or_else(|| at.clone()).at_key(
                    ErrorKind::MissingKey,
                    "this port has no `name`: the API server requires every port of a Service \
                     with several ports to be named",
                ));
            }
            None => {}
        }
        if let Some(first) = seen.insert((port.port, protocol), port_at.path.clone()) {
            return Err(port_at.at_key(
                ErrorKind::Duplicate,
                format!(
                    "port {}/{protocol} is listed twice (first at `{first}`): the API server \
                     refuses two ports with the same port and protocol",
                    port.port
                ),
            ));
        }
        if let Some(node_port) = port.node_port.filter(|&n| n != 0) {
            let node_port_at = at.field("nodePort");
            if !(1..=65535).contains(&node_port) {
                return Err(
                    node_port_at.invalid(format!("nodePort {node_port} is out of range 1..=65535"))
                );
            }
            if type_ == "ClusterIP" {
                return Err(node_port_at.at_key(
                    ErrorKind::InvalidValue,
                    "a ClusterIP Service has no node ports: the API server refuses `nodePort` \
                     unless the type is NodePort or LoadBalancer",
                ));
            }
            if let Some(first) = node_ports.insert((node_port, protocol), node_port_at.path.clone())
            {
                return Err(node_port_at.invalid(format!(
                    "nodePort {node_port}/{protocol} is used twice (first at `{first}`): the API \
                     server gives every node port to one port only"
                )));
            }
        }
    }
    Ok(())
}

/// A port name: a DNS label (RFC 1123), as the API server requires.
fn port_name(at: &Loc<'_>, name: &str) -> Result<(), Problem> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(at.invalid(format!(
            "`{name}` is not a valid port name: at most 63 lowercase letters, digits and `-`, \
             starting and ending with a letter or digit"
        )))
    }
}

fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| ok(c) || c == '-')
        && s.starts_with(ok)
        && s.ends_with(ok)
}

fn traffic_policy(at: &Loc<'_>, policy: &str) -> Result<(), Problem> {
    if matches!(policy, "Cluster" | "Local") {
        Ok(())
    } else {
        Err(at.invalid(format!(
            "`{policy}` is not a traffic policy: Cluster or Local"
        )))
    }
}

/// The addresses the API server refuses as external IPs (`ValidateNonSpecialIP`).
fn special_ip(at: &Loc<'_>, ip: IpAddr) -> Result<(), Problem> {
    let range = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback (127.0.0.0/8)"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback (::1)"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local (169.254.0.0/16)"),
        IpAddr::V4(v4) if v4.octets()[..3] == [224, 0, 0] => {
            Some("link-local multicast (224.0.0.0/24)")
        }
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some("link-local (fe80::/10)"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xff0f == 0xff02 => {
            Some("link-local multicast (ff02::/16)")
        }
        _ => None,
    };
    match range {
        Some(range) => Err(at.invalid(format!(
            "`{ip}` is {range}: the API server refuses unspecified, loopback and link-local \
             addresses as external IPs"
        ))),
        None => Ok(()),
    }
}

fn endpoint_slice(root: &Loc<'_>, slice: &EndpointSlice) -> Result<(), Problem> {
    let address_type = slice.address_type.as_str();
    if root.get("addressType").is_none_or(|a| a.node.is_null()) {
        // k8s-openapi reads a missing `addressType` as ''.
        return Err(root.field("kind").invalid(
            "`addressType` is missing: an EndpointSlice says whether it holds IPv4, IPv6 or FQDN \
             addresses",
        ));
    }
    if !matches!(address_type, "IPv4" | "IPv6" | "FQDN") {
        return Err(root.field("addressType").invalid(format!(
            "`{address_type}` is not an address type: IPv4, IPv6 or FQDN"
        )));
    }
    let endpoints_at = root.field("endpoints");
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        let at = endpoints_at.item(i);
        if endpoint.addresses.is_empty() {
            let addresses = at.get("addresses").unwrap_or_else(|| at.clone());
            return Err(addresses.at_key(
                ErrorKind::MissingKey,
                "an endpoint needs at least one address: the API server refuses an empty \
                 `addresses`",
            ));
        }
        let addresses_at = at.field("addresses");
        for (j, address) in endpoint.addresses.iter().enumerate() {
            endpoint_address(&addresses_at.item(j), address, address_type)?;
        }
    }
    let ports_at = root.field("ports");
    let mut names: BTreeMap<&str, Rc<Path<'_>>> = BTreeMap::new();
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        let at = ports_at.item(i);
        if let Some(p) = port.port.filter(|p| !(1..=65535).contains(p)) {
            return Err(at
                .field("port")
                .invalid(format!("port {p} is out of range 1..=65535")));
        }
        if let Some(protocol) = port.protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
            return Err(at.field("protocol").invalid(format!(
                "`{protocol}` is not a protocol: EndpointSlice ports are TCP, UDP or SCTP \
                 (absent means TCP)"
            )));
        }
        let name = port.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            port_name(&at.field("name"), name)?;
        }
        let name_at = at.get("name").unwrap_or_else(|| at.clone());
        if let Some(first) = names.insert(name, name_at.path.clone()) {
            return Err(name_at.at_key(
                ErrorKind::Duplicate,
                format!(
                    "port name `{name}` is used twice (first at `{first}`): the API server \
                     requires the ports of an EndpointSlice to have different names"
                ),
            ));
        }
    }
    Ok(())
}

fn endpoint_address(at: &Loc<'_>, address: &str, address_type: &str) -> Result<(), Problem> {
    let valid = match address_type {
        "IPv4" => Ipv4Addr::from_str(address).is_ok(),
        // `::ffff:10.0.0.1` is an IPv4 address to the API server.
        "IPv6" => Ipv6Addr::from_str(address).is_ok_and(|v6| v6.to_ipv4_mapped().is_none()),
        _ => {
            return if is_fqdn(address) {
                Ok(())
            } else {
                Err(at.invalid(format!(
                    "`{address}` is not a fully qualified domain name, and this slice's \
                     `addressType` is FQDN"
                )))
            };
        }
    };
    if valid {
        Ok(())
    } else {
        Err(at.invalid(format!(
            "`{address}` is not an {address_type} address, and this slice's `addressType` is \
             {address_type}: the API server refuses an address of another type (an EndpointSlice \
             holds one address family)"
        )))
    }
}

/// A DNS-1123 subdomain of at least two labels (a trailing dot allowed).
fn is_fqdn(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests;
