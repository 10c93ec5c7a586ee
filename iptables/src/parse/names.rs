//! The chain names of a parse, each stored once: every chain and every
//! jump naming it shares one allocation, which the invariants resolve
//! jumps by (the address of the name, not its text), and each distinct
//! name is validated once.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::{ChainName, FastHash};

/// The distinct chain names of one parse.
#[derive(Default)]
pub(crate) struct Names {
    store: Store,
    /// The name asked for last: kube-proxy's endpoint chains each jump to
    /// KUBE-MARK-MASQ, one after the other.
    last: Option<Arc<str>>,
    /// Whether a name iptables refuses was stored by this parse (see
    /// `check_chain_names`). With a [`SharedNames`], each thread learns
    /// only of the bad names it stored first, and each such thread reports
    /// that it has something to report, which is all a shared parse needs.
    pub(crate) bad_chain_name: bool,
}

/// Where a parse keeps its names.
enum Store {
    /// Its own, for a parse on one thread.
    Own(HashSet<Arc<str>, FastHash>),
    /// One store for the threads of one parse (see [`SharedNames`]).
    Shared(Arc<SharedNames>),
}

impl Default for Store {
    fn default() -> Store {
        Store::Own(HashSet::default())
    }
}

impl Names {
    /// Names kept in `shared`, with every other thread of the same parse.
    pub(crate) fn shared(shared: Arc<SharedNames>) -> Names {
        Names {
            store: Store::Shared(shared),
            last: None,
            bad_chain_name: false,
        }
    }

    /// The chain called `name`, its text shared with every other use.
    pub(crate) fn chain(&mut self, name: &str) -> ChainName {
        ChainName::new_shared(name, || {
            if let Some(last) = self.last.as_ref().filter(|l| ***l == *name) {
                return Arc::clone(last);
            }
            let (shared, new) = match &mut self.store {
                Store::Own(chains) => match chains.get(name) {
                    Some(shared) => (Arc::clone(shared), false),
                    None => {
                        let shared: Arc<str> = name.into();
                        chains.insert(Arc::clone(&shared));
                        (shared, true)
                    }
                },
                Store::Shared(store) => store.get_or_insert(name),
            };
            self.bad_chain_name |= new && !ChainName::is_valid(name);
            self.last = Some(Arc::clone(&shared));
            shared
        })
    }
}

/// The chain names of a parse done on several threads (see
/// `parse_reader`), stored once for all of them: each rule's jump shares
/// its chain's name as it is parsed, where the building thread used to
/// look every jump up again in its own store (a tenth of `lint`, nearly
/// all on the thread everything else waits for).
///
/// In shards, each behind its own lock, so that threads storing names at
/// the same time seldom wait for each other.
pub(crate) struct SharedNames {
    shards: [Mutex<hashbrown::HashTable<Arc<str>>>; SHARDS],
}

/// How many shards: a few per thread of a parse (three).
const SHARDS: usize = 16;

impl Default for SharedNames {
    /// Room for 131k names from the start: shards that grew by doubling
    /// left the threads' allocator arenas with holes the rules could not
    /// fill (1.5 MB of `lint`'s peak on a 10k-Service dump, whose 92k
    /// names now fit without growing). Room never filled costs address
    /// space, not memory (but for the tables' control bytes, 256 kB).
    fn default() -> SharedNames {
        SharedNames {
            shards: std::array::from_fn(|_| Mutex::new(hashbrown::HashTable::with_capacity(8192))),
        }
    }
}

impl SharedNames {
    /// The stored `name`, and whether it was stored just now.
    fn get_or_insert(&self, name: &str) -> (Arc<str>, bool) {
        let hash = hash(name);
        // Not the hash's low bits, which pick the bucket in a shard, nor
        // its top seven, which tell names in a bucket group apart: a shard
        // holding only names with the same of either would waste them.
        let shard = &self.shards[(hash >> 32) as usize % SHARDS];
        // A thread that panicked while holding the lock left the table
        // whole: names are only added, by one call that cannot fail
        // halfway.
        let mut table = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stored) = table.find(hash, |stored| **stored == *name) {
            return (Arc::clone(stored), false);
        }
        let stored: Arc<str> = name.into();
        table.insert_unique(hash, Arc::clone(&stored), |s| self::hash(s));
        (stored, true)
    }
}

fn hash(name: &str) -> u64 {
    FastHash::default().hash_one(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: ChainName) -> Arc<str> {
        match name {
            ChainName::User(n) => n,
            ChainName::Builtin(b) => panic!("{b:?} is built in"),
        }
    }

    #[test]
    fn threads_sharing_a_store_share_each_name() {
        let store = Arc::new(SharedNames::default());
        let names: Vec<String> = (0..500).map(|i| format!("KUBE-SEP-{i:04}")).collect();
        // Each thread stores every name, in its own order.
        let stored: Vec<Vec<Arc<str>>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..3)
                .map(|t| {
                    let (store, names) = (Arc::clone(&store), &names);
                    s.spawn(move || {
                        let mut mine = Names::shared(store);
                        let mut order: Vec<usize> = (0..names.len()).collect();
                        order.rotate_left(t * 167);
                        let mut out = vec![None; names.len()];
                        for i in order {
                            out[i] = Some(user(mine.chain(&names[i])));
                        }
                        assert!(!mine.bad_chain_name);
                        out.into_iter().map(Option::unwrap).collect()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (i, name) in names.iter().enumerate() {
            assert_eq!(&*stored[0][i], name.as_str());
            assert!(Arc::ptr_eq(&stored[0][i], &stored[1][i]));
            assert!(Arc::ptr_eq(&stored[0][i], &stored[2][i]));
        }
        // Built-in chains are never stored.
        let mut mine = Names::shared(store);
        assert!(mine.chain("PREROUTING").is_builtin());
    }

    #[test]
    fn a_bad_name_is_flagged_by_the_thread_that_stored_it() {
        let store = Arc::new(SharedNames::default());
        let (mut first, mut second) = (Names::shared(store.clone()), Names::shared(store));
        first.chain("-bad");
        assert!(first.bad_chain_name);
        second.chain("-bad");
        assert!(!second.bad_chain_name, "stored already, by the first");
        second.chain("KUBE-OK");
        assert!(!second.bad_chain_name);
        let mut own = Names::default();
        own.chain("a b");
        assert!(own.bad_chain_name);
    }
}
