//! An external command speaking the generator protocol: generator input as
//! YAML on stdin, iptables-save text on stdout, exit 0 on success.
//!
//! The command runs in its own process group so that a timeout kills
//! everything it started (a shell script's children included), and it is
//! always reaped: no zombies, whatever happens.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Generator, GeneratorError, GeneratorErrorKind, Request};

/// How long one run may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most output accepted from one run (256 MiB).
pub const OUTPUT_LIMIT: usize = 256 << 20;

/// Stderr kept for the report; the rest is drained and dropped.
const STDERR_LIMIT: usize = 64 << 10;

/// An external generator command.
#[derive(Debug, Clone)]
pub struct Command {
    argv: Vec<String>,
    name: String,
    timeout: Duration,
    output_limit: usize,
}

impl Command {
    /// Parses a shell-like command line (`./gen --flag 'a b'`); no shell is involved.
    pub fn parse(command_line: &str) -> Result<Command, String> {
        let argv = shell_words::split(command_line)
            .map_err(|e| format!("cannot split generator command `{command_line}`: {e}"))?;
        let Some(program) = argv.first() else {
            return Err("the generator command is empty".into());
        };
        let name = std::path::Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        Ok(Command {
            argv,
            name,
            timeout: DEFAULT_TIMEOUT,
            output_limit: OUTPUT_LIMIT,
        })
    }

    /// Sets the time limit per run.
    pub fn with_timeout(mut self, timeout: Duration) -> Command {
        self.timeout = timeout;
        self
    }

    /// Sets the output limit per run (tests use small ones).
    pub fn with_output_limit(mut self, bytes: usize) -> Command {
        self.output_limit = bytes;
        self
    }

    /// Names the generator (snapshot directory) instead of the program's file name.
    pub fn with_name(mut self, name: impl Into<String>) -> Command {
        self.name = name.into();
        self
    }

    /// Checks that the program can be started (it exists, is a file and is
    /// executable, found through `PATH` when the name has no `/`), so that a
    /// typo is one setup error rather than one identical failure per case.
    pub fn ensure_available(&self) -> Result<(), GeneratorError> {
        use std::os::unix::fs::PermissionsExt;
        let program = std::path::Path::new(&self.argv[0]);
        let executable = |p: &std::path::Path| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        let found = if self.argv[0].contains('/') {
            executable(program)
        } else {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|d| executable(&d.join(program)))
            })
        };
        if found {
            return Ok(());
        }
        let why = if program.exists() || !self.argv[0].contains('/') {
            if self.argv[0].contains('/') {
                "is not an executable file"
            } else {
                "is not an executable file in any PATH directory"
            }
        } else {
            "does not exist"
        };
        Err(GeneratorError::new(
            GeneratorErrorKind::Unavailable,
            format!("cannot start generator `{}`: it {why}", self.argv[0]),
        ))
    }

    /// Runs the command with `stdin` as its input.
    ///
    /// The time limit is wall-clock and covers everything: a generator that
    /// exits while something it started (even outside its process group)
    /// keeps its output open is stopped at the deadline too, and fails.
    pub fn run(&self, stdin: &[u8], env: &[(&str, &str)]) -> Result<String, GeneratorError> {
        use std::os::unix::process::CommandExt;
        let deadline = Instant::now() + self.timeout;
        let mut cmd = std::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let (mut child, group) = super::running::spawn(&mut cmd).map_err(|e| {
            GeneratorError::new(
                GeneratorErrorKind::Unavailable,
                format!("cannot start generator `{}`: {e}", self.argv[0]),
            )
        })?;
        let io = exchange(&mut child, stdin, self.output_limit, deadline);
        let status = if io.closed {
            wait_until(&mut child, deadline)
        } else {
            None
        };
        // Whatever happened, nothing of the group may outlive the run.
        let exited_early = status.is_none() && matches!(child.try_wait(), Ok(Some(_)));
        drop(group);
        let _ = child.kill();
        let _ = child.wait();
        let stderr_text = io.stderr.text();
        let fail = |kind, message: String| GeneratorError {
            kind,
            message,
            stderr: stderr_text.clone(),
        };
        let Some(status) = status else {
            let message = if exited_early {
                format!(
                    "generator `{}` exited, but something it started still held its output \
                     open after {:?}; stopped waiting (a process that left the generator's \
                     process group, e.g. with setsid, may still be running)",
                    self.name, self.timeout
                )
            } else {
                format!(
                    "generator `{}` did not finish within {:?} and was killed",
                    self.name, self.timeout
                )
            };
            return Err(fail(GeneratorErrorKind::TimedOut, message));
        };
        if io.stdout_truncated {
            return Err(fail(
                GeneratorErrorKind::TooLarge,
                format!(
                    "generator `{}` wrote more than {} bytes; output cut off",
                    self.name, self.output_limit
                ),
            ));
        }
        if !status.success() {
            return Err(fail(
                GeneratorErrorKind::Failed,
                format!("generator `{}` exited with {status}", self.name),
            ));
        }
        String::from_utf8(io.stdout).map_err(|e| {
            fail(
                GeneratorErrorKind::Failed,
                format!(
                    "generator `{}` wrote output that is not UTF-8 (byte {})",
                    self.name,
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }
}

impl Generator for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &Request<'_>) -> Result<String, GeneratorError> {
        let yaml = request.input.to_yaml();
        self.run(
            yaml.as_bytes(),
            &[
                ("KPCONFORM_SCENARIO", request.scenario),
                ("KPCONFORM_NODE", request.node),
                ("KPCONFORM_FAMILY", request.family().as_str()),
            ],
        )
    }
}

/// What came back through the pipes.
struct Exchange {
    stdout: Vec<u8>,
    stdout_truncated: bool,
    stderr: HeadTail,
    /// Both outputs reached end-of-file before the deadline.
    closed: bool,
}

/// Feeds `input` to the child's stdin and reads its stdout (up to `limit`
/// bytes, draining the rest) and stderr until both are closed or the
/// deadline passes. One thread and `poll`, so that nothing can block past
/// the deadline: not a generator that never reads its input, nor a
/// grandchild that keeps a pipe open.
fn exchange(child: &mut Child, input: &[u8], limit: usize, deadline: Instant) -> Exchange {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;

    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut io = Exchange {
        stdout: Vec::new(),
        stdout_truncated: false,
        stderr: HeadTail::new(STDERR_LIMIT),
        closed: false,
    };
    let mut written = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if written == input.len() {
            stdin = None; // end of input
        }
        if stdout.is_none() && stderr.is_none() {
            io.closed = true;
            return io;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return io;
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let (ready_in, ready_out, ready_err) = {
            // Each open pipe's index in `fds`.
            let i = stdin.is_some().then_some(0);
            let o = stdout.is_some().then(|| usize::from(i.is_some()));
            let e = stderr
                .is_some()
                .then(|| usize::from(i.is_some()) + usize::from(o.is_some()));
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
            if let Some(p) = stdin.as_ref() {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(p) = stdout.as_ref() {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            if let Some(p) = stderr.as_ref() {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return io,
            }
            let ready = |i: Option<usize>| {
                i.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()))
            };
            (ready(i), ready(o), ready(e))
        };
        if ready_in {
            if let Some(pipe) = stdin.as_mut() {
                // At most PIPE_BUF bytes: poll promised that much room, so
                // the write cannot block.
                let end = input.len().min(written + 4096);
                match pipe.write(&input[written..end]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // A generator may exit without reading its input: not our error.
                    Err(_) => written = input.len(),
                }
            }
        }
        if ready_out {
            if let Some(pipe) = stdout.as_mut() {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => stdout = None,
                    Ok(n) => {
                        let room = limit.saturating_sub(io.stdout.len());
                        io.stdout_truncated |= n > room;
                        io.stdout.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
        }
        if ready_err {
            if let Some(pipe) = stderr.as_mut() {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => stderr = None,
                    Ok(n) => io.stderr.push(&buf[..n]),
                }
            }
        }
    }
}

/// The first and last `limit / 2` bytes of a stream, and how much was cut
/// between them: a failing generator's first error and its last words.
struct HeadTail {
    half: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    cut: usize,
}

impl HeadTail {
    fn new(limit: usize) -> HeadTail {
        HeadTail {
            half: limit / 2,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            cut: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let room = self.half.saturating_sub(self.head.len());
        let (first, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(first);
        bytes = rest;
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.half);
        self.tail.drain(..excess);
        self.cut += excess;
    }

    fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.cut > 0 {
            out.push_str(&format!("\n[... {} bytes of stderr cut ...]\n", self.cut));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// Waits for the child to exit until `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        Command::parse(&format!("sh -c {}", shell_words::quote(script))).unwrap()
    }

    #[test]
    fn passes_stdin_and_environment_and_returns_stdout() {
        let out = sh("cat; printf '%s@%s' \"$KPCONFORM_SCENARIO\" \"$KPCONFORM_NODE\"")
            .run(
                b"in\n",
                &[("KPCONFORM_SCENARIO", "a/b"), ("KPCONFORM_NODE", "node-a")],
            )
            .unwrap();
        assert_eq!(out, "in\na/b@node-a");
    }

    #[test]
    fn a_request_gives_the_input_with_its_family_and_the_family_in_the_environment() {
        use kpconform_iptables::model::Family;
        use kpconform_iptables::SourceFile;
        use kpconform_suite::scenario::Scenario;
        let scenario = Scenario::from_source(
            &SourceFile::new(
                "d.yaml",
                "cluster:\n  nodes: [{name: node-a, addresses: [192.168.0.10, fd00::10]}]\n",
            ),
            "g/d",
        )
        .unwrap();
        let generator =
            sh("printf '%s %s %s|' \"$KPCONFORM_SCENARIO\" \"$KPCONFORM_NODE\" \"$KPCONFORM_FAMILY\"; grep family || true");
        for (family, expected) in [
            (Family::Ipv4, "g/d node-a IPv4|"),
            (Family::Ipv6, "g/d node-a IPv6|  family: IPv6\n"),
        ] {
            let input = scenario
                .cluster
                .generator_input_for("node-a", family)
                .unwrap();
            let request = Request {
                scenario: "g/d",
                node: "node-a",
                input: &input,
            };
            assert_eq!(request.family(), family);
            assert_eq!(generator.generate(&request).unwrap(), expected);
        }
    }

    #[test]
    fn non_zero_exit_fails_with_stderr() {
        let e = sh("echo boom >&2; exit 3").run(b"", &[]).unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Failed);
        assert!(e.message.contains("exit status: 3"), "{}", e.message);
        assert_eq!(e.stderr.trim(), "boom");
    }

    #[test]
    fn a_hanging_generator_and_its_children_are_killed() {
        let marker = std::env::temp_dir().join(format!("kpconform-hang-{}", std::process::id()));
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        // TimedOut is only ever the deadline's verdict (no wall-clock
        // assertion here: this machine is shared and noisy).
        let e = sh(&script)
            .with_timeout(Duration::from_millis(300))
            .run(b"", &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::TimedOut);
        // The background `sleep` was in the group and is gone too.
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = std::fs::remove_file(&marker);
        thread::sleep(Duration::from_millis(100));
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive || zombie, "child {pid} survived the timeout");
    }

    #[test]
    fn a_child_that_escapes_the_group_and_holds_stdout_cannot_make_it_pass() {
        // See issue #9: `setsid sleep 300 &` kept stdout open, so a 10 s
        // limit took 5 minutes and then passed.
        let marker = std::env::temp_dir().join(format!("kpconform-setsid-{}", std::process::id()));
        let script = format!(
            "setsid sleep 30 & echo $! > {}; echo '*filter'; echo COMMIT",
            marker.display()
        );
        let e = sh(&script)
            .with_timeout(Duration::from_millis(500))
            .run(b"", &[])
            .unwrap_err();
        let pid = std::fs::read_to_string(&marker).unwrap();
        let _ = std::fs::remove_file(&marker);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.trim().parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert_eq!(e.kind, GeneratorErrorKind::TimedOut);
        assert!(
            e.message.contains("still held its output open"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_generator_that_never_reads_a_large_input_still_times_out() {
        let big = vec![b'x'; 4 << 20];
        let e = sh("sleep 30")
            .with_timeout(Duration::from_millis(300))
            .run(&big, &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::TimedOut);
    }

    #[test]
    fn long_stderr_keeps_its_head_and_tail() {
        let e = sh("echo first-error >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; echo >&2; echo last-words >&2; exit 1")
            .run(b"", &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Failed);
        assert!(e.stderr.starts_with("first-error\n"), "{}", &e.stderr[..40]);
        assert!(
            e.stderr.ends_with("last-words\n"),
            "{}",
            &e.stderr[e.stderr.len() - 40..]
        );
        assert!(e.stderr.contains("bytes of stderr cut ...]"));
        assert!(e.stderr.len() < STDERR_LIMIT + 100);
    }

    #[test]
    fn head_tail_keeps_everything_that_fits() {
        let mut s = HeadTail::new(8);
        s.push(b"abc");
        assert_eq!(s.text(), "abc");
        s.push(b"defghij");
        assert_eq!(s.text(), "abcd\n[... 2 bytes of stderr cut ...]\nghij");
    }

    #[test]
    fn output_over_the_limit_is_cut_and_fails() {
        let e = sh("head -c 100000 /dev/zero")
            .with_output_limit(1000)
            .run(b"", &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::TooLarge);
    }

    #[test]
    fn a_generator_that_ignores_its_input_is_fine() {
        let big = vec![b'x'; 1 << 20];
        assert_eq!(sh("echo done").run(&big, &[]).unwrap(), "done\n");
    }

    #[test]
    fn availability_is_checked_before_running() {
        assert!(Command::parse("sh -c true")
            .unwrap()
            .ensure_available()
            .is_ok());
        let missing = Command::parse("/nonexistent/gen")
            .unwrap()
            .ensure_available();
        assert!(missing.unwrap_err().message.contains("does not exist"));
        let plain = std::env::temp_dir().join(format!("kpconform-plain-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let not_exec = Command::parse(&plain.display().to_string())
            .unwrap()
            .ensure_available();
        let _ = std::fs::remove_file(&plain);
        assert!(not_exec
            .unwrap_err()
            .message
            .contains("not an executable file"));
        let unknown = Command::parse("kpconform-no-such-program")
            .unwrap()
            .ensure_available();
        assert!(unknown
            .unwrap_err()
            .message
            .contains("in any PATH directory"));
    }

    #[test]
    fn missing_program_is_unavailable() {
        let e = Command::parse("/nonexistent/gen")
            .unwrap()
            .run(b"", &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Unavailable);
        assert!(Command::parse("").is_err());
        assert!(Command::parse("'unterminated").is_err());
    }
}
