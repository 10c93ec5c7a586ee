//! `kpconform audit`: is this node's rule set right for this cluster state?
//! The invariants, then every probe packet the semantic oracle derives from
//! the objects (each service address from each kind of source), traced and
//! compared with what Kubernetes semantics require.
//!
//! Where pods live (kube-proxy's `--cluster-cidr`) decides some of those
//! judgments: `--cluster-cidr`, else the pod network the Nodes' podCIDRs
//! imply (as `new-scenario` derives it), else nothing — and then what
//! depends on it is left out rather than guessed.

use kpconform_iptables::model::Family;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Result};
use bigdecimal::BigDecimal;
use ipnet::IpNet;
use kpconform_iptables::{Packet, Tracer};
use kpconform_suite::oracle::{Oracle, OracleError, PodNetworkDependence, ServicePortName};
use kpconform_suite::scenario::{parse_objects, GeneratorInput, NodeConfig};
use kpconform_suite::skeleton::pod_network_from_nodes;

use super::lint::{report_violations, resolve_profile};
use super::Outcome;
use crate::cli::{parse_node_spec, AuditArgs};
use crate::rules_file;

/// Where the pod network came from.
enum PodNetwork {
    /// `--cluster-cidr`.
    Given,
    /// The Nodes' podCIDRs.
    FromNodes,
    /// Nowhere: judgments that depend on it are left out.
    Unknown,
}

/// What became of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judgment {
    Agreed,
    /// Agreed on verdicts and destinations; masquerading not judged.
    AgreedUnmasked,
    Disagreed,
    /// Several entry points claim it.
    Skipped,
    /// Its outcome depends on the unknown pod network.
    LeftOut,
}

pub(crate) fn run(args: &AuditArgs) -> Result<Outcome> {
    let (name, addresses) = parse_node_spec(&args.node).map_err(|e| anyhow!("--node {e}"))?;
    let objects_file = rules_file::read(&args.kubectl)?;
    let objects = parse_objects(&objects_file).map_err(|e| anyhow!("{e}"))?;
    let source = rules_file::read(&args.rules)?;
    let rules = rules_file::parse(&source, &args.parse)?;

    let (cluster_cidr, pod_network) = match args.cluster_cidr {
        Some(cidr) => (Some(cidr), PodNetwork::Given),
        None => match pod_network_from_nodes(&objects) {
            Some((net, from)) => {
                let list: Vec<String> = from.iter().map(IpNet::to_string).collect();
                outln!(
                    "pod network {net}, from the Nodes' spec.podCIDRs ({}); give --cluster-cidr if \
                     kube-proxy's differs",
                    list.join(", ")
                );
                (Some(net), PodNetwork::FromNodes)
            }
            None => {
                eprintln!(
                    "warning: nothing says where pods live (no --cluster-cidr, and no Node with \
                     spec.podCIDRs): probes whose outcome depends on it are left out, and \
                     masquerading is not judged where it depends on it\n"
                );
                (None, PodNetwork::Unknown)
            }
        },
    };

    let input = GeneratorInput {
        node: NodeConfig {
            name,
            // The dump says which proxier wrote it (ip6tables-save or
            // iptables-save); an address-free dump is taken as IPv4.
            family: rules.family().unwrap_or(Family::Ipv4),
            addresses: addresses.clone(),
            cluster_cidrs: cluster_cidr.into_iter().collect(),
            masquerade_all: args.masquerade_all,
            masquerade_bit: args.masquerade_bit,
            node_port_addresses: args.node_port_addresses.clone(),
        },
        objects,
    };

    let profile = resolve_profile(args.profile, &rules);
    let violations = report_violations(&source, &rules, profile);

    let oracle = Oracle::new(&input);
    let tracer = Tracer::new(&rules, &addresses)
        .with_mode(args.probability.into())
        .with_route_localnet(kpconform_suite::check::route_localnet(
            &args.node_port_addresses,
        ));
    let tolerance: BigDecimal = "0.000001".parse().expect("a decimal");
    let probes = oracle.probes();
    let mut judged: Vec<(Packet, Judgment)> = Vec::with_capacity(probes.len());
    for packet in &probes {
        let predicted = match pod_network {
            PodNetwork::Unknown => oracle.predict_without_pod_network(packet),
            _ => oracle
                .predict(packet)
                .map(|p| (p, PodNetworkDependence::Independent)),
        };
        let (prediction, dependence) = match predicted {
            Ok(p) => p,
            Err(e @ OracleError::Overlap { .. }) => {
                outln!("skipped: {e}");
                judged.push((*packet, Judgment::Skipped));
                continue;
            }
            Err(e) => return Err(anyhow!("{e}")),
        };
        if dependence == PodNetworkDependence::Fate {
            judged.push((*packet, Judgment::LeftOut));
            continue;
        }
        let traced = match tracer.trace(packet) {
            Ok(d) => d,
            Err(e) => {
                outln!("FAIL {packet}: cannot be traced\n{}\n", e.render(&source));
                judged.push((*packet, Judgment::Disagreed));
                continue;
            }
        };
        let (compared, agreed) = if dependence == PodNetworkDependence::Masquerade {
            (
                prediction.compare_ignoring_masquerade(&traced, &tolerance),
                Judgment::AgreedUnmasked,
            )
        } else {
            (prediction.compare(&traced, &tolerance), Judgment::Agreed)
        };
        match compared {
            Ok(()) => judged.push((*packet, agreed)),
            Err(m) => {
                outln!("FAIL {m}\n");
                judged.push((*packet, Judgment::Disagreed));
            }
        }
    }

    if args.verbose {
        print_table(&oracle, &judged);
    }
    let count = |j: &[Judgment]| judged.iter().filter(|(_, x)| j.contains(x)).count();
    let agreed = count(&[Judgment::Agreed, Judgment::AgreedUnmasked]);
    let disagreed = count(&[Judgment::Disagreed]);
    let skipped = count(&[Judgment::Skipped]);
    let mut summary = format!(
        "{} probe(s): {agreed} as Kubernetes requires, {disagreed} not, {skipped} skipped",
        probes.len()
    );
    if let PodNetwork::Unknown = pod_network {
        summary.push_str(&format!(
            ", {} left out for want of the pod network, masquerading not judged on {}",
            count(&[Judgment::LeftOut]),
            count(&[Judgment::AgreedUnmasked]),
        ));
    }
    summary.push_str(&format!(
        "; {violations} invariant violation(s) ({profile} profile)"
    ));
    if disagreed == 0 && violations == 0 {
        outln!("ok: {summary}");
        Ok(Outcome::Pass)
    } else {
        outln!("FAILED: {summary}");
        if let (PodNetwork::FromNodes, Some(net)) = (&pod_network, cluster_cidr) {
            outln!(
                "(the pod network {net} was derived from the Nodes' podCIDRs: if kube-proxy's \
                 --cluster-cidr is another, give it)"
            );
        }
        Ok(Outcome::Fail)
    }
}

/// `--verbose`: one row per service port (and one for addresses that are no
/// service's): the addresses probed and what became of the probes.
fn print_table(oracle: &Oracle, judged: &[(Packet, Judgment)]) {
    #[derive(Default)]
    struct Row {
        addresses: BTreeSet<String>,
        judgments: Vec<Judgment>,
    }
    let mut rows: BTreeMap<Option<ServicePortName>, Row> = BTreeMap::new();
    for (packet, judgment) in judged {
        let row = rows.entry(oracle.service_port_of(packet)).or_default();
        row.addresses
            .insert(format!("{}/{}", packet.to.addr, packet.to.protocol));
        row.judgments.push(*judgment);
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|(port, row)| {
            let (service, port) = match port {
                Some(p) => {
                    let (service, name) = match p.name.split_once(':') {
                        Some((s, n)) => (s.to_string(), format!("{n} ")),
                        None => (p.name.clone(), String::new()),
                    };
                    let node_port = p
                        .node_port
                        .map(|n| format!(", node port {n}"))
                        .unwrap_or_default();
                    (
                        service,
                        format!("{name}{}/{}{node_port}", p.port, p.protocol),
                    )
                }
                None => ("(no service)".to_string(), "-".to_string()),
            };
            let addresses: Vec<&str> = row.addresses.iter().map(String::as_str).collect();
            [service, port, addresses.join(" "), result(&row.judgments)]
        })
        .collect();
    let header = ["SERVICE", "PORT", "ADDRESSES PROBED", "RESULT"];
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    outln!(
        "{:w0$}  {:w1$}  {:w2$}  {}",
        header[0],
        header[1],
        header[2],
        header[3]
    );
    for [service, port, addresses, result] in &table {
        outln!("{service:w0$}  {port:w1$}  {addresses:w2$}  {result}");
    }
    outln!();
}

/// `ok (12 probes)`, `FAIL (2 of 12 probes)`, with what was not judged.
fn result(judgments: &[Judgment]) -> String {
    let n = |j: Judgment| judgments.iter().filter(|x| **x == j).count();
    let total = judgments.len();
    let failed = n(Judgment::Disagreed);
    let mut out = if failed > 0 {
        format!("FAIL ({failed} of {total} probe(s))")
    } else {
        format!("ok ({total} probe(s))")
    };
    let mut notes = Vec::new();
    if n(Judgment::Skipped) > 0 {
        notes.push(format!("{} skipped", n(Judgment::Skipped)));
    }
    if n(Judgment::LeftOut) > 0 {
        notes.push(format!("{} left out", n(Judgment::LeftOut)));
    }
    if n(Judgment::AgreedUnmasked) > 0 {
        notes.push(format!(
            "masquerading not judged on {}",
            n(Judgment::AgreedUnmasked)
        ));
    }
    if !notes.is_empty() {
        out.push_str(&format!(": {}", notes.join(", ")));
    }
    out
}
