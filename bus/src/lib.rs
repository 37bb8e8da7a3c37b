//! # sluice-bus (being written)

pub mod error;
pub use error::BusError;
