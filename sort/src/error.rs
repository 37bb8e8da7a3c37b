//! The sort crate's one error type. Every variant names the file, row, value or directory it
//! is about and has a stable code ([`SortError::code`]) that the CLI prints as
//! `error[CODE]`; codes from `shared/CONTEXT.md` are used verbatim.

use std::path::PathBuf;

/// Errors of the stream-view builder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SortError {
    #[error(transparent)]
    Storage(#[from] sluice_storage::StorageError),

    /// The sort key is `ts_utc` and a source file lacks it.
    #[error("{file}: no column {column:?} (the stream view sorts on it)")]
    MissingTsUtc { file: PathBuf, column: String },

    /// The sort key is another column and a source file lacks it.
    #[error("{file}: no sort key column {column:?}")]
    MissingSortKey { file: PathBuf, column: String },

    /// The sort key has a type that is not a time (string, timestamp or date).
    #[error("{file}: sort key column {column:?} has type {data_type}; expected a string, timestamp or date")]
    SortKeyType {
        file: PathBuf,
        column: String,
        data_type: String,
    },

    /// A null sort key.
    #[error("{file} row {row}: sort key {column:?} is null")]
    SortKeyNull {
        file: PathBuf,
        row: u64,
        column: String,
    },

    /// A sort key string that is not an RFC 3339 timestamp (see `docs/sort.md`).
    #[error("{file} row {row}: sort key {column:?} value {value:?} is not an RFC 3339 timestamp")]
    SortKeyUnparseable {
        file: PathBuf,
        row: u64,
        column: String,
        value: String,
    },

    /// Two source files have different columns or column types.
    #[error("schemas disagree: {first} has {first_desc}, {second} has {second_desc}")]
    SchemaMismatch {
        first: PathBuf,
        second: PathBuf,
        first_desc: String,
        second_desc: String,
    },

    /// A column type the sort cannot carry or digest (nested types, intervals).
    #[error("{file}: column {column:?} has type {data_type}, which sluice sort does not support")]
    ColumnTypeUnsupported {
        file: PathBuf,
        column: String,
        data_type: String,
    },

    /// The source files hold no rows at all.
    #[error("output {output_id}: the {files} source file(s) hold no rows")]
    OutputEmpty { output_id: String, files: usize },

    /// A file or row count beyond what the 16-byte sort key can address.
    #[error("{what}: {value} exceeds the limit of {limit}")]
    TooLarge {
        what: String,
        value: u64,
        limit: u64,
    },

    /// Source and view statistics differ; nothing was published.
    #[error("output {output_id}: validation failed before publishing: {detail}")]
    ValidationFailed { output_id: String, detail: String },

    /// A receipt exists and does not match this build.
    #[error("{view_dir}: the existing receipt does not match this build ({detail}); use --force to rebuild")]
    ReceiptMismatch { view_dir: PathBuf, detail: String },

    /// A manifest exists without a receipt.
    #[error("{view_dir}: a manifest exists without a receipt; use --force to rebuild")]
    ReceiptMissing { view_dir: PathBuf },

    /// Parquet parts exist without a receipt.
    #[error("{view_dir}: parquet parts exist without a receipt; use --force to rebuild")]
    PartialExists { view_dir: PathBuf },

    /// Another live process is building the same view.
    #[error("{lock}: another sluice process is building this view")]
    ViewLocked { lock: PathBuf },

    /// Spill files would exceed `--max-temp-size`.
    #[error("temp space under {temp_dir} would exceed --max-temp-size {limit} bytes ({needed} needed so far)")]
    TempFull {
        temp_dir: PathBuf,
        limit: u64,
        needed: u64,
    },

    /// A flag or configuration value is out of range.
    #[error("invalid sort configuration: {0}")]
    Config(String),

    /// A spill file could not be written or read back.
    #[error("spill file {path}: {message}")]
    Spill { path: PathBuf, message: String },

    /// An internal invariant or an Arrow kernel failed (a bug: report it).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SortError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            SortError::Storage(e) => e.code(),
            SortError::MissingTsUtc { .. } => "MISSING_TS_UTC",
            SortError::MissingSortKey { .. } => "MISSING_SORT_KEY",
            SortError::SortKeyType { .. } => "SORT_KEY_TYPE_UNSUPPORTED",
            SortError::SortKeyNull { .. } => "SORT_KEY_NULL",
            SortError::SortKeyUnparseable { .. } => "SORT_KEY_UNPARSEABLE",
            SortError::SchemaMismatch { .. } => "SCHEMA_MISMATCH",
            SortError::ColumnTypeUnsupported { .. } => "SORT_COLUMN_TYPE_UNSUPPORTED",
            SortError::OutputEmpty { .. } => "STREAM_SORT_OUTPUT_EMPTY",
            SortError::TooLarge { .. } => "SORT_INPUT_TOO_LARGE",
            SortError::ValidationFailed { .. } => "STREAM_SORT_VALIDATION_FAILED",
            SortError::ReceiptMismatch { .. } => "STREAM_RECEIPT_MISMATCH",
            SortError::ReceiptMissing { .. } => "STREAM_RECEIPT_MISSING",
            SortError::PartialExists { .. } => "STREAM_VIEW_PARTIAL_EXISTS",
            SortError::ViewLocked { .. } => "STREAM_VIEW_LOCKED",
            SortError::TempFull { .. } => "SORT_TEMP_FULL",
            SortError::Config(_) => "INVALID_ARGUMENT",
            SortError::Spill { .. } => "SORT_SPILL_IO",
            SortError::Internal(_) => "INTERNAL",
        }
    }

    /// Wrap an I/O error with its path (as a storage `IO_ERROR`).
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        SortError::Storage(sluice_storage::StorageError::io(path, err))
    }

    /// Wrap a parquet/arrow error with its file (as a storage `PARQUET_ERROR`).
    pub fn parquet(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        SortError::Storage(sluice_storage::StorageError::parquet(path, err))
    }

    /// A spill-file failure.
    pub fn spill(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        SortError::Spill {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = SortError> = std::result::Result<T, E>;
