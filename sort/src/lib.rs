//! # sluice-sort (being written)

pub mod error;
pub use error::SortError;
