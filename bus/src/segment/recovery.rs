//! Scanning segments, and the recovery policy of `docs/format.md` built on the scan.
//!
//! [`scan_segment`] reads a log batch by batch from byte 0, rebuilding its index, and stops
//! at the first position that is not a good batch continuing the offsets. What that damage
//! means is decided by the callers:
//!
//! ```text
//!   open_for_write (writer open)          recover_partition (`sluice bus recover`)
//!   sealed segments: index checked,       every segment scanned in full;
//!     rebuilt if missing/invalid;         at the first damage anywhere:
//!     tail from last entry re-read          truncate there, delete later segments,
//!   last segment scanned in full:           report what was cut
//!     damage, nothing intact after -> truncate (torn tail)
//!     damage, something intact after -> BUS_CORRUPT (refuse)
//!     intact batch of unknown version -> BUS_UNSUPPORTED_VERSION (never cut)
//! ```

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{BusError, Result};
use crate::format::index::IndexKind;
use crate::format::{Batch, Fault, BATCH_VERSION};
use crate::publish;
use crate::segment::index::SegmentIndex;
use crate::segment::reader::{FrameAt, LogReader};
use crate::segment::{index_path, list_segments, log_path, parse_name};

/// Where and how a scan stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub position: u64,
    pub fault: Fault,
    /// The first intact batch after `position` in the same file, if any.
    pub intact_after: Option<u64>,
    pub file_len: u64,
}

impl Damage {
    /// A torn tail: nothing intact follows (and the version is not simply unknown).
    pub fn is_torn_tail(&self) -> bool {
        self.intact_after.is_none() && !matches!(self.fault, Fault::UnsupportedVersion(_))
    }

    /// The error naming this damage.
    pub fn to_error(&self, segment: &Path) -> BusError {
        match self.fault {
            Fault::UnsupportedVersion(v) => BusError::UnsupportedVersion {
                path: segment.to_path_buf(),
                position: self.position,
                found: v as u64,
                supported: BATCH_VERSION as u64,
            },
            ref f => {
                let tail = if self.is_torn_tail() {
                    " (torn tail)"
                } else {
                    ""
                };
                BusError::corrupt(segment, self.position, format!("{f}{tail}"))
            }
        }
    }
}

/// The result of reading one segment.
#[derive(Debug)]
pub struct Scan {
    pub index: SegmentIndex,
    /// Bytes of good batches from the start.
    pub valid_len: u64,
    /// Offset after the last good batch (the base if there is none).
    pub end_offset: u64,
    pub batches: u64,
    pub records: u64,
    pub first_timestamp: Option<i64>,
    /// Relative offset of the last good batch.
    pub last_batch_rel: Option<u32>,
    pub damage: Option<Damage>,
}

/// Read a segment from `start` (a batch boundary holding offset `start_offset`) to its end
/// or first damage. With `decode`, every record is also decoded and checked.
pub fn scan_segment(log: &mut LogReader, base: u64, interval: u32, decode: bool) -> Result<Scan> {
    scan_from(log, base, 0, base, interval, decode)
}

/// [`scan_segment`] starting at a known batch boundary.
pub fn scan_from(
    log: &mut LogReader,
    base: u64,
    start: u64,
    start_offset: u64,
    interval: u32,
    decode: bool,
) -> Result<Scan> {
    let mut scan = Scan {
        index: SegmentIndex::new(base),
        valid_len: start,
        end_offset: start_offset,
        batches: 0,
        records: 0,
        first_timestamp: None,
        last_batch_rel: None,
        damage: None,
    };
    let mut batch = Batch::default();
    let mut pos = start;
    let mut retried_at = None;
    loop {
        let fault = match log.frame_at(pos)? {
            FrameAt::End => break,
            FrameAt::Bad(f) => f,
            FrameAt::Good(h) if h.base_offset != scan.end_offset => Fault::Invalid(format!(
                "base offset {} where {} was expected",
                h.base_offset, scan.end_offset
            )),
            FrameAt::Good(h) if pos > u32::MAX as u64 => Fault::Invalid(format!(
                "batch {} past the u32 position range",
                h.base_offset
            )),
            FrameAt::Good(h) => {
                let decoded = if decode {
                    let bytes = log.frame_bytes(pos, &h)?;
                    batch.decode(&h, bytes)
                } else {
                    Ok(())
                };
                match decoded {
                    Err(f) => f,
                    Ok(()) => {
                        scan.index.observe(pos as u32, &h, interval);
                        scan.last_batch_rel = Some((h.base_offset - base) as u32);
                        scan.first_timestamp.get_or_insert(h.first_timestamp);
                        pos += h.batch_length as u64;
                        scan.valid_len = pos;
                        scan.end_offset = h.next_offset();
                        scan.batches += 1;
                        scan.records += h.record_count as u64;
                        continue;
                    }
                }
            }
        };
        let intact_after = log.find_intact_after(pos)?;
        let framing = !matches!(fault, Fault::UnsupportedVersion(_) | Fault::Invalid(_));
        if intact_after.is_some() && framing && retried_at != Some(pos) {
            retried_at = Some(pos);
            // A read-only scan may race a live writer: bytes after `pos` exist only once
            // the batch at `pos` was fully written, so re-read it before calling it damage.
            log.invalidate();
            if matches!(log.frame_at(pos)?, FrameAt::Good(h) if h.base_offset == scan.end_offset) {
                continue;
            }
        }
        scan.damage = Some(Damage {
            position: pos,
            fault,
            intact_after,
            file_len: log.len()?,
        });
        break;
    }
    Ok(scan)
}

/// Remove temp files and index files whose log is gone.
pub fn clean_partition_dir(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BusError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BusError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let orphan = ["index", "timeindex"]
            .iter()
            .any(|ext| parse_name(&name, ext).is_some_and(|base| !log_path(dir, base).exists()));
        if publish::is_temp_name(&name) || orphan {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| BusError::io(&p, e))?;
        }
    }
    Ok(())
}

/// Cut a log at `len` bytes, durably.
pub fn truncate_log(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| BusError::io(path, e))?;
    f.set_len(len).map_err(|e| BusError::io(path, e))?;
    f.sync_all().map_err(|e| BusError::io(path, e))
}

/// A segment deleted with its indexes.
fn delete_segment(dir: &Path, base: u64) -> Result<()> {
    let log = log_path(dir, base);
    fs::remove_file(&log).map_err(|e| BusError::io(&log, e))?;
    for kind in [IndexKind::Offset, IndexKind::Time] {
        let p = index_path(dir, base, kind);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BusError::io(&p, e)),
        }
    }
    Ok(())
}

/// The state of the active segment after recovery.
#[derive(Debug)]
pub struct ActiveSegment {
    pub base: u64,
    pub len: u64,
    pub end_offset: u64,
    pub index: SegmentIndex,
    pub last_batch_rel: Option<u32>,
}

/// What opening a partition for writing found.
#[derive(Debug)]
pub struct Opened {
    pub sealed: Vec<u64>,
    pub active: Option<ActiveSegment>,
    /// A torn tail cut from the active segment: (segment, position, bytes cut).
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Sealed segments whose index was rebuilt.
    pub rebuilt_indexes: Vec<u64>,
}

/// Check a sealed segment's index (rebuilding it if needed) and return its end offset.
fn open_sealed(dir: &Path, base: u64, interval: u32, rebuilt: &mut Vec<u64>) -> Result<u64> {
    let path = log_path(dir, base);
    let mut log = LogReader::open(&path)?;
    let len = log.len()?;
    if let Ok(idx) = SegmentIndex::load(dir, base, len, false)? {
        // The last entry must land on the batch it names; then read on to the end.
        let pos = idx.last_position();
        let rel = idx.offsets.last().map_or(0, |e| e.relative_offset as u64);
        if let FrameAt::Good(h) = log.frame_at(pos)? {
            if h.base_offset == base + rel {
                let scan = scan_from(&mut log, base, pos, h.base_offset, interval, false)?;
                if let Some(d) = scan.damage {
                    return Err(d.to_error(&path));
                }
                return Ok(scan.end_offset);
            }
        }
    }
    let mut scan = scan_segment(&mut log, base, interval, false)?;
    if let Some(d) = scan.damage {
        return Err(d.to_error(&path));
    }
    if let Some(rel) = scan.last_batch_rel {
        scan.index.seal_entry(rel);
    }
    tracing::warn!(segment = %path.display(), "rebuilt a missing or invalid index");
    scan.index.write_files(dir)?;
    rebuilt.push(base);
    Ok(scan.end_offset)
}

/// The writer's open: the recovery policy of `docs/format.md`, steps 1 to 5.
pub fn open_for_write(dir: &Path, interval: u32) -> Result<Opened> {
    clean_partition_dir(dir)?;
    let bases = list_segments(dir)?;
    let mut opened = Opened {
        sealed: Vec::new(),
        active: None,
        truncated: None,
        rebuilt_indexes: Vec::new(),
    };
    let Some((&last, sealed)) = bases.split_last() else {
        return Ok(opened);
    };
    let mut expected: Option<u64> = None;
    for &base in sealed {
        check_contiguous(dir, base, expected)?;
        expected = Some(open_sealed(
            dir,
            base,
            interval,
            &mut opened.rebuilt_indexes,
        )?);
        opened.sealed.push(base);
    }
    check_contiguous(dir, last, expected)?;
    let path = log_path(dir, last);
    let mut log = LogReader::open(&path)?;
    let scan = scan_segment(&mut log, last, interval, false)?;
    if let Some(d) = &scan.damage {
        if !d.is_torn_tail() {
            return Err(d.to_error(&path));
        }
        let cut = d.file_len - d.position;
        tracing::warn!(
            segment = %path.display(),
            position = d.position,
            bytes = cut,
            "truncating a torn tail: {}",
            d.fault
        );
        truncate_log(&path, d.position)?;
        opened.truncated = Some((path.clone(), d.position, cut));
    }
    scan.index.write_files(dir)?;
    opened.active = Some(ActiveSegment {
        base: last,
        len: scan.valid_len,
        end_offset: scan.end_offset,
        index: scan.index,
        last_batch_rel: scan.last_batch_rel,
    });
    Ok(opened)
}

fn check_contiguous(dir: &Path, base: u64, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(e) if e != base => Err(BusError::corrupt(
            log_path(dir, base),
            0,
            format!("segment starts at offset {base} but the previous segment ends at {e}"),
        )),
        _ => Ok(()),
    }
}

/// One cut made by [`recover_partition`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cut {
    pub segment: PathBuf,
    pub position: u64,
    pub reason: String,
    pub bytes_cut: u64,
    /// Later segments deleted because they followed the damage.
    pub segments_deleted: Vec<PathBuf>,
    /// First offset lost (the end of the intact data).
    pub offsets_lost_from: u64,
    /// Offset after the last intact record that was cut, as far as intact batches tell.
    pub offsets_lost_until: u64,
}

/// What `recover` did to one partition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionRecovery {
    pub dir: PathBuf,
    pub segments: usize,
    pub end_offset: u64,
    pub cut: Option<Cut>,
    pub indexes_rebuilt: usize,
}

/// `recover`: read every segment in full; cut at the first damage (deleting what follows),
/// rebuild every index. Refuses to cut an intact batch of an unknown version.
pub fn recover_partition(dir: &Path, interval: u32) -> Result<PartitionRecovery> {
    clean_partition_dir(dir)?;
    let bases = list_segments(dir)?;
    let mut report = PartitionRecovery {
        dir: dir.to_path_buf(),
        segments: 0,
        end_offset: 0,
        cut: None,
        indexes_rebuilt: 0,
    };
    let mut expected: Option<u64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = log_path(dir, base);
        let mut log = LogReader::open(&path)?;
        let mut scan = scan_segment(&mut log, base, interval, true)?;
        let gap = expected.filter(|&e| e != base);
        // Damage (or a gap before this segment): keep what is intact, cut the rest.
        let (keep_this, position, reason) = match (gap, &scan.damage) {
            (None, None) => {
                if i + 1 < bases.len() {
                    if let Some(rel) = scan.last_batch_rel {
                        scan.index.seal_entry(rel);
                    }
                }
                scan.index.write_files(dir)?;
                report.indexes_rebuilt += 1;
                report.segments += 1;
                report.end_offset = scan.end_offset;
                expected = Some(scan.end_offset);
                continue;
            }
            (_, Some(d)) if matches!(d.fault, Fault::UnsupportedVersion(_)) => {
                return Err(d.to_error(&path));
            }
            (Some(e), _) => (
                false,
                0,
                format!("segment starts at offset {base} but the previous segment ends at {e}"),
            ),
            (None, Some(d)) => (true, d.position, d.fault.to_string()),
        };
        let lost_from = if keep_this {
            scan.end_offset
        } else {
            expected.unwrap_or(base)
        };
        let mut lost_until = lost_from;
        if let Some(d) = &scan.damage {
            let mut q = d.intact_after;
            while let Some(p) = q {
                if let FrameAt::Good(h) = log.frame_at(p)? {
                    lost_until = lost_until.max(h.next_offset());
                }
                q = log.find_intact_after(p)?;
            }
        }
        let bytes_cut = log.len()? - position;
        let mut deleted = Vec::new();
        for &later in &bases[i + 1..] {
            let mut l = LogReader::open(&log_path(dir, later))?;
            let s = scan_segment(&mut l, later, interval, false)?;
            lost_until = lost_until.max(s.end_offset);
            delete_segment(dir, later)?;
            deleted.push(log_path(dir, later));
        }
        if keep_this {
            truncate_log(&path, position)?;
            scan.index.write_files(dir)?;
            report.indexes_rebuilt += 1;
            report.segments += 1;
            report.end_offset = scan.end_offset;
        } else {
            lost_until = lost_until.max(scan.end_offset);
            delete_segment(dir, base)?;
            deleted.insert(0, path.clone());
        }
        publish::fsync_dir(dir)?;
        report.cut = Some(Cut {
            segment: path,
            position,
            reason,
            bytes_cut,
            segments_deleted: deleted,
            offsets_lost_from: lost_from,
            offsets_lost_until: lost_until,
        });
        break;
    }
    Ok(report)
}
