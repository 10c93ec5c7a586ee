//! How two [`Behaviour`]s of one probe differ, aspect by aspect, in words a
//! reviewer reads: "were accepted, now dropped", "now reach 10.64.1.5:8080
//! (p 0 -> 0.5)", "are no longer masqueraded".

use std::collections::{BTreeMap, BTreeSet};

use kpconform_iptables::{Mass, Verdict};
use serde::Serialize;

use super::observe::{Behaviour, Target};

/// One way two behaviours can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aspect {
    /// The mass per verdict (accept, drop, reject).
    Verdict,
    /// The accepted mass per destination.
    Endpoints,
    /// The masqueraded share of accepted traffic.
    Masquerade,
    /// Session affinity.
    Affinity,
    /// Whether (and why not) the probe can be traced.
    Trace,
}

impl Aspect {
    /// `verdict`, `endpoints`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::Verdict => "verdict",
            Aspect::Endpoints => "endpoints",
            Aspect::Masquerade => "masquerade",
            Aspect::Affinity => "affinity",
            Aspect::Trace => "trace",
        }
    }
}

/// The aspects in which `new` differs from `old`, each with its phrase;
/// empty when they behave the same.
pub fn differences(old: &Behaviour, new: &Behaviour) -> Vec<(Aspect, String)> {
    let mut out = Vec::new();
    if old.error != new.error {
        let phrase = match (&old.error, &new.error) {
            (None, Some(e)) => format!("can no longer be traced ({e})"),
            (Some(e), None) => format!("can now be traced (before: {e})"),
            (Some(a), Some(b)) => format!("cannot be traced: {a} -> {b}"),
            (None, None) => unreachable!("the errors differ"),
        };
        out.push((Aspect::Trace, phrase));
    }
    let (vo, vn) = (old.verdicts(), new.verdicts());
    if vo != vn {
        out.push((Aspect::Verdict, verdict_phrase(&vo, &vn)));
    }
    let (ao, an) = (old.accepted(), new.accepted());
    if ao != an {
        let mut phrase = endpoints_phrase(&ao, &an);
        // Where only one side accepts anything, its masquerading belongs
        // with the destinations it reaches.
        if ao.is_empty() != an.is_empty() {
            let side = if ao.is_empty() { new } else { old };
            phrase.push_str(&format!(", {}", masquerade_state(side)));
        }
        out.push((Aspect::Endpoints, phrase));
    }
    if !ao.is_empty() && !an.is_empty() {
        let (mo, mn) = (old.masqueraded(), new.masqueraded());
        if mo != mn {
            let (a, b) = probabilities(&mo, &mn);
            let phrase = if mn.is_zero() {
                format!("are no longer masqueraded (p {a} -> {b})")
            } else if mo.is_zero() {
                format!("are now masqueraded (p {a} -> {b})")
            } else {
                format!("are masqueraded with p {a} -> {b}")
            };
            out.push((Aspect::Masquerade, phrase));
        }
    }
    if old.affinity != new.affinity {
        out.push((
            Aspect::Affinity,
            format!(
                "session affinity changed: {} -> {}",
                old.affinity.describe(),
                new.affinity.describe()
            ),
        ));
    }
    out
}

/// `masqueraded`, `not masqueraded` or `masqueraded with p 0.5`.
fn masquerade_state(b: &Behaviour) -> String {
    let (m, all) = (b.masqueraded(), b.accepted_total());
    if m.is_zero() {
        "not masqueraded".into()
    } else if m == all {
        "masqueraded".into()
    } else {
        format!("masqueraded with p {m}")
    }
}

fn past(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "accepted",
        Verdict::Drop => "dropped",
        Verdict::Reject => "rejected",
    }
}

/// `were accepted, now dropped`, or per verdict `ACCEPT p 1 -> 0.5, ...`.
fn verdict_phrase(old: &BTreeMap<Verdict, Mass>, new: &BTreeMap<Verdict, Mass>) -> String {
    let only =
        |m: &BTreeMap<Verdict, Mass>| (m.len() == 1).then(|| m.keys().next().copied()).flatten();
    if let (Some(a), Some(b)) = (only(old), only(new)) {
        return format!("were {}, now {}", past(a), past(b));
    }
    let zero = Mass::zero();
    let verdicts: BTreeSet<Verdict> = old.keys().chain(new.keys()).copied().collect();
    let parts: Vec<String> = verdicts
        .into_iter()
        .filter_map(|v| {
            let (a, b) = (old.get(&v).unwrap_or(&zero), new.get(&v).unwrap_or(&zero));
            (a != b).then(|| {
                let (a, b) = probabilities(a, b);
                format!("{} p {a} -> {b}", v.as_str().to_uppercase())
            })
        })
        .collect();
    format!("verdicts changed: {}", parts.join(", "))
}

/// `now reach A (p 0 -> 0.5), B (p 0 -> 0.5); no longer reach C (p 1 -> 0)`.
fn endpoints_phrase(old: &BTreeMap<Target, Mass>, new: &BTreeMap<Target, Mass>) -> String {
    let zero = Mass::zero();
    let targets: BTreeSet<Target> = old.keys().chain(new.keys()).copied().collect();
    let (mut gained, mut lost, mut shifted) = (Vec::new(), Vec::new(), Vec::new());
    for t in targets {
        let (a, b) = (old.get(&t).unwrap_or(&zero), new.get(&t).unwrap_or(&zero));
        if a == b {
            continue;
        }
        let (pa, pb) = probabilities(a, b);
        let item = format!("{t} (p {pa} -> {pb})");
        if a.is_zero() {
            gained.push(item);
        } else if b.is_zero() {
            lost.push(item);
        } else {
            shifted.push(item);
        }
    }
    let mut parts = Vec::new();
    if !gained.is_empty() {
        parts.push(format!("now reach {}", gained.join(", ")));
    }
    if !lost.is_empty() {
        parts.push(format!("no longer reach {}", lost.join(", ")));
    }
    if !shifted.is_empty() {
        parts.push(format!("reach {}", shifted.join(", ")));
    }
    parts.join("; ")
}

/// Two probabilities as text that shows they differ: 12 significant digits,
/// or every digit when those agree (kernel units differ far down).
fn probabilities(a: &Mass, b: &Mass) -> (String, String) {
    let (sa, sb) = (a.to_string(), b.to_string());
    if sa == sb && a != b {
        (a.to_exact_decimal(), b.to_exact_decimal())
    } else {
        (sa, sb)
    }
}
