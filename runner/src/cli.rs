//! Command-line definitions.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

/// Conformance checks for kube-proxy-style iptables rule generators.
///
/// Exit status: 0 when everything passed, 1 when a flow or an invariant
/// failed, 2 on a usage or input error.
#[derive(Debug, Parser)]
#[command(
    name = "kpconform",
    version,
    max_term_width = 100,
    after_help = "How to write scenarios (format, flow semantics): golden/README.md in the kpconform sources."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check one node's rules against a scenario: every flow of that node, and every invariant.
    Check(CheckArgs),
    /// Trace one packet through a rule set and print every path with its probability.
    Trace(TraceArgs),
    /// Check the structural invariants of a rule set, without a scenario.
    Lint(LintArgs),
    /// Print the generator input (YAML) a scenario gives one node.
    Input(InputArgs),
    /// Run a generator over every scenario: flows, invariants and snapshots per scenario@node.
    ///
    /// Exit status: 0 when every case passed, 1 when any is broken, changed or
    /// erred, 2 on a usage or setup error (no scenarios, unreadable directory,
    /// a scenario file that does not load).
    Run(RunArgs),
    /// Print the reference generator's rules (kube-proxy v1.30) for one node.
    Generate(GenerateArgs),
    /// What the scenario corpus covers: the feature x scenario table (exit 1 if a feature has
    /// no scenario), or with --recorded the scenarios built on real kube-proxy recordings.
    Corpus(CorpusArgs),
    /// Turn `kubectl get svc,endpointslices,nodes -o yaml` output into a scenario skeleton with
    /// one suggested flow per service address (expectations from the semantic oracle: check them).
    NewScenario(NewScenarioArgs),
    /// Is this node's rule set right for this cluster state? Checks the invariants and traces
    /// every service address from every kind of source, against Kubernetes semantics (the
    /// semantic oracle), from `iptables-save` and `kubectl get svc,endpointslices,nodes -o yaml`.
    Audit(AuditArgs),
    /// Mutation self-test: apply known-bad edits (kube-proxy's bug history) to the reference
    /// generator's output for every scenario@node and report which ones the suite catches.
    ///
    /// Exit status: 0 when every applicable mutant is caught by some case, 1 when one is not,
    /// 2 on a setup error (a scenario that does not load, or whose unmutated output fails).
    Mutants(MutantsArgs),
    /// Time kpconform on production-sized nodes (1k to 50k Services, made by the reference
    /// generator) beside the kernel's own loader, `iptables-restore --test` of the same dump
    /// in a private network namespace (root only; the host's tables are never touched), and
    /// print medians, ratios to a baseline measured in the same run, peak memory and a
    /// linear fit.
    ///
    /// Exit status: 0 when everything was measured (and, with --check, every goal met), 1
    /// when --check finds a goal missed, 2 when something could not be measured.
    Bench(BenchArgs),
    /// Run a program and print its wall time (ns), peak resident memory (KiB) and exit status:
    /// how `bench` measures each step in a process of its own.
    #[command(hide = true)]
    Measure(MeasureArgs),
    /// Random valid cluster states and flows through a generator, judged by the invariants and
    /// the semantic oracle; the first finding is shrunk and printed as a ready-to-commit scenario.
    Fuzz(FuzzArgs),
    /// Behavioural diff of two generators (say, two releases) over the scenarios: for every
    /// scenario@node, each flow and every service address from every kind of source traced
    /// through both outputs; what changed for packets (endpoints and probabilities, verdicts,
    /// masquerading, session affinity), in words, then outputs whose text alone changed.
    /// Chain names and the order of order-free rules are no behaviour.
    ///
    /// Exit status: 0 when no behaviour changed, 1 when some did, 2 on a setup error (a
    /// generator that fails, rules that do not parse, a case with rules on one side only).
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MutantsArgs {
    /// Directory of scenario files, searched recursively.
    #[arg(long, value_name = "DIR", default_value = "golden/scenarios")]
    pub(crate) scenarios: PathBuf,
    /// Only cases whose `<scenario-id>@<node>` or one of whose tags contains TEXT
    /// (repeatable: any of them).
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Vec<String>,
    /// Report format on stdout; json prints the summary on stderr.
    #[arg(long, value_enum, default_value_t = MutantsFormatArg::Human)]
    pub(crate) format: MutantsFormatArg,
    /// Cases mutated in parallel [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub(crate) jobs: Option<NonZeroUsize>,
    /// List the mutants and exit.
    #[arg(long, conflicts_with_all = ["filter", "format"])]
    pub(crate) list: bool,
    /// Only what was not caught and the summary; no per-mutant table, no progress line.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum MutantsFormatArg {
    /// A table of mutants, what no scenario caught, and a summary.
    Human,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The node's rules: iptables-save or ip6tables-save output (`-` reads standard input).
    /// Give it twice for a dual-stack node, one dump per family: each is audited against its
    /// family's proxier.
    #[arg(long, value_name = "FILE", required = true)]
    pub(crate) rules: Vec<PathBuf>,
    /// The cluster state: `kubectl get svc,endpointslices,nodes -A -o yaml` output.
    #[arg(long, value_name = "FILE")]
    pub(crate) kubectl: PathBuf,
    /// The node the rules are from, and its addresses of one or both families (the first of a
    /// family is its node IP): NAME=IP[,IP..].
    #[arg(long, value_name = "NAME=IP")]
    pub(crate) node: String,
    /// kube-proxy's --cluster-cidr (where pods live): one CIDR, or one per family
    /// comma-separated. Without it, the IPv4 pod network the Nodes' spec.podCIDRs imply; without
    /// those (and for IPv6), what depends on it is left out (with a warning).
    #[arg(long, value_name = "CIDR[,CIDR]", value_delimiter = ',')]
    pub(crate) cluster_cidr: Vec<IpNet>,
    /// kube-proxy's --masquerade-all.
    #[arg(long)]
    pub(crate) masquerade_all: bool,
    /// kube-proxy's --iptables-masquerade-bit.
    #[arg(long, value_name = "BIT", default_value_t = 14, value_parser = clap::value_parser!(u8).range(0..=31))]
    pub(crate) masquerade_bit: u8,
    /// kube-proxy's --nodeport-addresses (comma-separated CIDRs; empty = all local addresses).
    #[arg(long, value_name = "CIDR[,CIDR..]", value_delimiter = ',')]
    pub(crate) node_port_addresses: Vec<IpNet>,
    /// Which invariants to check.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    pub(crate) profile: ProfileArg,
    /// Which probability `-m statistic` applies.
    #[arg(long, value_enum, default_value_t = ProbabilityArg::Kernel)]
    pub(crate) probability: ProbabilityArg,
    /// Also print a table per service port: the addresses probed and the result.
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,
    /// Probes traced and judged in parallel [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub(crate) jobs: Option<NonZeroUsize>,
    /// Only the differences, the violations and the summary; no notes, no progress line.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NewScenarioArgs {
    /// kubectl YAML output (`-` reads standard input): Services, EndpointSlices, Nodes, or Lists of them.
    #[arg(long, value_name = "FILE")]
    pub(crate) from_kubectl: PathBuf,
    /// A node and its addresses, NAME=IP[,IP..] (repeatable); the first one gets the flows.
    /// Needed when the input has no Node objects.
    #[arg(long, value_name = "NAME=IP")]
    pub(crate) node: Vec<String>,
    /// The pod network (kube-proxy's --cluster-cidr); guessed from the Nodes' podCIDRs otherwise.
    #[arg(long, value_name = "CIDR")]
    pub(crate) cluster_cidr: Option<IpNet>,
    /// The scenario's description.
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CorpusArgs {
    /// The scenario directory.
    #[arg(long, value_name = "DIR", default_value = "golden/scenarios")]
    pub(crate) scenarios: PathBuf,
    /// Print the feature x scenario coverage table (the default).
    #[arg(long, conflicts_with = "recorded")]
    pub(crate) coverage: bool,
    /// Print which scenarios have a real kube-proxy recording behind them.
    #[arg(long)]
    pub(crate) recorded: bool,
    /// Write a recorded-rules directory (the layout `run --rules-dir` reads) from recordings
    /// of real kube-proxy: every scenario tagged `recorded:<case>` gets FOLDER/outputs/<case>.rules
    /// as DIR/<scenario-id>/<node>.rules (or .ipv6.rules), node and family taken from the
    /// case's generator input. Needs --from-recordings.
    #[arg(long, value_name = "DIR", requires = "from_recordings", conflicts_with_all = ["coverage", "recorded"])]
    pub(crate) rules_dir: Option<PathBuf>,
    /// A recordings folder (with outputs/ and, unless --inputs says otherwise, inputs/); repeatable.
    #[arg(long, value_name = "FOLDER", requires = "rules_dir")]
    pub(crate) from_recordings: Vec<PathBuf>,
    /// Where the generator inputs of folders without inputs/ are (kube-proxy-v1.28 reuses the
    /// v1.30 inputs).
    #[arg(long, value_name = "FOLDER", requires = "rules_dir")]
    pub(crate) inputs: Option<PathBuf>,
}

/// How rule files are read.
#[derive(Debug, Args, Clone)]
pub(crate) struct ParseArgs {
    /// Accept matches and targets the suite does not model (they never match / do nothing) and warn.
    #[arg(long)]
    pub(crate) lax: bool,
    /// Table for `-A` lines outside any `*table` block (e.g. `iptables-save | grep` output).
    #[arg(long, value_name = "TABLE")]
    pub(crate) table: Option<TableArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TableArg {
    Raw,
    Mangle,
    Filter,
    Nat,
    Security,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ProfileArg {
    /// Pick kube-proxy when any KUBE- chain exists, generic otherwise.
    Auto,
    /// Only what every iptables rule set must satisfy.
    Generic,
    /// Generic plus kube-proxy's structure.
    KubeProxy,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub(crate) enum ProbabilityArg {
    /// round(p * 2^31) / 2^31, what the kernel applies.
    #[default]
    Kernel,
    /// The decimal as written in the rule.
    Written,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Scenario file (YAML, contract section 1).
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: PathBuf,
    /// The node whose rules these are.
    #[arg(long, value_name = "NAME")]
    pub(crate) node: String,
    /// The node's rules: iptables-save output (`-` reads standard input). Give it twice for a
    /// dual-stack node: the iptables-save and the ip6tables-save dump (each dump's family is
    /// that of the addresses it names). A family of the node with flows but no dump fails.
    #[arg(long, value_name = "FILE", required = true)]
    pub(crate) rules: Vec<PathBuf>,
    /// Which invariants to check.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    pub(crate) profile: ProfileArg,
    /// Which probability `-m statistic` applies.
    #[arg(long, value_enum, default_value_t = ProbabilityArg::Kernel)]
    pub(crate) probability: ProbabilityArg,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
    #[command(flatten)]
    pub(crate) kernel: KernelArgs,
}

/// Real-kernel mode (needs root; see docs/kernel-mode.md).
#[derive(Debug, Args)]
pub(crate) struct KernelArgs {
    /// Also send every flow as real connections through the rules loaded into a real kernel,
    /// in private network namespaces built like the node (root only; the host's network is
    /// never touched). Each flow is judged by the kernel against its `expect`, and the
    /// tracer's prediction is cross-checked against what the kernel did.
    #[arg(long, help_heading = "Kernel mode")]
    pub(crate) kernel: bool,
    /// The iptables backend that loads the rules in kernel mode.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = IptablesArg::Nft,
          requires = "kernel", help_heading = "Kernel mode")]
    pub(crate) iptables: IptablesArg,
    /// Connections per flow that may be accepted, in kernel mode (the sample of the
    /// statistical tests).
    #[arg(long, value_name = "N", default_value = "1000", requires = "kernel",
          value_parser = clap::value_parser!(u32).range(20..=50_000), help_heading = "Kernel mode")]
    pub(crate) connections: u32,
}

impl KernelArgs {
    /// The kernel-mode options, when `--kernel` is given.
    pub(crate) fn options(&self) -> Option<kpconform_kernel::Options> {
        self.kernel.then(|| kpconform_kernel::Options {
            backend: match self.iptables {
                IptablesArg::Nft => kpconform_kernel::Backend::Nft,
                IptablesArg::Legacy => kpconform_kernel::Backend::Legacy,
            },
            connections: self.connections,
            ..kpconform_kernel::Options::default()
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Cluster sizes to measure, in Services (comma-separated; 1 to 200000 each).
    #[arg(long, value_name = "N[,N..]", value_delimiter = ',', default_value = "1000,10000,20000,50000",
          value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub(crate) services: Vec<u32>,
    /// Runs per step; each figure is the median.
    #[arg(long, value_name = "N", default_value = "3",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) runs: u32,
    /// The iptables-restore backends to time beside lint (comma-separated).
    #[arg(
        long,
        value_enum,
        value_name = "BACKEND[,BACKEND]",
        value_delimiter = ',',
        default_value = "nft,legacy"
    )]
    pub(crate) iptables: Vec<IptablesArg>,
    /// Do not time iptables-restore (no root needed).
    #[arg(long)]
    pub(crate) no_restore: bool,
    /// Exit 1 unless every goal is met at 10,000 Services and more: lint at least 10x faster
    /// than the faster restore --test with a peak of at most 3x the dump, audit faster than
    /// the nft restore --test, and every step linear (R^2 >= 0.98 over three sizes or more).
    #[arg(long)]
    pub(crate) check: bool,
    /// Keep the generated inputs, kubectl dumps and rules in DIR (default: a temporary
    /// directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub(crate) keep: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MeasureArgs {
    /// The program's standard input (default: none).
    #[arg(long, value_name = "FILE")]
    pub(crate) stdin: Option<PathBuf>,
    /// Where the program's standard output goes (default: discarded).
    #[arg(long, value_name = "FILE")]
    pub(crate) stdout: Option<PathBuf>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum IptablesArg {
    /// iptables-nft-restore (nf_tables)
    Nft,
    /// iptables-legacy-restore (x_tables)
    Legacy,
}

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// The rules: iptables-save output or iptables commands (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub(crate) rules: PathBuf,
    /// The node's own addresses, of one or both families; the first of a family is the node IP
    /// of that family (comma-separated).
    #[arg(long, value_name = "IP[,IP..]", value_delimiter = ',', required = true)]
    pub(crate) node_ip: Vec<IpAddr>,
    /// The pod network, for reference in the output (kube-proxy's --cluster-cidr; one CIDR
    /// or one per family, comma-separated).
    #[arg(long, value_name = "CIDR[,CIDR]", value_delimiter = ',')]
    pub(crate) cluster_cidr: Vec<IpNet>,
    /// Source: an IP arriving from the network, or `node` for a packet the node sends (from its
    /// node IP of the packet's family).
    #[arg(long, value_name = "IP|node")]
    pub(crate) from: String,
    /// Destination as IP:PORT/PROTO or [IPv6]:PORT/PROTO, PROTO = tcp | udp | sctp; its family
    /// is the packet's and must be the rules'.
    #[arg(long, value_name = "IP:PORT/PROTO")]
    pub(crate) to: String,
    /// Which probability `-m statistic` applies.
    #[arg(long, value_enum, default_value_t = ProbabilityArg::Kernel)]
    pub(crate) probability: ProbabilityArg,
    /// Show every `-m statistic` rule a path fell through on a line of its own, with its text
    /// (by default a run of them in one chain is one line, so that the output of a service with
    /// n endpoints grows with n, not n^2).
    #[arg(long)]
    pub(crate) full: bool,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// The rules: iptables-save output or iptables commands (`-` reads standard input).
    #[arg(long, value_name = "FILE", required_unless_present = "list")]
    pub(crate) rules: Option<PathBuf>,
    /// Which invariants to check.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    pub(crate) profile: ProfileArg,
    /// List the invariants and exit.
    #[arg(long, conflicts_with = "rules")]
    pub(crate) list: bool,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Scenario file.
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: PathBuf,
    /// The node to render the input for.
    #[arg(long, value_name = "NAME")]
    pub(crate) node: String,
    /// The family of the rules the input is for (a dual-stack node's generator runs once per
    /// family) [default: the family of the node's first address].
    #[arg(long, value_name = "FAMILY", value_parser = parse_family)]
    pub(crate) family: Option<kpconform_iptables::model::Family>,
}

/// `--family`: `ipv4` or `ipv6` (any case).
fn parse_family(s: &str) -> Result<kpconform_iptables::model::Family, String> {
    use kpconform_iptables::model::Family;
    match s.to_ascii_lowercase().as_str() {
        "ipv4" => Ok(Family::Ipv4),
        "ipv6" => Ok(Family::Ipv6),
        _ => Err(format!("`{s}` is not a family (expected ipv4 or ipv6)")),
    }
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("source").required(true).args(["generator", "rules_dir", "reference"])
))]
pub(crate) struct RunArgs {
    /// External generator: a shell-like command line, given the generator input (YAML) on
    /// stdin, writing iptables-save text to stdout (contract section 2).
    #[arg(long, value_name = "CMD")]
    pub(crate) generator: Option<String>,
    /// Recorded rules instead of a generator: DIR/<scenario-id>/<node>.rules (IPv4) and
    /// DIR/<scenario-id>/<node>.ipv6.rules (IPv6).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules_dir: Option<PathBuf>,
    /// The built-in reference generator (kube-proxy v1.30).
    #[arg(long)]
    pub(crate) reference: bool,
    /// The generator's name in reports and its snapshot directory [default: the program's
    /// file name, the rules directory's name, or `reference`].
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Directory of scenario files, searched recursively.
    #[arg(long, value_name = "DIR", default_value = "golden/scenarios")]
    pub(crate) scenarios: PathBuf,
    /// Only cases whose `<scenario-id>@<node>` or one of whose tags contains TEXT
    /// (repeatable: any of them).
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Vec<String>,
    /// Compare each normalized output with DIR/<name>/<scenario-id>@<node>.snap (IPv4) or
    /// DIR/<name>/<scenario-id>@<node>.ipv6.snap (IPv6) (read only without --update;
    /// `cargo insta review` manages them too). Without it snapshots are not compared.
    #[arg(long, value_name = "DIR")]
    pub(crate) snapshots: Option<PathBuf>,
    /// With --snapshots: write every new and changed snapshot (atomically) instead of
    /// reporting it as changed, and say how many were created, updated and unchanged.
    /// Never deletes a snapshot.
    #[arg(long, requires = "snapshots")]
    pub(crate) update: bool,
    /// Keep every generator output, exactly as the generator printed it, in DIR in the
    /// recorded-rules layout (DIR/<scenario-id>/<node>.rules and <node>.ipv6.rules), so
    /// that `run --rules-dir DIR` reproduces the run.
    #[arg(long, value_name = "DIR")]
    pub(crate) save_outputs: Option<PathBuf>,
    /// Report format on stdout; json, junit and html print the summary table on stderr.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    pub(crate) format: FormatArg,
    /// Time limit per run of an external generator, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub(crate) timeout: Duration,
    /// Cases evaluated in parallel [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub(crate) jobs: Option<NonZeroUsize>,
    #[command(flatten)]
    pub(crate) kernel: KernelArgs,
    /// Only the summary and the failures (one line each, without walks); no progress line
    /// and no notes.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("old").required(true).args(["old_generator", "old_rules_dir", "old_reference"])
))]
#[command(group(
    ArgGroup::new("new").required(true).args(["new_generator", "new_rules_dir", "new_reference"])
))]
pub(crate) struct DiffArgs {
    /// The old generator: an external command, as `run --generator`.
    #[arg(long, value_name = "CMD")]
    pub(crate) old_generator: Option<String>,
    /// The old generator's recorded rules, as `run --rules-dir`.
    #[arg(long, value_name = "DIR")]
    pub(crate) old_rules_dir: Option<PathBuf>,
    /// The built-in reference generator (kube-proxy v1.30) as the old one.
    #[arg(long)]
    pub(crate) old_reference: bool,
    /// The new generator: an external command, as `run --generator`.
    #[arg(long, value_name = "CMD")]
    pub(crate) new_generator: Option<String>,
    /// The new generator's recorded rules, as `run --rules-dir`.
    #[arg(long, value_name = "DIR")]
    pub(crate) new_rules_dir: Option<PathBuf>,
    /// The built-in reference generator (kube-proxy v1.30) as the new one.
    #[arg(long)]
    pub(crate) new_reference: bool,
    /// Directory of scenario files, searched recursively.
    #[arg(long, value_name = "DIR", default_value = "golden/scenarios")]
    pub(crate) scenarios: PathBuf,
    /// Only cases whose `<scenario-id>@<node>` or one of whose tags contains TEXT
    /// (repeatable: any of them).
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Vec<String>,
    /// Report format on stdout: sentences and a summary, one JSON document
    /// (docs/schema/diff.schema.json), JUnit XML (a failing test case per
    /// changed case) or one HTML page.
    #[arg(long, value_enum, default_value_t = DiffFormatArg::Human)]
    pub(crate) format: DiffFormatArg,
    /// Only the behaviour changes and the summary: no list of text-only changes, no notes.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// Time limit per run of an external generator, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub(crate) timeout: Duration,
    /// Cases compared in parallel [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub(crate) jobs: Option<NonZeroUsize>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum DiffFormatArg {
    /// A sentence per behaviour change, then a summary.
    Human,
    /// One JSON document.
    Json,
    /// JUnit XML: one test case per compared case, failing on a behaviour change.
    Junit,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum FormatArg {
    /// Every failure explained, then a summary table.
    Human,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["scenario", "input"])))]
pub(crate) struct GenerateArgs {
    /// Scenario file.
    #[arg(long, value_name = "FILE", requires = "node")]
    pub(crate) scenario: Option<PathBuf>,
    /// The node to generate rules for.
    #[arg(long, value_name = "NAME")]
    pub(crate) node: Option<String>,
    /// A generator input file (YAML, contract section 2) instead of a scenario; `-` reads
    /// standard input, which makes `kpconform generate --input -` a generator command.
    #[arg(long, value_name = "FILE", conflicts_with = "node")]
    pub(crate) input: Option<PathBuf>,
}

/// The longest time limit per generator run, in seconds (a day): longer is
/// surely a typo, and far longer would overflow the generator's deadline.
const MAX_TIMEOUT_SECS: u32 = 86_400;

/// Parses a time limit per generator run in seconds (`10`, `0.5`): finite,
/// positive (at least a millisecond) and at most [`MAX_TIMEOUT_SECS`].
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let range = format!("expected seconds from 0.001 to {MAX_TIMEOUT_SECS}, e.g. 10 or 0.5");
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds ({range})"))?;
    let what = if secs.is_nan() || secs.is_infinite() {
        "is not a finite number"
    } else if secs < 0.0 {
        "is negative"
    } else if secs < 0.001 {
        "is too short"
    } else if secs > f64::from(MAX_TIMEOUT_SECS) {
        "is too long"
    } else {
        return Ok(Duration::from_secs_f64(secs));
    };
    Err(format!("`{s}` {what} ({range})"))
}

/// Parses a whole number from `min` to `u64::MAX`; the message says what
/// was wrong (negative, too large, too small, not a number) and gives
/// `example`.
fn parse_at_least(s: &str, min: u64, example: &str) -> Result<u64, String> {
    use std::num::IntErrorKind;
    let expected = format!(
        "expected a whole number from {min} to {}, e.g. {example}",
        u64::MAX
    );
    let n: u64 = s.trim().parse().map_err(|e: std::num::ParseIntError| {
        let what = match e.kind() {
            IntErrorKind::PosOverflow => "is too large",
            IntErrorKind::Empty => "is empty",
            _ if s.trim().starts_with('-') => "is negative",
            _ => "is not a whole number",
        };
        format!("`{s}` {what} ({expected})")
    })?;
    if n < min {
        return Err(format!("`{s}` is too small ({expected})"));
    }
    Ok(n)
}

/// `--jobs`: at least one thread.
fn parse_jobs(s: &str) -> Result<NonZeroUsize, String> {
    let n = parse_at_least(s, 1, "4")?;
    usize::try_from(n)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| format!("`{s}` is too many threads for this machine"))
}

/// `fuzz --cases`: at least one case (zero would pass having checked nothing).
fn parse_cases(s: &str) -> Result<u64, String> {
    parse_at_least(s, 1, "200")
}

/// `fuzz --seed`: any `u64`.
fn parse_seed(s: &str) -> Result<u64, String> {
    parse_at_least(s, 0, "42")
}

/// `fuzz --time`: at least a second (zero would stop before the first case).
fn parse_whole_seconds(s: &str) -> Result<u64, String> {
    parse_at_least(s, 1, "60")
}

/// Parses `IP:PORT/PROTO` (protocol in any case) with [`kpconform_iptables::Destination`]'s `FromStr`.
pub(crate) fn parse_destination(
    s: &str,
) -> Result<(SocketAddr, kpconform_iptables::model::Protocol), String> {
    let d: kpconform_iptables::Destination = s.parse().map_err(|e| format!("{e}"))?;
    Ok((d.addr, d.protocol))
}

impl From<ProbabilityArg> for kpconform_iptables::ProbabilityMode {
    fn from(p: ProbabilityArg) -> Self {
        match p {
            ProbabilityArg::Kernel => Self::Kernel,
            ProbabilityArg::Written => Self::AsWritten,
        }
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("gen").required(true).args(["generator", "reference"]))]
pub(crate) struct FuzzArgs {
    /// External generator command (generator protocol, contract section 2).
    #[arg(long, value_name = "CMD")]
    pub(crate) generator: Option<String>,
    /// The built-in reference generator.
    #[arg(long)]
    pub(crate) reference: bool,
    /// How many cases to try at most.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = parse_cases)]
    pub(crate) cases: u64,
    /// First case's seed (cases use SEED, SEED+1, ...) [default: the current time, printed].
    #[arg(long, value_name = "S", value_parser = parse_seed)]
    pub(crate) seed: Option<u64>,
    /// Stop after this many seconds even if fewer cases ran.
    #[arg(long, value_name = "SECS", value_parser = parse_whole_seconds)]
    pub(crate) time: Option<u64>,
    /// Time limit per generator run, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub(crate) timeout: Duration,
    /// Write the shrunk reproducer scenario here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Only the finding (or the summary); no progress line, no shrinking notes.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

/// `NAME=IP[,IP..]`, IPv4 or IPv6 addresses (a bare IP is a /32 or a /128), for `--node` of
/// audit and new-scenario.
pub(crate) fn parse_node_spec(spec: &str) -> Result<(String, Vec<IpNet>), String> {
    let (name, ips) = spec
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| {
            format!("`{spec}`: expected NAME=IP[,IP..], e.g. node-a=192.168.0.10,fd00::10")
        })?;
    let addresses = ips
        .split(',')
        .map(|ip| {
            ip.parse::<IpNet>()
                .or_else(|_| ip.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{spec}`: `{ip}` is not an IP address (IPv4 or IPv6)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), addresses))
}
