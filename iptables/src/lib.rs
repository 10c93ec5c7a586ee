//! iptables rule sets as kube-proxy writes them, read exactly and followed
//! packet by packet: the first half of kpconform's data flow
//! (rules text → [`RuleSet`](model::RuleSet) → [`Distribution`]).
//!
//! ```
//! use kpconform_iptables::{model::Protocol, parse_str, FlowSource, Packet, Tracer};
//!
//! let rules = parse_str(
//!     "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n\
//!      -A PREROUTING -d 10.96.0.1/32 -j KUBE-SVC-X\n\
//!      -A KUBE-SVC-X -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.64.0.1:80\n\
//!      -A KUBE-SVC-X -j DNAT --to-destination 10.64.1.1:80\nCOMMIT\n",
//! )
//! .expect("valid iptables-save text");
//! let tracer = Tracer::new(&rules, &["192.168.0.10/24".parse().unwrap()]);
//! let client = FlowSource::Ip("203.0.113.7".parse().unwrap());
//! let dist = tracer.trace(&Packet::new(client, "10.96.0.1:80".parse().unwrap(), Protocol::Tcp))?;
//! // The kernel applies round(p * 2^31) / 2^31 = 715827883 / 2^31, and the
//! // tracer keeps it exact (shown to 12 digits).
//! assert_eq!(
//!     dist.to_string(),
//!     "nat PREROUTING > KUBE-SVC-X > DNAT 10.64.0.1:80 | accept  p=0.333333333489\n\
//!      nat PREROUTING > KUBE-SVC-X > DNAT 10.64.1.1:80 | accept  p=0.666666666511\n"
//! );
//! # Ok::<(), kpconform_iptables::TraceError>(())
//! ```
//!
//! The pieces, in data-flow order:
//!
//! - [`lex`] splits text into lines and tokens and never fails;
//! - [`parse`], [`parse_str`] and [`parse_with`] read `iptables-save` dumps,
//!   kube-proxy's `iptables-restore` input and `iptables` command lines into
//!   the typed [`model`], strict by default, with every error at its
//!   [`Span`];
//! - [`print`] writes a rule set back in `iptables-save` spelling;
//! - [`Tracer`] follows a [`Packet`] through every hook, exactly;
//! - [`normalize`] makes the deterministic text of snapshots.
//!
//! Probabilities are [`Probability`] values: the written decimal and the
//! kernel's `k / 2^31`, never floating point.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod lex;
mod mass;
pub mod model;
mod normalize;
mod parse;
mod print;
mod probability;
mod shape;
mod source;
mod trace;

pub use lex::{lines as lex, Line, Lines, Token};
pub use mass::{Mass, MassParseError};
pub use normalize::{normalize, ORDER_FREE_CHAINS};
pub use parse::{
    parse, parse_reader, parse_str, parse_with, ErrorKind as ParseErrorKind, Mode, Options,
    ParseError, Parsed, READ_BLOCK,
};
pub use print::{print, rule_line, rule_spec};
pub use probability::{
    kernel_fraction, Probability, ProbabilityError, ProbabilityMode, KERNEL_SCALE,
};
pub use shape::require_tables;
pub use source::{NotUtf8, SourceFile, Span};
pub use trace::{
    format_probability, Action, Destination, DestinationError, Distribution, FlowSource, Outcome,
    Packet, RecentEntry, RecentState, Scan, Step, TraceError, TraceErrorKind, Tracer, Verdict,
    Walk, WalkItem, EXTERNAL_IFACE, LOOPBACK_IFACE, MAX_DEPTH, MAX_ENTRIES, MAX_PATHS,
    MAX_RULE_EVALUATIONS, MAX_STAMPS, SOURCE_PORT,
};
