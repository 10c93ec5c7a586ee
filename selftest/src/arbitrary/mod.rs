//! Random *valid* cluster states and the flows to probe them with, for
//! cargo-fuzz, proptest and `kpconform fuzz` .
//!
//! A [`Case`] is what the apiserver could really hold — Services of every
//! type with unique cluster IPs and node ports, their EndpointSlices with
//! every condition combination, Nodes with zone labels — plus kube-proxy's
//! settings and a list of [`Probe`]s: first packets aimed at every address a
//! service answers on (and some it does not). The cluster is IPv4-only (the
//! first, simplest choice), IPv6-only or dual-stack: Services are
//! SingleStack of either family or, on a dual-stack cluster, PreferDualStack
//! or RequireDualStack with an EndpointSlice per family; each node runs the
//! generator once per family it has an address of, and each probe is of one
//! family ([`Probe::family`]). The same code builds it from a
//! seed ([`Case::from_seed`], a small PRNG) or from a fuzzer's bytes
//! ([`Case::from_bytes`], [`arbitrary::Unstructured`]): both only feed an
//! [`Entropy`]. Running out of bytes makes every later choice the first,
//! simplest one, so shorter inputs give smaller cases and shrinking bytes
//! shrinks the case.
//!
//! `{:?}` prints the case as a scenario file (contract §1) whose flows expect
//! what the [oracle](kpconform_suite::oracle) predicts, so that a fuzzer finding is a
//! reproducer one can commit; [`Case::to_scenario_yaml`] lets the caller
//! fill in the expectations, and [`Case::shrink`] cuts a failing case down
//! (one probe, object, endpoint, port or setting at a time) first. The
//! checks themselves are in [`properties`].
//!
//! ```
//! use kpconform_selftest::arbitrary::Case;
//! use kpconform_suite::scenario::Scenario;
//! use kpconform_iptables::SourceFile;
//!
//! let case = Case::from_seed(7);
//! assert!(!case.probes.is_empty());
//! let probe = &case.probes[0];
//! let input = case
//!     .generator_input_for(&probe.node, probe.family())
//!     .expect("a node of the case, with an address of the probe's family");
//! assert_eq!(input.objects, case.cluster.objects);
//! assert_eq!(input.node.family, probe.family());
//!
//! // The reproducer is a scenario the loader accepts, with the same state.
//! let yaml = case.to_scenario_yaml(|_| None);
//! let back = Scenario::from_source(&SourceFile::new("fuzz.yaml", yaml), "fuzz/7").unwrap();
//! assert_eq!(back.cluster.objects, case.cluster.objects);
//! assert_eq!(back.cluster.nodes, case.cluster.nodes);
//! ```

use std::fmt;

use kpconform_iptables::model::Family;
use kpconform_iptables::Packet;
use kpconform_suite::scenario::{Cluster, Destination, Expect, FlowSource, GeneratorInput};

mod cluster;
mod objects;
mod probes;
pub mod properties;
mod shrink;
mod yaml;

/// A source of choices: a seeded PRNG or a fuzzer's bytes.
///
/// Every decision the generator makes is one call to [`Entropy::below`];
/// a source that has run dry answers 0, which the generator treats as the
/// simplest option.
pub trait Entropy {
    /// A number in `0..n` (`n >= 1`; `n == 0` answers 0).
    fn below(&mut self, n: u64) -> u64;

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with `percent`% probability; a dry source answers false.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) + percent.min(100) >= 100
    }

    /// An index into `weights`, each chosen in proportion to its weight; a
    /// dry source picks the first.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        0
    }
}

/// SplitMix64: tiny, fast, and good enough to pick test cases.
#[derive(Debug, Clone)]
pub struct Seeded {
    state: u64,
}

impl Seeded {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Seeded {
        Seeded { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for Seeded {
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // Lemire's multiply-shift: unbiased enough for picking cases.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

impl Entropy for ::arbitrary::Unstructured<'_> {
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // `int_in_range` answers the lower bound once the bytes run out.
        self.int_in_range(0..=n - 1).unwrap_or(0)
    }
}

/// A random valid cluster state and the packets to probe it with.
#[derive(Clone)]
pub struct Case {
    /// Nodes, kube-proxy settings and Kubernetes objects, as a scenario's `cluster:`.
    pub cluster: Cluster,
    /// First packets to trace, each on one node; names are unique.
    pub probes: Vec<Probe>,
}

/// One flow without expectations: where a first packet starts and goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What the packet is, in words (unique within the case).
    pub name: String,
    /// The node whose rules it meets.
    pub node: String,
    /// Its source.
    pub from: FlowSource,
    /// Its destination.
    pub to: Destination,
}

impl Probe {
    /// The packet the tracer follows.
    pub fn packet(&self) -> Packet {
        Packet::new(self.from, self.to.addr, self.to.protocol)
    }

    /// The probe's IP family: its destination's (a source address is of
    /// the same family); the rules of that family on its node meet it.
    pub fn family(&self) -> Family {
        Family::of(self.to.addr.ip())
    }
}

impl Case {
    /// The case a seed gives; the same seed always gives the same case.
    pub fn from_seed(seed: u64) -> Case {
        Case::generate(&mut Seeded::new(seed))
    }

    /// The case a fuzzer's bytes give (through [`arbitrary::Unstructured`]).
    pub fn from_bytes(data: &[u8]) -> Case {
        Case::generate(&mut ::arbitrary::Unstructured::new(data))
    }

    /// Builds a case from any source of choices.
    pub fn generate<E: Entropy + ?Sized>(e: &mut E) -> Case {
        let world = cluster::World::generate(e);
        let probes = probes::probes(&world, e);
        Case {
            cluster: world.to_cluster(),
            probes,
        }
    }

    /// The generator input (contract §2) of one node of the case, for the
    /// family of its first address.
    pub fn generator_input(&self, node: &str) -> Option<GeneratorInput> {
        self.cluster.generator_input(node)
    }

    /// The generator input of one node of the case for its rules of
    /// `family`; `None` when the node has no address of that family.
    pub fn generator_input_for(&self, node: &str, family: Family) -> Option<GeneratorInput> {
        self.cluster.generator_input_for(node, family)
    }

    /// The families of the cluster, IPv4 first: those of any node's addresses.
    pub fn families(&self) -> Vec<Family> {
        let mut out: Vec<Family> = self
            .cluster
            .nodes
            .iter()
            .flat_map(|n| n.families())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The probes sent on `node`, in order.
    pub fn probes_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Probe> + 'a {
        self.probes.iter().filter(move |p| p.node == node)
    }

    /// The probes of `family` sent on `node`, in order: those the node's
    /// rules of that family meet.
    pub fn probes_of<'a>(
        &'a self,
        node: &'a str,
        family: Family,
    ) -> impl Iterator<Item = &'a Probe> + 'a {
        self.probes_on(node).filter(move |p| p.family() == family)
    }

    /// The case as a scenario file (contract §1), ready to commit under
    /// `golden/scenarios/`. `expect` gives each probe's expectations; a
    /// probe it answers `None` for is left out (a flow needs at least one).
    pub fn to_scenario_yaml(&self, expect: impl Fn(&Probe) -> Option<Expect>) -> String {
        yaml::scenario(self, &expect)
    }
}

/// Prints the reproducer: the scenario file, each probe a flow expecting
/// what the [oracle](kpconform_suite::oracle) says must happen; probes the oracle
/// cannot decide are listed in a comment.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&yaml::scenario(self, &|p| {
            properties::oracle_expect(self, p)
        }))?;
        let undecided: Vec<Probe> = self
            .probes
            .iter()
            .filter(|p| properties::oracle_expect(self, p).is_none())
            .cloned()
            .collect();
        if undecided.is_empty() {
            return Ok(());
        }
        f.write_str(&yaml::probes_comment(&undecided))
    }
}

impl<'a> ::arbitrary::Arbitrary<'a> for Case {
    fn arbitrary(u: &mut ::arbitrary::Unstructured<'a>) -> ::arbitrary::Result<Case> {
        Ok(Case::generate(u))
    }

    fn arbitrary_take_rest(mut u: ::arbitrary::Unstructured<'a>) -> ::arbitrary::Result<Case> {
        Ok(Case::generate(&mut u))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (0, None)
    }
}

#[cfg(test)]
mod tests;
