//! The ready-to-copy CI jobs in `docs/ci/` stay true: valid YAML, every
//! `kpconform` command and option they run exists (by the binary's own
//! `--help`), the gate's exit status is not masked, and the reports they
//! write are the ones they upload.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{assert_exit, kpconform, root};

fn load(name: &str) -> Value {
    let path = root().join("docs/ci").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shell lines of a script, with `\`-newline continuations joined.
fn lines(script: &str) -> Vec<String> {
    script
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// One `kpconform` invocation: the subcommand and the words up to the first
/// shell operator.
#[derive(Debug)]
struct Invocation {
    line: String,
    words: Vec<String>,
}

impl Invocation {
    fn subcommand(&self) -> &str {
        &self.words[0]
    }
}

/// Shell operators that end one command of a line.
const OPERATORS: [&str; 5] = ["|", "||", "&&", ";", ">"];

fn invocations(lines: &[String]) -> Vec<Invocation> {
    let mut found = Vec::new();
    for line in lines {
        let words = shell_words::split(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        // Each command of the line: the words between operators, without
        // leading `VAR=value` assignments.
        for command in words.split(|w| OPERATORS.contains(&w.as_str())) {
            let mut command = command.iter().skip_while(|w| is_assignment(w));
            let Some(program) = command.next() else {
                continue;
            };
            if Path::new(program)
                .file_name()
                .is_none_or(|n| n != "kpconform")
            {
                continue;
            }
            let words: Vec<String> = command.cloned().collect();
            assert!(!words.is_empty(), "no subcommand: {line}");
            found.push(Invocation {
                line: line.clone(),
                words,
            });
        }
    }
    found
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Files a line writes with `> FILE`.
fn redirected(lines: &[String]) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for line in lines {
        let words = shell_words::split(line).unwrap();
        for pair in words.windows(2) {
            if pair[0] == ">" {
                files.insert(pair[1].clone());
            }
        }
    }
    files
}

/// Checks every invocation against the binary's help: the subcommand, each
/// option, and each `--format` value.
fn check_against_help(invocations: &[Invocation]) {
    let top = kpconform(&["--help"], None);
    assert_exit!(top, 0);
    for inv in invocations {
        let sub = inv.subcommand();
        let listed = top
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(sub));
        assert!(listed, "`kpconform {sub}` does not exist: {}", inv.line);
        // The short help lists `--format`'s values on one line:
        // `[possible values: human, json, junit]`.
        let help = kpconform(&[sub, "-h"], None);
        assert_exit!(help, 0);
        let flat = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for (i, word) in inv.words.iter().enumerate() {
            let Some(flag) = word.strip_prefix("--") else {
                continue;
            };
            let flag = flag.split('=').next().unwrap();
            assert!(
                flat.contains(&format!("--{flag} ")),
                "`kpconform {sub} --{flag}` does not exist: {}",
                inv.line
            );
            if flag == "format" {
                let value = &inv.words[i + 1];
                let values = flat
                    .split("--format")
                    .nth(1)
                    .and_then(|s| s.split("[possible values: ").nth(1))
                    .and_then(|s| s.split(']').next())
                    .unwrap_or_else(|| panic!("no --format values in:\n{}", help.stdout));
                assert!(
                    values.split(", ").any(|v| v == value),
                    "`kpconform {sub} --format {value}`: not one of {values}: {}",
                    inv.line
                );
            }
        }
    }
}

/// What both jobs must do, whatever the CI system: run, report, gate.
fn check_steps(lines: &[String]) -> BTreeSet<String> {
    let invs = invocations(lines);
    let subcommands: Vec<&str> = invs.iter().map(Invocation::subcommand).collect();
    assert_eq!(subcommands, ["run", "run", "diff"], "{invs:#?}");
    check_against_help(&invs);
    // The gate compares with the baseline directory and its exit status
    // reaches the CI system: nothing after it on the line.
    let gate = invs.last().unwrap();
    assert!(
        gate.words.contains(&"--old-rules-dir".to_string()),
        "{gate:?}"
    );
    assert!(
        gate.words.contains(&"--new-generator".to_string()),
        "{gate:?}"
    );
    assert_eq!(
        shell_words::split(&gate.line).unwrap().last(),
        gate.words.last(),
        "the gate's exit status is masked: {}",
        gate.line
    );
    // The runs fail the job on setup errors (2) only.
    for run in &invs[..2] {
        assert!(run.line.ends_with("|| test $? -le 1"), "{}", run.line);
    }
    let files = redirected(lines);
    assert_eq!(
        files,
        ["kpconform.html", "kpconform.xml"]
            .map(String::from)
            .into_iter()
            .collect(),
        "{lines:#?}"
    );
    files
}

#[test]
fn the_github_actions_workflow_runs_real_commands_and_uploads_its_reports() {
    let workflow = load("github-actions.yml");
    assert!(workflow["on"]["pull_request"].is_null() || workflow["on"]["pull_request"].is_object());
    let env = &workflow["env"];
    for var in ["GENERATOR", "BASELINE", "KPCONFORM_REF"] {
        assert!(env[var].is_string(), "env.{var}");
    }
    let steps = workflow["jobs"]["kpconform"]["steps"].as_array().unwrap();
    let scripts: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .flat_map(lines)
        .collect();
    let files = check_steps(&scripts);
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload step");
    assert_eq!(
        upload["if"], "always()",
        "reports are uploaded when the gate fails"
    );
    let paths: Vec<&str> = upload["with"]["path"].as_str().unwrap().lines().collect();
    for file in &files {
        assert!(
            paths.contains(&file.as_str()),
            "{file} is not uploaded: {paths:?}"
        );
    }
    assert!(paths.contains(&"kpconform-outputs/"), "{paths:?}");
}

#[test]
fn the_gitlab_job_runs_real_commands_and_keeps_its_reports() {
    let ci = load("gitlab-ci.yml");
    let job = &ci["kpconform"];
    for var in ["GENERATOR", "BASELINE", "KPCONFORM_REF"] {
        assert!(job["variables"][var].is_string(), "variables.{var}");
    }
    let scripts: Vec<String> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().expect("script lines are strings").to_string())
        .collect();
    let files = check_steps(&scripts);
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"], "always");
    assert_eq!(artifacts["reports"]["junit"], "kpconform.xml");
    let paths: Vec<&str> = artifacts["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in &files {
        assert!(
            paths.contains(&file.as_str()),
            "{file} is not kept: {paths:?}"
        );
    }
}

#[test]
fn the_adoption_guide_commands_exist() {
    let text = std::fs::read_to_string(root().join("docs/ci/README.md")).unwrap();
    let blocks: Vec<String> = text
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .flat_map(lines)
        .collect();
    let invs = invocations(&blocks);
    assert!(
        invs.iter()
            .any(|i| i.words.contains(&"--save-outputs".to_string())),
        "{invs:#?}"
    );
    check_against_help(&invs);
}
