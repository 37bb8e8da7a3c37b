//! `sluice bench ...`: comparative benchmarks. The harnesses live in `sluice-benches`; these
//! modules parse arguments and print. [`driven_binary`] and [`harness_error`] are the glue
//! every subcommand shares.

pub mod bus;
pub mod replay;
pub mod report;
pub mod sort;
pub mod sort_s3;

use std::path::PathBuf;

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Sort: sluice vs DuckDB's legacy query vs Polars vs sluice's own copy floor.
    Sort(sort::Args),
    /// Bus: append/read throughput vs `dd` and the legacy JSON-lines + fsync pattern.
    Bus(bus::Args),
    /// Replay: `sluice replay --max` end to end vs its decode floor (the same reader alone).
    Replay(replay::Args),
    /// Report: run sort, bus and replay and write report.html (SVG charts), .md and .json.
    Report(report::Args),
}

pub fn run(cmd: BenchCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Sort(a) => sort::run(a, ctx),
        BenchCommand::Bus(a) => bus::run(a, ctx),
        BenchCommand::Replay(a) => replay::run(a, ctx),
        BenchCommand::Report(a) => report::run(a, ctx),
    }
}

/// The sluice binary a harness drives as a child process (this very binary, so its build is
/// ours) and that build's name, `debug` or `release`: a debug build's numbers mean nothing
/// and the reports say so.
pub fn driven_binary() -> anyhow::Result<(PathBuf, String)> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::new(
            "IO_ERROR",
            format!("cannot locate the sluice binary to drive: {e}"),
        )
    })?;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    Ok((exe, build.to_string()))
}

/// A harness error as the CLI prints it (`error[CODE]: message`).
pub fn harness_error(e: sluice_benches::BenchError) -> anyhow::Error {
    CliError::new(e.code(), e.to_string())
}
