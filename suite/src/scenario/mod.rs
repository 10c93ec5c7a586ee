//! Scenarios (contract §1), flows and expectations (§3), and the generator
//! input (§2) rendered from a scenario for one node.
//!
//! ```
//! use kpconform_suite::scenario::{GeneratorInput, Scenario};
//! use kpconform_iptables::SourceFile;
//!
//! let text = "
//! cluster:
//!   clusterCIDR: 10.64.0.0/16
//!   nodes: [{name: node-a, addresses: [192.168.0.10]}]
//!   objects:
//!   - {apiVersion: v1, kind: Service, metadata: {name: api, namespace: default},
//!      spec: {clusterIP: 10.96.0.50, ports: [{port: 80, protocol: TCP}]}}
//! flows:
//! - {name: no endpoints, node: node-a, from: node, to: 10.96.0.50:80/tcp,
//!    expect: {verdict: reject}}
//! ";
//! let scenario = Scenario::from_source(&SourceFile::new("api.yaml", text), "clusterip/api")?;
//! let input = scenario.generator_input("node-a").expect("node-a is in the cluster");
//! let yaml = input.to_yaml();
//! assert!(yaml.starts_with("node:\n  name: node-a\n  addresses:\n  - 192.168.0.10\n"));
//! assert_eq!(GeneratorInput::from_yaml(&SourceFile::new("<stdin>", yaml))?, input);
//!
//! // Typos are errors that point at their line and column.
//! let typo = text.replace("expect:", "expcet:");
//! let err = Scenario::from_source(&SourceFile::new("api.yaml", typo), "x").unwrap_err();
//! assert_eq!((err.line(), err.column(), err.path()), (10, 4, "flows[0].expcet"));
//! # Ok::<(), kpconform_suite::scenario::ScenarioError>(())
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bigdecimal::BigDecimal;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::exact::BigRational;
use kpconform_iptables::model::Family;
use kpconform_iptables::Span;
pub use kpconform_iptables::{Destination, FlowSource};
use kpconform_iptables::{Packet, Verdict};

mod de;
mod error;
mod fields;
mod flows;
mod input;
mod load;
mod objects;
mod validate;
pub mod write;
mod yaml;
mod yaml_fast;

pub use error::{ErrorKind, ScenarioError};
pub use load::discover;
pub use objects::parse_objects;
pub use write::ScenarioWriter;

/// One scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Path below `golden/scenarios/` without `.yaml`, e.g. `nodeport/local-policy-split`.
    pub id: String,
    /// What the scenario shows.
    pub description: String,
    /// Free-form tags for filtering.
    pub tags: Vec<String>,
    /// The cluster state.
    pub cluster: Cluster,
    /// Packets and what must happen to them.
    pub flows: Vec<Flow>,
}

/// Cluster-wide settings, nodes and Kubernetes objects.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// kube-proxy `--cluster-cidr`: none (absent or empty), one CIDR, or
    /// one per family (dual-stack).
    pub cluster_cidrs: Vec<IpNet>,
    /// kube-proxy `--masquerade-all`.
    pub masquerade_all: bool,
    /// kube-proxy `--iptables-masquerade-bit` (0..=31).
    pub masquerade_bit: u8,
    /// kube-proxy `--nodeport-addresses`; empty means all local addresses.
    pub node_port_addresses: Vec<IpNet>,
    /// The nodes, in file order.
    pub nodes: Vec<NodeSpec>,
    /// Services, EndpointSlices and Nodes, in file order.
    pub objects: Vec<Object>,
}

/// A node of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node name (matches EndpointSlice `nodeName`).
    pub name: String,
    /// The node's own addresses; a bare IP is a /32. The first is kube-proxy's node IP.
    pub addresses: Vec<IpNet>,
}

/// A Kubernetes object the suite understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `v1/Service`
    Service(Box<Service>),
    /// `discovery.k8s.io/v1/EndpointSlice`
    EndpointSlice(Box<EndpointSlice>),
    /// `v1/Node` (only its labels matter: topology)
    Node(Box<Node>),
}

/// One flow: a first packet of a new connection and what must happen to it.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Human-readable name, unique within the scenario.
    pub name: String,
    /// Whose rules the packet meets.
    pub node: String,
    /// Where it comes from.
    pub from: FlowSource,
    /// Where it goes.
    pub to: Destination,
    /// Expectations (at least one is set).
    pub expect: Expect,
    /// Allowed difference per probability (default 1e-6).
    pub tolerance: BigDecimal,
    /// Where the flow was written in the scenario file.
    pub span: Span,
}

impl Flow {
    /// The first packet this flow sends.
    pub fn packet(&self) -> Packet {
        Packet {
            from: self.from,
            to: self.to,
        }
    }
}

/// A flow's expectations (contract §3). Unset keys are not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// Accepted mass per destination after DNAT, exact (`1/3` is a third).
    pub endpoints: Option<BTreeMap<SocketAddr, BigRational>>,
    /// Where all the mass ends.
    pub verdict: Option<Verdict>,
    /// Whether every accepted outcome is masqueraded.
    pub masquerade: Option<bool>,
    /// Whether a second connection from the same source sticks to the first's endpoint.
    pub sticky: Option<bool>,
}

/// What one node's generator is given (contract §2).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorInput {
    /// The node and kube-proxy's settings.
    pub node: NodeConfig,
    /// The scenario's objects, unchanged.
    pub objects: Vec<Object>,
}

/// The `node:` section of the generator input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Node name.
    pub name: String,
    /// The family whose rules the generator writes (`node.family`; absent
    /// means IPv4).
    pub family: Family,
    /// The node's own addresses of both families; the first of a family
    /// is the node IP of that family. A bare IP is a /32.
    pub addresses: Vec<IpNet>,
    /// `--cluster-cidr`: none, one CIDR, or one per family.
    pub cluster_cidrs: Vec<IpNet>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// `--iptables-masquerade-bit`.
    pub masquerade_bit: u8,
    /// `--nodeport-addresses`.
    pub node_port_addresses: Vec<IpNet>,
}

impl NodeConfig {
    /// The cluster CIDR of this input's family: the local-traffic detector
    /// kube-proxy's proxier of that family uses (none without one).
    pub fn cluster_cidr(&self) -> Option<IpNet> {
        first_of(&self.cluster_cidrs, self.family)
    }

    /// The node IP of this input's family: its first address of that family.
    pub fn node_ip(&self) -> Option<std::net::IpAddr> {
        first_of(&self.addresses, self.family).map(|n| n.addr())
    }
}

impl Cluster {
    /// The cluster CIDR of `family`, if any.
    pub fn cluster_cidr(&self, family: Family) -> Option<IpNet> {
        first_of(&self.cluster_cidrs, family)
    }
}

impl NodeSpec {
    /// The families the node has an address of, IPv4 first: the generator
    /// runs once for each.
    pub fn families(&self) -> Vec<Family> {
        let mut families: Vec<Family> = self
            .addresses
            .iter()
            .map(|a| Family::of(a.addr()))
            .collect();
        families.sort();
        families.dedup();
        families
    }
}

/// The first of `nets` in `family`.
fn first_of(nets: &[IpNet], family: Family) -> Option<IpNet> {
    nets.iter()
        .copied()
        .find(|n| Family::of(n.addr()) == family)
}

#[cfg(test)]
mod tests;
