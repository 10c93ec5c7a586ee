//! The process groups of the generators running right now, so that an
//! interrupted kpconform can kill them all before it exits
//! ([`kill_running_generators`]), and so that none is started after that.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

struct Registry {
    groups: BTreeSet<i32>,
    /// Set by [`kill_running_generators`]: the process is going away.
    closed: bool,
}

static RUNNING: Mutex<Registry> = Mutex::new(Registry {
    groups: BTreeSet::new(),
    closed: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic elsewhere while holding the lock leaves the set usable.
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills a generator's whole process group when dropped, and forgets it.
pub(crate) struct Group {
    pgid: i32,
}

impl Drop for Group {
    fn drop(&mut self) {
        let mut running = registry();
        // ESRCH (the group is already gone) is the normal case.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        running.groups.remove(&self.pgid);
    }
}

/// Spawns `cmd` (already set to start its own process group) and registers
/// the group. Spawning happens under the registry's lock, so a concurrent
/// [`kill_running_generators`] either sees the new group or prevents it.
pub(crate) fn spawn(cmd: &mut std::process::Command) -> std::io::Result<(Child, Group)> {
    let mut running = registry();
    if running.closed {
        return Err(std::io::Error::other("kpconform is shutting down"));
    }
    let child = cmd.spawn()?;
    let pgid = child.id() as i32;
    running.groups.insert(pgid);
    Ok((child, Group { pgid }))
}

/// Kills the process group of every generator running now with SIGKILL and
/// refuses to start new ones. For a signal handler of the program that runs
/// generators (`kpconform` calls it on SIGINT and SIGTERM before exiting).
/// Returns how many groups were signalled.
pub fn kill_running_generators() -> usize {
    let mut running = registry();
    running.closed = true;
    for &pgid in &running.groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    running.groups.len()
}
