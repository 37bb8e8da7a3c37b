//! Offline parity of stream views (`sluice parity view` and `sluice parity legacy`): proof,
//! from files alone, that a view holds exactly its source's rows in the contract's order,
//! and that its receipt and manifest say what the files say.
//!
//! It is not the sort's own validation (that runs before publishing, on the sort's numbers):
//! parity recomputes everything from the parquet files on disk, after the fact, so it also
//! catches damage done to a view since it was published. It does not look at the bus
//! (`sluice_ingest::parity` does).
//!
//! - [`scan`]: one parallel pass over parquet files (digest, time range, order).
//! - [`view`]: the checks of one view against its source, receipt and manifest.
//! - [`legacy`]: a view against a reference file from another tool, row by row.
//!
//! Every finding is a [`Check`]: a name, pass/fail, the numbers on both sides and the place
//! (file, part, row) a failure is about. A failed check is a result, not an error; errors
//! ([`crate::SortError`]) are for files that cannot be read at all.

pub mod legacy;
pub mod scan;
pub mod view;

pub use sluice_storage::check::Check;
use sluice_storage::timefmt::format_rfc3339_micros;

/// A time as the receipts write it, or `-` for none.
pub fn time_text(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), format_rfc3339_micros)
}
