//! The recording half of the gate (stage B of the pipeline): decided batches in, durable
//! bus records and receipts out. It owns the receipt and quarantine logs, the receipt-id
//! memtable, the run files and the manifest (the pipeline lends the last two, [`IndexFiles`],
//! to its flusher thread, which runs the slow part of each flush, [`FlushWork::run`]).
//!
//! Per batch, in this order (the order is the crash-safety argument, `docs/replay.md`):
//!
//! 1. admitted events, grouped by partition in row order, are appended to the sink; each
//!    append returns once durable, with consecutive offsets;
//! 2. events whose dedupe key is known (SEEN) are compared with their original: payload
//!    hash of the event (from its envelope) against the original's (from its envelope if
//!    it is in this group, else from its record on the bus, durable by then): equal is a
//!    DUPLICATE, different a QUARANTINE `PAYLOAD_HASH_MISMATCH`;
//! 3. quarantined events get a quarantine record (with their payload hash);
//! 4. every event gets its receipt (in row order, one write): ADMIT with its own position,
//!    DUPLICATE with the original's, resolved from this batch or from the receipt log (no
//!    payload hash in either: the bus record has it);
//! 5. the watermarks move past the appended offsets.
//!
//! A crash between 1 and 4 leaves bus records without receipts; the next open finds them
//! past the watermarks and writes their receipts (`super::reconcile`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use sluice_storage::timefmt::format_rfc3339_micros;

use super::decide::{DecidedBatch, FlushDone, FlushJob, OrigRef, RowDecision};
use super::manifest::{Manifest, Watermarks, MANIFEST_FORMAT, MANIFEST_VERSION};
use crate::bus_payload::payload_hashes;
use crate::error::{IngestError, Result};
use crate::ids::{hex32_string, receipt_id_bytes, Hash32};
use crate::index::memtable::MemEntry;
use crate::index::memtable::MemTable;
use crate::index::{remove_files, RunSet};
use crate::quarantine::{QuarantineLog, QuarantineSync};
use crate::reason::{Decision, ReasonCode};
use crate::receipts::{EbPos, ReceiptLog, ReceiptReader, ReceiptRecord, ReceiptSync};
use crate::sink::{PendingMany, Sink, SinkRecord};

/// What happened to one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    pub events: u64,
    pub admitted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// Quarantines per reason, in [`crate::reason::ReasonCode::ALL`] order.
    pub by_reason: [u64; 5],
}

impl BatchCounts {
    pub fn add(&mut self, o: &BatchCounts) {
        self.events += o.events;
        self.admitted += o.admitted;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
        for (a, b) in self.by_reason.iter_mut().zip(o.by_reason) {
            *a += b;
        }
    }
}

/// The key a receipt id is indexed under (16 bytes, zero-padded).
pub fn receipt_id_key(rid: &[u8; 16]) -> Hash32 {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(rid);
    k
}

/// Stage B state.
pub struct Recorder {
    pub(crate) receipts: ReceiptLog,
    pub(crate) reader: ReceiptReader,
    pub(crate) quarantine: QuarantineLog,
    pub(crate) quarantine_path: PathBuf,
    pub(crate) rid_mem: MemTable,
    pub(crate) index: IndexFiles,
    pub(crate) watermarks: Watermarks,
    pub(crate) covered_seq: u64,
    pub(crate) flushes: u64,
    /// The last group started by [`Recorder::start_group`] and not yet settled.
    pub(crate) unsettled: Option<Unsettled>,
}

/// A group whose bus appends were started and may still be syncing: its receipts (encoded
/// already) are written once the appends are durable, never before (a receipt must not
/// name a bus record a crash could lose; bus records without receipts are what reopening
/// reconciles).
pub(crate) struct Unsettled {
    appends: Vec<(&'static str, PendingMany)>,
    receipts: Vec<u8>,
    first_seq: Option<u64>,
    rid_entries: Vec<(Hash32, u64)>,
}

/// The index's files: the runs of both indexes and the manifest that names them. Only a
/// flush's slow part ([`FlushWork::run`]) writes them; the pipeline lends them to a thread
/// of its own for the run (`crate::pipeline`).
#[derive(Default)]
pub struct IndexFiles {
    pub(crate) dedupe_runs: RunSet,
    pub(crate) rid_runs: RunSet,
    pub(crate) manifest_path: PathBuf,
    /// Entries of a full memtable: the unit of the compaction tiers.
    pub(crate) tier_base: u64,
}

/// A flush after its quick part ([`Recorder::begin_flush`], in the recorder's thread):
/// everything its slow part needs, taken at that moment.
pub struct FlushWork {
    dedupe: Arc<MemTable>,
    /// The receipt-id memtable's entries, sorted.
    receipt_ids: Vec<(Hash32, u64)>,
    pub(crate) covered_seq: u64,
    quarantine_durable: u64,
    /// The bus positions every receipt below `covered_seq` covers (durable by then).
    watermarks: Watermarks,
    /// The logs, fsynced first: the receipts below `covered_seq` are written, not yet
    /// durable, when the work is handed out.
    logs: LogSync,
}

/// fsyncs the gate's logs from another thread (descriptors of their own): the quarantine
/// log, then the receipt log, as [`Recorder::sync`] does.
pub struct LogSync {
    quarantine: QuarantineSync,
    receipts: ReceiptSync,
}

impl LogSync {
    /// Every record written to either log before the call survives a power loss (and
    /// the receipts below `next_seq` leave the page cache behind the drop-behind window).
    pub fn sync(&self, next_seq: u64) -> Result<()> {
        self.quarantine.sync()?;
        self.receipts.sync(next_seq)
    }
}

impl FlushWork {
    /// The slow part of a flush, both steps in turn: [`FlushWork::write_runs`], then
    /// [`Compaction::run`]. Returns the runs after the compaction.
    pub fn run(self, index: &mut IndexFiles) -> Result<FlushDone> {
        let (_, compaction) = self.write_runs(index)?;
        compaction.run(index)?;
        Ok(FlushDone {
            runs: index.dedupe_runs.runs().iter().map(Arc::clone).collect(),
        })
    }

    /// The first step of the slow part: fsync the logs (the receipts below `covered_seq`
    /// were written when the work was handed out), write a run of each memtable and
    /// publish the manifest covering receipts below `covered_seq`. The frozen memtable is
    /// released when this returns (the decider may reuse it), and the runs it answers
    /// with replace it for lookups. May run while the recorder goes on recording: it
    /// touches only the index's files (and fsyncs the logs through descriptors of its
    /// own), and its manifest is a snapshot taken when the receipts it covers were
    /// written. The compaction it returns may run later (the pipeline's flusher runs it
    /// after answering the decider, so the next freeze does not wait for a merge).
    pub fn write_runs(self, index: &mut IndexFiles) -> Result<(FlushDone, Compaction)> {
        if index.manifest_path.as_os_str().is_empty() {
            // The files were lent to a pipeline's flusher thread that panicked: never
            // write runs relative to the working directory.
            return Err(IngestError::PipelinePanicked);
        }
        self.logs.sync(self.covered_seq)?;
        index.dedupe_runs.add(self.dedupe.sorted())?;
        index.rid_runs.add(self.receipt_ids)?;
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            covered_seq: self.covered_seq,
            quarantine_durable: self.quarantine_durable,
            dedupe_runs: index.dedupe_runs.names(),
            receipt_id_runs: index.rid_runs.names(),
            watermarks: self.watermarks,
        };
        manifest.write(&index.manifest_path)?;
        let done = FlushDone {
            runs: index.dedupe_runs.runs().iter().map(Arc::clone).collect(),
        };
        Ok((done, Compaction { manifest }))
    }
}

/// The second step of a flush's slow part: merge runs in tiers, publish a manifest naming
/// the merged runs (the same coverage as the flush's), then delete the replaced files.
pub struct Compaction {
    manifest: Manifest,
}

impl Compaction {
    pub fn run(mut self, index: &mut IndexFiles) -> Result<()> {
        let mut obsolete = index.dedupe_runs.compact(index.tier_base)?;
        obsolete.extend(index.rid_runs.compact(index.tier_base)?);
        if obsolete.is_empty() {
            return Ok(());
        }
        self.manifest.dedupe_runs = index.dedupe_runs.names();
        self.manifest.receipt_id_runs = index.rid_runs.names();
        self.manifest.write(&index.manifest_path)?;
        remove_files(&obsolete)
    }
}

/// Write the quarantine record of row `i` of `b`; returns its position.
fn quarantine_record<T>(
    log: &mut QuarantineLog,
    b: &DecidedBatch<T>,
    i: usize,
    reason: ReasonCode,
    conflict: Option<EbPos>,
    payload_hash: &Hash32,
) -> Result<u64> {
    let meta = &b.env.rows[i];
    let body = json!({
        "event_id": meta.event_id.as_ref().map(hex32_string),
        "payload_hash": hex32_string(payload_hash),
        "event_type": b.output.id,
        "reason_codes": [reason.as_str()],
        "detail": b.env.detail(i),
        "source": {"file": &*b.origin.label, "row": b.origin.first_row + i as u64},
        "ts_utc": (meta.ts != crate::envelope::build::NO_TS).then(|| format_rfc3339_micros(meta.ts)),
        "conflicts_with": conflict.map(|eb| json!({"topic": b.output.topic, "partition": eb.partition, "offset": eb.offset})),
        "envelope": serde_json::from_slice::<serde_json::Value>(b.env.value(i))
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b.env.value(i)).into_owned())),
    });
    let bytes =
        serde_json::to_vec(&body).map_err(|e| IngestError::InvalidArgument(e.to_string()))?;
    log.append(&bytes)
}

fn surrogate_id(output_id: &str, label: &str, row: u64) -> String {
    format!("{output_id}/{label}#{row}")
}

impl Recorder {
    /// Record one decided batch (see the module doc).
    pub fn record<T>(&mut self, sink: &mut dyn Sink, b: &DecidedBatch<T>) -> Result<BatchCounts> {
        let mut counts = self.record_group(sink, &[b])?;
        Ok(counts.pop().unwrap_or_default())
    }

    /// Record consecutive decided batches together: one append (and fsync) per partition
    /// for all of them, one receipt write. Returns each batch's counts.
    pub fn record_group<T>(
        &mut self,
        sink: &mut dyn Sink,
        group: &[&DecidedBatch<T>],
    ) -> Result<Vec<BatchCounts>> {
        let counts = self.start_group(sink, group)?;
        self.settle()?;
        Ok(counts)
    }

    /// Record a group up to its receipts: start its bus appends, settle the group before it
    /// (its appends have had this group's encoding and writing to sync), then write this
    /// group's quarantine records and encode its receipts, which wait in
    /// [`Recorder::settle`] for its appends. The group's batches (and their envelopes) are
    /// no longer needed when this returns.
    pub fn start_group<T>(
        &mut self,
        sink: &mut dyn Sink,
        group: &[&DecidedBatch<T>],
    ) -> Result<Vec<BatchCounts>> {
        // 1. Append admitted events per topic and partition, in batch then row order.
        let mut by_partition: BTreeMap<(&'static str, u32), Vec<(usize, usize)>> = BTreeMap::new();
        for (k, b) in group.iter().enumerate() {
            for (i, d) in b.rows.iter().enumerate() {
                if *d == RowDecision::Admit {
                    by_partition
                        .entry((b.output.topic, b.env.rows[i].partition))
                        .or_default()
                        .push((k, i));
                }
            }
        }
        let mut offsets: Vec<Vec<u64>> =
            group.iter().map(|b| vec![u64::MAX; b.rows.len()]).collect();
        let mut topics: Vec<&'static str> = by_partition.keys().map(|k| k.0).collect();
        topics.dedup();
        let mut appends = Vec::with_capacity(topics.len());
        for topic in topics {
            let parts: Vec<_> = by_partition.iter().filter(|(k, _)| k.0 == topic).collect();
            let records: Vec<Vec<SinkRecord<'_>>> = parts
                .iter()
                .map(|(_, rows)| {
                    rows.iter()
                        .map(|&(k, i)| SinkRecord {
                            ts_micros: group[k].env.rows[i].ts,
                            key: group[k].env.key(i),
                            value: group[k].env.value(i),
                        })
                        .collect()
                })
                .collect();
            let groups: Vec<(u32, &[SinkRecord<'_>])> = parts
                .iter()
                .zip(&records)
                .map(|((key, _), r)| (key.1, r.as_slice()))
                .collect();
            let pending = sink
                .start_many(topic, &groups)
                .map_err(|e| IngestError::sink(topic, e))?;
            for ((key, rows), &first) in parts.iter().zip(&pending.firsts) {
                for (j, &(k, i)) in rows.iter().enumerate() {
                    offsets[k][i] = first + j as u64;
                }
                let wm = self.watermarks.entry(topic.to_string()).or_default();
                wm.insert(key.1, first + rows.len() as u64);
            }
            appends.push((topic, pending));
        }
        // The group before is durable on the bus by now, or nearly: write its receipts
        // before this group reads any (a duplicate may point into it).
        self.settle()?;
        // 2. Payload comparisons: each SEEN row's original, its bus position and, when it
        // is in this group, its hash (the others' are read from the bus below).
        let in_group = |seq: u64| {
            group.iter().enumerate().find_map(|(k, b)| {
                let i = usize::try_from(seq.checked_sub(b.first_seq)?).ok()?;
                (i < b.rows.len()).then_some((k, i))
            })
        };
        let mut origs: HashMap<(usize, usize), (EbPos, Option<Hash32>)> = HashMap::new();
        let mut on_bus: BTreeMap<(&'static str, u32), Vec<u64>> = BTreeMap::new();
        for (k, b) in group.iter().enumerate() {
            for (i, d) in b.rows.iter().enumerate() {
                let RowDecision::Seen(orig) = *d else {
                    continue;
                };
                let (eb, hash) = match orig {
                    OrigRef::Known(eb) => (Some(eb), None),
                    OrigRef::Pending(seq) => match in_group(seq) {
                        Some((ok, oi)) => {
                            let o = offsets[ok][oi];
                            let eb = (o != u64::MAX).then(|| EbPos {
                                partition: group[ok].env.rows[oi].partition,
                                offset: o,
                            });
                            (eb, Some(group[ok].env.payload_hash(oi)))
                        }
                        // An earlier group's: settled above, so its receipt is written.
                        None => (self.reader.read(seq)?.eb, None),
                    },
                };
                let eb = eb.ok_or_else(|| {
                    IngestError::corrupt(
                        self.reader.path(),
                        0,
                        format!("the original of {orig:?} has no bus position"),
                    )
                })?;
                if hash.is_none() {
                    on_bus
                        .entry((b.output.topic, eb.partition))
                        .or_default()
                        .push(eb.offset);
                }
                origs.insert((k, i), (eb, hash));
            }
        }
        let mut bus_hashes: HashMap<(&'static str, u32), HashMap<u64, Hash32>> = HashMap::new();
        for ((topic, partition), offsets) in on_bus {
            let found = payload_hashes(sink, topic, partition, &offsets)?;
            bus_hashes.insert((topic, partition), found);
        }
        // 3 and 4. Quarantine records, then every receipt in order.
        let total: usize = group.iter().map(|b| b.rows.len()).sum();
        let mut encoded = Vec::with_capacity(total * crate::receipts::RECORD);
        let mut rid_entries = Vec::new();
        let mut all_counts = Vec::with_capacity(group.len());
        for (k, b) in group.iter().enumerate() {
            let mut counts = BatchCounts {
                events: b.rows.len() as u64,
                ..Default::default()
            };
            for (i, d) in b.rows.iter().enumerate() {
                let meta = &b.env.rows[i];
                let seq = b.first_seq + i as u64;
                let ts = (meta.ts != crate::envelope::build::NO_TS).then_some(meta.ts);
                let mut rec = ReceiptRecord {
                    decision: Decision::Admit,
                    reasons: 0,
                    ctx: b.ctx_ids.get(meta.pin_set as usize).copied().unwrap_or(0),
                    ts,
                    event_id: meta.event_id,
                    // ADMIT receipt ids are derived from the event id when rendered.
                    receipt_id: [0; 16],
                    eb: None,
                    quarantine: None,
                };
                let quarantine = match d {
                    RowDecision::Admit => {
                        counts.admitted += 1;
                        rec.eb = Some(EbPos {
                            partition: meta.partition,
                            offset: offsets[k][i],
                        });
                        None
                    }
                    RowDecision::Seen(_) => {
                        let own = b.env.payload_hash(i);
                        let (eb, in_group) = origs[&(k, i)];
                        let orig_hash = match in_group {
                            Some(h) => h,
                            None => bus_hashes[&(b.output.topic, eb.partition)][&eb.offset],
                        };
                        if own == orig_hash {
                            counts.duplicates += 1;
                            rec.decision = Decision::Duplicate;
                            rec.eb = Some(eb);
                            None
                        } else {
                            Some((ReasonCode::PayloadHashMismatch, Some(eb), own))
                        }
                    }
                    RowDecision::Quarantine(reason) => Some((*reason, None, b.env.payload_hash(i))),
                };
                if let Some((reason, conflict, hash)) = quarantine {
                    counts.quarantined += 1;
                    counts.by_reason[reason as usize] += 1;
                    rec.decision = Decision::Quarantine;
                    rec.reasons = reason.bit();
                    rec.quarantine = Some(quarantine_record(
                        &mut self.quarantine,
                        b,
                        i,
                        reason,
                        conflict,
                        &hash,
                    )?);
                }
                if rec.decision != Decision::Admit {
                    let id_text = match &meta.event_id {
                        Some(id) => hex32_string(id),
                        None => surrogate_id(
                            b.output.id,
                            &b.origin.label,
                            b.origin.first_row + i as u64,
                        ),
                    };
                    rec.receipt_id = receipt_id_bytes(rec.decision, &id_text);
                    rid_entries.push((receipt_id_key(&rec.receipt_id), seq));
                }
                rec.encode(&mut encoded);
            }
            all_counts.push(counts);
        }
        self.unsettled = Some(Unsettled {
            appends,
            receipts: encoded,
            first_seq: group.first().map(|b| b.first_seq),
            rid_entries,
        });
        Ok(all_counts)
    }

    /// Wait until the last started group's bus appends are durable, then write its
    /// receipts. Nothing to do if every group is settled.
    pub fn settle(&mut self) -> Result<()> {
        let Some(u) = self.unsettled.take() else {
            return Ok(());
        };
        for (topic, pending) in u.appends {
            pending.wait().map_err(|e| IngestError::sink(topic, e))?;
        }
        if let Some(expected) = u.first_seq {
            let first = self.receipts.append(&u.receipts)?;
            if first != expected {
                return Err(IngestError::corrupt(
                    self.index.manifest_path.clone(),
                    0,
                    format!("receipt seq {first} written where {expected} was decided"),
                ));
            }
        }
        for (k, seq) in u.rid_entries {
            self.rid_mem.insert(k, MemEntry { seq });
        }
        Ok(())
    }

    /// fsync the quarantine and receipt logs (before a checkpoint names their events).
    pub fn sync(&mut self) -> Result<()> {
        self.settle()?;
        self.quarantine.sync()?;
        self.receipts.sync()
    }

    /// Write the memtables as runs, compact, and publish the manifest covering receipts
    /// below `job.covered_seq` (both parts of a flush, in this thread).
    pub fn flush(&mut self, job: FlushJob) -> Result<FlushDone> {
        let work = self.begin_flush(job)?;
        let covered = work.covered_seq;
        let done = work.run(&mut self.index)?;
        self.flushed(covered, 1);
        Ok(done)
    }

    /// The quick part of a flush: write every receipt so far (the slow part fsyncs the logs
    /// before anything else: runs must never name receipts a power loss could take back)
    /// and take the receipt-id memtable's entries.
    pub fn begin_flush(&mut self, job: FlushJob) -> Result<FlushWork> {
        self.settle()?;
        let receipt_ids = self.rid_mem.sorted();
        self.rid_mem.clear();
        Ok(FlushWork {
            dedupe: job.dedupe,
            receipt_ids,
            covered_seq: job.covered_seq,
            quarantine_durable: self.quarantine.end(),
            watermarks: self.watermarks.clone(),
            logs: self.log_sync()?,
        })
    }

    /// A handle that fsyncs the logs from another thread.
    pub fn log_sync(&self) -> Result<LogSync> {
        Ok(LogSync {
            quarantine: self.quarantine.sync_handle()?,
            receipts: self.receipts.sync_handle()?,
        })
    }

    /// The seq the next receipt gets (every receipt below it is written once settled).
    pub fn next_receipt_seq(&self) -> u64 {
        self.receipts.next_seq()
    }

    /// `flushes` flushes finished, the last covering receipts below `covered_seq`.
    pub(crate) fn flushed(&mut self, covered_seq: u64, flushes: u64) {
        self.covered_seq = covered_seq;
        self.flushes += flushes;
    }

    /// Where the quarantine log is (for lookups).
    pub fn quarantine_path(&self) -> &PathBuf {
        &self.quarantine_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_into_index_files_lost_with_a_panicked_thread_writes_nothing() {
        let mut dedupe = MemTable::with_capacity(16);
        dedupe.insert([7; 32], MemEntry { seq: 0 });
        let d = tempfile::tempdir().unwrap();
        let (receipts, _) = ReceiptLog::open(&d.path().join("receipts.log"), 0).unwrap();
        let quarantine = QuarantineLog::open(&d.path().join("quarantine.log"), 0).unwrap();
        let work = FlushWork {
            dedupe: Arc::new(dedupe),
            receipt_ids: Vec::new(),
            covered_seq: 1,
            quarantine_durable: 0,
            watermarks: Watermarks::default(),
            logs: LogSync {
                quarantine: quarantine.sync_handle().unwrap(),
                receipts: receipts.sync_handle().unwrap(),
            },
        };
        let mut lost = IndexFiles::default();
        let err = work.run(&mut lost).err().expect("refused");
        assert!(matches!(err, IngestError::PipelinePanicked), "{err:?}");
        assert!(lost.dedupe_runs.runs().is_empty());
    }
}
