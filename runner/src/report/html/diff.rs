//! The diff report as a page: the summary (both generators, cases compared,
//! behaviour changes, text-only cases, setup errors), then every case with
//! behaviour changes and its findings (the sentence, the service port, the
//! kind of address, the addresses and kinds of client, and the old and new
//! distributions of the finding's example probe as two bar charts side by
//! side), then the text-only cases and the setup errors.

use std::fmt::Write as _;

use kpconform_iptables::Verdict;
use kpconform_suite::behaviour::{Behaviour, Finding, Target};

use super::{bars, counts, escape, pre, Page};

/// What the page shows; `kpconform diff` fills it in.
pub(crate) struct DiffView<'a> {
    /// The generators' names.
    pub(crate) old: &'a str,
    pub(crate) new: &'a str,
    /// The scenarios directory.
    pub(crate) scenarios: &'a str,
    /// Cases (scenario, node, family) compared.
    pub(crate) cases: usize,
    /// The human summary line.
    pub(crate) summary: String,
    /// Each case with behaviour changes, by name (`scenario@node (IPv4)`),
    /// with its findings, in case order.
    pub(crate) changed: Vec<(String, &'a [Finding])>,
    /// The cases whose text changed and behaviour did not, by name.
    pub(crate) text_only: Vec<String>,
    /// Why cases could not be compared.
    pub(crate) errors: &'a [String],
}

/// The diff as one HTML page.
pub(crate) fn render(view: &DiffView<'_>) -> String {
    let mut page = Page::new(&format!("kpconform diff: {} -> {}", view.old, view.new));
    page.push(&summary(view));
    for (name, findings) in &view.changed {
        page.push(&case(view, name, findings));
    }
    if !view.text_only.is_empty() {
        let items: Vec<String> = view
            .text_only
            .iter()
            .map(|n| format!("<li class=\"mono\">{}</li>", escape(n)))
            .collect();
        page.push(&format!(
            "<section id=\"text-only\">\n<h2>text only</h2>\n<p>The normalized rules differ, every probe behaves the same.</p>\n<ul>\n{}\n</ul>\n</section>\n",
            items.join("\n")
        ));
    }
    if !view.errors.is_empty() {
        let mut out = String::from(
            "<section id=\"errors\" class=\"case error\">\n<h2><span class=\"error\">setup errors</span>: cases that could not be compared</h2>\n",
        );
        for e in view.errors {
            out.push_str(&pre(e));
        }
        out.push_str("</section>\n");
        page.push(&out);
    }
    page.finish()
}

fn summary(view: &DiffView<'_>) -> String {
    let mut out = String::from("<section id=\"summary\">\n");
    let _ = writeln!(
        out,
        "<p>old generator <code>{}</code>, new generator <code>{}</code>, scenarios from <code>{}</code></p>",
        escape(view.old),
        escape(view.new),
        escape(view.scenarios)
    );
    let changes: usize = view.changed.iter().map(|(_, f)| f.len()).sum();
    out.push_str(&counts(&[
        ("cases compared", view.cases),
        ("behaviour changes", changes),
        ("changed cases", view.changed.len()),
        ("text only", view.text_only.len()),
        ("setup errors", view.errors.len()),
    ]));
    let _ = writeln!(out, "<p>{}</p>", escape(&view.summary));
    if !view.changed.is_empty() {
        let items: Vec<String> = view
            .changed
            .iter()
            .map(|(name, findings)| {
                format!(
                    "<li><a href=\"#{}\">{}</a>: {} change(s)</li>",
                    escape(&anchor(name)),
                    escape(name),
                    findings.len()
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<h3>behaviour changed</h3>\n<ul>\n{}\n</ul>",
            items.join("\n")
        );
    }
    out.push_str("</section>\n");
    out
}

/// An element id for a case name (ids may not contain spaces).
fn anchor(name: &str) -> String {
    format!("case-{}", name.replace(|c: char| c.is_whitespace(), "_"))
}

fn case(view: &DiffView<'_>, name: &str, findings: &[Finding]) -> String {
    let mut out = format!(
        "<section class=\"case changed\" id=\"{}\">\n<h2><span class=\"changed\">changed</span> {}</h2>\n<p>{} behaviour change(s)</p>\n",
        escape(&anchor(name)),
        escape(name),
        findings.len()
    );
    for f in findings {
        out.push_str(&finding(view, f));
    }
    out.push_str("</section>\n");
    out
}

fn finding(view: &DiffView<'_>, f: &Finding) -> String {
    let sources: Vec<&str> = f.sources.iter().map(|s| s.plural()).collect();
    let mut out = format!(
        "<div class=\"flow finding\">\n<h3>{}, {}</h3>\n<p>{}</p>\n<table>\n",
        escape(&f.service_name()),
        escape(f.entry.describe()),
        escape(&f.sentence())
    );
    for (label, value) in [
        ("addresses", f.destinations.join(", ")),
        ("from", sources.join(", ")),
        ("probes", f.probes.to_string()),
        ("example probe", f.example.to_string()),
    ] {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td class=\"mono\">{}</td></tr>",
            escape(label),
            escape(&value)
        );
    }
    out.push_str("</table>\n<ul>\n");
    for (aspect, phrase) in &f.differences {
        let _ = writeln!(
            out,
            "<li><b>{}</b>: {}</li>",
            escape(aspect.as_str()),
            escape(phrase)
        );
    }
    out.push_str("</ul>\n<div class=\"charts\">\n");
    out.push_str(&bars(&format!("old ({})", view.old), "old", &rows(&f.old)));
    out.push_str(&bars(&format!("new ({})", view.new), "new", &rows(&f.new)));
    out.push_str("</div>\n");
    for (side, b) in [("old", &f.old), ("new", &f.new)] {
        if let Some(e) = &b.error {
            let _ = writeln!(
                out,
                "<p class=\"error\">{side}: cannot be traced: {}</p>",
                escape(e)
            );
        }
    }
    let affinity = if f.old.affinity == f.new.affinity {
        f.old.affinity.describe().to_string()
    } else {
        format!(
            "{} -> {}",
            f.old.affinity.describe(),
            f.new.affinity.describe()
        )
    };
    let _ = writeln!(
        out,
        "<p>session affinity: {}</p>\n</div>",
        escape(&affinity)
    );
    out
}

/// One bar per outcome class: `accept 10.64.1.5:8080, masqueraded`,
/// `drop untranslated`.
fn rows(b: &Behaviour) -> Vec<(String, f64, String)> {
    b.outcomes
        .iter()
        .map(|(k, p)| {
            let verdict = match k.verdict {
                Verdict::Accept => "accept",
                Verdict::Drop => "drop",
                Verdict::Reject => "reject",
            };
            let target = match k.target {
                Target::Untranslated => "untranslated".to_string(),
                Target::To(addr) => addr.to_string(),
            };
            let masq = if k.masquerade { ", masqueraded" } else { "" };
            (
                format!("{verdict} {target}{masq}"),
                p.to_f64(),
                p.to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kpconform_iptables::model::Protocol;
    use kpconform_iptables::{FlowSource, Mass, Packet};
    use kpconform_suite::behaviour::{Affinity, Aspect, OutcomeKey};
    use kpconform_suite::oracle::{EntryKind, ServicePortName, SourceKind};

    use super::*;

    fn behaviour(outcomes: &[(Verdict, Option<&str>, bool, &str)]) -> Behaviour {
        Behaviour {
            outcomes: outcomes
                .iter()
                .map(|(verdict, to, masquerade, p)| {
                    (
                        OutcomeKey {
                            verdict: *verdict,
                            target: to
                                .map_or(Target::Untranslated, |a| Target::To(a.parse().unwrap())),
                            masquerade: *masquerade,
                        },
                        p.parse::<Mass>().unwrap(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            affinity: Affinity::None,
            error: None,
        }
    }

    fn finding() -> Finding {
        Finding {
            service: Some(ServicePortName {
                name: "shop/web:<http>".into(),
                port: 80,
                protocol: Protocol::Tcp,
                node_port: None,
            }),
            entry: EntryKind::ExternalIp,
            sources: vec![SourceKind::External],
            destinations: vec!["198.51.100.7:80/tcp".into()],
            probes: 2,
            example: Packet::new(
                FlowSource::Ip("203.0.113.50".parse().unwrap()),
                "198.51.100.7:80".parse().unwrap(),
                Protocol::Tcp,
            ),
            old: behaviour(&[
                (Verdict::Accept, Some("10.64.1.218:8080"), true, "0.5"),
                (Verdict::Accept, Some("10.64.2.81:8080"), true, "0.5"),
            ]),
            new: behaviour(&[(Verdict::Drop, None, false, "1")]),
            differences: vec![
                (Aspect::Verdict, "were accepted, now dropped".into()),
                (Aspect::Endpoints, "no longer reach <both>".into()),
            ],
        }
    }

    fn view<'a>(findings: &'a [Finding], errors: &'a [String]) -> DiffView<'a> {
        DiffView {
            old: "v1.28 <old>",
            new: "v1.30",
            scenarios: "golden/scenarios",
            cases: 47,
            summary: "1 behaviour change(s) in 1 of 47 case(s)".into(),
            changed: vec![("externalip/etp@node-a (IPv4)".into(), findings)],
            text_only: vec!["clusterip/x@node-a (IPv4)".into()],
            errors,
        }
    }

    #[test]
    fn a_finding_has_its_sentence_and_both_distributions_as_bars() {
        let findings = [finding()];
        let html = render(&view(&findings, &[]));
        assert!(
            html.contains("<title>kpconform diff: v1.28 &lt;old&gt; -&gt; v1.30</title>"),
            "{html}"
        );
        for row in [
            "<tr class=\"cases compared\"><th>cases compared</th><td class=\"count\">47</td></tr>",
            "<tr class=\"behaviour changes\"><th>behaviour changes</th><td class=\"count\">1</td></tr>",
            "<tr class=\"text only\"><th>text only</th><td class=\"count\">1</td></tr>",
            "<tr class=\"setup errors\"><th>setup errors</th><td class=\"count\">0</td></tr>",
        ] {
            assert!(html.contains(row), "{row} not in {html}");
        }
        // Old: two masqueraded halves; new: all dropped.
        assert_eq!(
            html.matches("class=\"bar old\" style=\"width:50.00%\"")
                .count(),
            2,
            "{html}"
        );
        assert_eq!(
            html.matches("class=\"bar new\" style=\"width:100.00%\"")
                .count(),
            1,
            "{html}"
        );
        assert!(
            html.contains("accept 10.64.1.218:8080, masqueraded"),
            "{html}"
        );
        assert!(html.contains("drop untranslated"), "{html}");
        assert!(
            html.contains("from external clients: were accepted, now dropped"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"#case-externalip/etp@node-a_(IPv4)\">"),
            "{html}"
        );
        assert!(
            html.contains("id=\"case-externalip/etp@node-a_(IPv4)\""),
            "{html}"
        );
        assert!(
            html.contains("<li class=\"mono\">clusterip/x@node-a (IPv4)</li>"),
            "{html}"
        );
        assert!(!html.contains("id=\"errors\""), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn everything_from_generators_and_scenarios_is_escaped() {
        let findings = [finding()];
        let errors = ["case@n (IPv4): --old-generator `x`: <boom> & \"quoted\"".to_string()];
        let html = render(&view(&findings, &errors));
        assert!(html.contains("shop/web:&lt;http&gt;"), "{html}");
        assert!(html.contains("no longer reach &lt;both&gt;"), "{html}");
        assert!(
            html.contains("&lt;boom&gt; &amp; &quot;quoted&quot;"),
            "{html}"
        );
        assert!(!html.contains("<http>") && !html.contains("<both>") && !html.contains("<boom>"));
        assert!(html.contains("id=\"errors\""), "{html}");
    }

    #[test]
    fn no_change_is_a_summary_without_case_sections() {
        let html = render(&DiffView {
            changed: Vec::new(),
            text_only: Vec::new(),
            ..view(&[], &[])
        });
        assert_eq!(html.matches("<section").count(), 1, "{html}");
        assert!(html.contains("<td class=\"count\">47</td>"), "{html}");
    }
}
