//! The runner's one parallel map: `run` and `mutants` evaluate their cases
//! on worker threads and report them in case order.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The threads `--jobs` asks for, or one per CPU (one if that is unknown).
pub(crate) fn jobs(requested: Option<NonZeroUsize>) -> usize {
    requested
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

/// `f` applied to every item on up to `jobs` threads (at least one, at most
/// one per item); the results come back in the order of `items`. Items are
/// handed out one at a time, so one slow item does not hold up a share of
/// the others. A panic in `f` propagates once every thread has stopped.
pub(crate) fn ordered_map<T, R>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every item is mapped once the threads are done"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    #[test]
    fn results_come_back_in_input_order_whatever_the_completion_order() {
        let items: Vec<u64> = (0..40).collect();
        for jobs in [0, 1, 3, 8, 100] {
            // Early items are the slowest: they finish last on several threads.
            let out = ordered_map(&items, jobs, |&i| {
                std::thread::sleep(Duration::from_millis((40 - i) / 8));
                i * 10
            });
            let want: Vec<u64> = items.iter().map(|i| i * 10).collect();
            assert_eq!(out, want, "jobs = {jobs}");
        }
    }

    #[test]
    fn every_item_is_mapped_exactly_once_on_up_to_jobs_threads() {
        let items: Vec<usize> = (0..64).collect();
        let calls = AtomicUsize::new(0);
        let threads = Mutex::new(HashSet::new());
        let out = ordered_map(&items, 4, |&i| {
            calls.fetch_add(1, Ordering::Relaxed);
            threads.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(1));
            i
        });
        assert_eq!(out, items);
        assert_eq!(calls.load(Ordering::Relaxed), items.len());
        let used = threads.lock().unwrap().len();
        assert!((1..=4).contains(&used), "{used} threads");
    }

    #[test]
    fn no_items_give_no_results() {
        let out: Vec<u8> = ordered_map(&[] as &[u8], 4, |_| unreachable!("no item"));
        assert!(out.is_empty());
    }
}
