//! Predictions when the pod network (kube-proxy's `--cluster-cidr`) is not
//! known: for audits of a node whose kube-proxy flags nobody gave.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Oracle, OracleError, Prediction};
use crate::scenario::FlowSource;
use kpconform_iptables::Packet;

/// How much of a prediction depends on the pod network when it is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PodNetworkDependence {
    /// Nothing: the prediction holds whatever the pod network is.
    Independent,
    /// Whether accepted traffic is masqueraded (cluster IPs: kube-proxy
    /// masquerades sources outside its cluster CIDR, and nothing without
    /// one); verdicts, destinations and their probabilities do not.
    Masquerade,
    /// Where the packet goes: a source that may be a pod reaching an
    /// `externalTrafficPolicy: Local` address is short-circuited to every
    /// endpoint if it is one, and held to the local ones if not.
    Fate,
}

/// The documentation networks, which no cluster gives its pods: RFC 5737's
/// for IPv4 and RFC 3849's 2001:db8::/32 for IPv6; the oracle's own probes
/// use them for outside clients.
const DOCUMENTATION: [(IpAddr, u8); 4] = [
    (IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 0)), 24),
    (IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 0)), 24),
    (IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 0)), 24),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
        32,
    ),
];

fn is_documentation(ip: IpAddr) -> bool {
    DOCUMENTATION
        .iter()
        .any(|&(net, len)| IpNet::new(net, len).is_ok_and(|n| n.contains(&ip)))
}

impl Oracle {
    /// What must happen to `packet` when kube-proxy's cluster CIDR is
    /// unknown (whatever this oracle was given), and how much of that
    /// depends on it. The packet is decided under every possibility: no
    /// cluster CIDR, one that does not hold the source, and, for a source
    /// that may be a pod, one that does. A source may be a pod unless it is
    /// the node, a local address, or in a documentation network (RFC 5737,
    /// RFC 3849).
    /// When the possibilities agree the prediction is
    /// [`PodNetworkDependence::Independent`]; when they differ only in
    /// masquerading, the returned prediction's masquerade flags are those of
    /// "no cluster CIDR" and must not be judged.
    pub fn predict_without_pod_network(
        &self,
        packet: &Packet,
    ) -> Result<(Prediction, PodNetworkDependence), OracleError> {
        let ip = self.source_ip(packet)?;
        let may_be_pod =
            packet.from != FlowSource::Node && !self.is_local(ip) && !is_documentation(ip);
        let mut hypotheses = vec![None, Some(false)];
        if may_be_pod {
            hypotheses.push(Some(true));
        }
        let predictions = hypotheses
            .into_iter()
            .map(|h| self.predict_as(packet, h))
            .collect::<Result<Vec<_>, _>>()?;
        let (first, rest) = predictions.split_first().expect("at least two hypotheses");
        let mut dependence = PodNetworkDependence::Independent;
        for p in rest {
            let d = if p.outcomes == first.outcomes && p.sticky == first.sticky {
                PodNetworkDependence::Independent
            } else if p.sticky == first.sticky
                && p.without_masquerade().outcomes == first.without_masquerade().outcomes
            {
                PodNetworkDependence::Masquerade
            } else {
                PodNetworkDependence::Fate
            };
            dependence = dependence.max(d);
        }
        let mut prediction = first.clone();
        match dependence {
            PodNetworkDependence::Independent => {}
            PodNetworkDependence::Masquerade => prediction.reasons.push(
                "whether it is masqueraded depends on kube-proxy's cluster CIDR, which is unknown"
                    .into(),
            ),
            PodNetworkDependence::Fate => prediction.reasons.push(format!(
                "where it goes depends on whether {ip} is a pod (inside kube-proxy's cluster \
                 CIDR), which is unknown"
            )),
        }
        Ok((prediction, dependence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::GeneratorInput;
    use kpconform_iptables::model::Protocol;
    use kpconform_iptables::SourceFile;

    fn oracle() -> Oracle {
        let input = GeneratorInput::from_yaml(&SourceFile::new(
            "in.yaml",
            "
node: {name: node-a, addresses: [192.168.0.10]}
objects:
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: shop},
   spec: {type: NodePort, clusterIP: 10.96.0.50, externalTrafficPolicy: Local,
          ports: [{name: http, port: 80, nodePort: 30080, protocol: TCP}]}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.64.0.5], nodeName: node-a}, {addresses: [10.64.1.5], nodeName: node-b}]
  ports: [{name: http, port: 8080, protocol: TCP}]
",
        ))
        .expect("valid input");
        Oracle::new(&input)
    }

    fn packet(from: FlowSource, to: &str) -> Packet {
        Packet::new(from, to.parse().expect("an address"), Protocol::Tcp)
    }

    #[test]
    fn what_depends_on_the_pod_network() {
        let o = oracle();
        let outside = FlowSource::Ip(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)));
        let endpoint = FlowSource::Ip(IpAddr::V4(std::net::Ipv4Addr::new(10, 64, 1, 5)));
        // A cluster IP from outside: the endpoints are known, masquerading not.
        let (p, d) = o
            .predict_without_pod_network(&packet(outside, "10.96.0.50:80"))
            .unwrap();
        assert_eq!(d, PodNetworkDependence::Masquerade);
        assert_eq!(p.accepted().len(), 2);
        assert!(p.reasons.last().unwrap().contains("unknown"));
        // A Local node port from outside: the local endpoint, client kept.
        let (p, d) = o
            .predict_without_pod_network(&packet(outside, "192.168.0.10:30080"))
            .unwrap();
        assert_eq!(d, PodNetworkDependence::Independent);
        assert_eq!(p.accepted().len(), 1);
        assert_eq!(p.masquerade(), Some(false));
        // The same from the node: every endpoint, masqueraded.
        let (_, d) = o
            .predict_without_pod_network(&packet(FlowSource::Node, "192.168.0.10:30080"))
            .unwrap();
        assert_eq!(d, PodNetworkDependence::Independent);
        // From an endpoint (perhaps a pod): every endpoint, or the local one.
        let (p, d) = o
            .predict_without_pod_network(&packet(endpoint, "192.168.0.10:30080"))
            .unwrap();
        assert_eq!(d, PodNetworkDependence::Fate);
        assert!(p.reasons.last().unwrap().contains("10.64.1.5 is a pod"));
        // Nobody's address: untouched whatever the pod network.
        let (_, d) = o
            .predict_without_pod_network(&packet(endpoint, "198.51.100.254:1"))
            .unwrap();
        assert_eq!(d, PodNetworkDependence::Independent);
    }
}
