//! Probes whose behaviour changed, grouped so that one real change is one
//! finding: the probes of one service port, through one kind of address,
//! whose changes read the same (the same aspects, the same phrases) are one
//! finding, whatever their exact addresses (every node address of a node
//! port, both outside clients, each endpoint sending to its own service,
//! whose changes are phrased relative to itself: "when they reach
//! themselves") and whichever kinds of client they come from.

use std::collections::{BTreeMap, BTreeSet};

use kpconform_iptables::{FlowSource, Packet};

use super::compare::{differences_from, Aspect};
use super::observe::Behaviour;
use crate::oracle::{EntryKind, ProbeContext, ServicePortName, SourceKind};

/// One probe, traced under both rule sets.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// The packet.
    pub packet: Packet,
    /// Its service port, entry and source kind.
    pub context: ProbeContext,
    /// Under the old rules.
    pub old: Behaviour,
    /// Under the new rules.
    pub new: Behaviour,
}

/// A behaviour change of one service port through one kind of address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The service port; `None` for addresses that are no service's.
    pub service: Option<ServicePortName>,
    /// Which of its addresses.
    pub entry: EntryKind,
    /// The kinds of client that see the change.
    pub sources: Vec<SourceKind>,
    /// The destinations probed (`IP:PORT/PROTO`), sorted.
    pub destinations: Vec<String>,
    /// How many probes changed this way.
    pub probes: usize,
    /// The first of them (in probe order), whose behaviours `old` and
    /// `new` are: probes of one finding may differ in detail (which
    /// endpoint a hairpin client is), never in what changed.
    pub example: Packet,
    /// The example's behaviour before.
    pub old: Behaviour,
    /// The example's behaviour after.
    pub new: Behaviour,
    /// What differs, with a phrase for each.
    pub differences: Vec<(Aspect, String)>,
}

impl Finding {
    /// The aspects that differ.
    pub fn aspects(&self) -> Vec<Aspect> {
        self.differences.iter().map(|(a, _)| *a).collect()
    }

    /// `shop/web:http (80/TCP)`, or `no service`.
    pub fn service_name(&self) -> String {
        match &self.service {
            Some(s) => service_name(s),
            None => "no service".into(),
        }
    }

    /// One sentence: `shop/web:http (80/TCP), external IP 198.51.100.7:80/tcp,
    /// from external clients: were accepted, now dropped; ...`.
    pub fn sentence(&self) -> String {
        let what = match &self.service {
            Some(s) => format!("{}, {}", service_name(s), self.entry.describe()),
            None => "an address that is no service's".into(),
        };
        let sources: Vec<&str> = self.sources.iter().map(|s| s.plural()).collect();
        let phrases: Vec<&str> = self.differences.iter().map(|(_, p)| p.as_str()).collect();
        format!(
            "{what} {}, from {}: {}",
            self.destinations.join(", "),
            join_words(&sources),
            phrases.join("; ")
        )
    }
}

/// `ns/name:port (80/TCP)`.
fn service_name(s: &ServicePortName) -> String {
    format!(
        "{} ({}/{})",
        s.name,
        s.port,
        s.protocol.to_string().to_uppercase()
    )
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The changed probes of `results`, grouped into findings, in a fixed order
/// (service, entry, then the behaviours); unchanged probes are dropped.
pub fn group(results: impl IntoIterator<Item = ProbeResult>) -> Vec<Finding> {
    type Key = (Option<ServicePortName>, EntryKind, Vec<(Aspect, String)>);
    struct Group {
        sources: BTreeSet<SourceKind>,
        destinations: BTreeSet<String>,
        probes: usize,
        example: ProbeResult,
    }
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for r in results {
        if r.old == r.new {
            continue;
        }
        // A hairpin client's changes are phrased relative to itself, so
        // that every endpoint sending to its own service is one finding.
        let client = match (r.context.source, r.packet.from) {
            (SourceKind::Endpoint, FlowSource::Ip(ip)) => Some(ip),
            _ => None,
        };
        let key = (
            r.context.service.clone(),
            r.context.entry,
            differences_from(&r.old, &r.new, client),
        );
        let g = groups.entry(key).or_insert_with(|| Group {
            sources: BTreeSet::new(),
            destinations: BTreeSet::new(),
            probes: 0,
            example: r.clone(),
        });
        g.sources.insert(r.context.source);
        g.destinations.insert(r.packet.to.to_string());
        g.probes += 1;
    }
    groups
        .into_iter()
        .map(|((service, entry, differences), g)| Finding {
            service,
            entry,
            sources: g.sources.into_iter().collect(),
            destinations: g.destinations.into_iter().collect(),
            probes: g.probes,
            example: g.example.packet,
            old: g.example.old,
            new: g.example.new,
            differences,
        })
        .collect()
}
