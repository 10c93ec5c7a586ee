//! How two [`Behaviour`]s of one probe differ, aspect by aspect, in words a
//! reviewer reads: "were accepted, now dropped", "now reach 10.64.1.5:8080
//! (p 0 -> 0.5)", "are no longer masqueraded".

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

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
    differences_from(old, new, None)
}

/// [`differences`] for a probe sent by `client` when it is an endpoint of
/// the service (hairpin): a masquerade change to exactly the client's own
/// address reads "when they reach themselves", one to exactly every other
/// endpoint reached "when they reach another endpoint", so that the probes
/// of the service's endpoints, each naming its own or its peers' address,
/// read the same and group into one finding.
pub fn differences_from(
    old: &Behaviour,
    new: &Behaviour,
    client: Option<IpAddr>,
) -> Vec<(Aspect, String)> {
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
        if ao.is_empty() {
            phrase.push_str(&format!(", and are {}", masquerade_state(new)));
        } else if an.is_empty() {
            phrase.push_str(&format!(" (they were {})", masquerade_state(old)));
        }
        out.push((Aspect::Endpoints, phrase));
    }
    if let Some(phrase) = masquerade_phrase(old, new, client) {
        out.push((Aspect::Masquerade, phrase));
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

/// Whether masquerading changed where both sides accept traffic. A
/// destination reached on both sides is compared by its masqueraded share
/// (so a shifted probability alone, which moves masqueraded mass along
/// with the destination, is no masquerade change); without one, the
/// shares of all accepted traffic are compared. `client`: see
/// [`differences_from`].
fn masquerade_phrase(old: &Behaviour, new: &Behaviour, client: Option<IpAddr>) -> Option<String> {
    let (ao, an) = (old.accepted(), new.accepted());
    if ao.is_empty() || an.is_empty() {
        return None;
    }
    let (mo, mn) = (masqueraded_by_target(old), masqueraded_by_target(new));
    let zero = Mass::zero();
    // masq_o / acc_o != masq_n / acc_n, without dividing.
    let differs = |m_o: &Mass, a_o: &Mass, m_n: &Mass, a_n: &Mass| {
        m_o.clone() * a_n.clone() != m_n.clone() * a_o.clone()
    };
    let common: Vec<Target> = ao.keys().filter(|t| an.contains_key(t)).copied().collect();
    if common.is_empty() {
        let (to, tn) = (old.masqueraded(), new.masqueraded());
        if !differs(&to, &old.accepted_total(), &tn, &new.accepted_total()) {
            return None;
        }
        let (a, b) = probabilities(&to, &tn);
        return Some(if tn.is_zero() {
            format!("are no longer masqueraded (p {a} -> {b})")
        } else if to.is_zero() {
            format!("are now masqueraded (p {a} -> {b})")
        } else {
            format!("are masqueraded with p {a} -> {b}")
        });
    }
    let (mut lost, mut gained, mut shifted) = (Vec::new(), Vec::new(), Vec::new());
    for t in common {
        let m_o = mo.get(&t).unwrap_or(&zero);
        let m_n = mn.get(&t).unwrap_or(&zero);
        if !differs(m_o, &ao[&t], m_n, &an[&t]) {
            continue;
        }
        if m_n.is_zero() {
            lost.push(t);
        } else if m_o.is_zero() {
            gained.push(t);
        } else {
            let (a, b) = probabilities(m_o, m_n);
            shifted.push(format!("{t} (p {a} -> {b})"));
        }
    }
    let reached: BTreeSet<Target> = ao.keys().chain(an.keys()).copied().collect();
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!(
            "are no longer masqueraded {}",
            where_to(&lost, &reached, client)
        ));
    }
    if !gained.is_empty() {
        parts.push(format!(
            "are now masqueraded {}",
            where_to(&gained, &reached, client)
        ));
    }
    if !shifted.is_empty() {
        parts.push(format!("are masqueraded to {}", shifted.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `to A, B`; for a hairpin `client`, relative to it where that names the
/// same set: `when they reach themselves` (exactly the client's own
/// addresses) or `when they reach another endpoint` (exactly every other
/// destination reached on either side, the client being one of them).
fn where_to(targets: &[Target], reached: &BTreeSet<Target>, client: Option<IpAddr>) -> String {
    if let Some(ip) = client {
        let is_own = |t: &Target| matches!(t, Target::To(a) if a.ip() == ip);
        let named: BTreeSet<Target> = targets.iter().copied().collect();
        let own: BTreeSet<Target> = reached.iter().copied().filter(is_own).collect();
        let others: BTreeSet<Target> = reached.iter().copied().filter(|t| !is_own(t)).collect();
        if !own.is_empty() && named == own {
            return "when they reach themselves".into();
        }
        if !own.is_empty() && named == others {
            return "when they reach another endpoint".into();
        }
    }
    let list: Vec<String> = targets.iter().map(Target::to_string).collect();
    format!("to {}", list.join(", "))
}

/// The accepted, masqueraded mass per target.
fn masqueraded_by_target(b: &Behaviour) -> BTreeMap<Target, Mass> {
    let mut out: BTreeMap<Target, Mass> = BTreeMap::new();
    for (k, p) in &b.outcomes {
        if k.verdict == Verdict::Accept && k.masquerade {
            *out.entry(k.target).or_default() += p;
        }
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
