//! Free disk space, checked before a harness writes gigabytes: a benchmark that runs out of
//! space halfway fails one contender with "No space left on device" after minutes of work
//! (session 14: DuckDB's memory-limited run, 4.2 GB free); this fails at once, saying how
//! much it needs and where.
//!
//! Needs are estimates from measurements on this project's data (`sluice gen`), per row:
//!
//! | writer | measured | per row | used here |
//! |---|---|---|---|
//! | DuckDB 2.0.1, `memory_limit=1GiB`, temp files of the legacy sort | 4.65 GB peak at 20M rows | 233 B | [`DUCKDB_SPILL_PER_ROW`] |
//! | `sluice replay --max` run directory (bus, receipts, dedupe runs) | 4.5 GB at 20M events, plus compactions | 225 B | [`REPLAY_PER_EVENT`] |
//!
//! The free space is what `df` reports for an unprivileged writer on the filesystem of the
//! directory (or of its nearest existing ancestor). When `df` cannot tell, the check is
//! skipped rather than guessed.

use std::path::Path;
use std::process::Command;

use crate::error::BenchError;

/// Temp bytes per input row of DuckDB's memory-limited sort (4.65 GB for 20M rows, plus
/// a margin).
pub const DUCKDB_SPILL_PER_ROW: u64 = 256;
/// Run-directory bytes per replayed event (4.5 GB at 20M events, plus compaction's
/// transient copies).
pub const REPLAY_PER_EVENT: u64 = 280;
/// Gate-state bytes per event of a replay into Kafka (receipts 128, dedupe runs ~40).
pub const GATE_STATE_PER_EVENT: u64 = 170;
/// Input and stream-view bytes per row when the replay bench generates them (the 20M-row
/// view is 159 MiB, its source about as much; rounded up).
pub const REPLAY_INPUT_PER_ROW: u64 = 30;
/// Room left over for everything else (logs, reports, the page cache's dirty pages).
pub const MARGIN: u64 = 512 << 20;

/// Bytes available to an unprivileged writer on the filesystem holding `dir`, if `df` says.
pub fn available_bytes(dir: &Path) -> Option<u64> {
    let mut at = dir;
    while !at.exists() {
        at = at.parent()?;
    }
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(at)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// Fail `BENCH_DISK_SPACE` if `dir`'s filesystem has less than `need` bytes free (plus
/// [`MARGIN`]); `what` says what needs them.
pub fn ensure(dir: &Path, need: u64, what: &str) -> Result<(), BenchError> {
    check(dir, need, available_bytes(dir), what)
}

fn check(dir: &Path, need: u64, available: Option<u64>, what: &str) -> Result<(), BenchError> {
    match available {
        Some(available) if available < need + MARGIN => Err(BenchError::DiskSpace {
            dir: dir.to_path_buf(),
            need: need + MARGIN,
            available,
            what: what.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_space_fails_with_its_code_and_numbers() {
        let dir = Path::new("/x");
        let err = check(dir, 4 << 30, Some(1 << 30), "DuckDB temp files").unwrap_err();
        assert_eq!(err.code(), "BENCH_DISK_SPACE");
        let text = err.to_string();
        assert!(
            text.contains("/x") && text.contains("DuckDB temp files"),
            "{text}"
        );
        assert!(text.contains("4.8 GB") && text.contains("1.1 GB"), "{text}");
        check(dir, 4 << 30, Some(5 << 30), "x").unwrap();
        check(dir, 4 << 30, None, "x").unwrap();
    }

    #[test]
    fn df_reports_the_space_of_the_nearest_existing_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let here = available_bytes(tmp.path()).expect("df works on this machine");
        assert!(here > 0);
        let below = available_bytes(&tmp.path().join("not/yet/made")).unwrap();
        // Same filesystem: equal up to what other processes wrote meanwhile.
        assert!(here.abs_diff(below) < 1 << 30, "{here} vs {below}");
    }
}
