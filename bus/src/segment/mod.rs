//! Segments: the files of one partition and how they are named, read, indexed, written and
//! recovered.
//!
//! ```text
//!  partition-00000/
//!    00000000000000000000.log  .index  .timeindex    sealed (fsynced when rolled)
//!    00000000000000004096.log  .index  .timeindex    active (appended by the writer)
//! ```
//!
//! - [`reader`]: [`reader::LogReader`] reads frames at positions through a reused buffer
//!   and classifies what it finds (good batch, end, damage).
//! - [`index`]: the sparse offset and time indexes in memory and on disk.
//! - [`writer`]: [`writer::SegmentWriter`] appends to the active segment.
//! - [`recovery`]: the scan that rebuilds indexes and classifies damage (torn tail vs
//!   damage before the tail), and the open/recover policies built on it.

pub mod index;
pub mod reader;
pub mod recovery;
pub mod writer;

use std::path::{Path, PathBuf};

use crate::error::{BusError, Result};
use crate::format::index::IndexKind;

/// Digits of a segment name.
pub const NAME_DIGITS: usize = 20;

/// `<dir>/<base:020>.log`.
pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// `<dir>/<base:020>.index` or `.timeindex`.
pub fn index_path(dir: &Path, base: u64, kind: IndexKind) -> PathBuf {
    dir.join(format!("{base:020}.{}", kind.extension()))
}

/// The base offset named by a segment file name (`<20 digits>.<ext>`), if it is one.
pub fn parse_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Base offsets of the `.log` files in a partition directory, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bases),
        Err(e) => return Err(BusError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BusError::io(dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(|n| parse_name(n, "log"))
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Size of a file, 0 if it does not exist.
pub fn file_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(BusError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        let p = log_path(Path::new("d"), 1234);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000001234.log");
        assert_eq!(parse_name(name, "log"), Some(1234));
        assert_eq!(parse_name("00000000000000001234.index", "log"), None);
        assert_eq!(parse_name("1234.log", "log"), None);
        assert_eq!(parse_name("0000000000000000123x.log", "log"), None);
    }
}
