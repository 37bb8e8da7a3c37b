//! Inspection and repair behind `sluice bus describe | dump | verify | recover`: library
//! calls returning serializable reports, so the CLI only prints.
//!
//! - [`describe`]: partitions, offset ranges, segments, sizes, time range (cheap: indexes
//!   plus the batches after each segment's last index entry).
//! - [`dump_segment`]: every batch of one `.log` with position, size and CRC status, like
//!   `kafka-dump-log`; after damage it resynchronises on the next intact batch.
//! - [`verify`]: a full checksum and decode scan, segment contiguity, and index checks
//!   against indexes rebuilt from the log. Read-only.
//! - [`recover`]: under each partition's writer lock, `recovery::recover_partition`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bus::Bus;
use crate::consumer::segment_end;
use crate::error::{BusError, Result};
use crate::format::meta::TopicConfig;
use crate::format::{batch, Batch, Compression, Fault, OwnedRecord};
use crate::partition::acquire_lock;
use crate::segment::index::SegmentIndex;
use crate::segment::reader::{FrameAt, LogReader};
use crate::segment::recovery::{recover_partition, scan_segment, PartitionRecovery};
use crate::segment::{file_len, list_segments, log_path};

/// One segment in [`describe`].
#[derive(Debug, Clone, Serialize)]
pub struct SegmentInfo {
    pub file: PathBuf,
    pub base_offset: u64,
    pub end_offset: u64,
    pub bytes: u64,
    pub max_timestamp: Option<i64>,
}

/// One partition in [`describe`].
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub start_offset: u64,
    pub end_offset: u64,
    pub bytes: u64,
    pub first_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    pub segments: Vec<SegmentInfo>,
}

/// [`describe`]'s result.
#[derive(Debug, Clone, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub created_unix_ms: u64,
    pub config: TopicConfig,
    pub partition_info: Vec<PartitionInfo>,
}

/// Partitions, offsets, segments, sizes and time range of a topic.
pub fn describe(bus: &Bus, topic: &str) -> Result<TopicInfo> {
    let meta = bus.topic(topic)?;
    let mut infos = Vec::new();
    for p in 0..meta.partitions {
        let dir = bus.partition_dir(&meta, p)?;
        let bases = list_segments(&dir)?;
        let mut info = PartitionInfo {
            partition: p,
            start_offset: bases.first().copied().unwrap_or(0),
            end_offset: bases.first().copied().unwrap_or(0),
            bytes: 0,
            first_timestamp: None,
            max_timestamp: None,
            segments: Vec::new(),
        };
        for &base in &bases {
            let path = log_path(&dir, base);
            let bytes = file_len(&path)?;
            let end = segment_end(&dir, base)?;
            let max_ts = segment_max_timestamp(&dir, base)?;
            if info.first_timestamp.is_none() {
                let mut log = LogReader::open(&path)?;
                if let FrameAt::Good(h) = log.frame_at(0)? {
                    info.first_timestamp = Some(h.first_timestamp);
                }
            }
            info.max_timestamp = info.max_timestamp.max(max_ts);
            info.bytes += bytes;
            info.end_offset = end;
            info.segments.push(SegmentInfo {
                file: path,
                base_offset: base,
                end_offset: end,
                bytes,
                max_timestamp: max_ts,
            });
        }
        infos.push(info);
    }
    Ok(TopicInfo {
        name: meta.name,
        partitions: meta.partitions,
        created_unix_ms: meta.created_unix_ms,
        config: meta.config,
        partition_info: infos,
    })
}

/// Largest timestamp in a segment: the time index's last entry (the running maximum at its
/// batch), then every batch from that one to the end. Not from the last *offset* entry: a
/// batch that raised the maximum within `index_interval_bytes` of the previous time entry
/// has no entry of its own, and an active segment has no seal entry yet, so such a batch can
/// lie before the last offset entry (the bus oracle found one: seed 12).
fn segment_max_timestamp(dir: &Path, base: u64) -> Result<Option<i64>> {
    let mut log = LogReader::open(&log_path(dir, base))?;
    let (mut max, mut pos) = match SegmentIndex::load(dir, base, log.len()?, true)? {
        Ok(idx) => {
            let from = idx
                .times
                .last()
                .and_then(|t| idx.entry_for_offset(base + t.relative_offset as u64))
                .map_or(0, |e| e.position as u64);
            (idx.max_timestamp, from)
        }
        Err(_) => (None, 0),
    };
    while let FrameAt::Good(h) = log.frame_at(pos)? {
        max = max.max(Some(h.max_timestamp));
        pos += h.batch_length as u64;
    }
    Ok(max)
}

/// One line of [`dump_segment`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DumpEntry {
    Batch {
        position: u64,
        size: u32,
        base_offset: u64,
        last_offset: u64,
        count: u32,
        first_timestamp: i64,
        max_timestamp: i64,
        compression: Compression,
        crc: u32,
        crc_ok: bool,
        /// With `--records`; rendered by the caller (values may be JSON or bytes).
        #[serde(skip)]
        records: Option<Vec<OwnedRecord>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Damage {
        position: u64,
        error: String,
        /// Where the next intact batch starts, if any.
        resume_at: Option<u64>,
    },
}

/// Totals of [`dump_segment`].
#[derive(Debug, Clone, Serialize)]
pub struct DumpSummary {
    pub file: PathBuf,
    pub bytes: u64,
    pub batches: u64,
    pub records: u64,
    pub damaged: u64,
}

/// Walk a segment file batch by batch, calling `visit` for each batch or damaged region.
pub fn dump_segment(
    path: &Path,
    with_records: bool,
    mut visit: impl FnMut(&DumpEntry) -> Result<()>,
) -> Result<DumpSummary> {
    let mut log = LogReader::open(path)?;
    let mut sum = DumpSummary {
        file: path.to_path_buf(),
        bytes: log.len()?,
        batches: 0,
        records: 0,
        damaged: 0,
    };
    let mut batch = Batch::default();
    let mut pos = 0u64;
    loop {
        match log.frame_at(pos)? {
            FrameAt::End => break,
            FrameAt::Good(h) => {
                let mut records = None;
                let mut error = None;
                if with_records {
                    let bytes = log.frame_bytes(pos, &h)?;
                    match batch.decode(&h, bytes) {
                        Ok(()) => {
                            records = Some(batch.records().map(|r| r.to_owned_record()).collect())
                        }
                        Err(f) => error = Some(f.to_string()),
                    }
                }
                visit(&DumpEntry::Batch {
                    position: pos,
                    size: h.batch_length,
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    count: h.record_count,
                    first_timestamp: h.first_timestamp,
                    max_timestamp: h.max_timestamp,
                    compression: h.compression,
                    crc: h.crc,
                    crc_ok: true,
                    records,
                    error,
                })?;
                sum.batches += 1;
                sum.records += h.record_count as u64;
                pos += h.batch_length as u64;
            }
            FrameAt::Bad(f) => {
                sum.damaged += 1;
                let resume_at = log.find_intact_after(pos)?;
                // A batch with a bad CRC still shows its header fields, like kafka-dump-log.
                let entry = match (&f, bad_crc_header(&mut log, pos)?) {
                    (Fault::BadCrc { stored, .. }, Some(h)) => DumpEntry::Batch {
                        position: pos,
                        size: h.batch_length,
                        base_offset: h.base_offset,
                        last_offset: h
                            .base_offset
                            .saturating_add(h.record_count.max(1) as u64 - 1),
                        count: h.record_count,
                        first_timestamp: h.first_timestamp,
                        max_timestamp: h.max_timestamp,
                        compression: h.compression,
                        crc: *stored,
                        crc_ok: false,
                        records: None,
                        error: Some(f.to_string()),
                    },
                    _ => DumpEntry::Damage {
                        position: pos,
                        error: f.to_string(),
                        resume_at,
                    },
                };
                visit(&entry)?;
                match resume_at {
                    Some(p) => pos = p,
                    None => break,
                }
            }
        }
    }
    Ok(sum)
}

/// The raw header fields of a frame whose CRC failed (for display only).
fn bad_crc_header(log: &mut LogReader, pos: u64) -> Result<Option<batch::BatchHeader>> {
    let w = log.window(pos, crate::format::BATCH_HEADER_LEN)?;
    if w.len() < crate::format::BATCH_HEADER_LEN {
        return Ok(None);
    }
    let le = |a: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&w[a..a + n]);
        u64::from_le_bytes(b)
    };
    Ok(Some(batch::BatchHeader {
        compression: if le(6, 2) == 1 {
            Compression::Zstd
        } else {
            Compression::None
        },
        crc: le(8, 4) as u32,
        batch_length: le(12, 4) as u32,
        base_offset: le(16, 8),
        record_count: le(24, 4) as u32,
        records_length: le(28, 4) as u32,
        first_timestamp: le(32, 8) as i64,
        max_timestamp: le(40, 8) as i64,
    }))
}

/// A problem found by [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `corrupt`, `torn_tail`, `unsupported_version`, `gap` or `index`.
    pub kind: &'static str,
    pub segment: PathBuf,
    pub position: u64,
    pub detail: String,
}

/// One partition in [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct PartitionCheck {
    pub topic: String,
    pub partition: u32,
    pub segments: usize,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub end_offset: u64,
    pub problems: Vec<Problem>,
}

/// [`verify`]'s result.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub partitions: Vec<PartitionCheck>,
}

impl VerifyReport {
    /// All problems.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.partitions.iter().flat_map(|p| &p.problems)
    }

    /// The error to exit with: `BUS_CORRUPT` (or `BUS_UNSUPPORTED_VERSION`) for log damage,
    /// `BUS_INDEX_DAMAGED` when only indexes are wrong, `None` when all is well.
    pub fn error(&self) -> Option<BusError> {
        let first_log = self.problems().find(|p| p.kind != "index");
        if let Some(p) = first_log {
            if p.kind == "unsupported_version" {
                return Some(BusError::UnsupportedVersion {
                    path: p.segment.clone(),
                    position: p.position,
                    found: 0,
                    supported: crate::format::BATCH_VERSION as u64,
                });
            }
            return Some(BusError::corrupt(&p.segment, p.position, p.detail.clone()));
        }
        self.problems().next().map(|p| BusError::IndexDamaged {
            detail: format!("{}: {}", p.segment.display(), p.detail),
        })
    }
}

/// Full checksum scan of one topic or all of them.
pub fn verify(bus: &Bus, topic: Option<&str>) -> Result<VerifyReport> {
    let topics = match topic {
        Some(t) => vec![t.to_string()],
        None => bus.topics()?,
    };
    let mut report = VerifyReport {
        partitions: Vec::new(),
    };
    for t in topics {
        let meta = bus.topic(&t)?;
        for p in 0..meta.partitions {
            let dir = bus.partition_dir(&meta, p)?;
            report.partitions.push(verify_partition(
                &dir,
                &t,
                p,
                meta.config.index_interval_bytes,
            )?);
        }
    }
    Ok(report)
}

fn verify_partition(
    dir: &Path,
    topic: &str,
    partition: u32,
    interval: u32,
) -> Result<PartitionCheck> {
    let bases = list_segments(dir)?;
    let mut check = PartitionCheck {
        topic: topic.to_string(),
        partition,
        segments: bases.len(),
        batches: 0,
        records: 0,
        bytes: 0,
        end_offset: bases.first().copied().unwrap_or(0),
        problems: Vec::new(),
    };
    let mut expected: Option<u64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let path = log_path(dir, base);
        if let Some(e) = expected.filter(|&e| e != base) {
            check.problems.push(Problem {
                kind: "gap",
                segment: path.clone(),
                position: 0,
                detail: format!("segment starts at offset {base} but the previous one ends at {e}"),
            });
        }
        let mut log = LogReader::open(&path)?;
        check.bytes += log.len()?;
        let mut scan = scan_segment(&mut log, base, interval, true)?;
        check.batches += scan.batches;
        check.records += scan.records;
        check.end_offset = scan.end_offset;
        expected = Some(scan.end_offset);
        if let Some(d) = &scan.damage {
            let kind = match d.fault {
                Fault::UnsupportedVersion(_) => "unsupported_version",
                _ if last && d.is_torn_tail() => "torn_tail",
                _ => "corrupt",
            };
            check.problems.push(Problem {
                kind,
                segment: path.clone(),
                position: d.position,
                detail: d.fault.to_string(),
            });
            continue;
        }
        if !last {
            if let Some(rel) = scan.last_batch_rel {
                scan.index.seal_entry(rel);
            }
        }
        let index_problem = match SegmentIndex::load(dir, base, log.len()?, last)? {
            Err(why) => Some(why),
            Ok(idx) => {
                let matches = if last {
                    scan.index.offsets.starts_with(&idx.offsets)
                        && scan.index.times.starts_with(&idx.times)
                } else {
                    scan.index.offsets == idx.offsets && scan.index.times == idx.times
                };
                (!matches).then(|| "index entries differ from the log".to_string())
            }
        };
        if let Some(detail) = index_problem {
            check.problems.push(Problem {
                kind: "index",
                segment: path,
                position: 0,
                detail,
            });
        }
    }
    Ok(check)
}

/// `recover`: for every partition of `topic` (or of every topic), take the writer lock and
/// cut damage, rebuild indexes (`docs/format.md`, Recovery policy).
pub fn recover(bus: &Bus, topic: Option<&str>) -> Result<Vec<PartitionRecovery>> {
    let topics = match topic {
        Some(t) => vec![t.to_string()],
        None => bus.topics()?,
    };
    let mut out = Vec::new();
    for t in topics {
        let meta = bus.topic(&t)?;
        for p in 0..meta.partitions {
            let dir = bus.partition_dir(&meta, p)?;
            let _lock = acquire_lock(&dir, &t, p)?;
            out.push(recover_partition(&dir, meta.config.index_interval_bytes)?);
        }
    }
    Ok(out)
}
