//! What kube-proxy rules must do: scenarios (cluster state plus packet flows
//! with expected outcomes), the generator input each node gets, the checks of
//! traced flows against their expectations, the structural invariants of a
//! rule set, and the semantic oracle that predicts any flow from Kubernetes
//! Service semantics alone. Pure functions over [`kpconform_iptables`]'s
//! rule model; no processes, files or terminals.
//!
//! ```
//! use kpconform_iptables::{parse_str, ProbabilityMode, SourceFile};
//! use kpconform_suite::{check::check_node, scenario::Scenario};
//!
//! let scenario = Scenario::from_source(
//!     &SourceFile::new(
//!         "api.yaml",
//!         "cluster:
//!   clusterCIDR: 10.64.0.0/16
//!   nodes: [{name: node-a, addresses: [192.168.0.10]}]
//!   objects:
//!   - {apiVersion: v1, kind: Service, metadata: {name: api, namespace: default},
//!      spec: {clusterIP: 10.96.0.50, ports: [{port: 80, protocol: TCP}]}}
//! flows:
//! - {name: no endpoints, node: node-a, from: node, to: 10.96.0.50:80/tcp,
//!    expect: {verdict: reject}}
//! ",
//!     ),
//!     "clusterip/api",
//! )?;
//! // Rules that accept everything: the flow expected a REJECT.
//! let rules = parse_str("*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n").unwrap();
//! let report = check_node(&rules, &scenario, "node-a", None, ProbabilityMode::Kernel).unwrap();
//! assert_eq!(report.flows.len(), 1);
//! assert!(!report.flows[0].passed());
//! # Ok::<(), kpconform_suite::scenario::ScenarioError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod behaviour;
pub mod check;
pub mod coverage;
pub mod exact;
pub mod invariants;
pub mod oracle;
pub mod scenario;
pub mod skeleton;
