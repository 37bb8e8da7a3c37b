//! The contenders and how one run of each is made and read back.
//!
//! | contender              | process                                   | output it writes          |
//! |------------------------|-------------------------------------------|---------------------------|
//! | sluice                 | `sluice sort … --memory-limit M`          | a stream view (parts)     |
//! | sluice copy floor      | `sluice sort … --copy-floor` (no sorting) | same files, same encoding |
//! | duckdb                 | `python duckdb_sort.py` (default settings)| one zstd parquet file     |
//! | duckdb memory_limit=M  | same, `SET memory_limit`, temp under work | one zstd parquet file     |
//! | polars                 | `python polars_sort.py` (`sink_parquet`)  | one zstd parquet file     |
//!
//! Each has its own directory under the scratch dir, wiped before and after every run, so no
//! output or spill file survives into the next contender's run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::config::{SortBenchConfig, OUTPUT_ID};
use super::data::INPUT_VIEW_ID;
use crate::cpu::CpuUse;
use crate::error::BenchError;
use crate::proc;

/// The platform's sort knobs: removed from sluice's environment so that only the flags the
/// report shows decide its settings.
const SORT_ENV: [&str; 4] = [
    "STREAM_SORT_MEMORY_LIMIT",
    "STREAM_SORT_TEMP_DIR",
    "STREAM_SORT_MAX_TEMP_SIZE",
    "STREAM_SORT_THREADS",
];

/// Which contender a row of the report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContenderKind {
    Sluice,
    SluiceCopyFloor,
    Duckdb,
    DuckdbMemoryLimited,
    Polars,
}

impl ContenderKind {
    fn is_sluice(self) -> bool {
        matches!(self, ContenderKind::Sluice | ContenderKind::SluiceCopyFloor)
    }
}

/// One contender, ready to run (or skipped, with the reason).
#[derive(Debug)]
pub struct Plan {
    pub kind: ContenderKind,
    /// The name in the report's table.
    pub name: String,
    /// What it does, in one line.
    pub what: String,
    /// Its scratch directory (wiped before and after each run).
    pub dir: PathBuf,
    /// `None` when skipped.
    pub command: Option<Command>,
    pub skip_reason: Option<String>,
}

/// What the python contenders need: the interpreter, the scripts, the input list, and
/// whether each module imports.
#[derive(Debug)]
pub struct PythonSide {
    pub duckdb_script: PathBuf,
    pub polars_script: PathBuf,
    pub files_list: PathBuf,
    /// `Ok(version)`, or `Err(reason)` when DuckDB cannot run (not importable, or skipped).
    pub duckdb: Result<String, String>,
    /// The same for Polars.
    pub polars: Result<String, String>,
}

/// The contenders in run order.
pub fn plans(cfg: &SortBenchConfig, scratch: &Path, py: &PythonSide) -> Vec<Plan> {
    let mut out = vec![sluice_plan(cfg, scratch, false)];
    if cfg.skip_copy {
        out.push(skipped(
            sluice_plan(cfg, scratch, true),
            "skipped (--skip-copy)",
        ));
    } else {
        out.push(sluice_plan(cfg, scratch, true));
    }
    for limited in [false, true] {
        let plan = duckdb_plan(cfg, scratch, py, limited);
        out.push(match &py.duckdb {
            Ok(_) => plan,
            Err(reason) => skipped(plan, reason),
        });
    }
    let plan = polars_plan(cfg, scratch, py);
    out.push(match &py.polars {
        Ok(_) => plan,
        Err(reason) => skipped(plan, reason),
    });
    out
}

fn skipped(mut plan: Plan, reason: &str) -> Plan {
    plan.command = None;
    plan.skip_reason = Some(reason.to_string());
    plan
}

fn sluice_plan(cfg: &SortBenchConfig, scratch: &Path, copy_floor: bool) -> Plan {
    let (kind, name, dirname) = if copy_floor {
        (
            ContenderKind::SluiceCopyFloor,
            "sluice copy floor",
            "copy-floor",
        )
    } else {
        (ContenderKind::Sluice, "sluice", "sluice")
    };
    let dir = scratch.join(dirname);
    let mut cmd = Command::new(&cfg.sluice_bin);
    cmd.arg("sort");
    match &cfg.input {
        Some(pattern) => cmd.args(["--input", pattern, "--output-id", INPUT_VIEW_ID]),
        None => cmd
            .arg("--engine-root")
            .arg(&cfg.data_dir)
            .args(["--output-id", OUTPUT_ID]),
    };
    if let Some(key) = cfg.custom_sort_key() {
        cmd.args(["--sort-key", key]);
    }
    cmd.arg("--view-root")
        .arg(dir.join("view"))
        .args(["--memory-limit", &cfg.memory_limit])
        // Spill next to the other contenders' spill, on the work disk (never a tmpfs /tmp,
        // which would hide spill I/O in RAM).
        .arg("--temp-dir")
        .arg(dir.join("tmp"));
    if let Some(n) = cfg.threads {
        cmd.args(["--threads", &n.to_string()]);
    }
    if copy_floor {
        cmd.arg("--copy-floor");
    }
    cmd.args(["--force", "--json"]);
    for var in SORT_ENV {
        cmd.env_remove(var);
    }
    let what = if copy_floor {
        "no sort: reads and re-encodes the same files, same settings".to_string()
    } else {
        format!(
            "sort into a fresh stream view, default settings, --memory-limit {}",
            cfg.memory_limit
        )
    };
    Plan {
        kind,
        name: name.to_string(),
        what,
        dir,
        command: Some(cmd),
        skip_reason: None,
    }
}

fn duckdb_plan(cfg: &SortBenchConfig, scratch: &Path, py: &PythonSide, limited: bool) -> Plan {
    let dir = scratch.join(if limited { "duckdb-limited" } else { "duckdb" });
    let mut cmd = Command::new(&cfg.python);
    cmd.arg(&py.duckdb_script)
        .arg("--files-from")
        .arg(&py.files_list)
        .arg("--out")
        .arg(dir.join("out.parquet"));
    if let Some(key) = cfg.custom_sort_key() {
        cmd.args(["--sort-key", key]);
    }
    if limited {
        cmd.args(["--memory-limit", &cfg.memory_limit])
            .arg("--temp-dir")
            .arg(dir.join("tmp"));
    }
    if let Some(n) = cfg.threads {
        cmd.args(["--threads", &n.to_string()]);
    }
    // An in-memory DuckDB spills to `.tmp` in its working directory: keep that in scratch.
    cmd.current_dir(&dir);
    let (kind, name, what) = if limited {
        (
            ContenderKind::DuckdbMemoryLimited,
            format!("duckdb memory_limit={}", cfg.memory_limit),
            format!(
                "the legacy query with SET memory_limit='{}', temp_directory under work",
                cfg.memory_limit
            ),
        )
    } else {
        (
            ContenderKind::Duckdb,
            "duckdb".to_string(),
            "the platform's legacy COPY … ORDER BY query, default settings".to_string(),
        )
    };
    Plan {
        kind,
        name,
        what,
        dir,
        command: Some(cmd),
        skip_reason: None,
    }
}

fn polars_plan(cfg: &SortBenchConfig, scratch: &Path, py: &PythonSide) -> Plan {
    let dir = scratch.join("polars");
    let mut cmd = Command::new(&cfg.python);
    cmd.arg(&py.polars_script)
        .arg("--files-from")
        .arg(&py.files_list)
        .arg("--out")
        .arg(dir.join("out.parquet"))
        .current_dir(&dir);
    if let Some(key) = cfg.custom_sort_key() {
        cmd.args(["--sort-key", key]);
    }
    if let Some(n) = cfg.threads {
        cmd.env("POLARS_MAX_THREADS", n.to_string());
    }
    Plan {
        kind: ContenderKind::Polars,
        name: "polars".to_string(),
        what: "lazy scan per file + row index, sort [ts, file, row], sink_parquet zstd".to_string(),
        dir,
        command: Some(cmd),
        skip_reason: None,
    }
}

/// What one successful run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    pub wall_s: f64,
    /// CPU the contender used, and what other processes took meanwhile.
    pub cpu: CpuUse,
    pub peak_rss_bytes: Option<u64>,
    pub rows: u64,
    pub output_bytes: Option<u64>,
    /// The child's JSON summary, as printed.
    pub summary: Value,
}

/// One run of one contender.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok(Sample),
    Failed {
        status: String,
        wall_s: Option<f64>,
        /// The start and end of its stderr.
        stderr_tail: String,
        /// Where its whole stderr was saved, if it printed any.
        stderr_path: Option<PathBuf>,
    },
}

/// Run `plan` once: wipe its directory, flush dirty pages, run and time the child, read its
/// JSON summary, wipe its output. A child that fails is an [`Outcome::Failed`]; only a
/// scratch directory that cannot be wiped is an error.
pub fn run_once(plan: &mut Plan) -> Result<Outcome, BenchError> {
    let Some(cmd) = plan.command.as_mut() else {
        return Ok(Outcome::Failed {
            status: "not run".into(),
            wall_s: None,
            stderr_tail: plan.skip_reason.clone().unwrap_or_default(),
            stderr_path: None,
        });
    };
    reset_dir(&plan.dir)?;
    if plan.kind.is_sluice() {
        let tmp = plan.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| BenchError::io(&tmp, e))?;
    }
    proc::sync_filesystems();
    let outcome = match proc::run_measured(cmd) {
        Err(e) => Outcome::Failed {
            status: "could not start".into(),
            wall_s: None,
            stderr_tail: e.to_string(),
            stderr_path: None,
        },
        Ok(run) if !run.success => Outcome::Failed {
            status: run.status.clone(),
            wall_s: Some(run.wall_s),
            stderr_tail: run.stderr_excerpt(8, 12),
            stderr_path: save_stderr(&plan.dir, &run.stderr)?,
        },
        Ok(run) => match run
            .json()
            .and_then(|v| sample_from(plan.kind, run.wall_s, run.cpu, v))
        {
            Some(sample) => Outcome::Ok(sample),
            None => Outcome::Failed {
                status: format!("{}, but no JSON summary with a row count", run.status),
                wall_s: Some(run.wall_s),
                stderr_tail: format!(
                    "stdout: {}\nstderr: {}",
                    proc::excerpt(&run.stdout, 2, 3),
                    run.stderr_excerpt(5, 10)
                ),
                stderr_path: save_stderr(&plan.dir, &run.stderr)?,
            },
        },
    };
    reset_dir(&plan.dir)?;
    Ok(outcome)
}

/// Read rows, output bytes and peak RSS from a contender's JSON summary: sluice's
/// `{"views":[{"rows","bytes",…}],"peak_rss_bytes"}` or the scripts' flat
/// `{"rows","bytes","peak_rss_bytes"}`.
pub fn sample_from(
    kind: ContenderKind,
    wall_s: f64,
    cpu: CpuUse,
    summary: Value,
) -> Option<Sample> {
    let body = if kind.is_sluice() {
        summary.get("views")?.get(0)?
    } else {
        &summary
    };
    let rows = body.get("rows")?.as_u64()?;
    let output_bytes = body.get("bytes").and_then(Value::as_u64);
    let peak_rss_bytes = summary.get("peak_rss_bytes").and_then(Value::as_u64);
    Some(Sample {
        wall_s,
        cpu,
        peak_rss_bytes,
        rows,
        output_bytes,
        summary,
    })
}

/// Keep a failed run's whole stderr beside its (wiped) directory: `<dir>.stderr.txt`.
fn save_stderr(dir: &Path, stderr: &str) -> Result<Option<PathBuf>, BenchError> {
    if stderr.is_empty() {
        return Ok(None);
    }
    let path = dir.with_extension("stderr.txt");
    std::fs::write(&path, stderr).map_err(|e| BenchError::io(&path, e))?;
    Ok(Some(path))
}

/// Remove and recreate `dir` (the contender's own scratch directory).
fn reset_dir(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BenchError::io(dir, e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NO_CPU: CpuUse = CpuUse {
        cpu_s: None,
        others_cpu_s: None,
    };

    #[test]
    fn reads_sluice_and_script_summaries() {
        let sluice = json!({"views":[{"output_id":"x","rows":20,"bytes":300}],"elapsed_s":1.0,
                            "peak_rss_bytes":4096});
        let s = sample_from(ContenderKind::Sluice, 1.5, NO_CPU, sluice);
        let s = s.map(|s| (s.rows, s.output_bytes, s.peak_rss_bytes, s.wall_s));
        assert_eq!(s, Some((20, Some(300), Some(4096), 1.5)));
        let duck = json!({"rows":20,"bytes":310,"peak_rss_bytes":8192});
        let d = sample_from(ContenderKind::Duckdb, 2.0, NO_CPU, duck).map(|s| s.rows);
        assert_eq!(d, Some(20));
        assert!(sample_from(ContenderKind::Sluice, 1.0, NO_CPU, json!({"views":[]})).is_none());
        assert!(sample_from(ContenderKind::Polars, 1.0, NO_CPU, json!({"rows":"x"})).is_none());
    }

    fn cfg() -> SortBenchConfig {
        let mut c = SortBenchConfig::new("/bin/sluice");
        c.data_dir = "/d".into();
        c.threads = Some(2);
        c
    }

    fn py(duckdb: Result<String, String>) -> PythonSide {
        PythonSide {
            duckdb_script: "/w/s/duckdb_sort.py".into(),
            polars_script: "/w/s/polars_sort.py".into(),
            files_list: "/w/files.txt".into(),
            duckdb,
            polars: Ok("2.1.0".into()),
        }
    }

    #[test]
    fn plans_carry_the_settings_and_skips() {
        let mut c = cfg();
        c.skip_copy = true;
        let plans = plans(&c, Path::new("/w"), &py(Err("no duckdb".into())));
        let kinds: Vec<_> = plans.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ContenderKind::Sluice,
                ContenderKind::SluiceCopyFloor,
                ContenderKind::Duckdb,
                ContenderKind::DuckdbMemoryLimited,
                ContenderKind::Polars
            ]
        );
        let run: Vec<_> = plans.iter().map(|p| p.command.is_some()).collect();
        assert_eq!(run, [true, false, false, false, true]);
        let sluice = plans[0].command.as_ref().map(proc::command_line);
        let sluice = sluice.unwrap_or_default();
        assert!(sluice.contains("sort --engine-root /d"), "{sluice}");
        assert!(sluice.contains("--memory-limit 1GiB"), "{sluice}");
        assert!(sluice.contains("--threads 2"), "{sluice}");
        assert!(sluice.contains("-u STREAM_SORT_MEMORY_LIMIT"), "{sluice}");
        assert!(sluice.ends_with("--force --json"), "{sluice}");
        assert_eq!(plans[2].skip_reason.as_deref(), Some("no duckdb"));
        let polars = plans[4].command.as_ref().map(proc::command_line);
        assert!(polars.unwrap_or_default().contains("POLARS_MAX_THREADS=2"));
    }

    #[test]
    fn a_given_input_is_sorted_with_input_by_both_sluice_runs() {
        let mut c = cfg();
        c.input = Some("/data/**/*.parquet".into());
        let plans = plans(&c, Path::new("/w"), &py(Ok("2.0.1".into())));
        for p in &plans[..2] {
            let line = p.command.as_ref().map(proc::command_line);
            let line = line.unwrap_or_default();
            assert!(
                line.contains("sort --input '/data/**/*.parquet' --output-id bench_input"),
                "{line}"
            );
            assert!(!line.contains("--engine-root"), "{line}");
            assert!(!line.contains("--sort-key"), "{line}");
        }
        // Another time column reaches every contender; the default stays off the lines.
        c.sort_key = "event time".into();
        for p in &super::plans(&c, Path::new("/w"), &py(Ok("2.0.1".into()))) {
            let line = p.command.as_ref().map(proc::command_line);
            let line = line.unwrap_or_default();
            assert!(
                line.contains("--sort-key 'event time'"),
                "{}: {line}",
                p.name
            );
        }
    }

    #[test]
    fn the_limited_duckdb_run_gets_the_memory_limit_and_a_temp_dir() {
        let plans = plans(&cfg(), Path::new("/w"), &py(Ok("2.0.1".into())));
        let line = plans[3].command.as_ref().map(proc::command_line);
        let line = line.unwrap_or_default();
        assert!(line.contains("--memory-limit 1GiB"), "{line}");
        assert!(line.contains("--temp-dir /w/duckdb-limited/tmp"), "{line}");
        assert!(line.starts_with("cd /w/duckdb-limited &&"), "{line}");
        let copy = plans[1].command.as_ref().map(proc::command_line);
        assert!(copy
            .unwrap_or_default()
            .contains("--copy-floor --force --json"));
    }

    #[test]
    fn a_failing_child_becomes_a_failed_outcome() {
        let tmp = tempfile::tempdir();
        let Ok(tmp) = tmp else { panic!("tempdir") };
        let dir = tmp.path().join("p");
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo x > out.parquet && echo x > ../marker; echo 'Traceback: boom' >&2; exit 1",
        ])
        .current_dir(&dir);
        let mut plan = Plan {
            kind: ContenderKind::Polars,
            name: "p".into(),
            what: String::new(),
            dir: dir.clone(),
            command: Some(c),
            skip_reason: None,
        };
        let outcome = run_once(&mut plan);
        assert!(
            matches!(&outcome, Ok(Outcome::Failed { stderr_tail, .. }) if stderr_tail.contains("boom")),
            "{outcome:?}"
        );
        // The child did write (the marker beside its dir proves it ran there), and its
        // output was wiped after the run; its whole stderr is kept beside the directory.
        assert!(tmp.path().join("marker").is_file());
        assert!(!dir.join("out.parquet").exists());
        let saved = std::fs::read_to_string(tmp.path().join("p.stderr.txt"));
        assert_eq!(saved.ok().as_deref(), Some("Traceback: boom\n"));
    }
}
