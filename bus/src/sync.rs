//! Durability: when an append counts as done, and the fsync it may wait for.
//!
//! The fsync goes through the [`Syncer`] trait so tests can make it fail (a real failing
//! fsync is hard to provoke) and check that the partition is poisoned.
//!
//! **Drop-behind** ([`DropBehind`]): once bytes of an append-only log are durable, the
//! pages more than [`KEEP_CACHED_BYTES`] behind its durable end are dropped from the page
//! cache (`posix_fadvise(DONTNEED)`; clean pages only, so nothing is lost). A replay writes
//! gigabytes it will not read again (bus segments, receipts); left cached, they push
//! everything else out and every new write needs a page the kernel has not used for a
//! while. On the project's VM a write into such a page costs ~6x one into a page just
//! freed (`dd` of 3 GB: 0.33 GB/s against 2.1 GB/s), and the 20M-event replay spent 15 s
//! of system time in those copies (`docs/replay.md`). Consumers that tail the log read the
//! kept window from memory; lagging ones read from disk.
//!
//! ```text
//!  log:  [ dropped ............ | kept (32 MiB) | not yet durable ]
//!                               ^ durable end - KEEP          ^ durable end
//! ```

use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When an append is acknowledged (per bus handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After an fsync covering the append (group commit across concurrent appenders).
    #[default]
    EveryBatch,
    /// After the write; a flusher thread fsyncs dirty partitions every interval.
    Interval(Duration),
    /// After the write; fsync only when a segment is sealed.
    Never,
}

impl Durability {
    /// Parse `batch`, `never` or `interval:<ms>` (the CLI's spelling).
    pub fn parse(s: &str) -> Option<Durability> {
        match s {
            "batch" => Some(Durability::EveryBatch),
            "never" => Some(Durability::Never),
            _ => {
                let ms: u64 = s.strip_prefix("interval:")?.parse().ok()?;
                (ms > 0).then(|| Durability::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::EveryBatch => f.write_str("batch"),
            Durability::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            Durability::Never => f.write_str("never"),
        }
    }
}

/// Makes a file's data durable. The default is [`OsSync`] (`fdatasync`).
pub trait Syncer: Send + Sync + fmt::Debug {
    /// Flush `file`'s data to stable storage.
    fn sync(&self, file: &File, path: &Path) -> std::io::Result<()>;
}

/// The real thing: `File::sync_data` (`fdatasync`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSync;

impl Syncer for OsSync {
    fn sync(&self, file: &File, _path: &Path) -> std::io::Result<()> {
        file.sync_data()
    }
}

/// Durable bytes of an append-only log left in the page cache behind its durable end (for
/// consumers tailing it).
pub const KEEP_CACHED_BYTES: u64 = 32 << 20;

/// Page granularity of the drop (a partial page is never dropped).
const PAGE: u64 = 4096;

/// Ask the kernel to drop `file`'s cached pages in `range`. Advice only: errors are ignored
/// (the data is durable either way), and it does nothing off Linux.
pub fn drop_cached(file: &File, range: Range<u64>) {
    if range.end <= range.start {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let len = std::num::NonZeroU64::new(range.end - range.start);
        // Advice only: a failure leaves the pages cached, which is what happened before.
        let _ = rustix::fs::fadvise(file, range.start, len, rustix::fs::Advice::DontNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Drop-behind state of one append-only log (module docs): how far it has been dropped.
#[derive(Debug, Default)]
pub struct DropBehind {
    /// The file dropped so far (a new one, e.g. after a segment roll, starts from 0).
    path: PathBuf,
    dropped: u64,
}

impl DropBehind {
    /// The log at `path` is durable up to byte `durable`: the range to drop now (what lies
    /// more than [`KEEP_CACHED_BYTES`] behind, in whole pages, from where the last call
    /// stopped; empty if nothing). The caller hands it to [`drop_cached`], outside any lock
    /// appenders wait on.
    pub fn synced(&mut self, path: &Path, durable: u64) -> Range<u64> {
        if self.path != path {
            self.path = path.to_path_buf();
            self.dropped = 0;
        }
        let start = self.dropped;
        self.dropped = self
            .dropped
            .max(durable.saturating_sub(KEEP_CACHED_BYTES) / PAGE * PAGE);
        start..self.dropped
    }

    /// Where the dropped range ends.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_spelling() {
        assert_eq!(Durability::parse("batch"), Some(Durability::EveryBatch));
        assert_eq!(Durability::parse("never"), Some(Durability::Never));
        assert_eq!(
            Durability::parse("interval:250"),
            Some(Durability::Interval(Duration::from_millis(250)))
        );
        assert_eq!(Durability::parse("interval:0"), None);
        assert_eq!(Durability::parse("sometimes"), None);
        for d in [
            Durability::EveryBatch,
            Durability::Never,
            Durability::Interval(Duration::from_millis(7)),
        ] {
            assert_eq!(Durability::parse(&d.to_string()), Some(d));
        }
    }

    #[test]
    fn drop_behind_keeps_the_window_and_restarts_on_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, vec![1u8; 1 << 20]).unwrap();
        std::fs::write(&b, vec![2u8; 1 << 20]).unwrap();
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        let mut d = DropBehind::default();
        assert!(
            d.synced(&a, KEEP_CACHED_BYTES - 1).is_empty(),
            "nothing beyond the window yet"
        );
        assert_eq!(d.dropped(), 0);
        let r = d.synced(&a, KEEP_CACHED_BYTES + 3 * PAGE + 100);
        assert_eq!(r, 0..3 * PAGE, "whole pages only");
        drop_cached(&fa, r);
        assert!(
            d.synced(&a, KEEP_CACHED_BYTES + PAGE).is_empty(),
            "never moves back"
        );
        assert_eq!(d.dropped(), 3 * PAGE);
        let r = d.synced(&b, KEEP_CACHED_BYTES + PAGE);
        assert_eq!(r, 0..PAGE, "a new file starts from its first byte");
        drop_cached(&fb, r);
        // The data is intact (dropping clean pages only evicts them).
        assert_eq!(std::fs::read(&a).unwrap(), vec![1u8; 1 << 20]);
    }
}
