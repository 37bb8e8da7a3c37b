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
//!       ├── output_reserve output row groups beyond what FIXED_RESERVE covers (wide rows)
//!       └── merge_budget   merge cursors
//! ```
//!
//! Phase 2 holds the output row group being gathered and up to
//! [`MAX_ROW_GROUPS_IN_FLIGHT`] more being encoded (their arrays and the encoder's pages).
//! For rows as narrow as the platform's, [`OUTPUT_IN_RESERVE`] of the fixed reserve covers
//! them; wider rows ([`MemoryBudget::with_output`]) take the rest from the run budget, with
//! fewer row groups in flight if it is short (in flight changes speed, never bytes).

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
/// Output row groups being encoded while the next is merged and gathered, at most.
pub const MAX_ROW_GROUPS_IN_FLIGHT: usize = 2;
/// The part of [`FIXED_RESERVE`] that covers phase 2's output row groups: the 20M-row
/// traffic sort (≈100 output bytes a row) peaks 150-170 MiB under its 1 GiB limit with
/// them, so rows up to ~100 bytes need nothing more.
pub const OUTPUT_IN_RESERVE: u64 = 64 << 20;
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
    /// Taken from the run budget for wide output row groups ([`Self::with_output`]).
    pub output_reserve: u64,
    /// Output row groups encoded while the next is gathered.
    pub in_flight: usize,
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
            output_reserve: 0,
            in_flight: MAX_ROW_GROUPS_IN_FLIGHT,
        }
    }

    /// Make room for phase 2's output row groups of about `row_group_bytes` each. The
    /// writer spawns a row group's encoding, gathers the next, then waits until at most
    /// `in_flight` are encoding: arrays of `in_flight + 2` row groups at once, and the
    /// encoders' pages of `in_flight + 1` (compressed, counted as half a row group each;
    /// `heaptrack` of a 61-column sort: 220 MiB of gathered arrays, 39 MiB of pages, for
    /// 60 MB row groups). What [`OUTPUT_IN_RESERVE`] does not cover comes out of the run
    /// budget (fewer rows kept in memory, more spilled); if the run budget cannot give it,
    /// fewer row groups stay in flight, down to none (then the run budget gives what it
    /// has: rows so wide that one row group passes the limit cannot be helped, since
    /// `--row-group-rows` fixes the output's bytes).
    pub fn with_output(mut self, row_group_bytes: u64) -> Self {
        for in_flight in (0..=MAX_ROW_GROUPS_IN_FLIGHT).rev() {
            let n = in_flight as u64;
            let need = ((2 + n) * 2 + (1 + n)).saturating_mul(row_group_bytes) / 2;
            let extra = need.saturating_sub(OUTPUT_IN_RESERVE);
            if extra <= self.run_budget || in_flight == 0 {
                let extra = extra.min(self.run_budget);
                self.run_budget -= extra;
                self.output_reserve = extra;
                self.in_flight = in_flight;
                break;
            }
        }
        self
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
            assert_eq!(
                b.read_budget + b.run_budget + b.merge_budget + b.output_reserve,
                b.total
            );
            assert!(b.run_budget > 0);
            assert!(b.total >= MIN_BUDGET);
        }
        let b = MemoryBudget::new(1 << 30);
        assert!(b.run_budget > 600 << 20, "{b:?}");
    }

    #[test]
    fn wide_output_row_groups_take_from_the_run_budget_then_from_what_is_in_flight() {
        let base = MemoryBudget::new(1 << 30);
        // Narrow rows (11 MiB row groups): the fixed reserve covers them.
        let narrow = base.with_output(11 << 20);
        assert_eq!((narrow.run_budget, narrow.in_flight), (base.run_budget, 2));
        // 48 MiB row groups: four of arrays and three half ones of pages, less the
        // reserve's share, from the run budget.
        let wide = base.with_output(48 << 20);
        assert_eq!(wide.output_reserve, 11 * (24 << 20) - OUTPUT_IN_RESERVE);
        assert_eq!(wide.run_budget + wide.output_reserve, base.run_budget);
        assert_eq!(wide.in_flight, 2);
        // A small limit: not enough run budget for two in flight, so fewer.
        let small = MemoryBudget::new(256 << 20).with_output(48 << 20);
        assert!(small.in_flight < 2, "{small:?}");
        assert_eq!(
            small.read_budget + small.run_budget + small.merge_budget + small.output_reserve,
            small.total
        );
        // Rows too wide for any limit: nothing in flight, every byte of run budget given.
        let huge = MemoryBudget::new(256 << 20).with_output(1 << 30);
        assert_eq!((huge.in_flight, huge.run_budget), (0, 0));
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
