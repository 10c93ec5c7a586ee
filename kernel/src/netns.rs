//! Anonymous network namespaces, and running code inside one.
//!
//! A namespace here has no name: a short-lived thread `unshare`s a fresh
//! one and opens `/proc/thread-self/ns/net`, and that file descriptor is all
//! that keeps it alive. Dropping the [`Netns`] (or the process dying in any
//! way, SIGKILL included) closes the descriptor and the kernel destroys the
//! namespace with every interface, address, route and rule in it. Nothing
//! is mounted under `/run/netns`, so nothing can be left behind for a later
//! run to clean up, and two runs cannot collide on a name.
//!
//! Everything that acts on a namespace (commands such as `ip` and
//! `iptables-restore`, `/proc/sys` writes, sockets) runs on a thread that
//! has `setns`-ed into it: a child process forks from that thread and
//! inherits its namespace, a socket belongs to the namespace it was created
//! in for good. [`Netns::run`] refuses to run anything on a thread that is
//! still in the host's namespace, so a failed `setns` can never turn into a
//! change of the host's network.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;

use nix::sched::{setns, unshare, CloneFlags};

/// One network namespace of a topology, alive while this value is.
#[derive(Debug)]
pub(crate) struct Netns {
    file: File,
    label: String,
}

/// The inode of the host's (this process's original) network namespace.
fn host_namespace() -> io::Result<u64> {
    static HOST: OnceLock<u64> = OnceLock::new();
    if let Some(ino) = HOST.get() {
        return Ok(*ino);
    }
    // The main thread never leaves the host's namespace; /proc/self is
    // the thread group leader's view.
    let ino = std::fs::metadata("/proc/self/ns/net")?.ino();
    Ok(*HOST.get_or_init(|| ino))
}

fn current_namespace() -> io::Result<u64> {
    Ok(std::fs::metadata("/proc/thread-self/ns/net")?.ino())
}

impl Netns {
    /// A fresh, empty network namespace (only a down `lo`). `label` names
    /// it in messages (`node`, `pod 10.64.0.5`, ...).
    pub(crate) fn new(label: impl Into<String>) -> io::Result<Netns> {
        let label = label.into();
        host_namespace()?;
        let file = thread::scope(|s| {
            s.spawn(|| -> io::Result<File> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("cannot create a network namespace (unshare(CLONE_NEWNET): {e})"),
                    )
                })?;
                File::open("/proc/thread-self/ns/net")
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })?;
        Ok(Netns { file, label })
    }

    /// A path naming this namespace for other processes, as `ip link set
    /// ... netns PATH` takes it.
    pub(crate) fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd())
    }

    /// Runs `f` on a thread inside this namespace and returns its result.
    /// Fails, without running `f`, if the thread cannot enter it.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        thread::scope(|s| {
            s.spawn(|| -> io::Result<T> {
                let host = host_namespace()?;
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|e| {
                    io::Error::other(format!("cannot enter the {} namespace: {e}", self.label))
                })?;
                // Belt and braces: whatever happened above, never act on
                // the host's network.
                if current_namespace()? == host {
                    return Err(io::Error::other(format!(
                        "refusing to act: the thread meant for the {} namespace is still in the host's",
                        self.label
                    )));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// Runs `program args...` inside this namespace with `stdin` as its
    /// standard input; fails with the program's own message (standard
    /// error, else standard output) when it exits unsuccessfully.
    pub(crate) fn command(&self, program: &str, args: &[&str], stdin: &str) -> io::Result<String> {
        let output = self.run(|| -> io::Result<std::process::Output> {
            let mut child = Command::new(program)
                .args(args)
                // Legacy iptables serializes on a machine-wide lock file
                // (/run/xtables.lock), which would make a topology wait for
                // the host's own iptables and the host's wait for us. The
                // tables here are private to the namespace, so any lock
                // will do; /dev/null exists everywhere and is never
                // created or left behind.
                .env("XTABLES_LOCKFILE", "/dev/null")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run `{program}`: {e}")))?;
            // Writing everything before reading is safe: these programs
            // read all their input before they write much.
            let mut input = child.stdin.take().expect("stdin is piped");
            let written = input.write_all(stdin.as_bytes());
            drop(input);
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let status = child.wait()?;
            if let Err(e) = written {
                if status.success() {
                    return Err(e);
                }
            }
            Ok(std::process::Output {
                status,
                stdout: out.into_bytes(),
                stderr: err.into_bytes(),
            })
        })??;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&output.stderr);
        let out = String::from_utf8_lossy(&output.stdout);
        let message = if err.trim().is_empty() { out } else { err };
        Err(io::Error::other(format!(
            "`{program} {}` in the {} namespace failed ({}): {}",
            args.join(" "),
            self.label,
            output.status,
            message.trim()
        )))
    }

    /// Writes `value` to `/proc/sys/<key with dots as slashes>` inside this
    /// namespace.
    pub(crate) fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value))?.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("sysctl {key}={value} in the {} namespace: {e}", self.label),
            )
        })
    }
}
