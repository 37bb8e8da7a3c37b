//! The bus crate's one error type. Every variant has a stable machine code
//! ([`BusError::code`]) that the CLI prints as `error[CODE]` and that never changes meaning.
//! The codes are listed in `docs/format.md` ("Error codes of the bus").

use std::path::PathBuf;

/// Errors of the file bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bus data damaged in {segment} at byte {position}: {reason}")]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("index damaged: {detail}")]
    IndexDamaged { detail: String },
    #[error(
        "{path} at byte {position} has format version {found}; this build reads up to {supported}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        position: u64,
        found: u64,
        supported: u64,
    },
    #[error("partition {partition} of topic {topic} is locked by another writer ({lock})")]
    PartitionLocked {
        topic: String,
        partition: u32,
        lock: PathBuf,
    },
    #[error("partition {partition} of topic {topic} refuses writes after a failed {operation} ({reason}); reopen the bus to recover")]
    PartitionPoisoned {
        topic: String,
        partition: u32,
        operation: &'static str,
        reason: String,
    },
    #[error("{path} is not a sluice bus (no bus.json)")]
    NotFound { path: PathBuf },
    #[error("topic {topic} does not exist")]
    TopicNotFound { topic: String },
    #[error("topic {topic} already exists")]
    TopicExists { topic: String },
    #[error("topic {topic} exists with {detail}")]
    TopicMismatch { topic: String, detail: String },
    #[error("topic {topic} has {partitions} partitions; there is no partition {partition}")]
    PartitionNotFound {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error(
        "offset {offset} is outside partition {partition} of {topic} (offsets {start}..{end})"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    #[error("a record of {bytes} bytes does not fit in a batch (at most {max} bytes)")]
    BatchTooLarge { bytes: u64, max: u64 },
    #[error("invalid metadata in {path}: {reason}")]
    MetadataInvalid { path: PathBuf, reason: String },
    #[error("invalid {kind} name {name:?}: {reason}")]
    NameInvalid {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl BusError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Io { .. } => "IO_ERROR",
            BusError::Corrupt { .. } => "BUS_CORRUPT",
            BusError::IndexDamaged { .. } => "BUS_INDEX_DAMAGED",
            BusError::UnsupportedVersion { .. } => "BUS_UNSUPPORTED_VERSION",
            BusError::PartitionLocked { .. } => "BUS_PARTITION_LOCKED",
            BusError::PartitionPoisoned { .. } => "BUS_PARTITION_POISONED",
            BusError::NotFound { .. } => "BUS_NOT_FOUND",
            BusError::TopicNotFound { .. } => "BUS_TOPIC_NOT_FOUND",
            BusError::TopicExists { .. } => "BUS_TOPIC_EXISTS",
            BusError::TopicMismatch { .. } => "BUS_TOPIC_MISMATCH",
            BusError::PartitionNotFound { .. } => "BUS_PARTITION_NOT_FOUND",
            BusError::OffsetOutOfRange { .. } => "BUS_OFFSET_OUT_OF_RANGE",
            BusError::BatchTooLarge { .. } => "BUS_BATCH_TOO_LARGE",
            BusError::MetadataInvalid { .. } => "BUS_METADATA_INVALID",
            BusError::NameInvalid { .. } => "BUS_NAME_INVALID",
            BusError::InvalidArgument(_) => "INVALID_ARGUMENT",
        }
    }

    /// Wrap an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BusError::Io {
            path: path.into(),
            source,
        }
    }

    /// Damage at a known place.
    pub fn corrupt(segment: impl Into<PathBuf>, position: u64, reason: impl Into<String>) -> Self {
        BusError::Corrupt {
            segment: segment.into(),
            position,
            reason: reason.into(),
        }
    }
}

/// The bus crate's result type.
pub type Result<T, E = BusError> = std::result::Result<T, E>;
