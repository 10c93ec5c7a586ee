//! The semantic oracle against the two other sources of truth: every golden
//! flow's expectations, and the real kube-proxy's recorded rules as traced.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use bigdecimal::BigDecimal;
use ipnet::IpNet;
use kpconform_iptables::model::{Family, Protocol};
use kpconform_iptables::parse_str;
use kpconform_iptables::SourceFile;
use kpconform_iptables::{Distribution, Packet, Tracer, Verdict};
use kpconform_suite::oracle::{Oracle, Prediction};
use kpconform_suite::scenario::{discover, FlowSource, GeneratorInput, Object, Scenario};

fn tolerance() -> BigDecimal {
    BigDecimal::new(1.into(), 6)
}

fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

/// The IPv6 and dual-stack recordings (each input's `node.family` says
/// which proxier's rules were recorded).
fn recordings_ipv6() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30-ipv6")
}

#[test]
fn golden_flows_and_oracle_agree_on_every_golden_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/scenarios");
    let files = discover(&root).expect("golden/scenarios is readable");
    assert!(
        !files.is_empty(),
        "no golden scenarios under {}",
        root.display()
    );
    let mut failures = Vec::new();
    let mut flows = 0;
    for path in &files {
        let scenario = Scenario::load(path, &root).unwrap_or_else(|e| panic!("{e}"));
        // One oracle per node and family: a flow is the business of the
        // proxier of its destination's family.
        let mut oracles: BTreeMap<(&str, Family), Oracle> = BTreeMap::new();
        for flow in &scenario.flows {
            flows += 1;
            let family = flow.packet().family();
            let oracle = oracles.entry((&flow.node, family)).or_insert_with(|| {
                let input = scenario
                    .cluster
                    .generator_input_for(&flow.node, family)
                    .expect("the loader checks flow nodes and their families");
                Oracle::new(&input)
            });
            let result = oracle
                .predict(&flow.packet())
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    p.check_expect(&flow.expect, &flow.tolerance)
                        .map_err(|m| m.to_string())
                });
            if let Err(e) = result {
                failures.push(format!(
                    "{} / {} (node {}):\n{e}",
                    scenario.id, flow.name, flow.node
                ));
            }
        }
    }
    assert!(flows > 100, "only {flows} golden flows");
    assert!(
        failures.is_empty(),
        "{} of {flows} golden flows disagree with the oracle:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Probes read straight from the objects, independently of the oracle's
/// own reading, so that an entry point the oracle overlooks still gets
/// probed: every cluster IP, external IP and ingress IP (whatever its
/// ipMode) on its port, every node port and health-check port on every node
/// address and 127.0.0.1, from the node, a pod, an outside client, each
/// source range and each endpoint.
fn raw_probes(input: &GeneratorInput) -> Vec<Packet> {
    let family = input.node.family;
    let of_family = |ip: &IpAddr| Family::of(*ip) == family;
    let outside = match family {
        Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
        Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 7)),
    };
    let mut sources = vec![FlowSource::Node, FlowSource::Ip(outside)];
    if let Some(cidr) = input.node.cluster_cidr() {
        sources.push(FlowSource::Ip(cidr.hosts().nth(200).unwrap_or(cidr.addr())));
    }
    let mut local: Vec<IpAddr> = input
        .node
        .addresses
        .iter()
        .map(IpNet::addr)
        .filter(of_family)
        .collect();
    local.push(family.localhost());
    let mut out = Vec::new();
    for object in &input.objects {
        let Object::Service(svc) = object else {
            continue;
        };
        let Some(spec) = &svc.spec else { continue };
        let mut vips: Vec<IpAddr> = Vec::new();
        let mut srcs = sources.clone();
        // Two endpoints of the service's own slices, for hairpins.
        for object in &input.objects {
            let Object::EndpointSlice(slice) = object else {
                continue;
            };
            let owner = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"));
            if owner == svc.metadata.name.as_ref()
                && slice.metadata.namespace == svc.metadata.namespace
            {
                for ep in slice.endpoints.iter().take(2) {
                    srcs.extend(
                        ep.addresses
                            .first()
                            .and_then(|a| a.parse().ok())
                            .filter(of_family)
                            .map(FlowSource::Ip),
                    );
                }
            }
        }
        // Every cluster IP the service has, whatever ipFamilies says.
        vips.extend(
            spec.cluster_ip
                .iter()
                .chain(spec.cluster_ips.iter().flatten())
                .filter_map(|ip| ip.parse::<IpAddr>().ok()),
        );
        vips.extend(
            spec.external_ips
                .iter()
                .flatten()
                .filter_map(|ip| ip.parse::<IpAddr>().ok()),
        );
        for ing in svc.status.iter().flat_map(|s| s.load_balancer.iter()) {
            for ip in ing.ingress.iter().flatten().filter_map(|i| i.ip.as_deref()) {
                if let Ok(ip) = ip.parse() {
                    vips.push(ip);
                    srcs.push(FlowSource::Ip(ip));
                }
            }
        }
        for range in spec.load_balancer_source_ranges.iter().flatten() {
            if let Ok(net) = range.parse::<IpNet>() {
                srcs.extend(net.hosts().nth(5).map(FlowSource::Ip));
            }
        }
        // A proxier sees packets of its own family only.
        vips.retain(of_family);
        vips.dedup();
        srcs.retain(|s| match s {
            FlowSource::Ip(ip) => of_family(ip),
            FlowSource::Node => true,
        });
        for port in spec.ports.iter().flatten() {
            let proto = match port.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let mut targets: Vec<SocketAddr> = vips
                .iter()
                .map(|ip| SocketAddr::new(*ip, port.port as u16))
                .collect();
            if let Some(np) = port.node_port {
                targets.extend(local.iter().map(|ip| SocketAddr::new(*ip, np as u16)));
            }
            for to in targets {
                for from in &srcs {
                    out.push(Packet::new(*from, to, proto));
                }
            }
        }
        if let Some(hc) = spec.health_check_node_port {
            for ip in &local {
                out.push(Packet::new(
                    sources[1],
                    SocketAddr::new(*ip, hc as u16),
                    Protocol::Tcp,
                ));
                out.push(Packet::new(
                    FlowSource::Node,
                    SocketAddr::new(*ip, hc as u16),
                    Protocol::Tcp,
                ));
            }
        }
    }
    out
}

/// Whether a second connection from the same client, after each DNATed
/// first outcome, reaches the same destination with probability 1. Stops at
/// the first that does not stick: without affinity that is normally the
/// first, so a 251-endpoint service costs one second trace, not 251.
fn sticks(tracer: &Tracer<'_>, packet: &Packet, first: &Distribution) -> bool {
    let one = kpconform_suite::exact::integer(1);
    first.outcomes.iter().filter(|o| o.dnated()).all(|o| {
        let second = tracer.trace_with(packet, &o.recent).expect("second trace");
        let same: kpconform_iptables::Mass = second
            .outcomes
            .iter()
            .filter(|s| s.destination == o.destination && s.verdict == o.verdict)
            .map(|s| &s.probability)
            .sum();
        kpconform_suite::exact::decimal_within(&same, &one, &tolerance())
    })
}

#[derive(Default)]
struct Seen {
    probes: usize,
    verdicts: BTreeSet<Verdict>,
    hairpins: usize,
    sticky: usize,
    untouched: usize,
    ipv6: usize,
}

fn note(seen: &mut Seen, p: &Prediction) {
    seen.probes += 1;
    seen.ipv6 += usize::from(p.packet.family() == Family::Ipv6);
    seen.verdicts.extend(p.outcomes.keys().map(|(v, _, _)| *v));
    seen.sticky += usize::from(p.sticky);
    let src = match p.packet.from {
        FlowSource::Ip(ip) => Some(ip),
        FlowSource::Node => None,
    };
    seen.hairpins += usize::from(
        p.outcomes
            .keys()
            .any(|(v, d, m)| *v == Verdict::Accept && *m && Some(d.ip()) == src),
    );
    seen.untouched +=
        usize::from(p.outcomes.len() == 1 && p.accepted().contains_key(&p.packet.to.addr));
}

/// Traces every probe through `rules_text` and compares with the oracle.
fn compare_probes(
    name: &str,
    input: &GeneratorInput,
    rules_text: &str,
    failures: &mut Vec<String>,
    seen: &mut Seen,
) {
    let rules = parse_str(rules_text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let tracer = Tracer::new(&rules, &input.node.addresses);
    let oracle = Oracle::new(input);
    let mut probes: BTreeMap<String, Packet> = BTreeMap::new();
    for p in oracle.probes().into_iter().chain(raw_probes(input)) {
        probes.insert(p.to_string(), p);
    }
    for packet in probes.values() {
        let prediction = match oracle.predict(packet) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        note(seen, &prediction);
        let dist = tracer
            .trace(packet)
            .unwrap_or_else(|e| panic!("{name}: {packet}: {e:?}"));
        if let Err(m) = prediction.compare(&dist, &tolerance()) {
            failures.push(format!("{name}: {m}"));
            continue;
        }
        let reachable = prediction.accepted().len();
        if prediction.sticky && !sticks(&tracer, packet, &dist) {
            failures.push(format!(
                "{name}: {packet}: oracle says sticky, trace does not stick"
            ));
        }
        if !prediction.sticky && reachable >= 2 && sticks(&tracer, packet, &dist) {
            failures.push(format!(
                "{name}: {packet}: trace sticks, oracle says not sticky"
            ));
        }
    }
}

/// Traces every probe through each recording of `dir` (`count` of them)
/// and compares with the oracle.
fn compare_recordings(dir: &Path, count: usize) -> (Vec<String>, Seen) {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("inputs"))
        .expect("recorded inputs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    names.sort();
    assert_eq!(names.len(), count);
    let mut failures = Vec::new();
    let mut seen = Seen::default();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(format!("inputs/{name}.yaml"))).expect("input");
        let input = GeneratorInput::from_yaml(&SourceFile::new(name.clone(), text))
            .unwrap_or_else(|e| panic!("{e}"));
        let rules =
            std::fs::read_to_string(dir.join(format!("outputs/{name}.rules"))).expect("rules");
        compare_probes(name, &input, &rules, &mut failures, &mut seen);
    }
    (failures, seen)
}

#[test]
fn traced_recordings_equal_the_oracle_on_every_probe() {
    let (failures, seen) = compare_recordings(&recordings(), 44);
    assert!(
        failures.is_empty(),
        "{} disagreements:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The probes reached every kind of outcome.
    assert!(seen.probes > 1500, "only {} probes", seen.probes);
    assert_eq!(seen.verdicts.len(), 3, "verdicts seen: {:?}", seen.verdicts);
    assert!(seen.hairpins > 10 && seen.sticky > 10 && seen.untouched > 100);
}

#[test]
fn traced_ipv6_and_dual_stack_recordings_equal_the_oracle_on_every_probe() {
    let (failures, seen) = compare_recordings(&recordings_ipv6(), 37);
    assert!(
        failures.is_empty(),
        "{} disagreements:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(seen.probes > 1200, "only {} probes", seen.probes);
    assert_eq!(seen.verdicts.len(), 3, "verdicts seen: {:?}", seen.verdicts);
    assert!(seen.hairpins > 10 && seen.sticky > 5 && seen.untouched > 100);
    assert!(seen.ipv6 > 900, "only {} IPv6 probes", seen.ipv6);
}
