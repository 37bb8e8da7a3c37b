//! `sluice gen` (being written).

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ctx: &Ctx) -> anyhow::Result<()> {
    Err(crate::errors::CliError::new(
        "NOT_IMPLEMENTED",
        "gen is not built yet",
    ))
}
