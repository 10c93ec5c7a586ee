//! Real-kernel mode (`--kernel`) and the machine it runs on: the host's
//! network is never changed, and nothing outlives a run, however it ends
//! (normally, SIGTERM, SIGINT, SIGKILL at any moment, or beside another
//! run).
//!
//! These tests need root (kernel mode creates network namespaces). Not
//! root, they fail, unless `KPCONFORM_KERNEL_TESTS=skip` says to skip them.
//! `KPCONFORM_SIGKILL_RUNS` sets how many runs are killed at random moments
//! (default 20).
//!
//! What "left behind" means here: a network namespace is reachable from
//! user space only through a process's or a thread's namespace, an open
//! file descriptor, or an nsfs bind mount (`ip netns add` puts them under
//! `/run/netns`). [`Namespaces::scan`] collects every one of them on the
//! machine; a namespace that none of them reaches is one the kernel is
//! already destroying. (A socket keeps its namespace too, unseen, but only
//! while a process holds the socket, and every process a run leaves is
//! found by its process group.) Each test serializes on [`MACHINE`], since
//! it compares machine-wide state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::{kpconform, root, TempDir, KPCONFORM};

/// Held by each test for its whole length: the tests compare machine-wide
/// state, which another kernel run would change under them.
static MACHINE: Mutex<()> = Mutex::new(());

/// How long a killed run may take to be gone entirely: its children (`ip`,
/// `iptables-nft-restore`) finish their current batch on their own, and
/// only then let go of their namespace.
const GRACE: Duration = Duration::from_secs(5);

/// The machine for one test, or `None` when the test is to be skipped.
fn machine(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !is_root() {
        if std::env::var("KPCONFORM_KERNEL_TESTS").as_deref() == Ok("skip") {
            eprintln!("{test}: SKIPPED: not root and KPCONFORM_KERNEL_TESTS=skip");
            return None;
        }
        panic!(
            "{test}: the kernel tests need root: kernel mode creates network namespaces \
             (CAP_SYS_ADMIN, CAP_NET_ADMIN). Run them as root (e.g. `sudo -E cargo test -p \
             kpconform --test integration kernel`), or set KPCONFORM_KERNEL_TESTS=skip to skip \
             them"
        );
    }
    // A test that failed holding the lock leaves nothing the next one needs.
    Some(MACHINE.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Effective uid 0, read from `/proc` (no `nix` feature for it).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

// ---------------------------------------------------------------------------
// Processes

/// One line of `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: i32,
    comm: String,
    state: char,
    ppid: i32,
    pgrp: i32,
    /// Clock ticks after boot: with the pid, it tells a process from a
    /// later one that reused the pid.
    start: u64,
}

impl Proc {
    fn read(pid: i32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may contain anything,
        // parentheses and spaces included: the last ')' ends it.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        Some(Proc {
            pid,
            comm,
            state: rest.first()?.chars().next()?,
            ppid: rest.get(1)?.parse().ok()?,
            pgrp: rest.get(2)?.parse().ok()?,
            start: rest.get(19)?.parse().ok()?,
        })
    }

    /// Dead, only its exit status left for its parent to collect: holds no
    /// namespace and runs nothing.
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    fn describe(&self) -> String {
        let cmdline = fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .filter(|a| !a.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        format!(
            "pid {} ({}, state {}, parent {}, group {}): {cmdline}",
            self.pid, self.comm, self.state, self.ppid, self.pgrp
        )
    }
}

fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process, by pid; those that end while this runs are left out.
fn processes() -> BTreeMap<i32, Proc> {
    pids()
        .into_iter()
        .filter_map(|pid| Proc::read(pid).map(|p| (pid, p)))
        .collect()
}

/// The living processes whose parent is `pid`.
fn children(pid: i32) -> Vec<Proc> {
    processes()
        .into_values()
        .filter(|p| p.ppid == pid && !p.is_dead())
        .collect()
}

// ---------------------------------------------------------------------------
// Network namespaces

/// Every network namespace reachable on the machine, with what reaches it.
#[derive(Debug, Clone, Default)]
struct Namespaces {
    /// Inode -> holders.
    held: BTreeMap<u64, Vec<Holder>>,
    /// The names under `/run/netns`, mounted or not (a stale name is a
    /// leftover too).
    run_netns: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Holder {
    /// The process holding it; `None` for a mount.
    pid: Option<i32>,
    what: String,
}

/// The namespace inode a `/proc` link names (`net:[4026531840]`).
fn net_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    target
        .to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

impl Namespaces {
    fn scan() -> Namespaces {
        let mut found = Namespaces::default();
        let mut hold = |ino: u64, pid: Option<i32>, what: String| {
            found
                .held
                .entry(ino)
                .or_default()
                .push(Holder { pid, what });
        };
        // One mountinfo per mount namespace: a bind mount may live in a
        // mount namespace other than this process's.
        let mut mount_namespaces = BTreeSet::new();
        for pid in pids() {
            let proc = format!("/proc/{pid}");
            let comm = fs::read_to_string(format!("{proc}/comm")).unwrap_or_default();
            let comm = comm.trim_end();
            // Every thread: kpconform's threads `setns` into the namespaces
            // they work in, while the process stays in the host's.
            if let Ok(tasks) = fs::read_dir(format!("{proc}/task")) {
                for task in tasks.flatten() {
                    if let Some(ino) = net_inode(&task.path().join("ns/net")) {
                        let tid = task.file_name().to_string_lossy().into_owned();
                        hold(ino, Some(pid), format!("pid {pid} ({comm}) thread {tid}"));
                    }
                }
            }
            if let Some(ino) = net_inode(Path::new(&format!("{proc}/ns/net"))) {
                hold(ino, Some(pid), format!("pid {pid} ({comm}) namespace"));
            }
            if let Ok(fds) = fs::read_dir(format!("{proc}/fd")) {
                for fd in fds.flatten() {
                    if let Some(ino) = net_inode(&fd.path()) {
                        let n = fd.file_name().to_string_lossy().into_owned();
                        hold(ino, Some(pid), format!("pid {pid} ({comm}) fd {n}"));
                    }
                }
            }
            let Ok(mnt) = fs::read_link(format!("{proc}/ns/mnt")) else {
                continue;
            };
            if !mount_namespaces.insert(mnt.clone()) {
                continue;
            }
            let Ok(mountinfo) = fs::read_to_string(format!("{proc}/mountinfo")) else {
                // Gone before its mounts were read: look again at the next
                // process of that mount namespace.
                mount_namespaces.remove(&mnt);
                continue;
            };
            for line in mountinfo.lines() {
                // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - TYPE SOURCE ...
                let fields: Vec<&str> = line.split(' ').collect();
                let fstype = fields
                    .iter()
                    .position(|f| *f == "-")
                    .and_then(|i| fields.get(i + 1));
                if fstype != Some(&"nsfs") {
                    continue;
                }
                let (Some(root), Some(at)) = (fields.get(3), fields.get(4)) else {
                    continue;
                };
                if let Some(ino) = root
                    .strip_prefix("net:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|r| r.parse().ok())
                {
                    hold(
                        ino,
                        None,
                        format!("nsfs mount at {at} ({} mount namespace)", mnt.display()),
                    );
                }
            }
        }
        // `ip netns` names: a mounted one is also in mountinfo; an unmounted
        // one is an empty file, stale, and counts as a leftover name.
        let nsfs = fs::metadata("/proc/self/ns/net").map(|m| m.dev()).ok();
        if let Ok(dir) = fs::read_dir("/run/netns") {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(m) = fs::metadata(entry.path()) {
                    if Some(m.dev()) == nsfs {
                        hold(m.ino(), None, format!("/run/netns/{name}"));
                    }
                }
                found.run_netns.insert(name);
            }
        }
        found
    }

    /// The namespaces reachable now and not in `before` that `run` (a
    /// finished run this test started; `None`: anything) could have left:
    /// see [`could_be_of`]. Returns those, and how many new ones belong to
    /// other process trees (other users of the machine at the same time:
    /// another kpconform, another test binary).
    fn new_since(&self, before: &Namespaces, run: Option<&Proc>) -> (Vec<String>, usize) {
        let procs = processes();
        let mut new = Vec::new();
        let mut others = 0;
        for (ino, holders) in &self.held {
            if before.held.contains_key(ino) {
                continue;
            }
            let suspect = |h: &Holder| match (h.pid, run) {
                (Some(pid), Some(run)) => could_be_of(pid, run, &procs),
                _ => true,
            };
            if !holders.iter().any(suspect) {
                others += 1;
                continue;
            }
            let what: Vec<&str> = holders.iter().map(|h| h.what.as_str()).collect();
            new.push(format!(
                "network namespace {ino}, held by {}",
                what.join("; ")
            ));
        }
        for name in self.run_netns.difference(&before.run_netns) {
            new.push(format!("/run/netns/{name}"));
        }
        (new, others)
    }
}

/// Whether process `pid` could be what is left of `run`, which has ended
/// and been reaped. Its descendants were then re-parented to a reaper: this
/// process or, as usual, one of its ancestors (init, or a subreaper). So a
/// leftover is in the run's process group, or sits, on its way up, below a
/// reaper of this test's line in a subtree that started after the run did.
/// A process below this test process itself is not (the run is no longer
/// there), nor one in a subtree that started earlier (another user of the
/// machine). Unknowable (a process vanishing mid-walk) counts as could.
fn could_be_of(pid: i32, run: &Proc, procs: &BTreeMap<i32, Proc>) -> bool {
    let this = i32::try_from(std::process::id()).expect("pids fit in i32");
    // This process and its ancestors.
    let mut line = BTreeSet::new();
    let mut next = this;
    while next > 0 && line.insert(next) {
        next = procs.get(&next).map_or(0, |p| p.ppid);
    }
    let Some(mut p) = procs.get(&pid) else {
        return true;
    };
    if p.pgrp == run.pid && p.start >= run.start {
        return true;
    }
    // Bounded: a pid cycle (pids reused while reading) must not hang.
    for _ in 0..256 {
        if p.pid == this {
            return false;
        }
        if line.contains(&p.ppid) {
            return p.ppid != this && p.start >= run.start;
        }
        match procs.get(&p.ppid) {
            Some(parent) => p = parent,
            // Kernel threads (parent 0) and init itself.
            None if p.ppid == 0 => return false,
            None => return true,
        }
    }
    true
}

/// The inode of this process's (the host's) network namespace.
fn host_namespace() -> u64 {
    fs::metadata("/proc/self/ns/net")
        .expect("reading /proc/self/ns/net")
        .ino()
}

/// The distinct network namespaces other than the host's that `pid` holds
/// right now (through its descriptors and its threads).
fn held_by(pid: i32) -> BTreeSet<u64> {
    let host = host_namespace();
    let mut held = BTreeSet::new();
    if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
        held.extend(fds.flatten().filter_map(|fd| net_inode(&fd.path())));
    }
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        held.extend(
            tasks
                .flatten()
                .filter_map(|t| net_inode(&t.path().join("ns/net"))),
        );
    }
    held.remove(&host);
    held
}

// ---------------------------------------------------------------------------
// Runs of the binary in the background

/// `kpconform ARGS` running in the background, its output going to files.
struct Run {
    child: Child,
    proc: Proc,
    out: TempDir,
    started: Instant,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let out = TempDir::new("kernel");
        let file = |name: &str| fs::File::create(out.path().join(name)).expect("creating a log");
        let started = Instant::now();
        let child = Command::new(KPCONFORM)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            // Its own process group: every process it starts inherits the
            // group, so even one it starts just before being killed, or a
            // child of a child, can be found afterwards by the group id,
            // when re-parenting has erased who started it.
            .process_group(0)
            .spawn()
            .expect("the kpconform binary runs");
        let pid = i32::try_from(child.id()).expect("pids fit in i32");
        let proc = Proc::read(pid).unwrap_or(Proc {
            pid,
            comm: "kpconform".into(),
            state: 'R',
            ppid: 0,
            pgrp: pid,
            start: 0,
        });
        Run {
            child,
            proc,
            out,
            started,
        }
    }

    fn pid(&self) -> i32 {
        self.proc.pid
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signalling kpconform");
    }

    /// Waits up to `limit` for the run to end; a run that does not is
    /// killed and the test fails.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for kpconform") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "kpconform (pid {}) did not end within {limit:?}; killed\n{}",
                    self.pid(),
                    self.output()
                );
            }
            sleep(Duration::from_millis(5));
        }
    }

    fn output(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.out.path().join(name)).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            read("stdout"),
            read("stderr")
        )
    }

    /// Processes that outlived the run: `children` (recorded before it
    /// ended) that still live, and anything still in its process group.
    fn survivors(&self, children: &[Proc]) -> Vec<String> {
        let procs = processes();
        let mut left: Vec<&Proc> = children
            .iter()
            .filter_map(|c| procs.get(&c.pid).filter(|p| p.start == c.start))
            .chain(
                procs
                    .values()
                    .filter(|p| p.pgrp == self.pid() && p.start >= self.proc.start),
            )
            .filter(|p| !p.is_dead() && p.pid != self.pid())
            .collect();
        left.sort_by_key(|p| p.pid);
        left.dedup_by_key(|p| p.pid);
        left.into_iter().map(Proc::describe).collect()
    }

    /// Polls until no namespace beyond `before` is reachable and nothing of
    /// the run survives; fails after [`GRACE`] with what is left. Returns
    /// how long that took.
    fn assert_nothing_left(&self, before: &Namespaces, children: &[Proc], what: &str) -> Duration {
        let start = Instant::now();
        loop {
            let (namespaces, others) = Namespaces::scan().new_since(before, Some(&self.proc));
            let survivors = self.survivors(children);
            if namespaces.is_empty() && survivors.is_empty() {
                if others > 0 {
                    eprintln!(
                        "    ({others} new namespace(s) of other process trees on the machine, \
                         not of this run)"
                    );
                }
                return start.elapsed();
            }
            if start.elapsed() > GRACE {
                let mut message = format!(
                    "{what}: {GRACE:?} after kpconform (pid {}) ended, it left behind:\n",
                    self.pid()
                );
                for n in &namespaces {
                    let _ = writeln!(message, "  - {n}");
                }
                for s in &survivors {
                    let _ = writeln!(message, "  - surviving process {s}");
                }
                let recorded: Vec<String> = children.iter().map(Proc::describe).collect();
                let _ = writeln!(
                    message,
                    "its children when it was signalled: {recorded:#?}\n{}",
                    self.output()
                );
                panic!("{message}");
            }
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    /// A failing test must not leave its run behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `held_by(pid)` until the run holds a namespace, up to `limit`;
/// returns what it held and when (`None`: never, or it ended first).
fn wait_for_namespaces(run: &mut Run, limit: Duration) -> Option<(BTreeSet<u64>, Duration)> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let held = held_by(run.pid());
        if !held.is_empty() {
            return Some((held, run.started.elapsed()));
        }
        if !matches!(run.child.try_wait(), Ok(None)) {
            return None;
        }
        sleep(Duration::from_millis(1));
    }
    None
}

fn comms(procs: &[Proc]) -> String {
    if procs.is_empty() {
        return "none".into();
    }
    procs
        .iter()
        .map(|p| p.comm.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

// ---------------------------------------------------------------------------
// The host's network state

/// `what` -> its state, as text, from the host's namespace.
type HostState = BTreeMap<String, String>;

/// Replaces every `<digits>sec` token (address lifetimes, route expiry
/// times), which counts down by itself.
fn without_timers(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|t| match t.strip_suffix("sec") {
                    Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => "<n>sec",
                    _ => t,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sysctls kernel mode writes inside its namespaces (see
/// kernel/src/topology.rs): written to the host by mistake, they would
/// show here.
const SYSCTLS: [&str; 10] = [
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.icmp_ratelimit",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.accept_dad",
    "net.ipv6.conf.default.accept_dad",
    "net.ipv6.conf.default.accept_ra",
    "net.ipv6.icmp.ratelimit",
];

fn host_state(nft: bool) -> HostState {
    let mut state = HostState::new();
    for save in ["iptables-save", "ip6tables-save"] {
        // The first and last lines are comments with the time of the save.
        let text = command_output(save, &[]);
        let rules: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        state.insert(save.into(), rules.join("\n"));
    }
    if nft {
        state.insert(
            "nft list ruleset".into(),
            command_output("nft", &["list", "ruleset"]),
        );
    }
    for args in [
        &["addr"][..],
        &["-4", "route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["-4", "rule"],
        &["-6", "rule"],
    ] {
        state.insert(
            format!("ip {}", args.join(" ")),
            without_timers(&command_output("ip", args)),
        );
    }
    for key in SYSCTLS {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value =
            fs::read_to_string(&path).map_or_else(|e| format!("<{e}>"), |v| v.trim().into());
        state.insert(format!("sysctl {key}"), value);
    }
    state
}

/// The lines only in `before` (`-`) and only in `after` (`+`).
fn line_diff(before: &str, after: &str) -> String {
    let mut out = String::new();
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    for l in a.iter().filter(|l| !b.contains(l)) {
        let _ = writeln!(out, "  - {l}");
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        let _ = writeln!(out, "  + {l}");
    }
    if out.is_empty() {
        // Same lines, other order or repetition.
        let _ = writeln!(out, "  before:\n{before}\n  after:\n{after}");
    }
    out
}

// ---------------------------------------------------------------------------
// The tests

/// One IPv4 ClusterIP, one IPv6 ClusterIP, a NodePort open on localhost
/// (the node gets route_localnet), and a dual-stack NodePort.
const FEW_CASES: [&str; 8] = [
    "--filter",
    "clusterip/two-endpoints@node-a",
    "--filter",
    "clusterip/ipv6-one-endpoint@node-a",
    "--filter",
    "nodeport/nodeport-addresses-with-loopback@node-a",
    "--filter",
    "dualstack/dualstack-nodeport-addresses@node-a",
];

#[test]
fn host_network_is_untouched() {
    let Some(_machine) = machine("host_network_is_untouched") else {
        return;
    };
    let nft = on_path("nft");
    if !nft {
        eprintln!(
            "host_network_is_untouched: NOTE: `nft` is not installed, the host's nft ruleset is \
             not compared (apt-get install nftables); iptables-save covers the iptables-nft tables"
        );
    }
    let before = host_state(nft);
    let mut args = vec!["run", "--reference", "--kernel"];
    args.extend(FEW_CASES);
    let out = kpconform(&args, None);
    let after = host_state(nft);
    crate::util::assert_exit!(out, 0);
    // A run that sent nothing would prove nothing.
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("kernel mode"))
        .unwrap_or_else(|| panic!("no kernel-mode summary:\n{}", out.text()));
    eprintln!(
        "host_network_is_untouched: {summary}; took {}; compared {} host states",
        ms(out.elapsed),
        before.len()
    );
    let mut changed = String::new();
    for (what, was) in &before {
        let is = &after[what];
        if was != is {
            let _ = write!(changed, "{what} changed:\n{}", line_diff(was, is));
        }
    }
    assert!(
        changed.is_empty(),
        "a kernel run changed the host's network:\n{changed}"
    );
}

/// The scan must see a namespace through each way one can be held, or a
/// leak would go unnoticed: as a process's namespace, through an open
/// descriptor only, and through a bind mount only.
#[test]
fn namespace_scan_sees_every_holder() {
    let Some(_machine) = machine("namespace_scan_sees_every_holder") else {
        return;
    };
    assert!(
        on_path("unshare"),
        "`unshare` (util-linux) is needed to make namespaces to find"
    );
    let before = Namespaces::scan();
    let host = host_namespace();
    // The namespace a holder matching `is` reaches, once the scan sees it;
    // the leak check must report it as new.
    let find = |what: &str, is: &dyn Fn(&Holder) -> bool| -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let scan = Namespaces::scan();
            // `unshare` runs in the host's namespace until it has made its
            // own: only a namespace other than the host's is the one meant.
            let found = scan
                .held
                .iter()
                .find(|(ino, h)| **ino != host && h.iter().any(is));
            if let Some((&ino, _)) = found {
                let (new, _) = scan.new_since(&before, None);
                let named = format!("network namespace {ino},");
                assert!(
                    new.iter().any(|n| n.starts_with(&named)),
                    "{what}: namespace {ino} is not reported as new: {new:#?}"
                );
                return ino;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the scan does not see it: {:#?}",
                scan.held
            );
            sleep(Duration::from_millis(5));
        }
    };

    // A process in a namespace of its own (`unshare` execs `sleep`).
    let mut inside = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare runs");
    let inside_pid = i32::try_from(inside.id()).unwrap();
    let ino = find("a process in it", &|h| {
        h.pid == Some(inside_pid) && h.what.ends_with(" namespace")
    });

    // A process in the host's namespace holding a descriptor of it, once
    // the process in it is gone.
    let mut holder = Command::new("sh")
        .args([
            "-c",
            &format!("exec 7</proc/{inside_pid}/ns/net && echo ready && exec sleep 60"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("piped")),
        &mut line,
    )
    .expect("reading from sh");
    assert_eq!(line, "ready\n", "sh could not open the namespace");
    let _ = inside.kill();
    let _ = inside.wait();
    let holder_pid = i32::try_from(holder.id()).unwrap();
    let by_fd = find("a descriptor of it", &|h| {
        h.pid == Some(holder_pid) && h.what.ends_with(" fd 7")
    });
    assert_eq!(by_fd, ino);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        !Namespaces::scan().held.contains_key(&ino),
        "namespace {ino} is still seen with nothing holding it"
    );

    // A bind mount only (what `ip netns add` makes), on a file of a
    // temporary directory, unmounted whatever happens.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = TempDir::new("netns-mount");
    let file = dir.path().join("ns");
    fs::write(&file, "").expect("creating the mount point");
    let status = Command::new("unshare")
        .arg(format!("--net={}", file.display()))
        .arg("true")
        .status()
        .expect("unshare runs");
    let unmount = Unmount(file.clone());
    assert!(status.success(), "unshare --net=FILE: {status}");
    let at = format!("nsfs mount at {} ", file.display());
    let ino = find("a bind mount of it", &|h| {
        h.pid.is_none() && h.what.starts_with(&at)
    });
    drop(unmount);
    assert!(
        !Namespaces::scan().held.contains_key(&ino),
        "namespace {ino} is still seen once unmounted"
    );

    // Attribution: an orphan that a dead run left in a namespace is that
    // run's leftover; a namespace of a process tree that is still alive
    // (here, a child of this test) is not.
    let mut run = Command::new("sh")
        .args([
            "-c",
            "unshare --net sleep 60 </dev/null >/dev/null 2>&1 & echo $!; read _",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("sh runs");
    let run_proc = Proc::read(i32::try_from(run.id()).unwrap()).expect("sh is running");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(run.stdout.take().expect("piped")),
        &mut line,
    )
    .expect("reading from sh");
    let orphan: i32 = line.trim().parse().expect("sh printed a pid");
    drop(run.stdin.take());
    let _ = run.wait();
    let mut alive = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare runs");
    let alive_pid = i32::try_from(alive.id()).unwrap();
    let orphaned = find("an orphan", &|h| {
        h.pid == Some(orphan) && h.what.ends_with(" namespace")
    });
    let other = find("a child of this test", &|h| {
        h.pid == Some(alive_pid) && h.what.ends_with(" namespace")
    });
    let (new, others) = Namespaces::scan().new_since(&before, Some(&run_proc));
    let parent = Proc::read(orphan).map_or(0, |p| p.ppid);
    let _ = kill(Pid::from_raw(orphan), Signal::SIGKILL);
    let _ = alive.kill();
    let _ = alive.wait();
    assert!(
        new.iter()
            .any(|n| n.starts_with(&format!("network namespace {orphaned},"))),
        "the orphan's namespace (re-parented to pid {parent}) is not the run's: {new:#?}"
    );
    assert!(
        !new.iter()
            .any(|n| n.starts_with(&format!("network namespace {other},"))),
        "a live child's namespace is taken for the run's: {new:#?}"
    );
    assert!(others >= 1, "{others}");
    let start = Instant::now();
    let seen = Namespaces::scan().held.len();
    eprintln!(
        "namespace_scan_sees_every_holder: one scan ({} processes, {seen} namespace(s)) takes {}",
        pids().len(),
        ms(start.elapsed())
    );
}

/// Signals the run once it holds namespaces, preferably while one of its
/// `ip` or `iptables-*-restore` children runs too (the moment a child in a
/// namespace could be orphaned). Returns the children it had when
/// signalled.
fn signal_while_busy(run: &mut Run, signal: Signal) -> Vec<Proc> {
    let (held, at) = wait_for_namespaces(run, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "kpconform held no network namespace within 10 s\n{}",
            run.output()
        )
    });
    eprintln!("  holds {} namespace(s) {} after start", held.len(), ms(at));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let kids = children(run.pid());
        if !kids.is_empty() || Instant::now() > deadline {
            let held = held_by(run.pid());
            run.signal(signal);
            eprintln!(
                "  {signal} {} after start, holding {} namespace(s), children: {}",
                ms(run.started.elapsed()),
                held.len(),
                comms(&kids)
            );
            return kids;
        }
        sleep(Duration::from_micros(500));
    }
}

#[test]
fn sigterm_and_sigint_clean_up() {
    let Some(_machine) = machine("sigterm_and_sigint_clean_up") else {
        return;
    };
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        eprintln!("sigterm_and_sigint_clean_up: {signal} on a kernel run of the whole corpus");
        let before = Namespaces::scan();
        let mut run = Run::start(&["run", "--reference", "--kernel"]);
        let kids = signal_while_busy(&mut run, signal);
        let signalled = Instant::now();
        let status = run.wait(Duration::from_secs(10));
        let exited = signalled.elapsed();
        assert_eq!(
            status.code(),
            Some(code),
            "{signal}: expected exit status {code}, got {status} (signal {:?})\n{}",
            status.signal(),
            run.output()
        );
        let clean = run.assert_nothing_left(&before, &kids, &format!("{signal}"));
        eprintln!(
            "  exited {code} {} after the signal; nothing left {} after that",
            ms(exited),
            ms(clean)
        );
    }
}

/// A 64-bit LCG (Knuth's MMIX constants): reproducible delays from a
/// printed seed.
fn lcg(seed: u64) -> u64 {
    seed.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

#[test]
fn sigkill_at_random_moments_leaves_nothing() {
    let Some(_machine) = machine("sigkill_at_random_moments_leaves_nothing") else {
        return;
    };
    let runs: u32 = std::env::var("KPCONFORM_SIGKILL_RUNS")
        .ok()
        .map(|v| v.parse().expect("KPCONFORM_SIGKILL_RUNS is a number"))
        .unwrap_or(20);
    // Twelve cases of three-node scenarios, each several namespaces (node,
    // client, sink, pods), about 7 s in all. Its own directory rather than
    // a --filter: loading the whole corpus takes about 0.5 s of the debug
    // binary before the first namespace, and a third of the kills would
    // land there.
    let args = [
        "run",
        "--reference",
        "--kernel",
        "--scenarios",
        "golden/scenarios/multinode",
    ];
    let start = Instant::now();
    let (mut holding, mut with_children, mut finished) = (0u32, 0u32, 0u32);
    let mut slowest_cleanup = Duration::ZERO;
    for i in 0..runs {
        let seed = lcg(u64::from(i) ^ 0x6b70_636f_6e66_6f72);
        // The high bits: an LCG's low bits have short periods.
        let delay = Duration::from_millis((lcg(seed) >> 33) % 1501);
        let before = Namespaces::scan();
        let mut run = Run::start(&args);
        sleep(delay.saturating_sub(run.started.elapsed()));
        let kids = children(run.pid());
        let held = held_by(run.pid());
        let at = run.started.elapsed();
        run.signal(Signal::SIGKILL);
        let status = run.wait(Duration::from_secs(10));
        let clean =
            run.assert_nothing_left(&before, &kids, &format!("SIGKILL #{i} (seed {seed:#x})"));
        slowest_cleanup = slowest_cleanup.max(clean);
        match (status.signal(), status.code()) {
            (Some(9), _) => {
                holding += u32::from(!held.is_empty());
                with_children += u32::from(!kids.is_empty());
            }
            // It had ended by itself: the kill hit nothing.
            (_, Some(0)) => finished += 1,
            _ => panic!("killed with SIGKILL: {status}\n{}", run.output()),
        }
        eprintln!(
            "  kill {}/{runs}: seed {seed:#018x}, {} after start (drawn {}), held {} \
             namespace(s), children: {}; nothing left {} later",
            i + 1,
            ms(at),
            ms(delay),
            held.len(),
            comms(&kids),
            ms(clean)
        );
    }
    eprintln!(
        "sigkill_at_random_moments_leaves_nothing: {runs} kills in {:.1} s: {holding} while it \
         held namespaces, {with_children} while a child ran, {finished} after it had ended; \
         slowest cleanup {}",
        start.elapsed().as_secs_f64(),
        ms(slowest_cleanup)
    );
    assert!(
        2 * holding >= runs,
        "only {holding} of {runs} kills hit while kpconform held namespaces: the test no longer \
         kills at the moments that matter"
    );
}

#[test]
fn two_kernel_runs_in_parallel_both_pass() {
    let Some(_machine) = machine("two_kernel_runs_in_parallel_both_pass") else {
        return;
    };
    let before = Namespaces::scan();
    // The same cases in both: the same addresses in the same shape of
    // namespaces, which anonymous namespaces keep apart.
    let args = [
        "run",
        "--reference",
        "--kernel",
        "--filter",
        "dualstack/dualstack-nodeport-addresses",
        "--filter",
        "clusterip/two-endpoints",
    ];
    let start = Instant::now();
    let mut runs = [Run::start(&args), Run::start(&args)];
    // Both must hold namespaces at one same moment, or the test proves
    // nothing about running side by side.
    let mut together = 0u32;
    while runs
        .iter_mut()
        .all(|r| matches!(r.child.try_wait(), Ok(None)))
    {
        if runs.iter().all(|r| !held_by(r.pid()).is_empty()) {
            together += 1;
        }
        sleep(Duration::from_millis(10));
    }
    for run in &mut runs {
        let status = run.wait(Duration::from_secs(120));
        assert_eq!(status.code(), Some(0), "{status}\n{}", run.output());
    }
    eprintln!(
        "two_kernel_runs_in_parallel_both_pass: both passed in {}; both held namespaces in \
         {together} samples 10 ms apart",
        ms(start.elapsed())
    );
    assert!(
        together > 0,
        "the two runs never held namespaces at the same time"
    );
    for run in &runs {
        run.assert_nothing_left(&before, &[], "a parallel run");
    }
}

/// The reference generator's rules for `clusterip/one-endpoint`@node-a,
/// with `extra` lines added at the end of the `table` block (and, in nat,
/// a `KUBE-LOOP` chain declared), written to `dir/name`.
fn edited_rules(dir: &TempDir, name: &str, table: &str, extra: &[&str]) -> String {
    let out = kpconform(
        &[
            "generate",
            "--scenario",
            "golden/scenarios/clusterip/one-endpoint.yaml",
            "--node",
            "node-a",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut text = String::new();
    let mut inside = false;
    for line in out.stdout.lines() {
        if line == format!("*{table}") {
            inside = true;
        }
        if inside && line == "COMMIT" {
            for e in extra {
                text.push_str(e);
                text.push('\n');
            }
            inside = false;
        }
        if inside && table == "nat" && line == ":KUBE-SERVICES - [0:0]" {
            text.push_str(":KUBE-LOOP - [0:0]\n");
        }
        text.push_str(line);
        text.push('\n');
    }
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn check_in_kernel(rules: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "check",
        "--scenario",
        "golden/scenarios/clusterip/one-endpoint.yaml",
        "--node",
        "node-a",
        "--rules",
        rules,
        "--kernel",
    ];
    args.extend_from_slice(extra);
    let out = kpconform(&args, None);
    (out.code, out.text())
}

// A jump loop parses (the tracer reports it per flow), but the kernel
// refuses to load it: the case is broken with the kernel's own words.
#[test]
fn rules_the_kernel_refuses_are_broken_with_its_message() {
    let Some(_machine) = machine("rules_the_kernel_refuses_are_broken_with_its_message") else {
        return;
    };
    let dir = TempDir::new("kernel-refused");
    let rules = edited_rules(
        &dir,
        "loop.rules",
        "nat",
        &[
            "-A KUBE-LOOP -j KUBE-SERVICES",
            "-A KUBE-SERVICES -d 10.99.99.99/32 -j KUBE-LOOP",
        ],
    );
    let (code, text) = check_in_kernel(&rules, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("KERNEL BROKEN clusterip/one-endpoint@node-a: the kernel refused the IPv4 rules (nft backend):"),
        "{text}"
    );
    // iptables-restore's own message, with the line it stopped at.
    assert!(text.contains("iptables-nft-restore"), "{text}");
    assert!(text.contains("line "), "{text}");
    assert!(text.contains("the kernel refused the rules"), "{text}");
}

// A match the tracer does not model (`-m length`) never matches for the
// tracer in --lax mode; the kernel applies it and drops every TCP
// connection. The kernel's judgement stands, and the differences are
// reported as unconfirmed, not as a defect of kpconform.
#[test]
fn unmodelled_rules_are_judged_by_the_kernel_alone() {
    let Some(_machine) = machine("unmodelled_rules_are_judged_by_the_kernel_alone") else {
        return;
    };
    let dir = TempDir::new("kernel-lax");
    let rules = edited_rules(
        &dir,
        "lax.rules",
        "filter",
        &["-A KUBE-SERVICES -p tcp -m length --length 0:65535 -j DROP"],
    );
    let (code, text) = check_in_kernel(&rules, &["--lax"]);
    assert_eq!(code, 1, "{text}");
    // The tracer, not knowing `length`, passes every flow...
    assert!(
        text.contains("ok: clusterip/one-endpoint@node-a: 3 of 3 flow(s) passed"),
        "{text}"
    );
    // ...the kernel drops the TCP ones and says the tracer could not confirm them.
    assert!(text.contains("dropped 3"), "{text}");
    assert!(
        text.contains("note: the tracer could not confirm this flow: the rules contain matches or targets the tracer does not model (--lax)"),
        "{text}"
    );
    assert!(!text.contains("DEFECT OF KPCONFORM"), "{text}");
    assert!(text.contains("FAILED: clusterip/one-endpoint@node-a in the kernel (nft backend): 1 of 3 flow(s) passed"), "{text}");
}

// Kernel mode on a machine that lacks its tools is one clear error, exit 2,
// never a skipped run that looks like a pass (root or not).
#[test]
fn a_machine_without_the_tools_is_told_what_to_install() {
    let out = Command::new(KPCONFORM)
        .args([
            "run",
            "--reference",
            "--kernel",
            "--filter",
            "clusterip/one-endpoint",
        ])
        .current_dir(root())
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: kernel mode cannot run here; missing:"),
        "{stderr}"
    );
    if is_root() {
        assert!(
            stderr.contains("`ip` (install iproute2: apt-get install iproute2)"),
            "{stderr}"
        );
        assert!(
            stderr.contains("`iptables-nft-restore` (install iptables: apt-get install iptables)"),
            "{stderr}"
        );
    } else {
        assert!(stderr.contains("root"), "{stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing was judged");
}
