//! What `kpconform run` leaves on disk after evaluating: the new and changed
//! snapshots (`--snapshots DIR --update`) and every generator output
//! (`--save-outputs DIR`). Both are written after the parallel evaluation,
//! in case order, so that a run writes the same files in the same order
//! every time.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Result};
use kpconform_harness::{Evaluation, RecordedDir, SnapshotCheck, Snapshots};
use kpconform_iptables::normalize;

/// What `--update` did to the snapshots, per file (one per family of a case).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotUpdates {
    /// Files that did not exist.
    pub(crate) created: usize,
    /// Files whose contents differed.
    pub(crate) updated: usize,
    /// Files that matched the output.
    pub(crate) unchanged: usize,
    /// Files that could not be written (each is also the case's error).
    pub(crate) failed: usize,
}

impl fmt::Display for SnapshotUpdates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "created {}, updated {}, unchanged {}",
            self.created, self.updated, self.unchanged
        )?;
        if self.failed > 0 {
            write!(f, ", {} could not be written", self.failed)?;
        }
        Ok(())
    }
}

/// Writes the snapshot of every output that differed from its snapshot or
/// had none, and marks it written (a written snapshot no longer fails its
/// case; a broken output is still broken). A snapshot that cannot be read
/// is left alone and stays an error: overwriting what cannot be read could
/// lose something nobody has looked at.
pub(crate) fn update_snapshots(
    snapshots: &Snapshots,
    evaluations: &mut [Evaluation],
) -> SnapshotUpdates {
    let mut updates = SnapshotUpdates::default();
    for e in evaluations {
        for family in &mut e.families {
            let missing = match &family.snapshot {
                SnapshotCheck::Matched => {
                    updates.unchanged += 1;
                    continue;
                }
                SnapshotCheck::Changed { missing, .. } => *missing,
                _ => continue,
            };
            // A snapshot is only compared when there is an output.
            let Some(output) = &family.output else {
                continue;
            };
            family.snapshot = match snapshots.write_for(
                &e.generator,
                &e.scenario,
                &e.node,
                family.family,
                &normalize(output.text()),
            ) {
                Ok(path) => {
                    if missing {
                        updates.created += 1;
                    } else {
                        updates.updated += 1;
                    }
                    SnapshotCheck::Accepted {
                        path,
                        pending: None,
                    }
                }
                Err(message) => {
                    updates.failed += 1;
                    SnapshotCheck::Unreadable {
                        path: snapshots.path_for(&e.generator, &e.scenario, &e.node, family.family),
                        message,
                    }
                }
            };
        }
    }
    updates
}

/// Makes sure `dir` can hold saved outputs before anything runs: a typo in
/// the path is a setup error, not a surprise after a long run.
pub(crate) fn prepare_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--save-outputs: {} is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("--save-outputs: cannot create {}: {e}", dir.display()))
}

/// Writes every output, as the generator printed it, to `dir` in the
/// recorded-rules layout; returns how many files were written. A run that
/// failed for a family (no output) leaves no file for it.
pub(crate) fn save_outputs(dir: &Path, evaluations: &[Evaluation]) -> Result<usize> {
    let recorded = RecordedDir::new(dir);
    let mut written = 0;
    for e in evaluations {
        for family in &e.families {
            if let Some(output) = &family.output {
                if let Err(message) =
                    recorded.save(&e.scenario, &e.node, family.family, output.text())
                {
                    bail!("--save-outputs: {message}");
                }
                written += 1;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_harness::{evaluate, FnGenerator};
    use kpconform_iptables::SourceFile;
    use kpconform_suite::scenario::Scenario;

    const SCENARIO: &str = "
cluster:
  nodes: [{name: node-a, addresses: [192.168.0.10, fd00::10]}, {name: node-b, addresses: [192.168.0.11]}]
";

    fn evaluations(rules: &'static str, snapshots: &Snapshots) -> Vec<Evaluation> {
        let scenario = Scenario::from_source(&SourceFile::new("s.yaml", SCENARIO), "g/s").unwrap();
        let generator = FnGenerator::new("gen", move |_| Ok(rules.to_string()));
        ["node-a", "node-b"]
            .into_iter()
            .map(|node| evaluate(&generator, &scenario, node, Some(snapshots)))
            .collect()
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kpconform-run-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const RULES: &str =
        "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";

    #[test]
    fn creates_then_updates_and_counts_each_family() {
        let root = temp("update");
        let snapshots = Snapshots::read_only(&root);
        let mut first = evaluations(RULES, &snapshots);
        assert!(first
            .iter()
            .all(|e| e.status() == kpconform_harness::Status::Changed));
        let updates = update_snapshots(&snapshots, &mut first);
        // node-a is dual-stack: two files; node-b one.
        assert_eq!(
            updates,
            SnapshotUpdates {
                created: 3,
                ..SnapshotUpdates::default()
            }
        );
        assert!(first
            .iter()
            .all(|e| e.status() == kpconform_harness::Status::Passed));
        assert!(root.join("gen/g/s@node-a.ipv6.snap").is_file());

        let mut again = evaluations(RULES, &snapshots);
        assert_eq!(
            update_snapshots(&snapshots, &mut again).to_string(),
            "created 0, updated 0, unchanged 3"
        );

        let mut changed = evaluations(
            "*filter\n:INPUT DROP [0:0]\nCOMMIT\n*nat\nCOMMIT\n",
            &snapshots,
        );
        assert_eq!(
            update_snapshots(&snapshots, &mut changed).to_string(),
            "created 0, updated 3, unchanged 0"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn saves_each_family_in_the_recorded_layout() {
        let dir = temp("save");
        prepare_output_dir(&dir).unwrap();
        let unused = Snapshots::read_only(temp("unused"));
        assert_eq!(save_outputs(&dir, &evaluations(RULES, &unused)).unwrap(), 3);
        for file in [
            "g/s/node-a.rules",
            "g/s/node-a.ipv6.rules",
            "g/s/node-b.rules",
        ] {
            assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), RULES);
        }
        let file = dir.join("g/s/node-b.rules");
        assert!(prepare_output_dir(&file).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
