//! # `sluice bench report`: every benchmark in one run, written up for people
//!
//! What it is: a driver that runs the existing harnesses ([`crate::sort`], [`crate::bus`],
//! [`crate::replay`]) one after the other with matching settings, and writes what they
//! measured as a self-contained `report.html` (inline SVG bar charts, no script, no network),
//! a `report.md` (tables, for `docs/benchmarks.md`) and a `report.json` (every harness's raw
//! report plus the machine facts).
//! What it is not: a harness. It measures nothing itself; every number comes from a harness
//! unchanged, and [`sections`] only chooses columns and charts.
//!
//! ```text
//!  1 facts      machine (CPU, threads, RAM, kernel), load average before, DuckDB/Polars versions
//!  2 sort       crate::sort::run_sort_bench_observed   -> SortBenchReport   -> Section
//!  3 bus        crate::bus::run                        -> BusBenchReport    -> Section
//!  4 replay     crate::replay::run_replay_bench        -> ReplayBenchReport -> Section
//!  5 facts      load average after
//!  6 write      <out>/report.json, report.md, report.html (each atomically)
//! ```
//!
//! A harness that fails does not stop the others: its section is marked FAILED with its
//! error code, and the caller decides the exit status ([`Report::failed`]). `--quick` runs
//! every harness on tiny inputs (seconds, even in a debug build) to check the pipeline, not
//! to measure; DuckDB and Polars are used when python has them and skipped with a note when
//! it does not, in every mode.

mod html;
mod markdown;
pub mod model;
mod sections;
pub mod svg;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sluice_storage::publish;
use sluice_storage::timefmt::{format_rfc3339_micros, now_micros};

use crate::bus::{self, BusBenchConfig, BusBenchReport};
use crate::error::BenchError;
use crate::machine::{read_loadavg, MachineFacts};
use crate::replay::{self, ReplayBenchConfig, ReplayBenchReport};
use crate::sort::{self, ModuleProbe, SortBenchConfig, SortBenchReport};
use model::{Section, SectionStatus};
use sections::Identity;

pub use html::render as render_html;
pub use markdown::render as render_markdown;

/// Rows of the quick run's sort and replay inputs.
pub const QUICK_ROWS: u64 = 20_000;
/// Bytes per bus case in the quick run (the harness's minimum is 1 MiB).
pub const QUICK_BUS_BYTES: u64 = 4 << 20;

/// The benchmarks, and the optional contenders, that `--skip` can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skippable {
    Sort,
    Bus,
    Replay,
    Duckdb,
    Polars,
}

/// What to run and where to write.
#[derive(Debug, Clone, Serialize)]
pub struct ReportConfig {
    /// Where report.{html,md,json} go; the harnesses' scratch lives in `<out>/work/`.
    pub out_dir: PathBuf,
    /// Where the generated inputs live (kept and reused across runs, like `sluice bench sort`).
    pub data_root: PathBuf,
    /// The sluice binary the harnesses drive as a child process, and its build.
    pub sluice_bin: PathBuf,
    pub sluice_build: String,
    pub python: PathBuf,
    /// Rows for the sort and replay inputs (default: the issues' 20M, or [`QUICK_ROWS`]).
    pub rows: Option<u64>,
    pub quick: bool,
    pub skip: Vec<Skippable>,
    /// The command line, echoed in the report.
    pub command: String,
}

impl ReportConfig {
    fn skips(&self, what: Skippable) -> bool {
        self.skip.contains(&what)
    }

    pub fn html_path(&self) -> PathBuf {
        self.out_dir.join("report.html")
    }

    pub fn markdown_path(&self) -> PathBuf {
        self.out_dir.join("report.md")
    }

    pub fn json_path(&self) -> PathBuf {
        self.out_dir.join("report.json")
    }
}

/// Versions of what ran.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub sluice: String,
    pub sluice_build: String,
    pub python: PathBuf,
    /// `None`: not importable (the reason is in the report's notes).
    pub duckdb: Option<String>,
    pub polars: Option<String>,
}

/// Every harness's own report, as it returned it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawResults {
    pub sort: Option<SortBenchReport>,
    pub bus: Option<BusBenchReport>,
    pub replay: Option<ReplayBenchReport>,
}

/// `report.json`, and what the HTML and markdown render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report_version: u32,
    pub started_utc: String,
    pub elapsed_s: f64,
    pub command: String,
    pub quick: bool,
    pub machine: MachineFacts,
    pub loadavg_before: Option<[f64; 3]>,
    pub loadavg_after: Option<[f64; 3]>,
    pub versions: Versions,
    pub sections: Vec<Section>,
    pub notes: Vec<String>,
    pub raw: RawResults,
    /// Where the three files were written.
    pub files: Vec<PathBuf>,
}

impl Report {
    /// The benchmarks whose harness failed (not skipped ones, not failed targets).
    pub fn failed(&self) -> Vec<&Section> {
        self.sections
            .iter()
            .filter(|s| matches!(s.status, SectionStatus::Failed { .. }))
            .collect()
    }
}

/// Run the benchmarks (see the module doc), write the three files, return the report.
/// `on_step` hears what is running (`sort: warm page cache`, `bus: append 100 B`, ...).
pub fn run_report(cfg: &ReportConfig, on_step: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    if cfg.rows == Some(0) {
        return Err(BenchError::InvalidArgument(
            "--rows must be positive".into(),
        ));
    }
    let started = Instant::now();
    let started_utc = format_rfc3339_micros(now_micros());
    let machine = MachineFacts::read();
    let loadavg_before = machine.loadavg;
    let work = cfg.out_dir.join("work");
    std::fs::create_dir_all(&work).map_err(|e| BenchError::io(&work, e))?;

    // 1. Versions: probed once here so the report has them even when sort is skipped.
    on_step("probe python modules");
    let mut notes = Vec::new();
    let mut probe = |module: &str, skip: Skippable| {
        if cfg.skips(skip) {
            notes.push(format!("{module}: skipped (--skip {module})"));
            return None;
        }
        match sort::probe_module(&cfg.python, module) {
            ModuleProbe::Available { version } => Some(version),
            ModuleProbe::Missing { reason } => {
                notes.push(format!("{module}: not run: {reason}"));
                None
            }
        }
    };
    let versions = Versions {
        sluice: env!("CARGO_PKG_VERSION").to_string(),
        sluice_build: cfg.sluice_build.clone(),
        python: cfg.python.clone(),
        duckdb: probe("duckdb", Skippable::Duckdb),
        polars: probe("polars", Skippable::Polars),
    };
    if cfg.sluice_build == "debug" {
        notes.push(
            "sluice is a debug build: no number here is representative; build with \
             `cargo build --release -p sluice` and run ./target/release/sluice"
                .into(),
        );
    }
    if let Some([one, _, _]) = loadavg_before.filter(|l| l[0] > 0.5 * machine.nproc as f64) {
        notes.push(format!(
            "the machine was busy at the start (1-minute load {one:.2} on {} threads): \
             treat the numbers as preliminary",
            machine.nproc
        ));
    }

    // 2-4. The harnesses, each into its own section, in the order bus, replay, sort (the
    // report lists them sort, bus, replay). The sort section ends with the external
    // contenders, DuckDB (14 GB) and Polars (7 GB); the VM stayed slower for minutes
    // after them: a 20M replay took 22.67 s / 41.8 CPU s right after the sort section
    // and 19.54 s / 35.7 CPU s after the bus section alone (2026-11-27). Within the sort
    // section sluice and its copy floor run before DuckDB and Polars.
    let mut raw = RawResults::default();
    let bus_cfg = bus_config(cfg, &work);
    let bus_section = bench_section(
        &sections::BUS,
        cfg.skips(Skippable::Bus),
        bus_command(&bus_cfg),
        &mut raw.bus,
        || bus::run(&bus_cfg, |phase| on_step(&format!("bus: {phase}"))),
        sections::bus_section,
    );
    let replay_cfg = replay_config(cfg, &work);
    let replay_section = bench_section(
        &sections::REPLAY,
        cfg.skips(Skippable::Replay),
        replay_command(&replay_cfg),
        &mut raw.replay,
        || replay::run_replay_bench(&replay_cfg, &mut |what| on_step(&format!("replay: {what}"))),
        sections::replay_section,
    );
    // The replay's run directories (~4 GB at 20M events) are scratch, and the sort
    // section's DuckDB run with a memory limit needs ~4.7 GB of temp space after them.
    for runs in [
        replay_cfg.work_dir.join("runs"),
        replay_cfg.work_dir.join("runs-kafka"),
    ] {
        if runs.exists() {
            std::fs::remove_dir_all(&runs).map_err(|e| BenchError::io(&runs, e))?;
        }
    }
    let sort_cfg = sort_config(cfg, &work);
    let sort_section = bench_section(
        &sections::SORT,
        cfg.skips(Skippable::Sort),
        sort_command(&sort_cfg),
        &mut raw.sort,
        || {
            sort::run_sort_bench_observed(&sort_cfg, &mut |step| {
                on_step(&format!("sort: {}", step.what))
            })
        },
        sections::sort_section,
    );
    // 5-6. Close and write.
    on_step("write report");
    let mut report = Report {
        report_version: 1,
        started_utc,
        elapsed_s: started.elapsed().as_secs_f64(),
        command: cfg.command.clone(),
        quick: cfg.quick,
        machine,
        loadavg_before,
        loadavg_after: read_loadavg(),
        versions,
        sections: vec![sort_section, bus_section, replay_section],
        notes,
        raw,
        files: vec![cfg.html_path(), cfg.markdown_path(), cfg.json_path()],
    };
    report.notes.push(
        "wall times come from each harness's own clock; ratios compare contenders measured \
         in this same run; see report.json for every sample"
            .into(),
    );
    write_files(cfg, &report)?;
    Ok(report)
}

/// Write report.json, report.md and report.html, each atomically.
fn write_files(cfg: &ReportConfig, report: &Report) -> Result<(), BenchError> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| BenchError::io(&cfg.out_dir, e))?;
    publish::write_json_atomic(&cfg.json_path(), report)?;
    publish::write_atomic(&cfg.markdown_path(), render_markdown(report).as_bytes())?;
    publish::write_atomic(&cfg.html_path(), render_html(report).as_bytes())?;
    Ok(())
}

fn sort_config(cfg: &ReportConfig, work: &Path) -> SortBenchConfig {
    let mut c = SortBenchConfig::new(&cfg.sluice_bin);
    c.sluice_build = cfg.sluice_build.clone();
    c.python = cfg.python.clone();
    if cfg.quick {
        c.rows = QUICK_ROWS;
        c.files = 4;
    }
    c.rows = cfg.rows.unwrap_or(c.rows);
    c.data_dir = cfg
        .data_root
        .join(format!("sort-{}-{}-{}", c.rows, c.files, c.seed));
    c.work_dir = work.join("sort");
    // Only an explicit --skip skips; a module python lacks is found (and reported as
    // SKIPPED with the reason) by the harness itself.
    c.skip_duckdb = cfg.skips(Skippable::Duckdb);
    c.skip_polars = cfg.skips(Skippable::Polars);
    c
}

fn bus_config(cfg: &ReportConfig, work: &Path) -> BusBenchConfig {
    let (bytes, batch_bytes, legacy_events, repeat) = if cfg.quick {
        (QUICK_BUS_BYTES, 256 << 10, 50, 1)
    } else {
        (
            bus::DEFAULT_BYTES,
            bus::DEFAULT_BATCH_BYTES,
            bus::DEFAULT_LEGACY_EVENTS,
            3,
        )
    };
    BusBenchConfig {
        dir: work.join("bus"),
        bytes,
        batch_bytes,
        legacy_events,
        appenders: 2,
        repeat,
    }
}

fn replay_config(cfg: &ReportConfig, work: &Path) -> ReplayBenchConfig {
    let mut c = ReplayBenchConfig::new(&cfg.sluice_bin);
    c.sluice_build = cfg.sluice_build.clone();
    if cfg.quick {
        c.rows = QUICK_ROWS;
        c.files = 2;
    }
    c.rows = cfg.rows.unwrap_or(c.rows);
    c.data_dir = cfg.data_root.join(format!("replay-{}-{}", c.rows, c.seed));
    c.work_dir = work.join("replay");
    c
}

fn sort_command(c: &SortBenchConfig) -> String {
    let mut s = format!(
        "sluice bench sort --rows {} --files {} --seed {} --data {} --work {}",
        c.rows,
        c.files,
        c.seed,
        c.data_dir.display(),
        c.work_dir.display()
    );
    if c.skip_duckdb {
        s.push_str(" --skip-duckdb");
    }
    if c.skip_polars {
        s.push_str(" --skip-polars");
    }
    s
}

fn bus_command(c: &BusBenchConfig) -> String {
    format!(
        "sluice bench bus --bytes {}K --batch-bytes {}K --legacy-events {} --appenders {} \
         --repeat {} --dir {}",
        c.bytes >> 10,
        c.batch_bytes >> 10,
        c.legacy_events,
        c.appenders,
        c.repeat,
        c.dir.display()
    )
}

fn replay_command(c: &ReplayBenchConfig) -> String {
    format!(
        "sluice bench replay --rows {} --files {} --seed {} --data {} --work {}",
        c.rows,
        c.files,
        c.seed,
        c.data_dir.display(),
        c.work_dir.display()
    )
}

/// Run one harness unless it is skipped: its own report goes into `slot`, its section
/// (or a SKIPPED / FAILED one) is returned. A failed harness does not stop the others.
fn bench_section<R>(
    id: &Identity,
    skip: bool,
    reproduce: String,
    slot: &mut Option<R>,
    run: impl FnOnce() -> Result<R, BenchError>,
    to_section: fn(&R, String) -> Section,
) -> Section {
    if skip {
        return skipped(id);
    }
    match run() {
        Ok(r) => {
            let s = to_section(&r, reproduce);
            *slot = Some(r);
            s
        }
        Err(e) => failed(id, reproduce, &e),
    }
}

fn skipped(id: &Identity) -> Section {
    let mut s = Section::of(id, format!("sluice bench {}", id.bench));
    s.status = SectionStatus::Skipped {
        reason: format!("--skip {}", id.bench),
    };
    s
}

fn failed(id: &Identity, reproduce: String, e: &BenchError) -> Section {
    let mut s = Section::of(id, reproduce);
    s.status = SectionStatus::Failed {
        code: e.code().to_string(),
        message: e.to_string(),
    };
    s
}

#[cfg(test)]
mod tests;
