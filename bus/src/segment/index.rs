//! The sparse offset and time indexes of one segment, in memory and on disk.
//!
//! [`SegmentIndex::observe`] is the single rule deciding which batches get entries; the
//! writer calls it as it appends and recovery calls it as it rescans, so a rebuilt index is
//! byte-identical to one written live.
//!
//! ```text
//! offset index:  (rel 0, pos 0) ... (rel 812, pos 4113) ... (rel 1650, pos 8290)
//! lookup(o):     last entry with rel <= o - base -> start reading batches at its position
//! time index:    (ts 10, rel 0)  (ts 25, rel 812)  (ts 31, rel 1650)   ts strictly rising
//! lookup_time(t): last entry with ts < t -> every earlier batch is older than t
//! ```
//!
//! Indexes are derived data. Loading one checks it (`docs/format.md`, "valid"); a reader
//! that gets `None` from [`SegmentIndex::load`] rebuilds it from the log.

use std::path::Path;

use crate::error::{BusError, Result};
use crate::format::batch::BatchHeader;
use crate::format::index::{self as ix, IndexKind, OffsetEntry, TimeEntry, MAX_INDEX_BYTES};
use crate::publish;
use crate::segment::index_path;

/// The indexes of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    pub base: u64,
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// Log bytes since the last offset entry (or the segment start).
    bytes_since_offset: u64,
    /// Log bytes since the last time entry.
    bytes_since_time: u64,
    /// Largest timestamp seen in the segment.
    pub max_timestamp: Option<i64>,
}

/// New entries produced by one observed batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct NewEntries {
    pub offset: Option<OffsetEntry>,
    pub time: Option<TimeEntry>,
}

impl SegmentIndex {
    /// An empty index for the segment starting at `base`.
    pub fn new(base: u64) -> Self {
        SegmentIndex {
            base,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_offset: 0,
            bytes_since_time: 0,
            max_timestamp: None,
        }
    }

    /// Account for the batch `h` written at `position`; return the entries it earns.
    ///
    /// 1. Offset entry: the first batch, then the first batch after >= `interval` bytes.
    /// 2. Time entry: a batch that raises the running maximum, at most one per `interval`
    ///    bytes (the first such batch always gets one).
    pub fn observe(&mut self, position: u32, h: &BatchHeader, interval: u32) -> NewEntries {
        let rel = (h.base_offset - self.base) as u32;
        let mut new = NewEntries::default();
        if self.offsets.is_empty() || self.bytes_since_offset >= interval as u64 {
            let e = OffsetEntry {
                relative_offset: rel,
                position,
            };
            self.offsets.push(e);
            self.bytes_since_offset = 0;
            new.offset = Some(e);
        }
        self.bytes_since_offset += h.batch_length as u64;
        let raises = self.max_timestamp.is_none_or(|m| h.max_timestamp > m);
        if raises {
            self.max_timestamp = Some(h.max_timestamp);
            if self.times.is_empty() || self.bytes_since_time >= interval as u64 {
                let e = TimeEntry {
                    timestamp: h.max_timestamp,
                    relative_offset: rel,
                };
                self.times.push(e);
                self.bytes_since_time = 0;
                new.time = Some(e);
            }
        }
        self.bytes_since_time += h.batch_length as u64;
        new
    }

    /// The final time entry added when the segment is sealed (if the maximum is not yet in
    /// the index); `last_batch_rel` is the relative offset of the segment's last batch.
    pub fn seal_entry(&mut self, last_batch_rel: u32) -> Option<TimeEntry> {
        let max = self.max_timestamp?;
        if self.times.last().is_some_and(|t| t.timestamp >= max) {
            return None;
        }
        let e = TimeEntry {
            timestamp: max,
            relative_offset: last_batch_rel,
        };
        self.times.push(e);
        Some(e)
    }

    /// The entry to start reading batches from to find offset `offset` (>= base): the last
    /// one at or below it.
    pub fn entry_for_offset(&self, offset: u64) -> Option<OffsetEntry> {
        let rel = offset.saturating_sub(self.base);
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset as u64 <= rel);
        i.checked_sub(1).map(|i| self.offsets[i])
    }

    /// The entry to start reading batches from to find the first record with timestamp
    /// `>= t`: every batch before the last time entry below `t` is older than `t`.
    pub fn entry_for_time(&self, t: i64) -> Option<OffsetEntry> {
        let i = self.times.partition_point(|e| e.timestamp < t);
        let rel = self.times.get(i.checked_sub(1)?)?.relative_offset;
        self.entry_for_offset(self.base + rel as u64)
    }

    /// The last offset entry (where a scan to the end of the segment can start).
    pub fn last_position(&self) -> u64 {
        self.offsets.last().map_or(0, |e| e.position as u64)
    }

    /// Serialized offset index file.
    pub fn offset_file_bytes(&self) -> Vec<u8> {
        let mut out = ix::encode_header(IndexKind::Offset, self.base).to_vec();
        for e in &self.offsets {
            ix::put_offset_entry(&mut out, *e);
        }
        out
    }

    /// Serialized time index file.
    pub fn time_file_bytes(&self) -> Vec<u8> {
        let mut out = ix::encode_header(IndexKind::Time, self.base).to_vec();
        for e in &self.times {
            ix::put_time_entry(&mut out, *e);
        }
        out
    }

    /// Publish both index files atomically.
    pub fn write_files(&self, dir: &Path) -> Result<()> {
        publish::write_atomic(
            &index_path(dir, self.base, IndexKind::Offset),
            &self.offset_file_bytes(),
        )?;
        publish::write_atomic(
            &index_path(dir, self.base, IndexKind::Time),
            &self.time_file_bytes(),
        )
    }

    /// Load and check both index files against a log of `log_len` bytes.
    ///
    /// `Ok(Err(why))` when an index is missing or invalid (rebuild it); `Err` only for I/O
    /// errors other than "not found". `active` tolerates a trailing partial entry. The
    /// caller still checks that the last offset entry lands on the batch it names.
    pub fn load(
        dir: &Path,
        base: u64,
        log_len: u64,
        active: bool,
    ) -> Result<std::result::Result<SegmentIndex, String>> {
        let mut idx = SegmentIndex::new(base);
        let read = |kind: IndexKind| -> Result<std::result::Result<Vec<u8>, String>> {
            let path = index_path(dir, base, kind);
            match publish::read_capped(&path, MAX_INDEX_BYTES) {
                Ok(b) => Ok(Ok(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Err(format!("{} is missing", path.display())))
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Ok(Err(format!("{}: {e}", path.display())))
                }
                Err(e) => Err(BusError::io(&path, e)),
            }
        };
        let obytes = match read(IndexKind::Offset)? {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let tbytes = match read(IndexKind::Time)? {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let name = |kind: IndexKind| index_path(dir, base, kind).display().to_string();
        let obody = match ix::entries_of(IndexKind::Offset, base, &obytes, active) {
            Ok(b) => b,
            Err(f) => return Ok(Err(format!("{}: {f}", name(IndexKind::Offset)))),
        };
        let tbody = match ix::entries_of(IndexKind::Time, base, &tbytes, active) {
            Ok(b) => b,
            Err(f) => return Ok(Err(format!("{}: {f}", name(IndexKind::Time)))),
        };
        idx.offsets = ix::offset_entries(obody).collect();
        idx.times = ix::time_entries(tbody).collect();
        if let Err(why) = idx.check(log_len) {
            return Ok(Err(format!("{}: {why}", name(IndexKind::Offset))));
        }
        idx.max_timestamp = idx.times.last().map(|t| t.timestamp);
        Ok(Ok(idx))
    }

    /// Entries increase and point inside the log.
    fn check(&self, log_len: u64) -> std::result::Result<(), String> {
        if log_len > 0
            && self
                .offsets
                .first()
                .map(|e| (e.relative_offset, e.position))
                != Some((0, 0))
        {
            return Err("first entry is not (0, 0)".into());
        }
        for w in self.offsets.windows(2) {
            if w[1].relative_offset <= w[0].relative_offset || w[1].position <= w[0].position {
                return Err("offset entries do not increase".into());
            }
        }
        if self
            .offsets
            .last()
            .is_some_and(|e| e.position as u64 >= log_len)
        {
            return Err("an entry points past the end of the log".into());
        }
        for w in self.times.windows(2) {
            if w[1].timestamp <= w[0].timestamp || w[1].relative_offset < w[0].relative_offset {
                return Err("time entries do not increase".into());
            }
        }
        Ok(())
    }
}
