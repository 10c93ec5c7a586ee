//! The kernel's own loader as a yardstick: how long `iptables-restore
//! --test` takes to read, check and translate a dump, timed in a private
//! network namespace so that nothing it does can reach the host's tables.
//!
//! `--test` parses the whole dump and builds the tables (for the nft
//! backend, the whole nf_tables transaction) without committing them;
//! it is what a node would spend at least on every full resync, and the
//! natural baseline for "how fast is kpconform's own reading of a dump".

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kpconform_iptables::model::Family;

use crate::netns::Netns;
use crate::{on_path, Backend};

/// Checks that `iptables-restore --test` can run here for `backend` and
/// `family`: root, the tool, network namespaces. The error says what is
/// missing.
pub fn restore_available(backend: Backend, family: Family) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "timing iptables-restore needs root (it runs in a private network namespace)".into(),
        );
    }
    let tool = backend.restore(family);
    if !on_path(&tool) {
        return Err(format!(
            "`{tool}` is not on PATH (install iptables: apt-get install iptables)"
        ));
    }
    Netns::new("probe")
        .map(drop)
        .map_err(|e| format!("network namespaces: {e}"))
}

/// Runs `iptables-restore --test` of `backend` and `family` on the dump in
/// `path`, inside a fresh private namespace, and returns its wall time
/// (from spawning to exit; the file is its standard input, as with
/// `iptables-restore --test < FILE`). Fails with the tool's own message
/// when it rejects the dump.
pub fn time_restore_test(
    backend: Backend,
    family: Family,
    path: &Path,
) -> Result<Duration, String> {
    let program = backend.restore(family);
    let input = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ns = Netns::new("iptables-restore --test").map_err(|e| e.to_string())?;
    let run = ns
        .run(
            || -> std::io::Result<(Duration, std::process::ExitStatus, String)> {
                let start = Instant::now();
                let mut child = Command::new(&program)
                    .arg("--test")
                    // As in kernel mode: never take the host's xtables lock.
                    .env("XTABLES_LOCKFILE", "/dev/null")
                    .stdin(Stdio::from(input))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()?;
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let status = child.wait()?;
                Ok((start.elapsed(), status, err))
            },
        )
        .map_err(|e| e.to_string())?;
    let (elapsed, status, err) = run.map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{program} --test < {}` failed ({status}): {}",
            path.display(),
            err.trim()
        ));
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root, as every kernel test: without it, skipped only when
    /// KPCONFORM_KERNEL_TESTS=skip says so.
    #[test]
    fn restore_test_times_a_valid_dump_and_reports_a_bad_one() {
        if !nix::unistd::geteuid().is_root()
            && std::env::var("KPCONFORM_KERNEL_TESTS").as_deref() == Ok("skip")
        {
            eprintln!("SKIPPED: not root and KPCONFORM_KERNEL_TESTS=skip");
            return;
        }
        restore_available(Backend::Nft, Family::Ipv4).expect("kernel tests need root and iptables");
        let dir = std::env::temp_dir().join(format!("kpconform-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.rules");
        std::fs::write(
            &good,
            "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.1/32 -j RETURN\nCOMMIT\n",
        )
        .unwrap();
        let bad = dir.join("bad.rules");
        std::fs::write(
            &bad,
            "*nat\n-A PREROUTING --no-such-option 1 -j RETURN\nCOMMIT\n",
        )
        .unwrap();
        let took = time_restore_test(Backend::Nft, Family::Ipv4, &good);
        let refused = time_restore_test(Backend::Nft, Family::Ipv4, &bad);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(took.expect("a valid dump loads") > Duration::ZERO);
        let message = refused.expect_err("an unknown option is refused");
        assert!(message.contains("no-such-option"), "{message}");
    }
}
