//! The golden corpus against real kube-proxy: every scenario tagged
//! `recorded:<case>` must (1) give the recording's node, for the
//! recording's family (`node.family`, IPv4 when absent), exactly the
//! recording's generator input (`inputs/<case>.yaml`), and (2) pass, that
//! family's flows and the invariants, on the rules kube-proxy v1.30
//! installed (`outputs/<case>.rules`). A case is looked up in
//! `kube-proxy-v1.30/` (IPv4) and `kube-proxy-v1.30-ipv6/` (IPv6 and
//! dual-stack; a dual-stack scenario carries one tag per family). Every
//! recording must have a scenario; the IPv6 folder's only once some
//! scenario tags one of its cases (until the IPv6 scenarios are in the
//! corpus, a note on stderr says they were not required).
//!
//! Recordings gathered later may sit in `kube-proxy-v1.30/golden/` as
//! `<scenario-id>@<node>.rules` (scenario ids keep their `/`); each of those
//! must pass its scenario too. Without that directory the check is skipped
//! (with a note on stderr).
//!
//! Each test checks every case and reports every failure at once, one
//! paragraph per case, rather than stopping at the first.
//!
//! The recordings are `golden/recordings/kube-proxy-v1.30/` and
//! `golden/recordings/kube-proxy-v1.30-ipv6/` (see
//! `kpconform_golden::recordings`). The last test here runs `kpconform run
//! --rules-dir` over a directory built from the IPv6 recordings.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kpconform_harness::FnGenerator;
use kpconform_harness::{evaluate, evaluate_families, Corpus, Status};
use kpconform_iptables::model::Family;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{GeneratorInput, Scenario};

use crate::util::{assert_exit, kpconform, recordings, recordings_ipv6, root, TempDir};

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
/// evaluation `kpconform run` and the harness use: every family of the
/// node (`None`), or only `family` (a recording holds one family's rules).
fn passes(
    scenario: &Scenario,
    node: &str,
    family: Option<Family>,
    rules: &Path,
) -> Result<(), String> {
    let text = read(rules)?;
    let name = rules.display().to_string();
    let generator = FnGenerator::new(name, move |_| Ok(text.clone()));
    let e = match family {
        Some(f) => evaluate_families(&generator, scenario, node, &[f], None),
        None => evaluate(&generator, scenario, node, None),
    };
    match e.status() {
        Status::Passed => Ok(()),
        _ => Err(e.render()),
    }
}

/// The recordings folder holding `case` (IPv4 one first).
fn folder_of(case: &str) -> Option<PathBuf> {
    [recordings(), recordings_ipv6()]
        .into_iter()
        .find(|dir| dir.join("inputs").join(format!("{case}.yaml")).is_file())
}

/// A recording's generator input.
fn recorded_input(dir: &Path, case: &str) -> Result<GeneratorInput, String> {
    let input_path = dir.join("inputs").join(format!("{case}.yaml"));
    let source = SourceFile::new(input_path.display().to_string(), read(&input_path)?);
    GeneratorInput::from_yaml(&source).map_err(|e| e.to_string())
}

/// Checks one `recorded:<case>` tag of `scenario`.
fn check_case(scenario: &Scenario, case: &str) -> Result<(), String> {
    let dir = folder_of(case).ok_or_else(|| {
        format!(
            "no recording `{case}` in {} or {}",
            recordings().display(),
            recordings_ipv6().display()
        )
    })?;
    let recorded = recorded_input(&dir, case)?;
    let node = recorded.node.name.clone();
    let family = recorded.node.family;
    if scenario.node(&node).is_none() {
        return Err(format!(
            "{}: the recording is of node `{node}`, which the scenario does not list",
            scenario.id
        ));
    }
    let ours = scenario
        .cluster
        .generator_input_for(&node, family)
        .ok_or_else(|| {
            format!(
                "{}: the recording is of node `{node}`'s {family} rules, but the scenario gives \
                 it no {family} address",
                scenario.id
            )
        })?;
    if ours != recorded {
        return Err(format!(
            "{}@{node} ({family}): the generator input differs from {}\n--- scenario ---\n{}\n--- recording ---\n{}",
            scenario.id,
            dir.join("inputs").join(format!("{case}.yaml")).display(),
            ours.to_yaml(),
            recorded.to_yaml()
        ));
    }
    passes(
        scenario,
        &node,
        Some(family),
        &dir.join("outputs").join(format!("{case}.rules")),
    )
}

#[test]
fn every_recorded_scenario_has_the_recorded_input_and_passes_the_recorded_rules() {
    let corpus = corpus();
    let cases = tagged(&corpus);
    let failures: Vec<(String, String)> = cases
        .iter()
        .filter_map(|(case, scenario)| {
            let name = format!("{case} {}", scenario.id);
            check_case(scenario, case).err().map(|e| (name, e))
        })
        .collect();
    report("recorded scenarios", cases.len(), &failures);
}

/// The cases of a recordings folder: its `inputs/*.yaml`.
fn cases_in(dir: &Path) -> BTreeSet<String> {
    let inputs = dir.join("inputs");
    let entries = std::fs::read_dir(&inputs)
        .unwrap_or_else(|e| panic!("cannot set up: {}: {e}", inputs.display()));
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn every_recording_has_a_scenario() {
    let ipv4 = cases_in(&recordings());
    let ipv6 = cases_in(&recordings_ipv6());
    let corpus = corpus();
    let tagged: BTreeSet<String> = tagged(&corpus).into_iter().map(|(c, _)| c).collect();
    let mut cases = ipv4.clone();
    if tagged.iter().any(|c| ipv6.contains(c)) {
        cases.extend(ipv6.iter().cloned());
    } else {
        eprintln!(
            "note: no scenario tags a case of {}; its recordings are not required to have one yet",
            recordings_ipv6().display()
        );
    }
    let missing: Vec<&String> = cases.difference(&tagged).collect();
    let unknown: Vec<&String> = tagged
        .iter()
        .filter(|c| !ipv4.contains(*c) && !ipv6.contains(*c))
        .collect();
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
                Some((scenario, node)) => passes(scenario, node, None, path),
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

/// A `--rules-dir` directory built from the IPv6 recordings: for every
/// scenario tagged with cases of `kube-proxy-v1.30-ipv6`, each recording
/// copied to `DIR/<scenario-id>/<node>.rules` (IPv4) or `<node>.ipv6.rules`
/// (IPv6). Returns the `<scenario-id>@<node>` cases whose every family has
/// a recording (the others are left out, with a note).
fn ipv6_rules_dir(corpus: &Corpus, dir: &Path) -> Vec<String> {
    let ipv6 = recordings_ipv6();
    let mut complete = Vec::new();
    for scenario in corpus.scenarios() {
        let mut written: Vec<(String, Family)> = Vec::new();
        for case in scenario
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("recorded:"))
        {
            if !ipv6.join("inputs").join(format!("{case}.yaml")).is_file() {
                continue;
            }
            let input = recorded_input(&ipv6, case).unwrap_or_else(|e| panic!("{e}"));
            let (node, family) = (input.node.name, input.node.family);
            let suffix = match family {
                Family::Ipv4 => "rules",
                Family::Ipv6 => "ipv6.rules",
            };
            let target = dir.join(&scenario.id).join(format!("{node}.{suffix}"));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(ipv6.join("outputs").join(format!("{case}.rules")), &target)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            written.push((node, family));
        }
        let nodes: BTreeSet<&String> = written.iter().map(|(n, _)| n).collect();
        for node in nodes {
            let families = scenario
                .node(node)
                .map(|n| n.families())
                .unwrap_or_default();
            if families
                .iter()
                .all(|f| written.contains(&(node.clone(), *f)))
            {
                complete.push(format!("{}@{node}", scenario.id));
            } else {
                eprintln!(
                    "note: {}@{node} has no recording of every family it has; not run",
                    scenario.id
                );
            }
        }
    }
    complete
}

/// Replaces the port of the first IPv6 DNAT target (`]:PORT`) in `text`.
fn break_first_ipv6_dnat(text: &str) -> Option<String> {
    let at = text.find("-j DNAT --to-destination [")?;
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let port_at = text[at..line_end].rfind("]:")? + at + 2;
    let port: u16 = text[port_at..line_end].trim().parse().ok()?;
    Some(format!(
        "{}{}{}",
        &text[..port_at],
        port.wrapping_add(1),
        &text[line_end..]
    ))
}

#[test]
fn a_rules_dir_of_the_ipv6_recordings_passes_and_a_broken_copy_is_caught() {
    let corpus = corpus();
    let dir = TempDir::new("ipv6-rules-dir");
    let cases = ipv6_rules_dir(&corpus, dir.path());
    if cases.is_empty() {
        eprintln!(
            "note: no scenario of golden/scenarios tags a case of {}; nothing to run",
            recordings_ipv6().display()
        );
        return;
    }
    let run = |cases: &[String]| {
        let mut args = vec!["run", "--rules-dir", dir.str()];
        for case in cases {
            args.extend(["--filter", case.as_str()]);
        }
        kpconform(&args, None)
    };
    let out = run(&cases);
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains(&format!("  passed   {:>5}\n", cases.len())),
        "{}",
        out.stdout
    );

    // Break one IPv6 DNAT port of a case that has IPv6 rules.
    let (case, path, broken) = cases
        .iter()
        .find_map(|case| {
            let (id, node) = case.rsplit_once('@')?;
            let path = dir.path().join(id).join(format!("{node}.ipv6.rules"));
            let broken = break_first_ipv6_dnat(&std::fs::read_to_string(&path).ok()?)?;
            Some((case.clone(), path, broken))
        })
        .expect("some IPv6 recording has a DNAT rule");
    std::fs::write(&path, broken).unwrap();
    let out = run(std::slice::from_ref(&case));
    assert_exit!(out, 1);
    assert!(out.stdout.contains("broken   "), "{}", out.stdout);
    assert!(out.stdout.contains(&case), "{}", out.stdout);
    assert!(out.stdout.contains("FAIL "), "{}", out.stdout);
}
