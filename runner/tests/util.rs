//! The one way the tests run the binary, and what they share: the workspace
//! root, the recordings, temporary directories.

use std::ffi::OsStr;
use std::io::Read as _;
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

/// Whether tests that need `tool` run: it is installed, or
/// `KPCONFORM_REPORT_TESTS=skip` says to skip them (`false`); otherwise
/// the test fails saying what to install.
pub(crate) fn have(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if found {
        return true;
    }
    if std::env::var("KPCONFORM_REPORT_TESTS").as_deref() == Ok("skip") {
        eprintln!("SKIPPED: no {tool} and KPCONFORM_REPORT_TESTS=skip");
        return false;
    }
    panic!(
        "{tool} is needed to check kpconform's reports: install it (Debian: `apt-get install \
         {package}`; .ci/run does), or set KPCONFORM_REPORT_TESTS=skip to skip these tests"
    );
}

/// Runs `program ARGS`, killed after `limit`; its exit status and output.
pub(crate) fn run_limited(program: &str, args: &[&str], limit: Duration) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    // Read both pipes on threads so a chatty child never blocks on a full one.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => (s.success(), out, err),
        None => panic!("{program} did not finish within {limit:?}\n{out}\n{err}"),
    }
}

/// A fresh Chromium profile directory, removed afterwards.
pub(crate) fn chromium(args: &[&str], profile: &Path) -> (String, String) {
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let mut all = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        profile_arg.as_str(),
    ];
    all.extend_from_slice(args);
    let (ok, out, err) = run_limited("chromium", &all, Duration::from_secs(60));
    assert!(ok, "chromium failed:\n{out}\n{err}");
    (out, err)
}

/// Opens `url` in headless Chromium at 1280x2000 and screenshots it (in
/// `dir`); how many distinct colours the screenshot has. A blank page has
/// one; text and coloured bars give dozens.
pub(crate) fn screenshot_colours(url: &str, dir: &Path) -> usize {
    let png_path = dir.join("screenshot.png");
    let shot = format!("--screenshot={}", png_path.display());
    chromium(
        &[&shot, "--window-size=1280,2000", url],
        &dir.join("profile-shot"),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("chromium wrote the screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000));
    let bytes = &pixels[..info.buffer_size()];
    let step = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let distinct: std::collections::BTreeSet<&[u8]> = bytes.chunks(step).collect();
    distinct.len()
}
