//! The ingest crate's one error type. Every variant has a stable machine code
//! ([`IngestError::code`]) that the CLI prints as `error[CODE]`.
//!
//! These are failures of the gate itself (its files, its sink, its arguments). A bad *event*
//! is never an error: it is quarantined with a [`crate::reason::ReasonCode`].

use std::path::PathBuf;

use sluice_storage::StorageError;
use sluice_stream::ReplayError;

/// A failure reported by a [`crate::sink::Sink`], with the sink's own stable code
/// (e.g. `BUS_PARTITION_LOCKED` from the file bus).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub code: &'static str,
    pub message: String,
}

/// Errors of the ingestion gate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Views, reading, pacing or checkpoints of a replay session (`crate::replay`).
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("--bus {url:?}: {reason}")]
    BusUrlUnsupported { url: String, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("gate state damaged in {file} at byte {position}: {reason}")]
    Corrupt {
        file: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("{path} has format version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("another process holds the gate lock {lock}")]
    Locked { lock: PathBuf },
    #[error("gate state {dir} belongs to platform run {found:?}, not {expected:?}")]
    RunMismatch {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("no gate state under {dir}")]
    NotFound { dir: PathBuf },
    #[error(
        "receipts say {topic}/{partition} reached offset {receipts}, but the bus ends at {bus}"
    )]
    BusBehind {
        topic: String,
        partition: u32,
        receipts: u64,
        bus: u64,
    },
    #[error("sink failed on {topic}: {source}")]
    Sink {
        topic: String,
        #[source]
        source: SinkError,
    },
    #[error("column {column} of {output_id} has type {data_type}, which the gate cannot put in a JSON payload")]
    PayloadTypeUnsupported {
        output_id: String,
        column: String,
        data_type: String,
    },
    #[error("no receipt for {what}")]
    ReceiptNotFound { what: String },
    #[error("{message}")]
    Callback { code: &'static str, message: String },
    #[error("audit found {problems} problem(s); first: {first}")]
    AuditFailed { problems: u64, first: String },
    #[error("a gate pipeline thread panicked")]
    PipelinePanicked,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl IngestError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Storage(e) => e.code(),
            IngestError::Replay(e) => e.code(),
            IngestError::BusUrlUnsupported { .. } => "BUS_URL_UNSUPPORTED",
            IngestError::Sink { source, .. } => source.code,
            IngestError::Callback { code, .. } => code,
            IngestError::Io { .. } => "IO_ERROR",
            IngestError::Corrupt { .. } => "IG_CORRUPT",
            IngestError::UnsupportedVersion { .. } => "IG_UNSUPPORTED_VERSION",
            IngestError::Locked { .. } => "IG_LOCKED",
            IngestError::RunMismatch { .. } => "IG_RUN_MISMATCH",
            IngestError::NotFound { .. } => "IG_NOT_FOUND",
            IngestError::BusBehind { .. } => "IG_BUS_BEHIND",
            IngestError::PayloadTypeUnsupported { .. } => "PAYLOAD_TYPE_UNSUPPORTED",
            IngestError::ReceiptNotFound { .. } => "RECEIPT_NOT_FOUND",
            IngestError::AuditFailed { .. } => "IG_AUDIT_FAILED",
            IngestError::PipelinePanicked => "IG_PIPELINE_PANICKED",
            IngestError::InvalidArgument(_) => "INVALID_ARGUMENT",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        position: u64,
        reason: impl Into<String>,
    ) -> Self {
        IngestError::Corrupt {
            file: file.into(),
            position,
            reason: reason.into(),
        }
    }

    pub(crate) fn sink(topic: &str, source: SinkError) -> Self {
        IngestError::Sink {
            topic: topic.to_string(),
            source,
        }
    }
}

/// The ingest crate's result type.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
