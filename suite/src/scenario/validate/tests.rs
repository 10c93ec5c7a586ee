//! Each check with the line:column it reports. Objects are read through
//! `parse_objects` (what `audit` and `new-scenario` use); scenarios and
//! generator inputs read them through the same function, which
//! `scenario::tests` and the runner's `validation` tests show.

use crate::scenario::{parse_objects, ErrorKind, Object};
use kpconform_iptables::SourceFile;

/// A valid Service; tests replace one line of it.
const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.50
  clusterIPs: [10.96.0.50]
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
  sessionAffinity: None
";

/// A valid EndpointSlice; tests replace one line of it.
const SLICE: &str = "\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.64.0.5]
  conditions: {ready: true}
ports:
- {name: http, port: 8080, protocol: TCP}
";

fn load(text: &str) -> Result<Vec<Object>, crate::scenario::ScenarioError> {
    parse_objects(&SourceFile::new("objs.yaml", text))
}

fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "`{from}` is not in the base text");
    base.replacen(from, to, 1)
}

/// Asserts the text is refused at `line:column`, `path`, with `kind`, and a
/// message containing `needle`.
#[track_caller]
fn refused(text: &str, kind: ErrorKind, line: usize, column: usize, path: &str, needle: &str) {
    let err = match load(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(
        (err.kind(), err.line(), err.column(), err.path()),
        (kind, line, column, path),
        "{err}"
    );
    assert!(err.message().contains(needle), "{err}");
}

#[test]
fn the_bases_are_valid() {
    assert_eq!(load(SERVICE).expect("service").len(), 1);
    assert_eq!(load(SLICE).expect("slice").len(), 1);
}

#[test]
fn a_service_without_cluster_ip_is_refused_at_its_spec() {
    let text = edit(
        SERVICE,
        "  clusterIP: 10.96.0.50\n  clusterIPs: [10.96.0.50]\n",
        "",
    );
    refused(
        &text,
        ErrorKind::MissingKey,
        4,
        1,
        "spec",
        "`spec.clusterIP` is missing: the API server assigns every Service other than a headless or ExternalName one a cluster IP; write the one `kubectl get svc -o yaml` shows",
    );
    // An empty string is what the API server reads as "allocate one".
    let text = edit(SERVICE, "clusterIP: 10.96.0.50", "clusterIP: ''");
    let text = edit(&text, "  clusterIPs: [10.96.0.50]\n", "");
    refused(&text, ErrorKind::MissingKey, 4, 1, "spec", "is missing");
    // No spec at all: at the kind.
    refused(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
        ErrorKind::InvalidValue,
        2,
        7,
        "kind",
        "`spec.clusterIP` is missing",
    );
}

#[test]
fn headless_and_external_name_services_need_no_cluster_ip() {
    let headless = edit(SERVICE, "clusterIP: 10.96.0.50", "clusterIP: None");
    let headless = edit(&headless, "clusterIPs: [10.96.0.50]", "clusterIPs: [None]");
    load(&headless).expect("headless");
    let external = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n\
                    spec: {type: ExternalName, externalName: api.example.com}\n";
    load(external).expect("ExternalName without ports");
}

#[test]
fn external_name_services_have_no_cluster_ip() {
    refused(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n\
         spec: {type: ExternalName, externalName: api.example.com, clusterIP: 10.96.0.9}\n",
        ErrorKind::InvalidValue,
        4,
        70,
        "spec.clusterIP",
        "an ExternalName Service has no cluster IP",
    );
}

#[test]
fn invalid_cluster_ips_are_refused_at_the_value() {
    let text = edit(SERVICE, "clusterIP: 10.96.0.50", "clusterIP: 10.96.0.500");
    refused(
        &text,
        ErrorKind::InvalidValue,
        6,
        14,
        "spec.clusterIP",
        "`10.96.0.500` is not an IP address",
    );
    let text = edit(SERVICE, "type: ClusterIP", "type: NodePort");
    let text = edit(&text, "clusterIP: 10.96.0.50", "clusterIP: None");
    let text = edit(&text, "[10.96.0.50]", "[None]");
    refused(
        &text,
        ErrorKind::InvalidValue,
        6,
        14,
        "spec.clusterIP",
        "a NodePort Service cannot be headless",
    );
}

#[test]
fn cluster_ips_must_start_with_cluster_ip() {
    let text = edit(SERVICE, "[10.96.0.50]", "[10.96.0.51]");
    refused(
        &text,
        ErrorKind::InvalidValue,
        7,
        16,
        "spec.clusterIPs[0]",
        "`clusterIPs[0]` is `10.96.0.51` but `clusterIP` is `10.96.0.50`",
    );
    let text = edit(SERVICE, "[10.96.0.50]", "[10.96.0.50, 10.96.0.51]");
    refused(
        &text,
        ErrorKind::InvalidValue,
        7,
        28,
        "spec.clusterIPs[1]",
        "same family",
    );
    let dual = edit(SERVICE, "[10.96.0.50]", "[10.96.0.50, 'fd00:10:96::50']");
    load(&dual).expect("dual stack");
    // clusterIPs may be left out: the API server fills it in from clusterIP.
    load(&edit(SERVICE, "  clusterIPs: [10.96.0.50]\n", "")).expect("no clusterIPs");
}

#[test]
fn unknown_service_type_is_refused() {
    let text = edit(SERVICE, "type: ClusterIP", "type: Nodeport");
    refused(
        &text,
        ErrorKind::InvalidValue,
        5,
        9,
        "spec.type",
        "`Nodeport` is not a Service type",
    );
}

#[test]
fn service_ports_are_in_range() {
    let text = edit(SERVICE, "port: 80,", "port: 0,");
    refused(
        &text,
        ErrorKind::InvalidValue,
        9,
        24,
        "spec.ports[0].port",
        "port 0 is out of range 1..=65535",
    );
    let text = edit(SERVICE, "port: 53,", "port: 65536,");
    refused(
        &text,
        ErrorKind::InvalidValue,
        10,
        23,
        "spec.ports[1].port",
        "port 65536 is out of range",
    );
    let text = edit(SERVICE, " port: 53,", "");
    refused(
        &text,
        ErrorKind::MissingKey,
        10,
        5,
        "spec.ports[1]",
        "this port has no `port`",
    );
}

#[test]
fn service_port_protocols_are_tcp_udp_or_sctp() {
    let text = edit(SERVICE, "protocol: UDP", "protocol: udp");
    refused(
        &text,
        ErrorKind::InvalidValue,
        10,
        37,
        "spec.ports[1].protocol",
        "`udp` is not a protocol",
    );
}

#[test]
fn duplicate_port_and_protocol_is_refused_at_the_second() {
    let text = edit(
        SERVICE,
        "port: 53, protocol: UDP",
        "port: 80, protocol: TCP",
    );
    refused(
        &text,
        ErrorKind::Duplicate,
        10,
        17,
        "spec.ports[1].port",
        "port 80/TCP is listed twice (first at `spec.ports[0].port`)",
    );
    // Same port, other protocol: fine (DNS).
    load(&edit(
        SERVICE,
        "port: 53, protocol: UDP",
        "port: 80, protocol: UDP",
    ))
    .expect("80/udp");
}

#[test]
fn several_ports_must_all_be_named_uniquely() {
    let text = edit(SERVICE, "{name: dns, port: 53", "{port: 53");
    refused(
        &text,
        ErrorKind::MissingKey,
        10,
        5,
        "spec.ports[1]",
        "this port has no `name`",
    );
    let text = edit(SERVICE, "name: dns", "name: http");
    refused(
        &text,
        ErrorKind::Duplicate,
        10,
        6,
        "spec.ports[1].name",
        "port name `http` is used twice (first at `spec.ports[0].name`)",
    );
    let text = edit(SERVICE, "name: dns", "name: DNS_53");
    refused(
        &text,
        ErrorKind::InvalidValue,
        10,
        12,
        "spec.ports[1].name",
        "`DNS_53` is not a valid port name",
    );
    // One port needs no name.
    let single = edit(SERVICE, "  - {name: dns, port: 53, protocol: UDP}\n", "");
    load(&edit(&single, "name: http, ", "")).expect("one unnamed port");
}

#[test]
fn node_ports_are_in_range_and_unique() {
    let node_port = edit(SERVICE, "type: ClusterIP", "type: NodePort");
    let text = edit(
        &node_port,
        "targetPort: 8080}",
        "targetPort: 8080, nodePort: 70000}",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        9,
        71,
        "spec.ports[0].nodePort",
        "nodePort 70000 is out of range 1..=65535",
    );
    // Outside the default 30000-32767 range is fine: the range is configurable.
    let text = edit(
        &node_port,
        "targetPort: 8080}",
        "targetPort: 8080, nodePort: 8080}",
    );
    load(&text).expect("node port 8080");
    let text = edit(&node_port, "targetPort: 8080}", "nodePort: 30080}");
    let text = edit(&text, "protocol: UDP}", "protocol: TCP, nodePort: 30080}");
    refused(
        &text,
        ErrorKind::InvalidValue,
        10,
        52,
        "spec.ports[1].nodePort",
        "nodePort 30080/TCP is used twice",
    );
}

#[test]
fn external_traffic_policy_needs_an_externally_accessible_service() {
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  externalTrafficPolicy: Local\n",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        26,
        "spec.externalTrafficPolicy",
        "the API server refuses it on a ClusterIP Service without `externalIPs`",
    );
    // With externalIPs it is externally accessible (the v1.30 recording
    // externalip-etp-local-no-local-endpoint is such a Service).
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  externalTrafficPolicy: Local\n  externalIPs: [198.51.100.7]\n",
    );
    load(&text).expect("ETP Local with externalIPs");
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  type: NodePort\n  externalTrafficPolicy: local\n",
    );
    let text = edit(&text, "  type: ClusterIP\n", "");
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        26,
        "spec.externalTrafficPolicy",
        "`local` is not a traffic policy",
    );
}

#[test]
fn external_ips_are_addresses_the_api_server_accepts() {
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  externalIPs: [198.51.100.7, 127.0.0.1]\n",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        31,
        "spec.externalIPs[1]",
        "`127.0.0.1` is loopback",
    );
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  externalIPs: [web]\n",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        17,
        "spec.externalIPs[0]",
        "`web` is not an IP address",
    );
}

#[test]
fn session_affinity_timeout_is_at_most_a_day() {
    let affinity = |timeout: &str| {
        edit(
            SERVICE,
            "  sessionAffinity: None\n",
            &format!(
                "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP: {{timeoutSeconds: {timeout}}}\n"
            ),
        )
    };
    load(&affinity("86400")).expect("one day");
    load(&affinity("1")).expect("one second");
    refused(
        &affinity("86401"),
        ErrorKind::InvalidValue,
        13,
        32,
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "timeoutSeconds 86401 is out of range 1..=86400",
    );
    refused(
        &affinity("0"),
        ErrorKind::InvalidValue,
        13,
        32,
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "timeoutSeconds 0 is out of range",
    );
    let text = edit(
        SERVICE,
        "  sessionAffinity: None\n",
        "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        3,
        "spec.sessionAffinityConfig",
        "`sessionAffinity` is not ClientIP",
    );
    let text = edit(SERVICE, "sessionAffinity: None", "sessionAffinity: Sticky");
    refused(
        &text,
        ErrorKind::InvalidValue,
        11,
        20,
        "spec.sessionAffinity",
        "`Sticky` is not a session affinity",
    );
}

#[test]
fn a_service_needs_a_port_unless_headless_or_external_name() {
    let text = edit(
        SERVICE,
        "  ports:\n  - {name: http, port: 80, protocol: TCP, targetPort: 8080}\n  - {name: dns, port: 53, protocol: UDP}\n",
        "  ports: []\n",
    );
    refused(
        &text,
        ErrorKind::MissingKey,
        8,
        3,
        "spec.ports",
        "a Service needs at least one port",
    );
    let headless = edit(&text, "clusterIP: 10.96.0.50", "clusterIP: None");
    load(&edit(&headless, "[10.96.0.50]", "[None]")).expect("headless without ports");
}

#[test]
fn endpoint_slice_address_type_is_ipv4_ipv6_or_fqdn() {
    refused(
        &edit(SLICE, "addressType: IPv4\n", ""),
        ErrorKind::InvalidValue,
        2,
        7,
        "kind",
        "`addressType` is missing",
    );
    let text = edit(SLICE, "addressType: IPv4", "addressType: IP");
    refused(
        &text,
        ErrorKind::InvalidValue,
        7,
        14,
        "addressType",
        "`IP` is not an address type",
    );
}

#[test]
fn endpoint_addresses_match_the_address_type() {
    let text = edit(SLICE, "[10.64.0.5]", "[10.64.0.5, 'fd00::5']");
    refused(
        &text,
        ErrorKind::InvalidValue,
        9,
        26,
        "endpoints[0].addresses[1]",
        "`fd00::5` is not an IPv4 address, and this slice's `addressType` is IPv4",
    );
    let v6 = edit(SLICE, "addressType: IPv4", "addressType: IPv6");
    refused(
        &v6,
        ErrorKind::InvalidValue,
        9,
        15,
        "endpoints[0].addresses[0]",
        "`10.64.0.5` is not an IPv6 address",
    );
    load(&edit(&v6, "[10.64.0.5]", "['fd00::5']")).expect("an IPv6 slice");
    let fqdn = edit(SLICE, "addressType: IPv4", "addressType: FQDN");
    load(&edit(&fqdn, "[10.64.0.5]", "[db.example.com]")).expect("an FQDN slice");
    refused(
        &edit(&fqdn, "[10.64.0.5]", "['not a name']"),
        ErrorKind::InvalidValue,
        9,
        15,
        "endpoints[0].addresses[0]",
        "not a fully qualified domain name",
    );
    refused(
        &edit(SLICE, "[10.64.0.5]", "[]"),
        ErrorKind::MissingKey,
        9,
        3,
        "endpoints[0].addresses",
        "an endpoint needs at least one address",
    );
}

#[test]
fn endpoint_slice_ports() {
    refused(
        &edit(SLICE, "port: 8080", "port: 0"),
        ErrorKind::InvalidValue,
        12,
        22,
        "ports[0].port",
        "port 0 is out of range 1..=65535",
    );
    refused(
        &edit(SLICE, "protocol: TCP", "protocol: HTTP"),
        ErrorKind::InvalidValue,
        12,
        38,
        "ports[0].protocol",
        "`HTTP` is not a protocol",
    );
    refused(
        &edit(
            SLICE,
            "- {name: http, port: 8080, protocol: TCP}\n",
            "- {name: http, port: 8080}\n- {name: http, port: 8443}\n",
        ),
        ErrorKind::Duplicate,
        13,
        4,
        "ports[1].name",
        "port name `http` is used twice",
    );
    // No port at all (kube-proxy then has nothing to route to): the API allows it.
    load(&edit(
        SLICE,
        "{name: http, port: 8080, protocol: TCP}",
        "{name: http}",
    ))
    .expect("no port");
}

#[test]
fn a_slice_without_a_service_name_label_is_accepted() {
    // kube-proxy ignores it; the API server does not refuse it.
    let text = edit(SLICE, "  labels: {kubernetes.io/service-name: web}\n", "");
    load(&text).expect("unlabelled slice");
}

#[test]
fn objects_inside_a_list_are_validated_with_their_list_path() {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n- ");
    let bad = edit(SERVICE, "type: ClusterIP", "type: Headless");
    text.push_str(&bad.replace('\n', "\n  "));
    refused(
        &text,
        ErrorKind::InvalidValue,
        8,
        11,
        "items[0].spec.type",
        "`Headless` is not a Service type",
    );
}

#[test]
fn node_ports_are_refused_on_cluster_ip_services() {
    let text = edit(
        SERVICE,
        "targetPort: 8080}",
        "targetPort: 8080, nodePort: 30080}",
    );
    refused(
        &text,
        ErrorKind::InvalidValue,
        9,
        61,
        "spec.ports[0].nodePort",
        "a ClusterIP Service has no node ports",
    );
}
