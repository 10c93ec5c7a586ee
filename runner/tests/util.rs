//! End-to-end tests of the `kpconform` binary: one integration-test target,
//! one module per subcommand. Every test runs the built binary from the
//! workspace root on the golden corpus (filtered, to stay fast) and the
//! kube-proxy recordings in `golden/recordings/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod generate;
mod run;

const KPCONFORM: &str = env!("CARGO_BIN_EXE_kpconform");

/// What one run of the binary did.
#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// The workspace root: the binary runs there so `golden/` resolves.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ is inside the workspace")
        .to_path_buf()
}

/// The kube-proxy v1.30 recordings.
fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

/// Runs `kpconform ARGS` in the workspace root with `stdin` as input.
fn kpconform_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let start = Instant::now();
    let mut child = Command::new(KPCONFORM)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kpconform binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    let out = child.wait_with_output().expect("kpconform finishes");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn kpconform(args: &[&str]) -> Output {
    kpconform_with_stdin(args, "")
}

/// Asserts the exit code, showing everything the binary said when it differs.
macro_rules! assert_exit {
    ($out:expr, $code:expr) => {{
        let out = &$out;
        assert_eq!(
            out.code, $code,
            "exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout, out.stderr
        );
    }};
}
use assert_exit;

/// A fresh, empty directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kpconform-cli-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
