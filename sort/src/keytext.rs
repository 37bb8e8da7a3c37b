//! The sort key's text, regenerated from the key instead of carried through the sort.
//!
//! The platform's `ts_utc` strings are canonical (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, 27
//! bytes), so each one is a pure function of its parsed time, which the packed key holds
//! anyway. Carrying them through chunk sorts, spill files and the gather cost about 31 of
//! the ~79 bytes per row (bytes plus offset). So:
//!
//! 1. Phase 1 ([`crate::key::times_and_form`]) notes per decoded chunk whether every key
//!    string was canonical (accepted by the strict fast parser, whose accepted strings are
//!    exactly [`TsFormatter::utc`]'s outputs for years 0000-9999). Such a chunk drops the
//!    column.
//! 2. Any other chunk (offsets, other fraction lengths, a space instead of `T`, ...)
//!    carries its strings in an extra last work column, [`KEY_TEXT`], unchanged.
//! 3. At output, the key column is rebuilt row by row: copied where a source carried the
//!    text, written by [`TsFormatter`] (its second cache suits rows in time order) from the
//!    key's time elsewhere
//!    ([`crate::merge::gather::gather_key_text`]).
//!
//! ```text
//!  chunk: all canonical? ──yes──► work columns            ─┐
//!                       └─no───► work columns + KEY_TEXT ──┴─► merge ─► text: copy | format(key)
//! ```
//!
//! The view digest is computed on the rebuilt column, so a wrong string could only fail
//! validation (`STREAM_SORT_VALIDATION_FAILED`), never reach a published view.

pub use sluice_storage::timefmt::TsFormatter;
use sluice_storage::timefmt::UTC_LEN;

/// Name of the work column that carries key strings of non-canonical chunks.
pub const KEY_TEXT: &str = "__sluice_key_text";

/// Whether batches of `schema` (work columns first) carry the key text after their
/// `work_columns` work columns.
pub fn carries_text(schema: &arrow_schema::Schema, work_columns: usize) -> bool {
    schema
        .fields()
        .get(work_columns)
        .is_some_and(|f| f.name() == KEY_TEXT)
}

/// Bytes of a canonical time string.
pub const TEXT_LEN: usize = UTC_LEN;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::times_and_form;

    fn text(f: &mut TsFormatter, micros: i64) -> String {
        String::from_utf8(f.utc(micros).to_vec()).unwrap()
    }

    #[test]
    fn canonical_strings_round_trip_exactly_and_others_are_not_canonical() {
        use arrow_array::{ArrayRef, StringArray};
        use std::sync::Arc;
        let canonical = [
            "2026-01-05T08:30:13.260000Z",
            "2024-02-29T23:59:59.999999Z",
            "2023-01-31T00:00:00.000000Z",
            "2023-04-30T12:00:00.000001Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
        ];
        let mut f = TsFormatter::default();
        for s in canonical {
            let a: ArrayRef = Arc::new(StringArray::from(vec![s]));
            let (t, form) = times_and_form(&a).unwrap();
            assert!(form, "{s} is canonical");
            assert_eq!(text(&mut f, t[0]), s);
        }
        for s in [
            "2026-01-05T08:30:13.26Z",
            "2026-01-05 08:30:13.260000Z",
            "2026-01-05t08:30:13.260000Z",
            "2026-01-05T08:30:13.260000z",
            "2026-01-05T08:30:13.260000+00:00",
            "2026-01-05T08:30:13.2600000Z",
            "2026-01-05T08:30:13Z",
        ] {
            let a: ArrayRef = Arc::new(StringArray::from(vec!["2026-01-05T08:30:13.260000Z", s]));
            let (_, form) = times_and_form(&a).unwrap();
            assert!(!form, "{s} is not canonical");
        }
        // Invalid dates are refused by both parsers, not made canonical.
        for s in ["2023-02-29T00:00:00.000000Z", "2023-04-31T00:00:00.000000Z"] {
            let a: ArrayRef = Arc::new(StringArray::from(vec![s]));
            assert!(times_and_form(&a).is_err(), "{s}");
        }
    }
}
