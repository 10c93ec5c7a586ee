//! A directory of scenarios, loaded once: what the harness lists as trials
//! and `kpconform run` iterates over.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kpconform_suite::scenario::{discover, Scenario, ScenarioError};

/// Every scenario below a directory, in path order, with the files that did
/// not load kept as errors (each becomes one failing case, not a crash).
#[derive(Debug, Clone)]
pub struct Corpus {
    root: PathBuf,
    scenarios: Vec<Arc<Scenario>>,
    failures: Vec<(String, ScenarioError)>,
}

/// One (scenario, node) of a corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// One of its nodes.
    pub node: String,
}

impl Case {
    /// `<scenario-id>@<node>`.
    pub fn name(&self) -> String {
        format!("{}@{}", self.scenario.id, self.node)
    }

    /// Whether `filter` occurs in the case's name or in one of its
    /// scenario's tags (`etp-local`, `recorded:`).
    pub fn matches(&self, filter: &str) -> bool {
        self.name().contains(filter) || self.scenario.tags.iter().any(|t| t.contains(filter))
    }
}

impl Corpus {
    /// Finds every `*.yaml` below `root` and loads it; ids are paths below
    /// `root`. Fails only when the directory cannot be read.
    pub fn load(root: impl Into<PathBuf>) -> std::io::Result<Corpus> {
        let root = root.into();
        let mut corpus = Corpus {
            scenarios: Vec::new(),
            failures: Vec::new(),
            root,
        };
        for path in discover(&corpus.root)? {
            match Scenario::load(&path, &corpus.root) {
                Ok(s) => corpus.scenarios.push(Arc::new(s)),
                Err(e) => corpus.failures.push((id_of(&path, &corpus.root), e)),
            }
        }
        Ok(corpus)
    }

    /// The directory the corpus was loaded from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The scenarios that loaded.
    pub fn scenarios(&self) -> &[Arc<Scenario>] {
        &self.scenarios
    }

    /// The files that did not load: scenario id (from the path) and error.
    pub fn failures(&self) -> &[(String, ScenarioError)] {
        &self.failures
    }

    /// Every (scenario, node), nodes in file order, including nodes that
    /// have no flows (their invariants and snapshot still count).
    pub fn cases(&self) -> Vec<Case> {
        self.scenarios
            .iter()
            .flat_map(|s| {
                s.cluster.nodes.iter().map(|n| Case {
                    scenario: Arc::clone(s),
                    node: n.name.clone(),
                })
            })
            .collect()
    }
}

/// A file's scenario id when it cannot be loaded (the loader computes it for
/// loaded ones): its path below `root` without `.yaml`.
fn id_of(path: &Path, root: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let id = parts.join("/");
    id.strip_suffix(".yaml").map(str::to_string).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
tags: [etp-local, recorded:case-a]
cluster:
  nodes: [{name: node-a, addresses: [192.168.0.10]}, {name: node-b, addresses: [192.168.0.11]}]
";

    #[test]
    fn loads_cases_and_keeps_load_errors() {
        let root = std::env::temp_dir().join(format!("kpconform-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("group")).unwrap();
        std::fs::write(root.join("group/good.yaml"), GOOD).unwrap();
        std::fs::write(root.join("group/typo.yaml"), "clutser: {}\n").unwrap();
        std::fs::write(root.join("notes.txt"), "not a scenario").unwrap();
        let corpus = Corpus::load(&root).unwrap();
        let names: Vec<String> = corpus.cases().iter().map(Case::name).collect();
        assert_eq!(names, ["group/good@node-a", "group/good@node-b"]);
        let [(id, error)] = corpus.failures() else {
            panic!("{:?}", corpus.failures());
        };
        assert_eq!(id, "group/typo");
        assert_eq!((error.line(), error.column()), (1, 1));

        let case = &corpus.cases()[1];
        assert!(case.matches("good@node-b"));
        assert!(case.matches("etp-local"));
        assert!(case.matches("recorded:"));
        assert!(!case.matches("node-a"));
        let _ = std::fs::remove_dir_all(&root);
        assert!(Corpus::load(&root).is_err());
    }
}
