//! `kpconform fuzz`: quiet on the reference generator; on a deliberately
//! broken external generator it finds, shrinks and prints a scenario that
//! reproduces the bug (it fails that generator and passes the reference).

use std::path::PathBuf;
use std::process::{Command, Output};

fn kpconform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpconform"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The reference generator, minus ETP Cluster's masquerade rule in KUBE-EXT.
fn broken_generator() -> String {
    format!(
        "sh -c '{} generate --input - | grep -v \"masquerade traffic for\"'",
        env!("CARGO_BIN_EXE_kpconform")
    )
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpconform-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_reference_generator_has_no_finding() {
    let out = kpconform(&["fuzz", "--reference", "--cases", "40", "--seed", "11"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("ok: 40 case(s) from seed 11"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_broken_generator_is_found_shrunk_and_reproduced() {
    let dir = tmp("broken");
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let repro = scenarios.join("finding.yaml");
    let generator = broken_generator();
    let out = kpconform(&[
        "fuzz",
        "--generator",
        &generator,
        "--cases",
        "200",
        "--seed",
        "1",
        "--out",
        repro.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("finding in case seed") && t.contains("shrinking"),
        "{t}"
    );
    let yaml = std::fs::read_to_string(&repro).unwrap();
    assert!(yaml.starts_with("# kpconform fuzz finding"), "{yaml}");
    assert!(
        yaml.contains("masquerade"),
        "the finding is about masquerading: {yaml}"
    );
    // Shrunk: a single service is enough to show the bug.
    assert_eq!(yaml.matches("kind: Service").count(), 1, "{yaml}");

    let run = |generator: &[&str]| {
        let mut args = vec!["run", "--scenarios", scenarios.to_str().unwrap()];
        args.extend_from_slice(generator);
        kpconform(&args)
    };
    let on_reference = run(&["--reference"]);
    assert_eq!(
        on_reference.status.code(),
        Some(0),
        "reproducer must pass the reference:\n{}",
        text(&on_reference)
    );
    let on_broken = run(&["--generator", &generator]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        on_broken.status.code(),
        Some(1),
        "reproducer must fail the broken generator:\n{}",
        text(&on_broken)
    );
    assert!(text(&on_broken).contains("broken"), "{}", text(&on_broken));
}

#[test]
fn a_generator_or_the_reference_is_required() {
    let out = kpconform(&["fuzz", "--cases", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
