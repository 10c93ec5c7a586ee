//! The filter-table rules of one service port: REJECT/DROP for traffic with
//! nowhere to go, the load-balancer source-range DROP, health-check ports.

use std::net::IpAddr;

use crate::fixed::{EXTERNAL_SERVICES, NODEPORTS, PROXY_FIREWALL, SERVICES};
use crate::plan::{NodeContext, Plan};
use crate::rule::{Match, Protocol, Rule, Target};
use crate::table::Section;

/// Writes the filter rules of `plan`, in kube-proxy's order.
pub(crate) fn service(plan: &Plan<'_>, node: &NodeContext) -> Section {
    let svc = plan.svc;
    let mut section = Section::default();
    let (internal, external) = if !plan.has_endpoints {
        let no_endpoints = (
            format!("{} has no endpoints", svc.name),
            Target::Reject(node.family),
        );
        (no_endpoints.clone(), no_endpoints)
    } else {
        let no_local = (format!("{} has no local endpoints", svc.name), Target::Drop);
        (no_local.clone(), no_local)
    };
    let to_port = |comment: &str, ip: IpAddr, port: u16| {
        Rule::new()
            .dst(ip)
            .comment(comment)
            .dport(svc.protocol, port)
    };

    if !plan.has_internal {
        let (comment, target) = &internal;
        section.push(
            SERVICES,
            to_port(comment, svc.cluster_ip, svc.port).target(target.clone()),
        );
    }
    let (ext_comment, ext_target) = &external;
    for ip in &svc.external_ips {
        if !plan.has_external {
            section.push(
                EXTERNAL_SERVICES,
                to_port(ext_comment, *ip, svc.port).target(ext_target.clone()),
            );
        }
    }
    if plan.uses_firewall_chain {
        let comment = format!(
            "{} traffic not accepted by {}",
            svc.name, plan.chains.firewall
        );
        for ip in &svc.lb_vips {
            section.push(
                PROXY_FIREWALL,
                to_port(&comment, *ip, svc.port).target(Target::Drop),
            );
        }
    }
    if !plan.has_external {
        for ip in &svc.lb_vips {
            section.push(
                EXTERNAL_SERVICES,
                to_port(ext_comment, *ip, svc.port).target(ext_target.clone()),
            );
        }
        if svc.node_port != 0 {
            section.push(
                EXTERNAL_SERVICES,
                Rule::new()
                    .comment(ext_comment.as_str())
                    .with(Match::DstLocal)
                    .dport(svc.protocol, svc.node_port)
                    .target(ext_target.clone()),
            );
        }
    }
    // Accepted whether or not this node has endpoints: the health check
    // itself reports that to the load balancer.
    if svc.health_check_node_port != 0 {
        section.push(
            NODEPORTS,
            Rule::new()
                .comment(format!("{} health check node port", svc.name))
                .dport(Protocol::Tcp, svc.health_check_node_port)
                .target(Target::Accept),
        );
    }
    section
}
