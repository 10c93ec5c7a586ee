//! The generator input (contract §2): reading and writing it.

use ipnet::IpNet;

use super::error::{ErrorKind, Problem, ScenarioError};
use super::fields::{address, boolean, cidr, cidrs, integer, list, text, At, Field, Fields};
use super::objects::read_objects;
use super::yaml::{parse_documents, Node};
use super::{GeneratorInput, NodeConfig};
use kpconform_iptables::model::Family;
use kpconform_iptables::SourceFile;

/// kube-proxy's settings shared by a scenario's `cluster:` and an input's `node:`.
pub(crate) struct Settings {
    pub(crate) cluster_cidrs: Vec<IpNet>,
    pub(crate) masquerade_all: bool,
    pub(crate) masquerade_bit: u8,
    pub(crate) node_port_addresses: Vec<IpNet>,
}

/// Keys read by [`settings`].
pub(crate) const SETTINGS_KEYS: [&str; 4] = [
    "clusterCIDR",
    "masqueradeAll",
    "masqueradeBit",
    "nodePortAddresses",
];

/// Reads the settings, with kube-proxy's defaults for absent keys.
pub(crate) fn settings(fields: &Fields<'_>) -> Result<Settings, Problem> {
    let cluster_cidrs = match fields.optional("clusterCIDR") {
        // `clusterCIDR: ''` is how the recordings spell "no --cluster-cidr".
        Some(f) if f.node.scalar().is_some_and(|s| s.text.is_empty()) => Vec::new(),
        Some(f) => cidrs(f.at())?,
        None => Vec::new(),
    };
    let masquerade_all = match fields.optional("masqueradeAll") {
        Some(f) => boolean(f.at())?,
        None => false,
    };
    let masquerade_bit = match fields.optional("masqueradeBit") {
        // In range by the check, so the cast cannot truncate.
        Some(f) => integer(f.at(), 0, 31)? as u8,
        None => 14,
    };
    let node_port_addresses = match fields.optional("nodePortAddresses") {
        Some(f) => list(f.at(), cidr)?,
        None => Vec::new(),
    };
    Ok(Settings {
        cluster_cidrs,
        masquerade_all,
        masquerade_bit,
        node_port_addresses,
    })
}

/// A node's addresses: a non-empty list, bare IPs being /32s.
pub(crate) fn node_addresses(field: &Field<'_>) -> Result<Vec<IpNet>, Problem> {
    let addresses = list(field.at(), address)?;
    if addresses.is_empty() {
        return Err(Problem::invalid(
            field.node.span,
            &field.path,
            "a node needs at least one address (the first is its node IP)",
        ));
    }
    Ok(addresses)
}

/// The single document of a file that must hold exactly one.
pub(crate) fn single_document(text: &str, what: &str) -> Result<Node, Problem> {
    let mut documents = parse_documents(text)?;
    if documents.len() > 1 {
        let second = &documents[1];
        return Err(Problem::new(
            ErrorKind::MultipleDocuments,
            second.span,
            "",
            format!("a {what} file holds exactly one YAML document; this is the second"),
        ));
    }
    documents.pop().ok_or_else(|| {
        Problem::new(
            ErrorKind::MissingKey,
            kpconform_iptables::Span::new(0, 0, 1),
            "",
            format!("empty file: expected a {what}"),
        )
    })
}

impl GeneratorInput {
    /// Reads a generator input (contract §2), e.g. `inputs/NAME.yaml` of the recordings.
    pub fn from_yaml(source: &SourceFile) -> Result<GeneratorInput, ScenarioError> {
        read_input(source).map_err(|p| p.in_file(source))
    }
}

fn read_input(source: &SourceFile) -> Result<GeneratorInput, Problem> {
    let root = single_document(source.text(), "generator input")?;
    let fields = Fields::open(
        At {
            node: &root,
            path: "",
        },
        &["node", "objects"],
    )?;
    let node_field = fields.required("node")?;
    let mut allowed = vec!["name", "family", "addresses"];
    allowed.extend(SETTINGS_KEYS);
    let node = Fields::open(node_field.at(), &allowed)?;
    let name = text(node.required("name")?.at())?.to_string();
    let family = match node.optional("family") {
        Some(f) => match text(f.at())? {
            "IPv4" => Family::Ipv4,
            "IPv6" => Family::Ipv6,
            other => {
                return Err(Problem::invalid(
                    f.node.span,
                    &f.path,
                    format!("`{other}` is not an IP family (IPv4 or IPv6)"),
                ))
            }
        },
        // Absent: IPv4, as every generator input was before dual-stack.
        None => Family::Ipv4,
    };
    let addresses = node_addresses(&node.required("addresses")?)?;
    let s = settings(&node)?;
    let objects = match fields.optional("objects") {
        Some(f) => read_objects(f.at())?
            .into_iter()
            .map(|l| l.object)
            .collect(),
        None => Vec::new(),
    };
    Ok(GeneratorInput {
        node: NodeConfig {
            name,
            family,
            addresses,
            cluster_cidrs: s.cluster_cidrs,
            masquerade_all: s.masquerade_all,
            masquerade_bit: s.masquerade_bit,
            node_port_addresses: s.node_port_addresses,
        },
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "# a comment line\nnode:\n  name: node-a\n  addresses:\n  - 192.168.0.10/24\n  - 172.16.5.10\n  clusterCIDR: ''\n  masqueradeAll: true\n  masqueradeBit: 5\n  nodePortAddresses:\n  - 192.168.0.0/24\nobjects: []\n";

    #[test]
    fn reads_settings_and_addresses() {
        let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", INPUT)).expect("input");
        let n = &input.node;
        assert_eq!(n.name, "node-a");
        assert_eq!(n.addresses[0].to_string(), "192.168.0.10/24");
        assert_eq!(n.addresses[1].to_string(), "172.16.5.10/32");
        assert_eq!(n.cluster_cidr(), None);
        assert_eq!(n.family, Family::Ipv4);
        assert!(n.masquerade_all);
        assert_eq!(n.masquerade_bit, 5);
        assert_eq!(n.node_port_addresses[0].to_string(), "192.168.0.0/24");
    }

    #[test]
    fn writes_bare_host_addresses_and_empty_cidr() {
        let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", INPUT)).expect("input");
        let yaml = input.to_yaml();
        assert!(yaml.contains("  - 172.16.5.10\n"), "{yaml}");
        assert!(yaml.contains("  clusterCIDR: ''\n"), "{yaml}");
        let again = GeneratorInput::from_yaml(&SourceFile::new("out.yaml", yaml)).expect("reread");
        assert_eq!(again, input);
    }

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let text = "node: {name: n, addresses: [10.0.0.1]}\n";
        let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect("input");
        assert_eq!(input.node.masquerade_bit, 14);
        assert!(!input.node.masquerade_all);
        assert!(input.objects.is_empty());
    }

    #[test]
    fn errors_point_at_the_value() {
        let bad = INPUT.replace("masqueradeBit: 5", "masqueradeBit: 32");
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", bad)).expect_err("bit 32");
        assert_eq!(
            (err.line(), err.column(), err.path()),
            (9, 18, "node.masqueradeBit")
        );
        let bad = INPUT.replace("172.16.5.10", "172.16.5.300");
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", bad)).expect_err("bad ip");
        assert_eq!(
            (err.line(), err.column(), err.path()),
            (6, 5, "node.addresses[1]")
        );
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", "node: {name: a}\n---\n"))
            .expect_err("two documents");
        assert_eq!(err.kind(), ErrorKind::MultipleDocuments);
    }
}
