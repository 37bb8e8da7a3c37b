//! The benchmark's input: generated once by `sluice gen`, reused while it exists (or any
//! parquet dataset given with `--input`), and read once untimed so every contender starts
//! from the same warm page cache.
//!
//! Dropping the OS cache (`echo 3 > /proc/sys/vm/drop_caches`) needs root, which a benchmark
//! must not rely on; the opposite extreme (everything cached) is reproducible without it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use parquet::file::reader::{FileReader, SerializedFileReader};
use sluice_storage::layout::{self, EngineRunReceipt};

use super::config::{SortBenchConfig, OUTPUT_ID};
use crate::error::BenchError;
use crate::proc;

/// The view name sluice sorts a `--input` dataset into.
pub const INPUT_VIEW_ID: &str = "bench_input";

/// The input as the contenders will see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputData {
    /// The engine run root (with `--input`: the pattern's literal directory).
    pub dir: PathBuf,
    /// The `--input` glob or directory, absolute, when given.
    pub pattern: Option<String>,
    pub output_id: String,
    /// Rows in all files (from their footers with `--input`; as generated otherwise).
    pub rows: u64,
    /// The output's `part-*.parquet` files, in byte order of their paths.
    pub files: Vec<PathBuf>,
    /// Their total size on disk.
    pub bytes: u64,
    /// Whether this run generated the data (`false`: reused).
    pub generated: bool,
    /// The generation command and its wall time, when this run generated the data.
    pub gen_command: Option<String>,
    pub gen_wall_s: Option<f64>,
}

/// Generate the input with `sluice gen` unless `<data>/run_receipt.json` exists, then find
/// the output's files.
pub fn ensure_input(cfg: &SortBenchConfig) -> Result<InputData, BenchError> {
    if let Some(pattern) = &cfg.input {
        return given_input(pattern);
    }
    let dir = cfg.data_dir.clone();
    let receipt = dir.join(EngineRunReceipt::FILE_NAME);
    let (mut generated, mut gen_command, mut gen_wall_s) = (false, None, None);
    if !receipt.is_file() {
        let mut cmd = gen_command_for(cfg);
        gen_command = Some(proc::command_line(&cmd));
        let run = proc::run_measured(&mut cmd)?;
        if !run.success {
            return Err(BenchError::DataGen {
                dir,
                status: run.status.clone(),
                stderr_tail: match run.stderr_excerpt(8, 12) {
                    t if t.is_empty() => "(no stderr)".to_string(),
                    t => t,
                },
            });
        }
        if !receipt.is_file() {
            return Err(BenchError::DataGen {
                dir,
                status: run.status.clone(),
                stderr_tail: format!("gen succeeded but wrote no {}", receipt.display()),
            });
        }
        generated = true;
        gen_wall_s = Some(run.wall_s);
    }
    let files = layout::discover_output(&dir, OUTPUT_ID)?;
    Ok(InputData {
        dir,
        pattern: None,
        output_id: OUTPUT_ID.to_string(),
        rows: cfg.rows,
        bytes: total_bytes(&files)?,
        files,
        generated,
        gen_command,
        gen_wall_s,
    })
}

/// A `--input` dataset: its files as `sluice sort --input` expands the pattern, and their
/// rows from the footers (for the space check; the contenders report what they wrote).
fn given_input(pattern: &str) -> Result<InputData, BenchError> {
    let files = layout::expand_glob(pattern)?;
    let mut rows = 0u64;
    for f in &files {
        let file = File::open(f).map_err(|e| BenchError::io(f, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| {
            BenchError::InvalidArgument(format!("--input: {} is not parquet: {e}", f.display()))
        })?;
        rows += reader.metadata().file_metadata().num_rows().max(0) as u64;
    }
    let dir = layout::glob_base(pattern);
    Ok(InputData {
        dir,
        pattern: Some(pattern.to_string()),
        output_id: INPUT_VIEW_ID.to_string(),
        rows,
        bytes: total_bytes(&files)?,
        files,
        generated: false,
        gen_command: None,
        gen_wall_s: None,
    })
}

fn total_bytes(files: &[PathBuf]) -> Result<u64, BenchError> {
    let mut bytes = 0u64;
    for f in files {
        bytes += std::fs::metadata(f)
            .map_err(|e| BenchError::io(f, e))?
            .len();
    }
    Ok(bytes)
}

/// `sluice gen --out DATA --rows N --files F --seed S --outputs OUTPUT_ID --json`, with
/// `--force` when an earlier generation left files but no receipt.
fn gen_command_for(cfg: &SortBenchConfig) -> Command {
    let mut cmd = Command::new(&cfg.sluice_bin);
    cmd.arg("gen")
        .arg("--out")
        .arg(&cfg.data_dir)
        .args(["--rows", &cfg.rows.to_string()])
        .args(["--files", &cfg.files.to_string()])
        .args(["--seed", &cfg.seed.to_string()])
        .args(["--outputs", OUTPUT_ID]);
    if cfg.data_dir.join("data").exists() {
        cmd.arg("--force");
    }
    cmd.arg("--json");
    cmd
}

/// Read every file once, untimed, so the page cache holds the whole input for every
/// contender alike. Returns the bytes read.
pub fn warm_page_cache(files: &[PathBuf]) -> Result<u64, BenchError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for path in files {
        total += read_through(path, &mut buf)?;
    }
    Ok(total)
}

fn read_through(path: &Path, buf: &mut [u8]) -> Result<u64, BenchError> {
    let mut f = File::open(path).map_err(|e| BenchError::io(path, e))?;
    let mut n = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BenchError::io(path, e)),
        }
    }
}

/// One path a line, for the python contenders (`--files-from`).
pub fn file_list_text(files: &[PathBuf]) -> String {
    let mut s = String::new();
    for f in files {
        s.push_str(&f.to_string_lossy());
        s.push('\n');
    }
    s
}
