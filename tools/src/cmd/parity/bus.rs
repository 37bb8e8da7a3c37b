//! `sluice parity bus`: a replay's bus and receipts against the stream views, by event id
//! ([`sluice_ingest::parity::check_bus`]).
//!
//! The run is named by `--run-root`, or like `sluice replay` names it: `--runs-dir`,
//! `--platform` and `--run-id` (else `PLATFORM_RUN_ID`, else `ACTIVE_RUN_ID`). The views
//! come from `--engine-root` (or `--view-root`). The bus is the run's embedded file bus,
//! opened read-only, or `--bus URL` (any sink the platform can read back).

use std::path::PathBuf;

use sluice_ingest::parity::{check_bus, views_under, BusParity, BusParityOptions};
use sluice_storage::run::{RunIdSource, RunLayout, DEFAULT_PLATFORM};
use sluice_storage::view::default_view_root;

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("views").required(true).args(["engine_root", "view_root"])))]
pub struct Args {
    /// The run root `runs/<platform>/<platform_run_id>` (holds eb/ and ig/).
    #[arg(long, conflicts_with_all = ["run_id"])]
    pub run_root: Option<PathBuf>,
    /// The engine run root whose stream views were replayed.
    #[arg(long)]
    pub engine_root: Option<PathBuf>,
    /// Stream view root [default: <engine-root>/stream_view/ts_utc].
    #[arg(long)]
    pub view_root: Option<PathBuf>,
    /// Output ids to check [default: every output with a view].
    #[arg(long, value_delimiter = ',')]
    pub output_id: Vec<String>,
    /// Directory holding the run trees (without --run-root).
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Platform name (without --run-root).
    #[arg(long, default_value = DEFAULT_PLATFORM)]
    pub platform: String,
    /// platform_run_id [default: PLATFORM_RUN_ID, else runs/<platform>/ACTIVE_RUN_ID].
    #[arg(long)]
    pub run_id: Option<String>,
    /// Where the events went, if not the run's own file bus: file:DIR or kafka://host:port.
    #[arg(long)]
    pub bus: Option<String>,
    /// Memory for one bucket of the event-id join, e.g. 256MiB.
    #[arg(long, default_value = "256MiB")]
    pub memory: String,
    /// Scratch directory [default: the run root].
    #[arg(long)]
    pub temp_dir: Option<PathBuf>,
}

/// The run layout the flags name.
fn layout(args: &Args) -> anyhow::Result<RunLayout> {
    if let Some(root) = &args.run_root {
        return crate::cmd::ingest::run_layout(root);
    }
    let env = args
        .run_id
        .clone()
        .or_else(|| std::env::var("PLATFORM_RUN_ID").ok());
    let l = RunLayout::resolve_with(
        &args.runs_dir,
        &args.platform,
        env.as_deref(),
        sluice_storage::timefmt::now_micros(),
    )?;
    if l.source == RunIdSource::New {
        return Err(CliError::new(
            "RUN_NOT_FOUND",
            format!(
                "no run under {}: give --run-root or --run-id",
                args.runs_dir.join(&args.platform).display()
            ),
        ));
    }
    Ok(l)
}

/// Run the check (library call, shared with `sluice demo`).
pub fn check(args: &Args, ctx: &Ctx) -> anyhow::Result<(RunLayout, BusParity)> {
    let layout = layout(args)?;
    let root = layout.root();
    if !root.join("ig").is_dir() {
        return Err(CliError::new(
            "RUN_NOT_FOUND",
            format!("{} has no gate state (ig/)", root.display()),
        ));
    }
    let view_root = match (&args.view_root, &args.engine_root) {
        (Some(v), _) => v.clone(),
        (None, Some(e)) => default_view_root(&sluice_storage::object::fs::canonical_root(e)?),
        (None, None) => return Err(CliError::new("USAGE", "give --engine-root or --view-root")),
    };
    let memory = crate::cmd::replay::parse_size(&args.memory)
        .filter(|m| *m >= 1 << 20)
        .ok_or_else(|| CliError::new("INVALID_ARGUMENT", "--memory must be a size >= 1MiB"))?;
    let views = views_under(&view_root, &args.output_id)?;
    // About one view row, one bus record and one receipt per event.
    let total: u64 = views.iter().map(|v| v.receipt_rows * 3).sum();
    let bar = crate::progress::bar(ctx, total, "parity", "entries");
    let mut sink = crate::cmd::ingest::read_back_sink(args.bus.as_deref(), &layout)?;
    let opts = BusParityOptions {
        ig_dir: layout.ig(),
        views,
        temp_dir: args.temp_dir.clone().unwrap_or_else(|| root.clone()),
        memory,
    };
    let r = check_bus(&opts, sink.as_mut(), &|n| bar.inc(n));
    bar.finish_and_clear();
    Ok((layout, r?))
}

/// The human report.
pub fn human(root: &std::path::Path, r: &BusParity) -> String {
    let mut s = format!(
        "{} bus parity of {} ({} entries in {} buckets, {:.2} s)\n\n",
        if r.ok { "PASS" } else { "FAIL" },
        root.display(),
        r.entries,
        r.buckets,
        r.elapsed_s
    );
    s.push_str(&format!(
        "  {:<32} {:>10} {:>10} {:>11} {:>10}\n",
        "output", "view rows", "admitted", "quarantined", "no id"
    ));
    for o in &r.outputs {
        s.push_str(&format!(
            "  {:<32} {:>10} {:>10} {:>11} {:>10}\n",
            o.output_id, o.view_rows, o.admitted, o.quarantined, o.without_event_id
        ));
    }
    s.push_str(&format!(
        "\n  {:<40} {:>10} {:>10}\n",
        "topic", "partitions", "records"
    ));
    for t in &r.topics {
        s.push_str(&format!(
            "  {:<40} {:>10} {:>10}\n",
            t.topic, t.partitions, t.records
        ));
    }
    s.push_str(&format!(
        "\n  receipts: {} ADMIT, {} DUPLICATE, {} QUARANTINE\n\n",
        r.receipts.admit, r.receipts.duplicate, r.receipts.quarantine
    ));
    s.push_str(&super::check_table(&r.checks));
    s
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let (layout, r) = check(&args, ctx)?;
    let value = serde_json::to_value(&r)?;
    ctx.emit(&value, || human(&layout.root(), &r));
    super::verdict("the bus", super::failed_checks(&r.checks))
}
