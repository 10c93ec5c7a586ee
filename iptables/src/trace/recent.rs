//! `-m recent` lists: the state one connection leaves for the next.
//!
//! This follows `net/netfilter/xt_recent.c`. Time is modelled as the age, in
//! whole seconds, of each timestamp an entry holds: a trace runs at "now"
//! (age 0), and [`RecentState::aged`] moves the clock forward so that a second
//! connection N seconds later can be traced. The TTL (`--rttl`) is not
//! modelled: every packet is taken to have the same TTL, so `--rttl` never
//! excludes an entry.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::model::{Recent, RecentAction, RecentSide};

/// How many timestamps an entry keeps (`ip_pkt_list_tot`, default 20).
pub const MAX_STAMPS: usize = 20;

/// How many entries a list keeps before evicting the least recently updated
/// one (`ip_list_tot`, default 100).
pub const MAX_ENTRIES: usize = 100;

/// Every `-m recent` list and its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentState {
    lists: BTreeMap<String, BTreeMap<IpAddr, RecentEntry>>,
}

/// One remembered address: the ages of its hits, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEntry {
    ages: Vec<u32>,
}

impl RecentEntry {
    /// Ages in seconds of the remembered hits, oldest first (never empty).
    pub fn ages(&self) -> &[u32] {
        &self.ages
    }

    /// Age of the newest hit.
    pub fn last_seen(&self) -> u32 {
        self.ages.last().copied().unwrap_or(u32::MAX)
    }

    fn hit(&mut self) {
        if self.ages.len() >= MAX_STAMPS {
            self.ages.remove(0);
        }
        self.ages.push(0);
    }
}

impl RecentState {
    /// No lists: what a first connection sees.
    pub fn new() -> RecentState {
        RecentState::default()
    }

    /// Whether no list holds any entry.
    pub fn is_empty(&self) -> bool {
        self.lists.values().all(BTreeMap::is_empty)
    }

    /// Adds (or refreshes) `addr` in `list` as last seen `age` seconds ago.
    pub fn with_entry(mut self, list: &str, addr: IpAddr, age: u32) -> RecentState {
        let entries = self.lists.entry(list.to_string()).or_default();
        let entry = entries
            .entry(addr)
            .or_insert(RecentEntry { ages: Vec::new() });
        entry.ages.push(age);
        // Keep stamps oldest first whatever order callers add them in.
        entry.ages.sort_unstable_by(|a, b| b.cmp(a));
        self
    }

    /// The same state `seconds` later: every timestamp is older by that much.
    pub fn aged(&self, seconds: u32) -> RecentState {
        let mut out = self.clone();
        for entry in out.lists.values_mut().flat_map(BTreeMap::values_mut) {
            for age in &mut entry.ages {
                *age = age.saturating_add(seconds);
            }
        }
        out
    }

    /// The entry for `addr` in `list`, if any.
    pub fn entry(&self, list: &str, addr: IpAddr) -> Option<&RecentEntry> {
        self.lists.get(list)?.get(&addr)
    }

    /// Every (list, address, entry), sorted by list then address.
    pub fn entries(&self) -> impl Iterator<Item = (&str, IpAddr, &RecentEntry)> {
        self.lists
            .iter()
            .flat_map(|(name, es)| es.iter().map(move |(a, e)| (name.as_str(), *a, e)))
    }

    /// Evaluates one `-m recent` match for a packet, updating the lists as
    /// the kernel does, and returns whether it matched (negation included).
    pub fn apply(&mut self, m: &Recent, source: IpAddr, destination: IpAddr) -> bool {
        let addr = match m.side {
            RecentSide::Source => source,
            RecentSide::Dest => destination,
        };
        let key = masked(addr, m.mask);
        let invert = m.negated;
        let entries = self.lists.entry(m.name.clone()).or_default();

        let Some(entry) = entries.get_mut(&key) else {
            if m.action != RecentAction::Set {
                return invert;
            }
            if entries.len() >= MAX_ENTRIES {
                if let Some(lru) = least_recent(entries, None) {
                    entries.remove(&lru);
                }
            }
            entries.insert(key, RecentEntry { ages: vec![0] });
            return !invert;
        };

        let mut ret = invert;
        match m.action {
            RecentAction::Set => {
                ret = !ret;
                entry.hit();
            }
            RecentAction::Remove => {
                entries.remove(&key);
                ret = !ret;
            }
            RecentAction::Rcheck | RecentAction::Update => {
                // A stamp counts unless it is older than --seconds (age equal
                // to --seconds still counts: the kernel uses time_after).
                let mut hits = 0u32;
                for &age in &entry.ages {
                    if m.seconds.is_some_and(|s| age > s) {
                        continue;
                    }
                    hits += 1;
                    if m.hitcount.is_none_or(|h| hits >= h) {
                        ret = !ret;
                        break;
                    }
                }
                if m.reap {
                    // recent_entry_reap looks at the least recently updated
                    // entry of the list only, never the one being checked.
                    let limit = m.seconds.unwrap_or(0);
                    if let Some(lru) = least_recent(entries, Some(key)) {
                        if entries.get(&lru).is_some_and(|e| e.last_seen() > limit) {
                            entries.remove(&lru);
                        }
                    }
                }
                // The kernel refreshes on --update when the (possibly
                // inverted) result is true, quirk included; after reaping.
                if m.action == RecentAction::Update && ret {
                    if let Some(entry) = entries.get_mut(&key) {
                        entry.hit();
                    }
                }
            }
        }
        ret
    }
}

/// `addr` under `--mask` (none: the whole address). A mask of the other
/// family leaves nothing of the address, as the kernel's bitwise AND of
/// mismatched lengths would not happen: ip6tables refuses an IPv4 mask.
fn masked(addr: IpAddr, mask: Option<IpAddr>) -> IpAddr {
    match (addr, mask) {
        (addr, None) => addr,
        (IpAddr::V4(a), Some(IpAddr::V4(m))) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), Some(IpAddr::V6(m))) => IpAddr::V6((u128::from(a) & u128::from(m)).into()),
        (IpAddr::V4(_), Some(_)) => IpAddr::V4(0.into()),
        (IpAddr::V6(_), Some(_)) => IpAddr::V6(0u128.into()),
    }
}

/// The list's least recently updated entry (the kernel's LRU head); ties go
/// to the lowest address so that the choice is deterministic.
fn least_recent(
    entries: &BTreeMap<IpAddr, RecentEntry>,
    working: Option<IpAddr>,
) -> Option<IpAddr> {
    let addr = entries
        .iter()
        .max_by(|(a1, e1), (a2, e2)| e1.last_seen().cmp(&e2.last_seen()).then(a2.cmp(a1)))
        .map(|(a, _)| *a)?;
    (Some(addr) != working).then_some(addr)
}

impl fmt::Display for RecentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (list, addr, entry) in self.entries() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{list}: {addr} ({}s ago)", entry.last_seen())?;
        }
        if first {
            f.write_str("(empty)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn recent(action: RecentAction, seconds: Option<u32>) -> Recent {
        Recent {
            negated: false,
            action,
            name: "L".into(),
            seconds,
            reap: false,
            hitcount: None,
            rttl: false,
            mask: None,
            side: RecentSide::Source,
        }
    }

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1));

    #[test]
    fn set_then_rcheck_matches_within_seconds_only() {
        let mut s = RecentState::new();
        assert!(!s.apply(&recent(RecentAction::Rcheck, Some(10)), SRC, DST));
        assert!(s.apply(&recent(RecentAction::Set, None), SRC, DST));
        assert!(s.apply(&recent(RecentAction::Rcheck, Some(10)), SRC, DST));
        // At exactly the timeout the stamp still counts; one second later not.
        let mut at = s.aged(10);
        assert!(at.apply(&recent(RecentAction::Rcheck, Some(10)), SRC, DST));
        let mut late = s.aged(11);
        assert!(!late.apply(&recent(RecentAction::Rcheck, Some(10)), SRC, DST));
        // Without --seconds any stamp counts.
        assert!(late.apply(&recent(RecentAction::Rcheck, None), SRC, DST));
    }

    #[test]
    fn rdest_and_mask_choose_the_key() {
        let mut s = RecentState::new();
        let mut m = recent(RecentAction::Set, None);
        m.side = RecentSide::Dest;
        m.mask = Some(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0)));
        assert!(s.apply(&m, SRC, DST));
        assert!(s
            .entry("L", IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)))
            .is_some());
        assert!(s.entry("L", SRC).is_none());
    }

    #[test]
    fn remove_and_negation() {
        let mut s = RecentState::new().with_entry("L", SRC, 3);
        let mut neg = recent(RecentAction::Rcheck, None);
        neg.negated = true;
        assert!(!s.apply(&neg, SRC, DST));
        assert!(s.apply(&recent(RecentAction::Remove, None), SRC, DST));
        assert!(s.is_empty());
        assert!(!s.apply(&recent(RecentAction::Remove, None), SRC, DST));
        assert!(s.apply(&neg, SRC, DST));
    }

    #[test]
    fn update_refreshes_and_hitcount_counts_recent_stamps() {
        let mut s = RecentState::new().with_entry("L", SRC, 50);
        assert!(s.apply(&recent(RecentAction::Update, None), SRC, DST));
        assert_eq!(s.entry("L", SRC).map(RecentEntry::ages), Some(&[50, 0][..]));
        let mut two = recent(RecentAction::Rcheck, Some(60));
        two.hitcount = Some(2);
        assert!(s.clone().apply(&two, SRC, DST));
        two.seconds = Some(40);
        assert!(!s.apply(&two, SRC, DST));
    }

    #[test]
    fn reap_drops_the_stale_lru_entry_but_not_the_checked_one() {
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let mut s = RecentState::new()
            .with_entry("L", SRC, 100)
            .with_entry("L", other, 500);
        let mut m = recent(RecentAction::Rcheck, Some(200));
        m.reap = true;
        assert!(s.apply(&m, SRC, DST));
        assert!(s.entry("L", other).is_none());
        assert!(s.entry("L", SRC).is_some());
        // The checked entry itself is kept even when it is the stale one.
        let mut alone = RecentState::new().with_entry("L", SRC, 500);
        assert!(!alone.apply(&m, SRC, DST));
        assert!(alone.entry("L", SRC).is_some());
    }

    #[test]
    fn stamps_and_entries_are_bounded() {
        let mut s = RecentState::new();
        for _ in 0..(MAX_STAMPS + 5) {
            s.apply(&recent(RecentAction::Set, None), SRC, DST);
        }
        assert_eq!(s.entry("L", SRC).map(|e| e.ages().len()), Some(MAX_STAMPS));
        let mut s = RecentState::new();
        for i in 0..=MAX_ENTRIES as u32 {
            s = s.aged(1);
            s.apply(
                &recent(RecentAction::Set, None),
                IpAddr::V4(Ipv4Addr::from(i)),
                DST,
            );
        }
        assert_eq!(s.entries().count(), MAX_ENTRIES);
        // The oldest (first inserted) went.
        assert!(s.entry("L", IpAddr::V4(Ipv4Addr::from(0))).is_none());
    }
}
