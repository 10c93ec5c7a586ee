//! The generator input (contract §2): reading and writing it.

use ipnet::IpNet;

use super::error::index_path;
use super::error::{ErrorKind, Problem, ScenarioError};
use super::fields::{address, boolean, cidr, cidrs, integer, list, text, At, Field, Fields};
use super::objects::{read_object, read_objects};
use super::yaml::{parse_documents, parse_documents_streaming, Node};
use super::{GeneratorInput, NodeConfig, Object};
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
pub(crate) fn single_document<'t>(text: &'t str, what: &str) -> Result<Node<'t>, Problem> {
    only_document(parse_documents(text)?, what)
}

/// The one document of `documents`.
fn only_document<'t>(mut documents: Vec<Node<'t>>, what: &str) -> Result<Node<'t>, Problem> {
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
    // Each object is read as soon as the parser has it: a 50k-Service input
    // never holds its whole YAML tree. Problems are reported in the order
    // they were before: YAML, the node, then the first bad object.
    let mut streamed: Vec<Object> = Vec::new();
    let mut object_problem: Option<Problem> = None;
    let documents = parse_documents_streaming(source.text(), "objects", &mut |i, item| {
        // Index 0 again: the text is being read a second time (the fast
        // reader declined it part way); what the first pass read goes.
        if i == 0 {
            streamed.clear();
            object_problem = None;
        }
        if object_problem.is_some() {
            return;
        }
        let path = index_path("objects", i);
        let mut out = Vec::new();
        match read_object(
            At {
                node: &item,
                path: &path,
            },
            &mut out,
        ) {
            Ok(()) => streamed.extend(out.into_iter().map(|l| l.object)),
            Err(problem) => object_problem = Some(problem),
        }
    })?;
    let root = only_document(documents, "generator input")?;
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
    if let Some(problem) = object_problem {
        return Err(problem);
    }
    // Objects not streamed (`objects:` with an anchor, say) are in the tree.
    let objects = match fields.optional("objects") {
        Some(f) => {
            let mut objects = streamed;
            objects.extend(read_objects(f.at())?.into_iter().map(|l| l.object));
            objects
        }
        None => streamed,
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
    fn objects_read_while_parsing_keep_error_order_and_positions() {
        let svc = |name: &str, port: &str| {
            format!("- apiVersion: v1\n  kind: Service\n  metadata: {{name: {name}}}\n  spec: {{clusterIP: 10.96.0.1, ports: [{{port: {port}}}]}}\n")
        };
        let objects = format!("{}{}{}", svc("a", "80"), svc("b", "0"), svc("c", "70000"));
        // The first bad object is reported, at its field.
        let text = format!("node: {{name: n, addresses: [10.0.0.1]}}\nobjects:\n{objects}");
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect_err("port 0");
        assert_eq!(
            (err.line(), err.path()),
            (10, "objects[1].spec.ports[0].port")
        );
        // A bad node is still reported before any object, as it is read first.
        let text = format!("node: {{name: n, addresses: [10.0.0.300]}}\nobjects:\n{objects}");
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect_err("bad ip");
        assert_eq!(err.path(), "node.addresses[0]");
        // Objects read before the fast reader declined (a block scalar,
        // after the bad one) are read again by granit, once each.
        let late = format!(
            "node: {{name: n, addresses: [10.0.0.1]}}\nobjects:\n{}{}{}- apiVersion: v1\n  kind: Node\n  metadata:\n    name: >-\n      x\n",
            svc("a", "80"),
            svc("b", "0"),
            svc("c", "81")
        );
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", late.clone()))
            .expect_err("port 0");
        assert_eq!(err.path(), "objects[1].spec.ports[0].port");
        let good = late.replace("port: 0", "port: 82");
        let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", good)).expect("input");
        assert_eq!(input.objects.len(), 4);
        // And a YAML error anywhere before either.
        let text = format!("node: {{name: n, addresses: [10.0.0.300]}}\nobjects:\n{objects}- [\n");
        let err = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect_err("yaml");
        assert_eq!(err.kind(), ErrorKind::Yaml);
        // Good objects all arrive, in order, also from a List.
        let list = "- {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Node, metadata: {name: x}}]}\n";
        let text = format!(
            "objects:\n{}{list}{}node: {{name: n, addresses: [10.0.0.1]}}\n",
            svc("a", "80"),
            svc("b", "81")
        );
        let input = GeneratorInput::from_yaml(&SourceFile::new("in.yaml", text)).expect("input");
        let names: Vec<_> = input
            .objects
            .iter()
            .map(|o| match o {
                Object::Service(s) => s.metadata.name.clone(),
                Object::Node(n) => n.metadata.name.clone(),
                Object::EndpointSlice(e) => e.metadata.name.clone(),
            })
            .collect();
        assert_eq!(
            names,
            [Some("a".into()), Some("x".into()), Some("b".into())]
        );
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
