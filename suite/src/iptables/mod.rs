//! iptables rule sets: `lex` (never fails) → `parse` (strict or lax) → typed
//! [`model`] → `print`.

pub mod model;
pub mod parse;

pub use parse::{parse, parse_str, Mode, ParseError, Parsed};
