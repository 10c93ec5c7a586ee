//! The command that reruns one case of a `kpconform run`, printed under each
//! failure: the same program, generator, scenarios, snapshots, time limit and
//! kernel options, and `--filter <scenario-id>@<node>`. Report formats and
//! parallelism are left out (they do not change a verdict), and so are
//! `--update` and `--save-outputs` (a rerun should only look).

use std::path::Path;

use crate::cli::RunArgs;

/// Everything of the command line but the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rerun {
    base: Vec<String>,
}

impl Rerun {
    /// The rerun of `args` by `program` (how kpconform was invoked: on the
    /// `PATH`, or a path that works from the same directory).
    pub(crate) fn new(program: &str, args: &RunArgs) -> Rerun {
        let mut base = vec![program.to_string(), "run".to_string()];
        let mut push = |flag: &str, value: Option<String>| {
            base.push(flag.to_string());
            base.extend(value);
        };
        if let Some(command) = &args.generator {
            push("--generator", Some(command.clone()));
            if args.timeout != kpconform_harness::DEFAULT_TIMEOUT {
                push("--timeout", Some(args.timeout.as_secs_f64().to_string()));
            }
        } else if let Some(dir) = &args.rules_dir {
            push("--rules-dir", Some(path(dir)));
        } else {
            push("--reference", None);
        }
        if let Some(name) = &args.name {
            push("--name", Some(name.clone()));
        }
        push("--scenarios", Some(path(&args.scenarios)));
        if let Some(dir) = &args.snapshots {
            push("--snapshots", Some(path(dir)));
        }
        if args.kernel.kernel {
            push("--kernel", None);
            let backend = clap::ValueEnum::to_possible_value(&args.kernel.iptables)
                .map(|v| v.get_name().to_string());
            push("--iptables", backend);
            push("--connections", Some(args.kernel.connections.to_string()));
        }
        Rerun { base }
    }

    /// The command line, quoted for a POSIX shell, that reruns the case
    /// named `case` (`<scenario-id>@<node>`).
    pub(crate) fn command(&self, case: &str) -> String {
        let mut argv = self.base.clone();
        argv.extend(["--filter".to_string(), case.to_string()]);
        shell_words::join(argv)
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn rerun(args: &[&str]) -> Rerun {
        let cli = Cli::try_parse_from(["kpconform", "run"].iter().chain(args)).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        Rerun::new("./kpconform", &run)
    }

    #[test]
    fn keeps_what_decides_a_verdict_and_drops_the_rest() {
        let r = rerun(&[
            "--generator",
            "./my proxy --dump 'rules'",
            "--timeout",
            "2.5",
            "--snapshots",
            "snaps",
            "--update",
            "--save-outputs",
            "out",
            "--format",
            "json",
            "-j",
            "3",
            "--filter",
            "nodeport/",
        ]);
        assert_eq!(
            r.command("nodeport/etp-local@node-a"),
            "./kpconform run --generator './my proxy --dump '\\''rules'\\''' --timeout 2.5 \
             --scenarios golden/scenarios --snapshots snaps --filter nodeport/etp-local@node-a"
        );
        // The quoted command splits back into the same words.
        let words = shell_words::split(&r.command("a b@n")).unwrap();
        assert_eq!(words[3], "./my proxy --dump 'rules'");
        assert_eq!(words.last().map(String::as_str), Some("a b@n"));
    }

    #[test]
    fn every_generator_kind_and_kernel_mode() {
        assert_eq!(
            rerun(&["--reference", "--name", "ref", "--scenarios", "s"]).command("x@n"),
            "./kpconform run --reference --name ref --scenarios s --filter x@n"
        );
        assert_eq!(
            rerun(&["--rules-dir", "rules", "--kernel", "--iptables", "legacy"]).command("x@n"),
            "./kpconform run --rules-dir rules --scenarios golden/scenarios \
             --kernel --iptables legacy --connections 1000 --filter x@n"
        );
        // The default time limit is not repeated.
        assert_eq!(
            rerun(&["--generator", "g", "--timeout", "10"]).command("x@n"),
            "./kpconform run --generator g --scenarios golden/scenarios --filter x@n"
        );
    }
}
