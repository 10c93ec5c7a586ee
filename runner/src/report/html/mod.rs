//! `--format html`: one self-contained page (inline CSS, no script, nothing
//! fetched). This module has the page and its building blocks, each
//! escaping what it is given, so that any report is assembled from them
//! without writing markup by hand; `run` lays out the run report, `diff`
//! the behaviour changes between two generators.

use std::fmt::Write as _;

mod diff;
mod run;

pub(crate) use diff::{render as render_diff, DiffView};
pub(crate) use run::render;

/// Text made safe for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The styles of every page: readable without a script or a web font,
/// bars drawn with CSS widths.
const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .4em; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .3em 0; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
.count { text-align: right; font-variant-numeric: tabular-nums; }
.passed { color: #1a7f37; } .broken, .error { color: #c62828; } .changed { color: #9a6700; }
section.case { color: #1b1b1b; border-left: 4px solid #c62828; padding-left: .8em; margin: 1em 0; }
section.case.changed { border-color: #9a6700; }
.flow { margin: .6em 0 1em; }
.charts { display: flex; gap: 2em; flex-wrap: wrap; }
.chart td.label { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
.track { width: 220px; background: #eee; height: 12px; }
.bar { height: 12px; }
.bar.expected, .bar.old { background: #1f6feb; } .bar.actual, .bar.new { background: #e36209; }
.rules td { font-family: ui-monospace, monospace; font-size: 12px; }
.walk { color: #555; }
"#;

/// A page under construction: a title, then sections in order.
pub(crate) struct Page {
    title: String,
    body: String,
}

impl Page {
    pub(crate) fn new(title: &str) -> Page {
        Page {
            title: title.to_string(),
            body: String::new(),
        }
    }

    /// Appends markup built with this module's helpers (already escaped).
    pub(crate) fn push(&mut self, markup: &str) {
        self.body.push_str(markup);
    }

    /// The whole document.
    pub(crate) fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n{}</body>\n</html>\n",
            escape(&self.title),
            escape(&self.title),
            self.body
        )
    }
}

/// A table of label and count rows, each row of class `class`.
pub(crate) fn counts(rows: &[(&str, usize)]) -> String {
    let mut out = String::from("<table class=\"summary\">\n");
    for (label, n) in rows {
        let _ = writeln!(
            out,
            "<tr class=\"{0}\"><th>{0}</th><td class=\"count\">{n}</td></tr>",
            escape(label)
        );
    }
    out.push_str("</table>\n");
    out
}

/// A small horizontal bar chart titled `title`: one row per (label,
/// probability, its text), the bar's width the probability.
pub(crate) fn bars(title: &str, class: &str, rows: &[(String, f64, String)]) -> String {
    let mut out = format!(
        "<table class=\"chart {}\">\n<tr><th colspan=\"3\">{}</th></tr>\n",
        escape(class),
        escape(title)
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"3\">(nothing)</td></tr>\n");
    }
    for (label, p, text) in rows {
        // Clamped: a width is a share of the track, whatever the number.
        let width = if p.is_finite() {
            (p * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"label\">{}</td><td><div class=\"track\"><div class=\"bar {}\" style=\"width:{width:.2}%\"></div></div></td><td class=\"mono\">p={}</td></tr>",
            escape(label),
            escape(class),
            escape(text)
        );
    }
    out.push_str("</table>\n");
    out
}

/// Preformatted text.
pub(crate) fn pre(text: &str) -> String {
    format!("<pre>{}</pre>\n", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn bars_are_as_wide_as_their_probability_and_clamped() {
        let html = bars(
            "actual",
            "actual",
            &[
                ("accept <a>".into(), 0.25, "0.25".into()),
                ("drop".into(), 7.0, "7".into()),
                ("x".into(), f64::NAN, "?".into()),
            ],
        );
        assert!(html.contains("width:25.00%"), "{html}");
        assert!(html.contains("width:100.00%"), "{html}");
        assert!(html.contains("width:0.00%"), "{html}");
        assert!(html.contains("accept &lt;a&gt;"), "{html}");
    }

    #[test]
    fn a_page_is_one_document_with_its_styles_inline() {
        let mut page = Page::new("t <1>");
        page.push(&pre("a < b"));
        let html = page.finish();
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<title>t &lt;1&gt;</title>"), "{html}");
        assert!(html.contains("<pre>a &lt; b</pre>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("http"), "nothing is fetched: {html}");
    }
}
