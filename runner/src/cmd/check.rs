//! (in progress)
use anyhow::{bail, Result};

use super::Outcome;

pub(crate) fn run(_args: &crate::cli::CheckArgs) -> Result<Outcome> {
    bail!("not wired yet")
}
