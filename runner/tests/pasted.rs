//! What people paste and what must never pass silently (issue #9): empty
//! rule sets, `iptables -L` listings, terminal sessions with prompts and
//! other commands' output, byte-order marks, invalid UTF-8, generators that
//! cannot start, and generators left running by a signal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{assert_exit, kpconform, recordings, root, TempDir, KPCONFORM};

#[test]
fn empty_rules_are_an_input_error_not_ok() {
    // `iptables-save | kpconform lint --rules -` without root printed "ok".
    for cmd in [
        &["lint", "--rules", "-"][..],
        &[
            "trace",
            "--rules",
            "-",
            "--node-ip",
            "192.168.0.10",
            "--from",
            "203.0.113.7",
            "--to",
            "10.96.0.1:80/tcp",
        ],
    ] {
        let out = kpconform(cmd, Some(""));
        assert_exit!(out, 2);
        assert!(out.stderr.contains("The text is empty"), "{}", out.stderr);
    }
    let filter_only = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
    let out = kpconform(&["lint", "--rules", "-"], Some(filter_only));
    assert_exit!(out, 2);
    assert!(out.stderr.contains("no `*nat` table"), "{}", out.stderr);
}

#[test]
fn an_iptables_list_paste_is_named_with_the_command_to_use_instead() {
    let listing = "Chain KUBE-SVC-X (1 references)\n\
                   target     prot opt source               destination\n\
                   KUBE-SEP-A  all  --  0.0.0.0/0  0.0.0.0/0  /* web */ statistic mode random probability 0.50000000000\n";
    let out = kpconform(&["lint", "--rules", "-"], Some(listing));
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("<stdin>:1:1: this is `iptables -L` output"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("iptables-save"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("error:").count(),
        2,
        "one error and the summary: {}",
        out.stderr
    );
}

#[test]
fn a_pasted_terminal_session_lints_like_its_dump() {
    let dump =
        std::fs::read_to_string(recordings().join("outputs/clusterip-3-endpoints.rules")).unwrap();
    let session = format!(
        "[root@node-a ~]# iptables-save\n{dump}\
         [root@node-a ~]# kubectl get svc\n\
         NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n\
         kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   12d\n\
         [root@node-a ~]# \n"
    );
    let out = kpconform(&["lint", "--rules", "-"], Some(&session));
    assert_exit!(out, 0);
    let prompt = dump.lines().count() + 2;
    let warning = format!(
        "warning: <stdin>:{prompt}:18: skipped the output of `kubectl get svc` (lines {}-{})",
        prompt + 1,
        prompt + 2
    );
    assert!(out.stderr.contains(&warning), "{}", out.stderr);
    assert_eq!(out.stderr.matches("warning:").count(), 1, "{}", out.stderr);
    // The same lint as the bare dump.
    let bare = kpconform(&["lint", "--rules", "-"], Some(&dump));
    assert_exit!(bare, 0);
    assert_eq!(out.stdout, bare.stdout);

    // A session with no dump in it is never "ok".
    let empty = "$ sudo iptables-save\n$ kubectl get svc\nNAME   TYPE\n";
    let out = kpconform(&["lint", "--rules", "-"], Some(empty));
    assert_exit!(out, 2);
    assert!(out.stderr.contains("shell transcript"), "{}", out.stderr);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let text =
        std::fs::read_to_string(recordings().join("outputs/clusterip-3-endpoints.rules")).unwrap();
    let out = kpconform(&["lint", "--rules", "-"], Some(&format!("\u{feff}{text}")));
    assert_exit!(out, 0);
}

#[test]
fn invalid_utf8_is_an_error_at_its_line_and_column() {
    let dir = TempDir::new("utf8");
    let path = dir.path().join("bad.rules");
    std::fs::write(
        &path,
        b"*nat\n-A X -j DNAT --to-destination 10.0.0.1:80 # caf\xe9\n",
    )
    .unwrap();
    let out = kpconform(&["lint", "--rules", path.to_str().unwrap()], None);
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("bad.rules:2:48: not UTF-8 text (byte 0xe9)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_generator_that_cannot_start_is_one_setup_error() {
    let out = kpconform(
        &[
            "run",
            "--generator",
            "./no-such-generator",
            "--filter",
            "clusterip/",
        ],
        None,
    );
    assert_exit!(out, 2);
    assert_eq!(
        out.stderr.matches("does not exist").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("error"),
        "no per-case errors: {}",
        out.stdout
    );
}

/// Whether `pid` is gone (or a zombie waiting for init to reap it).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn sigint_and_sigterm_kill_the_generators_kpconform_started() {
    for (signal, status) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let dir = TempDir::new("signals");
        let pids = dir.path().join("pids");
        let generator = dir.path().join("gen.sh");
        std::fs::write(
            &generator,
            format!("#!/bin/sh\necho $$ >> {}\nexec sleep 60\n", pids.display()),
        )
        .unwrap();
        std::fs::set_permissions(
            &generator,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut child = Command::new(KPCONFORM)
            .args([
                "run",
                "--generator",
                generator.to_str().unwrap(),
                "--filter",
                "clusterip/one-endpoint",
                "--timeout",
                "120",
            ])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait (boundedly) until the generator runs.
        let start = Instant::now();
        while std::fs::read_to_string(&pids).map_or(true, |p| p.trim().is_empty()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the generator never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let code = child.wait().unwrap().code();
        assert_eq!(code, Some(status), "{signal}");
        let started: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        // SIGKILL is delivered before kpconform exits; allow the kernel a moment.
        let start = Instant::now();
        while !started.iter().all(|&p| dead(p)) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in started {
            assert!(dead(pid), "{signal}: generator {pid} survived kpconform");
        }
    }
}
