//! The reference generator against every kube-proxy v1.30.5 recording:
//! one trial per `inputs/NAME.yaml`, asserting
//! `normalize(generate(input)) == normalize(outputs/NAME.rules)` and showing
//! a unified diff of the normalized text when not. A last trial asserts that
//! every case is byte-identical even before normalization.
//!
//! The recordings are `golden/recordings/kube-proxy-v1.30/` (see
//! `kpconform_golden::recordings`).

use std::path::{Path, PathBuf};

use kpconform_iptables::normalize;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;
use libtest_mimic::{Arguments, Failed, Trial};

fn recordings_dir() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

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
    let dir = recordings_dir();
    // A missing directory must fail, not pass with zero trials.
    let names = cases(&dir).unwrap_or_else(|e| {
        eprintln!("recordings not found: {e}");
        std::process::exit(2)
    });
    let total = names.len();

    let mut trials: Vec<Trial> = names
        .iter()
        .map(|name| {
            let (dir, name) = (dir.clone(), name.clone());
            Trial::test(name.clone(), move || {
                run_case(&dir, &name).map(|_| ()).map_err(Failed::from)
            })
        })
        .collect();

    // The recordings sort kube-proxy's randomly ordered shared chains by
    // comment, which is the reference's own order, so every case must be
    // byte-identical even before normalization; a case that only matches
    // after normalization is a regression of the reference's output order.
    let dir_for_count = dir.clone();
    trials.push(Trial::test("zz_byte_identical_count", move || {
        if total < 44 {
            return Err(format!(
                "expected the 44 kube-proxy v1.30 recordings in {}, found {total}",
                dir_for_count.display()
            )
            .into());
        }
        let mut differing = vec![];
        for name in cases(&dir_for_count)? {
            if run_case(&dir_for_count, &name) != Ok(true) {
                differing.push(name);
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
