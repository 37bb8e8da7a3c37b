//! Reading: one partition ([`PartitionReader`]) or a whole topic ([`Consumer`]), from an
//! offset, a timestamp, the start or the end, following the tail while a writer appends.
//!
//! ```text
//!  open(start) ── offset o: segment = last base <= o; index entry <= o; read batches to o
//!              ── time t:   per segment, time index entry < t; first record ts >= t
//!  fill() ── frame at pos ── good, base = expected ─> decode, deliver (skipping records
//!        │                                             before the start offset)
//!        ├─ end / short / bad ─ next segment file (named by the expected offset) exists?
//!        │                        yes: re-read once (the writer finished this one), move on
//!        │                        no:  damage with an intact batch after it -> BUS_CORRUPT
//!        │                             otherwise: nothing more yet (torn or being written)
//! ```
//!
//! Only complete batches with a good CRC are ever delivered, each record exactly once, in
//! offset order.

use std::path::{Path, PathBuf};

use crate::bus::Bus;
use crate::error::{BusError, Result};
use crate::format::{Batch, BatchHeader, Fault, RecordView, BATCH_VERSION};
use crate::groups;
use crate::segment::index::SegmentIndex;
use crate::segment::reader::{FrameAt, LogReader};
use crate::segment::{list_segments, log_path};

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first offset still stored.
    Earliest,
    /// The end: only records appended from now on.
    Latest,
    /// This offset (`BUS_OFFSET_OUT_OF_RANGE` below the start or beyond the end).
    Offset(u64),
    /// The first record, in offset order, whose timestamp is `>=` this (µs).
    Timestamp(i64),
}

/// A batch delivered by a reader: its records from the reader's position on.
#[derive(Debug, Clone, Copy)]
pub struct ReadBatch<'a> {
    pub partition: u32,
    batch: &'a Batch,
    skip: usize,
}

impl<'a> ReadBatch<'a> {
    /// The delivered records, in offset order.
    pub fn records(&self) -> impl Iterator<Item = RecordView<'a>> + 'a {
        let batch = self.batch;
        (self.skip..batch.len()).filter_map(move |i| batch.get(i))
    }

    /// Number of delivered records.
    pub fn len(&self) -> usize {
        self.batch.len() - self.skip
    }

    /// Whether no record is delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offset of the first delivered record.
    pub fn first_offset(&self) -> u64 {
        self.batch.base_offset() + self.skip as u64
    }

    /// The batch header.
    pub fn header(&self) -> Option<&'a BatchHeader> {
        self.batch.header()
    }
}

/// A position: a batch boundary in a segment and the offset of the batch there.
#[derive(Debug, Clone, Copy)]
struct Spot {
    seg_base: u64,
    pos: u64,
    expect: u64,
}

/// Reads one partition in offset order.
pub struct PartitionReader {
    dir: PathBuf,
    topic: String,
    partition: u32,
    spot: Spot,
    log: Option<LogReader>,
    /// Next offset to deliver.
    next: u64,
    batch: Batch,
    /// Records of `batch` before the start offset.
    skip: usize,
    has_batch: bool,
}

impl PartitionReader {
    /// Open partition `partition` of `topic` (directory `dir`) at `start`.
    pub fn open(dir: PathBuf, topic: &str, partition: u32, start: StartAt) -> Result<Self> {
        let bases = list_segments(&dir)?;
        let first = bases.first().copied().unwrap_or(0);
        let out_of_range = |offset: u64, end: u64| BusError::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            offset,
            start: first,
            end,
        };
        let (spot, next) = match start {
            StartAt::Earliest => (
                Spot {
                    seg_base: first,
                    pos: 0,
                    expect: first,
                },
                first,
            ),
            StartAt::Latest => {
                let spot = end_spot(&dir, &bases)?;
                (spot, spot.expect)
            }
            StartAt::Offset(o) => {
                let Some(&seg) = bases.iter().rev().find(|&&b| b <= o) else {
                    let end = end_spot(&dir, &bases)?.expect;
                    return match (o, bases.is_empty()) {
                        (0, true) => Ok(Self::at(
                            dir,
                            topic,
                            partition,
                            Spot {
                                seg_base: 0,
                                pos: 0,
                                expect: 0,
                            },
                            0,
                        )),
                        _ => Err(out_of_range(o, end)),
                    };
                };
                let (spot, reached) = locate(&dir, seg, o)?;
                if reached < o {
                    return Err(out_of_range(o, end_spot(&dir, &bases)?.expect));
                }
                (spot, o)
            }
            StartAt::Timestamp(t) => match find_time(&dir, &bases, t)? {
                Some((spot, offset)) => (spot, offset),
                None => {
                    let spot = end_spot(&dir, &bases)?;
                    (spot, spot.expect)
                }
            },
        };
        Ok(Self::at(dir, topic, partition, spot, next))
    }

    fn at(dir: PathBuf, topic: &str, partition: u32, spot: Spot, next: u64) -> Self {
        PartitionReader {
            dir,
            topic: topic.to_string(),
            partition,
            spot,
            log: None,
            next,
            batch: Batch::default(),
            skip: 0,
            has_batch: false,
        }
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next offset this reader will deliver.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next batch, or `None` when nothing more is written yet (call again to follow).
    pub fn next_batch(&mut self) -> Result<Option<ReadBatch<'_>>> {
        Ok(if self.fill()? { self.current() } else { None })
    }

    /// The batch the last successful [`PartitionReader::fill`] read.
    pub fn current(&self) -> Option<ReadBatch<'_>> {
        self.has_batch.then_some(ReadBatch {
            partition: self.partition,
            batch: &self.batch,
            skip: self.skip,
        })
    }

    /// Read the next batch into the reader; `false` when nothing more is written yet.
    pub fn fill(&mut self) -> Result<bool> {
        self.has_batch = false;
        loop {
            if self.log.is_none() {
                let path = log_path(&self.dir, self.spot.seg_base);
                if !path.exists() {
                    return Ok(false);
                }
                self.log = Some(LogReader::open(&path)?);
            }
            let Some(log) = self.log.as_mut() else {
                return Ok(false);
            };
            let pos = self.spot.pos;
            let fault = match log.frame_at(pos)? {
                FrameAt::Good(h) if h.base_offset == self.spot.expect => {
                    let bytes = log.frame_bytes(pos, &h)?;
                    if let Err(f) = self.batch.decode(&h, bytes) {
                        return Err(BusError::corrupt(log.path(), pos, f.to_string()));
                    }
                    self.spot.pos += h.batch_length as u64;
                    self.spot.expect = h.next_offset();
                    if h.next_offset() <= self.next {
                        continue;
                    }
                    self.skip = self.next.saturating_sub(h.base_offset) as usize;
                    self.next = h.next_offset();
                    self.has_batch = true;
                    return Ok(true);
                }
                FrameAt::Good(h) => Some(Fault::Invalid(format!(
                    "base offset {} where {} was expected",
                    h.base_offset, self.spot.expect
                ))),
                FrameAt::End => None,
                FrameAt::Bad(f) => Some(f),
            };
            // Only the last segment can be empty, so an empty one has no successor.
            let next_seg = log_path(&self.dir, self.spot.expect);
            if self.spot.expect > self.spot.seg_base && next_seg.exists() {
                // The writer sealed this segment before creating the next: read it once
                // more; its end must now be exact.
                log.invalidate();
                match log.frame_at(pos)? {
                    FrameAt::Good(h) if h.base_offset == self.spot.expect => continue,
                    FrameAt::Good(h) => {
                        let f = Fault::Invalid(format!(
                            "base offset {} where {} was expected",
                            h.base_offset, self.spot.expect
                        ));
                        return Err(damage(log.path(), pos, &f));
                    }
                    FrameAt::End => {
                        self.spot = Spot {
                            seg_base: self.spot.expect,
                            pos: 0,
                            expect: self.spot.expect,
                        };
                        self.log = None;
                        continue;
                    }
                    FrameAt::Bad(f) => return Err(damage(log.path(), pos, &f)),
                }
            }
            // A later segment that does not start here means this sealed segment ends short.
            let later = list_segments(&self.dir)?
                .into_iter()
                .find(|&b| b > self.spot.seg_base);
            if let Some(b) = later {
                if b == self.spot.expect || confirm_good(log, pos, self.spot.expect)? {
                    continue; // the writer rolled or finished the batch just now
                }
                let why = fault.as_ref().map_or_else(
                    || {
                        format!(
                            "segment ends at offset {} but the next one starts at {b}",
                            self.spot.expect
                        )
                    },
                    |f| f.to_string(),
                );
                return Err(BusError::corrupt(log.path(), pos, why));
            }
            match fault {
                None => return Ok(false),
                Some(f @ Fault::UnsupportedVersion(_)) => return Err(damage(log.path(), pos, &f)),
                Some(f) => {
                    if log.find_intact_after(pos)?.is_some() {
                        if confirm_good(log, pos, self.spot.expect)? {
                            continue;
                        }
                        return Err(damage(log.path(), pos, &f));
                    }
                    // A torn tail or a batch still being written: not visible yet.
                    log.invalidate();
                    return Ok(false);
                }
            }
        }
    }
}

/// Re-read the frame at `pos` with fresh bytes. The writer appends in order, so once
/// anything after `pos` is visible, a batch that was still being written at `pos` when it
/// was first read is complete now: only a frame that is still bad is damage.
fn confirm_good(log: &mut LogReader, pos: u64, expect: u64) -> Result<bool> {
    log.invalidate();
    Ok(matches!(log.frame_at(pos)?, FrameAt::Good(h) if h.base_offset == expect))
}

fn damage(segment: &Path, position: u64, f: &Fault) -> BusError {
    match f {
        Fault::UnsupportedVersion(v) => BusError::UnsupportedVersion {
            path: segment.to_path_buf(),
            position,
            found: *v as u64,
            supported: BATCH_VERSION as u64,
        },
        f => BusError::corrupt(segment, position, f.to_string()),
    }
}

/// A segment's index for reading: from its files if valid, else rebuilt in memory.
fn reader_index(dir: &Path, base: u64, log: &mut LogReader, interval: u32) -> Result<SegmentIndex> {
    if let Ok(idx) = SegmentIndex::load(dir, base, log.len()?, true)? {
        return Ok(idx);
    }
    Ok(crate::segment::recovery::scan_segment(log, base, interval, false)?.index)
}

/// The batch boundary at or before offset `target` in segment `seg_base`, reading forward
/// from the index; stops at the batch holding `target` or at the end of good data. Also
/// returns how far good data is known to reach (the end of the batch holding `target`).
fn locate(dir: &Path, seg_base: u64, target: u64) -> Result<(Spot, u64)> {
    let path = log_path(dir, seg_base);
    let mut log = LogReader::open(&path)?;
    let idx = reader_index(dir, seg_base, &mut log, 4096)?;
    let mut spot = Spot {
        seg_base,
        pos: 0,
        expect: seg_base,
    };
    if let Some(e) = idx.entry_for_offset(target) {
        let claimed = seg_base + e.relative_offset as u64;
        if let FrameAt::Good(h) = log.frame_at(e.position as u64)? {
            if h.base_offset == claimed {
                spot.pos = e.position as u64;
                spot.expect = claimed;
            }
        }
    }
    let mut reached = spot.expect;
    while let FrameAt::Good(h) = log.frame_at(spot.pos)? {
        if h.base_offset != spot.expect {
            break;
        }
        reached = h.next_offset();
        if h.next_offset() > target {
            break;
        }
        spot.pos += h.batch_length as u64;
        spot.expect = h.next_offset();
    }
    Ok((spot, reached))
}

/// The end of the partition's good data.
fn end_spot(dir: &Path, bases: &[u64]) -> Result<Spot> {
    match bases.last() {
        None => Ok(Spot {
            seg_base: 0,
            pos: 0,
            expect: 0,
        }),
        Some(&last) => Ok(locate(dir, last, u64::MAX)?.0),
    }
}

/// The first record with timestamp >= `t`: its batch's spot and its offset.
fn find_time(dir: &Path, bases: &[u64], t: i64) -> Result<Option<(Spot, u64)>> {
    let mut batch = Batch::default();
    for &base in bases {
        let path = log_path(dir, base);
        let mut log = LogReader::open(&path)?;
        let idx = reader_index(dir, base, &mut log, 4096)?;
        let mut spot = Spot {
            seg_base: base,
            pos: 0,
            expect: base,
        };
        if let Some(e) = idx.entry_for_time(t) {
            let claimed = base + e.relative_offset as u64;
            if let FrameAt::Good(h) = log.frame_at(e.position as u64)? {
                if h.base_offset == claimed {
                    spot.pos = e.position as u64;
                    spot.expect = claimed;
                }
            }
        }
        while let FrameAt::Good(h) = log.frame_at(spot.pos)? {
            if h.base_offset != spot.expect {
                break;
            }
            if h.max_timestamp >= t {
                let bytes = log.frame_bytes(spot.pos, &h)?;
                batch
                    .decode(&h, bytes)
                    .map_err(|f| BusError::corrupt(&path, spot.pos, f.to_string()))?;
                if let Some(r) = batch.records().find(|r| r.timestamp >= t) {
                    return Ok(Some((spot, r.offset)));
                }
            }
            spot.pos += h.batch_length as u64;
            spot.expect = h.next_offset();
        }
    }
    Ok(None)
}

/// The offset after the last good batch of segment `base`.
pub fn segment_end(dir: &Path, base: u64) -> Result<u64> {
    Ok(locate(dir, base, u64::MAX)?.0.expect)
}

/// The offsets of a partition: first stored, end (next to be written), from its files.
pub fn offset_range(dir: &Path) -> Result<(u64, u64)> {
    let bases = list_segments(dir)?;
    let start = bases.first().copied().unwrap_or(0);
    Ok((start, end_spot(dir, &bases)?.expect))
}

/// Reads every partition of a topic, round-robin, optionally as a consumer group.
pub struct Consumer {
    bus_root: PathBuf,
    topic: String,
    group: Option<String>,
    readers: Vec<PartitionReader>,
    turn: usize,
}

impl Consumer {
    /// All partitions of `topic` from `start`.
    pub fn open(bus: &Bus, topic: &str, start: StartAt) -> Result<Consumer> {
        let meta = bus.topic(topic)?;
        let mut readers = Vec::new();
        for p in 0..meta.partitions {
            readers.push(PartitionReader::open(
                bus.partition_dir(&meta, p)?,
                topic,
                p,
                start,
            )?);
        }
        Ok(Consumer {
            bus_root: bus.root().to_path_buf(),
            topic: topic.to_string(),
            group: None,
            readers,
            turn: 0,
        })
    }

    /// All partitions of `topic` from `group`'s committed offsets (`fallback` where the
    /// group has none); [`Consumer::commit`] records the positions.
    pub fn open_group(bus: &Bus, topic: &str, group: &str, fallback: StartAt) -> Result<Consumer> {
        let meta = bus.topic(topic)?;
        let committed = groups::committed(bus.root(), group, topic)?;
        let mut readers = Vec::new();
        for p in 0..meta.partitions {
            let start = committed.get(&p).map_or(fallback, |&o| StartAt::Offset(o));
            readers.push(PartitionReader::open(
                bus.partition_dir(&meta, p)?,
                topic,
                p,
                start,
            )?);
        }
        Ok(Consumer {
            bus_root: bus.root().to_path_buf(),
            topic: topic.to_string(),
            group: Some(group.to_string()),
            readers,
            turn: 0,
        })
    }

    /// The next batch of any partition (round-robin), or `None` when all are caught up.
    pub fn poll(&mut self) -> Result<Option<ReadBatch<'_>>> {
        let n = self.readers.len();
        for k in 0..n {
            let i = (self.turn + k) % n;
            if self.readers[i].fill()? {
                self.turn = i + 1;
                return Ok(self.readers[i].current());
            }
        }
        Ok(None)
    }

    /// The next offset to deliver, per partition.
    pub fn positions(&self) -> Vec<(u32, u64)> {
        self.readers.iter().map(|r| (r.partition, r.next)).collect()
    }

    /// Commit the current positions for the consumer group (atomically).
    pub fn commit(&self) -> Result<()> {
        let Some(group) = &self.group else {
            return Err(BusError::InvalidArgument(
                "commit needs a consumer opened with a group".into(),
            ));
        };
        groups::commit(&self.bus_root, group, &self.topic, &self.positions())
    }
}
