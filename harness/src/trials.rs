//! The `cargo test` front end: one libtest-mimic trial per (scenario, node).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use libtest_mimic::{Arguments, Conclusion, Failed, Trial};

use super::corpus::Corpus;
use super::evaluate::{evaluate, Status};
use super::snapshot::Snapshots;
use crate::generator::{Command, Generator};

/// The golden corpus shipped beside this crate (`golden/scenarios/`).
pub const GOLDEN_SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../golden/scenarios");

/// Environment variable naming an external generator command that replaces
/// the in-process one in [`Conformance::from_env`].
pub const GENERATOR_ENV: &str = "KPCONFORM_GENERATOR";

/// Environment variable overriding the external generator's name (its
/// snapshot directory); by default the program's file name.
pub const GENERATOR_NAME_ENV: &str = "KPCONFORM_GENERATOR_NAME";

/// Environment variable setting the external generator's time limit per
/// run, in seconds (default 10).
pub const TIMEOUT_ENV: &str = "KPCONFORM_TIMEOUT";

/// Environment variable turning on kernel mode in [`Conformance::from_env`]:
/// `1` or `nft` (the nf_tables backend), `legacy`; `0` or empty is off.
pub const KERNEL_ENV: &str = "KPCONFORM_KERNEL";

/// A conformance run of one generator over a directory of scenarios, as a
/// `cargo test` harness (`harness = false`): see the [module docs](super).
pub struct Conformance {
    generator: Result<Arc<dyn Generator>, String>,
    scenarios: PathBuf,
    snapshots: Option<PathBuf>,
    /// Kernel mode, or why it was asked for and cannot run.
    kernel: Option<Result<kpconform_kernel::Options, String>>,
}

impl Conformance {
    /// Runs `generator` over the golden corpus, without snapshots.
    pub fn new(generator: impl Generator + 'static) -> Conformance {
        Conformance {
            generator: Ok(Arc::new(generator)),
            scenarios: PathBuf::from(GOLDEN_SCENARIOS),
            snapshots: None,
            kernel: None,
        }
    }

    /// Like [`new`](Conformance::new), but when `KPCONFORM_GENERATOR` is set
    /// (and not empty) its shell-like command line is run instead of
    /// `default`, as an external generator (contract §2), with the time
    /// limit `KPCONFORM_TIMEOUT` (seconds) when that is set.
    pub fn from_env(default: impl Generator + 'static) -> Conformance {
        Conformance::from_vars(default, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Conformance::from_env) with the environment given as a function.
    fn from_vars(
        default: impl Generator + 'static,
        var: impl Fn(&str) -> Option<String>,
    ) -> Conformance {
        let mut conformance = Conformance::new(default);
        conformance.kernel = match var(KERNEL_ENV).as_deref().map(str::trim) {
            None | Some("" | "0") => None,
            Some("1" | "nft") => Some(Ok(kpconform_kernel::Options::default())),
            Some("legacy") => Some(Ok(kpconform_kernel::Options {
                backend: kpconform_kernel::Backend::Legacy,
                ..kpconform_kernel::Options::default()
            })),
            Some(other) => Some(Err(format!(
                "{KERNEL_ENV}={other}: expected 1 or nft, legacy, or 0 to turn kernel mode off"
            ))),
        };
        let Some(command) = var(GENERATOR_ENV).filter(|c| !c.trim().is_empty()) else {
            return conformance;
        };
        let timeout = match var(TIMEOUT_ENV) {
            Some(text) if !text.trim().is_empty() => match parse_timeout(&text) {
                Ok(t) => Some(t),
                Err(e) => {
                    conformance.generator = Err(format!("{TIMEOUT_ENV}: {e}"));
                    return conformance;
                }
            },
            _ => None,
        };
        conformance.generator = Command::parse(&command)
            .map(|c| match var(GENERATOR_NAME_ENV) {
                Some(name) if !name.is_empty() => c.with_name(name),
                _ => c,
            })
            .map(|c| match timeout {
                Some(t) => c.with_timeout(t),
                None => c,
            })
            // A missing program is one failing trial, not one per case.
            .and_then(|c| c.ensure_available().map(|()| c).map_err(|e| e.message))
            .map(|c| Arc::new(c) as Arc<dyn Generator>)
            .map_err(|e| format!("{GENERATOR_ENV}: {e}"));
        conformance
    }

    /// Reads scenarios from `dir` (recursively) instead of the golden corpus.
    pub fn with_scenarios(mut self, dir: impl Into<PathBuf>) -> Conformance {
        self.scenarios = dir.into();
        self
    }

    /// Also sends every flow through the rules loaded into a real kernel
    /// (root only; see `kpconform_kernel`). When the machine cannot, every
    /// run fails with one trial saying what is missing.
    pub fn with_kernel(mut self, options: kpconform_kernel::Options) -> Conformance {
        self.kernel = Some(Ok(options));
        self
    }

    /// Compares every output with its insta snapshot at
    /// `dir/<generator>/<scenario-id>@<node>.snap` (IPv4) or
    /// `dir/<generator>/<scenario-id>@<node>.ipv6.snap` (IPv6).
    pub fn with_snapshots(mut self, dir: impl Into<PathBuf>) -> Conformance {
        self.snapshots = Some(dir.into());
        self
    }

    /// The trials: one per (scenario, node) named `<scenario-id>@<node>`,
    /// one failing trial per scenario file that does not load, and one
    /// failing trial when the corpus or the generator cannot be set up.
    /// Only the scenario files are read here; generating, parsing and
    /// tracing happen when a trial runs.
    pub fn trials(&self) -> Vec<Trial> {
        self.trials_counting(&Arc::new(Counts::default()))
    }

    fn trials_counting(&self, counts: &Arc<Counts>) -> Vec<Trial> {
        let generator = match &self.generator {
            Ok(g) => Arc::clone(g),
            Err(e) => return vec![failing(GENERATOR_ENV, e.clone())],
        };
        let kernel = match &self.kernel {
            None => None,
            Some(Err(e)) => return vec![failing(KERNEL_ENV, e.clone())],
            Some(Ok(options)) => {
                let families = [
                    kpconform_iptables::model::Family::Ipv4,
                    kpconform_iptables::model::Family::Ipv6,
                ];
                if let Err(e) = kpconform_kernel::preflight(options.backend, &families) {
                    return vec![failing(KERNEL_ENV, e.to_string())];
                }
                Some(options.clone())
            }
        };
        let corpus = match Corpus::load(&self.scenarios) {
            Ok(c) => c,
            Err(e) => {
                let mut message = format!(
                    "cannot read scenarios from {}: {e}",
                    self.scenarios.display()
                );
                // The golden corpus sits beside this crate's sources, which
                // a git or path dependency has and a packaged crate does not.
                if self.scenarios == Path::new(GOLDEN_SCENARIOS) {
                    message.push_str(
                        "; the golden corpus comes with a git or path dependency on \
                         kpconform-harness: otherwise point `Conformance::with_scenarios` \
                         at a copy of kpconform's golden/scenarios",
                    );
                }
                return vec![failing("scenarios", message)];
            }
        };
        let snapshots = self.snapshots.clone().map(Snapshots::insta);
        let mut trials: Vec<Trial> = corpus
            .failures()
            .iter()
            .map(|(id, e)| failing(id, e.to_string()))
            .collect();
        for case in corpus.cases() {
            // libtest-mimic filters on `[kind] name`: the tags as the kind
            // make `cargo test -- etp-local` select by tag, as `kpconform
            // run --filter` does, while `--exact <id>@<node>` still works.
            let kind = case.scenario.tags.join(" ");
            let generator = Arc::clone(&generator);
            let snapshots = snapshots.clone();
            let counts = Arc::clone(counts);
            let kernel = kernel.clone();
            let trial = Trial::test(case.name(), move || {
                let mut e = evaluate(&*generator, &case.scenario, &case.node, snapshots.as_ref());
                if let Some(options) = &kernel {
                    e.run_in_kernel(&case.scenario, options);
                }
                let status = e.status();
                counts.add(status);
                match status {
                    Status::Passed => Ok(()),
                    _ => Err(Failed::from(e.render())),
                }
            });
            trials.push(trial.with_kind(kind));
        }
        if trials.is_empty() {
            let message = format!("no scenarios found in {}", self.scenarios.display());
            trials.push(failing("scenarios", message));
        }
        trials
    }

    /// Runs the trials with `args` and prints how many passed, broke,
    /// changed or erred (libtest only knows pass and fail).
    pub fn run_with(self, args: &Arguments) -> Conclusion {
        // insta prints its own diff while trials run in parallel; ours is in
        // the failure message, so keep insta quiet unless the user asked.
        if self.snapshots.is_some() && std::env::var_os("INSTA_OUTPUT").is_none() {
            std::env::set_var("INSTA_OUTPUT", "none");
        }
        let counts = Arc::new(Counts::default());
        let trials = self.trials_counting(&counts);
        let conclusion = libtest_mimic::run(args, trials);
        let name = self.generator.as_ref().map_or("?", |g| g.name());
        if let Some(line) = counts.summary(name) {
            println!("{line}");
        }
        conclusion
    }

    /// Parses the command line (`cargo test -- FILTER`), runs, and exits
    /// with libtest's status.
    pub fn run(self) -> ! {
        let args = Arguments::from_args();
        self.run_with(&args).exit()
    }
}

fn failing(name: &str, message: String) -> Trial {
    Trial::test(name, move || Err(Failed::from(message)))
}

/// Per-status counts of the trials that ran.
#[derive(Default)]
struct Counts([AtomicUsize; 4]);

impl Counts {
    fn add(&self, status: Status) {
        self.0[status as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn summary(&self, generator: &str) -> Option<String> {
        let total: usize = self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return None;
        }
        let parts: Vec<String> = Status::ALL
            .iter()
            .map(|&s| format!("{} {s}", self.0[s as usize].load(Ordering::Relaxed)))
            .collect();
        Some(format!(
            "kpconform conformance of `{generator}`: {}",
            parts.join(", ")
        ))
    }
}

/// A time limit in seconds: positive and finite (`0.5`, `30`).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "`{text}`: the time limit must be more than 0 and at most 86400 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::FnGenerator;

    fn accept_all() -> impl Generator {
        FnGenerator::new("accept-all", |_| {
            Ok("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n".to_string())
        })
    }

    fn names(trials: &[Trial]) -> Vec<&str> {
        trials.iter().map(Trial::name).collect()
    }

    #[test]
    fn setup_problems_become_failing_trials() {
        let missing = std::env::temp_dir().join("kpconform-no-such-dir");
        let trials = Conformance::new(accept_all())
            .with_scenarios(&missing)
            .trials();
        assert_eq!(names(&trials), ["scenarios"]);

        let empty = std::env::temp_dir().join(format!("kpconform-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let trials = Conformance::new(accept_all())
            .with_scenarios(&empty)
            .trials();
        assert_eq!(names(&trials), ["scenarios"]);
        let _ = std::fs::remove_dir_all(&empty);
    }

    #[test]
    fn with_scenarios_reads_another_corpus() {
        let dir = std::env::temp_dir().join(format!("kpconform-own-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mine")).unwrap();
        std::fs::write(
            dir.join("mine/one.yaml"),
            "cluster:\n  nodes: [{name: n1, addresses: [192.168.0.10]}]\n",
        )
        .unwrap();
        let trials = Conformance::new(accept_all()).with_scenarios(&dir).trials();
        assert_eq!(names(&trials), ["mine/one@n1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_trial_per_scenario_node_of_the_golden_corpus() {
        let trials = Conformance::new(accept_all()).trials();
        let corpus = Corpus::load(GOLDEN_SCENARIOS).unwrap();
        let expected: usize = corpus
            .scenarios()
            .iter()
            .map(|s| s.cluster.nodes.len())
            .sum::<usize>()
            + corpus.failures().len();
        assert_eq!(trials.len(), expected);
        assert!(names(&trials).contains(&"clusterip/one-endpoint@node-a"));
    }

    #[test]
    fn tags_are_the_trial_kind_so_that_filters_select_by_tag() {
        let trials = Conformance::new(accept_all()).trials();
        let corpus = Corpus::load(GOLDEN_SCENARIOS).unwrap();
        // A tag that is in no case name (a scenario id has no `:`): only
        // the kind can match it.
        let tag = "recorded:";
        assert!(trials.iter().all(|t| !t.name().contains(tag)));
        let tagged: Vec<String> = corpus
            .cases()
            .into_iter()
            .filter(|c| c.scenario.tags.iter().any(|t| t.contains(tag)))
            .map(|c| c.name())
            .collect();
        assert!(
            !tagged.is_empty(),
            "the golden corpus tags some cases {tag}"
        );
        let args = Arguments::from_iter(["conformance", tag]);
        let selected: Vec<String> = trials
            .iter()
            .filter(|t| !args.is_filtered_out(t))
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(selected, tagged);
        // Names still select on their own, exactly too.
        let args =
            Arguments::from_iter(["conformance", "--exact", "clusterip/one-endpoint@node-a"]);
        let exact = trials.iter().filter(|t| !args.is_filtered_out(t)).count();
        assert_eq!(exact, 1);
    }

    #[test]
    fn a_missing_external_generator_is_one_failing_trial() {
        let env = |name: &str| (name == GENERATOR_ENV).then(|| "./no-such-generator".to_string());
        let trials = Conformance::from_vars(accept_all(), env).trials();
        assert_eq!(names(&trials), [GENERATOR_ENV]);
        let env = |name: &str| match name {
            GENERATOR_ENV => Some("sh -c true".to_string()),
            TIMEOUT_ENV => Some("-1".to_string()),
            _ => None,
        };
        let trials = Conformance::from_vars(accept_all(), env).trials();
        assert_eq!(names(&trials), [GENERATOR_ENV]);
    }

    #[test]
    fn kernel_mode_from_the_environment() {
        let with =
            |value: &'static str| move |name: &str| (name == KERNEL_ENV).then(|| value.to_string());
        let backend =
            |value: &'static str| match Conformance::from_vars(accept_all(), with(value)).kernel {
                None => None,
                Some(Ok(o)) => Some(Ok(o.backend)),
                Some(Err(e)) => Some(Err(e)),
            };
        assert_eq!(backend("0"), None);
        assert_eq!(backend(""), None);
        assert_eq!(backend("1"), Some(Ok(kpconform_kernel::Backend::Nft)));
        assert_eq!(
            backend("legacy"),
            Some(Ok(kpconform_kernel::Backend::Legacy))
        );
        // A typo is one failing trial, never kernel mode silently off.
        let trials = Conformance::from_vars(accept_all(), with("yes")).trials();
        assert_eq!(names(&trials), [KERNEL_ENV]);
    }

    #[test]
    fn timeouts_are_positive_finite_seconds() {
        assert_eq!(
            parse_timeout("2.5"),
            Ok(std::time::Duration::from_millis(2500))
        );
        for bad in ["-1", "0", "nan", "inf", "1e300", "ten"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_summarize_by_status() {
        let counts = Counts::default();
        assert_eq!(counts.summary("g"), None);
        counts.add(Status::Passed);
        counts.add(Status::Passed);
        counts.add(Status::Changed);
        assert_eq!(
            counts.summary("g").unwrap(),
            "kpconform conformance of `g`: 2 passed, 0 broken, 1 changed, 0 error"
        );
    }
}
