//! Recorded rules: `DIR/<scenario-id>/<node>.rules`, captured elsewhere.

use std::path::{Path, PathBuf};

use kpconform_suite::generator::{Generator, GeneratorError, GeneratorErrorKind, Request};

/// A directory of recorded outputs.
#[derive(Debug, Clone)]
pub struct RecordedDir {
    root: PathBuf,
    name: String,
}

impl RecordedDir {
    /// Reads rules from `root`; the generator is named after the directory.
    pub fn new(root: impl Into<PathBuf>) -> RecordedDir {
        let root = root.into();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recorded".into());
        RecordedDir { root, name }
    }

    /// Where the rules for one (scenario, node) are expected.
    pub fn path(&self, scenario: &str, node: &str) -> PathBuf {
        self.root.join(scenario).join(format!("{node}.rules"))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Generator for RecordedDir {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &Request<'_>) -> Result<String, GeneratorError> {
        let path = self.path(request.scenario, request.node);
        match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
                GeneratorError::new(
                    GeneratorErrorKind::Failed,
                    format!(
                        "{}: not UTF-8 text (byte {})",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    ),
                )
            }),
            Err(e) => Err(GeneratorError::new(
                GeneratorErrorKind::Unavailable,
                format!("no recorded rules at {}: {e}", path.display()),
            )),
        }
    }
}
