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

use sluice_storage::timefmt::format_rfc3339_micros;

/// One parity check: what was compared, both sides, and where it failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Short stable name, e.g. `row_count`, `order`, `part_blake3`.
    pub name: String,
    pub ok: bool,
    /// The reference side (source files, receipt), as text.
    pub expected: String,
    /// The checked side (view files), as text.
    pub actual: String,
    /// Where a failure is (file, part, row); empty when it passes.
    pub place: String,
}

impl Check {
    /// A check that passes when `expected == actual`.
    pub fn equal(
        name: &str,
        expected: impl ToString,
        actual: impl ToString,
        place: impl FnOnce() -> String,
    ) -> Check {
        let (expected, actual) = (expected.to_string(), actual.to_string());
        let ok = expected == actual;
        Check {
            name: name.to_string(),
            ok,
            expected,
            actual,
            place: if ok { String::new() } else { place() },
        }
    }

    /// A check with an explicit verdict.
    pub fn verdict(
        name: &str,
        ok: bool,
        expected: impl ToString,
        actual: impl ToString,
        place: impl ToString,
    ) -> Check {
        Check {
            name: name.to_string(),
            ok,
            expected: expected.to_string(),
            actual: actual.to_string(),
            place: if ok { String::new() } else { place.to_string() },
        }
    }
}

/// A time as the receipts write it, or `-` for none.
pub fn time_text(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), format_rfc3339_micros)
}
