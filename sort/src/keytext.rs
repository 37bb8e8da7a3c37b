//! The sort key's text, regenerated from the key instead of carried through the sort.
//!
//! The platform's `ts_utc` strings are canonical (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, 27
//! bytes), so each one is a pure function of its parsed time, which the packed key holds
//! anyway. Carrying them through chunk sorts, spill files and the gather cost about 31 of
//! the ~79 bytes per row (bytes plus offset). So:
//!
//! 1. Phase 1 ([`crate::key::times_and_form`]) notes per decoded chunk whether every key
//!    string was canonical (accepted by the strict fast parser, whose accepted strings are
//!    exactly this module's outputs for years 0000-9999). Such a chunk drops the column.
//! 2. Any other chunk (offsets, other fraction lengths, a space instead of `T`, ...)
//!    carries its strings in an extra last work column, [`KEY_TEXT`], unchanged.
//! 3. At output, the key column is rebuilt row by row: copied where a source carried the
//!    text, written by [`TextFormatter`] from the key's time elsewhere
//!    ([`crate::merge::gather::gather_key_text`]).
//!
//! ```text
//!  chunk: all canonical? ──yes──► work columns            ─┐
//!                       └─no───► work columns + KEY_TEXT ──┴─► merge ─► text: copy | format(key)
//! ```
//!
//! The view digest is computed on the rebuilt column, so a wrong string could only fail
//! validation (`STREAM_SORT_VALIDATION_FAILED`), never reach a published view.

use sluice_storage::timefmt::civil_from_days;

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
pub const TEXT_LEN: usize = 27;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// `"00" "01" … "99"`: two digits per lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline(always)]
fn pair(out: &mut [u8; TEXT_LEN], at: usize, v: u32) {
    let i = (v % 100) as usize * 2;
    out[at] = PAIRS[i];
    out[at + 1] = PAIRS[i + 1];
}

/// Writes canonical time strings. Rows come in time order, so consecutive rows almost
/// always share a day and often a second: `YYYY-MM-DDTHH:MM:SS.` is computed once per
/// second (the date once per day) and copied.
#[derive(Debug, Clone)]
pub struct TextFormatter {
    day: i64,
    /// Seconds since the epoch of `prefix`.
    sec: i64,
    /// `YYYY-MM-DDTHH:MM:SS.` of `sec` (the date part is `day`'s).
    prefix: [u8; 20],
}

impl Default for TextFormatter {
    fn default() -> Self {
        TextFormatter {
            day: i64::MIN,
            sec: i64::MIN,
            prefix: [0; 20],
        }
    }
}

impl TextFormatter {
    /// Write the canonical text of `micros` (UTC microseconds) into `out`. Years outside
    /// 0000-9999 have no canonical text (the fast parser never accepts them); they are
    /// written modulo 10000 and would fail the view digest.
    #[inline]
    pub fn write(&mut self, micros: i64, out: &mut [u8; TEXT_LEN]) {
        let secs = micros.div_euclid(MICROS_PER_SEC);
        let frac = micros.rem_euclid(MICROS_PER_SEC) as u32;
        if secs != self.sec {
            self.new_second(secs, out);
        }
        out[..20].copy_from_slice(&self.prefix);
        pair(out, 20, frac / 10_000);
        pair(out, 22, (frac / 100) % 100);
        pair(out, 24, frac % 100);
        out[26] = b'Z';
    }

    /// Recompute the prefix for second `secs` (and the date if the day changed), using
    /// `out` as scratch.
    #[cold]
    fn new_second(&mut self, secs: i64, out: &mut [u8; TEXT_LEN]) {
        let day = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
        if day != self.day {
            let (y, m, d) = civil_from_days(day);
            let y = y.rem_euclid(10_000) as u32;
            pair(out, 0, y / 100);
            pair(out, 2, y);
            out[4] = b'-';
            pair(out, 5, m);
            out[7] = b'-';
            pair(out, 8, d);
            out[10] = b'T';
            self.day = day;
        } else {
            out[..11].copy_from_slice(&self.prefix[..11]);
        }
        pair(out, 11, sod / 3600);
        out[13] = b':';
        pair(out, 14, (sod / 60) % 60);
        out[16] = b':';
        pair(out, 17, sod % 60);
        out[19] = b'.';
        self.prefix.copy_from_slice(&out[..20]);
        self.sec = secs;
    }
}

#[cfg(test)]
mod tests {
    use sluice_storage::timefmt::format_rfc3339_micros;

    use super::*;
    use crate::key::times_and_form;

    fn text(f: &mut TextFormatter, micros: i64) -> String {
        let mut out = [0u8; TEXT_LEN];
        f.write(micros, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn formats_like_the_reference_formatter_in_any_order() {
        let mut f = TextFormatter::default();
        let mut s = 7u64;
        // Year 0000-01-01 .. 9999-12-31, random order and runs of nearby instants.
        let (lo, hi) = (-62_167_219_200_000_000i64, 253_402_300_799_999_999i64);
        let mut t = 0i64;
        for i in 0..50_000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t = if i % 4 == 0 {
                lo + ((s >> 1) % (hi - lo) as u64) as i64
            } else {
                (t + (s >> 40) as i64 % 100_000_000_000).clamp(lo, hi)
            };
            assert_eq!(text(&mut f, t), format_rfc3339_micros(t), "{t}");
        }
        for t in [
            lo,
            hi,
            0,
            -1,
            951_782_400_000_000,
            1_709_164_800_000_000 - 1,
        ] {
            assert_eq!(text(&mut f, t), format_rfc3339_micros(t), "{t}");
        }
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
        let mut f = TextFormatter::default();
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
