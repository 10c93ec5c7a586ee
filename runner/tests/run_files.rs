//! `kpconform run` working outside `cargo test`: `--snapshots DIR --update`
//! writes a new generator's snapshots, `--save-outputs DIR` keeps what the
//! generator printed so `--rules-dir DIR` reproduces the run, and each
//! failure prints the command that reruns it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{assert_exit, kpconform, root, Output, TempDir, KPCONFORM};

/// The reference generator as an external command, its output passed
/// through `sed SCRIPT` (`''` leaves it as it is).
fn generator(sed: &str) -> String {
    format!(
        "sh -c {}",
        shell_words::quote(&format!(
            "{KPCONFORM} generate --input - | sed {}",
            shell_words::quote(sed)
        ))
    )
}

/// A harmless change: one more (unreferenced) chain in the filter table.
/// Every flow and invariant still holds; only the snapshot differs.
const ADD_CHAIN: &str = "/^\\*filter$/a :KPCONFORM-TEST-UNUSED - [0:0]";

/// KUBE-FORWARD dropping NEW instead of INVALID connections: forwarded
/// flows break.
const BREAK_FORWARD: &str = "s/--ctstate INVALID -j DROP/--ctstate NEW -j DROP/";

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// `(name, status, details)` of every case of a JSON report.
fn cases(report: &Value) -> Vec<(String, String, String)> {
    report["cases"]
        .as_array()
        .expect("cases is an array")
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("status"), text("details"))
        })
        .collect()
}

fn snap_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn update_writes_a_new_generators_snapshots_then_compares_and_updates_them() {
    let dir = TempDir::new("update");
    // The snapshot directory does not exist yet: --update starts it.
    let snapshots = dir.path().join("snapshots");
    let snapshots = snapshots.to_str().unwrap();
    let run = |sed: &str, update: bool| {
        let command = generator(sed);
        let mut args = vec![
            "run",
            "--generator",
            &command,
            "--name",
            "new-proxy",
            "--snapshots",
            snapshots,
            "--filter",
            "clusterip/",
            "--format",
            "json",
        ];
        if update {
            args.push("--update");
        }
        kpconform(&args, None)
    };

    let created = run("", true);
    assert_exit!(created, 0);
    let files = snap_files(Path::new(snapshots));
    assert!(files.len() >= 5, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("new-proxy/clusterip/") && f.ends_with(".snap")),
        "{files:?}"
    );
    assert!(
        created.stderr.contains(&format!(
            "snapshots in {snapshots}/new-proxy: created {}, updated 0, unchanged 0\n",
            files.len()
        )),
        "{}",
        created.stderr
    );
    assert!(cases(&json(&created))
        .iter()
        .all(|(_, status, _)| status == "passed"));

    // Without --update the same output matches every snapshot written.
    let again = run("", false);
    assert_exit!(again, 0);
    let report = json(&again);
    assert!(
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["snapshot"] == "matched"),
        "{}",
        again.stdout
    );
    assert!(!again.stderr.contains("created"), "{}", again.stderr);

    // Changed output: every case is changed, nothing is written.
    let before: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(Path::new(snapshots).join(f)).unwrap())
        .collect();
    let changed = run(ADD_CHAIN, false);
    assert_exit!(changed, 1);
    let statuses = cases(&json(&changed));
    assert!(
        statuses.iter().all(|(_, s, _)| s == "changed"),
        "{statuses:?}"
    );
    assert!(
        statuses[0].2.contains("+:KPCONFORM-TEST-UNUSED"),
        "{}",
        statuses[0].2
    );
    let after: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(Path::new(snapshots).join(f)).unwrap())
        .collect();
    assert_eq!(before, after);

    // --update writes them: exit 0 although they differed.
    let updated = run(ADD_CHAIN, true);
    assert_exit!(updated, 0);
    assert!(
        updated.stderr.contains(&format!(
            "created 0, updated {}, unchanged 0\n",
            files.len()
        )),
        "{}",
        updated.stderr
    );
    assert_eq!(
        snap_files(Path::new(snapshots)),
        files,
        "no other file (temporary or .snap.new) stays"
    );
    let one = std::fs::read_to_string(Path::new(snapshots).join(&files[0])).unwrap();
    assert!(one.contains("\n:KPCONFORM-TEST-UNUSED"), "{one}");
    assert_exit!(run(ADD_CHAIN, false), 0);
}

#[test]
fn update_needs_snapshots_and_never_touches_other_files() {
    let out = kpconform(&["run", "--reference", "--update"], None);
    assert_exit!(out, 2);
    assert!(out.stderr.contains("--snapshots"), "{}", out.stderr);

    // A stale snapshot (a case no longer in the corpus) stays.
    let dir = TempDir::new("stale");
    let stale = dir.path().join("reference/gone/scenario@node-a.snap");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "---\nsource: x\n---\n*nat\nCOMMIT\n").unwrap();
    let out = kpconform(
        &[
            "run",
            "--reference",
            "--snapshots",
            dir.str(),
            "--update",
            "--filter",
            "clusterip/one-endpoint@",
        ],
        None,
    );
    assert_exit!(out, 0);
    assert!(
        out.stderr.contains("created 1, updated 0, unchanged 0"),
        "{}",
        out.stderr
    );
    assert!(stale.is_file());
}

#[test]
fn saved_outputs_rerun_from_the_rules_dir_give_the_same_results() {
    let dir = TempDir::new("save-outputs");
    let saved = dir.path().join("rules");
    let saved = saved.to_str().unwrap();
    let command = generator(BREAK_FORWARD);
    let first = kpconform(
        &[
            "run",
            "--generator",
            &command,
            "--name",
            "sed",
            "--filter",
            "clusterip/",
            "--filter",
            "dualstack/",
            "--save-outputs",
            saved,
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(first, 1);
    // Raw, as the generator printed it.
    let expected = {
        let input = kpconform(
            &[
                "input",
                "--scenario",
                "golden/scenarios/clusterip/one-endpoint.yaml",
                "--node",
                "node-a",
            ],
            None,
        );
        let rules = kpconform(&["generate", "--input", "-"], Some(&input.stdout));
        rules
            .stdout
            .replace("--ctstate INVALID -j DROP", "--ctstate NEW -j DROP")
    };
    assert_eq!(
        std::fs::read_to_string(Path::new(saved).join("clusterip/one-endpoint/node-a.rules"))
            .unwrap(),
        expected
    );
    let files = snap_files(Path::new(saved));
    assert!(
        files.iter().any(|f| f.ends_with(".ipv6.rules")),
        "{files:?}"
    );

    let again = kpconform(
        &[
            "run",
            "--rules-dir",
            saved,
            "--name",
            "sed",
            "--filter",
            "clusterip/",
            "--filter",
            "dualstack/",
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(again, 1);
    let (a, b) = (cases(&json(&first)), cases(&json(&again)));
    assert!(a.iter().any(|(_, s, _)| s == "broken"), "{a:?}");
    assert!(a.iter().any(|(_, s, _)| s == "passed"), "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn save_outputs_to_a_file_is_a_setup_error() {
    let dir = TempDir::new("save-file");
    let file = dir.path().join("f");
    std::fs::write(&file, "").unwrap();
    let out = kpconform(
        &[
            "run",
            "--reference",
            "--save-outputs",
            file.to_str().unwrap(),
            "--filter",
            "clusterip/",
        ],
        None,
    );
    assert_exit!(out, 2);
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);
}

#[test]
fn each_failure_prints_the_command_that_reproduces_it() {
    let command = generator(BREAK_FORWARD);
    let out = kpconform(
        &[
            "run",
            "--generator",
            &command,
            "--name",
            "sed",
            "--filter",
            "clusterip/",
        ],
        None,
    );
    assert_exit!(out, 1);
    let reruns: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("rerun: "))
        .collect();
    let failed = out.stdout.matches("\n  broken   clusterip/").count();
    assert!(failed >= 2, "{}", out.stdout);
    assert_eq!(reruns.len(), failed, "one per failure:\n{}", out.stdout);

    let rerun = reruns
        .iter()
        .find(|r| r.ends_with("--filter clusterip/one-endpoint@node-a"))
        .unwrap_or_else(|| panic!("{reruns:#?}"));
    let argv = shell_words::split(rerun).unwrap();
    assert_eq!(argv[0], KPCONFORM);
    let again = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("broken: clusterip/one-endpoint@node-a"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 case(s) from golden/scenarios"),
        "{stdout}"
    );
    // The same failure: the same explanation as in the full run.
    assert!(
        stdout.contains("FAIL \"pod on node-a reaches the single endpoint\""),
        "{stdout}"
    );
    assert!(
        stdout.contains(rerun),
        "the rerun prints itself again:\n{stdout}"
    );
}
