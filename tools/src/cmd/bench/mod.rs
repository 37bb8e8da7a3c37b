//! `sluice bench ...`: comparative benchmarks. The harnesses live in `sluice-benches`; these
//! modules parse arguments and print.

pub mod bus;
pub mod replay;
pub mod sort;

use crate::cli::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Sort: sluice vs DuckDB's legacy query vs Polars vs sluice's own copy floor.
    Sort(sort::Args),
    /// Bus: append/read throughput vs `dd` and the legacy JSON-lines + fsync pattern.
    Bus(bus::Args),
    /// Replay: `sluice replay --max` end to end vs its decode floor (the same reader alone).
    Replay(replay::Args),
}

pub fn run(cmd: BenchCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Sort(a) => sort::run(a, ctx),
        BenchCommand::Bus(a) => bus::run(a, ctx),
        BenchCommand::Replay(a) => replay::run(a, ctx),
    }
}
