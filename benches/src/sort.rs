//! # `sluice bench sort`: sluice's sort side by side with DuckDB, Polars and its copy floor
//!
//! What it is: a harness that drives every contender as a separate child process on the same
//! generated input, one after the other, and reports wall time (its own clock), peak RSS (as
//! each process reports it), rows/s, ratios to sluice, and the issue's targets as PASS/FAIL.
//! What it is not: a micro-benchmark (criterion benches of the kernels live in
//! `benches/benches/`) nor a correctness test (the row-order parity tests live in `tests/`);
//! it only checks that each output has as many rows as sluice's.
//!
//! ```text
//!  1 ensure input      .bench/sort-<rows>-<files>-<seed>/  (sluice gen, once; reused after)
//!  2 prepare scratch   <work>/bench-sort/{files.txt, scripts/*.py, <one dir per contender>}
//!  3 warm page cache   read every input file once, untimed (no root to drop caches)
//!  4 for each repeat, for each contender, sequentially:
//!        wipe its dir -> sync -> [ spawn ─ child runs ─ exit ] -> read its JSON -> wipe
//!                                  └──── wall time ────┘          (rows, bytes, peak RSS)
//!  5 summarise         fastest run per contender; ratios vs sluice; rows equal to sluice's?
//!  6 check targets     >= 4x DuckDB, >= 1.8x Polars, peak RSS <= 1 GiB, <= 1.25x copy floor
//!  7 report            <work>/bench-sort.json (atomic), returned for printing
//! ```
//!
//! A contender that fails (non-zero exit, no JSON) is marked FAILED with its stderr tail and
//! the run goes on; a python module that does not import is SKIPPED with the reason. Only a
//! harness problem (no input, unwritable work dir) is a [`BenchError`].

mod config;
mod contenders;
mod data;
mod python;
mod render;
mod report;

use std::path::Path;
use std::time::Instant;

use sluice_storage::{publish, timefmt};

pub use config::{
    absolute, default_data_dir, SortBenchConfig, DEFAULT_FILES, DEFAULT_MEMORY_LIMIT, DEFAULT_ROWS,
    DEFAULT_SEED, DEFAULT_SORT_KEY, OUTPUT_ID,
};
pub use contenders::ContenderKind;
pub use data::InputData;
pub use python::{probe_module, ModuleProbe};
pub use render::render_text;
pub use report::{
    ConfigEcho, ContenderResult, RunStatus, SortBenchReport, TargetCheck, ToolVersions, Verdict,
};

use crate::error::BenchError;
use crate::machine::{self, MachineFacts};
use crate::proc;
use contenders::{Outcome, PythonSide};

/// What the harness is doing, for a progress display: step `index` (1-based) of `total`.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub index: usize,
    pub total: usize,
    pub what: &'a str,
}

/// Run the whole benchmark (see the module docs) and write `<work>/bench-sort.json`.
pub fn run_sort_bench(cfg: &SortBenchConfig) -> Result<SortBenchReport, BenchError> {
    run_sort_bench_observed(cfg, &mut |_| {})
}

/// [`run_sort_bench`], telling `on_step` before each phase and each contender run.
pub fn run_sort_bench_observed(
    cfg: &SortBenchConfig,
    on_step: &mut dyn FnMut(Step<'_>),
) -> Result<SortBenchReport, BenchError> {
    cfg.validate()?;
    // Children run in their own directories: every path they get must be absolute.
    let mut cfg = cfg.clone();
    cfg.data_dir = absolute(&cfg.data_dir);
    cfg.input = cfg
        .input
        .as_ref()
        .map(|p| absolute(Path::new(p)).to_string_lossy().into_owned());
    cfg.work_dir = absolute(&cfg.work_dir);
    let started = Instant::now();
    let started_utc = timefmt::format_rfc3339_micros(timefmt::now_micros());
    let machine = MachineFacts::read();

    // 1. Input.
    let total = 3 + 5 * cfg.repeat as usize;
    on_step(Step {
        index: 1,
        total,
        what: "input",
    });
    let input = data::ensure_input(&cfg)?;

    // 2. Scratch: files list, scripts, python probes, plans.
    let scratch = cfg.scratch_dir();
    reset_scratch(&scratch)?;
    let files_list = scratch.join("files.txt");
    std::fs::write(&files_list, data::file_list_text(&input.files))
        .map_err(|e| BenchError::io(&files_list, e))?;
    let (duckdb_script, polars_script) = python::write_scripts(&scratch.join("scripts"))?;
    let py = PythonSide {
        duckdb_script,
        polars_script,
        files_list,
        duckdb: availability(&cfg.python, "duckdb", cfg.skip_duckdb, "--skip-duckdb"),
        polars: availability(&cfg.python, "polars", cfg.skip_polars, "--skip-polars"),
    };
    let mut plans = contenders::plans(&cfg, &scratch, &py);
    // One contender runs at a time and its directory is wiped after it: the most any needs
    // is DuckDB's memory-limited temp files plus one output (about the input's size;
    // counted twice for margin).
    let duckdb_temp = if py.duckdb.is_ok() {
        input.rows * crate::space::DUCKDB_SPILL_PER_ROW
    } else {
        0
    };
    crate::space::ensure(
        &cfg.work_dir,
        duckdb_temp + 2 * input.bytes,
        "the contenders' outputs and DuckDB's temp files",
    )?;

    // 3. Warm cache.
    on_step(Step {
        index: 2,
        total,
        what: "warm page cache",
    });
    let warmed = data::warm_page_cache(&input.files)?;

    // 4. Runs, interleaved across repeats so drift in machine load hits every contender.
    let mut outcomes: Vec<Vec<Outcome>> = plans.iter().map(|_| Vec::new()).collect();
    let mut index = 2;
    for _ in 0..cfg.repeat {
        for (plan, runs) in plans.iter_mut().zip(outcomes.iter_mut()) {
            index += 1;
            if plan.command.is_none() {
                continue;
            }
            on_step(Step {
                index,
                total,
                what: &plan.name,
            });
            runs.push(contenders::run_once(plan)?);
        }
    }
    let loadavg_end = machine::read_loadavg();

    // 5-6. Summaries, ratios, targets.
    let mut rows: Vec<ContenderResult> = plans
        .iter()
        .zip(&outcomes)
        .map(|(plan, runs)| {
            let command = plan.command.as_ref().map(proc::command_line);
            report::summarize(plan, command, runs)
        })
        .collect();
    let rows_comparable = report::compare_to_sluice(&mut rows);
    let targets = report::check_targets(&rows);

    // 7. Report.
    on_step(Step {
        index: total,
        total,
        what: "report",
    });
    let notes = notes(&cfg, &machine, &py, &rows);
    let report = SortBenchReport {
        bench: "sort",
        report_version: 1,
        started_utc,
        elapsed_s: started.elapsed().as_secs_f64(),
        config: ConfigEcho {
            input: cfg.input.clone(),
            sort_key: cfg.sort_key.clone(),
            rows: cfg.rows,
            files: cfg.files,
            seed: cfg.seed,
            memory_limit: cfg.memory_limit.clone(),
            threads: cfg.threads,
            repeat: cfg.repeat,
            sluice_bin: cfg.sluice_bin.clone(),
            sluice_build: cfg.sluice_build.clone(),
            python: cfg.python.clone(),
            work_dir: cfg.work_dir.clone(),
        },
        versions: ToolVersions {
            sluice: env!("CARGO_PKG_VERSION").to_string(),
            duckdb: py.duckdb.as_ref().ok().cloned(),
            polars: py.polars.as_ref().ok().cloned(),
        },
        machine,
        loadavg_end,
        input,
        cache: format!(
            "warm: one untimed read of all {warmed} input bytes before the runs, so every \
             contender starts from the same warm page cache (dropping OS caches needs root); \
             `sync` before each run flushes the previous contender's writes"
        ),
        contenders: rows,
        targets,
        rows_comparable,
        notes,
        report_path: cfg.report_path(),
    };
    publish::write_json_atomic(&report.report_path, &report)?;
    Ok(report)
}

/// `Ok(version)` if the contender can run, else why not.
fn availability(python: &Path, module: &str, skip: bool, flag: &str) -> Result<String, String> {
    if skip {
        return Err(format!("skipped ({flag})"));
    }
    match python::probe_module(python, module) {
        ModuleProbe::Available { version } => Ok(version),
        ModuleProbe::Missing { reason } => Err(format!("skipped: {reason}")),
    }
}

/// Remove the previous run's scratch directory and start an empty one.
fn reset_scratch(scratch: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BenchError::io(scratch, e)),
    }
    std::fs::create_dir_all(scratch).map_err(|e| BenchError::io(scratch, e))
}

/// The caveat of a busy machine at the start. Other processes' CPU during each run (from
/// `/proc/stat`) is the precise signal; the load average also counts this process's own
/// earlier work (the replay section before the sort in `sluice bench report`), so it only
/// speaks when that measurement is missing.
fn load_note(loadavg: Option<[f64; 3]>, nproc: usize, others_measured: bool) -> Option<String> {
    let [one, _, _] = loadavg?;
    (!others_measured && one > 0.5 * nproc as f64).then(|| {
        format!(
            "the machine was busy at the start (1-minute load {one:.2} on {nproc} threads): \
             treat the times as preliminary"
        )
    })
}

/// Caveats a reader of the numbers must see.
fn notes(
    cfg: &SortBenchConfig,
    machine: &MachineFacts,
    py: &PythonSide,
    rows: &[ContenderResult],
) -> Vec<String> {
    let mut notes = Vec::new();
    if cfg.input.is_some() {
        notes.push(
            "the targets are the issue's, set for the generated traffic stream; on a given \
             dataset they are indicative"
                .to_string(),
        );
    }
    if cfg.sluice_build == "debug" {
        notes.push(format!(
            "sluice is a {} build: its times are not representative; use \
             `cargo build --release -p sluice` and ./target/release/sluice",
            cfg.sluice_build
        ));
    }
    let others_measured = rows
        .iter()
        .any(|r| render::others_share(r, machine.nproc).is_some());
    notes.extend(load_note(machine.loadavg, machine.nproc, others_measured));
    let busiest = rows
        .iter()
        .filter_map(|r| render::others_share(r, machine.nproc).map(|p| (p, &r.name)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((share, name)) = busiest.filter(|(p, _)| *p > 10.0) {
        notes.push(format!(
            "other processes used up to {share:.0}% of the machine's CPU during a run ({name}): \
             the contenders competed for the cores, treat the times as preliminary"
        ));
    }
    if py.polars.is_ok() {
        notes.push(
            "polars sorts by [ts, file index, row in file] with files ranked in byte order of \
             their paths: the same order as DuckDB's [ts, filename, file_row_number], without \
             carrying the path string per row (see benches/scripts/polars_sort.py)"
                .to_string(),
        );
    }
    notes.push(
        "wall time is the harness's clock around each whole process (start-up and imports \
         included); peak RSS is what each process reports (sluice: peak_rss_bytes; python: \
         ru_maxrss)"
            .to_string(),
    );
    notes
}

#[cfg(test)]
mod tests {
    use super::load_note;

    #[test]
    fn a_busy_start_is_noted_only_without_a_measurement_of_others_cpu() {
        let busy = Some([1.31, 1.0, 0.9]);
        assert!(load_note(busy, 2, false).is_some_and(|n| n.contains("1.31")));
        assert_eq!(load_note(busy, 2, true), None);
        assert_eq!(load_note(Some([0.9, 0.5, 0.4]), 2, false), None);
        assert_eq!(load_note(None, 2, false), None);
    }
}
