//! # sluice-storage
//!
//! The bottom of sluice's crate graph: everything about *where data lives and how it is
//! laid out*, and nothing about sorting, replaying or the bus.
//!
//! - [`outputs`]: the catalog of engine outputs (columns, keys, classes, topics) from
//!   `shared/CONTEXT.md`; the one place the contract is written in code.
//! - [`layout`]: discovery of an output's `part-*.parquet` files from its hive template or a
//!   glob, sorted in byte order; the engine run's `run_receipt.json`.
//! - [`view`]: the stream-view contract: paths, receipt and manifest types, view id.
//! - [`run`]: run-scoped paths `runs/<platform>/<platform_run_id>/{eb,ig,wsp,logs}`.
//! - [`publish`]: atomic publish of files and directories (temp, fsync, rename, fsync dir).
//! - [`timefmt`]: RFC 3339 <-> microseconds, allocation-free, for hot paths.
//! - [`digest`]: the order-independent multiset row digest of receipts and parity checks.
//! - [`gen`]: the realistic engine-output generator behind `sluice gen`.
//!
//! It is not an object-store abstraction yet: sources and views are local paths today; S3
//! arrives through `object_store` (issue 7) behind these same functions.
//!
//! Data flow: `layout` finds files -> callers read them with `parquet` -> the sort writes a
//! view whose receipt and manifest (`view`) are published with `publish`.

pub mod digest;
pub mod error;
pub mod gen;
pub mod layout;
pub mod outputs;
pub mod publish;
pub mod run;
pub mod timefmt;
pub mod view;

pub use error::{Result, StorageError};
