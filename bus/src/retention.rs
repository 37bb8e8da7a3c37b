//! Retention: delete whole sealed segments, oldest first, by size or age.
//!
//! ```text
//!   [seg 0][seg 1][seg 2][seg 3 active]      retention_bytes = 3 segments' worth
//!   total - size(seg 0) >= limit  -> delete seg 0; then re-check seg 1; never the active
//! ```
//!
//! Age is the segment's last write (file modification time), not record timestamps:
//! replayed records carry historical timestamps. The `.log` goes first so readers stop
//! seeing the segment, then its indexes, then the directory is fsynced.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{BusError, Result};
use crate::format::index::IndexKind;
use crate::format::meta::TopicConfig;
use crate::publish;
use crate::segment::{index_path, list_segments, log_path};

/// A segment removed by retention.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deleted {
    pub segment: PathBuf,
    pub bytes: u64,
    pub reason: &'static str,
}

/// Apply the topic's retention to the partition in `dir`, whose active segment starts at
/// `active_base` (never deleted, nor anything at or after it).
pub fn enforce(dir: &Path, config: &TopicConfig, active_base: u64) -> Result<Vec<Deleted>> {
    enforce_at(dir, config, active_base, SystemTime::now())
}

/// [`enforce`] with an explicit "now" (for tests).
pub fn enforce_at(
    dir: &Path,
    config: &TopicConfig,
    active_base: u64,
    now: SystemTime,
) -> Result<Vec<Deleted>> {
    let mut deleted = Vec::new();
    if config.retention_bytes.is_none() && config.retention_ms.is_none() {
        return Ok(deleted);
    }
    let mut segments = Vec::new();
    let mut total = 0u64;
    for base in list_segments(dir)? {
        let path = log_path(dir, base);
        let meta = std::fs::metadata(&path).map_err(|e| BusError::io(&path, e))?;
        total += meta.len();
        if base < active_base {
            let modified = meta.modified().map_err(|e| BusError::io(&path, e))?;
            segments.push((base, path, meta.len(), modified));
        }
    }
    for (base, path, bytes, modified) in segments {
        let by_size = config
            .retention_bytes
            .is_some_and(|limit| total - bytes >= limit);
        let by_age = config.retention_ms.is_some_and(|ms| {
            now.duration_since(modified)
                .is_ok_and(|age| age > Duration::from_millis(ms))
        });
        if !by_size && !by_age {
            break;
        }
        std::fs::remove_file(&path).map_err(|e| BusError::io(&path, e))?;
        for kind in [IndexKind::Offset, IndexKind::Time] {
            let p = index_path(dir, base, kind);
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(BusError::io(&p, e));
                }
            }
        }
        total -= bytes;
        deleted.push(Deleted {
            segment: path,
            bytes,
            reason: if by_size { "size" } else { "age" },
        });
    }
    if !deleted.is_empty() {
        publish::fsync_dir(dir)?;
    }
    Ok(deleted)
}
