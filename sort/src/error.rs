//! The sort crate's error type (being written).

/// Errors of the stream-view builder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SortError {
    #[error(transparent)]
    Storage(#[from] sluice_storage::StorageError),
}

impl SortError {
    /// The stable code printed by the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            SortError::Storage(e) => e.code(),
        }
    }
}
