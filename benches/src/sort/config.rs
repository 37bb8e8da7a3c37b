//! What one `sluice bench sort` run is asked to do, and where it keeps its files.

use std::path::{Path, PathBuf};

use sluice_storage::layout::glob_base;

use crate::error::BenchError;

/// The output the benchmark sorts: the platform's biggest traffic stream.
pub const OUTPUT_ID: &str = "s3_event_stream_with_fraud_6B";

/// The issue's reference size: 20M rows in 40 files.
pub const DEFAULT_ROWS: u64 = 20_000_000;
pub const DEFAULT_FILES: u32 = 40;
pub const DEFAULT_SEED: u64 = 1;
pub const DEFAULT_MEMORY_LIMIT: &str = "1GiB";
/// The platform's time column (the legacy query's `ts_utc`).
pub const DEFAULT_SORT_KEY: &str = "ts_utc";

/// Everything the sort benchmark needs; build with [`SortBenchConfig::new`] and adjust fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SortBenchConfig {
    /// The sluice binary driven as a child process (`gen`, `sort`, `sort --copy-floor`).
    pub sluice_bin: PathBuf,
    /// How that binary was built (`release`/`debug`); a debug build's numbers mean nothing.
    pub sluice_build: String,
    /// The python interpreter for the DuckDB and Polars contenders.
    pub python: PathBuf,
    pub rows: u64,
    pub files: u32,
    pub seed: u64,
    /// Engine run root holding the input (generated with `sluice gen` if it has no
    /// `run_receipt.json`).
    pub data_dir: PathBuf,
    /// Instead of the generated traffic output: any local parquet dataset with a `ts_utc`
    /// column, as a glob or a directory (what `sluice sort --input` takes). `rows`,
    /// `files`, `seed` and `data_dir` are then unused.
    pub input: Option<String>,
    /// The time column every contender sorts by.
    pub sort_key: String,
    /// Scratch space: outputs, spill, scripts (under `bench-sort/`) and the report
    /// (`bench-sort.json`).
    pub work_dir: PathBuf,
    /// `--memory-limit` for sluice (and for the memory-limited DuckDB run).
    pub memory_limit: String,
    /// Threads for every contender; `None` leaves each at its default (all cores).
    pub threads: Option<usize>,
    /// Runs per contender; the report keeps every sample and uses the fastest.
    pub repeat: u32,
    pub skip_duckdb: bool,
    pub skip_polars: bool,
    pub skip_copy: bool,
}

impl SortBenchConfig {
    /// The issue's defaults for `sluice_bin`; data under `.bench/sort-<rows>-<files>-<seed>`,
    /// work under `.bench/sort-work`.
    pub fn new(sluice_bin: impl Into<PathBuf>) -> Self {
        SortBenchConfig {
            sluice_bin: sluice_bin.into(),
            sluice_build: "unknown".to_string(),
            python: PathBuf::from("python3"),
            rows: DEFAULT_ROWS,
            files: DEFAULT_FILES,
            seed: DEFAULT_SEED,
            data_dir: default_data_dir(DEFAULT_ROWS, DEFAULT_FILES, DEFAULT_SEED),
            input: None,
            sort_key: DEFAULT_SORT_KEY.to_string(),
            work_dir: PathBuf::from(".bench/sort-work"),
            memory_limit: DEFAULT_MEMORY_LIMIT.to_string(),
            threads: None,
            repeat: 1,
            skip_duckdb: false,
            skip_polars: false,
            skip_copy: false,
        }
    }

    /// Refuse settings that cannot give a meaningful run.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.rows == 0 || self.files == 0 {
            return Err(BenchError::InvalidArgument(format!(
                "--rows and --files must be positive (got {} rows, {} files)",
                self.rows, self.files
            )));
        }
        if self.repeat == 0 {
            return Err(BenchError::InvalidArgument(
                "--repeat must be at least 1".into(),
            ));
        }
        if self.sort_key.is_empty() {
            return Err(BenchError::InvalidArgument(
                "--sort-key must name a column".into(),
            ));
        }
        if self.threads == Some(0) {
            return Err(BenchError::InvalidArgument(
                "--threads must be at least 1".into(),
            ));
        }
        // The scratch directory is wiped between runs; it must never hold the input.
        let scratch = absolute(&self.scratch_dir());
        // A directory or `**` input walks everything below it: the scratch directory must
        // not be there either. (An engine root is read by its layout, not walked.)
        let (flag, data, walked) = match &self.input {
            Some(pattern) => {
                if pattern.contains("://") {
                    return Err(BenchError::InvalidArgument(format!(
                        "--input {pattern}: the benchmark reads local files (it warms the \
                         page cache with them); `sluice bench sort --s3` measures S3"
                    )));
                }
                ("--input", absolute(Path::new(pattern)), true)
            }
            None => ("--data", absolute(&self.data_dir), false),
        };
        if data.starts_with(&scratch)
            || (walked && scratch.starts_with(glob_base(&data.to_string_lossy())))
        {
            return Err(BenchError::InvalidArgument(format!(
                "{flag} {} overlaps the bench scratch directory {}",
                data.display(),
                scratch.display()
            )));
        }
        Ok(())
    }

    /// The sort key when it is not the default (then passed to every contender; the default
    /// keeps the legacy command lines verbatim).
    pub fn custom_sort_key(&self) -> Option<&str> {
        (self.sort_key != DEFAULT_SORT_KEY).then_some(self.sort_key.as_str())
    }

    /// `<work>/bench-sort/`: wiped and refilled by the run.
    pub fn scratch_dir(&self) -> PathBuf {
        self.work_dir.join("bench-sort")
    }

    /// `<work>/bench-sort.json`: the report, for `sluice bench report`.
    pub fn report_path(&self) -> PathBuf {
        self.work_dir.join("bench-sort.json")
    }
}

/// `.bench/sort-<rows>-<files>-<seed>` (the repository ignores `/.bench`).
pub fn default_data_dir(rows: u64, files: u32, seed: u64) -> PathBuf {
    PathBuf::from(format!(".bench/sort-{rows}-{files}-{seed}"))
}

/// `path` made absolute against the current directory (without touching the disk, so it
/// works for directories that do not exist yet).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let c = SortBenchConfig::new("sluice");
        assert_eq!((c.rows, c.files, c.seed), (20_000_000, 40, 1));
        assert_eq!(c.data_dir, PathBuf::from(".bench/sort-20000000-40-1"));
        assert_eq!(c.memory_limit, "1GiB");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rejects_meaningless_settings() {
        let mut c = SortBenchConfig::new("sluice");
        c.repeat = 0;
        assert!(matches!(c.validate(), Err(BenchError::InvalidArgument(_))));
        let mut c = SortBenchConfig::new("sluice");
        c.threads = Some(0);
        assert!(matches!(c.validate(), Err(BenchError::InvalidArgument(_))));
        let mut c = SortBenchConfig::new("sluice");
        c.data_dir = c.scratch_dir().join("data");
        assert!(matches!(c.validate(), Err(BenchError::InvalidArgument(_))));
    }

    #[test]
    fn a_given_input_must_be_local_and_clear_of_the_scratch_directory() {
        let mut c = SortBenchConfig::new("sluice");
        c.work_dir = PathBuf::from("/w");
        c.input = Some("/data/*.parquet".into());
        assert!(c.validate().is_ok());
        c.input = Some("s3://bucket/data/*.parquet".into());
        assert!(matches!(c.validate(), Err(BenchError::InvalidArgument(_))));
        // A directory (or `**`) above the scratch directory would walk into the outputs.
        for pattern in ["/w", "/**/*.parquet", "/w/bench-sort/x/*.parquet"] {
            c.input = Some(pattern.into());
            assert!(
                matches!(c.validate(), Err(BenchError::InvalidArgument(_))),
                "{pattern}"
            );
        }
    }

    #[test]
    fn data_and_work_may_share_a_directory() {
        let mut c = SortBenchConfig::new("sluice");
        c.data_dir = PathBuf::from("/tmp/x");
        c.work_dir = PathBuf::from("/tmp/x");
        assert!(c.validate().is_ok());
    }
}
