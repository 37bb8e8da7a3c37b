//! What a sort is asked to do ([`SortConfig`]), how sizes are spelled (`1GiB`, `512MiB`,
//! `1G`, `1000000`), and how the memory limit is split between the phases ([`MemoryBudget`]).
//!
//! The memory limit covers the whole process. A fixed reserve stays outside the budget
//! (program text, thread stacks, allocator slack); the rest is shared so that phase 1 (run
//! generation) and phase 2 (merge and encode) never hold more than it together, because the
//! last run stays in memory while the merge runs:
//!
//! ```text
//!   memory_limit
//!   ├── FIXED_RESERVE                      not budgeted (half the limit below 192 MiB)
//!   └── budget
//!       ├── read_budget    row groups being decoded (phase 1)
//!       ├── run_budget     the run being built; the last run stays for phase 2
//!       └── merge_budget   merge cursors + the row group being gathered and encoded
//! ```

use std::path::PathBuf;

use crate::error::{Result, SortError};

/// Default `--memory-limit`: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;
/// Default `--part-size`: 256 MiB.
pub const DEFAULT_PART_SIZE: u64 = 256 << 20;
/// Default `--row-group-rows`: 128 Ki rows (replay seeks by row-group time statistics).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;
/// Default `--zstd-level` (see `docs/sort.md` for the measurement behind it).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;
/// Default `--sort-key`.
pub const DEFAULT_SORT_KEY: &str = "ts_utc";
/// Memory kept outside the budget for code, stacks and allocator slack.
pub const FIXED_RESERVE: u64 = 96 << 20;
/// The smallest `--memory-limit` the sort stays under (measured, `docs/sort.md`): below
/// it the process's own needs (binary, allocator, one row group in and one out) exceed the
/// limit, whatever the budget.
pub const SMALLEST_KEPT_LIMIT: u64 = 160 << 20;
/// The smallest budget the sort runs with, whatever the limit (tests use tiny limits to force
/// spilling and multi-level merges).
pub const MIN_BUDGET: u64 = 256 << 10;

/// Everything that shapes one sort, with the CLI's defaults.
#[derive(Debug, Clone)]
pub struct SortConfig {
    /// Whole-process memory target (bytes).
    pub memory_limit: u64,
    /// Root for spill files; default `<view_root parent>/.sluice-tmp`.
    pub temp_dir: Option<PathBuf>,
    /// Cap on spill bytes; exceeding it fails `SORT_TEMP_FULL`.
    pub max_temp_size: Option<u64>,
    /// Worker threads (a local rayon pool); default: all cores.
    pub threads: Option<usize>,
    /// The time column to sort on.
    pub sort_key: String,
    /// Target bytes per output part; parts are cut after the row group that reaches it.
    pub part_size: u64,
    /// Rows per output row group.
    pub row_group_rows: usize,
    /// zstd level of the output.
    pub zstd_level: i32,
    /// Rebuild even if a view (or a mismatching receipt) exists.
    pub force: bool,
}

impl Default for SortConfig {
    fn default() -> Self {
        SortConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            temp_dir: None,
            max_temp_size: None,
            threads: None,
            sort_key: DEFAULT_SORT_KEY.to_string(),
            part_size: DEFAULT_PART_SIZE,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            force: false,
        }
    }
}

impl SortConfig {
    /// Reject values no sort can run with.
    pub fn validate(&self) -> Result<()> {
        if self.row_group_rows == 0 || self.row_group_rows > (1 << 26) {
            return Err(SortError::Config(format!(
                "--row-group-rows must be 1..=67108864, got {}",
                self.row_group_rows
            )));
        }
        if self.part_size == 0 {
            return Err(SortError::Config("--part-size must be positive".into()));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(SortError::Config(format!(
                "--zstd-level must be 1..=22, got {}",
                self.zstd_level
            )));
        }
        if self.threads == Some(0) {
            return Err(SortError::Config("--threads must be positive".into()));
        }
        if self.sort_key.is_empty() {
            return Err(SortError::Config("--sort-key must not be empty".into()));
        }
        Ok(())
    }

    /// The number of worker threads this config asks for.
    pub fn thread_count(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }

    /// The memory split of this config.
    pub fn budget(&self) -> MemoryBudget {
        MemoryBudget::new(self.memory_limit)
    }
}

/// The split of the memory limit between the phases (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    pub total: u64,
    pub read_budget: u64,
    pub run_budget: u64,
    pub merge_budget: u64,
}

impl MemoryBudget {
    /// Split `memory_limit` (bytes).
    pub fn new(memory_limit: u64) -> Self {
        // Limits too small to hold the reserve (only tests use them) give half to the budget.
        let total = if memory_limit >= 2 * FIXED_RESERVE {
            memory_limit - FIXED_RESERVE
        } else {
            memory_limit / 2
        }
        .max(MIN_BUDGET);
        // Decoding needs a few row groups in flight; the merge needs its cursors and one
        // output row group (measured in docs/sort.md); the rest holds runs.
        let read_budget = (total / 8).min(96 << 20);
        let merge_budget = (total / 4).min(192 << 20);
        MemoryBudget {
            total,
            read_budget,
            run_budget: total - read_budget - merge_budget,
            merge_budget,
        }
    }
}

/// Parse a size: a number with an optional unit `B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB`, `T`/`TB`/`TiB` (case-insensitive). `KB`, `MB`, ... are decimal;
/// `K`, `KiB`, ... are binary (as DuckDB and most tools read `1G` as GiB).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        SortError::Config(format!(
            "{text:?} is not a size (examples: 1GiB, 512MiB, 1G, 1000000)"
        ))
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024.0f64.powi(4),
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("512mb").unwrap(), 512_000_000);
        assert_eq!(parse_size("1000000").unwrap(), 1_000_000);
        assert_eq!(parse_size("1.5K").unwrap(), 1536);
        assert_eq!(parse_size(" 2 GB ").unwrap(), 2_000_000_000);
        for bad in ["", "GiB", "1XB", "-1", "1..2G"] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad:?}");
        }
    }

    #[test]
    fn budget_parts_add_up_and_stay_positive() {
        for limit in [0, 1 << 20, 64 << 20, 1 << 30, 16 << 30] {
            let b = MemoryBudget::new(limit);
            assert_eq!(b.read_budget + b.run_budget + b.merge_budget, b.total);
            assert!(b.run_budget > 0);
            assert!(b.total >= MIN_BUDGET);
        }
        let b = MemoryBudget::new(1 << 30);
        assert!(b.run_budget > 600 << 20, "{b:?}");
    }

    #[test]
    fn config_validation() {
        assert!(SortConfig::default().validate().is_ok());
        let mut c = SortConfig {
            row_group_rows: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c.row_group_rows = 10;
        c.zstd_level = 0;
        assert!(c.validate().is_err());
    }
}
