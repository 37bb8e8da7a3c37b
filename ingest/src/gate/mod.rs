//! The gate's state under `<run_root>/ig/` and its life cycle.
//!
//! ```text
//! ig/
//!   LOCK                    flock'ed by the one writer (a second gets IG_LOCKED)
//!   gate.json               whose run this is (platform_run_id)
//!   start.json              shared bus (Kafka) only: where this run begins per partition
//!   contexts.jsonl          event type + class + topic + seven pins, one line per context
//!   receipts.log            every receipt, 128 bytes each (also the indexes' write-ahead log)
//!   quarantine.log          quarantined events with reasons and envelopes
//!   index/MANIFEST.json     commit point: runs, covered receipt seq, bus watermarks
//!   index/dedupe/run-*.six  dedupe key -> ADMIT receipt seq
//!   index/receipt_ids/…     receipt id -> seq of DUPLICATE / QUARANTINE receipts
//! ```
//!
//! Opening (the writer), in order:
//!
//! 1. lock; a new gate state on a bus that outlives the run records its start offsets
//!    ([`start`], before `gate.json`); check `gate.json`; read the manifest;
//! 2. recover the logs (torn tails cut, interior damage refused), load contexts and runs
//!    (run files the manifest does not name are deleted), rebuild the filter from the runs;
//! 3. replay the receipt log after `covered_seq` into the memtables and watermarks;
//! 4. reconcile with the sink ([`reconcile`]): bus records past the watermarks (or, for a
//!    partition without receipts, past the run's start offset) get the receipts a crash lost;
//! 5. flush if the memtables are full.
//!
//! Then batches go through [`decide::Decider`] and [`record::Recorder`], either in one thread
//! ([`Gate::ingest`]) or pipelined on two (`crate::pipeline`). [`Gate::close`] flushes, so
//! that lookups need no log scan.

pub mod decide;
pub mod manifest;
pub mod reconcile;
pub mod record;
pub mod start;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use sluice_storage::outputs::OutputSpec;

use crate::envelope::RunContext;
use crate::error::{IngestError, Result};
use crate::ids::{class_mask, index_key};
use crate::index::filter::{BlockedBloom, BITS_PER_KEY};
use crate::index::memtable::{MemEntry, MemTable, ENTRY_BYTES};
use crate::index::RunSet;
use crate::quarantine::QuarantineLog;
use crate::reason::Decision;
use crate::receipts::{Contexts, ReceiptLog, ReceiptReader};
use crate::sink::Sink;
use decide::Decider;
use manifest::{Identity, Manifest};
use reconcile::ReconcileReport;
use record::{receipt_id_key, BatchCounts, IndexFiles, Recorder};
use start::StartOffsets;

/// Where a batch came from (for quarantine records): a file label and the row index of the
/// batch's first row in it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub label: Arc<str>,
    pub first_row: u64,
}

/// Settings of a gate.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Partitions of topics the gate creates (existing topics keep theirs).
    pub partitions: u32,
    /// Memory for the dedupe index: filter plus memtables (`--dedupe-memory`).
    pub dedupe_memory: u64,
    /// Events this session expects to add (sizes the filter).
    pub expected_events: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            partitions: 4,
            dedupe_memory: 256 << 20,
            expected_events: 0,
        }
    }
}

/// How the memory budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryPlan {
    pub filter_bytes: u64,
    /// The dedupe memtable (a frozen one of the same size may exist during a flush).
    pub memtable_bytes: u64,
    /// The receipt-id memtable.
    pub receipt_id_bytes: u64,
}

impl MemoryPlan {
    /// Filter: 16 bits per expected key, at most a quarter of the budget. Of the rest, 40%
    /// for the dedupe memtable, 40% for its frozen twin during a flush, 10% for receipt ids;
    /// a memtable is never larger than the expected keys need (small replays stay small).
    pub fn new(budget: u64, expected_keys: u64) -> MemoryPlan {
        let filter_bytes = (expected_keys * BITS_PER_KEY / 8)
            .min(budget / 4)
            .max(64 << 10);
        let rest = budget.saturating_sub(filter_bytes);
        let need = |keys: u64| (keys.max(1 << 14) * ENTRY_BYTES).next_power_of_two();
        MemoryPlan {
            filter_bytes,
            memtable_bytes: (rest * 4 / 10).min(need(expected_keys)).max(64 << 10),
            receipt_id_bytes: (rest / 10).min(need(expected_keys / 4)).max(64 << 10),
        }
    }
}

/// What opening found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OpenReport {
    pub receipts: u64,
    pub receipts_cut: u64,
    pub replayed_from_log: u64,
    pub reconcile: ReconcileReport,
}

/// An open gate (the writer).
pub struct Gate {
    dir: PathBuf,
    _lock: File,
    pub(crate) decider: Decider,
    pub(crate) recorder: Recorder,
    plan: MemoryPlan,
    open_report: OpenReport,
    start: StartOffsets,
}

/// Counters for summaries and docs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GateStats {
    pub receipts: u64,
    pub dedupe_runs: usize,
    pub dedupe_run_entries: u64,
    pub memtable_entries: usize,
    pub filter_bytes: u64,
    pub fence_bytes: u64,
    pub filter_positives: u64,
    pub flushes: u64,
    pub memory: MemoryPlan,
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| IngestError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(IngestError::Locked { lock: path }),
        Err(std::fs::TryLockError::Error(e)) => Err(IngestError::io(&path, e)),
    }
}

impl Gate {
    /// Open (or create) the gate state in `dir` for `run` (see the module doc).
    pub fn open(
        dir: &Path,
        cfg: &GateConfig,
        run: RunContext,
        sink: &mut dyn Sink,
    ) -> Result<Gate> {
        if run.platform_run_id.is_empty()
            || run.run_id.is_empty()
            || run.scenario_run_id.is_empty()
            || run.producer.is_empty()
        {
            return Err(IngestError::InvalidArgument(
                "platform_run_id, run_id, scenario_run_id and producer must not be empty".into(),
            ));
        }
        fs::create_dir_all(dir.join("index")).map_err(|e| IngestError::io(dir, e))?;
        let lock = lock(dir)?;
        // 1. Start offsets go down before gate.json: a crash in between starts over.
        let start = if !dir.join("gate.json").exists() && sink.outlives_run() {
            StartOffsets::create(dir, sink, &run.platform_run_id)?
        } else {
            StartOffsets::read(dir)?
        };
        Identity::check_or_create(dir, Some(&run.platform_run_id), true)?;
        let manifest_path = dir.join("index").join("MANIFEST.json");
        let manifest = Manifest::read(&manifest_path)?;
        let receipts_path = dir.join("receipts.log");
        let (receipts, recovery) = ReceiptLog::open(&receipts_path, manifest.covered_seq)?;
        let quarantine_path = dir.join("quarantine.log");
        let quarantine = QuarantineLog::open(&quarantine_path, manifest.quarantine_durable)?;
        let contexts = Contexts::open(&dir.join("contexts.jsonl"), true)?;
        let dedupe_runs = RunSet::open(&dir.join("index/dedupe"), &manifest.dedupe_runs, true)?;
        let rid_runs = RunSet::open(
            &dir.join("index/receipt_ids"),
            &manifest.receipt_id_runs,
            true,
        )?;

        let existing = dedupe_runs.entries();
        let plan = MemoryPlan::new(cfg.dedupe_memory, existing + cfg.expected_events);
        let mut filter = BlockedBloom::with_bytes(plan.filter_bytes);
        for r in dedupe_runs.runs() {
            let mut scan = r.scan()?;
            while let Some((k, _)) = scan.next_entry()? {
                filter.insert(&k);
            }
        }
        let next_seq = receipts.next_seq();
        let mut decider = Decider::new(
            contexts,
            MemTable::with_budget(plan.memtable_bytes),
            filter,
            dedupe_runs.runs().to_vec(),
            ReceiptReader::open(&receipts_path)?,
            next_seq,
            run,
        );
        let rid_mem = MemTable::with_budget(plan.receipt_id_bytes);
        decider.rid_cap = rid_mem.capacity() as u64;
        let mut recorder = Recorder {
            receipts,
            reader: ReceiptReader::open(&receipts_path)?,
            quarantine,
            quarantine_path,
            rid_mem,
            index: IndexFiles {
                dedupe_runs,
                rid_runs,
                manifest_path,
                tier_base: decider.memtable.capacity() as u64,
            },
            watermarks: manifest.watermarks.clone(),
            covered_seq: manifest.covered_seq,
            unsettled: None,
            flushes: 0,
        };

        // 3. The receipt log's tail -> memtables and watermarks.
        let mut replayed = 0;
        {
            let (contexts, reader) = (&decider.contexts, &decider.reader);
            let mut admits = Vec::new();
            reader.scan(manifest.covered_seq, next_seq, |seq, rec| {
                replayed += 1;
                let ctx = contexts.get(rec.ctx);
                if rec.decision == Decision::Admit {
                    let (Some(ctx), Some(id), Some(eb)) = (ctx, rec.event_id.as_ref(), rec.eb)
                    else {
                        return Err(IngestError::corrupt(
                            &receipts_path,
                            seq,
                            "ADMIT receipt without context, event id or bus position",
                        ));
                    };
                    let (Some(class), Some(topic), Some(_)) = (
                        ctx.event_class.as_deref(),
                        ctx.topic.as_deref(),
                        ctx.platform_run_id(),
                    ) else {
                        return Err(IngestError::corrupt(
                            &receipts_path,
                            seq,
                            "ADMIT receipt of an unknown event type",
                        ));
                    };
                    admits.push((index_key(&class_mask(class), id), seq));
                    let wm = recorder.watermarks.entry(topic.to_string()).or_default();
                    let e = wm.entry(eb.partition).or_insert(0);
                    *e = (*e).max(eb.offset + 1);
                } else {
                    recorder
                        .rid_mem
                        .insert(receipt_id_key(&rec.receipt_id), MemEntry { seq });
                }
                Ok(())
            })?;
            for (k, seq) in admits {
                decider.remember(k, seq);
            }
        }
        // 4. The bus -> receipts lost in a crash.
        let reconcile = reconcile::reconcile(&mut decider, &mut recorder, &start, sink)?;
        let mut gate = Gate {
            dir: dir.to_path_buf(),
            _lock: lock,
            decider,
            recorder,
            plan,
            open_report: OpenReport {
                receipts: next_seq,
                receipts_cut: recovery.records_cut,
                replayed_from_log: replayed,
                reconcile,
            },
            start,
        };
        // 5. Start with room in the memtables.
        if gate.decider.needs_flush() {
            gate.flush()?;
        }
        Ok(gate)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Where this run begins on the bus (all zero without `start.json`).
    pub fn start_offsets(&self) -> &StartOffsets {
        &self.start
    }

    pub fn run_context(&self) -> &RunContext {
        &self.decider.run
    }

    /// Create (or find) the topics of `outputs` on the sink; returns (topic, partitions).
    pub fn prepare_topics(
        &mut self,
        sink: &mut dyn Sink,
        outputs: &[&'static OutputSpec],
        partitions: u32,
    ) -> Result<Vec<(&'static str, u32)>> {
        let mut out = Vec::new();
        for o in outputs {
            let n = sink
                .ensure_topic(o.topic, partitions)
                .map_err(|e| IngestError::sink(o.topic, e))?;
            // Before the first append to a partition, this run's start there is known.
            self.start.cover(sink, o.topic, n)?;
            self.decider.envelopes.partitions.insert(o.topic, n);
            out.push((o.topic, n));
        }
        Ok(out)
    }

    /// Decide and record one batch in this thread.
    pub fn ingest(
        &mut self,
        sink: &mut dyn Sink,
        output: &'static OutputSpec,
        batch: &RecordBatch,
        origin: Origin,
    ) -> Result<BatchCounts> {
        if !self.decider.envelopes.prepared(output.topic) {
            let p = sink
                .partitions(output.topic)
                .map_err(|e| IngestError::sink(output.topic, e))?;
            let n = match p {
                Some(n) => n,
                None => {
                    return Err(IngestError::InvalidArgument(format!(
                        "topic {} is not prepared (call prepare_topics)",
                        output.topic
                    )))
                }
            };
            self.start.cover(sink, output.topic, n)?;
            self.decider.envelopes.partitions.insert(output.topic, n);
        }
        let decided = self.decider.decide(output, batch, origin, ())?;
        let counts = self.recorder.record(sink, &decided)?;
        if self.decider.needs_flush() {
            self.flush()?;
        }
        Ok(counts)
    }

    /// Write the memtables as runs and publish the manifest.
    pub fn flush(&mut self) -> Result<()> {
        let job = self.decider.freeze();
        let done = self.recorder.flush(job)?;
        self.decider.flushed(done);
        Ok(())
    }

    /// fsync the receipt and quarantine logs.
    pub fn sync(&mut self) -> Result<()> {
        self.recorder.sync()
    }

    /// Flush and release the lock.
    pub fn close(mut self) -> Result<GateStats> {
        if self.recorder.covered_seq < self.decider.next_seq {
            self.flush()?;
        }
        Ok(self.stats())
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            receipts: self.decider.next_seq,
            dedupe_runs: self.decider.runs.len(),
            dedupe_run_entries: self.decider.runs.iter().map(|r| r.len()).sum(),
            memtable_entries: self.decider.memtable.len(),
            filter_bytes: self.decider.filter.bytes(),
            fence_bytes: self.decider.runs.iter().map(|r| r.fence_bytes()).sum(),
            filter_positives: self.decider.filter_positives,
            flushes: self.recorder.flushes,
            memory: self.plan,
        }
    }
}
