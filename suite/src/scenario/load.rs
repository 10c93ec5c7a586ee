//! Scenario files (contract §1): reading, finding, and deriving each node's
//! generator input.

use kpconform_iptables::model::Family;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{did_you_mean, ErrorKind, Problem, ScenarioError};
use super::fields::{list, text, At, Fields};
use super::flows::read_flows;
use super::input::{node_addresses, settings, single_document, SETTINGS_KEYS};
use super::objects::{read_objects, Located};
use super::{Cluster, GeneratorInput, NodeConfig, NodeSpec, Object, Scenario};
use kpconform_iptables::SourceFile;

impl Scenario {
    /// Reads a scenario from `source`, giving it the id `id`.
    pub fn from_source(source: &SourceFile, id: &str) -> Result<Scenario, ScenarioError> {
        read_scenario(source.text(), id).map_err(|p| p.in_file(source))
    }

    /// Reads the scenario file `path`; its id is its path below
    /// `scenarios_root` without `.yaml`, `/`-separated (or the file stem when
    /// `path` is not below `scenarios_root`).
    pub fn load(path: &Path, scenarios_root: &Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ScenarioError::io(&name, &e))?;
        let source =
            SourceFile::from_bytes(name, bytes).map_err(|e| ScenarioError::not_utf8(&e))?;
        Scenario::from_source(&source, &scenario_id(path, scenarios_root))
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.cluster.nodes.iter().find(|n| n.name == name)
    }

    /// What a generator is given for node `node` (contract §2).
    pub fn generator_input(&self, node: &str) -> Option<GeneratorInput> {
        self.cluster.generator_input(node)
    }
}

impl Cluster {
    /// What a generator is given for node `node` (contract §2): the node, the
    /// cluster-wide kube-proxy settings, and every object; for the family
    /// of the node's first address (see [`Cluster::generator_input_for`]).
    pub fn generator_input(&self, node: &str) -> Option<GeneratorInput> {
        let spec = self.nodes.iter().find(|n| n.name == node)?;
        let family = Family::of(spec.addresses.first()?.addr());
        self.generator_input_for(node, family)
    }

    /// The generator input for `node`'s rules of `family`; `None` when the
    /// scenario has no such node or the node no address of that family.
    pub fn generator_input_for(&self, node: &str, family: Family) -> Option<GeneratorInput> {
        let spec = self.nodes.iter().find(|n| n.name == node)?;
        if !spec.families().contains(&family) {
            return None;
        }
        Some(GeneratorInput {
            node: NodeConfig {
                name: spec.name.clone(),
                family,
                addresses: spec.addresses.clone(),
                cluster_cidrs: self.cluster_cidrs.clone(),
                masquerade_all: self.masquerade_all,
                masquerade_bit: self.masquerade_bit,
                node_port_addresses: self.node_port_addresses.clone(),
            },
            objects: self.objects.clone(),
        })
    }
}

/// Every `*.yaml` file below `root`, recursively, sorted by path.
pub fn discover(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    walk(root, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Symlinked directories are not followed, so a link cycle cannot
        // make discovery loop.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            found.push(path);
        }
    }
    Ok(())
}

fn scenario_id(path: &Path, root: &Path) -> String {
    let relative = path
        .strip_prefix(root)
        .ok()
        .filter(|r| r.components().next().is_some());
    match relative {
        Some(r) => {
            let mut parts: Vec<String> = r
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if let Some(last) = parts.last_mut() {
                if let Some(stem) = last.strip_suffix(".yaml") {
                    *last = stem.to_string();
                }
            }
            parts.join("/")
        }
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

fn read_scenario(text_in: &str, id: &str) -> Result<Scenario, Problem> {
    let root = single_document(text_in, "scenario")?;
    let fields = Fields::open(
        At {
            node: &root,
            path: "",
        },
        &["description", "tags", "cluster", "flows"],
    )?;
    let description = match fields.optional("description") {
        Some(f) => text(f.at())?.to_string(),
        None => String::new(),
    };
    let tags = match fields.optional("tags") {
        Some(f) => list(f.at(), |a| text(a).map(str::to_string))?,
        None => Vec::new(),
    };
    let cluster = read_cluster(fields.required("cluster")?.at())?;
    let flows = match fields.optional("flows") {
        Some(f) => read_flows(f.at(), &cluster.nodes)?,
        None => Vec::new(),
    };
    Ok(Scenario {
        id: id.to_string(),
        description,
        tags,
        cluster,
        flows,
    })
}

fn read_cluster(at: At<'_>) -> Result<Cluster, Problem> {
    let mut allowed = vec!["nodes", "objects"];
    allowed.extend(SETTINGS_KEYS);
    let fields = Fields::open(at, &allowed)?;
    let s = settings(&fields)?;
    let nodes_field = fields.required("nodes")?;
    let mut nodes: Vec<NodeSpec> = Vec::new();
    for item in super::fields::sequence(nodes_field.at())? {
        let node = Fields::open(item.at(), &["name", "addresses"])?;
        let name_field = node.required("name")?;
        let name = text(name_field.at())?.to_string();
        if nodes.iter().any(|n| n.name == name) {
            return Err(Problem::new(
                ErrorKind::Duplicate,
                name_field.node.span,
                &name_field.path,
                format!("node `{name}` is listed twice"),
            ));
        }
        let addresses = node_addresses(&node.required("addresses")?)?;
        nodes.push(NodeSpec { name, addresses });
    }
    if nodes.is_empty() {
        return Err(Problem::invalid(
            nodes_field.node.span,
            &nodes_field.path,
            "a cluster needs at least one node",
        ));
    }
    let objects = match fields.optional("objects") {
        Some(f) => read_objects(f.at())?,
        None => Vec::new(),
    };
    check_node_objects(&objects, &nodes)?;
    let objects = objects.into_iter().map(|l| l.object).collect();
    Ok(Cluster {
        cluster_cidrs: s.cluster_cidrs,
        masquerade_all: s.masquerade_all,
        masquerade_bit: s.masquerade_bit,
        node_port_addresses: s.node_port_addresses,
        nodes,
        objects,
    })
}

/// A Node object exists to give a scenario node its labels; one named after
/// no node is almost certainly a typo that would silently drop them.
fn check_node_objects(objects: &[Located], nodes: &[NodeSpec]) -> Result<(), Problem> {
    for located in objects {
        let Object::Node(node) = &located.object else {
            continue;
        };
        let name = node.metadata.name.as_deref().unwrap_or("");
        if !nodes.iter().any(|n| n.name == name) {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            let mut message = format!("Node object `{name}` is not a node of the cluster");
            match did_you_mean(name, names.iter().copied()) {
                Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
                None => message.push_str(&format!(" (nodes: {})", names.join(", "))),
            }
            return Err(Problem::new(
                ErrorKind::UnknownNode,
                located.name_span,
                &located.name_path,
                message,
            ));
        }
    }
    Ok(())
}
