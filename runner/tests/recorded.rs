//! The golden corpus against real kube-proxy: every scenario tagged
//! `recorded:<case>` must (1) give the recording's node exactly the
//! recording's generator input (`inputs/<case>.yaml`), and (2) pass, flows
//! and invariants, on the rules kube-proxy v1.30.5 installed
//! (`outputs/<case>.rules`). Every recording must have a scenario.
//!
//! Recordings gathered later may sit in `kube-proxy-v1.30/golden/` as
//! `<scenario-id>@<node>.rules` (scenario ids keep their `/`); each of those
//! must pass its scenario too. Without that directory the check is skipped
//! (an ignored trial says so).
//!
//! The recordings are `golden/recordings/kube-proxy-v1.30/` (see
//! `kpconform_golden::recordings`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kpconform_harness::FnGenerator;
use kpconform_harness::{evaluate, Corpus, Status};
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{GeneratorInput, Scenario};
use libtest_mimic::{Arguments, Failed, Trial};

fn recordings() -> PathBuf {
    kpconform_golden::recordings().join("kube-proxy-v1.30")
}

fn read(path: &Path) -> Result<String, Failed> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// `scenario`'s `node` judged on the rules in `rules`, through the same
/// evaluation `kpconform run` and the harness use.
fn passes(scenario: &Scenario, node: &str, rules: &Path) -> Result<(), Failed> {
    let text = read(rules)?;
    let name = rules.display().to_string();
    let generator = FnGenerator::new(name, move |_| Ok(text.clone()));
    let e = evaluate(&generator, scenario, node, None);
    match e.status() {
        Status::Passed => Ok(()),
        _ => Err(e.render().into()),
    }
}

/// Checks one `recorded:<case>` tag of `scenario`.
fn check_case(dir: &Path, scenario: &Scenario, case: &str) -> Result<(), Failed> {
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
        )
        .into());
    }
    passes(
        scenario,
        &node,
        &dir.join("outputs").join(format!("{case}.rules")),
    )
}

/// Trials for `golden/<scenario-id>@<node>.rules`, or one ignored trial
/// saying the directory is absent.
fn golden_trials(dir: &Path, corpus: &Corpus) -> Vec<Trial> {
    let golden = dir.join("golden");
    let mut files = Vec::new();
    if collect_rules(&golden, &mut files).is_err() {
        eprintln!(
            "note: {} is absent; no extra recordings checked",
            golden.display()
        );
        return vec![Trial::test("golden recordings (absent)", || Ok(())).with_ignored_flag(true)];
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(&golden)
                .unwrap_or(&path)
                .to_string_lossy();
            let name = relative
                .strip_suffix(".rules")
                .unwrap_or(&relative)
                .to_string();
            let found = name.rsplit_once('@').and_then(|(id, node)| {
                let s = corpus.scenarios().iter().find(|s| s.id == id)?;
                Some((Arc::clone(s), node.to_string()))
            });
            Trial::test(format!("golden {name}"), move || match found {
                Some((scenario, node)) => passes(&scenario, &node, &path),
                None => {
                    Err(format!("{}: no such scenario@node in the corpus", path.display()).into())
                }
            })
        })
        .collect()
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

fn trials() -> Result<Vec<Trial>, String> {
    let dir = recordings();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/scenarios");
    let corpus = Corpus::load(&golden).map_err(|e| format!("{}: {e}", golden.display()))?;
    let mut trials = Vec::new();
    let mut tagged = BTreeSet::new();
    for scenario in corpus.scenarios() {
        for case in scenario
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("recorded:"))
        {
            tagged.insert(case.to_string());
            let (dir, scenario, case) = (dir.clone(), Arc::clone(scenario), case.to_string());
            let name = format!("{case} {}", scenario.id);
            trials.push(Trial::test(name, move || {
                check_case(&dir, &scenario, &case)
            }));
        }
    }
    let inputs = dir.join("inputs");
    let entries = std::fs::read_dir(&inputs).map_err(|e| format!("{}: {e}", inputs.display()))?;
    let cases: BTreeSet<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect();
    trials.push(Trial::test("every recording has a scenario", move || {
        let missing: Vec<&String> = cases.difference(&tagged).collect();
        let unknown: Vec<&String> = tagged.difference(&cases).collect();
        if missing.is_empty() && unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("no scenario tagged recorded:<case> for {missing:?}; tags naming no recording: {unknown:?}").into())
        }
    }));
    trials.extend(golden_trials(&dir, &corpus));
    Ok(trials)
}

fn main() {
    let args = Arguments::from_args();
    let trials = trials().unwrap_or_else(|e| {
        vec![Trial::test("recordings", move || {
            Err(Failed::from(format!("cannot set up: {e}")))
        })]
    });
    libtest_mimic::run(&args, trials).exit();
}
