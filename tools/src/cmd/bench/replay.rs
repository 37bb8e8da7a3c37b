//! `sluice bench replay`: `sluice replay --max` end to end against its decode floor, as child
//! processes on the same 20M-row traffic view. The harness is `sluice_benches::replay`;
//! this module parses flags, shows progress and prints the report.

use std::path::PathBuf;

use sluice_benches::replay::{self as bench, ReplayBenchConfig};

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows of `s3_event_stream_with_fraud_6B` to generate and sort.
    #[arg(long, default_value_t = bench::DEFAULT_ROWS)]
    pub rows: u64,
    /// Source files to generate them in.
    #[arg(long, default_value_t = bench::DEFAULT_FILES)]
    pub files: u32,
    /// Generator seed.
    #[arg(long, default_value_t = bench::DEFAULT_SEED)]
    pub seed: u64,
    /// Engine run root with the view; generated and sorted if it has no view
    /// [default: .bench/replay-<rows>-<seed>].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Scratch directory (run directories) and where bench-replay.json is written.
    #[arg(long, default_value = ".bench/replay-work")]
    pub work: PathBuf,
    /// Runs per contender (interleaved); the fastest is reported, all are kept in the JSON.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Partitions of the replayed topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// The replay's --dedupe-memory.
    #[arg(long, default_value = "256MiB")]
    pub dedupe_memory: String,
    /// Also replay into these Kafka brokers (`kafka://host:port[,…]`, a fresh broker: the
    /// topics must not hold an earlier run), once, as a third contender.
    #[arg(long)]
    pub bus: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let (exe, build) = super::driven_binary()?;
    let mut cfg = ReplayBenchConfig::new(exe);
    cfg.sluice_build = build;
    cfg.rows = args.rows;
    cfg.files = args.files;
    cfg.seed = args.seed;
    cfg.data_dir = args
        .data
        .unwrap_or_else(|| bench::default_data_dir(args.rows, args.seed));
    cfg.work_dir = args.work;
    cfg.repeat = args.repeat;
    cfg.partitions = args.partitions;
    cfg.dedupe_memory = args.dedupe_memory;
    if let Some(url) = args.bus {
        if !sluice_ingest::kafka::is_kafka_url(&url) {
            return Err(CliError::new(
                "INVALID_ARGUMENT",
                format!("--bus {url:?}: the benchmark compares the file bus with a kafka:// bus"),
            ));
        }
        cfg.kafka_bus = Some(url);
    }
    let bar = crate::progress::bar(ctx, 0, "bench", "steps");
    let report = bench::run_replay_bench(&cfg, &mut |what| bar.set_prefix(what.to_string()))
        .map_err(super::harness_error)?;
    bar.finish_and_clear();
    ctx.emit(&serde_json::to_value(&report)?, || {
        bench::render_text(&report)
    });
    Ok(())
}
