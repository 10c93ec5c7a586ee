//! Lookups of service ports by address, protocol and port, so that
//! predicting one packet costs the same whatever the number of services: an
//! audit asks about every service port from several sources, and a scan of
//! every port per packet made it quadratic.
//!
//! The index only narrows the candidates: callers still apply every
//! condition to each candidate, in the ports' order, so answers are exactly
//! those of a scan over every port.

use std::collections::HashMap;
use std::net::IpAddr;

use kpconform_iptables::model::Protocol;

use super::model::ServicePort;

/// Positions in the oracle's port list, by what a packet's destination can
/// hit.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortIndex {
    /// (address, protocol, port) of each cluster, external and LB IP.
    by_vip: HashMap<(IpAddr, Protocol, u16), Vec<usize>>,
    /// (protocol, node port).
    by_node_port: HashMap<(Protocol, u16), Vec<usize>>,
    /// Cluster, external and LB IPs, whatever the protocol and port.
    by_ip: HashMap<IpAddr, Vec<usize>>,
    /// Node ports, whatever the protocol.
    by_node_port_any: HashMap<u16, Vec<usize>>,
}

impl PortIndex {
    pub(crate) fn new(ports: &[ServicePort]) -> PortIndex {
        let mut index = PortIndex::default();
        for (i, p) in ports.iter().enumerate() {
            let ips = [p.cluster_ip]
                .into_iter()
                .chain(p.external_ips.iter().copied())
                .chain(p.lb_ips.iter().copied());
            for ip in ips {
                push(index.by_vip.entry((ip, p.protocol, p.port)).or_default(), i);
                push(index.by_ip.entry(ip).or_default(), i);
            }
            if let Some(n) = p.node_port {
                push(index.by_node_port.entry((p.protocol, n)).or_default(), i);
                push(index.by_node_port_any.entry(n).or_default(), i);
            }
        }
        index
    }

    /// Every port that may claim a packet to `dst`:`dport` over `protocol`
    /// (one of its addresses and its port, or its node port), ascending.
    pub(crate) fn claim_candidates(
        &self,
        dst: IpAddr,
        protocol: Protocol,
        dport: u16,
    ) -> Vec<usize> {
        let none: &[usize] = &[];
        let vip = self
            .by_vip
            .get(&(dst, protocol, dport))
            .map_or(none, Vec::as_slice);
        let node = self
            .by_node_port
            .get(&(protocol, dport))
            .map_or(none, Vec::as_slice);
        merge(vip, node)
    }

    /// The first port with `dst` among its addresses, or, when `local`,
    /// with node port `dport` (any protocol).
    pub(crate) fn first_about(&self, dst: IpAddr, dport: u16, local: bool) -> Option<usize> {
        let by_ip = self.by_ip.get(&dst).and_then(|l| l.first().copied());
        let by_port = local
            .then(|| self.by_node_port_any.get(&dport))
            .flatten()
            .and_then(|l| l.first().copied());
        by_ip.into_iter().chain(by_port).min()
    }
}

/// Appends `i` unless it is already last (a port listing the same address
/// twice, or its cluster IP among its external IPs).
fn push(list: &mut Vec<usize>, i: usize) {
    if list.last() != Some(&i) {
        list.push(i);
    }
}

/// The union of two ascending lists, ascending and without repeats.
fn merge(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                if x == y {
                    j += 1;
                }
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn merge_keeps_order_and_drops_repeats() {
        assert_eq!(merge(&[1, 4, 9], &[0, 4, 10]), vec![0, 1, 4, 9, 10]);
        assert_eq!(merge(&[], &[2, 3]), vec![2, 3]);
        assert_eq!(merge(&[5], &[]), vec![5]);
        assert!(merge(&[], &[]).is_empty());
    }
}
