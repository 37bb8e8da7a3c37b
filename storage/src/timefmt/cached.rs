//! A formatter for the platform's timestamp text that writes into a fixed array without
//! allocating, byte-identical to [`super::format_rfc3339_micros`] for years 0000-9999.
//!
//! Two caches make the common cases cheap, whatever the order of the instants:
//! - the `YYYY-MM-DD` of the last [`DATE_CACHE`] days (direct-mapped by day number): the
//!   generator's flows hop between a handful of days, so the calendar arithmetic runs
//!   about once per day;
//! - the `YYYY-MM-DDTHH:MM:SS.` of the last second: the sort rebuilds key text in time
//!   order, where consecutive rows nearly always share the second, so a row costs a
//!   20-byte copy and the six fraction digits.
//!
//! ```text
//!  micros ─► second == last? ─yes─► copy prefix ─┐
//!                 └─no─► date cache ─► HH:MM:SS ─┴─► + ffffff (+ Z)
//! ```

use super::{civil_from_days, MICROS_PER_SEC};

/// Length of `YYYY-MM-DDTHH:MM:SS.ffffff`.
pub const LOCAL_LEN: usize = 26;
/// Length of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const UTC_LEN: usize = 27;

/// Days whose `YYYY-MM-DD` a [`TsFormatter`] keeps.
const DATE_CACHE: usize = 64;

/// Length of the cached `YYYY-MM-DDTHH:MM:SS.` prefix.
const PREFIX_LEN: usize = 20;

/// Formats instants as the platform's text (see the module doc).
#[derive(Debug, Clone)]
pub struct TsFormatter {
    days: [i64; DATE_CACHE],
    dates: [[u8; 10]; DATE_CACHE],
    /// The second `prefix` was written for.
    sec: i64,
    prefix: [u8; PREFIX_LEN],
}

impl Default for TsFormatter {
    fn default() -> Self {
        TsFormatter {
            days: [i64::MIN; DATE_CACHE],
            dates: [[0; 10]; DATE_CACHE],
            sec: i64::MIN,
            prefix: [0; PREFIX_LEN],
        }
    }
}

#[inline]
fn two(out: &mut [u8], at: usize, v: u32) {
    out[at] = b'0' + (v / 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

impl TsFormatter {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, identical to `timefmt::format_rfc3339_micros`.
    #[inline]
    pub fn utc(&mut self, micros: i64) -> [u8; UTC_LEN] {
        let mut out = [b'Z'; UTC_LEN];
        self.write_local(&mut out[..LOCAL_LEN], micros);
        out
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff` (a wall-clock time with no zone) of `micros + offset`.
    #[inline]
    pub fn local(&mut self, micros: i64, offset_micros: i64) -> [u8; LOCAL_LEN] {
        let mut out = [0u8; LOCAL_LEN];
        self.write_local(&mut out, micros + offset_micros);
        out
    }

    #[inline]
    fn write_local(&mut self, out: &mut [u8], micros: i64) {
        let secs = micros.div_euclid(MICROS_PER_SEC);
        let frac = micros.rem_euclid(MICROS_PER_SEC) as u32;
        if secs != self.sec {
            self.set_second(secs);
        }
        out[..PREFIX_LEN].copy_from_slice(&self.prefix);
        two(out, 20, frac / 10_000);
        two(out, 22, (frac / 100) % 100);
        two(out, 24, frac % 100);
    }

    /// Write the prefix of second `secs` (the date from the day cache).
    fn set_second(&mut self, secs: i64) {
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let slot = day.rem_euclid(DATE_CACHE as i64) as usize;
        if self.days[slot] != day {
            self.set_day(slot, day);
        }
        let p = &mut self.prefix;
        p[..10].copy_from_slice(&self.dates[slot]);
        p[10] = b'T';
        two(p, 11, sod / 3600);
        p[13] = b':';
        two(p, 14, (sod / 60) % 60);
        p[16] = b':';
        two(p, 17, sod % 60);
        p[19] = b'.';
        self.sec = secs;
    }

    #[cold]
    fn set_day(&mut self, slot: usize, day: i64) {
        let (y, m, d) = civil_from_days(day);
        // Years outside 0..=9999 have no fixed-width text (the platform's never do); clamp
        // rather than overflow the field.
        let y = y.clamp(0, 9999) as u32;
        let date = &mut self.dates[slot];
        two(date, 0, y / 100);
        two(date, 2, y % 100);
        date[4] = b'-';
        two(date, 5, m);
        date[7] = b'-';
        two(date, 8, d);
        self.days[slot] = day;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{days_from_civil, format_rfc3339_micros, parse_rfc3339_micros};
    use super::*;
    use crate::gen::rng::SplitMix64;

    const DAY_MICROS: i64 = 86_400 * MICROS_PER_SEC;

    #[test]
    fn utc_text_equals_timefmt_in_any_order() {
        let mut f = TsFormatter::default();
        let mut r = SplitMix64::new(3);
        // Year 0000-01-01 .. 9999-12-31.
        let (lo, hi) = (-62_167_219_200_000_000i64, 253_402_300_799_999_999i64);
        let mut cases: Vec<i64> = vec![
            lo,
            hi,
            0,
            -1,
            1_767_601_813_260_000,
            days_from_civil(2028, 2, 29) * DAY_MICROS + DAY_MICROS - 1,
            days_from_civil(9999, 12, 31) * DAY_MICROS,
        ];
        // Random instants (the day cache), and runs of nearby ones in time order (the
        // second cache), as the sort writes them.
        let mut t = 0i64;
        for i in 0..40_000 {
            t = if i % 4 == 0 {
                lo + (r.next_u64() % (hi - lo) as u64) as i64
            } else {
                (t + (r.next_u64() % 3_000_000) as i64).min(hi)
            };
            cases.push(t);
        }
        for t in cases {
            let got = f.utc(t);
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                format_rfc3339_micros(t),
                "{t}"
            );
        }
    }

    #[test]
    fn local_text_is_shifted_and_has_no_zone() {
        let mut f = TsFormatter::default();
        let t = parse_rfc3339_micros("2026-01-05T23:30:13.260000Z").unwrap();
        let kolkata = 330 * 60 * MICROS_PER_SEC;
        assert_eq!(&f.local(t, kolkata), b"2026-01-06T05:00:13.260000");
        assert_eq!(
            &f.local(t, -5 * 3_600 * MICROS_PER_SEC),
            b"2026-01-05T18:30:13.260000"
        );
        // The same second again, from the cache, then UTC.
        assert_eq!(
            &f.local(t + 1, -5 * 3_600 * MICROS_PER_SEC),
            b"2026-01-05T18:30:13.260001"
        );
        assert_eq!(&f.utc(t), b"2026-01-05T23:30:13.260000Z");
    }
}
