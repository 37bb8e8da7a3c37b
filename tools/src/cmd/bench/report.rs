//! `sluice bench report`: run the sort, bus and replay benchmarks and write `report.html`
//! (inline SVG charts, no script, no network), `report.md` and `report.json` into `--out`.
//! The driver is `sluice_benches::report`; this module parses flags, shows progress and
//! prints where the files are. Exits non-zero (BENCH_REPORT_INCOMPLETE) when a harness
//! failed, after writing the report that says which.

use std::path::PathBuf;

use sluice_benches::report::model::SectionStatus;
use sluice_benches::report::{self as driver, ReportConfig, Skippable};

use super::{driven_binary, harness_error};
use crate::cli::Ctx;
use crate::errors::CliError;

/// What `--skip` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Skip {
    Sort,
    Bus,
    Replay,
    Duckdb,
    Polars,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where report.html, report.md and report.json go (harness scratch in <out>/work).
    #[arg(long, default_value = ".bench/report")]
    pub out: PathBuf,
    /// Where generated inputs are kept and reused (<data>/sort-…, <data>/replay-…).
    #[arg(long, default_value = ".bench")]
    pub data: PathBuf,
    /// Rows of the sort and replay inputs [default: 20000000, or 20000 with --quick].
    #[arg(long)]
    pub rows: Option<u64>,
    /// Tiny inputs, one round: checks the pipeline in seconds; not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// Leave out benchmarks or contenders, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<Skip>,
    /// The python interpreter that has duckdb and polars.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let (sluice_bin, sluice_build) = driven_binary()?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let cfg = ReportConfig {
        out_dir: args.out,
        data_root: args.data,
        sluice_bin,
        sluice_build,
        python: args.python,
        rows: args.rows,
        quick: args.quick,
        skip: args.skip.iter().map(|s| skippable(*s)).collect(),
        command,
    };
    let json = ctx.json;
    let report = driver::run_report(&cfg, &mut |step| {
        if !json {
            eprintln!("bench report: {step} ...");
        }
    })
    .map_err(harness_error)?;

    let sections: Vec<serde_json::Value> = report
        .sections
        .iter()
        .map(|s| {
            serde_json::json!({
                "bench": s.bench,
                "status": s.status_line(),
                "targets": s.targets,
            })
        })
        .collect();
    let summary = serde_json::json!({
        "html": cfg.html_path(),
        "markdown": cfg.markdown_path(),
        "json": cfg.json_path(),
        "sections": sections,
        "loadavg_before": report.loadavg_before,
        "loadavg_after": report.loadavg_after,
    });
    ctx.emit(&summary, || human(&report, &cfg));
    let failed: Vec<&str> = report.failed().iter().map(|s| s.bench.as_str()).collect();
    if !failed.is_empty() {
        return Err(CliError::new(
            "BENCH_REPORT_INCOMPLETE",
            format!(
                "benchmark(s) failed: {} (the report says why: {})",
                failed.join(", "),
                cfg.markdown_path().display()
            ),
        ));
    }
    Ok(())
}

fn skippable(s: Skip) -> Skippable {
    match s {
        Skip::Sort => Skippable::Sort,
        Skip::Bus => Skippable::Bus,
        Skip::Replay => Skippable::Replay,
        Skip::Duckdb => Skippable::Duckdb,
        Skip::Polars => Skippable::Polars,
    }
}

fn human(report: &driver::Report, cfg: &ReportConfig) -> String {
    let mut lines = Vec::new();
    for s in &report.sections {
        lines.push(format!("{:<7} {}", s.bench, s.status_line()));
        if matches!(s.status, SectionStatus::Ran) {
            for t in &s.targets {
                lines.push(format!(
                    "        {:<10} {}: {}",
                    t.verdict.label(),
                    t.target,
                    t.detail
                ));
            }
        }
    }
    let load = |l: Option<[f64; 3]>| l.map_or("unknown".into(), |[a, _, _]| format!("{a:.2}"));
    lines.push(format!(
        "load average (1 min): {} before, {} after",
        load(report.loadavg_before),
        load(report.loadavg_after)
    ));
    for n in &report.notes {
        lines.push(format!("note: {n}"));
    }
    lines.push(format!(
        "report: {}\n        {}\n        {}",
        cfg.html_path().display(),
        cfg.markdown_path().display(),
        cfg.json_path().display()
    ));
    lines.join("\n")
}
