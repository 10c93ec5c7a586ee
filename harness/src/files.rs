//! Writing the files a run leaves behind (snapshots, saved outputs) so that
//! a reader never sees half of one: each is written to a temporary file in
//! the same directory and renamed over the target, which is atomic on one
//! file system. An interrupted run leaves the old file or the new one.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `contents` to `path` atomically, creating its directories.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    // Unique per process and call: two threads may write beside each other.
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Whether a scenario id, node or generator name can become a path below a
/// root: names come from scenario files and the command line, and a `..`
/// part, an absolute path or an empty part must not write elsewhere.
pub(crate) fn safe_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("kpconform-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("a/b/x.rules");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.rules"]);
        // A directory where the file should be: an error, and no debris.
        std::fs::create_dir_all(dir.join("d/x.rules")).unwrap();
        assert!(write_atomically(&dir.join("d/x.rules"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.join("d")).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_that_would_leave_the_root_are_unsafe() {
        for bad in ["", "..", "a/../b", "/abs", "a//b", "./a", "a/"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        for good in ["a", "nodeport/etp-local", "node-a", "x..y"] {
            assert!(safe_name(good), "{good:?}");
        }
    }
}
