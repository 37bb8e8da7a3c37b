//! Receipts: one per decision, in an append-only log of fixed-size records
//! ([`record`], [`log`]), with the fields every receipt of a replay shares stored once
//! ([`context`]), rendered to the platform's JSON on demand ([`render`]).
//!
//! Why not one JSON file per receipt (the platform's design): 124M files. Why not JSON lines:
//! a receipt is ~128 bytes here against ~700 as JSON, and fixed-size records make receipt
//! `seq` addressable with one positioned read, which is what the indexes point at.

pub mod context;
pub mod log;
pub mod record;
pub mod render;

pub use context::{Contexts, ReceiptContext};
pub use log::{ReceiptLog, ReceiptReader, ReceiptSync};
pub use record::{EbPos, ReceiptRecord, RECORD};
