//! Structural invariants: properties a rule set must have whatever packets
//! it sees, checked without tracing.
//!
//! Every invariant is a small named function listed once in [`catalogue`],
//! with an id (used in reports and for filtering), a one-line description and
//! the [`Profile`] it belongs to, and the kube-proxy releases it holds for.
//! Generic invariants hold for anything `iptables-restore` would accept and
//! run sensibly; kube-proxy invariants hold for every rule set kube-proxy
//! writes from v1.27 on (checked against the v1.30 recordings, and against
//! v1.27's shape where it differs: see [`Invariant::releases`]) and catch the
//! mistakes a kube-proxy-style generator makes.
//!
//! ```
//! use kpconform_suite::invariants::{check, detect_profile, Profile};
//! use kpconform_iptables::parse_str;
//!
//! let dump = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j KUBE-FIREWALL\nCOMMIT\n";
//! let rules = parse_str(dump).expect("valid dump");
//! assert_eq!(detect_profile(&rules), Profile::Generic);
//! let violations = check(&rules, Profile::Generic);
//! assert_eq!(violations[0].invariant, "jump-target-declared");
//! assert_eq!(violations[0].span.line, 3);
//! ```

use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;

use kpconform_iptables::model::{
    Chain, ChainName, Family, FxHasher, NameIndex, RuleSet, Table, TableName,
};
use kpconform_iptables::Span;

mod generic;
mod kube_proxy;

/// Which family of invariants applies to a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// Only the invariants every iptables rule set must satisfy.
    Generic,
    /// The generic invariants plus kube-proxy's structure.
    KubeProxy,
}

impl Profile {
    /// The profile's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::KubeProxy => "kube-proxy",
        }
    }

    /// Whether an invariant of profile `of` is checked under `self`.
    pub fn includes(self, of: Profile) -> bool {
        of == Profile::Generic || of == self
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken invariant, pointing at the line that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The [`Invariant::id`] that is broken.
    pub invariant: &'static str,
    /// The table the problem is in.
    pub table: TableName,
    /// The chain the problem is in, if it is about one chain.
    pub chain: Option<ChainName>,
    /// The offending rule, chain declaration or `*table` line.
    pub span: Span,
    /// What was expected and what was found, naming the chain.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.invariant)
    }
}

/// A named invariant of the catalogue.
#[derive(Clone, Copy)]
pub struct Invariant {
    /// Short kebab-case id, stable across releases.
    pub id: &'static str,
    /// One line saying what must hold.
    pub description: &'static str,
    /// The profile it belongs to.
    pub profile: Profile,
    /// The kube-proxy releases whose rule sets it holds for: `any` (generic
    /// invariants), `1.27+` (every release from 1.27 on, one shape), or
    /// releases with different accepted shapes separated by commas, e.g.
    /// `1.27, 1.28+`, the description saying which shape is whose.
    pub releases: &'static str,
    check: fn(&Context<'_>, &mut Report<'_>),
}

impl fmt::Debug for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invariant")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .field("releases", &self.releases)
            .finish_non_exhaustive()
    }
}

/// Every invariant, generic ones first, in the order they are checked.
pub fn catalogue() -> &'static [Invariant] {
    CATALOGUE
}

/// The releases of [`Profile::KubeProxy`] invariants with one shape since
/// kube-proxy v1.27 (the oldest release the profile accepts).
const KUBE_PROXY_RELEASES: &str = "1.27+";

const fn invariant(
    id: &'static str,
    profile: Profile,
    description: &'static str,
    check: fn(&Context<'_>, &mut Report<'_>),
) -> Invariant {
    Invariant {
        id,
        description,
        profile,
        releases: match profile {
            Profile::Generic => "any",
            Profile::KubeProxy => KUBE_PROXY_RELEASES,
        },
        check,
    }
}

/// A [`Profile::KubeProxy`] invariant whose accepted shape differs between
/// releases.
const fn per_release(
    id: &'static str,
    releases: &'static str,
    description: &'static str,
    check: fn(&Context<'_>, &mut Report<'_>),
) -> Invariant {
    Invariant {
        releases,
        ..invariant(id, Profile::KubeProxy, description, check)
    }
}

static CATALOGUE: &[Invariant] = &[
    invariant(
        "jump-target-declared",
        Profile::Generic,
        "every -j/-g chain target is a user chain declared in the same table",
        generic::jump_target_declared,
    ),
    invariant(
        "no-jump-loop",
        Profile::Generic,
        "the jump graph of each table has no cycle",
        generic::no_jump_loop,
    ),
    invariant(
        "unique-chain",
        Profile::Generic,
        "no chain is declared twice in one table",
        generic::unique_chain,
    ),
    invariant(
        "unique-table",
        Profile::Generic,
        "no table block appears twice",
        generic::unique_table,
    ),
    invariant(
        "chain-name-length",
        Profile::Generic,
        "chain names are at most 28 characters",
        generic::chain_name_length,
    ),
    invariant(
        "table-committed",
        Profile::Generic,
        "every table block ends with COMMIT",
        generic::table_committed,
    ),
    invariant(
        "nat-hooks",
        Profile::KubeProxy,
        "nat PREROUTING and OUTPUT jump to KUBE-SERVICES, nat POSTROUTING to KUBE-POSTROUTING",
        kube_proxy::nat_hooks,
    ),
    invariant(
        "filter-hooks",
        Profile::KubeProxy,
        "filter INPUT, FORWARD and OUTPUT jump to kube-proxy's filter chains (KUBE-FIREWALL: see kube-firewall)",
        kube_proxy::filter_hooks,
    ),
    per_release(
        "kube-firewall",
        "1.27, 1.28+",
        "filter KUBE-FIREWALL is absent or the kubelet's marked-packet DROP (1.27: kube-proxy writes none), \
         or kube-proxy's localnet DROP (1.28+); when present, INPUT and OUTPUT jump to it and it only drops",
        kube_proxy::kube_firewall,
    ),
    invariant(
        "nodeports-last",
        Profile::KubeProxy,
        "the KUBE-NODEPORTS jump is last in nat KUBE-SERVICES",
        kube_proxy::nodeports_last,
    ),
    invariant(
        "masq-mark-consistent",
        Profile::KubeProxy,
        "KUBE-MARK-MASQ sets the mark bit that KUBE-POSTROUTING and KUBE-FORWARD test",
        kube_proxy::masq_mark_consistent,
    ),
    invariant(
        "postrouting-masquerade",
        Profile::KubeProxy,
        "KUBE-POSTROUTING returns unmarked packets, then reaches a MASQUERADE for marked ones",
        kube_proxy::postrouting_masquerade,
    ),
    invariant(
        "masquerade-before-dispatch",
        Profile::KubeProxy,
        "in KUBE-SVC/SVL chains, KUBE-MARK-MASQ jumps precede every endpoint jump",
        kube_proxy::dispatch::masquerade_before_dispatch,
    ),
    invariant(
        "affinity-before-dispatch",
        Profile::KubeProxy,
        "in KUBE-SVC/SVL chains, session-affinity --rcheck rules precede the random dispatch",
        kube_proxy::dispatch::affinity_before_dispatch,
    ),
    invariant(
        "dispatch-unique",
        Profile::KubeProxy,
        "in KUBE-SVC/SVL chains, each endpoint has one dispatch rule",
        kube_proxy::dispatch::dispatch_unique,
    ),
    invariant(
        "dispatch-even",
        Profile::KubeProxy,
        "in KUBE-SVC/SVL chains, every endpoint gets 1/n of the traffic (within 1e-9, kernel-quantized)",
        kube_proxy::dispatch::dispatch_even,
    ),
    invariant(
        "dispatch-complete",
        Profile::KubeProxy,
        "in KUBE-SVC/SVL chains, the last dispatch rule is unconditional so all traffic reaches an endpoint",
        kube_proxy::dispatch::dispatch_complete,
    ),
    invariant(
        "sep-hairpin",
        Profile::KubeProxy,
        "each KUBE-SEP chain marks its own endpoint's traffic (-s EP/32, EP/128 for IPv6, -j KUBE-MARK-MASQ) before the DNAT to EP",
        kube_proxy::dispatch::sep_hairpin,
    ),
];

/// [`Profile::KubeProxy`] when any table has a chain whose name starts with
/// `KUBE-`, [`Profile::Generic`] otherwise.
pub fn detect_profile(rules: &RuleSet) -> Profile {
    let kube = rules
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .any(|c| c.name.as_str().starts_with("KUBE-"));
    if kube {
        Profile::KubeProxy
    } else {
        Profile::Generic
    }
}

/// Checks every invariant `profile` includes. Violations come in source
/// order (by line), and in catalogue order within one line.
///
/// The invariants are shared among up to [`MAX_THREADS`] threads (fewer
/// when the machine has fewer processors); what is reported does not depend
/// on how many ran. [`check_on`] chooses the number.
pub fn check(rules: &RuleSet, profile: Profile) -> Vec<Violation> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    check_on(rules, profile, threads.min(MAX_THREADS))
}

/// The most threads [`check`] uses: a 10k-Service dump's invariants take
/// about a tenth of a second on one, and the biggest few (the dispatch
/// checks, the loop search) are each a good part of that.
pub const MAX_THREADS: usize = 2;

/// The invariants that take longest on a 10k-Service dump, slowest first
/// (about 15, 12, 11, 4.5 and 4 ms); the others take under 2 ms each.
const SLOWEST_FIRST: &[&str] = &[
    "dispatch-even",
    "dispatch-unique",
    "no-jump-loop",
    "jump-target-declared",
    "sep-hairpin",
];

/// [`check`] on `threads` threads (at least one: the caller's).
pub fn check_on(rules: &RuleSet, profile: Profile, threads: usize) -> Vec<Violation> {
    let cx = Context::new(rules, threads);
    let todo: Vec<&Invariant> = CATALOGUE
        .iter()
        .filter(|i| profile.includes(i.profile))
        .collect();
    // The slowest invariants are taken first, so that the threads finish
    // together rather than one starting a big one when the other is done.
    let mut order: Vec<usize> = (0..todo.len()).collect();
    order.sort_by_key(|&i| {
        SLOWEST_FIRST
            .iter()
            .position(|&id| id == todo[i].id)
            .unwrap_or(SLOWEST_FIRST.len())
    });
    // Each invariant's violations in their own list, joined in catalogue
    // order below whichever thread found them: the threads take the next
    // invariant not yet taken, so which runs where varies from run to run.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut found: Vec<(usize, Vec<Violation>)> = Vec::new();
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&i) = order.get(k) else {
                return found;
            };
            let inv = todo[i];
            let mut out = Vec::new();
            (inv.check)(
                &cx,
                &mut Report {
                    id: inv.id,
                    out: &mut out,
                },
            );
            found.push((i, out));
        }
    };
    let mut lists: Vec<(usize, Vec<Violation>)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads.max(1)).map(|_| s.spawn(work)).collect();
        let mut lists = work();
        for helper in helpers {
            // An invariant that panicked on a helper panics here, as it
            // would have on one thread.
            match helper.join() {
                Ok(found) => lists.extend(found),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        lists
    });
    lists.sort_by_key(|(i, _)| *i);
    let mut out: Vec<Violation> = lists.into_iter().flat_map(|(_, v)| v).collect();
    // Stable: equal positions keep catalogue order, and within one invariant
    // the order it reported in (itself source order).
    out.sort_by_key(|v| (v.span.line, v.span.start));
    out
}

/// The id of the violation [`check_family`] reports.
pub const RULES_FAMILY: &str = "rules-family";

/// Whether `rules` are of the `family` they were given as (node `node`'s
/// IPv4 or IPv6 rules): a [`RULES_FAMILY`] violation, at the first rule that
/// names an address, when they are of the other family. A rule set that
/// names no address ([`RuleSet::family`] is `None`) fits either family.
///
/// Not in the [`catalogue`]: it needs the input the rules were written for,
/// which the catalogue's invariants do not see. Every profile checks it
/// (see `check::check_node_family`).
pub fn check_family(rules: &RuleSet, family: Family, node: &str) -> Option<Violation> {
    let found = rules.family()?;
    if found == family {
        return None;
    }
    let (table, chain, rule) = rules.tables.iter().find_map(|t| {
        t.chains.iter().find_map(|c| {
            c.rules
                .iter()
                .find(|r| r.family().is_some())
                .map(|r| (t, c, r))
        })
    })?;
    let save = |f: Family| match f {
        Family::Ipv4 => "iptables-save",
        Family::Ipv6 => "ip6tables-save",
    };
    Some(Violation {
        invariant: RULES_FAMILY,
        table: table.name,
        chain: Some(chain.name.clone()),
        span: rule.span,
        message: format!(
            "these are {found} rules ({}), but they were given as {node}'s {family} rules \
             (expected {} output)",
            save(found),
            save(family)
        ),
    })
}

/// The fewest rules in a table whose jumps [`TableIndex::new`] resolves on
/// two threads: below, starting a thread costs more than it saves.
const PARALLEL_RULES: usize = 4096;

/// The rule set with the lookups every invariant needs, built once so that no
/// invariant scans a table to find a chain.
struct Context<'a> {
    rules: &'a RuleSet,
    tables: Vec<TableIndex<'a>>,
}

/// One table block and its chain lookups, each name looked up once.
struct TableIndex<'a> {
    table: &'a Table,
    /// Chain name → index in `table.chains` of its first declaration.
    by_name: NameIndex,
    /// For each chain, the index of the first declaration of its name
    /// (itself unless it is a duplicate). Positions are `u32` here, as in
    /// `jumps`: one entry per chain (90k at 10k Services) at lint's peak.
    first: Vec<u32>,
    /// Where each chain's rules start in `jumps`.
    rule_start: Vec<u32>,
    /// For each rule, chain by chain: the declared user chain it jumps or
    /// goes to (`u32::MAX`: none, or not declared).
    jumps: Vec<u32>,
}

impl<'a> Context<'a> {
    /// The lookups of every table, built on up to `threads` threads.
    fn new(rules: &'a RuleSet, threads: usize) -> Context<'a> {
        let tables = rules
            .tables
            .iter()
            .map(|t| TableIndex::new(t, threads))
            .collect();
        Context { rules, tables }
    }

    /// Every block of table `name` (normally one; duplicates are checked
    /// each on their own, and reported by `unique-table`).
    fn blocks(&self, name: TableName) -> impl Iterator<Item = &TableIndex<'a>> {
        self.tables.iter().filter(move |t| t.table.name == name)
    }

    /// Where to point when a whole table is missing: the start of the dump.
    fn start_span(&self) -> Span {
        self.rules
            .tables
            .first()
            .map(|t| t.span)
            .unwrap_or_default()
    }
}

impl<'a> TableIndex<'a> {
    /// The lookups of `table`, its jumps resolved on up to `threads` threads.
    fn new(table: &'a Table, threads: usize) -> TableIndex<'a> {
        let chains = &table.chains[..];
        // The parser stores each chain name once and every jump shares it,
        // so a jump resolves by the address of its name: one word hashed
        // and no text compared (the text lookup missed the cache three
        // times per jump). Names built elsewhere fall back to the text.
        // The table holds positions only, the addresses being the chains'.
        let address_of = |i: u32| match chains.get(i as usize).map(|c| &c.name) {
            Some(ChainName::User(name)) => address(name),
            _ => 0,
        };
        let mut by_name = NameIndex::with_capacity(chains.len());
        let mut by_address: hashbrown::HashTable<u32> =
            hashbrown::HashTable::with_capacity(chains.len());
        let mut first = Vec::with_capacity(chains.len());
        let mut rule_start = Vec::with_capacity(chains.len());
        let mut rules = 0usize;
        for (i, chain) in chains.iter().enumerate() {
            rule_start.push(rules as u32);
            rules += chain.rules.len();
            // A name recorded here is its first declaration; only a
            // duplicate (none in what kube-proxy writes) is looked up
            // again, to find that first one.
            if !by_name.insert(chains, i) {
                first.push(by_name.get(chains, chain.name.as_str()).unwrap_or(i) as u32);
                continue;
            }
            first.push(i as u32);
            // First declarations only: a duplicate shares its first's name
            // (or, built by hand, is found by its text).
            if let (ChainName::User(name), Ok(at)) = (&chain.name, u32::try_from(i)) {
                let a = address(name);
                let hash = address_hash(a);
                if by_address.find(hash, |&j| address_of(j) == a).is_none() {
                    by_address.insert_unique(hash, at, |&j| address_hash(address_of(j)));
                }
            }
        }
        let resolve = |chains: &[Chain], jumps: &mut [u32]| {
            let targets =
                chains
                    .iter()
                    .flat_map(|c| &c.rules)
                    .map(|rule| match rule.jump_target() {
                        Some(ChainName::User(target)) => {
                            let a = address(target);
                            by_address
                                .find(address_hash(a), |&j| address_of(j) == a)
                                .copied()
                                .or_else(|| {
                                    by_name
                                        .get(&table.chains, target)
                                        .and_then(|to| u32::try_from(to).ok())
                                })
                                .unwrap_or(u32::MAX)
                        }
                        _ => u32::MAX,
                    });
            for (slot, to) in jumps.iter_mut().zip(targets) {
                *slot = to;
            }
        };
        let mut jumps = vec![u32::MAX; rules];
        // Each rule resolves on its own once the tables above exist, so a
        // big table's rules are split in two halves (by rule count, at a
        // chain boundary) resolved side by side: 265k rules at 10k
        // Services, a good part of the lookups' time.
        if threads > 1 && rules >= PARALLEL_RULES {
            let split = rule_start.partition_point(|&s| (s as usize) < rules / 2);
            let at = rule_start.get(split).map_or(rules, |&s| s as usize);
            let (low, high) = jumps.split_at_mut(at);
            let (before, after) = chains.split_at(split);
            std::thread::scope(|s| {
                let helper = s.spawn(|| resolve(after, high));
                resolve(before, low);
                if let Err(panic) = helper.join() {
                    std::panic::resume_unwind(panic);
                }
            });
        } else {
            resolve(chains, &mut jumps);
        }
        TableIndex {
            table,
            by_name,
            first,
            rule_start,
            jumps,
        }
    }

    /// The declared user chain that rule `rule` of chain `chain` jumps or goes to.
    fn jump(&self, chain: usize, rule: usize) -> Option<usize> {
        let to = *self
            .jumps
            .get(*self.rule_start.get(chain)? as usize + rule)?;
        (to != u32::MAX).then_some(to as usize)
    }

    /// The first declaration of chain `name`.
    fn chain(&self, name: &str) -> Option<&'a Chain> {
        self.by_name
            .get(&self.table.chains, name)
            .map(|i| &self.table.chains[i])
    }

    /// User chains whose name starts with one of `prefixes`, in declaration order.
    fn chains_with_prefix<'s>(
        &'s self,
        prefixes: &'s [&'s str],
    ) -> impl Iterator<Item = &'a Chain> + 's {
        self.table.chains.iter().filter(move |c| {
            let name = c.name.as_str();
            prefixes.iter().any(|p| name.starts_with(p))
        })
    }
}

/// The address of a shared chain name, as a map key.
fn address(name: &Arc<str>) -> usize {
    Arc::as_ptr(name).cast::<u8>() as usize
}

/// The hash of an [`address`].
fn address_hash(a: usize) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(a);
    h.finish()
}

/// Collects one invariant's violations, stamping them with its id.
struct Report<'o> {
    id: &'static str,
    out: &'o mut Vec<Violation>,
}

impl Report<'_> {
    fn violation(
        &mut self,
        table: TableName,
        chain: Option<&ChainName>,
        span: Span,
        message: String,
    ) {
        self.out.push(Violation {
            invariant: self.id,
            table,
            chain: chain.cloned(),
            span,
            message,
        });
    }

    /// A violation about one chain.
    fn in_chain(&mut self, table: TableName, chain: &Chain, span: Span, message: String) {
        self.violation(table, Some(&chain.name), span, message);
    }
}

#[cfg(test)]
mod test_util;

#[cfg(test)]
mod tests {
    use super::test_util::{ids, parsed};
    use super::*;
    use kpconform_iptables::model::Target;

    #[test]
    fn catalogue_ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for inv in catalogue() {
            assert!(seen.insert(inv.id), "duplicate id {}", inv.id);
            assert!(
                inv.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                inv.id
            );
            assert!(!inv.description.is_empty());
        }
        // Generic ones come first so `--help` lists them first.
        let first_kube = catalogue()
            .iter()
            .position(|i| i.profile == Profile::KubeProxy)
            .unwrap_or(catalogue().len());
        assert!(catalogue()[first_kube..]
            .iter()
            .all(|i| i.profile == Profile::KubeProxy));
    }

    #[test]
    fn every_invariant_says_which_releases_it_holds_for() {
        for inv in catalogue() {
            match inv.profile {
                Profile::Generic => assert_eq!(inv.releases, "any", "{}", inv.id),
                // The oldest release the kube-proxy profile accepts comes first.
                Profile::KubeProxy => assert!(inv.releases.starts_with("1.27"), "{}", inv.id),
            }
        }
        let fw = catalogue().iter().find(|i| i.id == "kube-firewall");
        assert_eq!(fw.map(|i| i.releases), Some("1.27, 1.28+"));
    }

    #[test]
    fn profile_detection_looks_for_kube_chains() {
        let plain =
            parsed("*filter\n:INPUT ACCEPT [0:0]\n:MYCHAIN - [0:0]\n-A INPUT -j MYCHAIN\nCOMMIT\n");
        assert_eq!(detect_profile(&plain), Profile::Generic);
        let kube = parsed("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\nCOMMIT\n");
        assert_eq!(detect_profile(&kube), Profile::KubeProxy);
        assert_eq!(detect_profile(&RuleSet::default()), Profile::Generic);
    }

    #[test]
    fn generic_profile_skips_kube_proxy_invariants() {
        // A nat table with a KUBE- chain but none of kube-proxy's hooks.
        let rules = parsed("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-X - [0:0]\nCOMMIT\n");
        assert!(check(&rules, Profile::Generic).is_empty());
        assert!(ids(&check(&rules, Profile::KubeProxy)).contains(&"nat-hooks"));
    }

    #[test]
    fn jumps_resolve_by_name_when_names_are_not_shared() {
        // The parser shares one allocation per chain name, and jumps are
        // resolved by its address; a rule set built or edited by hand has
        // names of its own, which must resolve by their text all the same.
        let mut rules = parsed(concat!(
            "*filter\n",
            ":INPUT ACCEPT [0:0]\n",
            ":A - [0:0]\n",
            ":B - [0:0]\n",
            "-A INPUT -j A\n",
            "-A A -j RETURN\n",
            "-A B -j RETURN\n",
            "COMMIT\n",
        ));
        let chains = &mut rules.tables[0].chains;
        chains[1].rules[0].target = Some(Target::Jump(ChainName::new("B")));
        chains[2].rules[0].target = Some(Target::Jump(ChainName::new("A")));
        let ChainName::User(a) = &chains[1].name else {
            panic!("A is a user chain");
        };
        let Some(Target::Jump(ChainName::User(jump_to_a))) = &chains[2].rules[0].target else {
            panic!("B jumps to A");
        };
        assert!(!Arc::ptr_eq(a, jump_to_a), "the test needs unshared names");
        let found = check(&rules, Profile::Generic);
        // Both jumps were found: A -> B -> A is a loop, and no target is
        // undeclared.
        assert_eq!(ids(&found), ["no-jump-loop"], "{found:?}");
    }

    #[test]
    fn the_report_does_not_depend_on_the_threads() {
        // Violations of many invariants, several on one line, in two tables.
        let rules = parsed(concat!(
            "*filter\n",
            ":INPUT ACCEPT [0:0]\n",
            ":A - [0:0]\n",
            ":A - [0:0]\n",
            ":KUBE-A-CHAIN-NAME-LONGER-THAN-TWENTY-EIGHT - [0:0]\n",
            "-A INPUT -j NOPE\n",
            "-A A -j A\n",
            "COMMIT\n",
            "*nat\n",
            ":PREROUTING ACCEPT [0:0]\n",
            ":KUBE-SVC-X - [0:0]\n",
            ":KUBE-SEP-Y - [0:0]\n",
            "-A KUBE-SVC-X -m statistic --mode random --probability 0.2 -j KUBE-SEP-Y\n",
            "-A KUBE-SVC-X -j KUBE-MARK-MASQ\n",
            "-A KUBE-SEP-Y -j RETURN\n",
            "-A PREROUTING -j INPUT\n",
        ));
        let one = check_on(&rules, Profile::KubeProxy, 1);
        assert!(one.len() > 8, "{one:#?}");
        for threads in [2, 3, 16] {
            assert_eq!(check_on(&rules, Profile::KubeProxy, threads), one);
        }
    }

    #[test]
    fn the_slowest_invariants_are_in_the_catalogue() {
        for id in SLOWEST_FIRST {
            assert!(catalogue().iter().any(|i| i.id == *id), "{id}");
        }
    }

    #[test]
    fn big_tables_resolve_jumps_alike_on_two_threads() {
        // Enough rules for the jumps to be resolved on two threads, and a
        // chain declared twice (the lookups' slow path): its rules are one
        // node's edges, and a jump to it goes to its first declaration.
        let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
        for i in 0..1000 {
            text += &format!(":C{i} - [0:0]\n");
        }
        text += ":C500 - [0:0]\n";
        text += "-A INPUT -j C0\n";
        for i in 0..1000 {
            for _ in 0..4 {
                text += &format!("-A C{i} -p tcp -j ACCEPT\n");
            }
            if i < 999 {
                text += &format!("-A C{i} -j C{}\n", i + 1);
            }
        }
        text += "-A C500 -j C10\n-A C999 -j NOPE\nCOMMIT\n";
        let rules = parsed(&text);
        assert!(
            rules.tables[0]
                .chains
                .iter()
                .map(|c| c.rules.len())
                .sum::<usize>()
                >= PARALLEL_RULES
        );
        let one = check_on(&rules, Profile::Generic, 1);
        assert_eq!(
            ids(&one),
            ["unique-chain", "no-jump-loop", "jump-target-declared"],
            "{one:#?}"
        );
        assert!(
            one[1]
                .message
                .contains("C500: jumps to C10 closes the jump loop C10 -> C11"),
            "{}",
            one[1].message
        );
        assert_eq!(check_on(&rules, Profile::Generic, 2), one);
        // Without the duplicate, the fast path finds the same jumps.
        let unique = parsed(&text.replace(":C500 - [0:0]\n-A INPUT", "-A INPUT"));
        let one = check_on(&unique, Profile::Generic, 1);
        assert_eq!(
            ids(&one),
            ["no-jump-loop", "jump-target-declared"],
            "{one:#?}"
        );
        assert_eq!(check_on(&unique, Profile::Generic, 2), one);
    }

    #[test]
    fn violations_come_in_line_order() {
        let rules = parsed(concat!(
            "*filter\n",
            ":INPUT ACCEPT [0:0]\n",
            ":A - [0:0]\n",
            ":B - [0:0]\n",
            "-A INPUT -j NOPE\n",
            "-A A -j B\n",
            "-A B -j A\n",
            "-A B -j GONE\n",
            "COMMIT\n",
        ));
        let v = check(&rules, Profile::Generic);
        let lines: Vec<u32> = v.iter().map(|v| v.span.line).collect();
        assert_eq!(lines, [5, 7, 8]);
        assert_eq!(
            ids(&v),
            [
                "jump-target-declared",
                "no-jump-loop",
                "jump-target-declared"
            ]
        );
    }

    #[test]
    fn display_names_the_invariant() {
        let v = Violation {
            invariant: "nat-hooks",
            table: TableName::Nat,
            chain: None,
            span: Span::default(),
            message: "PREROUTING: no jump".into(),
        };
        assert_eq!(v.to_string(), "PREROUTING: no jump [nat-hooks]");
    }
}
