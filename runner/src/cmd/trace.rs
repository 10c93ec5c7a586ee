//! (in progress)
use anyhow::{bail, Result};

use super::Outcome;

pub(crate) fn run(_args: &crate::cli::TraceArgs) -> Result<Outcome> {
    bail!("not wired yet")
}
