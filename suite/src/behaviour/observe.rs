//! What one probe's trace amounts to, stripped of everything that is not
//! behaviour: chain names, rule order and paths are gone, the exact mass per
//! (verdict, destination, masquerade) and session affinity remain. Two rule
//! sets that differ only by chain hashes or by the order of order-free
//! rules give equal [`Behaviour`]s.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use kpconform_iptables::{Mass, Packet, TraceErrorKind, Tracer, Verdict};

/// Where an outcome's packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// To the address it was sent to: nothing translated it.
    Untranslated,
    /// DNATed (or redirected) to this address.
    To(SocketAddr),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Untranslated => f.write_str("the address it was sent to, untranslated"),
            Target::To(addr) => write!(f, "{addr}"),
        }
    }
}

/// One class of outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutcomeKey {
    /// Accepted, dropped or rejected.
    pub verdict: Verdict,
    /// Where it goes.
    pub target: Target,
    /// Masqueraded (or SNATed).
    pub masquerade: bool,
}

/// Whether a second connection from the same client follows the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affinity {
    /// The rules remember nothing about the client.
    None,
    /// Every DNATed first connection is remembered, and a second one from
    /// the same client reaches the same destination with probability 1.
    Sticky,
    /// The rules remember the client, but a second connection may go
    /// elsewhere.
    NotSticky,
}

impl Affinity {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Affinity::None => "no session affinity",
            Affinity::Sticky => "sticky session affinity",
            Affinity::NotSticky => "clients remembered but not kept on their endpoint",
        }
    }
}

/// What happens to one probe under one rule set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Behaviour {
    /// The exact probability of each class of outcomes (kernel units);
    /// empty when the trace failed.
    pub outcomes: BTreeMap<OutcomeKey, Mass>,
    /// Session affinity.
    pub affinity: Affinity,
    /// Why the packet could not be traced, in words independent of chain
    /// names (a loop is a loop whatever the chain is called).
    pub error: Option<String>,
}

impl Behaviour {
    /// The mass per verdict.
    pub fn verdicts(&self) -> BTreeMap<Verdict, Mass> {
        let mut out: BTreeMap<Verdict, Mass> = BTreeMap::new();
        for (k, p) in &self.outcomes {
            *out.entry(k.verdict).or_default() += p;
        }
        out
    }

    /// The accepted mass per target.
    pub fn accepted(&self) -> BTreeMap<Target, Mass> {
        let mut out: BTreeMap<Target, Mass> = BTreeMap::new();
        for (k, p) in self
            .outcomes
            .iter()
            .filter(|(k, _)| k.verdict == Verdict::Accept)
        {
            *out.entry(k.target).or_default() += p;
        }
        out
    }

    /// The accepted mass that is masqueraded.
    pub fn masqueraded(&self) -> Mass {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.verdict == Verdict::Accept && k.masquerade)
            .map(|(_, p)| p)
            .sum()
    }

    /// The accepted mass.
    pub fn accepted_total(&self) -> Mass {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.verdict == Verdict::Accept)
            .map(|(_, p)| p)
            .sum()
    }
}

/// Traces `packet` with `tracer` and, when the rules remember the client
/// (`-m recent`), a second connection after each DNATed first one.
pub fn observe(tracer: &Tracer<'_>, packet: &Packet) -> Behaviour {
    let dist = match tracer.trace(packet) {
        Ok(d) => d,
        Err(e) => {
            return Behaviour {
                outcomes: BTreeMap::new(),
                affinity: Affinity::None,
                error: Some(describe_error(&e.kind).to_string()),
            }
        }
    };
    let mut outcomes: BTreeMap<OutcomeKey, Mass> = BTreeMap::new();
    for o in &dist.outcomes {
        let target = if o.dnated() && o.destination != packet.to.addr {
            Target::To(o.destination)
        } else {
            Target::Untranslated
        };
        let key = OutcomeKey {
            verdict: o.verdict,
            target,
            masquerade: o.masquerade,
        };
        *outcomes.entry(key).or_default() += &o.probability;
    }
    // Zero-mass paths (a statistic rule of probability 0 or 1) are no
    // behaviour.
    outcomes.retain(|_, p| !p.is_zero());

    let remembered: Vec<_> = dist
        .outcomes
        .iter()
        .filter(|o| o.dnated() && !o.probability.is_zero())
        .collect();
    let affinity = if remembered.iter().all(|o| o.recent.is_empty()) {
        Affinity::None
    } else {
        let sticks = remembered.iter().all(|first| {
            tracer
                .trace_with(packet, &first.recent)
                .is_ok_and(|second| {
                    let same: Mass = second
                        .outcomes
                        .iter()
                        .filter(|o| {
                            o.destination == first.destination && o.verdict == first.verdict
                        })
                        .map(|o| &o.probability)
                        .sum();
                    same.is_one()
                })
        });
        if sticks {
            Affinity::Sticky
        } else {
            Affinity::NotSticky
        }
    };
    Behaviour {
        outcomes,
        affinity,
        error: None,
    }
}

fn describe_error(kind: &TraceErrorKind) -> &'static str {
    match kind {
        TraceErrorKind::Loop => "a jump loops back into a chain being traversed",
        TraceErrorKind::TooDeep => "chains nest too deeply",
        TraceErrorKind::UndeclaredChain => "a jump to an undeclared chain",
        TraceErrorKind::BuiltinTarget => "a jump to a built-in chain",
        TraceErrorKind::NoNodeAddress => "the node has no address",
        TraceErrorKind::TooManyPaths => "too many paths to trace",
        _ => "the trace failed",
    }
}
