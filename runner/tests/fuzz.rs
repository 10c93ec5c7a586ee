//! `kpconform fuzz`: quiet on the reference generator; on a deliberately
//! broken external generator it finds, shrinks and prints a scenario that
//! reproduces the bug (it fails that generator and passes the reference).

use crate::util::{kpconform, TempDir, KPCONFORM};

/// The reference generator, minus ETP Cluster's masquerade rule in KUBE-EXT.
fn broken_generator() -> String {
    format!(
        "sh -c '{} generate --input - | grep -v \"masquerade traffic for\"'",
        KPCONFORM
    )
}

#[test]
fn the_reference_generator_has_no_finding() {
    let out = kpconform(
        &["fuzz", "--reference", "--cases", "40", "--seed", "11"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.text().contains("ok: 40 case(s) from seed 11"),
        "{}",
        out.text()
    );
}

/// The cases are of every stack, and IPv6 probes are checked too.
#[test]
fn the_cases_cover_ipv4_ipv6_and_dual_stack() {
    let out = kpconform(
        &["fuzz", "--reference", "--cases", "200", "--seed", "1"],
        None,
    );
    let t = out.text();
    assert_eq!(out.code, 0, "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("families: "))
        .unwrap_or_else(|| panic!("no family mix: {t}"));
    // "families: A IPv4-only, B IPv6-only, C dual-stack case(s); D IPv4 and E IPv6 probe(s)"
    let words: Vec<&str> = line.split_whitespace().collect();
    let counts: Vec<u64> = words
        .windows(2)
        .filter(|w| {
            matches!(
                w[1],
                "IPv4-only," | "IPv6-only," | "dual-stack" | "IPv4" | "IPv6"
            )
        })
        .filter_map(|w| w[0].parse().ok())
        .collect();
    assert!(counts.len() == 5 && counts.iter().all(|n| *n > 0), "{line}");
    assert_eq!(counts[0] + counts[1] + counts[2], 200, "{line}");
}

#[test]
fn a_broken_generator_is_found_shrunk_and_reproduced() {
    let dir = TempDir::new("fuzz-broken");
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let repro = scenarios.join("finding.yaml");
    let generator = broken_generator();
    let out = kpconform(
        &[
            "fuzz",
            "--generator",
            &generator,
            "--cases",
            "200",
            "--seed",
            "1",
            "--out",
            repro.to_str().unwrap(),
        ],
        None,
    );
    let t = out.text();
    assert_eq!(out.code, 1, "{t}");
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
        kpconform(&args, None)
    };
    let on_reference = run(&["--reference"]);
    assert_eq!(
        on_reference.code,
        0,
        "reproducer must pass the reference:\n{}",
        on_reference.text()
    );
    let on_broken = run(&["--generator", &generator]);
    assert_eq!(
        on_broken.code,
        1,
        "reproducer must fail the broken generator:\n{}",
        on_broken.text()
    );
    assert!(on_broken.text().contains("broken"), "{}", on_broken.text());
}

#[test]
fn a_generator_or_the_reference_is_required() {
    let out = kpconform(&["fuzz", "--cases", "1"], None);
    assert_eq!(out.code, 2, "{}", out.text());
}
