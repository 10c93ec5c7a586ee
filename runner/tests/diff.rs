//! `kpconform diff` on real generator versions: the recorded kube-proxy
//! v1.28 and v1.30 rules (two known behaviour changes between them),
//! planted changes, pure reorderings and renamings (none), setup errors;
//! the HTML page in headless Chromium and the JUnit XML against the Jenkins
//! schema (both need the tools `runner/tests/reports.rs` names).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{
    assert_exit, chromium, have, kpconform, root, run_limited, screenshot_colours, Output, TempDir,
};

/// A recorded-rules tree of `folder` (a folder of golden/recordings),
/// made by `kpconform corpus --rules-dir`, under `dir/name`.
fn tree(dir: &TempDir, name: &str, folder: &str) -> String {
    let recordings = kpconform_golden::recordings();
    let target = dir.path().join(name);
    let out = kpconform(
        &[
            "corpus",
            "--rules-dir",
            target.to_str().unwrap(),
            "--from-recordings",
            recordings.join(folder).to_str().unwrap(),
            "--inputs",
            recordings.join("kube-proxy-v1.30").to_str().unwrap(),
        ],
        None,
    );
    assert_exit!(out, 0);
    target.to_str().unwrap().to_string()
}

fn diff(old: &[&str], new: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["diff"];
    args.extend(old);
    args.extend(new);
    args.extend(["--filter", "recorded:"]);
    args.extend(extra);
    kpconform(&args, None)
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.stdout))
}

/// The changes of a JSON report as (scenario, sorted aspects, service name).
fn changes(report: &Value) -> Vec<(String, Vec<String>, String)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let aspects = c["aspects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            let service = c["service"]["name"].as_str().unwrap_or("").to_string();
            (
                c["scenario"].as_str().unwrap().to_string(),
                aspects,
                service,
            )
        })
        .collect()
}

fn scenarios_changed(report: &Value) -> BTreeSet<String> {
    changes(report).into_iter().map(|(s, _, _)| s).collect()
}

/// Validates a report against docs/schema/diff.schema.json.
fn assert_valid(report: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schema/diff.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

#[test]
fn v1_28_to_v1_30_reports_exactly_the_two_known_changes() {
    let dir = TempDir::new("diff-releases");
    let v128 = tree(&dir, "v1.28", "kube-proxy-v1.28");
    let v130 = tree(&dir, "v1.30", "kube-proxy-v1.30");
    let out = diff(
        &["--old-rules-dir", &v128],
        &["--new-rules-dir", &v130],
        &["--format", "json"],
    );
    assert_exit!(out, 1);
    let report = json(&out);
    assert_valid(&report);
    assert_eq!(
        scenarios_changed(&report),
        BTreeSet::from([
            "externalip/etp-local-no-local-endpoint".to_string(),
            "loadbalancer/ipmode-proxy".to_string(),
        ])
    );
    let all = changes(&report);
    // externalTrafficPolicy: Local on an external IP: external clients
    // were spread over the endpoints, now dropped; pods no longer
    // masqueraded.
    let external: Vec<_> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["scenario"] == "externalip/etp-local-no-local-endpoint")
        .collect();
    assert!(external
        .iter()
        .all(|c| c["entry"] == "external-ip" && c["service"]["name"] == "shop/web:http"));
    let from_outside = external
        .iter()
        .find(|c| c["sources"] == serde_json::json!(["external"]))
        .expect("a change for external clients");
    assert_eq!(
        from_outside["aspects"],
        serde_json::json!(["verdict", "endpoints"])
    );
    assert_eq!(from_outside["new"]["outcomes"][0]["verdict"], "drop");
    assert_eq!(from_outside["old"]["outcomes"].as_array().unwrap().len(), 2);
    let from_pods = external
        .iter()
        .find(|c| c["sources"] == serde_json::json!(["pod"]))
        .expect("a change for pods");
    assert_eq!(from_pods["aspects"], serde_json::json!(["masquerade"]));
    // Both endpoints, as hairpin clients, are no longer masqueraded to the
    // other one: one finding for the two of them, worded relative to each.
    let hairpin = external
        .iter()
        .find(|c| c["sources"] == serde_json::json!(["endpoint"]))
        .expect("a change for hairpin clients");
    assert_eq!(hairpin["aspects"], serde_json::json!(["masquerade"]));
    assert_eq!(hairpin["probes"], 2);
    assert!(
        hairpin["sentence"].as_str().unwrap().ends_with(
            "from the service's own endpoints (hairpin): are no longer masqueraded when they \
             reach another endpoint"
        ),
        "{hairpin:#}"
    );
    // Exactly those three kinds of client, once each.
    assert_eq!(external.len(), 3, "{external:#?}");
    // ipMode: Proxy: the LB IP was DNATed to the endpoints, now left alone.
    let ipmode: Vec<_> = all
        .iter()
        .filter(|(s, _, _)| s == "loadbalancer/ipmode-proxy")
        .collect();
    assert_eq!(ipmode.len(), 1, "{all:?}");
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(report["summary"]["changes"], 4);
    assert!(ipmode[0].1.contains(&"endpoints".to_string()));
    let sentence = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["scenario"] == "loadbalancer/ipmode-proxy")
        .unwrap()["sentence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sentence.contains("203.0.113.10:80/tcp") && sentence.contains("untranslated"),
        "{sentence}"
    );
    assert_eq!(report["text_only"], serde_json::json!([]));

    // The human format says the same in sentences.
    let human = diff(
        &["--old-rules-dir", &v128],
        &["--new-rules-dir", &v130],
        &[],
    );
    assert_exit!(human, 1);
    assert!(
        human
            .stdout
            .contains("from external clients: were accepted, now dropped"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("behaviour change(s) in 2 of"));
}

/// The two release trees, in `dir`.
fn releases(dir: &TempDir) -> (String, String) {
    (
        tree(dir, "v1.28", "kube-proxy-v1.28"),
        tree(dir, "v1.30", "kube-proxy-v1.30"),
    )
}

#[test]
fn v1_28_to_v1_30_as_an_html_page_renders_in_headless_chromium() {
    if !have("chromium", "chromium") {
        return;
    }
    let dir = TempDir::new("diff-html");
    let (v128, v130) = releases(&dir);
    let args = (["--old-rules-dir", &v128], ["--new-rules-dir", &v130]);
    let out = diff(&args.0, &args.1, &["--format", "html"]);
    assert_exit!(out, 1);
    // The summary line goes to stderr, for a CI log.
    assert!(
        out.stderr.contains("behaviour change(s) in 2 of"),
        "{}",
        out.stderr
    );
    // Self-contained: nothing to fetch, no script.
    for never in ["<script", "src=", "<link"] {
        assert!(!out.stdout.contains(never), "{never}: {}", out.stdout);
    }
    let report = json(&diff(&args.0, &args.1, &["--format", "json"]));
    let page = dir.path().join("diff.html");
    std::fs::write(&page, &out.stdout).unwrap();
    let url = format!("file://{}", page.display());
    let distinct = screenshot_colours(&url, dir.path());
    // Text, bars in two colours and the page: far more than a blank page's one.
    assert!(distinct > 20, "{distinct} distinct colours");

    let (dom, _) = chromium(&["--dump-dom", &url], &dir.path().join("profile-dom"));
    // Exactly the two changed scenarios have a section, each as many
    // findings as the JSON report has changes for it.
    assert_eq!(
        dom.matches("<section class=\"case changed\"").count(),
        2,
        "{dom}"
    );
    for scenario in [
        "externalip/etp-local-no-local-endpoint",
        "loadbalancer/ipmode-proxy",
    ] {
        let n = report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["scenario"] == scenario)
            .count();
        let at = dom
            .find(&format!("id=\"case-{scenario}@"))
            .unwrap_or_else(|| panic!("no section for {scenario}:\n{dom}"));
        let section = &dom[at..];
        let section = &section[..section.find("</section>").unwrap()];
        assert_eq!(
            section.matches("class=\"flow finding\"").count(),
            n,
            "{section}"
        );
        assert!(section.contains("class=\"bar old\""), "{section}");
        assert!(section.contains("class=\"bar new\""), "{section}");
    }
    let changes = report["summary"]["changes"].as_u64().unwrap();
    let cases = report["summary"]["cases"].as_u64().unwrap();
    for text in [
        "kpconform diff: ",
        &format!("<th>behaviour changes</th><td class=\"count\">{changes}</td>"),
        &format!("<th>cases compared</th><td class=\"count\">{cases}</td>"),
        "<th>text only</th><td class=\"count\">0</td>",
        "<th>setup errors</th><td class=\"count\">0</td>",
        "from external clients: were accepted, now dropped",
        // Old: spread over both endpoints, masqueraded; new: dropped.
        "accept 10.64.1.218:8080, masqueraded",
        "drop untranslated",
        "from the service&#39;s own endpoints (hairpin): are no longer masqueraded when they reach another endpoint",
    ] {
        let text = text.replace("&#39;", "'");
        assert!(dom.contains(&text), "{text} not in the DOM:\n{dom}");
    }
}

#[test]
fn v1_28_to_v1_30_as_junit_fails_exactly_the_two_changed_cases() {
    if !have("xmllint", "libxml2-utils") {
        return;
    }
    let dir = TempDir::new("diff-junit");
    let (v128, v130) = releases(&dir);
    let out = diff(
        &["--old-rules-dir", &v128],
        &["--new-rules-dir", &v130],
        &["--format", "junit"],
    );
    assert_exit!(out, 1);
    let file = dir.path().join("diff.xml");
    std::fs::write(&file, &out.stdout).unwrap();
    let xsd = root().join("docs/schema/junit-10.xsd");
    let (ok, said, err) = run_limited(
        "xmllint",
        &[
            "--noout",
            "--schema",
            xsd.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(60),
    );
    assert!(
        ok && err.contains("validates"),
        "{said}{err}\n{}",
        out.stdout
    );
    // One test case per compared case; the failing ones are exactly the
    // two changed scenarios.
    let cases: Vec<&str> = out.stdout.split("<testcase ").skip(1).collect();
    assert!(cases.len() >= 44, "{}", out.stdout);
    let failing: BTreeSet<String> = cases
        .iter()
        .filter(|c| c.contains("<failure"))
        // The class name is the scenario id.
        .map(|c| {
            let class = &c[c.find("classname=\"").unwrap() + 11..];
            class[..class.find('"').unwrap()].to_string()
        })
        .collect();
    assert_eq!(
        failing,
        BTreeSet::from([
            "externalip/etp-local-no-local-endpoint".to_string(),
            "loadbalancer/ipmode-proxy".to_string(),
        ])
    );
    assert!(
        out.stdout.contains("type=\"behaviour-change\""),
        "{}",
        out.stdout
    );
}

#[test]
fn a_version_against_itself_and_the_reference_against_v1_30_change_nothing() {
    let dir = TempDir::new("diff-same");
    let v130 = tree(&dir, "v1.30", "kube-proxy-v1.30");
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &v130],
        &[],
    );
    assert_exit!(out, 0);
    assert!(
        out.stdout.contains("no behaviour change in"),
        "{}",
        out.stdout
    );
    // The reference generator equals kube-proxy v1.30 on every recorded case.
    let out = diff(
        &["--old-reference"],
        &["--new-rules-dir", &v130],
        &["--format", "json"],
    );
    assert_exit!(out, 0);
    let report = json(&out);
    assert_valid(&report);
    assert_eq!(report["changes"], serde_json::json!([]));
    assert!(report["summary"]["cases"].as_u64().unwrap() >= 44);
}

/// Replaces `from` by `to` in one file of a tree, asserting it was there.
fn edit(tree: &str, file: &str, from: &str, to: &str) {
    let path = Path::new(tree).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_planted_change_is_reported_exactly_where_it_is() {
    let dir = TempDir::new("diff-planted");
    let v130 = tree(&dir, "v1.30", "kube-proxy-v1.30");
    let planted = tree(&dir, "planted", "kube-proxy-v1.30");
    // One probability of shop/web:http in clusterip/three-endpoints, and
    // the masquerade jump of external node-port traffic in nodeport/etp-cluster.
    edit(
        &planted,
        "clusterip/three-endpoints/node-a.rules",
        "--probability 0.33333333349",
        "--probability 0.50000000000",
    );
    edit(
        &planted,
        "nodeport/etp-cluster/node-a.rules",
        "-A KUBE-EXT-67NZLRHBNDSAWJRO -m comment --comment \"masquerade traffic for shop/web:http external destinations\" -j KUBE-MARK-MASQ\n",
        "",
    );
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &planted],
        &["--format", "json"],
    );
    assert_exit!(out, 1);
    let report = json(&out);
    assert_valid(&report);
    let all = changes(&report);
    assert_eq!(
        scenarios_changed(&report),
        BTreeSet::from([
            "clusterip/three-endpoints".to_string(),
            "nodeport/etp-cluster".to_string()
        ])
    );
    for (scenario, aspects, service) in &all {
        assert_eq!(service, "shop/web:http", "{all:?}");
        let want = if scenario == "clusterip/three-endpoints" {
            "endpoints"
        } else {
            "masquerade"
        };
        assert_eq!(aspects, &vec![want.to_string()], "{all:?}");
    }
    let probability = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["scenario"] == "clusterip/three-endpoints")
        .unwrap();
    assert!(
        probability["sentence"]
            .as_str()
            .unwrap()
            .contains("10.64.0.218:3000 (p 0.333333333489 -> 0.5)"),
        "{probability:#}"
    );
    let masquerade = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["scenario"] == "nodeport/etp-cluster"
                && c["sources"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from("external"))
        })
        .expect("a change for external clients");
    assert_eq!(masquerade["entry"], "node-port");
    assert!(
        masquerade["sentence"]
            .as_str()
            .unwrap()
            .contains("are no longer masqueraded to 10.64.0.218:8080"),
        "{masquerade:#}"
    );
}

/// Every `KUBE-SVC-`, `KUBE-SEP-`, `KUBE-EXT-`, `KUBE-FW-`, `KUBE-SVL-`
/// hash in `text` reversed: a consistent renaming of every chain.
fn rename_hashes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = [
        "KUBE-SVC-",
        "KUBE-SEP-",
        "KUBE-EXT-",
        "KUBE-FW-",
        "KUBE-SVL-",
    ]
    .iter()
    .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
    .min()
    {
        let (i, len) = at;
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        out.extend(rest[..end].chars().rev());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The `-A KUBE-SERVICES` dispatch lines of each table in reverse order,
/// the jump to KUBE-NODEPORTS kept last.
fn reverse_dispatch(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut dispatch: Vec<&str> = Vec::new();
    let mut nodeports: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with("-A KUBE-SERVICES ") {
            if line.contains("-j KUBE-NODEPORTS") {
                nodeports = Some(line);
            } else {
                dispatch.push(line);
            }
            continue;
        }
        if line == "COMMIT" {
            out.extend(dispatch.drain(..).rev().map(String::from));
            out.extend(nodeports.take().map(String::from));
        }
        out.push(line.to_string());
    }
    out.join("\n") + "\n"
}

fn rewrite_tree(dir: &Path, f: &dyn Fn(&str) -> String) -> usize {
    let mut changed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            changed += rewrite_tree(&path, f);
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            let new = f(&text);
            if new != text {
                changed += 1;
            }
            std::fs::write(&path, new).unwrap();
        }
    }
    changed
}

#[test]
fn reordered_dispatch_and_renamed_chains_are_no_behaviour_change() {
    let dir = TempDir::new("diff-renamed");
    let v130 = tree(&dir, "v1.30", "kube-proxy-v1.30");
    let reordered = tree(&dir, "reordered", "kube-proxy-v1.30");
    let changed = rewrite_tree(Path::new(&reordered), &reverse_dispatch);
    assert!(changed >= 10, "only {changed} files reordered");
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &reordered],
        &["--format", "json"],
    );
    assert_exit!(out, 0);
    let report = json(&out);
    // KUBE-SERVICES is order-free: normalization sorts it, so not even the
    // text changed.
    assert_eq!(report["summary"]["text_only"], 0, "{report:#}");

    let renamed = tree(&dir, "renamed", "kube-proxy-v1.30");
    let changed = rewrite_tree(Path::new(&renamed), &|t| {
        reverse_dispatch(&rename_hashes(t))
    });
    assert!(changed >= 40, "only {changed} files renamed");
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &renamed],
        &["--format", "json"],
    );
    assert_exit!(out, 0);
    let report = json(&out);
    assert_valid(&report);
    assert_eq!(report["changes"], serde_json::json!([]));
    // The names did change: text only, listed apart.
    let text_only = report["summary"]["text_only"].as_u64().unwrap();
    assert!(text_only >= 40, "{report:#}");
    let human = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &renamed],
        &[],
    );
    assert_exit!(human, 0);
    assert!(human.stdout.contains("text only"), "{}", human.stdout);
    assert!(human
        .stdout
        .contains("clusterip/three-endpoints@node-a (IPv4)"));
    let quiet = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &renamed],
        &["--quiet"],
    );
    assert_exit!(quiet, 0);
    assert!(!quiet.stdout.contains("clusterip/three-endpoints@node-a"));
    assert!(quiet.stdout.contains("case(s) changed in text only"));
}

#[test]
fn setup_errors_exit_2_with_what_went_wrong() {
    let dir = TempDir::new("diff-setup");
    let v130 = tree(&dir, "v1.30", "kube-proxy-v1.30");
    let broken = tree(&dir, "broken", "kube-proxy-v1.30");

    // Rules on one side only.
    let missing = Path::new(&broken).join("clusterip/two-endpoints/node-a.rules");
    std::fs::remove_file(&missing).unwrap();
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &broken],
        &[],
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("clusterip/two-endpoints@node-a (IPv4)")
            && out.stderr.contains("--old-rules-dir has rules for it")
            && out.stderr.contains(missing.to_str().unwrap()),
        "{}",
        out.stderr
    );

    // Rules that do not parse: the file, line and column.
    std::fs::copy(
        Path::new(&v130).join("clusterip/two-endpoints/node-a.rules"),
        &missing,
    )
    .unwrap();
    edit(
        &broken,
        "clusterip/three-endpoints/node-a.rules",
        "-j KUBE-MARK-MASQ",
        "-j",
    );
    let out = diff(
        &["--old-rules-dir", &v130],
        &["--new-rules-dir", &broken],
        &[],
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("clusterip/three-endpoints@node-a (IPv4) (new side)")
            && out
                .stderr
                .contains("broken/clusterip/three-endpoints/node-a.rules:"),
        "{}",
        out.stderr
    );

    // A generator that fails on every case: each case named, with its stderr.
    let out = diff(
        &["--old-reference"],
        &["--new-generator", "sh -c 'echo no rules today >&2; exit 3'"],
        &["--filter", "clusterip/three-endpoints", "--format", "json"],
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("clusterip/three-endpoints@node-a (IPv4): --new-generator `sh`")
            && out.stderr.contains("no rules today"),
        "{}",
        out.stderr
    );
    let report = json(&out);
    assert_valid(&report);
    assert!(report["summary"]["errors"].as_u64().unwrap() >= 1);

    // A generator that cannot run, a directory that is not there.
    let out = diff(
        &["--old-generator", "/nonexistent/proxy --dump"],
        &["--new-reference"],
        &[],
    );
    assert_exit!(out, 2);
    assert!(out.stderr.contains("--old-generator"), "{}", out.stderr);
    let out = diff(
        &["--old-reference"],
        &["--new-rules-dir", "/nonexistent/rules"],
        &[],
    );
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("--new-rules-dir: /nonexistent/rules is not a directory"),
        "{}",
        out.stderr
    );
    // Each side is required.
    let out = kpconform(&["diff", "--old-reference"], None);
    assert_exit!(out, 2);
}
