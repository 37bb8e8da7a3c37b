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
//! - [`process`]: facts about the running process (peak RSS) for summaries and benchmarks.
//! - [`timefmt`]: RFC 3339 <-> microseconds, allocation-free, for hot paths.
//! - [`digest`]: the order-independent multiset row digest of receipts and parity checks.
//! - [`gen`]: the realistic engine-output generator behind `sluice gen`.
//!
//! - [`object`]: S3 (and MinIO) locations `s3://bucket/key` behind the same functions:
//!   discovery, footers, ranged row-group reads, multipart uploads (issue 7, `docs/s3.md`).
//!
//! Data flow: `layout` finds files -> callers read them with `parquet` -> the sort writes a
//! view whose receipt and manifest (`view`) are published with `publish`.

pub mod check;
pub mod digest;
pub mod error;
pub mod gen;
pub mod layout;
pub mod object;
pub mod outputs;
pub mod process;
pub mod publish;
pub mod run;
pub mod timefmt;
pub mod view;

pub use error::{Result, StorageError};
