//! `sluice demo`: the main job on an embedded default, no servers.
//!
//! Generates a small engine run (default 1M traffic rows plus its context outputs) into a
//! fresh directory, then runs every stage that exists on it, and prints a summary table
//! (rows, time, throughput, where the files are) and what to look at next.
//!
//! Stages: gen -> sort (every output into its stream view) -> replay (`--max`, through the
//! in-process gate into the file bus under `runs/`) -> parity view (every view against its
//! source, receipt and manifest) -> parity bus (the bus and receipts against the views, by
//! event id). A failed parity check fails the demo with `PARITY_FAILED` after the summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sluice_storage::gen::{execute, plan, GenConfig};
use sluice_storage::view::default_view_root;

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo run (default: a new directory under the system temp dir).
    /// An existing directory must be empty or a previous demo's.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Traffic rows to generate (context outputs scale from it).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Files per traffic output.
    #[arg(long, default_value_t = 8)]
    pub files: usize,
    /// Seed of the generated data (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Memory limit for the sort.
    #[arg(long, default_value = "1GiB")]
    pub memory_limit: String,
}

/// Marks a directory as a demo's, so a rerun may replace its contents.
const MARKER: &str = ".sluice-demo";

/// One row of the summary table.
#[derive(Debug, serde::Serialize)]
struct Stage {
    stage: &'static str,
    rows: u64,
    seconds: f64,
    rows_per_sec: f64,
    output: String,
}

impl Stage {
    fn new(stage: &'static str, rows: u64, started: Instant, output: &Path) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        Stage {
            stage,
            rows,
            seconds,
            rows_per_sec: rows as f64 / seconds.max(1e-9),
            output: output.display().to_string(),
        }
    }
}

fn prepare_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "sluice-demo-{}",
            sluice_storage::timefmt::format_compact_seconds(sluice_storage::timefmt::now_micros())
        )),
    };
    if dir.exists() {
        let is_empty = std::fs::read_dir(&dir)?.next().is_none();
        if !is_empty && !dir.join(MARKER).exists() {
            return Err(CliError::new(
                "DEMO_DIR_NOT_EMPTY",
                format!(
                    "{} is not empty and not a previous demo's; give an empty or new --dir",
                    dir.display()
                ),
            ));
        }
        // A previous demo's directory: start over so every stage runs again.
        if !is_empty {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(MARKER), b"sluice demo directory; safe to delete\n")?;
    Ok(dir)
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let dir = prepare_dir(&args)?;
    let engine_root = dir.join("engine");
    let started_all = Instant::now();
    let mut stages = Vec::new();

    // 1. gen: a realistic engine run root.
    let cfg = GenConfig {
        rows: args.rows,
        files: args.files,
        seed: args.seed,
        ..GenConfig::new(&engine_root)
    };
    let t = Instant::now();
    let gen_plan = plan(&cfg)?;
    let bar = crate::progress::bar(ctx, gen_plan.total_rows(), "gen", "rows");
    let gen = execute(&gen_plan, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    stages.push(Stage::new("gen", gen.total_rows, t, &engine_root));

    // 2. sort: every output into its stream view (validated, receipted, published).
    let sort_cfg = sluice_sort::SortConfig {
        memory_limit: sluice_sort::parse_size(&args.memory_limit)?,
        ..sluice_sort::SortConfig::default()
    };
    let t = Instant::now();
    let mut sorted_rows = 0;
    let mut views = Vec::new();
    for output_id in &cfg.outputs {
        let source = sluice_sort::SortSource::engine_output(&engine_root, output_id, None)?;
        let report = sluice_sort::build_view(&sort_cfg, &source, &sluice_sort::NoProgress)?;
        sorted_rows += report.rows;
        views.push(report);
    }
    stages.push(Stage::new(
        "sort",
        sorted_rows,
        t,
        &default_view_root(&engine_root),
    ));

    // 3. replay: every view, flat out, through the gate into the file bus of a fresh run.
    let runs_dir = dir.join("runs");
    let t = Instant::now();
    let replay = replay_all(&engine_root, &runs_dir)?;
    stages.push(Stage::new(
        "replay",
        replay.events,
        t,
        &replay.run_root.join("eb"),
    ));

    // 4. parity view: every view against its source files, receipt and manifest.
    let t = Instant::now();
    let view_args = crate::cmd::parity::view::Args {
        engine_root: engine_root.clone(),
        view_root: None,
        output_id: Vec::new(),
        all: true,
    };
    let view_parity = crate::cmd::parity::view::check_views(&view_args, ctx)?;
    let checked: u64 = view_parity.iter().map(|v| v.view_rows).sum();
    stages.push(Stage::new(
        "parity view",
        checked,
        t,
        &default_view_root(&engine_root),
    ));

    // 5. parity bus: the bus and the receipts against the views, by event id.
    let t = Instant::now();
    let bus_args = crate::cmd::parity::bus::Args {
        run_root: Some(replay.run_root.clone()),
        engine_root: Some(engine_root.clone()),
        view_root: None,
        output_id: Vec::new(),
        runs_dir: runs_dir.clone(),
        platform: sluice_storage::run::DEFAULT_PLATFORM.to_string(),
        run_id: None,
        bus: None,
        memory: "256MiB".into(),
        temp_dir: None,
    };
    let (_, bus_parity) = crate::cmd::parity::bus::check(&bus_args, ctx)?;
    let bus_records: u64 = bus_parity.topics.iter().map(|t| t.records).sum();
    stages.push(Stage::new("parity bus", bus_records, t, &replay.run_root));

    let total_s = started_all.elapsed().as_secs_f64();
    let failed = view_parity
        .iter()
        .map(|v| crate::cmd::parity::failed_checks(&v.checks))
        .sum::<usize>()
        + crate::cmd::parity::failed_checks(&bus_parity.checks);
    let summary = serde_json::json!({
        "dir": dir,
        "engine_root": engine_root,
        "stages": stages,
        "views": views,
        "replay": replay,
        "parity": {
            "ok": failed == 0,
            "views": view_parity,
            "bus": bus_parity,
        },
        "total_seconds": total_s,
        "peak_rss_bytes": sluice_storage::process::peak_rss_bytes(),
    });
    ctx.emit(&summary, || {
        let mut s = human(&dir, &stages, &views, &replay, total_s);
        s.push_str(&parity_lines(
            &view_parity,
            &bus_parity,
            &replay.run_root,
            &engine_root,
        ));
        s
    });
    crate::cmd::parity::verdict("the demo run", failed)
}

/// The parity part of the human summary: one line per view, one for the bus, how to rerun.
fn parity_lines(
    views: &[sluice_sort::parity::view::ViewParity],
    bus: &sluice_ingest::parity::BusParity,
    run_root: &Path,
    engine_root: &Path,
) -> String {
    let mut s = String::from("\nparity:\n");
    for v in views {
        s.push_str(&format!(
            "  {} view {:<32} {} checks{}\n",
            if v.ok { "PASS" } else { "FAIL" },
            v.output_id,
            v.checks.len(),
            failed_names(&v.checks)
        ));
    }
    let admitted: u64 = bus.outputs.iter().map(|o| o.admitted).sum();
    s.push_str(&format!(
        "  {} bus  {} events on the bus exactly once, {} checks{}\n",
        if bus.ok { "PASS" } else { "FAIL" },
        admitted,
        bus.checks.len(),
        failed_names(&bus.checks)
    ));
    s.push_str(&format!(
        "\nrerun the checks (full tables):\n  sluice parity view --engine-root {e} --all\n  \
         sluice parity bus --run-root {r} --engine-root {e}\n",
        e = engine_root.display(),
        r = run_root.display()
    ));
    s
}

/// `sluice replay --engine-root ROOT --all --max --runs-dir RUNS`, with every other flag at
/// the replay command's own defaults (parsed by the same clap definition).
fn replay_all(
    engine_root: &Path,
    runs_dir: &Path,
) -> anyhow::Result<crate::cmd::replay::session::ReplaySummary> {
    use clap::Parser;
    #[derive(Parser)]
    struct ReplayCli {
        #[command(flatten)]
        args: crate::cmd::replay::Args,
    }
    let cli = ReplayCli::try_parse_from([
        "replay".as_ref(),
        "--engine-root".as_ref(),
        engine_root.as_os_str(),
        "--all".as_ref(),
        "--max".as_ref(),
        "--runs-dir".as_ref(),
        runs_dir.as_os_str(),
    ] as [&std::ffi::OsStr; 7])?;
    let opts = crate::cmd::replay::options(cli.args)?;
    crate::cmd::replay::session::run(&opts, &|_| {})
}

fn human(
    dir: &Path,
    stages: &[Stage],
    views: &[sluice_sort::ViewReport],
    replay: &crate::cmd::replay::session::ReplaySummary,
    total_s: f64,
) -> String {
    let mut s = format!("sluice demo in {}\n\n", dir.display());
    s.push_str(&format!(
        "{:<11} {:>12} {:>9} {:>14}  {}\n",
        "stage", "rows", "seconds", "rows/s", "where"
    ));
    for st in stages {
        s.push_str(&format!(
            "{:<11} {:>12} {:>9.2} {:>14.0}  {}\n",
            st.stage, st.rows, st.seconds, st.rows_per_sec, st.output
        ));
    }
    s.push_str(&format!("\ntotal {total_s:.2} s\n\nstream views:\n"));
    for v in views {
        s.push_str(&format!(
            "  {:<32} {:>10} rows  {:>3} parts  {}\n",
            v.output_id, v.rows, v.parts, v.view_dir
        ));
    }
    s.push_str(&format!(
        "\nreplay into {}: {} events, {} admitted, {} duplicate, {} quarantined\n",
        replay.run_root.display(),
        replay.events,
        replay.admitted,
        replay.duplicates,
        replay.quarantined
    ));
    let eb = replay.run_root.join("eb");
    s.push_str(&format!(
        "\ninspect the bus:\n  sluice bus topics --bus {eb}\n  \
         sluice bus describe --bus {eb} fp.bus.traffic.fraud.v1\n  \
         sluice bus tail --bus {eb} fp.bus.traffic.fraud.v1\n  \
         sluice bus get --bus {eb} fp.bus.traffic.fraud.v1 0 0\n  \
         sluice ingest lookup --run-root {r} --event-id <event_id from a record>\n",
        eb = eb.display(),
        r = replay.run_root.display()
    ));
    s.push_str("\nlook at a view's receipt, e.g.\n");
    if let Some(v) = views.first() {
        s.push_str(&format!(
            "  cat {}/{}\n",
            v.view_dir,
            sluice_storage::view::RECEIPT_FILE
        ));
    }
    s
}

/// `, failed: a, b` naming the failed checks, or nothing when all pass.
fn failed_names(checks: &[sluice_storage::check::Check]) -> String {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!(", failed: {}", failed.join(", "))
    }
}
