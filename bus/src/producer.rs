//! The producer: routes records to partitions and appends them under the bus's durability
//! policy.
//!
//! ```text
//!  append_batch(p, records)                      send(records)
//!    encode (caller's thread, no lock,             route each record: explicit? key hash?
//!      thread-local encoder & buffers)             round-robin -> group by partition
//!    partition p: write (lock, pwrite)             write every group, then wait for all
//!    wait for the policy (group commit)            -> (partition, offset) per record
//!    -> offsets base..base+n
//! ```
//!
//! Routing by key: `fnv1a64(key) % partitions` (64-bit FNV-1a, documented in
//! `docs/format.md`), so the same key always lands in the same partition.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crate::bus::Bus;
use crate::error::{BusError, Result};
use crate::format::meta::TopicMeta;
use crate::format::record::{BatchEncoder, EncodedBatches};
use crate::format::{Compression, Record};
use crate::partition::{PartitionWriter, Ticket};
use crate::retention::Deleted;
use crate::sync::Durability;

/// 64-bit FNV-1a over `key`.
pub fn fnv1a64(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The partition a key routes to.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (fnv1a64(key) % partitions as u64) as u32
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ack {
    pub partition: u32,
    pub offset: u64,
}

type EncoderKey = (Compression, i32, usize);

thread_local! {
    /// Per-thread encoder and output buffer: steady-state appends do not allocate.
    static ENCODER: RefCell<Option<(EncoderKey, BatchEncoder, EncodedBatches)>> = const { RefCell::new(None) };
}

/// A producer for one topic, holding the lock of every partition.
pub struct Producer {
    meta: TopicMeta,
    partitions: Vec<Arc<PartitionWriter>>,
    round_robin: AtomicU64,
    encoder_key: EncoderKey,
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// Per partition, the helper thread that runs fsyncs for [`Producer::start_append`].
    sync_helpers: std::sync::Mutex<Vec<Option<SyncHelper>>>,
}

/// A thread that performs the fsync of pipelined appends (group commit does the rest).
struct SyncHelper {
    tickets: mpsc::Sender<Ticket>,
    handle: JoinHandle<()>,
}

/// An append written but not yet acknowledged ([`Producer::start_append`]).
#[must_use = "an append is acknowledged only by wait()"]
pub struct PendingAppend {
    writer: Arc<PartitionWriter>,
    ticket: Ticket,
}

impl PendingAppend {
    /// The offsets the records will have once acknowledged.
    pub fn offsets(&self) -> Range<u64> {
        self.ticket.offsets.clone()
    }

    /// Wait until the durability policy is met; returns the offsets.
    pub fn wait(self) -> Result<Range<u64>> {
        self.writer.wait(&self.ticket)?;
        Ok(self.ticket.offsets)
    }
}

impl Producer {
    pub(crate) fn open(bus: &Bus, meta: TopicMeta) -> Result<Producer> {
        let opts = bus.options();
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let dir = bus.partition_dir(&meta, p)?;
            partitions.push(Arc::new(PartitionWriter::open(
                &dir,
                &meta.name,
                p,
                meta.config.clone(),
                opts.durability,
                Arc::clone(&opts.syncer),
                opts.drop_behind,
            )?));
        }
        let helpers = (0..partitions.len()).map(|_| None).collect();
        let flusher = match opts.durability {
            Durability::Interval(every) => Some(spawn_flusher(&partitions, every)),
            _ => None,
        };
        Ok(Producer {
            encoder_key: (
                meta.config.compression,
                meta.config.zstd_level,
                opts.batch_target_bytes,
            ),
            meta,
            partitions,
            round_robin: AtomicU64::new(0),
            flusher,
            sync_helpers: std::sync::Mutex::new(helpers),
        })
    }

    /// The topic's metadata.
    pub fn topic(&self) -> &TopicMeta {
        &self.meta
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.meta.partitions
    }

    /// The offset the next record of `partition` will get.
    pub fn end_offset(&self, partition: u32) -> Result<u64> {
        Ok(self.writer(partition)?.end_offset())
    }

    fn writer(&self, partition: u32) -> Result<&Arc<PartitionWriter>> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| BusError::PartitionNotFound {
                topic: self.meta.name.clone(),
                partition,
                partitions: self.meta.partitions,
            })
    }

    /// The partition a record goes to when none is given: by key hash, else round-robin.
    pub fn route(&self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(k) => partition_for_key(k, self.meta.partitions),
            None => {
                (self.round_robin.fetch_add(1, Ordering::Relaxed) % self.meta.partitions as u64)
                    as u32
            }
        }
    }

    /// Encode and write (no durability wait).
    fn write(&self, partition: u32, records: &[Record<'_>]) -> Result<Ticket> {
        let writer = self.writer(partition)?;
        ENCODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot
                .as_ref()
                .is_some_and(|(k, _, _)| *k != self.encoder_key)
            {
                *slot = None;
            }
            let (c, level, target) = self.encoder_key;
            let (_, encoder, out) = slot.get_or_insert_with(|| {
                (
                    self.encoder_key,
                    BatchEncoder::new(c, level, target),
                    EncodedBatches::default(),
                )
            });
            encoder.encode(records, out)?;
            writer.write(out)
        })
    }

    /// Append `records` to `partition`; returns their offsets (one contiguous range) once
    /// the durability policy is met.
    pub fn append_batch(&self, partition: u32, records: &[Record<'_>]) -> Result<Range<u64>> {
        let ticket = self.write(partition, records)?;
        self.writer(partition)?.wait(&ticket)?;
        Ok(ticket.offsets)
    }

    /// Write `records` to `partition` and return at once; the append is acknowledged by
    /// [`PendingAppend::wait`]. With fsync per batch, a helper thread starts the fsync right
    /// away, so one thread can pipeline: write batch k+1 while batch k is being synced,
    ///
    /// ```text
    ///   caller:  write k | write k+1 | wait k | write k+2 | wait k+1 | ...
    ///   helper:          | fsync (k)          | fsync (k+1, k+2)     | ...
    /// ```
    ///
    /// and acknowledge batch k only when its fsync is done (group commit shares fsyncs).
    pub fn start_append(&self, partition: u32, records: &[Record<'_>]) -> Result<PendingAppend> {
        let writer = Arc::clone(self.writer(partition)?);
        let ticket = self.write(partition, records)?;
        if let Durability::EveryBatch = writer.durability() {
            let mut helpers = self.sync_helpers.lock().unwrap_or_else(|p| p.into_inner());
            let slot = &mut helpers[partition as usize];
            let helper = slot.get_or_insert_with(|| spawn_sync_helper(Arc::clone(&writer)));
            // A helper that is gone only means no head start; wait() still syncs.
            let _ = helper.tickets.send(ticket.clone());
        }
        Ok(PendingAppend { writer, ticket })
    }

    /// Append records routed by key (or round-robin); returns where each landed, in input
    /// order, once the durability policy is met for all of them.
    pub fn send(&self, records: &[Record<'_>]) -> Result<Vec<Ack>> {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.meta.partitions as usize];
        for (i, r) in records.iter().enumerate() {
            groups[self.route(r.key) as usize].push(i);
        }
        let mut acks = vec![
            Ack {
                partition: 0,
                offset: 0
            };
            records.len()
        ];
        let mut tickets = Vec::new();
        let mut buf: Vec<Record<'_>> = Vec::new();
        for (p, idxs) in groups.iter().enumerate() {
            if idxs.is_empty() {
                continue;
            }
            buf.clear();
            buf.extend(idxs.iter().map(|&i| records[i]));
            let ticket = self.write(p as u32, &buf)?;
            for (k, &i) in idxs.iter().enumerate() {
                acks[i] = Ack {
                    partition: p as u32,
                    offset: ticket.offsets.start + k as u64,
                };
            }
            tickets.push((p as u32, ticket));
        }
        for (p, t) in &tickets {
            self.writer(*p)?.wait(t)?;
        }
        Ok(acks)
    }

    /// fsync every partition's pending writes.
    pub fn flush(&self) -> Result<()> {
        for w in &self.partitions {
            w.flush()?;
        }
        Ok(())
    }

    /// Apply retention to every partition now (it also runs after every roll).
    pub fn enforce_retention(&self) -> Result<Vec<Deleted>> {
        let mut all = Vec::new();
        for w in &self.partitions {
            all.extend(w.enforce_retention()?);
        }
        Ok(all)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let helpers =
            std::mem::take(&mut *self.sync_helpers.lock().unwrap_or_else(|p| p.into_inner()));
        for h in helpers.into_iter().flatten() {
            drop(h.tickets);
            let _ = h.handle.join();
        }
        if let Some((stop, handle)) = self.flusher.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

/// The helper of [`Producer::start_append`]: syncs for the newest ticket it has been sent.
fn spawn_sync_helper(writer: Arc<PartitionWriter>) -> SyncHelper {
    let (tx, rx) = mpsc::channel::<Ticket>();
    let handle = std::thread::spawn(move || {
        while let Ok(mut ticket) = rx.recv() {
            // Skip to the newest waiting ticket: one fsync covers all before it.
            while let Ok(t) = rx.try_recv() {
                ticket = t;
            }
            // Errors (poisoning) reach the appender through its own wait().
            let _ = writer.sync_for(&ticket);
        }
    });
    SyncHelper {
        tickets: tx,
        handle,
    }
}

/// The `Interval` flusher: every `every`, fsync the partitions with unsynced writes.
fn spawn_flusher(
    partitions: &[Arc<PartitionWriter>],
    every: std::time::Duration,
) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let weak: Vec<Weak<PartitionWriter>> = partitions.iter().map(Arc::downgrade).collect();
    let handle = std::thread::spawn(move || loop {
        match rx.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        for w in weak.iter().filter_map(Weak::upgrade) {
            if w.is_dirty() {
                if let Err(e) = w.flush() {
                    tracing::error!("interval flush failed: {e}");
                }
            }
        }
    });
    (tx, handle)
}
