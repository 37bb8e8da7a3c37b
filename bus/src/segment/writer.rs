//! Appending to the active segment: the log with one `pwrite` per append, its index entries
//! to the two index files (not fsynced: they are rebuilt from the log after a crash), and
//! sealing when the segment is rolled.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{BusError, Result};
use crate::format::batch::BatchHeader;
use crate::format::index::{self as ix, IndexKind};
use crate::format::record::{EncodedBatches, Frame};
use crate::publish;
use crate::segment::index::SegmentIndex;
use crate::segment::recovery::ActiveSegment;
use crate::segment::{index_path, log_path};
use crate::sync::Syncer;

/// An index file being appended.
struct IndexAppender {
    file: File,
    path: PathBuf,
    len: u64,
    pending: Vec<u8>,
}

impl IndexAppender {
    fn open(path: PathBuf) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| BusError::io(&path, e))?;
        let len = file.metadata().map_err(|e| BusError::io(&path, e))?.len();
        Ok(IndexAppender {
            file,
            path,
            len,
            pending: Vec::new(),
        })
    }

    fn flush_pending(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all_at(&self.pending, self.len)?;
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }
}

/// The segment being appended to.
pub struct SegmentWriter {
    dir: PathBuf,
    pub base: u64,
    log: Arc<File>,
    log_path: PathBuf,
    /// Bytes in the log.
    pub size: u64,
    /// Offset after the last record.
    pub end_offset: u64,
    index: SegmentIndex,
    offset_file: IndexAppender,
    time_file: IndexAppender,
    last_batch_rel: Option<u32>,
    interval: u32,
    /// When this writer created or reopened the segment (for `segment_ms`).
    pub opened_at: Instant,
}

impl SegmentWriter {
    /// Create a new, empty segment at `base` and make its name durable.
    pub fn create(dir: &Path, base: u64, interval: u32) -> Result<Self> {
        let path = log_path(dir, base);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| BusError::io(&path, e))?;
        let index = SegmentIndex::new(base);
        // Fresh index files hold only their headers; they are fsynced when the segment is
        // sealed, and rebuilt from the log if a crash leaves them torn.
        for (kind, bytes) in [
            (IndexKind::Offset, index.offset_file_bytes()),
            (IndexKind::Time, index.time_file_bytes()),
        ] {
            let p = index_path(dir, base, kind);
            std::fs::write(&p, bytes).map_err(|e| BusError::io(&p, e))?;
        }
        publish::fsync_dir(dir)?;
        Self::resume(
            dir,
            ActiveSegment {
                base,
                len: 0,
                end_offset: base,
                index,
                last_batch_rel: None,
            },
            interval,
        )
    }

    /// Continue the segment recovery left (its index files already written).
    pub fn resume(dir: &Path, active: ActiveSegment, interval: u32) -> Result<Self> {
        let path = log_path(dir, active.base);
        let log = OpenOptions::new()
            .write(true)
            .read(true)
            .open(&path)
            .map_err(|e| BusError::io(&path, e))?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            base: active.base,
            log: Arc::new(log),
            log_path: path,
            size: active.len,
            end_offset: active.end_offset,
            offset_file: IndexAppender::open(index_path(dir, active.base, IndexKind::Offset))?,
            time_file: IndexAppender::open(index_path(dir, active.base, IndexKind::Time))?,
            index: active.index,
            last_batch_rel: active.last_batch_rel,
            interval,
            opened_at: Instant::now(),
        })
    }

    /// The log file (shared with the group-commit syncer) and its path.
    pub fn log_file(&self) -> (Arc<File>, PathBuf) {
        (Arc::clone(&self.log), self.log_path.clone())
    }

    /// Write `frames` (already stamped, contiguous in `batches.bytes`) at the end of the log
    /// and account for them in the index. One `pwrite` for all of them.
    pub fn append(&mut self, batches: &EncodedBatches, frames: &[Frame]) -> std::io::Result<()> {
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            return Ok(());
        };
        let bytes = &batches.bytes[first.start..last.start + last.len];
        self.log.write_all_at(bytes, self.size)?;
        for f in frames {
            let h = header_of(&batches.bytes[f.start..f.start + f.len], f);
            let pos = self.size as u32;
            let new = self.index.observe(pos, &h, self.interval);
            if let Some(e) = new.offset {
                ix::put_offset_entry(&mut self.offset_file.pending, e);
            }
            if let Some(e) = new.time {
                ix::put_time_entry(&mut self.time_file.pending, e);
            }
            self.last_batch_rel = Some((h.base_offset - self.base) as u32);
            self.size += f.len as u64;
            self.end_offset = h.next_offset();
        }
        // Index entries go out after the log bytes they point at.
        self.offset_file.flush_pending()?;
        self.time_file.flush_pending()
    }

    /// Make the segment durable before a roll: final time entry, fsync log and indexes.
    pub fn seal(&mut self, syncer: &dyn Syncer) -> std::io::Result<()> {
        if let Some(rel) = self.last_batch_rel {
            if let Some(e) = self.index.seal_entry(rel) {
                ix::put_time_entry(&mut self.time_file.pending, e);
                self.time_file.flush_pending()?;
            }
        }
        syncer.sync(&self.log, &self.log_path)?;
        syncer.sync(&self.offset_file.file, &self.offset_file.path)?;
        syncer.sync(&self.time_file.file, &self.time_file.path)
    }

    /// The directory of the segment.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The header fields the index needs, from a frame we just encoded and stamped.
fn header_of(frame: &[u8], f: &Frame) -> BatchHeader {
    let mut b = [0u8; 8];
    b.copy_from_slice(&frame[16..24]);
    let base_offset = u64::from_le_bytes(b);
    BatchHeader {
        compression: crate::format::Compression::None,
        crc: 0,
        batch_length: f.len as u32,
        base_offset,
        record_count: f.record_count,
        records_length: 0,
        first_timestamp: f.max_timestamp,
        max_timestamp: f.max_timestamp,
    }
}
