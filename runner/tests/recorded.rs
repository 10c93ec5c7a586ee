//! The golden corpus against real kube-proxy: every scenario tagged
//! `recorded:<case>` must (1) give the recording's node exactly the
//! recording's generator input (`inputs/<case>.yaml`), and (2) pass, flows
//! and invariants, on the rules kube-proxy v1.30.5 installed
//! (`outputs/<case>.rules`). Every recording must have a scenario.
//!
//! Recordings gathered later may sit in `kube-proxy-v1.30/golden/` as
//! `<scenario-id>@<node>.rules` (scenario ids keep their `/`); each of those
//! must pass its scenario too. Without that directory the check is skipped
//! (with a note on stderr).
//!
//! Each test checks every case and reports every failure at once, one
//! paragraph per case, rather than stopping at the first.
//!
//! The recordings are `golden/recordings/kube-proxy-v1.30/` (see
//! `kpconform_golden::recordings`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kpconform_harness::FnGenerator;
use kpconform_harness::{evaluate, Corpus, Status};
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{GeneratorInput, Scenario};

use crate::util::{recordings, root};

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The golden scenarios.
fn corpus() -> Corpus {
    let dir = root().join("golden/scenarios");
    Corpus::load(&dir).unwrap_or_else(|e| panic!("cannot set up: {}: {e}", dir.display()))
}

/// Every `(case, scenario)` of a `recorded:<case>` tag, in corpus order.
fn tagged(corpus: &Corpus) -> Vec<(String, &Scenario)> {
    corpus
        .scenarios()
        .iter()
        .flat_map(|scenario| {
            scenario
                .tags
                .iter()
                .filter_map(|t| t.strip_prefix("recorded:"))
                .map(move |case| (case.to_string(), &**scenario))
        })
        .collect()
}

/// Fails with every failure of `checked` checks, each a (name, why).
fn report(what: &str, checked: usize, failures: &[(String, String)]) {
    if failures.is_empty() {
        return;
    }
    let all: Vec<String> = failures
        .iter()
        .map(|(name, why)| format!("--- {name}\n{why}"))
        .collect();
    panic!(
        "{what}: {} of {checked} failed:\n\n{}",
        failures.len(),
        all.join("\n\n")
    );
}

/// `scenario`'s `node` judged on the rules in `rules`, through the same
/// evaluation `kpconform run` and the harness use.
fn passes(scenario: &Scenario, node: &str, rules: &Path) -> Result<(), String> {
    let text = read(rules)?;
    let name = rules.display().to_string();
    let generator = FnGenerator::new(name, move |_| Ok(text.clone()));
    let e = evaluate(&generator, scenario, node, None);
    match e.status() {
        Status::Passed => Ok(()),
        _ => Err(e.render()),
    }
}

/// Checks one `recorded:<case>` tag of `scenario`.
fn check_case(dir: &Path, scenario: &Scenario, case: &str) -> Result<(), String> {
    let input_path = dir.join("inputs").join(format!("{case}.yaml"));
    let source = SourceFile::new(input_path.display().to_string(), read(&input_path)?);
    let recorded = GeneratorInput::from_yaml(&source).map_err(|e| e.to_string())?;
    let node = recorded.node.name.clone();
    let ours = scenario.generator_input(&node).ok_or_else(|| {
        format!(
            "{}: the recording is of node `{node}`, which the scenario does not list",
            scenario.id
        )
    })?;
    if ours != recorded {
        return Err(format!(
            "{}@{node}: the generator input differs from {}\n--- scenario ---\n{}\n--- recording ---\n{}",
            scenario.id,
            input_path.display(),
            ours.to_yaml(),
            recorded.to_yaml()
        ));
    }
    passes(
        scenario,
        &node,
        &dir.join("outputs").join(format!("{case}.rules")),
    )
}

#[test]
fn every_recorded_scenario_has_the_recorded_input_and_passes_the_recorded_rules() {
    let dir = recordings();
    let corpus = corpus();
    let cases = tagged(&corpus);
    let failures: Vec<(String, String)> = cases
        .iter()
        .filter_map(|(case, scenario)| {
            let name = format!("{case} {}", scenario.id);
            check_case(&dir, scenario, case).err().map(|e| (name, e))
        })
        .collect();
    report("recorded scenarios", cases.len(), &failures);
}

#[test]
fn every_recording_has_a_scenario() {
    let inputs = recordings().join("inputs");
    let entries = std::fs::read_dir(&inputs)
        .unwrap_or_else(|e| panic!("cannot set up: {}: {e}", inputs.display()));
    let cases: BTreeSet<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect();
    let corpus = corpus();
    let tagged: BTreeSet<String> = tagged(&corpus).into_iter().map(|(c, _)| c).collect();
    let missing: Vec<&String> = cases.difference(&tagged).collect();
    let unknown: Vec<&String> = tagged.difference(&cases).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "no scenario tagged recorded:<case> for {missing:?}; tags naming no recording: {unknown:?}"
    );
}

#[test]
fn every_later_recording_passes_its_scenario() {
    let golden = recordings().join("golden");
    let mut files = Vec::new();
    if collect_rules(&golden, &mut files).is_err() {
        eprintln!(
            "note: {} is absent; no extra recordings checked",
            golden.display()
        );
        return;
    }
    files.sort();
    let corpus = corpus();
    let failures: Vec<(String, String)> = files
        .iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&golden).unwrap_or(path).to_string_lossy();
            let name = relative
                .strip_suffix(".rules")
                .unwrap_or(&relative)
                .to_string();
            let found = name.rsplit_once('@').and_then(|(id, node)| {
                let s = corpus.scenarios().iter().find(|s| s.id == id)?;
                Some((s, node))
            });
            let result = match found {
                Some((scenario, node)) => passes(scenario, node, path),
                None => Err(format!(
                    "{}: no such scenario@node in the corpus",
                    path.display()
                )),
            };
            result.err().map(|e| (format!("golden {name}"), e))
        })
        .collect();
    report("later recordings", files.len(), &failures);
}

fn collect_rules(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rules(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rules") {
            out.push(path);
        }
    }
    Ok(())
}
