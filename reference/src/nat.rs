//! The nat-table rules of one service port (capture in KUBE-SERVICES and
//! KUBE-NODEPORTS, then the SVC/SVL/EXT/FW/SEP chains), and the final jump to
//! KUBE-NODEPORTS.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use ipnet::IpNet;
use kpconform_iptables::model::Family;
use kpconform_iptables::Probability;

use crate::endpoints::Endpoint;
use crate::fixed::{MARK_MASQ, NODEPORTS, NODEPORTS_COMMENT, SERVICES};
use crate::names;
use crate::plan::{NodeContext, NodePortDestinations, Plan};
use crate::rule::{Match, Rule, Target};
use crate::table::Section;

/// `-m statistic` probabilities in iptables-save spelling, computed once per `n`.
#[derive(Debug, Default)]
pub(crate) struct Probabilities(BTreeMap<u32, Rc<str>>);

impl Probabilities {
    /// kube-proxy writes 1/n with 10 decimals; the kernel keeps k/2^31 and
    /// iptables-save prints that with 11.
    fn one_over(&mut self, n: u32) -> Rc<str> {
        let p = self
            .0
            .entry(n.max(1))
            .or_insert_with(|| Probability::one_over(n.max(1), 10).save_spelling().into());
        Rc::clone(p)
    }
}

/// The `KUBE-SEP-` chain names of a plan's endpoints. An endpoint's name is
/// used by its chain, each dispatch rule to it and each affinity check:
/// hashing it once per endpoint instead of per use.
struct SepNames<'a> {
    /// By endpoint text, sorted (as `Categorized::reachable` is).
    names: Vec<(&'a str, String)>,
    svc: &'a str,
    protocol: &'static str,
}

impl<'a> SepNames<'a> {
    fn new(plan: &Plan<'a>) -> SepNames<'a> {
        let (svc, protocol) = (plan.svc.name.as_str(), plan.svc.protocol.as_str());
        let mut names: Vec<(&'a str, String)> = plan
            .endpoints
            .reachable
            .iter()
            .map(|ep| {
                (
                    ep.addr.as_str(),
                    names::endpoint_chain(svc, protocol, &ep.addr),
                )
            })
            .collect();
        names.sort_unstable_by(|a, b| a.0.cmp(b.0));
        SepNames {
            names,
            svc,
            protocol,
        }
    }

    /// The name of `ep`'s chain; every dispatched endpoint is reachable, so
    /// the hash is only computed here if that invariant is ever broken.
    fn get(&self, ep: &Endpoint) -> Cow<'_, str> {
        match self
            .names
            .binary_search_by(|(addr, _)| (*addr).cmp(ep.addr.as_str()))
        {
            Ok(i) => Cow::Borrowed(self.names[i].1.as_str()),
            Err(_) => Cow::Owned(names::endpoint_chain(self.svc, self.protocol, &ep.addr)),
        }
    }
}

/// Writes the nat rules of `plan`, in kube-proxy's order.
pub(crate) fn service(
    plan: &Plan<'_>,
    node: &NodeContext,
    probabilities: &mut Probabilities,
) -> Section {
    let svc = plan.svc;
    let mut s = Section::default();
    let to_port = |comment: String, ip: IpAddr| {
        Rule::new()
            .dst(ip)
            .comment(comment)
            .dport(svc.protocol, svc.port)
    };

    // Capture the cluster IP, external IPs, LB IPs and the node port.
    if plan.has_internal {
        s.push(
            SERVICES,
            to_port(format!("{} cluster IP", svc.name), svc.cluster_ip).jump(plan.internal_chain()),
        );
    }
    if plan.has_endpoints {
        for ip in &svc.external_ips {
            s.push(
                SERVICES,
                to_port(format!("{} external IP", svc.name), *ip).jump(&plan.chains.external),
            );
        }
        for ip in &svc.lb_vips {
            s.push(
                SERVICES,
                to_port(format!("{} loadbalancer IP", svc.name), *ip)
                    .jump(plan.load_balancer_chain()),
            );
        }
        if svc.node_port != 0 {
            let rule = Rule::new()
                .comment(svc.name.as_str())
                .dport(svc.protocol, svc.node_port);
            s.push(NODEPORTS, rule.jump(&plan.chains.external));
        }
    }

    // Masquerade off-cluster (or, with masqueradeAll, every) cluster-IP client.
    if plan.has_internal {
        let rule = to_port(format!("{} cluster IP", svc.name), svc.cluster_ip);
        let rule = match (node.masquerade_all, node.cluster_cidr) {
            (true, _) => Some(rule),
            (false, Some(cidr)) => Some(rule.not_src(cidr)),
            (false, None) => None,
        };
        if let Some(rule) = rule {
            s.push(plan.internal_chain(), rule.jump(MARK_MASQ));
        }
    }

    if plan.uses_external_chain {
        external_chain(plan, node, &mut s);
    }
    if plan.uses_firewall_chain {
        firewall_chain(plan, node, &mut s);
    }
    let seps = SepNames::new(plan);
    if plan.uses_cluster_chain {
        dispatch(
            plan,
            &plan.chains.cluster,
            &plan.endpoints.cluster,
            &seps,
            node,
            probabilities,
            &mut s,
        );
    }
    if plan.uses_local_chain {
        dispatch(
            plan,
            &plan.chains.local,
            &plan.endpoints.local,
            &seps,
            node,
            probabilities,
            &mut s,
        );
    }
    for ep in &plan.endpoints.reachable {
        endpoint_chain(plan, ep, &seps.get(ep), node, &mut s);
    }
    s
}

/// KUBE-EXT: masquerade and go to the policy chain; with a Local policy,
/// traffic from pods and from the node itself short-circuits to KUBE-SVC.
fn external_chain(plan: &Plan<'_>, node: &NodeContext, s: &mut Section) {
    let (name, ext) = (&plan.svc.name, plan.chains.external.as_str());
    s.declare(ext);
    if !plan.svc.external_policy_local {
        let comment = format!("masquerade traffic for {name} external destinations");
        s.push(ext, Rule::new().comment(comment).jump(MARK_MASQ));
    } else {
        let cluster = plan.chains.cluster.as_str();
        if let Some(cidr) = node.cluster_cidr {
            let comment = format!("pod traffic for {name} external destinations");
            s.push(ext, Rule::new().src(cidr).comment(comment).jump(cluster));
        }
        let comment = format!("masquerade LOCAL traffic for {name} external destinations");
        s.push(
            ext,
            Rule::new()
                .comment(comment)
                .with(Match::SrcLocal)
                .jump(MARK_MASQ),
        );
        let comment = format!("route LOCAL traffic for {name} external destinations");
        s.push(
            ext,
            Rule::new()
                .comment(comment)
                .with(Match::SrcLocal)
                .jump(cluster),
        );
    }
    if plan.has_external {
        s.push(ext, Rule::new().jump(plan.external_policy_chain()));
    }
}

/// KUBE-FW: loadBalancerSourceRanges; what falls through is dropped by
/// KUBE-PROXY-FIREWALL in the filter table.
fn firewall_chain(plan: &Plan<'_>, node: &NodeContext, s: &mut Section) {
    let svc = plan.svc;
    let (fw, ext) = (plan.chains.firewall.as_str(), plan.chains.external.as_str());
    s.declare(fw);
    let comment = format!("{} loadbalancer IP", svc.name);
    let mut allow_from_node = false;
    for range in &svc.source_ranges {
        s.push(
            fw,
            Rule::new().src(*range).comment(comment.as_str()).jump(ext),
        );
        allow_from_node |= node.node_ip.is_some_and(|ip| range.contains(&ip));
    }
    // A node reaching its own VIP-style LB IP loops back with the LB IP as
    // source; let that in when the node itself is allowed.
    if allow_from_node {
        for ip in &svc.lb_vips {
            s.push(
                fw,
                Rule::new()
                    .src(IpNet::from(*ip))
                    .comment(comment.as_str())
                    .jump(ext),
            );
        }
    }
    let comment = format!(
        "other traffic to {} will be dropped by KUBE-PROXY-FIREWALL",
        svc.name
    );
    s.push(fw, Rule::new().comment(comment));
}

/// KUBE-SVC / KUBE-SVL: affinity checks, then a random pick among `endpoints`.
fn dispatch(
    plan: &Plan<'_>,
    chain: &str,
    endpoints: &[&Endpoint],
    seps: &SepNames<'_>,
    node: &NodeContext,
    probabilities: &mut Probabilities,
    s: &mut Section,
) {
    s.declare(chain);
    let svc = plan.svc;
    let with_comment = |ep: &Endpoint| {
        let rule = Rule::new();
        if node.large_cluster {
            rule
        } else {
            rule.comment(format!("{} -> {}", svc.name, ep.addr))
        }
    };
    if let Some(seconds) = svc.sticky_seconds {
        for ep in endpoints {
            let sep = seps.get(ep);
            let check = Match::RecentCheck {
                name: sep.to_string(),
                seconds,
                family: node.family,
            };
            s.push(chain, with_comment(ep).with(check).jump(sep));
        }
    }
    let n = endpoints.len();
    for (i, ep) in endpoints.iter().enumerate() {
        let sep = seps.get(ep);
        let mut rule = with_comment(ep);
        if i + 1 < n {
            let remaining = u32::try_from(n - i).unwrap_or(u32::MAX);
            rule = rule.with(Match::Random(probabilities.one_over(remaining)));
        }
        s.push(chain, rule.jump(sep));
    }
}

/// KUBE-SEP: hairpin masquerade, (affinity record), DNAT.
fn endpoint_chain(plan: &Plan<'_>, ep: &Endpoint, sep: &str, node: &NodeContext, s: &mut Section) {
    let svc = plan.svc;
    s.declare(sep);
    let commented = |rule: Rule| {
        if node.large_cluster {
            rule
        } else {
            rule.comment(svc.name.as_str())
        }
    };
    s.push(
        sep,
        commented(Rule::new().src(IpNet::from(ep.ip))).jump(MARK_MASQ),
    );
    let mut dnat = commented(Rule::new());
    if svc.sticky_seconds.is_some() {
        dnat = dnat.with(Match::RecentSet {
            name: sep.to_string(),
            family: node.family,
        });
    }
    let to = SocketAddr::new(ep.ip, ep.port);
    s.push(
        sep,
        dnat.proto_module(svc.protocol).target(Target::Dnat(to)),
    );
}

/// The last rule of KUBE-SERVICES: node ports on local (or the allowed) addresses.
pub(crate) fn nodeports_jump(node: &NodeContext) -> Section {
    let mut s = Section::default();
    match &node.node_ports {
        NodePortDestinations::AllLocal => {
            let mut rule = Rule::new();
            // Localhost node ports never work on IPv6; on IPv4 they are on
            // whenever every local address is.
            if node.family == Family::Ipv6 {
                rule = rule.not_dst(IpNet::from(node.family.localhost()));
            }
            let rule = rule.comment(NODEPORTS_COMMENT).with(Match::DstLocal);
            s.push(SERVICES, rule.jump(NODEPORTS));
        }
        NodePortDestinations::Addresses(ips) => {
            for ip in ips {
                let rule = Rule::new().dst(IpNet::from(*ip)).comment(NODEPORTS_COMMENT);
                s.push(SERVICES, rule.jump(NODEPORTS));
            }
        }
    }
    s
}
