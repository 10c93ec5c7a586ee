//! `kpconform run`'s reports checked by the tools that read them: the JSON
//! document against its schema (`docs/schema/run-report.schema.json`, with
//! the `jsonschema` crate), the JUnit XML against the Jenkins schema
//! (`docs/schema/junit-10.xsd`, with `xmllint`), the HTML page rendered by
//! headless Chromium; `--quiet`; and no progress line where stderr is not
//! a terminal.
//!
//! `xmllint` (Debian `libxml2-utils`) and `chromium` are installed by
//! `.ci/run`. Without them these tests fail, saying what to install,
//! unless `KPCONFORM_REPORT_TESTS=skip` says to skip them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    assert_exit, chromium, have, kpconform, recordings, root, run_limited, screenshot_colours,
    Output, TempDir,
};

/// The case the planted fault breaks, and the recording it is made from.
const CASE: &str = "nodeport/etp-local-two-local-one-remote@node-a";
const RECORDING: &str = "nodeport-etp-local-2-local-1-remote";

/// The recording's rule that sends half of the external traffic to the
/// first local endpoint, and the fault planted in it: a quarter instead.
const RULE: &str = "-A KUBE-SVL-KKDGWRPDK6Z5NCHS -m comment --comment \"default/api:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-4LXD63IHTXJHBTAZ";

/// A `run --rules-dir` directory holding the recorded rules of [`CASE`]
/// with the fault planted, and the line it is on.
fn planted() -> (TempDir, u32) {
    let dir = TempDir::new("planted");
    let text = std::fs::read_to_string(
        recordings()
            .join("outputs")
            .join(format!("{RECORDING}.rules")),
    )
    .unwrap();
    let line = text
        .lines()
        .position(|l| l == RULE)
        .expect("the recording has the rule") as u32
        + 1;
    let broken = text.replace(RULE, &RULE.replace("0.50000000000", "0.25000000000"));
    let target = dir
        .path()
        .join("nodeport/etp-local-two-local-one-remote/node-a.rules");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, broken).unwrap();
    (dir, line)
}

fn run_planted(dir: &TempDir, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--rules-dir", dir.str(), "--filter", CASE];
    args.extend_from_slice(extra);
    kpconform(&args, None)
}

fn parse(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// The run report's schema, checked against JSON Schema 2020-12 itself.
fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/schema/run-report.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::meta::validate(&schema).expect("a valid JSON Schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, document: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_json_report_of_a_planted_fault_matches_the_schema_and_says_where() {
    let (dir, line) = planted();
    let out = run_planted(&dir, &["--format", "json"]);
    assert_exit!(out, 1);
    let report = parse(&out);
    assert_valid(&schema(), &report);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["$schema"], "urn:kpconform:schema:run-report:1");
    let case = &report["cases"][0];
    assert_eq!(case["name"], CASE);
    assert_eq!(case["status"], "broken");
    let flows = case["flow_results"].as_array().unwrap();
    assert_eq!(flows.len(), case["flows"].as_u64().unwrap() as usize);
    let failing: Vec<&Value> = flows.iter().filter(|f| f["passed"] == false).collect();
    assert_eq!(
        failing.len(),
        case["failed_flows"].as_u64().unwrap() as usize
    );
    // The external client's flow: expected half and half over the two
    // local endpoints, got a quarter and three quarters.
    let flow = failing
        .iter()
        .find(|f| {
            f["expected"]["endpoints"]
                .as_array()
                .is_some_and(|e| e.len() == 2)
        })
        .unwrap_or_else(|| panic!("a failing two-endpoint flow: {}", out.stdout));
    let expected = &flow["expected"]["endpoints"];
    assert_eq!(expected[0]["destination"], "10.64.0.5:8080");
    assert_eq!(expected[0]["probability"], 0.5);
    let share = |dest: &str| {
        flow["actual"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["destination"] == dest && s["verdict"] == "accept")
            .map(|s| s["probability"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("{dest} in {flow}"))
    };
    // The kernel's 0.25 is round(0.25 * 2^31) / 2^31: exactly a quarter.
    assert_eq!(share("10.64.0.5:8080"), 0.25);
    assert_eq!(share("10.64.0.77:8080"), 0.75);
    assert!(flow["failures"][0]
        .as_str()
        .unwrap()
        .starts_with("endpoint 10.64.0.5:8080: expected p=0.5, got p=0.25"));
    // The path to the first endpoint names the planted rule: file, line, text.
    let rules: Vec<&Value> = flow["paths"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["rules"].as_array().unwrap())
        .filter(|r| r["line"] == line)
        .collect();
    assert!(!rules.is_empty(), "line {line} on a path: {flow}");
    assert!(
        rules[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("nodeport/etp-local-two-local-one-remote/node-a.rules"),
        "{}",
        rules[0]
    );
    assert_eq!(
        rules[0]["text"],
        RULE.replace("0.50000000000", "0.25000000000")
    );
    assert_eq!(rules[0]["chain"], "KUBE-SVL-KKDGWRPDK6Z5NCHS");
    // Passing flows carry their distributions too, without walks.
    let passing = flows
        .iter()
        .find(|f| f["passed"] == true)
        .expect("a passing flow");
    assert!(passing["actual"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(passing["paths"].as_array().map(Vec::len), Some(0));
}

#[test]
fn invariant_violations_carry_their_ids_and_lines() {
    // A rule after KUBE-SERVICES' KUBE-NODEPORTS jump, which must be last.
    let (dir, _) = planted();
    let file = dir
        .path()
        .join("nodeport/etp-local-two-local-one-remote/node-a.rules");
    let text = std::fs::read_to_string(&file).unwrap();
    let jump = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
    let late = "-A KUBE-SERVICES -d 10.96.99.99/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ\n";
    assert!(text.contains(jump));
    std::fs::write(&file, text.replace(jump, &format!("{jump}{late}"))).unwrap();
    let out = run_planted(&dir, &["--format", "json"]);
    assert_exit!(out, 1);
    let report = parse(&out);
    assert_valid(&schema(), &report);
    let violations = report["cases"][0]["invariant_violations"]
        .as_array()
        .unwrap();
    assert_eq!(
        violations.len(),
        report["cases"][0]["violations"].as_u64().unwrap() as usize
    );
    let v = violations
        .iter()
        .find(|v| v["text"] == late.trim_end() || v["text"] == jump.trim_end())
        .unwrap_or_else(|| panic!("a violation at the late rule or the jump: {violations:?}"));
    assert!(
        v["invariant"].as_str().is_some_and(|id| !id.is_empty()),
        "{v}"
    );
    assert_eq!(v["family"], "IPv4");
    assert_eq!(v["table"], "nat");
    // The id is one `kpconform lint --list` prints.
    let list = kpconform(&["lint", "--list"], None);
    assert!(
        list.stdout.contains(v["invariant"].as_str().unwrap()),
        "{}",
        list.stdout
    );
}

#[test]
fn the_json_report_of_the_reference_matches_the_schema() {
    // Single- and dual-stack cases, sticky flows, drops and rejects.
    let out = kpconform(
        &[
            "run",
            "--reference",
            "--filter",
            "nodeport/",
            "--filter",
            "dualstack/",
            "--filter",
            "affinity/",
            "--format",
            "json",
        ],
        None,
    );
    assert_exit!(out, 0);
    let report = parse(&out);
    assert_valid(&schema(), &report);
    let cases = report["cases"].as_array().unwrap();
    assert!(
        cases.iter().any(|c| c.get("families").is_some()),
        "a dual-stack case"
    );
    let flows: Vec<&Value> = cases
        .iter()
        .flat_map(|c| c["flow_results"].as_array().unwrap())
        .collect();
    assert!(flows.len() >= cases.len(), "{}", flows.len());
    assert!(flows.iter().all(|f| f["passed"] == true));
    assert!(flows.iter().any(|f| f["family"] == "IPv6"));
    assert!(flows.iter().any(|f| f["expected"]["sticky"] == true));
}

#[test]
fn the_schema_rejects_documents_that_lack_or_twist_a_field() {
    let (dir, _) = planted();
    let out = run_planted(&dir, &["--format", "json"]);
    let report = parse(&out);
    let validator = schema();
    assert_valid(&validator, &report);
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut doc = report.clone();
        edit(&mut doc);
        doc
    };
    let remove = |path: &[&str], key: &'static str| {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        move |doc: &mut Value| {
            let mut at = doc;
            for p in &path {
                at = match p.parse::<usize>() {
                    Ok(i) => &mut at[i],
                    Err(_) => &mut at[p.as_str()],
                };
            }
            assert!(at.as_object_mut().unwrap().remove(key).is_some(), "{key}");
        }
    };
    let failing = report["cases"][0]["flow_results"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["passed"] == false)
        .unwrap()
        .to_string();
    let invalid: Vec<(&str, Value)> = vec![
        ("no schema_version", broken(&remove(&[], "schema_version"))),
        ("no summary.total", broken(&remove(&["summary"], "total"))),
        (
            "a flow without expected",
            broken(&remove(
                &["cases", "0", "flow_results", &failing],
                "expected",
            )),
        ),
        (
            "a path rule without line",
            broken(&remove(
                &[
                    "cases",
                    "0",
                    "flow_results",
                    &failing,
                    "paths",
                    "0",
                    "rules",
                    "0",
                ],
                "line",
            )),
        ),
        (
            "an unknown status",
            broken(&|d: &mut Value| d["cases"][0]["status"] = "fine".into()),
        ),
        (
            "a failed flow with no failure",
            broken(&|d: &mut Value| {
                d["cases"][0]["flow_results"][failing.parse::<usize>().unwrap()]["failures"] =
                    Value::Array(Vec::new())
            }),
        ),
        (
            "a probability above 1",
            broken(&|d: &mut Value| {
                d["cases"][0]["flow_results"][0]["actual"][0]["probability"] = 1.5.into()
            }),
        ),
        (
            "a key the schema does not know",
            broken(&|d: &mut Value| d["cases"][0]["surprise"] = true.into()),
        ),
    ];
    for (what, doc) in invalid {
        assert!(!validator.is_valid(&doc), "the schema accepts {what}");
    }
}

fn xmllint(schema: &Path, xml: &Path) -> (bool, String) {
    let (ok, out, err) = run_limited(
        "xmllint",
        &[
            "--noout",
            "--schema",
            schema.to_str().unwrap(),
            xml.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    (ok, format!("{out}{err}"))
}

#[test]
fn the_junit_report_is_valid_for_the_jenkins_schema() {
    if !have("xmllint", "libxml2-utils") {
        return;
    }
    let xsd = root().join("docs/schema/junit-10.xsd");
    let tmp = TempDir::new("junit");
    let (dir, _) = planted();
    // A broken case (a failure), a dual-stack corpus (family properties),
    // and a scenario that does not load plus a generator error (errors).
    let bad_corpus = TempDir::new("junit-corpus");
    std::fs::create_dir_all(bad_corpus.path().join("g")).unwrap();
    std::fs::write(bad_corpus.path().join("g/bad.yaml"), "clutser: 1\n").unwrap();
    std::fs::copy(
        root().join("golden/scenarios/clusterip/one-endpoint.yaml"),
        bad_corpus.path().join("g/one.yaml"),
    )
    .unwrap();
    let runs: Vec<(&str, Output, i32)> = vec![
        ("planted", run_planted(&dir, &["--format", "junit"]), 1),
        (
            "dualstack",
            kpconform(
                &[
                    "run",
                    "--reference",
                    "--filter",
                    "dualstack/",
                    "--format",
                    "junit",
                ],
                None,
            ),
            0,
        ),
        (
            "errors",
            kpconform(
                &[
                    "run",
                    "--generator",
                    "sh -c 'exit 3'",
                    "--scenarios",
                    bad_corpus.str(),
                    "--format",
                    "junit",
                ],
                None,
            ),
            2,
        ),
    ];
    for (name, out, code) in runs {
        assert_exit!(out, code);
        let file = tmp.path().join(format!("{name}.xml"));
        std::fs::write(&file, &out.stdout).unwrap();
        let (ok, said) = xmllint(&xsd, &file);
        assert!(ok, "{name}: {said}\n{}", out.stdout);
        assert!(said.contains("validates"), "{said}");
    }
    // The schema and the tool do reject: a testcase without a name, and a
    // property inside a testcase.
    for (what, xml) in [
        ("nameless", "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase/></testsuite></testsuites>"),
        ("property in a case", "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"c\"><properties><property name=\"a\" value=\"b\"/></properties></testcase></testsuite></testsuites>"),
    ] {
        let file = tmp.path().join("invalid.xml");
        std::fs::write(&file, xml).unwrap();
        let (ok, said) = xmllint(&xsd, &file);
        assert!(!ok, "{what} passes the schema: {said}");
    }
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    if !have("chromium", "chromium") {
        return;
    }
    let (dir, line) = planted();
    let out = run_planted(&dir, &["--format", "html"]);
    assert_exit!(out, 1);
    let tmp = TempDir::new("html");
    let page: PathBuf = tmp.path().join("report.html");
    std::fs::write(&page, &out.stdout).unwrap();
    // Self-contained: nothing to fetch, no script.
    assert!(!out.stdout.contains("<script"), "{}", out.stdout);
    assert!(!out.stdout.contains("src="), "{}", out.stdout);
    assert!(!out.stdout.contains("<link"), "{}", out.stdout);
    let url = format!("file://{}", page.display());

    let distinct = screenshot_colours(&url, tmp.path());
    // Text, bars in two colours and the page: far more than a blank page's one.
    assert!(distinct > 20, "{distinct} distinct colours");

    let (dom, _) = chromium(&["--dump-dom", &url], &tmp.path().join("profile-dom"));
    for text in [
        "kpconform run:",
        CASE,
        "endpoint 10.64.0.5:8080: expected p=0.5, got p=0.25",
        "class=\"bar expected\"",
        "class=\"bar actual\"",
        "KUBE-SVL-KKDGWRPDK6Z5NCHS",
        &format!("node-a.rules:{line}"),
    ] {
        assert!(dom.contains(text), "{text} not in the DOM:\n{dom}");
    }
}

#[test]
fn quiet_keeps_the_failures_and_the_summary_only() {
    let (dir, _) = planted();
    let full = run_planted(&dir, &[]);
    let quiet = run_planted(&dir, &["--quiet"]);
    assert_exit!(full, 1);
    assert_exit!(quiet, 1);
    assert!(full.stdout.contains("paths:"), "{}", full.stdout);
    assert!(!quiet.stdout.contains("paths:"), "{}", quiet.stdout);
    assert!(
        quiet
            .stdout
            .contains("endpoint 10.64.0.5:8080: expected p=0.5, got p=0.25"),
        "{}",
        quiet.stdout
    );
    assert!(
        quiet.stdout.starts_with(&format!("broken: {CASE}")),
        "{}",
        quiet.stdout
    );
    assert!(
        quiet
            .stdout
            .ends_with(&format!("not passed:\n  broken   {CASE}\n")),
        "{}",
        quiet.stdout
    );
    assert!(quiet.stdout.len() * 3 < full.stdout.len());

    let table = "mutant  ";
    let args = ["mutants", "--filter", "clusterip/one-endpoint"];
    let full = kpconform(&args, None);
    let quiet = kpconform(&[&args[..], &["--quiet"]].concat(), None);
    assert_eq!(full.code, quiet.code);
    assert!(full.stdout.contains(table), "{}", full.stdout);
    assert!(!quiet.stdout.contains(table), "{}", quiet.stdout);
    // The rest is the same, but for the time the run took.
    let timeless = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("kpconform mutants:"))
            .map(str::to_string)
            .collect()
    };
    let (full, quiet) = (timeless(&full.stdout), timeless(&quiet.stdout));
    assert!(quiet.len() > 3, "{quiet:?}");
    assert!(full.ends_with(&quiet), "{full:?}\n{quiet:?}");
}

#[test]
fn no_progress_line_unless_stderr_is_a_terminal() {
    // Piped, as in CI logs: the report only.
    let args = ["run", "--reference", "--filter", "clusterip/"];
    let out = kpconform(&args, None);
    assert_exit!(out, 0);
    for mark in ["\r", "\u{1b}[", "kpconform run [", "/"] {
        assert!(!out.stderr.contains(mark), "{mark:?} in {:?}", out.stderr);
    }
    // The other long commands, piped.
    for args in [
        &["mutants", "--filter", "clusterip/one-endpoint"][..],
        &["fuzz", "--reference", "--cases", "3", "--seed", "1"][..],
    ] {
        let out = kpconform(args, None);
        // mutants exits 1 when a mutant goes uncaught; either way it ran.
        assert!(out.code == 0 || out.code == 1, "{args:?}: {}", out.text());
        for mark in ["\r", "\u{1b}[", "kpconform mutants [", "kpconform fuzz ["] {
            assert!(
                !out.stderr.contains(mark),
                "{args:?}: {mark:?} in {:?}",
                out.stderr
            );
        }
    }
    if !have("script", "bsdutils") {
        return;
    }
    // On a terminal (`script` gives it one; stdout goes to /dev/null,
    // stderr to the terminal) the same run draws its line, so the absence
    // above is not for want of trying; `--quiet` keeps it clean there too.
    let on_a_terminal = |extra: &str| {
        let command = format!(
            "cd {} && {} {} {extra} 2>&1 >/dev/null",
            root().display(),
            crate::util::KPCONFORM,
            args.join(" ")
        );
        run_limited(
            "script",
            &["-qec", &command, "/dev/null"],
            Duration::from_secs(120),
        )
        .1
    };
    let typescript = on_a_terminal("");
    assert!(
        typescript.contains("clusterip/one-endpoint@node-a"),
        "{typescript:?}"
    );
    let typescript = on_a_terminal("--quiet");
    assert!(
        !typescript.contains("clusterip/one-endpoint@node-a"),
        "{typescript:?}"
    );
}
