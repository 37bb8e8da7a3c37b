//! The storage crate's one error type. Every variant has a stable machine code
//! (`StorageError::code`) that the CLI prints as `error[CODE]` and that never changes meaning.

use std::path::PathBuf;

/// Errors from discovery, parquet I/O, publishing and run layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output (or an `--input` pattern) with no files to read.
    #[error("{0}")]
    OutputPathsEmpty(String),
    #[error("unknown output_id {output_id:?}; known: {known}")]
    UnknownOutput { output_id: String, known: String },
    #[error("parquet error in {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("invalid JSON in {path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error("invalid platform_run_id {run_id:?} (from {source_name}): {reason}")]
    RunIdInvalid {
        run_id: String,
        source_name: String,
        reason: String,
    },
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    BadGlob { pattern: String, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(
        "generated data already exists at {}; pass --force to replace it",
        display_paths(paths)
    )]
    GenOutputExists { paths: Vec<PathBuf> },
    /// A location that is neither a local path nor a well-formed `s3://bucket/key` URL.
    #[error("invalid object-store URL {url:?}: {reason}")]
    ObjectUrlInvalid { url: String, reason: String },
    /// The object-store settings (environment or flags) cannot build a client.
    #[error("object-store configuration for {url}: {message}")]
    ObjectStoreConfig { url: String, message: String },
    /// 401/403: the credentials are wrong or lack the permission. Permanent, not retried.
    #[error("access denied by the object store for {url}: {message}")]
    ObjectAccessDenied { url: String, message: String },
    /// The bucket does not exist. Permanent, not retried.
    #[error("bucket {bucket:?} does not exist (while accessing {url})")]
    ObjectBucketMissing { bucket: String, url: String },
    /// The object does not exist.
    #[error("no object at {url}")]
    ObjectNotFound { url: String },
    /// Any other object-store failure, after the client's retries with backoff (timeouts,
    /// 5xx, throttling, refused connections) were exhausted.
    #[error("object-store {op} failed for {url}: {message}")]
    ObjectStore {
        op: &'static str,
        url: String,
        message: String,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

impl StorageError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "IO_ERROR",
            StorageError::OutputPathsEmpty(_) => "OUTPUT_PATHS_EMPTY",
            StorageError::UnknownOutput { .. } => "UNKNOWN_OUTPUT_ID",
            StorageError::Parquet { .. } => "PARQUET_ERROR",
            StorageError::Json { .. } => "JSON_INVALID",
            StorageError::RunIdInvalid { .. } => "RUN_ID_INVALID",
            StorageError::BadGlob { .. } => "BAD_GLOB",
            StorageError::InvalidArgument(_) => "INVALID_ARGUMENT",
            StorageError::GenOutputExists { .. } => "GEN_OUTPUT_EXISTS",
            StorageError::ObjectUrlInvalid { .. } => "OBJECT_URL_INVALID",
            StorageError::ObjectStoreConfig { .. } => "OBJECT_STORE_CONFIG",
            StorageError::ObjectAccessDenied { .. } => "OBJECT_STORE_ACCESS_DENIED",
            StorageError::ObjectBucketMissing { .. } => "OBJECT_STORE_BUCKET_MISSING",
            StorageError::ObjectNotFound { .. } => "OBJECT_NOT_FOUND",
            StorageError::ObjectStore { .. } => "OBJECT_STORE_ERROR",
        }
    }

    /// Wrap an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wrap a parquet/arrow error with the file it concerns.
    pub fn parquet(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        StorageError::Parquet {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
