//! # sluice-sort
//!
//! The stream-view builder: it turns an engine output (parquet files, time unsorted within
//! and across files) into its **stream view**, flat `part-NNNNNN.parquet` files in the
//! exact order of DuckDB's `ORDER BY CAST(ts_utc AS TIMESTAMP), filename, file_row_number`,
//! validated and published with a receipt (`shared/CONTEXT.md`, "Stream view contract").
//! It replaces the platform's DuckDB external sort, in bounded memory.
//!
//! It is not a general query engine: one sort key (a time column), one order, one output
//! layout. It does not replay views (`sluice-stream`) nor benchmark itself (`sluice-benches`).
//!
//! ## How data flows (the external sort; details and measurements in `docs/sort.md`)
//!
//! 1. [`plan`]: read the footers; check schemas and the key; choose per column how it
//!    travels ([`repr`]: constant columns not at all, low-cardinality strings as
//!    dictionary codes ([`dict`]), a string key's canonical text not at all ([`keytext`]),
//!    the rest as decoded).
//! 2. Phase 1, [`runs`]: decode row groups in parallel ([`read`]); per row compute the
//!    16-byte key (time, file, row; [`key`]) and the source digest; sort every decoded
//!    chunk (≤ 64 Ki rows) by key while it is in cache ([`radix`]); keep chunks in memory
//!    while the budget allows, spill the others as sorted segments of Arrow IPC files
//!    ([`spill`]).
//! 3. Phase 2, [`merge`]: merge all sorted sources in windows (key bound, radix sort of the
//!    window's keys), spilled segments read a batch at a time (`pread`, decoded
//!    zero-copy, freed once merged); intermediate merges only if the fan-in would not fit
//!    in memory. Every
//!    `--row-group-rows` merged rows are gathered (source slices read sequentially; key
//!    text copied where carried, else formatted from the key) and encoded column-parallel
//!    into parts cut by size ([`output`]).
//! 4. Validation (row count, digest, time range of source vs view, strictly increasing
//!    keys), receipt, manifest, atomic publish ([`view`]).
//!
//! ```text
//!  parquet ─► decode ∥ ─► keys + digest ─► sort chunk ─┬─ keep (memory)
//!                                                      └─ spill (IPC segment)
//!  kept chunks + spilled segments (pread) ─► window ─► radix sort keys ─► gather
//!        ─► encode ∥ + view digest ─► part-NNNNNN.parquet ─► validate ─► receipt ─► rename
//! ```
//!
//! ## Library API
//!
//! ```no_run
//! use sluice_sort::{build_view, copy_floor, NoProgress, SortConfig, SortSource};
//! # fn main() -> Result<(), sluice_sort::SortError> {
//! let source = SortSource::engine_output(
//!     "/data/engine_run".as_ref(),
//!     "s3_event_stream_with_fraud_6B",
//!     None, // default view root: <engine_root>/stream_view/ts_utc
//! )?;
//! let config = SortConfig { memory_limit: 1 << 30, ..SortConfig::default() };
//! let report = build_view(&config, &source, &NoProgress)?;
//! println!("{} rows in {} parts, {:?}", report.rows, report.parts, report.status);
//! // The benchmark's floor: same reader and writer, no sort, no receipt.
//! let floor = copy_floor(&SortConfig { force: true, ..config }, &source, &NoProgress)?;
//! # let _ = floor; Ok(()) }
//! ```
//!
//! [`SortSource::glob`] takes any parquet dataset instead of an engine output. Errors are
//! [`SortError`]s with stable codes ([`SortError::code`]).

pub mod build;
pub mod config;
pub mod dict;
pub mod error;
pub mod fault;
pub mod floor;
pub mod key;
pub mod keytext;
pub mod merge;
pub mod output;
pub mod parity;
pub mod plan;
pub mod radix;
pub mod read;
pub mod repr;
pub mod runs;
pub mod source;
pub mod spill;
pub mod view;

pub use build::{build_view, default_temp_root, ViewReport, ViewStatus};
pub use config::{parse_size, SortConfig};
pub use error::SortError;
pub use floor::copy_floor;
pub use source::SortSource;

/// Progress callbacks (the CLI draws bars with them). Phases: `read` (rows decoded),
/// `write` (rows written), `copy` (copy floor rows).
pub trait Progress: Sync {
    /// A phase starts; `total` units are expected.
    fn phase(&self, _name: &'static str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
