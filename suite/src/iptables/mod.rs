//! iptables rule sets: [`lex`] (never fails) → [`parse`](mod@parse) (strict or
//! lax) → typed [`model`] → [`print`](mod@print).

pub mod lex;
pub mod model;
pub mod parse;
pub mod print;

pub use parse::{parse, parse_str, parse_with, Mode, Options, ParseError, Parsed};
pub use print::print;
