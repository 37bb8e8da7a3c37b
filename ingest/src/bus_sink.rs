//! The file bus (`sluice-bus`) as a [`Sink`]: one [`Producer`] per topic (holding every
//! partition's writer lock), topics created with zstd batches, appends acknowledged after
//! the bus's fsync (its default `EveryBatch` durability).
//!
//! Appends run in the calling thread (the gate's recorder): the bus compresses in the
//! caller's thread, and keeping one thread keeps its zstd context warm. The gate groups
//! batches so that each partition gets one append (and one fsync) per group, and
//! [`Sink::append_many`] writes every partition before waiting, so the partitions' fsyncs
//! overlap (the bus's sync helpers run them) instead of queueing one behind the other. Reconciliation reads partitions back with a [`sluice_bus::PartitionReader`].

use std::collections::HashMap;
use std::path::Path;

use sluice_bus::{Bus, BusError, BusOptions, Compression, Producer, Record, StartAt, TopicConfig};

use crate::error::SinkError;
use crate::sink::{PendingMany, Sink, SinkRecord, Visit};

/// zstd level of the topics the gate creates. Measured (3M-event replay, 2026-11-27):
/// with the bus's fast-level tuning, levels -1 and -3 saved no measurable CPU against 1
/// (within 1.5%, the noise) while writing 50-58% more bytes (301-314 MiB vs 199 MiB), so 1.
pub const ZSTD_LEVEL: i32 = 1;

fn err(e: BusError) -> SinkError {
    SinkError {
        code: e.code(),
        message: e.to_string(),
    }
}

/// The file bus under `<run_root>/eb/`.
pub struct FileBusSink {
    bus: Bus,
    producers: HashMap<String, Producer>,
    config: TopicConfig,
    read_only: bool,
}

impl FileBusSink {
    /// Open (creating if needed) the bus in `dir`, as the gate writes it: durable log
    /// bytes leave the page cache behind a 32 MiB window (`BusOptions::drop_behind`; a
    /// replay writes gigabytes it does not read back, `docs/replay.md`).
    pub fn open(dir: &Path) -> Result<FileBusSink, SinkError> {
        Self::open_with(
            dir,
            BusOptions {
                drop_behind: true,
                ..BusOptions::default()
            },
        )
    }

    pub fn open_with(dir: &Path, options: BusOptions) -> Result<FileBusSink, SinkError> {
        let bus = Bus::create(dir, options).map_err(err)?;
        let config = TopicConfig {
            compression: Compression::Zstd,
            zstd_level: ZSTD_LEVEL,
            ..TopicConfig::default()
        };
        Ok(FileBusSink {
            bus,
            producers: HashMap::new(),
            config,
            read_only: false,
        })
    }

    /// Open an existing bus for reading only: no locks are taken, so it works beside a
    /// running writer; appends are refused.
    pub fn open_read_only(dir: &Path) -> Result<FileBusSink, SinkError> {
        let bus = Bus::open(dir, BusOptions::default()).map_err(err)?;
        Ok(FileBusSink {
            bus,
            producers: HashMap::new(),
            config: TopicConfig::default(),
            read_only: true,
        })
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The producer of `topic`, opened on first use (opening recovers torn tails).
    fn producer(&mut self, topic: &str) -> Result<&Producer, SinkError> {
        if self.read_only {
            return Err(SinkError {
                code: "INVALID_ARGUMENT",
                message: format!("the bus was opened read-only; cannot write {topic}"),
            });
        }
        if !self.producers.contains_key(topic) {
            let p = self.bus.producer(topic).map_err(err)?;
            self.producers.insert(topic.to_string(), p);
        }
        self.producers.get(topic).ok_or_else(|| SinkError {
            code: "BUS_TOPIC_NOT_FOUND",
            message: format!("no producer for {topic}"),
        })
    }
}

fn to_records<'a>(records: &'a [SinkRecord<'a>]) -> Vec<Record<'a>> {
    records
        .iter()
        .map(|r| Record {
            key: Some(r.key),
            value: Some(r.value),
            timestamp: r.ts_micros,
            headers: &[],
        })
        .collect()
}

impl Sink for FileBusSink {
    fn ensure_topic(&mut self, topic: &str, partitions: u32) -> Result<u32, SinkError> {
        let meta = match self.bus.topic(topic) {
            Ok(meta) => meta,
            Err(BusError::TopicNotFound { .. }) => self
                .bus
                .ensure_topic(topic, partitions, self.config.clone())
                .map_err(err)?,
            Err(e) => return Err(err(e)),
        };
        self.producer(topic)?;
        Ok(meta.partitions)
    }

    fn partitions(&mut self, topic: &str) -> Result<Option<u32>, SinkError> {
        match self.bus.topic(topic) {
            Ok(meta) => Ok(Some(meta.partitions)),
            Err(BusError::TopicNotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[SinkRecord<'_>],
    ) -> Result<u64, SinkError> {
        let recs = to_records(records);
        let range = self
            .producer(topic)?
            .append_batch(partition, &recs)
            .map_err(err)?;
        Ok(range.start)
    }

    /// Every partition's batch is written first (`start_append`: a helper thread of the bus
    /// starts its fsync at once), then all are awaited: the fsyncs of the partitions overlap
    /// each other and the compression of the next partition instead of running in turn.
    /// Each offset is still returned only once its records are durable.
    fn append_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[SinkRecord<'_>])],
    ) -> Result<Vec<u64>, SinkError> {
        let pending = self.start_many(topic, groups)?;
        let firsts = pending.firsts.clone();
        pending.wait()?;
        Ok(firsts)
    }

    /// Every partition is written (and its fsync handed to the partition's sync helper)
    /// before this returns; the wait covers the fsyncs.
    fn start_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[SinkRecord<'_>])],
    ) -> Result<PendingMany, SinkError> {
        let producer = self.producer(topic)?;
        let mut pending = Vec::with_capacity(groups.len());
        for (partition, records) in groups {
            let recs = to_records(records);
            pending.push(producer.start_append(*partition, &recs).map_err(err)?);
        }
        let firsts = pending.iter().map(|p| p.offsets().start).collect();
        Ok(PendingMany::new(firsts, move || {
            for p in pending {
                p.wait().map_err(err)?;
            }
            Ok(())
        }))
    }

    fn end_offset(&mut self, topic: &str, partition: u32) -> Result<u64, SinkError> {
        self.producer(topic)?.end_offset(partition).map_err(err)
    }

    fn read(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        visit: &mut Visit<'_>,
    ) -> Result<(), SinkError> {
        // A writer opens the producer first: it recovers the partition (torn tail) before
        // reading. A read-only reader reads what is complete now.
        let end = if self.read_only {
            u64::MAX
        } else {
            self.end_offset(topic, partition)?
        };
        if from >= end {
            return Ok(());
        }
        let mut reader = self
            .bus
            .partition_reader(topic, partition, StartAt::Offset(from))
            .map_err(err)?;
        while reader.position() < end {
            let Some(batch) = reader.next_batch().map_err(err)? else {
                break;
            };
            for r in batch.records() {
                if r.offset >= end {
                    break;
                }
                visit(r.offset, r.value.unwrap_or_default())?;
            }
        }
        Ok(())
    }
}
