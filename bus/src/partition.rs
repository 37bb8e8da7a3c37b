//! The writer of one partition: the lock file, offsets, rolling, poisoning and group commit.
//!
//! An append, in the caller's thread (records were encoded before, outside any lock):
//!
//! ```text
//!  1. lock state ── poisoned? -> BUS_PARTITION_POISONED
//!  2. for each run of frames that fits the active segment:
//!       roll if needed (seal = fsync old segment, create next, fsync dir, retention)
//!       stamp base offsets + CRCs, one pwrite, index entries
//!  3. seq = ++written_seq; remember the log file; unlock
//!  4. durability: EveryBatch -> wait_synced(seq) (group commit, below); else return
//!
//!  group commit (wait_synced):          appender A        appender B      appender C
//!    lock sync state; loop {            write seq 7       write seq 8
//!      synced >= seq  -> done           fsync (target 8)  waits           write seq 9
//!      failed         -> poisoned         ...             waits           waits
//!      nobody syncing -> become syncer: done: synced=8 -> B done          fsync (target 9)
//!        target = written_seq, fsync
//!        outside the lock, publish
//!      else wait for the syncer }
//! ```
//!
//! The fsync runs outside both locks, so appenders keep writing while it runs and the next
//! fsync covers all of them: concurrent appenders share fsyncs.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{BusError, Result};
use crate::format::meta::TopicConfig;
use crate::format::record::EncodedBatches;
use crate::retention;
use crate::segment::recovery::{self, Opened};
use crate::segment::writer::SegmentWriter;
use crate::sync::{drop_cached, DropBehind, Durability, Syncer};

/// Name of the lock file in a partition directory.
pub const LOCK_FILE: &str = "writer.lock";

struct WriterState {
    segment: SegmentWriter,
    written_seq: u64,
}

#[derive(Default)]
struct SyncState {
    synced_seq: u64,
    syncing: bool,
    /// With `BusOptions::drop_behind`: durable log bytes leave the page cache behind a
    /// window (`sync` module docs).
    drop_behind: Option<DropBehind>,
}

/// A partition opened for writing (holding its lock file).
pub struct PartitionWriter {
    topic: String,
    partition: u32,
    dir: PathBuf,
    config: TopicConfig,
    durability: Durability,
    syncer: Arc<dyn Syncer>,
    state: Mutex<WriterState>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<(&'static str, String)>>,
    /// Held for the writer's lifetime: the flock is the one-writer guarantee.
    _lock: File,
}

/// A written append waiting for its durability policy.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub offsets: Range<u64>,
    seq: u64,
}

impl PartitionWriter {
    /// Lock, recover and open partition `partition` whose directory is `dir`.
    pub fn open(
        dir: &Path,
        topic: &str,
        partition: u32,
        config: TopicConfig,
        durability: Durability,
        syncer: Arc<dyn Syncer>,
        drop_behind: bool,
    ) -> Result<Self> {
        let lock = acquire_lock(dir, topic, partition)?;
        let interval = config.index_interval_bytes;
        let Opened { active, .. } = recovery::open_for_write(dir, interval)?;
        let segment = match active {
            Some(a) => SegmentWriter::resume(dir, a, interval)?,
            None => SegmentWriter::create(dir, 0, interval)?,
        };
        Ok(PartitionWriter {
            topic: topic.to_string(),
            partition,
            dir: dir.to_path_buf(),
            config,
            durability,
            syncer,
            state: Mutex::new(WriterState {
                segment,
                written_seq: 0,
            }),
            sync: Mutex::new(SyncState {
                drop_behind: drop_behind.then(DropBehind::default),
                ..SyncState::default()
            }),
            synced: Condvar::new(),
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(None),
            _lock: lock,
        })
    }

    /// The durability policy of this writer.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The offset the next record will get.
    pub fn end_offset(&self) -> u64 {
        lock(&self.state).segment.end_offset
    }

    fn poison(&self, operation: &'static str, err: &dyn std::fmt::Display) {
        tracing::error!(
            topic = %self.topic,
            partition = self.partition,
            "{operation} failed, partition poisoned: {err}"
        );
        lock(&self.poison_reason).get_or_insert((operation, err.to_string()));
        self.poisoned.store(true, Ordering::SeqCst);
        self.synced.notify_all();
    }

    fn poisoned_error(&self) -> BusError {
        let (operation, reason) = lock(&self.poison_reason)
            .clone()
            .unwrap_or(("fsync", String::new()));
        BusError::PartitionPoisoned {
            topic: self.topic.clone(),
            partition: self.partition,
            operation,
            reason,
        }
    }

    /// Write encoded batches (steps 1 to 3); the returned ticket still has to meet the
    /// durability policy ([`PartitionWriter::wait`]).
    pub fn write(&self, batches: &mut EncodedBatches) -> Result<Ticket> {
        let mut st = lock(&self.state);
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(self.poisoned_error());
        }
        let first = st.segment.end_offset;
        let mut next = first;
        let frames = std::mem::take(&mut batches.frames);
        let mut i = 0;
        while i < frames.len() {
            // The run of frames that fits the active segment (at least one).
            let room = self.config.segment_bytes.saturating_sub(st.segment.size);
            let mut j = i;
            let mut bytes = 0u64;
            while j < frames.len() && (j == i || bytes + frames[j].len as u64 <= room) {
                bytes += frames[j].len as u64;
                j += 1;
            }
            let too_old =
                st.segment.opened_at.elapsed() >= Duration::from_millis(self.config.segment_ms);
            if st.segment.size > 0 && (bytes > room || too_old) {
                self.roll(&mut st)?;
                continue;
            }
            for f in &frames[i..j] {
                crate::format::batch::stamp(
                    &mut batches.bytes[f.start..f.start + f.len],
                    next,
                    f.body_crc(),
                );
                next += f.record_count as u64;
            }
            if let Err(e) = st.segment.append(batches, &frames[i..j]) {
                self.poison("write", &e);
                batches.frames = frames;
                return Err(self.poisoned_error());
            }
            i = j;
        }
        batches.frames = frames;
        st.written_seq += 1;
        Ok(Ticket {
            offsets: first..next,
            seq: st.written_seq,
        })
    }

    /// Seal the active segment and start the next one; then apply retention.
    fn roll(&self, st: &mut WriterState) -> Result<()> {
        if let Err(e) = st.segment.seal(self.syncer.as_ref()) {
            self.poison("fsync", &e);
            return Err(self.poisoned_error());
        }
        let base = st.segment.end_offset;
        let interval = self.config.index_interval_bytes;
        // A half-made next segment cannot be retried safely (its file may exist): poison.
        st.segment = match SegmentWriter::create(&self.dir, base, interval) {
            Ok(seg) => seg,
            Err(e) => {
                self.poison("segment roll", &e);
                return Err(self.poisoned_error());
            }
        };
        // Everything written so far is in sealed (fsynced) segments now.
        {
            let mut s = lock(&self.sync);
            s.synced_seq = s.synced_seq.max(st.written_seq);
        }
        self.synced.notify_all();
        if let Err(e) = retention::enforce(&self.dir, &self.config, base) {
            tracing::warn!(dir = %self.dir.display(), "retention failed: {e}");
        }
        Ok(())
    }

    /// Apply retention now (under the state lock, so it cannot race a roll).
    pub fn enforce_retention(&self) -> Result<Vec<retention::Deleted>> {
        let st = lock(&self.state);
        retention::enforce(&self.dir, &self.config, st.segment.base)
    }

    /// Start the fsync that `ticket` needs, if the policy needs one, without waiting for
    /// others' fsyncs first: a helper thread calls this so that the appender can encode its
    /// next batch while the disk works (see `Producer::start_append`).
    pub fn sync_for(&self, ticket: &Ticket) -> Result<()> {
        self.wait(ticket)
    }

    /// Wait until the ticket meets the durability policy.
    pub fn wait(&self, ticket: &Ticket) -> Result<()> {
        match self.durability {
            Durability::EveryBatch => self.wait_synced(ticket.seq),
            Durability::Interval(_) | Durability::Never => Ok(()),
        }
    }

    /// Make everything written so far durable (group commit).
    pub fn flush(&self) -> Result<()> {
        let seq = lock(&self.state).written_seq;
        self.wait_synced(seq)
    }

    /// Whether writes are waiting for an fsync.
    pub fn is_dirty(&self) -> bool {
        let written = lock(&self.state).written_seq;
        lock(&self.sync).synced_seq < written
    }

    fn wait_synced(&self, seq: u64) -> Result<()> {
        let mut s = lock(&self.sync);
        loop {
            if s.synced_seq >= seq {
                return Ok(());
            }
            if self.poisoned.load(Ordering::SeqCst) {
                return Err(self.poisoned_error());
            }
            if s.syncing {
                s = self.synced.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.syncing = true;
            drop(s);
            let (target, file, path, bytes) = {
                let st = lock(&self.state);
                let (file, path) = st.segment.log_file();
                (st.written_seq, file, path, st.segment.size)
            };
            let result = self.syncer.sync(&file, &path);
            s = lock(&self.sync);
            s.syncing = false;
            let mut drop_range = 0..0;
            match result {
                Ok(()) => {
                    s.synced_seq = s.synced_seq.max(target);
                    if let Some(d) = s.drop_behind.as_mut() {
                        drop_range = d.synced(&path, bytes);
                    }
                }
                Err(e) => self.poison("fsync", &e),
            }
            self.synced.notify_all();
            if !drop_range.is_empty() {
                // Page-cache advice after the waiters are woken, not while they wait.
                drop(s);
                drop_cached(&file, drop_range);
                s = lock(&self.sync);
            }
        }
    }
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        if self.durability != Durability::Never && !self.poisoned.load(Ordering::SeqCst) {
            if let Err(e) = self.flush() {
                tracing::warn!(topic = %self.topic, partition = self.partition, "final flush failed: {e}");
            }
        }
    }
}

/// Take the partition's writer lock (`BUS_PARTITION_LOCKED` if another writer has it).
/// The lock lasts as long as the returned file is open.
pub fn acquire_lock(dir: &Path, topic: &str, partition: u32) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| BusError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(BusError::PartitionLocked {
            topic: topic.to_string(),
            partition,
            lock: lock_path,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(BusError::io(&lock_path, e)),
    }
}

/// Lock a mutex, ignoring poisoning by a panicked thread (state stays consistent: every
/// field is updated only after the operation it records succeeded).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{BatchEncoder, EncodedBatches};
    use crate::format::{Compression, Record};
    use crate::sync::{OsSync, KEEP_CACHED_BYTES};

    /// Write a little more than the window plus 8 MiB; what was dropped after each fsync.
    fn dropped_after_each_sync(drop_behind: bool) -> (Vec<u64>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let w = PartitionWriter::open(
            dir.path(),
            "t",
            0,
            TopicConfig::default(),
            Durability::EveryBatch,
            Arc::new(OsSync),
            drop_behind,
        )
        .unwrap();
        let value = vec![7u8; 256 << 10];
        let mut encoder = BatchEncoder::new(Compression::None, 0, 1 << 20);
        let mut batches = EncodedBatches::default();
        let mut dropped = Vec::new();
        while lock(&w.state).segment.size < KEEP_CACHED_BYTES + (8 << 20) {
            encoder
                .encode(&[Record::new(&value, 1)], &mut batches)
                .unwrap();
            let ticket = w.write(&mut batches).unwrap();
            w.wait(&ticket).unwrap();
            dropped.push(
                lock(&w.sync)
                    .drop_behind
                    .as_ref()
                    .map_or(0, |d| d.dropped()),
            );
        }
        let size = lock(&w.state).segment.size;
        (dropped, size)
    }

    #[test]
    fn durable_bytes_beyond_the_window_leave_the_cache() {
        let (dropped, size) = dropped_after_each_sync(true);
        let last = *dropped.last().unwrap();
        // Everything up to the window behind the durable end, in whole pages.
        assert!(last > 0 && last % 4096 == 0, "dropped {last}");
        assert!(last <= size - KEEP_CACHED_BYTES && size - KEEP_CACHED_BYTES - last < 4096);
        assert!(dropped.windows(2).all(|p| p[0] <= p[1]));
        assert_eq!(
            dropped[0], 0,
            "nothing dropped while the log fits the window"
        );
        // Off (the default), everything stays cached.
        let (dropped, _) = dropped_after_each_sync(false);
        assert!(dropped.iter().all(|&d| d == 0));
    }
}
