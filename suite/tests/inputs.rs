//! Every recorded kube-proxy input reads, and survives a write/read round trip.

use std::path::{Path, PathBuf};

use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{GeneratorInput, Object};

fn recorded_inputs() -> Vec<PathBuf> {
    let dir = kpconform_golden::recordings().join("kube-proxy-v1.30/inputs");
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
    assert_eq!(no_cidr.node.cluster_cidr, None);

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
