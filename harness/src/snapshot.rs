//! Snapshots (contract §4): one insta `.snap` file per (scenario, node,
//! family) at `<root>/<generator>/<scenario-id>@<node>.snap` (IPv4) or
//! `<root>/<generator>/<scenario-id>@<node>.ipv6.snap` (IPv6), holding the
//! generator's output after [`normalize`](kpconform_iptables::normalize).
//!
//! Two ways to compare, one file format:
//! - [`Snapshots::read_only`] (`kpconform run --snapshots DIR`): compare and
//!   report, never write.
//! - [`Snapshots::insta`] (the `cargo test` harness): the assertion goes
//!   through insta, so `INSTA_UPDATE`, `CI`, `INSTA_FORCE_PASS` and
//!   `cargo insta review` behave as they do for any insta test (a mismatch
//!   leaves a `.snap.new` beside the snapshot unless CI). insta's panic is
//!   caught and becomes [`SnapshotCheck::Changed`], with the diff computed here.
//!
//! [`Snapshots::write_for`] (`kpconform run --snapshots DIR --update`)
//! writes the file insta would, atomically, whichever mode compared it.
//!
//! insta would flatten the `/` of a scenario id into `__`; the scenario's
//! directories are kept by pointing insta's snapshot path at
//! `<root>/<generator>/<id's directory>` and naming the snapshot
//! `<id's last part>@<node>`.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use kpconform_iptables::model::Family;

use crate::files::{safe_name, write_atomically};

/// Where snapshots live and how they are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshots {
    root: PathBuf,
    insta: bool,
}

/// What comparing one snapshot found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotCheck {
    /// Snapshots were not asked for, or there was no output to compare.
    NotChecked,
    /// The output equals the snapshot.
    Matched,
    /// The output differed and insta let the assertion pass: it wrote the
    /// snapshot in place (`INSTA_UPDATE=always`), or it was told to pass and
    /// left a `.snap.new` for review (`INSTA_FORCE_PASS`, `cargo insta test`).
    Accepted {
        /// The snapshot file.
        path: PathBuf,
        /// The `.snap.new` left for review, when the snapshot was not written.
        pending: Option<PathBuf>,
    },
    /// The output differs from the snapshot, or there is no snapshot yet.
    Changed {
        /// The snapshot file.
        path: PathBuf,
        /// Whether the snapshot file did not exist.
        missing: bool,
        /// Unified diff from the snapshot to the new output.
        diff: String,
        /// The `.snap.new` file insta left for `cargo insta review`, if any.
        pending: Option<PathBuf>,
    },
    /// The snapshot file exists but cannot be read, or the names would not
    /// make a file inside the snapshot directory.
    Unreadable {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl Snapshots {
    /// Compares against `root` without ever writing (the CLI).
    pub fn read_only(root: impl Into<PathBuf>) -> Snapshots {
        Snapshots {
            root: absolute(root.into()),
            insta: false,
        }
    }

    /// Compares through insta's assertion, which writes `.snap.new` files
    /// (or, with `INSTA_UPDATE=always`, the snapshots) as insta does.
    pub fn insta(root: impl Into<PathBuf>) -> Snapshots {
        Snapshots {
            root: absolute(root.into()),
            insta: true,
        }
    }

    /// The directory holding every generator's snapshots.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshot file of one (generator, scenario, node), IPv4.
    pub fn path(&self, generator: &str, scenario: &str, node: &str) -> PathBuf {
        self.path_for(generator, scenario, node, Family::Ipv4)
    }

    /// The snapshot file of one (generator, scenario, node, family):
    /// `<id>@<node>.snap` for IPv4, `<id>@<node>.ipv6.snap` for IPv6.
    pub fn path_for(&self, generator: &str, scenario: &str, node: &str, family: Family) -> PathBuf {
        let (dir, name) = self.location(generator, scenario, node, family);
        dir.join(format!("{name}.snap"))
    }

    fn location(
        &self,
        generator: &str,
        scenario: &str,
        node: &str,
        family: Family,
    ) -> (PathBuf, String) {
        let mut dir = self.root.join(generator);
        let mut parts: Vec<&str> = scenario.split('/').filter(|p| !p.is_empty()).collect();
        let last = parts.pop().unwrap_or("scenario");
        for part in parts {
            dir.push(part);
        }
        let suffix = match family {
            Family::Ipv4 => "",
            Family::Ipv6 => ".ipv6",
        };
        (dir, format!("{last}@{node}{suffix}"))
    }

    /// Compares `normalized` (already normalized IPv4 output) with the snapshot.
    pub fn check(
        &self,
        generator: &str,
        scenario: &str,
        node: &str,
        normalized: &str,
    ) -> SnapshotCheck {
        self.check_for(generator, scenario, node, Family::Ipv4, normalized)
    }

    /// Compares `normalized` (already normalized output of `family`) with
    /// the family's snapshot.
    pub fn check_for(
        &self,
        generator: &str,
        scenario: &str,
        node: &str,
        family: Family,
        normalized: &str,
    ) -> SnapshotCheck {
        let (dir, name) = self.location(generator, scenario, node, family);
        let path = dir.join(format!("{name}.snap"));
        if let Err(message) = self.names_are_safe(generator, scenario, node) {
            return SnapshotCheck::Unreadable { message, path };
        }
        // Read before insta runs: with INSTA_UPDATE=always it overwrites.
        let old = match read_snapshot(&path) {
            Ok(old) => old,
            Err(message) => return SnapshotCheck::Unreadable { message, path },
        };
        let same = old.as_deref().map(comparable) == Some(comparable(normalized));
        if !self.insta {
            return if same {
                SnapshotCheck::Matched
            } else {
                changed(path, old.as_deref(), normalized, None)
            };
        }
        let what = description(generator, scenario, node, family);
        let passed = insta_assert(&dir, &name, &what, normalized);
        let new = path.with_extension("snap.new");
        let pending = new.is_file().then_some(new);
        match (passed, same) {
            (true, true) => SnapshotCheck::Matched,
            (true, false) => SnapshotCheck::Accepted { path, pending },
            (false, _) => changed(path, old.as_deref(), normalized, pending),
        }
    }

    /// Writes `normalized` (already normalized output of `family`) as the
    /// snapshot of one (generator, scenario, node), whatever the mode: the
    /// file insta would store, written atomically (temporary file, then
    /// rename) with its directories. `kpconform run --update` calls it for
    /// each new or changed snapshot. Returns the file written.
    pub fn write_for(
        &self,
        generator: &str,
        scenario: &str,
        node: &str,
        family: Family,
        normalized: &str,
    ) -> Result<PathBuf, String> {
        let path = self.path_for(generator, scenario, node, family);
        self.names_are_safe(generator, scenario, node)?;
        let text = snapshot_file(&description(generator, scenario, node, family), normalized);
        write_atomically(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Snapshots {
    /// Whether the generator, scenario and node names make a path below the
    /// root (no `..`, no absolute path): else the error to report.
    fn names_are_safe(&self, generator: &str, scenario: &str, node: &str) -> Result<(), String> {
        match [generator, scenario, node]
            .into_iter()
            .find(|n| !safe_name(n))
        {
            Some(bad) => Err(format!(
                "`{bad}` cannot name a file below {}",
                self.root.display()
            )),
            None => Ok(()),
        }
    }
}

/// The `description` of a snapshot's metadata, the same whoever writes it
/// (insta in the harness, [`Snapshots::write_for`] for `kpconform run --update`).
fn description(generator: &str, scenario: &str, node: &str, family: Family) -> String {
    match family {
        Family::Ipv4 => format!("{generator}: rules for {scenario}@{node}, normalized"),
        Family::Ipv6 => format!("{generator}: IPv6 rules for {scenario}@{node}, normalized"),
    }
}

/// An insta `.snap` file: the metadata insta writes for the harness's
/// assertions (no expression, no assertion line), then the contents as insta
/// stores them (trailing whitespace trimmed, one final newline).
fn snapshot_file(description: &str, normalized: &str) -> String {
    format!(
        "---\nsource: {SNAPSHOT_SOURCE}\ndescription: {}\n---\n{}",
        yaml_string(description),
        comparable(normalized)
    )
}

/// The `source` of snapshots written by `kpconform run --update` (insta
/// shows it in `cargo insta review`; nothing compares it).
const SNAPSHOT_SOURCE: &str = "kpconform run --update";

/// A YAML double-quoted scalar: scenario ids and node names may hold `: `,
/// `#` or quotes, which a plain scalar could not.
fn yaml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn changed(path: PathBuf, old: Option<&str>, new: &str, pending: Option<PathBuf>) -> SnapshotCheck {
    let old_text = old.map(comparable).unwrap_or_default();
    let new_text = comparable(new);
    let diff = similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(3)
        .header("snapshot", "new output")
        .to_string();
    SnapshotCheck::Changed {
        path,
        missing: old.is_none(),
        diff,
        pending,
    }
}

/// Makes a relative root absolute, so that insta (which resolves relative
/// snapshot paths against the asserting source file) writes where we read.
/// Reports name the snapshot files, so an existing root is canonicalized
/// (`crate/../golden` reads badly).
fn absolute(root: PathBuf) -> PathBuf {
    if let Ok(canonical) = root.canonicalize() {
        return canonical;
    }
    if root.is_absolute() {
        return root;
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(root),
        Err(_) => root,
    }
}

/// The contents of the insta `.snap` file at `path`, read by insta itself
/// (metadata header, legacy formats); `None` when there is no such file.
fn read_snapshot(path: &Path) -> Result<Option<String>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let snapshot = insta::Snapshot::from_file(path).map_err(|e| e.to_string())?;
    match snapshot.contents() {
        insta::internals::SnapshotContents::Text(text) => Ok(Some(text.to_string())),
        _ => Err("not a text snapshot".to_string()),
    }
}

/// Text as insta compares it: trailing whitespace trimmed, CRLF as LF, and
/// one final newline so that diffs end cleanly.
fn comparable(text: &str) -> String {
    let mut out = text.trim_end().replace("\r\n", "\n");
    out.push('\n');
    out
}

thread_local! {
    /// Set while an insta assertion runs on this thread: its panic is an
    /// expected "changed" result, not a crash to print.
    static QUIET_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once per process) a panic hook that stays silent for panics
/// raised while [`QUIET_PANIC`] is set and defers to the previous hook
/// otherwise.
fn quiet_insta_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET_PANIC.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs insta's assertion; `true` when it passed (or insta accepted the
/// new value).
fn insta_assert(dir: &Path, name: &str, description: &str, normalized: &str) -> bool {
    quiet_insta_panics();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    QUIET_PANIC.with(|q| q.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, normalized));
    }));
    QUIET_PANIC.with(|q| q.set(false));
    result.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kpconform-snapshot-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn scenario_directories_are_kept() {
        let s = Snapshots::read_only("/snap");
        assert_eq!(
            s.path("reference", "nodeport/etp-local", "node-a"),
            PathBuf::from("/snap/reference/nodeport/etp-local@node-a.snap")
        );
        assert_eq!(
            s.path("gen", "flat", "n"),
            PathBuf::from("/snap/gen/flat@n.snap")
        );
        assert_eq!(
            s.path_for("gen", "dualstack/x", "n", Family::Ipv4),
            PathBuf::from("/snap/gen/dualstack/x@n.snap")
        );
        assert_eq!(
            s.path_for("gen", "dualstack/x", "n", Family::Ipv6),
            PathBuf::from("/snap/gen/dualstack/x@n.ipv6.snap")
        );
    }

    #[test]
    fn each_family_compares_with_its_own_file() {
        let root = temp_dir("family");
        let s = Snapshots::insta(&root);
        let v6 = s.path_for("g", "a/b", "n", Family::Ipv6);
        std::fs::create_dir_all(v6.parent().unwrap()).unwrap();
        std::fs::write(
            &v6,
            "---\nsource: x\n---\n*nat\n-A X -d ::1 -j ACCEPT\nCOMMIT\n",
        )
        .unwrap();
        assert_eq!(
            s.check_for(
                "g",
                "a/b",
                "n",
                Family::Ipv6,
                "*nat\n-A X -d ::1 -j ACCEPT\nCOMMIT\n"
            ),
            SnapshotCheck::Matched
        );
        // The IPv4 snapshot is another file (absent here).
        assert!(matches!(
            Snapshots::read_only(&root).check(
                "g",
                "a/b",
                "n",
                "*nat\n-A X -d ::1 -j ACCEPT\nCOMMIT\n"
            ),
            SnapshotCheck::Changed { missing: true, .. }
        ));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn names_cannot_escape_the_root() {
        let root = temp_dir("escape");
        let s = Snapshots::insta(&root);
        for (generator, scenario, node) in [
            ("g", "a/../../b", "n"),
            ("..", "a", "n"),
            ("g", "a", "../n"),
            ("g", "/abs", "n"),
        ] {
            assert!(
                matches!(
                    s.check(generator, scenario, node, "x"),
                    SnapshotCheck::Unreadable { .. }
                ),
                "{generator} {scenario} {node}"
            );
        }
        assert!(!root.exists());
    }

    #[test]
    fn contents_skip_insta_metadata() {
        let dir = temp_dir("metadata");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.snap");
        std::fs::write(
            &path,
            "---\nsource: x.rs\ndescription: d\n---\n*nat\nCOMMIT\n",
        )
        .unwrap();
        assert_eq!(
            read_snapshot(&path).unwrap().as_deref(),
            Some("*nat\nCOMMIT")
        );
        assert_eq!(read_snapshot(&dir.join("absent.snap")), Ok(None));
        assert_eq!(comparable("a\r\nb\n\n"), "a\nb\n");
    }

    #[test]
    fn read_only_compares_without_writing() {
        let root = temp_dir("ro");
        let s = Snapshots::read_only(&root);
        match s.check("g", "a/b", "n", "*nat\nCOMMIT\n") {
            SnapshotCheck::Changed {
                missing: true,
                diff,
                pending: None,
                ..
            } => assert!(diff.contains("+*nat"), "{diff}"),
            other => panic!("{other:?}"),
        }
        assert!(!root.exists(), "a read-only check wrote files");

        let path = s.path("g", "a/b", "n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "---\nsource: x\n---\n*nat\nCOMMIT\n").unwrap();
        assert_eq!(
            s.check("g", "a/b", "n", "*nat\nCOMMIT\n"),
            SnapshotCheck::Matched
        );
        match s.check("g", "a/b", "n", "*nat\n-A X -j ACCEPT\nCOMMIT\n") {
            SnapshotCheck::Changed {
                missing: false,
                diff,
                ..
            } => assert!(diff.contains("+-A X -j ACCEPT"), "{diff}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn written_snapshots_are_insta_files_that_match_in_both_modes() {
        let root = temp_dir("write");
        let s = Snapshots::read_only(&root);
        let text = "*nat\n-A X -j ACCEPT\nCOMMIT\n\n";
        // A node name with YAML's special characters stays one string.
        let node = "n: \"x\" #1";
        let path = s.write_for("g", "a/b", node, Family::Ipv6, text).unwrap();
        assert_eq!(path, s.path_for("g", "a/b", node, Family::Ipv6));
        let snapshot = insta::Snapshot::from_file(&path).unwrap();
        assert_eq!(
            snapshot.metadata().description(),
            Some("g: IPv6 rules for a/b@n: \"x\" #1, normalized")
        );
        assert_eq!(
            read_snapshot(&path).unwrap().as_deref(),
            Some("*nat\n-A X -j ACCEPT\nCOMMIT")
        );
        assert_eq!(
            s.check_for("g", "a/b", node, Family::Ipv6, text),
            SnapshotCheck::Matched
        );
        // insta's own assertion accepts the file as it is.
        assert_eq!(
            Snapshots::insta(&root).check_for("g", "a/b", node, Family::Ipv6, text),
            SnapshotCheck::Matched
        );
        // Overwriting replaces it; no temporary file stays behind.
        s.write_for("g", "a/b", node, Family::Ipv6, "*raw\nCOMMIT\n")
            .unwrap();
        assert_eq!(
            read_snapshot(&path).unwrap().as_deref(),
            Some("*raw\nCOMMIT")
        );
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        assert!(s.write_for("g", "../x", "n", Family::Ipv4, text).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn insta_mode_turns_the_failed_assertion_into_changed() {
        let root = temp_dir("insta");
        let s = Snapshots::insta(&root);
        let path = s.path("g", "a/b", "n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "---\nsource: x\n---\n*nat\nCOMMIT\n").unwrap();
        assert_eq!(
            s.check("g", "a/b", "n", "*nat\nCOMMIT\n"),
            SnapshotCheck::Matched
        );
        // insta's panic must not escape; what it writes depends on
        // INSTA_UPDATE / CI / INSTA_FORCE_PASS of the environment.
        match s.check("g", "a/b", "n", "*raw\nCOMMIT\n") {
            SnapshotCheck::Changed { diff, missing, .. } => {
                assert!(!missing);
                assert!(diff.contains("-*nat\n+*raw\n"), "{diff}");
            }
            SnapshotCheck::Accepted { .. } => {}
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
