//! The deciding half of the gate (stage A of the pipeline): envelopes in, a decision per
//! event out. It owns the dedupe memtable and filter and reads the runs; it never writes
//! the receipt log or the bus (that is [`super::record::Recorder`]).
//!
//! Per event, after the envelope checks ([`crate::envelope::build`]):
//!
//! ```text
//!   failed a check ───────────────────────────────> QUARANTINE (its reason)
//!   index key unknown ────────────────────────────> ADMIT (memtable += key -> seq)
//!   known ────────────────────────────────────────> SEEN -> the original
//!                                 (recorder) same payload hash:  DUPLICATE -> its bus position
//!                                            other payload hash: QUARANTINE PAYLOAD_HASH_MISMATCH
//! ```
//!
//! Neither side of a payload comparison is at hand here, and neither is needed for a new
//! key: the envelope builder does not compute payload hashes, and the index keeps none.
//! The recorder compares them ([`super::record`]): the event's own, computed from its
//! envelope, and the original's, computed from its envelope when it is in the same group,
//! else from its record on the bus (durable by then). An original decided moments ago
//! may not have its bus position yet (its batch is still being appended): the decision
//! then names the original's receipt seq ([`OrigRef::Pending`]) and the recorder
//! resolves it, after the original is written.
//!
//! Lookup order: the filter holds every key of the memtables and the runs, so a new key
//! (the common case) costs one filter line and one memtable insert; both are prefetched
//! [`PREFETCH_AHEAD`] rows ahead, which hides their memory latency.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use sluice_storage::outputs::OutputSpec;

use super::Origin;
use crate::envelope::build::{EnvelopeBatch, EnvelopeBuilder};
use crate::envelope::{RowPins, RunContext};
use crate::error::Result;
use crate::ids::Hash32;
use crate::index::filter::BlockedBloom;
use crate::index::get_in;
use crate::index::memtable::{MemEntry, MemTable};
use crate::index::run::SortedRun;
use crate::reason::ReasonCode;
use crate::receipts::context::pins_map;
use crate::receipts::{Contexts, EbPos, ReceiptReader};

/// Where the original of a duplicate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrigRef {
    Known(EbPos),
    /// Its ADMIT receipt has this seq but may not be written yet.
    Pending(u64),
}

/// The decision for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowDecision {
    Admit,
    /// The dedupe key is known: DUPLICATE or QUARANTINE `PAYLOAD_HASH_MISMATCH`, as the
    /// recorder finds the payload hashes.
    Seen(OrigRef),
    /// A failed check.
    Quarantine(ReasonCode),
}

/// A batch with its decisions, on its way to the recorder.
pub struct DecidedBatch<T> {
    pub tag: T,
    pub output: &'static OutputSpec,
    pub env: EnvelopeBatch,
    /// Receipt seq of row 0; row `i` gets `first_seq + i`.
    pub first_seq: u64,
    /// Context id of each of `env.pin_sets`.
    pub ctx_ids: Vec<u32>,
    pub rows: Vec<RowDecision>,
    pub origin: Origin,
}

/// A frozen memtable to be written as a run, covering receipts below `covered_seq`.
pub struct FlushJob {
    pub dedupe: Arc<MemTable>,
    pub covered_seq: u64,
}

/// The runs after a flush (oldest first).
pub struct FlushDone {
    pub runs: Vec<Arc<SortedRun>>,
}

/// Recycled envelope batches kept at most (each holds one batch's envelopes, ~1 MiB for
/// 1024 traffic rows). Enough for the batches of a group coming back at once: with 4
/// kept, most buffers were freed and allocated anew, each new one a fresh mapping whose
/// pages fault in as the envelopes are written (3M events: 4.09-4.33 s and 1.03-1.16 s of
/// system time with 4, 4.09-4.11 s and 0.83-0.92 s with 48; peak RSS +15 MiB).
const MAX_SPARE_ENVS: usize = 48;
/// Spare envelope batches kept when each holds at most [`SMALL_ENV_BYTES`] (16 MiB at
/// most, a few MiB in practice): a `--merge` group brings back hundreds of one- or two-row
/// batches at once, and with 64 kept the rest were freed and rebuilt from nothing (1M-row
/// set, six pairs: median 10.32 s with 64, 9.93 s with 1024).
const MAX_SMALL_SPARE_ENVS: usize = 1024;
const SMALL_ENV_BYTES: usize = 16 << 10;

/// Context ids the decider remembers per output (a run has a handful: one per pin set).
const MAX_CACHED_CONTEXTS: usize = 64;

/// Rows between a prefetch and the lookup that uses it.
pub const PREFETCH_AHEAD: usize = 16;

/// Stage A state.
pub struct Decider {
    pub(crate) contexts: Contexts,
    pub(crate) memtable: MemTable,
    pub(crate) frozen: Option<Arc<MemTable>>,
    /// A flushed memtable kept for reuse (cleared, memory warm).
    spare: Option<MemTable>,
    pub(crate) filter: BlockedBloom,
    pub(crate) runs: Vec<Arc<SortedRun>>,
    pub(crate) reader: ReceiptReader,
    pub(crate) next_seq: u64,
    pub(crate) run: RunContext,
    /// Builds the envelopes (the stateless half of deciding; the pipeline runs it on a
    /// thread of its own, see `crate::pipeline`).
    pub(crate) envelopes: Envelopes,
    /// Context ids already resolved, by event type and pins: a batch's pin set is almost
    /// always one seen before, and `Contexts::id_for` builds a JSON map to find it.
    ctx_ids: HashMap<&'static str, Vec<(RowPins, u32)>>,
    /// Receipts since the last freeze that the recorder indexes by receipt id (every
    /// non-ADMIT): they fill its memtable, so they count towards the next flush too.
    pub(crate) rid_pending: u64,
    pub(crate) rid_cap: u64,
    /// Counters for the summary.
    pub(crate) filter_positives: u64,
    pub(crate) run_probes: u64,
}

/// Builds envelope batches: per output an [`EnvelopeBuilder`] (event ids, index keys,
/// partitions, checks), into recycled buffers. Pure per batch: it reads no
/// index, so it may run ahead of the decider on another thread.
pub struct Envelopes {
    run: RunContext,
    /// Partitions of each prepared topic (`Gate::prepare_topics`).
    pub(crate) partitions: HashMap<&'static str, u32>,
    builders: HashMap<&'static str, EnvelopeBuilder>,
    /// Envelope batches the recorder is done with, reused for their memory.
    spare: Vec<EnvelopeBatch>,
}

impl Envelopes {
    pub(crate) fn new(run: RunContext) -> Self {
        Envelopes {
            run,
            partitions: HashMap::new(),
            builders: HashMap::new(),
            spare: Vec::new(),
        }
    }

    /// Whether `topic` was prepared.
    pub fn prepared(&self, topic: &str) -> bool {
        self.partitions.contains_key(topic)
    }

    /// The envelopes of `batch` of `output`.
    pub fn build(
        &mut self,
        output: &'static OutputSpec,
        batch: &RecordBatch,
    ) -> Result<EnvelopeBatch> {
        let partitions = self.partitions.get(output.topic).copied().unwrap_or(1);
        let run = &self.run;
        let builder = self
            .builders
            .entry(output.id)
            .or_insert_with(|| EnvelopeBuilder::new(output, run, partitions));
        builder.build_into(batch, self.spare.pop().unwrap_or_default())
    }

    /// Keep a recorded batch's envelope buffers for a later batch (a few at most).
    pub fn recycle(&mut self, env: EnvelopeBatch) {
        // A few of any size; more if small (`--merge` slices of a row or two each take
        // one, and building into a fresh one costs a dozen allocations).
        let keep = self.spare.len() < MAX_SPARE_ENVS
            || (self.spare.len() < MAX_SMALL_SPARE_ENVS && env.retained_bytes() <= SMALL_ENV_BYTES);
        if keep {
            self.spare.push(env);
        }
    }
}

impl Decider {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        contexts: Contexts,
        memtable: MemTable,
        filter: BlockedBloom,
        runs: Vec<Arc<SortedRun>>,
        reader: ReceiptReader,
        next_seq: u64,
        run: RunContext,
    ) -> Self {
        Decider {
            contexts,
            memtable,
            frozen: None,
            spare: None,
            filter,
            runs,
            reader,
            next_seq,
            envelopes: Envelopes::new(run.clone()),
            run,
            ctx_ids: HashMap::new(),
            rid_pending: 0,
            rid_cap: u64::MAX,
            filter_positives: 0,
            run_probes: 0,
        }
    }

    /// Where the original of `key` is, if the key is known (see the module doc for the
    /// order).
    pub(crate) fn lookup(&mut self, key: &Hash32) -> Result<Option<OrigRef>> {
        if !self.filter.may_contain(key) {
            return Ok(None);
        }
        self.filter_positives += 1;
        let mem = |m: &MemTable| m.get(key).map(|e| OrigRef::Pending(e.seq));
        if let Some(k) = mem(&self.memtable) {
            return Ok(Some(k));
        }
        if let Some(k) = self.frozen.as_deref().and_then(mem) {
            return Ok(Some(k));
        }
        self.run_probes += 1;
        let Some(seq) = get_in(&self.runs, key)? else {
            return Ok(None);
        };
        let rec = self.reader.read(seq)?;
        Ok(Some(match rec.eb {
            Some(eb) => OrigRef::Known(eb),
            None => OrigRef::Pending(seq),
        }))
    }

    /// Insert an admitted key (memtable and filter).
    pub(crate) fn remember(&mut self, key: Hash32, seq: u64) {
        self.filter.insert(&key);
        self.memtable.insert(key, MemEntry { seq });
    }

    /// Build envelopes for `batch` of `output` and decide every row.
    pub fn decide<T>(
        &mut self,
        output: &'static OutputSpec,
        batch: &RecordBatch,
        origin: Origin,
        tag: T,
    ) -> Result<DecidedBatch<T>> {
        let env = self.envelopes.build(output, batch)?;
        self.decide_built(output, env, origin, tag)
    }

    /// Decide every row of envelopes built by [`Envelopes::build`] (with this decider's
    /// run context and partitions).
    pub fn decide_built<T>(
        &mut self,
        output: &'static OutputSpec,
        env: EnvelopeBatch,
        origin: Origin,
        tag: T,
    ) -> Result<DecidedBatch<T>> {
        let mut ctx_ids = Vec::with_capacity(env.pin_sets.len());
        for ps in &env.pin_sets {
            let known = self.ctx_ids.entry(output.id).or_default();
            let id = match known.iter().find(|(p, _)| p == ps) {
                Some(&(_, id)) => id,
                None => {
                    let id = self.contexts.id_for(output.id, pins_map(&self.run, ps))?;
                    if known.len() < MAX_CACHED_CONTEXTS {
                        known.push((ps.clone(), id));
                    }
                    id
                }
            };
            ctx_ids.push(id);
        }
        let first_seq = self.next_seq;
        self.next_seq += env.len() as u64;
        let mut rows = Vec::with_capacity(env.len());
        for (i, row) in env.rows.iter().enumerate() {
            if let Some(ahead) = env.rows.get(i + PREFETCH_AHEAD) {
                self.filter.prefetch(&ahead.index_key);
                self.memtable.prefetch(&ahead.index_key);
            }
            if let Some(reason) = row.reason {
                rows.push(RowDecision::Quarantine(reason));
                continue;
            }
            let d = match self.lookup(&row.index_key)? {
                None => {
                    self.remember(row.index_key, first_seq + i as u64);
                    RowDecision::Admit
                }
                Some(orig) => RowDecision::Seen(orig),
            };
            rows.push(d);
        }
        self.rid_pending += rows.iter().filter(|d| **d != RowDecision::Admit).count() as u64;
        Ok(DecidedBatch {
            tag,
            output,
            env,
            first_seq,
            ctx_ids,
            rows,
            origin,
        })
    }

    /// Whether the memtable should be frozen and flushed.
    pub fn needs_flush(&self) -> bool {
        self.memtable.is_full() || self.rid_pending >= self.rid_cap
    }

    /// Freeze the memtable and hand out the flush job (its keys are in the filter already).
    pub fn freeze(&mut self) -> FlushJob {
        let next = match self.spare.take() {
            Some(t) => t,
            None => MemTable::with_capacity(self.memtable.capacity()),
        };
        let old = std::mem::replace(&mut self.memtable, next);
        let frozen = Arc::new(old);
        self.frozen = Some(frozen.clone());
        self.rid_pending = 0;
        FlushJob {
            dedupe: frozen,
            covered_seq: self.next_seq,
        }
    }

    /// A flush finished: its runs replace the frozen memtable.
    pub fn flushed(&mut self, done: FlushDone) {
        self.runs = done.runs;
        // The recorder has dropped its handle: reuse the table's memory.
        if let Some(Ok(mut t)) = self.frozen.take().map(Arc::try_unwrap) {
            t.clear();
            self.spare = Some(t);
        }
    }

    /// Whether a frozen memtable is waiting for its flush.
    pub fn flush_in_flight(&self) -> bool {
        self.frozen.is_some()
    }
}
