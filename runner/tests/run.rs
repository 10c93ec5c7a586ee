//! `kpconform run`: every kind of generator, every report format, every exit code.

use kpconform_harness::Corpus;
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::GeneratorInput;
use std::time::Duration;

use serde_json::Value;

use crate::util::{assert_exit, kpconform, recordings, root, Output, TempDir, KPCONFORM};

/// Parses `--format json` output.
fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// `(name, status)` of every case of a JSON report.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["cases"]
        .as_array()
        .expect("cases is an array")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_reference_passes_the_golden_corpus_and_its_snapshots() {
    let out = kpconform(
        &[
            "run",
            "--reference",
            "--snapshots",
            "golden/snapshots",
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(out, 0);
    let report = json(&out);
    let total = report["summary"]["total"].as_u64().unwrap();
    assert!(total >= 80, "only {total} cases");
    assert_eq!(report["summary"]["passed"].as_u64(), Some(total));
    assert!(report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["snapshot"] == "matched"));
    // The summary table goes to stderr when stdout carries JSON.
    assert!(
        out.stderr.contains(&format!("  passed   {total:>5}\n")),
        "{}",
        out.stderr
    );
}

#[test]
fn the_human_report_ends_with_the_summary_table() {
    let out = kpconform(&["run", "--reference", "--filter", "nodeport/"], None);
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .starts_with("kpconform run: generator `reference`, "),
        "{}",
        out.stdout
    );
    for status in ["passed", "broken", "changed", "error"] {
        assert!(
            out.stdout.contains(&format!("\n  {status:<8} ")),
            "{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("  broken       0\n"), "{}", out.stdout);
    // Not a terminal: no progress lines.
    assert_eq!(out.stderr, "");
}

#[test]
fn an_external_command_that_cats_a_recording_passes() {
    let rules = recordings().join("outputs/clusterip-1-endpoint.rules");
    let command = format!("cat {}", rules.display());
    let out = kpconform(
        &[
            "run",
            "--generator",
            &command,
            "--filter",
            "clusterip/one-endpoint@",
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(out, 0);
    let report = json(&out);
    assert_eq!(report["generator"], "cat");
    assert_eq!(
        statuses(&report),
        [(
            "clusterip/one-endpoint@node-a".to_string(),
            "passed".to_string()
        )]
    );
}

#[test]
fn a_hanging_generator_is_killed_within_the_timeout_and_reported() {
    let dir = TempDir::new("hang");
    let pid_file = dir.path().join("pid");
    let command = format!("sh -c 'sleep 60 & echo $! > {}; wait'", pid_file.display());
    let out = kpconform(
        &[
            "run",
            "--generator",
            &command,
            "--timeout",
            "1",
            "--filter",
            "clusterip/one-endpoint@",
        ],
        None,
    );
    assert_exit!(out, 1);
    // Well below the generator's 60 s sleep, yet loose enough for a loaded
    // 2-core machine building in parallel (8 s flaked there): what matters is
    // that the run did not wait for the generator.
    assert!(
        out.elapsed < Duration::from_secs(30),
        "took {:?}",
        out.elapsed
    );
    assert!(
        out.stdout.contains(
            "error: clusterip/one-endpoint@node-a: generator `sh` did not finish within 1s and was killed"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  error        1\n"), "{}", out.stdout);
    // The background sleep was in the generator's process group: it is gone
    // (or a zombie waiting for init to reap it, no longer running).
    // SIGKILL is asynchronous: give the kernel a bounded moment to finish it.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = || std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let start = std::time::Instant::now();
    while !(stat().is_empty() || stat().contains(") Z "))
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = stat();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "still running: {stat}"
    );
}

#[test]
fn garbage_output_is_broken_with_the_parse_error_at_its_line() {
    let command = r"printf '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING --frobnicate 1 -j ACCEPT\nCOMMIT\n'";
    let out = kpconform(
        &[
            "run",
            "--generator",
            command,
            "--filter",
            "clusterip/one-endpoint@",
        ],
        None,
    );
    assert_exit!(out, 1);
    assert!(
        out.stdout
            .contains("broken: clusterip/one-endpoint@node-a: 1 parse error(s) in the output"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "printf/clusterip/one-endpoint/node-a.rules:3:15: unknown option `--frobnicate`"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_broken_copy_of_the_reference_is_broken_and_explained() {
    // KUBE-FORWARD dropping NEW instead of INVALID connections breaks every
    // forwarded flow: the pod-to-service ones fail, the node's own pass.
    let command = format!(
        "sh -c '{} generate --input - | sed \"s/--ctstate INVALID -j DROP/--ctstate NEW -j DROP/\"'",
        KPCONFORM
    );
    let out = kpconform(
        &[
            "run",
            "--generator",
            &command,
            "--name",
            "sed",
            "--filter",
            "clusterip/",
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(out, 1);
    let report = json(&out);
    let broken: Vec<_> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "broken")
        .collect();
    assert!(!broken.is_empty(), "{}", out.stdout);
    let one = broken
        .iter()
        .find(|c| c["name"] == "clusterip/one-endpoint@node-a")
        .expect("one-endpoint is broken");
    let details = one["details"].as_str().unwrap();
    assert!(
        details.contains("FAIL \"pod on node-a reaches the single endpoint\""),
        "{details}"
    );
    assert!(
        details.contains("-A KUBE-FORWARD -m conntrack --ctstate NEW -j DROP"),
        "{details}"
    );
}

#[test]
fn a_rules_dir_of_the_shared_recordings_passes() {
    let dir = TempDir::new("rules-dir");
    let corpus = Corpus::load(root().join("golden/scenarios")).unwrap();
    let mut expected = Vec::new();
    for scenario in corpus.scenarios() {
        for case in scenario
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("recorded:"))
        {
            let input_path = recordings().join("inputs").join(format!("{case}.yaml"));
            // IPv6 and dual-stack cases are kube-proxy-v1.30-ipv6's (see
            // recorded::a_rules_dir_of_the_ipv6_recordings_passes_...).
            if !input_path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&input_path).unwrap();
            let input = GeneratorInput::from_yaml(&SourceFile::new("input", text)).unwrap();
            let node = input.node.name;
            let target = dir.path().join(&scenario.id).join(format!("{node}.rules"));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(
                recordings().join("outputs").join(format!("{case}.rules")),
                &target,
            )
            .unwrap();
            expected.push(format!("{}@{node}", scenario.id));
        }
    }
    assert!(expected.len() >= 44, "{expected:?}");
    let mut args = vec!["run", "--rules-dir", dir.str(), "--format", "json"];
    for name in &expected {
        args.extend(["--filter", name.as_str()]);
    }
    let out = kpconform(&args, None);
    let report = json(&out);
    let mut got = statuses(&report);
    got.sort();
    expected.sort();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|n| (n.clone(), "passed".to_string()))
        .collect();
    assert_eq!(got, want, "{}", out.stdout);
    assert_exit!(out, 0);
    assert_eq!(
        report["generator"].as_str(),
        dir.path().file_name().unwrap().to_str()
    );
}

#[test]
fn a_changed_snapshot_is_reported_with_its_diff_and_never_written() {
    let dir = TempDir::new("snapshots");
    let name = "clusterip/one-endpoint@node-a.snap";
    let source = root().join("golden/snapshots/reference").join(name);
    let target = dir.path().join("reference").join(name);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(source).unwrap();
    let edited = text.replace("--ctstate INVALID -j DROP", "--ctstate INVALID -j ACCEPT");
    assert_ne!(text, edited);
    std::fs::write(&target, &edited).unwrap();
    let out = kpconform(
        &[
            "run",
            "--reference",
            "--snapshots",
            dir.str(),
            "--filter",
            "clusterip/one-endpoint@",
        ],
        None,
    );
    assert_exit!(out, 1);
    assert!(
        out.stdout
            .contains("changed: clusterip/one-endpoint@node-a: 3 of 3 flow(s) passed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--A KUBE-FORWARD -m conntrack --ctstate INVALID -j ACCEPT\n+-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), edited);
    let files: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "a read-only run wrote files");
}

#[test]
fn the_junit_report_parses_and_tells_failures_from_errors() {
    let out = kpconform(
        &[
            "run",
            "--generator",
            "printf garbage",
            "--filter",
            "clusterip/one-endpoint@",
            "--filter",
            "clusterip/two-endpoints@",
            "--format",
            "junit",
        ],
        None,
    );
    assert_exit!(out, 1);
    let report = quick_junit::Report::deserialize_from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JUnit ({e}):\n{}", out.stdout));
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "kpconform printf");
    assert_eq!((suite.tests, suite.failures, suite.errors), (2, 2, 0));
    assert!(out.stderr.contains("  broken       2\n"), "{}", out.stderr);
}

#[test]
fn setup_problems_exit_2() {
    let empty = TempDir::new("empty");
    let out = kpconform(&["run", "--reference", "--scenarios", empty.str()], None);
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("no scenarios found in"),
        "{}",
        out.stderr
    );

    let out = kpconform(
        &[
            "run",
            "--reference",
            "--scenarios",
            "/nonexistent/scenarios",
        ],
        None,
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("reading scenarios from /nonexistent/scenarios"),
        "{}",
        out.stderr
    );

    let out = kpconform(
        &["run", "--reference", "--filter", "no-such-scenario"],
        None,
    );
    assert_exit!(out, 2);

    let out = kpconform(&["run", "--rules-dir", "/nonexistent/rules"], None);
    assert_exit!(out, 2);

    let out = kpconform(&["run", "--generator", "'unterminated"], None);
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("missing closing quote"),
        "{}",
        out.stderr
    );

    // Usage errors: no generator, or two.
    assert_exit!(kpconform(&["run"], None), 2);
    assert_exit!(
        kpconform(&["run", "--reference", "--generator", "cat"], None),
        2
    );
}

#[test]
fn a_scenario_that_does_not_load_is_reported_and_exits_2() {
    let dir = TempDir::new("corpus");
    std::fs::create_dir_all(dir.path().join("clusterip")).unwrap();
    std::fs::copy(
        root().join("golden/scenarios/clusterip/one-endpoint.yaml"),
        dir.path().join("clusterip/one-endpoint.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clusterip/typo.yaml"),
        "cluster:\n  nodse: []\n",
    )
    .unwrap();
    let out = kpconform(&["run", "--reference", "--scenarios", dir.str()], None);
    assert_exit!(out, 2);
    assert!(
        out.stdout
            .contains("error: scenario clusterip/typo does not load"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("typo.yaml:2:3:"), "{}", out.stdout);
    assert!(out.stdout.contains("  passed       1\n"), "{}", out.stdout);
    assert!(out.stdout.contains("  error        1\n"), "{}", out.stdout);
}

#[test]
fn a_rules_dir_skips_nodes_with_neither_rules_nor_flows_but_not_nodes_with_flows() {
    // clusterip/one-endpoint with a second node that has no flows.
    let scenarios = TempDir::new("rules-dir-nodes-scenarios");
    let text = std::fs::read_to_string(root().join("golden/scenarios/clusterip/one-endpoint.yaml"))
        .unwrap()
        .replacen(
            "    - name: node-a\n",
            "    - name: node-b\n      addresses: [192.168.0.11]\n    - name: node-a\n",
            1,
        );
    assert!(text.contains("name: node-b"), "{text}");
    std::fs::create_dir_all(scenarios.path().join("clusterip")).unwrap();
    std::fs::write(scenarios.path().join("clusterip/one-endpoint.yaml"), &text).unwrap();
    let rules = TempDir::new("rules-dir-nodes-rules");
    std::fs::create_dir_all(rules.path().join("clusterip/one-endpoint")).unwrap();
    std::fs::copy(
        recordings().join("outputs/clusterip-1-endpoint.rules"),
        rules.path().join("clusterip/one-endpoint/node-a.rules"),
    )
    .unwrap();
    let run = |text: &str| {
        std::fs::write(scenarios.path().join("clusterip/one-endpoint.yaml"), text).unwrap();
        kpconform(
            &[
                "run",
                "--rules-dir",
                rules.str(),
                "--scenarios",
                scenarios.str(),
            ],
            None,
        )
    };
    let out = run(&text);
    assert_exit!(out, 0);
    assert!(
        out.stderr
            .contains("1 case(s) skipped: their node has no rules"),
        "{}",
        out.stderr
    );
    // A flow on node-b makes node-b a case again, and its missing rules an error.
    let with_flow = text.replacen("    node: node-a\n", "    node: node-b\n", 1);
    let out = run(&with_flow);
    assert_exit!(out, 1);
    assert!(
        out.stdout.contains("clusterip/one-endpoint@node-b"),
        "{}",
        out.stdout
    );
}
