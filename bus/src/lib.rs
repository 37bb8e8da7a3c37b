//! # sluice-bus
//!
//! sluice's event bus: an embedded, log-structured file bus on local disk, built like
//! Kafka's and Iggy's storage. Topics have partitions; a partition is a directory of
//! segment files holding CRC-checked record batches, with sparse offset and time indexes.
//! Every byte on disk is specified in `docs/format.md` ("File bus format").
//!
//! It is not a server and not replicated: one process writes a partition (a lock file
//! enforces it), any number read, all through the file system. It depends on neither
//! arrow/parquet nor `sluice-storage`; the ingestion gate (`sluice-ingest`) writes to it.
//!
//! Data flow:
//!
//! ```text
//!  Producer::append_batch / send        (producer.rs: routing, thread-local encoding)
//!     -> format::record::BatchEncoder     records -> batch frames (zstd optional)
//!     -> partition::PartitionWriter       lock, offsets, roll, pwrite, group-commit fsync
//!     -> segment::writer::SegmentWriter   .log + .index + .timeindex
//!  PartitionReader / Consumer            (consumer.rs: by offset or time, follow the tail)
//!     <- segment::reader::LogReader       frames, CRC checks, damage classification
//!  open / recover / verify               (segment::recovery, inspect.rs)
//! ```
//!
//! Modules: [`format`] (bytes), [`segment`] (files of a partition), [`partition`] (the
//! writer), [`producer`], [`consumer`], [`groups`] (committed offsets), [`retention`],
//! [`topic`], [`bus`] (the handle), [`sync`] (durability, injectable fsync), [`inspect`]
//! (describe, dump, verify, recover), [`publish`] (atomic files).

pub mod bus;
pub mod consumer;
pub mod error;
pub mod format;
pub mod groups;
pub mod inspect;
pub mod partition;
pub mod producer;
pub mod publish;
pub mod retention;
pub mod segment;
pub mod sync;
pub mod topic;

pub use bus::{Bus, BusOptions};
pub use consumer::{Consumer, PartitionReader, ReadBatch, StartAt};
pub use error::{BusError, Result};
pub use format::meta::{TopicConfig, TopicMeta};
pub use format::{Compression, Header, OwnedRecord, Record, RecordView};
pub use producer::{Ack, PendingAppend, Producer};
pub use sync::{Durability, OsSync, Syncer};
