//! Command-line definitions.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::Ipv4Net;

/// Conformance checks for kube-proxy-style iptables rule generators.
///
/// Exit status: 0 when everything passed, 1 when a flow or an invariant
/// failed, 2 on a usage or input error.
#[derive(Debug, Parser)]
#[command(name = "kpconform", version, about, long_about = None, max_term_width = 100)]
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
    /// The node's rules: iptables-save output (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub(crate) rules: PathBuf,
    /// Which invariants to check.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    pub(crate) profile: ProfileArg,
    /// Which probability `-m statistic` applies.
    #[arg(long, value_enum, default_value_t = ProbabilityArg::Kernel)]
    pub(crate) probability: ProbabilityArg,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// The rules: iptables-save output or iptables commands (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub(crate) rules: PathBuf,
    /// The node's own addresses, first = the node IP (comma-separated).
    #[arg(long, value_name = "IP[,IP..]", value_delimiter = ',', required = true)]
    pub(crate) node_ip: Vec<Ipv4Addr>,
    /// The pod network, for reference in the output (kube-proxy's --cluster-cidr).
    #[arg(long, value_name = "CIDR")]
    pub(crate) cluster_cidr: Option<Ipv4Net>,
    /// Source: an IP arriving from the network, or `node` for a packet the node sends.
    #[arg(long, value_name = "IP|node")]
    pub(crate) from: String,
    /// Destination as IP:PORT/PROTO, PROTO = tcp | udp | sctp.
    #[arg(long, value_name = "IP:PORT/PROTO")]
    pub(crate) to: String,
    /// Which probability `-m statistic` applies.
    #[arg(long, value_enum, default_value_t = ProbabilityArg::Kernel)]
    pub(crate) probability: ProbabilityArg,
    #[command(flatten)]
    pub(crate) parse: ParseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// The rules: iptables-save output or iptables commands (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub(crate) rules: PathBuf,
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
}

/// Parses `IP:PORT/PROTO`.
pub(crate) fn parse_destination(
    s: &str,
) -> Result<(SocketAddrV4, kpconform_suite::iptables::model::Protocol), String> {
    use kpconform_suite::iptables::model::Protocol;
    let (addr, proto) = s
        .rsplit_once('/')
        .ok_or_else(|| format!("`{s}` is not IP:PORT/PROTO (e.g. 10.96.0.10:53/udp)"))?;
    let addr: SocketAddrV4 = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not IP:PORT (e.g. 10.96.0.10:53)"))?;
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => {
            return Err(format!(
                "unknown protocol `{other}` (expected tcp, udp or sctp)"
            ))
        }
    };
    Ok((addr, proto))
}

impl From<ProbabilityArg> for kpconform_suite::probability::ProbabilityMode {
    fn from(p: ProbabilityArg) -> Self {
        match p {
            ProbabilityArg::Kernel => Self::Kernel,
            ProbabilityArg::Written => Self::AsWritten,
        }
    }
}
