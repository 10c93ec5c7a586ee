//! Recorded rules, captured elsewhere: `DIR/<scenario-id>/<node>.rules`
//! (IPv4) and `DIR/<scenario-id>/<node>.ipv6.rules` (IPv6).

use std::path::{Path, PathBuf};

use super::{Generator, GeneratorError, GeneratorErrorKind, Request};
use crate::files::{safe_name, write_atomically};
use kpconform_iptables::model::Family;

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

    /// Names the generator (snapshot directory) instead of the directory's name.
    pub fn with_name(mut self, name: impl Into<String>) -> RecordedDir {
        self.name = name.into();
        self
    }

    /// Where the IPv4 rules for one (scenario, node) are expected.
    pub fn path(&self, scenario: &str, node: &str) -> PathBuf {
        self.path_for(scenario, node, Family::Ipv4)
    }

    /// Where the rules of `family` for one (scenario, node) are expected:
    /// `<node>.rules` (IPv4) or `<node>.ipv6.rules` (IPv6).
    pub fn path_for(&self, scenario: &str, node: &str, family: Family) -> PathBuf {
        self.root
            .join(scenario)
            .join(format!("{node}{}", crate::evaluate::rules_suffix(family)))
    }

    /// Stores `text` (a generator's output, exactly as it wrote it) as the
    /// rules of `family` for one (scenario, node), atomically, creating the
    /// directories: what `kpconform run --save-outputs DIR` writes, so that
    /// `kpconform run --rules-dir DIR` reads the same text back. Returns the
    /// file written.
    pub fn save(
        &self,
        scenario: &str,
        node: &str,
        family: Family,
        text: &str,
    ) -> Result<PathBuf, String> {
        let path = self.path_for(scenario, node, family);
        if let Some(bad) = [scenario, node].into_iter().find(|n| !safe_name(n)) {
            return Err(format!(
                "`{bad}` cannot name a file below {}",
                self.root.display()
            ));
        }
        write_atomically(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
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
        let path = self.path_for(request.scenario, request.node, request.family());
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

#[cfg(test)]
mod tests {
    use super::*;
    use kpconform_suite::scenario::{GeneratorInput, NodeConfig};

    fn input() -> GeneratorInput {
        GeneratorInput {
            node: NodeConfig {
                name: "node-a".into(),
                family: kpconform_iptables::model::Family::Ipv4,
                addresses: vec!["192.168.0.10/32".parse().unwrap()],
                cluster_cidrs: vec![],
                masquerade_all: false,
                masquerade_bit: 14,
                node_port_addresses: vec![],
            },
            objects: vec![],
        }
    }

    #[test]
    fn reads_scenario_id_directories_and_names_itself_after_the_root() {
        let root = std::env::temp_dir().join(format!("kpconform-recorded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("nodeport/etp-local")).unwrap();
        std::fs::write(
            root.join("nodeport/etp-local/node-a.rules"),
            "*nat\nCOMMIT\n",
        )
        .unwrap();
        std::fs::write(root.join("nodeport/etp-local/node-b.rules"), b"\xff\xfe").unwrap();
        let dir = RecordedDir::new(&root);
        assert_eq!(dir.name(), root.file_name().unwrap().to_str().unwrap());
        assert_eq!(dir.clone().with_name("ci").name(), "ci");
        let input = input();
        let request = |scenario, node| Request {
            scenario,
            node,
            input: &input,
        };
        assert_eq!(
            dir.generate(&request("nodeport/etp-local", "node-a"))
                .unwrap(),
            "*nat\nCOMMIT\n"
        );
        let e = dir
            .generate(&request("nodeport/etp-local", "node-b"))
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Failed);
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
        let e = dir
            .generate(&request("nodeport/etp-local", "node-c"))
            .unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Unavailable);
        assert!(e.message.contains("node-c.rules"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_input_family_picks_the_file() {
        let root =
            std::env::temp_dir().join(format!("kpconform-recorded-v6-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("dual/s")).unwrap();
        std::fs::write(root.join("dual/s/node-a.rules"), "v4").unwrap();
        std::fs::write(root.join("dual/s/node-a.ipv6.rules"), "v6").unwrap();
        std::fs::write(root.join("dual/s/node-b.rules"), "v4 only").unwrap();
        let dir = RecordedDir::new(&root);
        let v4 = input();
        let mut v6 = input();
        v6.node.family = Family::Ipv6;
        let get = |node, input| {
            dir.generate(&Request {
                scenario: "dual/s",
                node,
                input,
            })
        };
        assert_eq!(get("node-a", &v4).unwrap(), "v4");
        assert_eq!(get("node-a", &v6).unwrap(), "v6");
        assert_eq!(get("node-b", &v4).unwrap(), "v4 only");
        let e = get("node-b", &v6).unwrap_err();
        assert_eq!(e.kind, GeneratorErrorKind::Unavailable);
        assert!(e.message.contains("node-b.ipv6.rules"), "{}", e.message);
        assert_eq!(
            dir.path_for("dual/s", "node-a", Family::Ipv6),
            root.join("dual/s/node-a.ipv6.rules")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn saved_text_reads_back_byte_for_byte() {
        let root =
            std::env::temp_dir().join(format!("kpconform-recorded-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = RecordedDir::new(&root);
        // Raw, as a generator printed it: CRLF, no final newline.
        let text = "*nat\r\n:PREROUTING ACCEPT [0:0]\r\nCOMMIT";
        let path = dir.save("dual/s", "node-a", Family::Ipv6, text).unwrap();
        assert_eq!(path, root.join("dual/s/node-a.ipv6.rules"));
        let mut v6 = input();
        v6.node.family = Family::Ipv6;
        let read = dir.generate(&Request {
            scenario: "dual/s",
            node: "node-a",
            input: &v6,
        });
        assert_eq!(read.unwrap(), text);
        assert!(dir.save("dual/s", "../../x", Family::Ipv4, text).is_err());
        assert!(dir.save("../s", "node-a", Family::Ipv4, text).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
