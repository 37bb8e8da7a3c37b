//! Durability: when an append counts as done, and the fsync it may wait for.
//!
//! The fsync goes through the [`Syncer`] trait so tests can make it fail (a real failing
//! fsync is hard to provoke) and check that the partition is poisoned.

use std::fmt;
use std::fs::File;
use std::path::Path;
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
}
