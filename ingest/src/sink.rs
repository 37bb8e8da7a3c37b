//! Where admitted events go: the [`Sink`] trait, small on purpose so that the file bus
//! (`sluice-bus`) and later Kafka (issue 8) are two implementations of the same five calls,
//! and [`MemorySink`], a plain in-memory log for tests.
//!
//! The gate relies on two properties of a sink:
//!
//! 1. `append` returns only once its records are durable (the file bus: fsync per batch),
//!    and gives them consecutive offsets in the order given;
//! 2. `read` returns what was appended, so after a crash the gate can find records that
//!    reached the sink but not the receipt log (reconciliation, see `crate::gate`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::SinkError;

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct SinkRecord<'a> {
    /// Event time, UTC micros (the bus's record timestamp).
    pub ts_micros: i64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The callback of [`Sink::read`]: offset and value of each record.
pub type Visit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), SinkError> + 'a;

/// Appends started by [`Sink::start_many`]: each group's first offset, and what is left to
/// wait for before they are durable.
pub struct PendingMany {
    pub firsts: Vec<u64>,
    wait: Option<Box<dyn FnOnce() -> Result<(), SinkError> + Send>>,
}

impl PendingMany {
    /// Appends that are durable already.
    pub fn durable(firsts: Vec<u64>) -> Self {
        PendingMany { firsts, wait: None }
    }

    /// Appends that are durable once `wait` returns `Ok`.
    pub fn new(
        firsts: Vec<u64>,
        wait: impl FnOnce() -> Result<(), SinkError> + Send + 'static,
    ) -> Self {
        PendingMany {
            firsts,
            wait: Some(Box::new(wait)),
        }
    }

    /// Block until every append is durable.
    pub fn wait(self) -> Result<(), SinkError> {
        match self.wait {
            Some(w) => w(),
            None => Ok(()),
        }
    }
}

/// An append-only, partitioned log the gate writes admitted events to.
pub trait Sink: Send {
    /// Create `topic` with `partitions` if it does not exist; returns its partition count
    /// (an existing topic keeps its own).
    fn ensure_topic(&mut self, topic: &str, partitions: u32) -> Result<u32, SinkError>;
    /// The partition count of `topic`, `None` if it does not exist.
    fn partitions(&mut self, topic: &str) -> Result<Option<u32>, SinkError>;
    /// Append `records` to one partition, durably; returns the first record's offset
    /// (the others follow consecutively).
    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[SinkRecord<'_>],
    ) -> Result<u64, SinkError>;
    /// Append to several partitions of one topic; returns each group's first offset, in
    /// order. This default appends one group after the other; a sink may overlap them.
    fn append_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[SinkRecord<'_>])],
    ) -> Result<Vec<u64>, SinkError> {
        groups
            .iter()
            .map(|(p, r)| self.append(topic, *p, r))
            .collect()
    }
    /// Start appending to several partitions of one topic: the offsets are known at once,
    /// durability when [`PendingMany::wait`] returns. This default appends durably before
    /// returning; the file bus returns while the partitions still sync, so a caller can
    /// prepare and write its next group meanwhile.
    fn start_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[SinkRecord<'_>])],
    ) -> Result<PendingMany, SinkError> {
        Ok(PendingMany::durable(self.append_many(topic, groups)?))
    }
    /// The offset the next appended record of the partition will get.
    fn end_offset(&mut self, topic: &str, partition: u32) -> Result<u64, SinkError>;
    /// Visit the values of offsets `from..end` of a partition, in order.
    fn read(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        visit: &mut Visit<'_>,
    ) -> Result<(), SinkError>;
    /// Whether the topics outlive one platform run (Kafka: yes; the file bus lives in the
    /// run's directory: no). A new gate on such a sink records where its run starts
    /// (`ig/start.json`, see `crate::gate::start`) and never reads before that.
    fn outlives_run(&self) -> bool {
        false
    }
}

/// A record held by [`MemorySink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub ts_micros: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemState {
    topics: BTreeMap<String, Vec<Vec<StoredRecord>>>,
    appends: u64,
    /// Behave like a log shared by runs (see [`Sink::outlives_run`]).
    shared: bool,
    /// Fail the append with this number (1-based) *after* storing its records: the
    /// "crash between the bus append and the receipt" case.
    fail_after_append: Option<u64>,
}

/// An in-memory sink; clones share the same log (tests keep one to inspect it).
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    state: Arc<Mutex<MemState>>,
}

fn poisoned() -> SinkError {
    SinkError {
        code: "SINK_POISONED",
        message: "memory sink lock poisoned".into(),
    }
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make append number `n` (counting from 1 over the sink's life) store its records and
    /// then fail.
    pub fn fail_after_append(&self, n: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_after_append = Some(n);
        }
    }

    /// Make this sink behave like Kafka: topics outlive a run ([`Sink::outlives_run`]).
    pub fn set_outlives_run(&self, shared: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.shared = shared;
        }
    }

    /// Every record of a partition.
    pub fn records(&self, topic: &str, partition: u32) -> Vec<StoredRecord> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.topics.get(topic)?.get(partition as usize).cloned())
            .unwrap_or_default()
    }

    /// Topics and their partition counts.
    pub fn topics(&self) -> Vec<(String, u32)> {
        self.state
            .lock()
            .map(|s| {
                s.topics
                    .iter()
                    .map(|(t, p)| (t.clone(), p.len() as u32))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn ensure_topic(&mut self, topic: &str, partitions: u32) -> Result<u32, SinkError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        let t = s
            .topics
            .entry(topic.to_string())
            .or_insert_with(|| vec![Vec::new(); partitions.max(1) as usize]);
        Ok(t.len() as u32)
    }

    fn partitions(&mut self, topic: &str) -> Result<Option<u32>, SinkError> {
        let s = self.state.lock().map_err(|_| poisoned())?;
        Ok(s.topics.get(topic).map(|t| t.len() as u32))
    }

    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[SinkRecord<'_>],
    ) -> Result<u64, SinkError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.appends += 1;
        let fail = s.fail_after_append == Some(s.appends);
        let log = s
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
            .ok_or_else(|| SinkError {
                code: "SINK_PARTITION_NOT_FOUND",
                message: format!("no partition {partition} of {topic}"),
            })?;
        let first = log.len() as u64;
        log.extend(records.iter().map(|r| StoredRecord {
            ts_micros: r.ts_micros,
            key: r.key.to_vec(),
            value: r.value.to_vec(),
        }));
        if fail {
            return Err(SinkError {
                code: "SINK_INJECTED_FAILURE",
                message: format!("injected failure after append {}", s.appends),
            });
        }
        Ok(first)
    }

    fn end_offset(&mut self, topic: &str, partition: u32) -> Result<u64, SinkError> {
        let s = self.state.lock().map_err(|_| poisoned())?;
        Ok(s.topics
            .get(topic)
            .and_then(|t| t.get(partition as usize))
            .map_or(0, |l| l.len() as u64))
    }

    fn read(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        visit: &mut Visit<'_>,
    ) -> Result<(), SinkError> {
        let records = self.records(topic, partition);
        for (i, r) in records.iter().enumerate().skip(from as usize) {
            visit(i as u64, &r.value)?;
        }
        Ok(())
    }

    fn outlives_run(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.shared)
    }
}
