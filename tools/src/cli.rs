//! Argument parsing: the top-level `sluice` command and its subcommands.

use clap::{Parser, Subcommand};

use crate::cmd;

/// sluice: sort huge parquet engine outputs into time-ordered stream views and replay them,
/// at the speed of the disk, through an ingestion gate into a log-structured file bus.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Print a machine-readable JSON summary on stdout instead of human text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(flatten)]
    pub object_store: ObjectStoreArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on generated data, no servers needed.
    Demo(cmd::demo::Args),
    /// Generate a realistic engine run root (parquet outputs in the platform's hive layout).
    Gen(cmd::gen::Args),
    /// Sort engine outputs into time-ordered stream views (parquet parts + receipt).
    Sort(cmd::sort::Args),
    /// Inspect, verify, recover and write the log-structured file bus.
    #[command(subcommand)]
    Bus(cmd::bus::BusCommand),
    /// Benchmarks side by side with the alternatives (DuckDB, Polars, dd, legacy bus).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Resolve (and optionally create) the run-scoped directory runs/<platform>/<run_id>/.
    Run(cmd::run::Args),
    /// Replay stream views through the in-process gate into the file bus (paced, resumable).
    Replay(cmd::replay::Args),
    /// Query a run's gate state: receipt lookup, stats, audit of receipts against the bus.
    #[command(subcommand)]
    Ingest(cmd::ingest::IngestCommand),
    /// Offline parity: views against sources, the bus against views, a view against a reference.
    #[command(subcommand)]
    Parity(cmd::parity::ParityCommand),
}

/// Object-store settings for `s3://` roots, overriding the environment
/// (`OBJECT_STORE_ENDPOINT`/`AWS_ENDPOINT_URL`, `OBJECT_STORE_REGION`/`AWS_REGION`,
/// `OBJECT_STORE_PATH_STYLE`; see docs/s3.md). Credentials stay in the environment only, so
/// they never appear in process listings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ObjectStoreArgs {
    /// S3-compatible endpoint for s3:// URLs (e.g. http://127.0.0.1:9000 for MinIO).
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region for s3:// URLs.
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Path-style S3 addressing (bucket in the path, not the host name).
    #[arg(long, global = true, value_name = "BOOL")]
    pub s3_path_style: Option<bool>,
}

impl ObjectStoreArgs {
    /// Install the flags given (if any) before any object-store access.
    pub fn install(&self) {
        if self.s3_endpoint.is_none() && self.s3_region.is_none() && self.s3_path_style.is_none() {
            return;
        }
        sluice_storage::object::config::set_overrides(sluice_storage::object::config::Overrides {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            path_style: self.s3_path_style,
        });
    }
}

/// What every command gets besides its own arguments.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// `--json`: machine-readable output, no progress bars.
    pub json: bool,
}

impl Ctx {
    /// Print a JSON summary (with `--json`) or the human text.
    pub fn emit(&self, summary: &serde_json::Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{summary}");
        } else {
            println!("{}", human());
        }
    }
}
