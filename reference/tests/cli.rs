//! The `kpconform-reference` command's arguments: `--help` and `--version`
//! answer, anything else is a usage error, and no argument reads the input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kpconform-reference");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kpconform-reference runs");
    // A process that exits without reading closes the pipe: ignore EPIPE.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn help_says_what_it_reads_and_writes() {
    let out = run(&["--help"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: kpconform-reference"), "{help}");
    assert!(help.contains("generator input (YAML) on stdin"), "{help}");
    assert!(help.contains("--version"), "{help}");
}

#[test]
fn version_is_the_crate_version() {
    let out = run(&["--version"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("kpconform-reference {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error_with_exit_2() {
    for args in [&["--bogus"][..], &["input.yaml"]] {
        let out = run(args, "node: {}\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("error:"), "{stderr}");
        assert!(stderr.contains("Usage: kpconform-reference"), "{stderr}");
    }
}

#[test]
fn without_arguments_it_renders_the_input() {
    let input = "
node:
  name: node-a
  family: IPv4
  addresses: [192.168.0.10/32]
objects: []
";
    let out = run(&[], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rules = text(&out.stdout);
    assert!(rules.contains("*nat\n"), "{rules}");
    assert!(rules.contains("-A KUBE-SERVICES"), "{rules}");
    // Invalid input is still exit 2 with its position.
    let out = run(&[], "node: [\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("<stdin>:"),
        "{}",
        text(&out.stderr)
    );
}
