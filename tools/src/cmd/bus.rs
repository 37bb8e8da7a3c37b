//! `sluice bus ...` (being written).

use crate::cli::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// List topics.
    Topics,
}

pub fn run(_cmd: BusCommand, _ctx: &Ctx) -> anyhow::Result<()> {
    Err(crate::errors::CliError::new(
        "NOT_IMPLEMENTED",
        "bus is not built yet",
    ))
}
