//! Chain names, exactly as kube-proxy derives them.
//!
//! iptables chain names are limited to 28 characters, so kube-proxy names the
//! per-service chains by a hash: the first 16 characters of the standard
//! base32 encoding (RFC 4648, with padding) of sha256 over the service-port
//! name and the lowercase protocol (plus the endpoint for `KUBE-SEP-`).

use data_encoding::BASE32;
use sha2::{Digest, Sha256};

/// The first 16 base32 characters of sha256(`parts` concatenated).
///
/// Base32 spells each 5 bytes as 8 characters, so the first 16 characters
/// are exactly the encoding of the digest's first 10 bytes: encoding only
/// those gives the same text without the rest of the 56.
fn hash16(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    BASE32.encode(&hasher.finalize()[..10])
}

/// The hash a service port's SVC, SVL, EXT and FW chains share: computed
/// once per service port, then prefixed by [`ServiceHash::chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceHash(String);

impl ServiceHash {
    /// The hash of `service_port` (`namespace/name[:port]`) and `protocol`.
    pub(crate) fn new(service_port: &str, protocol: &str) -> ServiceHash {
        ServiceHash(hash16(&[service_port, protocol]))
    }

    /// `prefix` followed by the hash, e.g. `KUBE-SVC-…`.
    pub(crate) fn chain(&self, prefix: &str) -> String {
        let mut name = String::with_capacity(prefix.len() + self.0.len());
        name.push_str(prefix);
        name.push_str(&self.0);
        name
    }
}

/// `KUBE-SVC-…`: dispatch to all usable endpoints (Cluster traffic policy).
pub(crate) const CLUSTER_PREFIX: &str = "KUBE-SVC-";
/// `KUBE-SVL-…`: dispatch to this node's endpoints (Local traffic policy).
pub(crate) const LOCAL_PREFIX: &str = "KUBE-SVL-";
/// `KUBE-EXT-…`: entry for external destinations (node ports, external and LB IPs).
pub(crate) const EXTERNAL_PREFIX: &str = "KUBE-EXT-";
/// `KUBE-FW-…`: loadBalancerSourceRanges filtering.
pub(crate) const FIREWALL_PREFIX: &str = "KUBE-FW-";

/// `KUBE-SEP-…`: one endpoint (`ip:port`, `[ip]:port` for IPv6) of a service port.
pub(crate) fn endpoint_chain(service_port: &str, protocol: &str, endpoint: &str) -> String {
    let mut name = String::with_capacity(25);
    name.push_str("KUBE-SEP-");
    name.push_str(&hash16(&[service_port, protocol, endpoint]));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_chain(service_port: &str, protocol: &str) -> String {
        ServiceHash::new(service_port, protocol).chain(CLUSTER_PREFIX)
    }
    fn local_chain(service_port: &str, protocol: &str) -> String {
        ServiceHash::new(service_port, protocol).chain(LOCAL_PREFIX)
    }
    fn external_chain(service_port: &str, protocol: &str) -> String {
        ServiceHash::new(service_port, protocol).chain(EXTERNAL_PREFIX)
    }
    fn firewall_chain(service_port: &str, protocol: &str) -> String {
        ServiceHash::new(service_port, protocol).chain(FIREWALL_PREFIX)
    }

    // Test vectors from FACTS.md (kube-proxy's own unit tests use these names).
    #[test]
    fn facts_test_vectors() {
        assert_eq!(
            cluster_chain("ns1/svc1:p80", "tcp"),
            "KUBE-SVC-XPGD46QRK7WJZT7O"
        );
        assert_eq!(
            cluster_chain("ns2/svc2:p80", "tcp"),
            "KUBE-SVC-GNZBNJ2PO5MGZ6GT"
        );
        assert_eq!(
            endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            "KUBE-SEP-SXIVWICOYRO3J4NJ"
        );
    }

    #[test]
    fn recorded_names() {
        // clusterip-1-endpoint: default/api:http, endpoint 10.64.1.77:8080.
        assert_eq!(
            cluster_chain("default/api:http", "tcp"),
            "KUBE-SVC-KKDGWRPDK6Z5NCHS"
        );
        assert_eq!(
            endpoint_chain("default/api:http", "tcp", "10.64.1.77:8080"),
            "KUBE-SEP-FKGACSYOSOOBOIGF"
        );
        // loadbalancer-source-ranges: the FW chain shares the SVC hash.
        assert_eq!(
            firewall_chain("default/api:https", "tcp"),
            "KUBE-FW-NT4S3MKQS7ZEZNJA"
        );
        assert_eq!(
            local_chain("shop/checkout:https", "tcp"),
            "KUBE-SVL-S6GYCJULEJ2HSKT7"
        );
        assert_eq!(
            external_chain("shop/web:http", "tcp"),
            "KUBE-EXT-67NZLRHBNDSAWJRO"
        );
    }

    #[test]
    fn ipv6_endpoints_hash_their_bracketed_text() {
        // ipv6-nodeport-etp-local and ipv6-endpoint-address-spelling.
        assert_eq!(
            endpoint_chain("default/api:http", "tcp", "[fd00:10:64:a::5]:8080"),
            "KUBE-SEP-ZUAGJVKZBI5ZZ2LP"
        );
        assert_eq!(
            endpoint_chain("shop/web:http", "tcp", "[FD00:10:64:A::DA]:3000"),
            "KUBE-SEP-XUB5ERSSD3IVILSF"
        );
    }

    #[test]
    fn protocol_is_part_of_the_hash() {
        // clusterip-dns-udp-tcp: same service, different ports/protocols.
        assert_eq!(
            cluster_chain("kube-system/dns:dns", "udp"),
            "KUBE-SVC-2KKYJRIGYGQNRODB"
        );
        assert_ne!(cluster_chain("x/y:p", "udp"), cluster_chain("x/y:p", "tcp"));
    }
}
