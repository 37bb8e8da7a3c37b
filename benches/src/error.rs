//! The benches crate's one error type, shared by every `sluice bench` harness.
//!
//! A harness error means the benchmark itself could not run (no data, an unwritable work
//! directory, a program that cannot be started). A *contender* that fails (a child process
//! exiting non-zero, printing no JSON) is not an error: the report marks it `FAILED` with its
//! stderr tail and the other contenders still run.

use std::path::PathBuf;

/// Errors that stop a benchmark harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating benchmark data into {dir} failed ({status}): {stderr_tail}")]
    DataGen {
        dir: PathBuf,
        status: String,
        stderr_tail: String,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(
        "not enough free disk space in {dir}: {what} need about {:.1} GB, {:.1} GB free; free \
         space there or give the benchmark a work directory on a bigger filesystem (`--work`; \
         `--out` for `bench report`)",
        *need as f64 / 1e9,
        *available as f64 / 1e9
    )]
    DiskSpace {
        dir: PathBuf,
        need: u64,
        available: u64,
        what: String,
    },
    #[error(transparent)]
    Storage(#[from] sluice_storage::StorageError),
    #[error(transparent)]
    Bus(#[from] sluice_bus::BusError),
}

impl BenchError {
    /// The stable code printed by the CLI as `error[CODE]`.
    pub fn code(&self) -> &'static str {
        match self {
            BenchError::Io { .. } => "IO_ERROR",
            BenchError::Spawn { .. } => "BENCH_SPAWN_FAILED",
            BenchError::DataGen { .. } => "BENCH_DATA_GEN_FAILED",
            BenchError::InvalidArgument(_) => "INVALID_ARGUMENT",
            BenchError::DiskSpace { .. } => "BENCH_DISK_SPACE",
            BenchError::Storage(e) => e.code(),
            BenchError::Bus(e) => e.code(),
        }
    }

    /// Wrap an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
