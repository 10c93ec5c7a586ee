//! Chain names, exactly as kube-proxy derives them.
//!
//! iptables chain names are limited to 28 characters, so kube-proxy names the
//! per-service chains by a hash: the first 16 characters of the standard
//! base32 encoding (RFC 4648, with padding) of sha256 over the service-port
//! name and the lowercase protocol (plus the endpoint for `KUBE-SEP-`).

use data_encoding::BASE32;
use sha2::{Digest, Sha256};

/// The first 16 base32 characters of sha256(`text`).
fn hash16(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut encoded = BASE32.encode(&digest);
    // sha256 is 32 bytes, which base32 spells in 56 characters; 16 is always there.
    encoded.truncate(16);
    encoded
}

/// `KUBE-SVC-…`: dispatch to all usable endpoints (Cluster traffic policy).
pub(crate) fn cluster_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-SVC-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-SVL-…`: dispatch to this node's endpoints (Local traffic policy).
pub(crate) fn local_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-SVL-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-EXT-…`: entry for external destinations (node ports, external and LB IPs).
pub(crate) fn external_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-EXT-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-FW-…`: loadBalancerSourceRanges filtering.
pub(crate) fn firewall_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-FW-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-SEP-…`: one endpoint (`ip:port`, `[ip]:port` for IPv6) of a service port.
pub(crate) fn endpoint_chain(service_port: &str, protocol: &str, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{service_port}{protocol}{endpoint}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
