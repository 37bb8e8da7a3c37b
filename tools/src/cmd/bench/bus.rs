//! `sluice bench bus`: append and read throughput of the file bus against `dd` and the
//! legacy JSON-lines + fsync pattern, in the same run. The harness is
//! `sluice_benches::bus`; this module parses flags and prints the report.

use std::path::PathBuf;

use sluice_benches::bus::{self as bench, BusBenchConfig};

use super::harness_error;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bytes of record values per case, e.g. 256M, 1G (also dd's byte count).
    #[arg(long, default_value = "256M", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Bytes of values per append_batch call (one fsync each), e.g. 4M.
    #[arg(long, default_value = "4M", value_parser = parse_bytes)]
    pub batch_bytes: u64,
    /// Events of the legacy pattern (one fsync each).
    #[arg(long, default_value_t = bench::DEFAULT_LEGACY_EVENTS)]
    pub legacy_events: u64,
    /// Appender threads in the group-commit cases.
    #[arg(long, default_value_t = 2)]
    pub appenders: usize,
    /// Rounds of all cases; the fastest run of each is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Work directory on the disk to measure; cases are deleted after they run.
    #[arg(long, default_value = ".bench/bus-work")]
    pub dir: PathBuf,
}

/// `4096`, `64K`, `256M`, `2G` (binary; `MB` is decimal), as every size flag reads them.
fn parse_bytes(s: &str) -> Result<u64, String> {
    sluice_sort::parse_size(s).map_err(|e| e.to_string())
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let cfg = BusBenchConfig {
        dir: args.dir,
        bytes: args.bytes,
        batch_bytes: args.batch_bytes,
        legacy_events: args.legacy_events,
        appenders: args.appenders,
        repeat: args.repeat,
    };
    let json = ctx.json;
    let report = bench::run(&cfg, |phase| {
        if !json {
            eprintln!("bench bus: {phase} ...");
        }
    })
    .map_err(harness_error)?;
    ctx.emit(&serde_json::to_value(&report)?, || bench::render(&report));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn parses_byte_counts() {
        assert_eq!(parse_bytes("256M"), Ok(256 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("x").is_err());
    }
}
