//! Numeric flags out of range are usage errors: exit 2 with a message that
//! names the flag, the value and what is expected, never a panic.

use crate::util::{assert_exit, kpconform};

/// Runs `args` and asserts a usage error about `flag`'s value `value` whose
/// message contains `why`.
fn rejected(args: &[&str], flag: &str, value: &str, why: &str) {
    let out = kpconform(args, None);
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains(&format!("invalid value '{value}' for '{flag}")),
        "{args:?}: {}",
        out.stderr
    );
    assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
}

#[test]
fn fuzz_timeout_must_be_a_finite_positive_number_of_seconds() {
    for (value, why) in [
        ("-1", "`-1` is negative"),
        ("nan", "`nan` is not a finite number"),
        ("NaN", "`NaN` is not a finite number"),
        ("inf", "`inf` is not a finite number"),
        ("-inf", "`-inf` is not a finite number"),
        ("0", "`0` is too short"),
        ("0.0000001", "is too short"),
        ("1e300", "`1e300` is too long"),
        ("86401", "is too long"),
        ("ten", "`ten` is not a number of seconds"),
        ("", "is not a number of seconds"),
    ] {
        let arg = format!("--timeout={value}");
        rejected(&["fuzz", "--reference", &arg], "--timeout", value, why);
        assert!(
            kpconform(&["fuzz", "--reference", &arg], None)
                .stderr
                .contains("expected seconds from 0.001 to 86400"),
            "{value}"
        );
    }
}

#[test]
fn run_timeout_must_be_a_finite_positive_number_of_seconds() {
    for (value, why) in [
        ("0", "`0` is too short"),
        ("-1", "`-1` is negative"),
        ("nan", "`nan` is not a finite number"),
        ("inf", "`inf` is not a finite number"),
        ("1e20", "`1e20` is too long"),
    ] {
        let arg = format!("--timeout={value}");
        rejected(&["run", "--reference", &arg], "--timeout", value, why);
    }
}

#[test]
fn jobs_must_be_at_least_one_and_fit() {
    for command in ["run", "mutants"] {
        for (value, why) in [
            ("0", "`0` is too small"),
            ("-1", "`-1` is negative"),
            ("1.5", "`1.5` is not a whole number"),
            ("99999999999999999999999", "is too large"),
        ] {
            let mut args = vec![command];
            if command == "run" {
                args.push("--reference");
            }
            let arg = format!("--jobs={value}");
            args.push(&arg);
            rejected(&args, "--jobs", value, why);
        }
    }
    // The short form too.
    rejected(
        &["run", "--reference", "-j0"],
        "--jobs",
        "0",
        "expected a whole number from 1",
    );
}

#[test]
fn fuzz_cases_must_be_at_least_one() {
    for (value, why) in [
        ("0", "`0` is too small"),
        ("-5", "`-5` is negative"),
        ("18446744073709551616", "is too large"),
        ("many", "is not a whole number"),
    ] {
        let arg = format!("--cases={value}");
        rejected(&["fuzz", "--reference", &arg], "--cases", value, why);
    }
}

#[test]
fn fuzz_seed_must_be_a_u64() {
    for (value, why) in [
        ("-1", "`-1` is negative"),
        ("18446744073709551616", "is too large"),
        ("0x10", "is not a whole number"),
    ] {
        let arg = format!("--seed={value}");
        rejected(&["fuzz", "--reference", &arg], "--seed", value, why);
    }
    // Zero and the largest seed are fine (SEED+1.. wraps around).
    let out = kpconform(
        &[
            "fuzz",
            "--reference",
            "--cases=2",
            "--seed=18446744073709551615",
        ],
        None,
    );
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("ok: 2 case(s) from seed 18446744073709551615"),
        "{}",
        out.stdout
    );
}

#[test]
fn fuzz_time_must_be_at_least_a_second() {
    for (value, why) in [
        ("0", "`0` is too small"),
        ("-1", "`-1` is negative"),
        ("0.5", "is not a whole number"),
        ("18446744073709551616", "is too large"),
    ] {
        let arg = format!("--time={value}");
        rejected(&["fuzz", "--reference", &arg], "--time", value, why);
    }
    // A time limit beyond what the clock can represent is no limit, not a panic.
    let out = kpconform(
        &[
            "fuzz",
            "--reference",
            "--cases=1",
            "--seed=1",
            "--time=18446744073709551615",
        ],
        None,
    );
    assert_exit!(out, 0);
}

#[test]
fn audit_masquerade_bit_must_be_0_to_31() {
    for value in ["32", "-1", "256", "x"] {
        let arg = format!("--masquerade-bit={value}");
        let out = kpconform(
            &[
                "audit",
                "--rules",
                "-",
                "--kubectl",
                "/nonexistent.yaml",
                "--node",
                "node-a=192.168.0.10",
                &arg,
            ],
            None,
        );
        assert_exit!(out, 2);
        assert!(
            out.stderr
                .contains(&format!("invalid value '{value}' for '--masquerade-bit")),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}
