//! The stream crate's one error type. Every variant has a stable machine code
//! ([`ReplayError::code`]) that the CLI prints as `error[CODE]`; the codes the platform
//! defines (`STREAM_VIEW_PARTIAL_EXISTS`, `STREAM_RECEIPT_MISSING`, ...) are used verbatim.

use std::path::PathBuf;

use sluice_storage::StorageError;

/// Errors of replay: opening views, reading them, pacing and checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no stream view for {output_id} at {dir}; build it with `sluice sort` first")]
    ViewMissing { output_id: String, dir: PathBuf },
    #[error("{dir} has a view manifest but no _stream_sort_receipt.json")]
    ReceiptMissing { dir: PathBuf },
    #[error("{dir} holds {parts} parquet part(s) but no _stream_sort_receipt.json: an unfinished sort; rebuild the view")]
    PartialExists { dir: PathBuf, parts: usize },
    #[error("stream view receipt {path} does not match the view: {reason}")]
    ReceiptMismatch { path: PathBuf, reason: String },
    #[error("{path}: no usable ts_utc column ({reason})")]
    MissingTsUtc { path: PathBuf, reason: String },
    #[error("parquet error in {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("checkpoint {path} is invalid: {reason}")]
    CheckpointInvalid { path: PathBuf, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the consumer of the replay stopped accepting events")]
    ConsumerClosed,
}

impl ReplayError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Storage(e) => e.code(),
            ReplayError::ViewMissing { .. } => "STREAM_VIEW_MISSING",
            ReplayError::ReceiptMissing { .. } => "STREAM_RECEIPT_MISSING",
            ReplayError::PartialExists { .. } => "STREAM_VIEW_PARTIAL_EXISTS",
            ReplayError::ReceiptMismatch { .. } => "STREAM_RECEIPT_MISMATCH",
            ReplayError::MissingTsUtc { .. } => "MISSING_TS_UTC",
            ReplayError::Parquet { .. } => "PARQUET_ERROR",
            ReplayError::CheckpointInvalid { .. } => "CHECKPOINT_INVALID",
            ReplayError::Io { .. } => "IO_ERROR",
            ReplayError::InvalidArgument(_) => "INVALID_ARGUMENT",
            ReplayError::ConsumerClosed => "REPLAY_CONSUMER_CLOSED",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReplayError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        ReplayError::Parquet {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

/// The stream crate's result type.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;
