//! Every recorded kube-proxy input reads, and survives a write/read round trip.

use std::path::{Path, PathBuf};

use kpconform_iptables::model::Family;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{GeneratorInput, Object};

fn recorded_inputs() -> Vec<PathBuf> {
    inputs_of("kube-proxy-v1.30")
}

fn inputs_of(recordings: &str) -> Vec<PathBuf> {
    let dir = kpconform_golden::recordings()
        .join(recordings)
        .join("inputs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> GeneratorInput {
    let text = std::fs::read_to_string(path).expect("readable");
    let source = SourceFile::new(path.display().to_string(), text);
    GeneratorInput::from_yaml(&source).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn all_44_recorded_inputs_parse_and_round_trip() {
    let files = recorded_inputs();
    assert_eq!(files.len(), 44);
    for path in files {
        let input = read(&path);
        assert!(!input.objects.is_empty(), "{}", path.display());
        let yaml = input.to_yaml();
        let again = GeneratorInput::from_yaml(&SourceFile::new("<to_yaml>", yaml.clone()))
            .unwrap_or_else(|e| {
                panic!(
                    "{}: re-reading to_yaml output:\n{e}\n{yaml}",
                    path.display()
                )
            });
        assert_eq!(again, input, "{}", path.display());
        // Writing is deterministic and a fixed point.
        assert_eq!(again.to_yaml(), yaml, "{}", path.display());
    }
}

#[test]
fn recorded_settings_are_read_as_documented() {
    let dir = recorded_inputs()[0].parent().expect("dir").to_path_buf();
    let no_cidr = read(&dir.join("clusterip-no-cluster-cidr.yaml"));
    assert_eq!(no_cidr.node.cluster_cidr(), None);

    let two_addresses = read(&dir.join("nodeport-nodeportaddresses-one-cidr.yaml"));
    let shown: Vec<String> = two_addresses
        .node
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(shown, ["192.168.0.10/24", "172.16.5.10/24"]);
    assert_eq!(
        two_addresses.node.node_port_addresses[0].to_string(),
        "192.168.0.0/24"
    );

    let bit5 = read(&dir.join("extra-nodeport-masquerade-bit-5.yaml"));
    assert_eq!(bit5.node.masquerade_bit, 5);
    assert!(
        read(&dir.join("clusterip-masquerade-all.yaml"))
            .node
            .masquerade_all
    );

    let topology = read(&dir.join("extra-clusterip-topology-hints.yaml"));
    let Object::Node(node) = &topology.objects[0] else {
        panic!("first object is the Node")
    };
    let zone = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("topology.kubernetes.io/zone"));
    assert_eq!(zone.map(String::as_str), Some("zone-a"));

    let scale = read(&dir.join("scale-1-service-200-endpoints.yaml"));
    let endpoints: usize = scale
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(s.endpoints.len()),
            _ => None,
        })
        .sum();
    assert_eq!(endpoints, 200);
}

#[test]
fn all_37_ipv6_and_dual_stack_inputs_parse_and_round_trip() {
    let files = inputs_of("kube-proxy-v1.30-ipv6");
    assert_eq!(files.len(), 37);
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let input = read(&path);
        let family = if text.contains("family: IPv6") {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        assert_eq!(input.node.family, family, "{}", path.display());
        // The node IP and cluster CIDR are those of the input's family.
        let node_ip = input.node.node_ip().expect("an address of the family");
        assert_eq!(Family::of(node_ip), family, "{}", path.display());
        if let Some(cidr) = input.node.cluster_cidr() {
            assert_eq!(Family::of(cidr.addr()), family, "{}", path.display());
        }
        let yaml = input.to_yaml();
        assert_eq!(
            yaml.contains("  family: IPv6\n"),
            family == Family::Ipv6,
            "{yaml}"
        );
        let again =
            GeneratorInput::from_yaml(&SourceFile::new("<to_yaml>", yaml)).expect("re-read");
        assert_eq!(again, input, "{}", path.display());
    }
}

#[test]
fn a_dual_stack_cluster_cidr_is_one_per_family() {
    let text = "node: {name: n, family: IPv6, addresses: [10.0.0.1, 'fd00::1'], clusterCIDR: '10.64.0.0/16,fd00:10:64::/48'}\n";
    let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect("input");
    assert_eq!(input.node.cluster_cidr(), "fd00:10:64::/48".parse().ok());
    assert_eq!(input.node.node_ip(), "fd00::1".parse().ok());
    let two_v4 = text.replace("fd00:10:64::/48", "10.65.0.0/16");
    let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", two_v4)).unwrap_err();
    assert!(err.to_string().contains("two CIDRs of one family"), "{err}");
    let bad_family = text.replace("family: IPv6", "family: IPv7");
    let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", bad_family)).unwrap_err();
    assert!(
        err.to_string().contains("`IPv7` is not an IP family"),
        "{err}"
    );
}
