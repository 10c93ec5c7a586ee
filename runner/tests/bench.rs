//! `kpconform bench` and the `measure` wrapper it times each step with.

use crate::util::kpconform;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn bench_measures_every_step_against_the_loader_and_fits_a_line() {
    // The kernel's loader needs root; elsewhere the rest is still measured.
    let loader: &[&str] = if is_root() {
        &["--iptables", "nft"]
    } else {
        &["--no-restore"]
    };
    let mut args = vec!["bench", "--services", "40,80,120", "--runs", "1"];
    args.extend_from_slice(loader);
    let out = kpconform(&args, None);
    assert_eq!(out.code, 0, "{}", out.text());
    let table = &out.stdout;
    for size in ["40", "80", "120"] {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(size)),
            "no row for {size} Services:\n{table}"
        );
    }
    for column in ["generate", "lint", "audit", "peak memory", "scaling"] {
        assert!(table.contains(column), "no {column}:\n{table}");
    }
    if is_root() {
        assert!(table.contains("nft --test"), "{table}");
        assert!(table.contains("against the kernel's loader"), "{table}");
    }
    // Progress goes to stderr, one line per step.
    assert!(
        out.stderr.contains("bench: 120 Services: audit"),
        "{}",
        out.stderr
    );
}

#[test]
fn bench_refuses_sizes_and_runs_out_of_range() {
    for bad in [
        &["bench", "--services", "0"][..],
        &["bench", "--services", "10,x"],
        &["bench", "--runs", "0"],
        &["bench", "--iptables", "iptables"],
    ] {
        let out = kpconform(bad, None);
        assert_eq!(out.code, 2, "{bad:?}: {}", out.text());
    }
}

#[test]
fn measure_reports_time_peak_and_exit_status() {
    // The shell holds a 30 MB string: the peak must show it.
    let out = kpconform(
        &[
            "measure",
            "--",
            "sh",
            "-c",
            "x=$(head -c 30000000 /dev/zero | tr '\\0' a); exit 3",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.text());
    let fields: Vec<u64> = out
        .stdout
        .split_whitespace()
        .map(|f| f.parse().expect("numbers"))
        .collect();
    let [nanos, peak_kib, status] = fields[..] else {
        panic!("three fields: {}", out.stdout)
    };
    assert!(nanos > 0);
    assert!(peak_kib > 29_000, "{peak_kib} KiB");
    assert_eq!(status, 3);
    let missing = kpconform(&["measure", "--", "/no/such/program"], None);
    assert_eq!(missing.code, 2, "{}", missing.text());
    assert!(
        missing.stderr.contains("/no/such/program"),
        "{}",
        missing.stderr
    );
}
