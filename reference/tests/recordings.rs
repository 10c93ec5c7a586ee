//! The reference generator against every kube-proxy v1.30 recording, IPv4
//! and IPv6/dual-stack: one trial per `inputs/NAME.yaml`, asserting
//! `normalize(generate(input)) == normalize(outputs/NAME.rules)` and showing
//! a unified diff of the normalized text when not. A last trial asserts that
//! every case of both sets is byte-identical even before normalization.
//!
//! The recordings are `golden/recordings/kube-proxy-v1.30/` (44 IPv4 cases,
//! trials named `NAME`) and `golden/recordings/kube-proxy-v1.30-ipv6/` (37
//! IPv6 and dual-stack cases, trials named `kube-proxy-v1.30-ipv6/NAME`),
//! located through `kpconform_golden::recordings`.

use std::path::Path;

use kpconform_iptables::normalize;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;
use libtest_mimic::{Arguments, Failed, Trial};

/// A set of recordings: its folder under `recordings()`, the prefix of its
/// trial names and the number of cases it must at least hold.
struct RecordingSet {
    folder: &'static str,
    trial_prefix: &'static str,
    expected: usize,
}

const SETS: [RecordingSet; 2] = [
    RecordingSet {
        folder: "kube-proxy-v1.30",
        trial_prefix: "",
        expected: 44,
    },
    RecordingSet {
        folder: "kube-proxy-v1.30-ipv6",
        trial_prefix: "kube-proxy-v1.30-ipv6/",
        expected: 37,
    },
];

/// The case names: `inputs/*.yaml` that have an `outputs/*.rules`, sorted.
fn cases(dir: &Path) -> Result<Vec<String>, String> {
    let inputs = dir.join("inputs");
    let entries = std::fs::read_dir(&inputs).map_err(|e| format!("{}: {e}", inputs.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .filter(|n| dir.join("outputs").join(format!("{n}.rules")).is_file())
        .collect();
    names.sort();
    Ok(names)
}

/// Generates one case; `Ok(true)` when byte-identical, `Ok(false)` when equal
/// after normalization, `Err(diff)` otherwise.
fn run_case(dir: &Path, name: &str) -> Result<bool, String> {
    let input_path = dir.join("inputs").join(format!("{name}.yaml"));
    let output_path = dir.join("outputs").join(format!("{name}.rules"));
    let input_text = std::fs::read_to_string(&input_path)
        .map_err(|e| format!("{}: {e}", input_path.display()))?;
    let recorded = std::fs::read_to_string(&output_path)
        .map_err(|e| format!("{}: {e}", output_path.display()))?;
    let source = SourceFile::new(input_path.display().to_string(), input_text);
    let input = GeneratorInput::from_yaml(&source).map_err(|e| e.to_string())?;
    let generated = kpconform_reference::generate(&input);
    let (want, got) = (normalize(&recorded), normalize(&generated));
    if normalize(&want) != want {
        return Err(format!(
            "{name}: normalizing the recording twice changes it"
        ));
    }
    if want != got {
        let diff = similar::TextDiff::from_lines(&want, &got)
            .unified_diff()
            .context_radius(3)
            .header("recorded (normalized)", "generated (normalized)")
            .to_string();
        return Err(format!(
            "{name}: generated rules differ from the recording\n{diff}"
        ));
    }
    Ok(generated == recorded)
}

fn main() {
    let args = Arguments::from_args();
    let root = kpconform_golden::recordings();
    let mut trials: Vec<Trial> = Vec::new();
    // (dir, trial prefix, expected count, case names) per set.
    let mut sets = Vec::new();
    for set in &SETS {
        let dir = root.join(set.folder);
        // A missing directory must fail, not pass with zero trials.
        let names = cases(&dir).unwrap_or_else(|e| {
            eprintln!("recordings not found: {e}");
            std::process::exit(2)
        });
        for name in &names {
            let (dir, name) = (dir.clone(), name.clone());
            let trial_name = format!("{}{name}", set.trial_prefix);
            trials.push(Trial::test(trial_name, move || {
                run_case(&dir, &name).map(|_| ()).map_err(Failed::from)
            }));
        }
        sets.push((dir, set.trial_prefix, set.expected, names.len()));
    }
    let total: usize = sets.iter().map(|s| s.3).sum();

    // The recordings sort kube-proxy's randomly ordered shared chains by
    // comment, which is the reference's own order, so every case must be
    // byte-identical even before normalization; a case that only matches
    // after normalization is a regression of the reference's output order.
    trials.push(Trial::test("zz_byte_identical_count", move || {
        let mut differing = vec![];
        for (dir, prefix, expected, found) in &sets {
            if found < expected {
                return Err(format!(
                    "expected the {expected} kube-proxy v1.30 recordings in {}, found {found}",
                    dir.display()
                )
                .into());
            }
            for name in cases(dir)? {
                if run_case(dir, &name) != Ok(true) {
                    differing.push(format!("{prefix}{name}"));
                }
            }
        }
        let count = total - differing.len();
        println!("\nbyte-identical before normalization: {count} of {total}");
        if differing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "byte-identical before normalization: {count} of {total}; not: {}",
                differing.join(", ")
            )
            .into())
        }
    }));
    libtest_mimic::run(&args, trials).exit();
}
