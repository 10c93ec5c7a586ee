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

    /// Runs the command with `stdin` as its input.
    pub fn run(&self, stdin: &[u8], env: &[(&str, &str)]) -> Result<String, GeneratorError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            GeneratorError::new(
                GeneratorErrorKind::Unavailable,
                format!("cannot start generator `{}`: {e}", self.argv[0]),
            )
        })?;
        let guard = GroupGuard { pid: child.id() };

        // Feed stdin and drain both outputs on their own threads, so that a
        // generator that writes before reading, or fills stderr, never blocks us.
        let mut input = child.stdin.take();
        let data = stdin.to_vec();
        let writer = thread::spawn(move || {
            if let Some(mut w) = input.take() {
                // A generator may exit without reading its input: not our error.
                let _ = w.write_all(&data);
            }
        });
        let limit = self.output_limit;
        let mut stdout = child.stdout.take();
        let out_reader = thread::spawn(move || read_capped(stdout.as_mut(), limit));
        let mut stderr = child.stderr.take();
        let err_reader = thread::spawn(move || read_capped(stderr.as_mut(), STDERR_LIMIT));

        let status = wait_with_timeout(&mut child, self.timeout);
        // Whatever happened, nothing of the group may outlive the run; this
        // also closes pipes held by grandchildren so the readers finish.
        guard.kill();
        let _ = writer.join();
        let (out, out_truncated) = out_reader.join().unwrap_or_default();
        let (err, _) = err_reader.join().unwrap_or_default();
        let stderr_text = String::from_utf8_lossy(&err).into_owned();
        let fail = |kind, message: String| GeneratorError {
            kind,
            message,
            stderr: stderr_text.clone(),
        };
        let status = match status {
            Some(s) => s,
            None => {
                return Err(fail(
                    GeneratorErrorKind::TimedOut,
                    format!(
                        "generator `{}` did not finish within {:?} and was killed",
                        self.name, self.timeout
                    ),
                ))
            }
        };
        if out_truncated {
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
        String::from_utf8(out).map_err(|e| {
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
            ],
        )
    }
}

/// Reads up to `limit` bytes, then keeps draining (so the writer never
/// blocks) and reports whether anything was cut.
fn read_capped<R: Read>(r: Option<&mut R>, limit: usize) -> (Vec<u8>, bool) {
    let Some(r) = r else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut truncated = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = limit.saturating_sub(out.len());
                if n > room {
                    truncated = true;
                }
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    (out, truncated)
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Kills the generator's whole process group when dropped or asked to.
struct GroupGuard {
    pid: u32,
}

impl GroupGuard {
    fn kill(&self) {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        // ESRCH (the group is already gone) is the normal case.
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
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
        let start = Instant::now();
        let e = sh(&script)
            .with_timeout(Duration::from_millis(300))
            .run(b"", &[])
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::TimedOut);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
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
