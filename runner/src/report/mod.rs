//! What `kpconform run` found, and its renderings: human (details and a
//! summary table), JSON and JUnit XML (for CI), and one HTML page; and the
//! JUnit XML and HTML renderings of `kpconform diff`.

use std::time::Duration;

use kpconform_harness::{Evaluation, Status};
use kpconform_suite::scenario::ScenarioError;

mod detail;
mod html;
mod human;
mod json;
mod junit;
mod junit_diff;
mod rerun;

pub(crate) use html::render as html;
pub(crate) use html::{render_diff as diff_html, DiffView};
pub(crate) use human::{progress_line, render as human, render_quiet as human_quiet, summary};
pub(crate) use json::render as json;
pub(crate) use junit::render as junit;
pub(crate) use junit_diff::{render as diff_junit, DiffCase};
pub(crate) use rerun::Rerun;

/// One run of a generator over a corpus.
pub(crate) struct RunReport {
    /// The generator's name.
    pub(crate) generator: String,
    /// Where the scenarios came from.
    pub(crate) scenarios: String,
    /// Where snapshots were compared, if anywhere.
    pub(crate) snapshots: Option<String>,
    /// Every evaluated (scenario, node), in corpus order.
    pub(crate) evaluations: Vec<Evaluation>,
    /// Scenario files that did not load: id and error.
    pub(crate) load_errors: Vec<(String, ScenarioError)>,
    /// Wall time of the whole run.
    pub(crate) elapsed: Duration,
    /// How to rerun one case, printed under each failure; `None` in reports
    /// that are not one `kpconform run`.
    pub(crate) rerun: Option<Rerun>,
}

impl RunReport {
    /// How many cases ended in `status`; a scenario file that did not load
    /// counts as an error.
    pub(crate) fn count(&self, status: Status) -> usize {
        let evaluated = self
            .evaluations
            .iter()
            .filter(|e| e.status() == status)
            .count();
        match status {
            Status::Error => evaluated + self.load_errors.len(),
            _ => evaluated,
        }
    }

    /// Every case, evaluated or not.
    pub(crate) fn total(&self) -> usize {
        self.evaluations.len() + self.load_errors.len()
    }

    /// Whether every case passed.
    pub(crate) fn passed(&self) -> bool {
        self.count(Status::Passed) == self.total()
    }

    /// Flow counts over every case's kernel results; `None` without
    /// kernel mode.
    pub(crate) fn kernel_totals(&self) -> Option<KernelTotals> {
        let mut totals: Option<KernelTotals> = None;
        for k in self.evaluations.iter().filter_map(|e| e.kernel.as_ref()) {
            let t = totals.get_or_insert_with(|| KernelTotals {
                backend: k.backend.to_string(),
                ..KernelTotals::default()
            });
            t.cases += 1;
            t.flows += k.flows.len();
            t.passed += k.flows.iter().filter(|f| f.passed()).count();
            t.failed += k.flows.iter().filter(|f| f.failed()).count();
            t.skipped += k.skipped();
            t.tests += k.tests();
            t.connections += k
                .flows
                .iter()
                .filter_map(|f| f.observation.as_ref())
                .map(|o| u64::from(o.connections))
                .sum::<u64>();
        }
        totals
    }
}

/// What kernel mode did over a run.
#[derive(Debug, Default)]
pub(crate) struct KernelTotals {
    pub(crate) backend: String,
    pub(crate) cases: usize,
    pub(crate) flows: usize,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) skipped: usize,
    pub(crate) tests: u32,
    pub(crate) connections: u64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kpconform_harness::evaluate;
    use kpconform_harness::FnGenerator;
    use kpconform_iptables::SourceFile;
    use kpconform_suite::scenario::Scenario;

    const SCENARIO: &str = "
cluster:
  nodes: [{name: node-a, addresses: [192.168.0.10]}]
flows:
- {name: untouched, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp,
   expect: {verdict: accept}}
";

    /// A report with one passing, one broken (does not parse) and one
    /// erroring case, and one scenario that did not load.
    pub(crate) fn sample() -> RunReport {
        let scenario = Scenario::from_source(&SourceFile::new("s.yaml", SCENARIO), "g/s").unwrap();
        let run = |text: &'static str| {
            let generator = FnGenerator::new("gen", move |_| match text {
                "fail" => Err(kpconform_harness::GeneratorError::new(
                    kpconform_harness::GeneratorErrorKind::Failed,
                    "generator `gen` exited with exit status: 1",
                )),
                t => Ok(t.to_string()),
            });
            evaluate(&generator, &scenario, "node-a", None)
        };
        let bad = Scenario::from_source(&SourceFile::new("bad.yaml", "clutser: 1\n"), "g/bad")
            .unwrap_err();
        RunReport {
            generator: "gen".into(),
            scenarios: "golden/scenarios".into(),
            snapshots: None,
            evaluations: vec![
                // Generator output needs both tables to be judged.
                run("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"),
                run("garbage & <xml>\n"),
                run("fail"),
            ],
            load_errors: vec![("g/bad".into(), bad)],
            elapsed: Duration::from_millis(1500),
            rerun: None,
        }
    }

    /// [`sample`] whose passing case also ran in the kernel: one flow
    /// failed (990 of 1000 answered, 10 dropped where the tracer predicts
    /// none), one skipped.
    pub(crate) fn kernel_sample() -> RunReport {
        use kpconform_iptables::model::Family;
        use kpconform_kernel::{Backend, KernelFlow, KernelReport, Observation, Prediction};
        let mut r = sample();
        let at: std::net::SocketAddr = "10.64.0.5:8080".parse().unwrap();
        let observed = KernelFlow {
            name: "pod to service".into(),
            family: Family::Ipv4,
            to: "10.96.0.10:80/tcp".into(),
            skipped: None,
            observation: Some(Observation {
                connections: 1000,
                answered: [(at, 990)].into_iter().collect(),
                dropped: 10,
                ..Observation::default()
            }),
            prediction: Some(Prediction {
                accepted: [(at, 1.0)].into_iter().collect(),
                ..Prediction::default()
            }),
            failures: vec!["endpoint 10.64.0.5:8080: expected 1".into()],
            disagreements: vec!["dropped: the tracer predicts 0".into()],
            unconfirmed: None,
            tests: 0,
        };
        let skipped = KernelFlow {
            name: "from loopback".into(),
            skipped: Some("cannot be sent".into()),
            observation: None,
            prediction: None,
            failures: Vec::new(),
            disagreements: Vec::new(),
            ..observed.clone()
        };
        r.evaluations[0].kernel = Some(KernelReport {
            scenario: "g/s".into(),
            node: "node-a".into(),
            backend: Backend::Nft,
            setup_error: None,
            refused: Vec::new(),
            flows: vec![observed, skipped],
            elapsed: std::time::Duration::from_millis(250),
        });
        r
    }

    const DUAL: &str = "
cluster:
  nodes: [{name: node-a, addresses: [192.168.0.10, fd00:192:168::10]}]
flows:
- {name: v4, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp, expect: {verdict: accept}}
- {name: v6, node: node-a, from: 2001:db8::7, to: '[fd00:10:96::50]:80/tcp', expect: {verdict: accept}}
";

    /// One dual-stack case: IPv4 passes, IPv6 drops what should pass.
    pub(crate) fn dual_stack_sample() -> RunReport {
        let scenario = Scenario::from_source(&SourceFile::new("d.yaml", DUAL), "g/d").unwrap();
        let generator = FnGenerator::new("gen", |input| {
            let forward = match input.node.family {
                kpconform_iptables::model::Family::Ipv4 => "ACCEPT",
                kpconform_iptables::model::Family::Ipv6 => "DROP",
            };
            Ok(format!(
                "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {forward} [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
            ))
        });
        RunReport {
            generator: "gen".into(),
            scenarios: "golden/scenarios".into(),
            snapshots: None,
            evaluations: vec![evaluate(&generator, &scenario, "node-a", None)],
            load_errors: vec![],
            elapsed: Duration::from_millis(10),
            rerun: None,
        }
    }

    #[test]
    fn counts_include_scenarios_that_did_not_load() {
        let r = sample();
        assert_eq!(r.count(Status::Passed), 1);
        assert_eq!(r.count(Status::Broken), 1);
        assert_eq!(r.count(Status::Changed), 0);
        assert_eq!(r.count(Status::Error), 2);
        assert_eq!(r.total(), 4);
        assert!(!r.passed());
    }
}
