//! The one way the tests run the binary, and what they share: the workspace
//! root, the recordings, temporary directories.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const KPCONFORM: &str = env!("CARGO_BIN_EXE_kpconform");

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Output {
    /// The exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Output {
    /// Everything the binary said: stdout, then stderr.
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The workspace root: the binary runs there so `golden/` resolves.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ is inside the workspace")
        .to_path_buf()
}

/// The kube-proxy v1.30 recordings (see `kpconform_golden::recordings`).
pub(crate) fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

/// The kube-proxy v1.30 IPv6 and dual-stack recordings: one family's
/// rules per case, the family in the input's `node.family`.
pub(crate) fn recordings_ipv6() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30-ipv6")
}

/// Runs `kpconform ARGS` in the workspace root, with `stdin` as its input
/// (`None`: an empty, closed standard input).
pub(crate) fn kpconform<S: AsRef<OsStr>>(args: &[S], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let start = Instant::now();
    let mut child = Command::new(KPCONFORM)
        .args(args)
        .current_dir(root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kpconform binary runs");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin is piped");
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    let out = child.wait_with_output().expect("kpconform finishes");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
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
pub(crate) use assert_exit;

/// A fresh, empty directory for one test, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kpconform-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn str(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
