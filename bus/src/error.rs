//! The bus crate's error type (being written).

/// Errors of the file bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BusError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Io { .. } => "IO_ERROR",
        }
    }
}
