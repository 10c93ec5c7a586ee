//! `kpconform audit`: is this node's rule set right for this cluster state?
//! The invariants, then every probe packet the semantic oracle derives from
//! the objects (each service address from each kind of source), traced and
//! compared with what Kubernetes semantics require.
//!
//! A dump is one family's: its family is that of the addresses it names
//! (`RuleSet::family`), and it is judged against the oracle of that family.
//! A dual-stack node gives both dumps (`--rules` twice): each is audited on
//! its own, then one combined summary.
//!
//! Where pods live (kube-proxy's `--cluster-cidr`) decides some of those
//! judgments: `--cluster-cidr` (one CIDR, or one per family), else the pod
//! network the Nodes' podCIDRs imply (as `new-scenario` derives it; IPv4
//! only for now), else nothing — and then what depends on it is left out
//! rather than guessed.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use bigdecimal::BigDecimal;
use ipnet::IpNet;
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::{Packet, SourceFile, Tracer};
use kpconform_suite::invariants::Profile;
use kpconform_suite::oracle::{Oracle, OracleError, PodNetworkDependence, ServicePortName};
use kpconform_suite::scenario::{parse_objects, GeneratorInput, NodeConfig, Object};
use kpconform_suite::skeleton::pod_network_from_nodes;

use super::lint::{report_violations, resolve_profile};
use super::Outcome;
use crate::cli::{parse_node_spec, AuditArgs};
use crate::parallel;
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

/// One dump to audit: the rules of one family's proxier.
struct Dump {
    source: SourceFile,
    rules: RuleSet,
    family: Family,
}

/// What the audit of one dump found.
struct Tally {
    probes: usize,
    agreed: usize,
    disagreed: usize,
    skipped: usize,
    left_out: usize,
    unmasked: usize,
    violations: usize,
    profile: Profile,
    /// The pod network was unknown for this dump.
    unknown_pods: bool,
}

impl Tally {
    /// `N probe(s): ... ; V invariant violation(s) (P profile)`.
    fn summary(&self) -> String {
        let mut summary = format!(
            "{} probe(s): {} as Kubernetes requires, {} not, {} skipped",
            self.probes, self.agreed, self.disagreed, self.skipped
        );
        if self.unknown_pods {
            summary.push_str(&format!(
                ", {} left out for want of the pod network, masquerading not judged on {}",
                self.left_out, self.unmasked,
            ));
        }
        summary.push_str(&format!(
            "; {} invariant violation(s) ({} profile)",
            self.violations, self.profile
        ));
        summary
    }
}

pub(crate) fn run(args: &AuditArgs) -> Result<Outcome> {
    let (name, addresses) = parse_node_spec(&args.node).map_err(|e| anyhow!("--node {e}"))?;
    let objects_file = rules_file::read(&args.kubectl)?;
    let objects = parse_objects(&objects_file).map_err(|e| anyhow!("{e}"))?;
    if args.rules.len() > 2 {
        bail!(
            "--rules is given {} times; a node has at most two dumps, one per family \
             (iptables-save and ip6tables-save)",
            args.rules.len()
        );
    }
    if args.rules.len() == 2 && args.rules.iter().all(|r| r.as_os_str() == "-") {
        bail!("--rules: standard input (`-`) can be read only once");
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let of_family = args
            .cluster_cidr
            .iter()
            .filter(|c| Family::of(c.addr()) == family)
            .count();
        if of_family > 1 {
            bail!(
                "--cluster-cidr has {of_family} {family} CIDRs; kube-proxy takes at most one per \
                 family (like 10.64.0.0/16,fd00:10:64::/48)"
            );
        }
    }

    let mut dumps: Vec<Dump> = Vec::new();
    let mut named: Vec<Option<Family>> = Vec::new();
    for path in &args.rules {
        let source = rules_file::read(path)?;
        let rules = rules_file::parse(&source, &args.parse)?;
        named.push(rules.family());
        dumps.push(Dump {
            source,
            rules,
            family: Family::Ipv4,
        });
    }
    for i in 0..dumps.len() {
        // The dump says which proxier wrote it (ip6tables-save or
        // iptables-save); an address-free dump is of the other dump's other
        // family, else taken as IPv4.
        let other = named.iter().enumerate().find(|(j, _)| *j != i);
        dumps[i].family = match (named[i], other) {
            (Some(f), _) => f,
            (None, Some((_, Some(Family::Ipv4)))) => Family::Ipv6,
            (None, _) => Family::Ipv4,
        };
    }
    if let [a, b] = dumps.as_slice() {
        if a.family == b.family {
            bail!(
                "--rules: {} and {} are both {} rules; a dual-stack node has one dump per family",
                a.source.name(),
                b.source.name(),
                a.family
            );
        }
    }
    for dump in &dumps {
        if !addresses
            .iter()
            .any(|a| Family::of(a.addr()) == dump.family)
        {
            bail!(
                "{}: {} rules, but --node gives no {} address",
                dump.source.name(),
                dump.family,
                dump.family
            );
        }
    }

    // Where pods live: the flag, else the IPv4 pod network the Nodes'
    // podCIDRs imply (no IPv6 derivation yet), else nothing.
    let from_nodes = if args.cluster_cidr.is_empty() {
        pod_network_from_nodes(&objects)
    } else {
        None
    };
    if let Some((net, from)) = from_nodes.as_ref().filter(|_| !args.quiet) {
        let list: Vec<String> = from.iter().map(IpNet::to_string).collect();
        outln!(
            "pod network {net}, from the Nodes' spec.podCIDRs ({}); give --cluster-cidr if \
             kube-proxy's differs",
            list.join(", ")
        );
    }
    let pod_network = |family: Family| -> (Vec<IpNet>, PodNetwork) {
        if !args.cluster_cidr.is_empty() {
            return (args.cluster_cidr.clone(), PodNetwork::Given);
        }
        match &from_nodes {
            Some((net, _)) if Family::of(net.addr()) == family => {
                (vec![*net], PodNetwork::FromNodes)
            }
            _ => (Vec::new(), PodNetwork::Unknown),
        }
    };
    for dump in &dumps {
        if let (_, PodNetwork::Unknown) = pod_network(dump.family) {
            if from_nodes.is_none() {
                eprintln!(
                    "warning: nothing says where pods live (no --cluster-cidr, and no Node with \
                     spec.podCIDRs): probes whose outcome depends on it are left out, and \
                     masquerading is not judged where it depends on it\n"
                );
            } else {
                eprintln!(
                    "warning: the Nodes' spec.podCIDRs give only an IPv4 pod network: for the {} \
                     rules, probes whose outcome depends on it are left out, and masquerading is \
                     not judged where it depends on it (give --cluster-cidr with a CIDR per \
                     family)\n",
                    dump.family
                );
            }
            break;
        }
    }

    let dual = dumps.len() == 2;
    let mut tallies = Vec::new();
    for dump in &dumps {
        let (cluster_cidrs, pods) = pod_network(dump.family);
        if dual {
            outln!("{} rules ({}):", dump.family, dump.source.name());
        }
        let tally = audit_dump(
            args,
            &name,
            &addresses,
            &objects,
            dump,
            cluster_cidrs,
            &pods,
        )?;
        if dual {
            outln!("{}: {}\n", dump.family, tally.summary());
        }
        tallies.push((tally, pods));
    }

    let summary = match tallies.as_slice() {
        [(one, _)] => one.summary(),
        all => {
            let sum = |f: fn(&Tally) -> usize| all.iter().map(|(t, _)| f(t)).sum::<usize>();
            let profiles: BTreeSet<String> =
                all.iter().map(|(t, _)| t.profile.to_string()).collect();
            let combined = Tally {
                probes: sum(|t| t.probes),
                agreed: sum(|t| t.agreed),
                disagreed: sum(|t| t.disagreed),
                skipped: sum(|t| t.skipped),
                left_out: sum(|t| t.left_out),
                unmasked: sum(|t| t.unmasked),
                violations: sum(|t| t.violations),
                profile: all[0].0.profile,
                unknown_pods: all.iter().any(|(t, _)| t.unknown_pods),
            };
            let mut text = combined.summary();
            if profiles.len() > 1 {
                let list: Vec<String> = profiles.into_iter().collect();
                let at = text.rfind(" (").expect("a profile");
                text.truncate(at);
                text.push_str(&format!(" ({} profiles)", list.join(" and ")));
            }
            let families: Vec<String> = dumps.iter().map(|d| d.family.to_string()).collect();
            format!("{} rules, {text}", families.join(" and "))
        }
    };
    let failed = tallies
        .iter()
        .any(|(t, _)| t.disagreed > 0 || t.violations > 0);
    if !failed {
        outln!("ok: {summary}");
        Ok(Outcome::Pass)
    } else {
        outln!("FAILED: {summary}");
        if let Some((net, _)) = &from_nodes {
            if tallies
                .iter()
                .any(|(t, p)| matches!(p, PodNetwork::FromNodes) && t.disagreed > 0)
            {
                outln!(
                    "(the pod network {net} was derived from the Nodes' podCIDRs: if kube-proxy's \
                     --cluster-cidr is another, give it)"
                );
            }
        }
        Ok(Outcome::Fail)
    }
}

/// Audits one dump against the oracle of its family.
fn audit_dump(
    args: &AuditArgs,
    name: &str,
    addresses: &[IpNet],
    objects: &[Object],
    dump: &Dump,
    cluster_cidrs: Vec<IpNet>,
    pod_network: &PodNetwork,
) -> Result<Tally> {
    let Dump {
        source,
        rules,
        family,
    } = dump;
    let input = GeneratorInput {
        node: NodeConfig {
            name: name.to_string(),
            family: *family,
            addresses: addresses.to_vec(),
            cluster_cidrs,
            masquerade_all: args.masquerade_all,
            masquerade_bit: args.masquerade_bit,
            node_port_addresses: args.node_port_addresses.clone(),
        },
        objects: objects.to_vec(),
    };

    let profile = resolve_profile(args.profile, rules);
    let violations = report_violations(source, rules, profile);

    let oracle = Oracle::new(&input);
    // route_localnet is kube-proxy's IPv4 proxier's business, decided by
    // the IPv4 node-port addresses; IPv6 has none.
    let ipv4_node_port_addresses: Vec<IpNet> = args
        .node_port_addresses
        .iter()
        .copied()
        .filter(|c| Family::of(c.addr()) == Family::Ipv4)
        .collect();
    let tracer = Tracer::new(rules, addresses)
        .with_mode(args.probability.into())
        .with_route_localnet(kpconform_suite::check::route_localnet(
            &ipv4_node_port_addresses,
        ));
    let tolerance: BigDecimal = "0.000001".parse().expect("a decimal");
    let probes = oracle.probes();
    // Probes are independent: judged on worker threads, reported in probe
    // order, so the output is the same whatever the number of threads.
    let judge = |packet: &Packet| -> Result<(Judgment, Option<String>)> {
        let predicted = match pod_network {
            PodNetwork::Unknown => oracle.predict_without_pod_network(packet),
            _ => oracle
                .predict(packet)
                .map(|p| (p, PodNetworkDependence::Independent)),
        };
        let (prediction, dependence) = match predicted {
            Ok(p) => p,
            Err(e @ OracleError::Overlap { .. }) => {
                return Ok((Judgment::Skipped, Some(format!("skipped: {e}"))));
            }
            Err(e) => return Err(anyhow!("{e}")),
        };
        if dependence == PodNetworkDependence::Fate {
            return Ok((Judgment::LeftOut, None));
        }
        let traced = match tracer.trace(packet) {
            Ok(d) => d,
            Err(e) => {
                let message = format!("FAIL {packet}: cannot be traced\n{}\n", e.render(source));
                return Ok((Judgment::Disagreed, Some(message)));
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
        Ok(match compared {
            Ok(()) => (agreed, None),
            Err(m) => (Judgment::Disagreed, Some(format!("FAIL {m}\n"))),
        })
    };
    let progress = crate::progress::Progress::new(
        &format!("kpconform audit ({family})"),
        Some(probes.len() as u64),
        args.quiet,
    );
    let results = parallel::ordered_map(&probes, parallel::jobs(args.jobs), |packet| {
        let judged = judge(packet);
        if progress.is_visible() {
            progress.step(packet.to_string());
        }
        judged
    });
    progress.finish();
    let mut judged: Vec<(Packet, Judgment)> = Vec::with_capacity(probes.len());
    for (packet, result) in probes.iter().zip(results) {
        let (judgment, message) = result?;
        if let Some(message) = message {
            outln!("{message}");
        }
        judged.push((*packet, judgment));
    }

    if args.verbose {
        print_table(&oracle, &judged);
    }
    let count = |j: &[Judgment]| judged.iter().filter(|(_, x)| j.contains(x)).count();
    Ok(Tally {
        probes: probes.len(),
        agreed: count(&[Judgment::Agreed, Judgment::AgreedUnmasked]),
        disagreed: count(&[Judgment::Disagreed]),
        skipped: count(&[Judgment::Skipped]),
        left_out: count(&[Judgment::LeftOut]),
        unmasked: count(&[Judgment::AgreedUnmasked]),
        violations,
        profile,
        unknown_pods: matches!(pod_network, PodNetwork::Unknown),
    })
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
