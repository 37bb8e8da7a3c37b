//! Time in the generated world: the scenario window, the merchants' time zones, the daily
//! traffic curve, and a fast formatter for the platform's timestamp strings.
//!
//! Times are `i64` microseconds since the Unix epoch (UTC), quantised to [`TICK_MICROS`]
//! (10 ms) like the engine's, which is what makes exact ties across files common. Text is
//! produced by [`TsFormatter`], byte-identical to `timefmt::format_rfc3339_micros` but
//! written into a caller's buffer without allocating, caching the date part per day.

use crate::timefmt::{civil_from_days, days_from_civil, MICROS_PER_SEC};

/// Event times are multiples of 10 ms (`...:13.260000Z`).
pub const TICK_MICROS: i64 = 10_000;
pub const HOUR_MICROS: i64 = 3_600 * MICROS_PER_SEC;
pub const DAY_MICROS: i64 = 24 * HOUR_MICROS;
/// Arrivals fall in `WINDOW_DAYS` local days from 2026-01-05 (a Monday).
pub const WINDOW_DAYS: u64 = 7;

/// Midnight UTC that opens the scenario window.
pub fn window_start_micros() -> i64 {
    days_from_civil(2026, 1, 5) * DAY_MICROS
}

/// A merchant's time zone. Offsets are fixed for the (January) window: no DST switch
/// falls inside it, so one offset per tzid is exact for these dates.
#[derive(Debug)]
pub struct Zone {
    pub tzid: &'static str,
    pub offset_minutes: i32,
    /// `zone_representation` in 5B: country and tzid.
    pub representation: &'static str,
    /// `tz_group_id` in 5B: zones sharing an offset.
    pub group: &'static str,
    /// Relative share of merchants in this zone.
    pub weight: u32,
}

impl Zone {
    pub fn offset_micros(&self) -> i64 {
        self.offset_minutes as i64 * 60 * MICROS_PER_SEC
    }
}

const fn zone(
    tzid: &'static str,
    offset_minutes: i32,
    representation: &'static str,
    group: &'static str,
    weight: u32,
) -> Zone {
    Zone {
        tzid,
        offset_minutes,
        representation,
        group,
        weight,
    }
}

pub static ZONES: &[Zone] = &[
    zone("Europe/London", 0, "GB:Europe/London", "tzg_utc+0000", 18),
    zone("Europe/Paris", 60, "FR:Europe/Paris", "tzg_utc+0100", 10),
    zone("Europe/Berlin", 60, "DE:Europe/Berlin", "tzg_utc+0100", 10),
    zone("Europe/Madrid", 60, "ES:Europe/Madrid", "tzg_utc+0100", 6),
    zone("Africa/Lagos", 60, "NG:Africa/Lagos", "tzg_utc+0100", 3),
    zone(
        "America/New_York",
        -300,
        "US:America/New_York",
        "tzg_utc-0500",
        14,
    ),
    zone(
        "America/Chicago",
        -360,
        "US:America/Chicago",
        "tzg_utc-0600",
        8,
    ),
    zone(
        "America/Los_Angeles",
        -480,
        "US:America/Los_Angeles",
        "tzg_utc-0800",
        8,
    ),
    zone(
        "America/Sao_Paulo",
        -180,
        "BR:America/Sao_Paulo",
        "tzg_utc-0300",
        4,
    ),
    zone("Asia/Kolkata", 330, "IN:Asia/Kolkata", "tzg_utc+0530", 5),
    zone(
        "Asia/Kathmandu",
        345,
        "NP:Asia/Kathmandu",
        "tzg_utc+0545",
        1,
    ),
    zone(
        "Asia/Singapore",
        480,
        "SG:Asia/Singapore",
        "tzg_utc+0800",
        4,
    ),
    zone("Asia/Tokyo", 540, "JP:Asia/Tokyo", "tzg_utc+0900", 5),
    zone(
        "Australia/Sydney",
        660,
        "AU:Australia/Sydney",
        "tzg_utc+1100",
        4,
    ),
];

/// Relative traffic per local hour of the day: quiet nights, a lunch and an evening peak.
pub const HOURLY_WEIGHTS: [u32; 24] = [
    3, 2, 1, 1, 1, 2, 4, 7, 10, 12, 13, 15, 16, 14, 13, 13, 13, 14, 16, 15, 12, 9, 6, 4,
];

/// Running sums of `weights`, for `SplitMix64::weighted`.
pub fn cumulative(weights: impl IntoIterator<Item = u32>) -> Vec<u32> {
    weights
        .into_iter()
        .scan(0u32, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

/// Length of `YYYY-MM-DDTHH:MM:SS.ffffff`.
pub const LOCAL_LEN: usize = 26;
/// Length of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const UTC_LEN: usize = 27;

/// Days whose `YYYY-MM-DD` a [`TsFormatter`] keeps (direct-mapped by day number): more
/// than the span of a run, so the calendar arithmetic runs about once per day.
const DATE_CACHE: usize = 64;

/// Formats instants as the platform's text without allocating; caches the `YYYY-MM-DD` of
/// recent days because a flow's events hop between a handful of days.
#[derive(Debug, Clone)]
pub struct TsFormatter {
    days: [i64; DATE_CACHE],
    dates: [[u8; 10]; DATE_CACHE],
}

impl Default for TsFormatter {
    fn default() -> Self {
        TsFormatter {
            days: [i64::MIN; DATE_CACHE],
            dates: [[0; 10]; DATE_CACHE],
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

    fn write_local(&mut self, out: &mut [u8], micros: i64) {
        let secs = micros.div_euclid(MICROS_PER_SEC);
        let frac = micros.rem_euclid(MICROS_PER_SEC) as u32;
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let slot = day.rem_euclid(DATE_CACHE as i64) as usize;
        if self.days[slot] != day {
            self.set_day(slot, day);
        }
        out[..10].copy_from_slice(&self.dates[slot]);
        out[10] = b'T';
        two(out, 11, sod / 3600);
        out[13] = b':';
        two(out, 14, (sod / 60) % 60);
        out[16] = b':';
        two(out, 17, sod % 60);
        out[19] = b'.';
        two(out, 20, frac / 10_000);
        two(out, 22, (frac / 100) % 100);
        two(out, 24, frac % 100);
    }

    #[cold]
    fn set_day(&mut self, slot: usize, day: i64) {
        let (y, m, d) = civil_from_days(day);
        // Years outside 0..=9999 cannot occur in the scenario window; clamp rather than
        // overflow the fixed-width field.
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
    use super::*;
    use crate::gen::rng::SplitMix64;
    use crate::timefmt::format_rfc3339_micros;

    #[test]
    fn utc_text_equals_timefmt_on_random_and_edge_instants() {
        let mut f = TsFormatter::default();
        let mut r = SplitMix64::new(3);
        let mut cases: Vec<i64> = vec![
            0,
            window_start_micros(),
            window_start_micros() - 1,
            1_767_601_813_260_000,
            days_from_civil(2028, 2, 29) * DAY_MICROS + DAY_MICROS - 1,
            days_from_civil(9999, 12, 31) * DAY_MICROS,
        ];
        // Random instants from 1970 to ~2100, in an order that exercises the day cache.
        cases.extend((0..20_000).map(|_| r.below(4_102_444_800_000_000) as i64));
        for t in cases {
            let got = f.utc(t);
            assert_eq!(std::str::from_utf8(&got).unwrap(), format_rfc3339_micros(t));
        }
    }

    #[test]
    fn local_text_is_shifted_and_has_no_zone() {
        let mut f = TsFormatter::default();
        let t = crate::timefmt::parse_rfc3339_micros("2026-01-05T23:30:13.260000Z").unwrap();
        let kolkata = 330 * 60 * MICROS_PER_SEC;
        assert_eq!(&f.local(t, kolkata), b"2026-01-06T05:00:13.260000");
        assert_eq!(&f.local(t, -5 * HOUR_MICROS), b"2026-01-05T18:30:13.260000");
    }

    #[test]
    fn zones_and_weights_are_sane() {
        assert!(ZONES
            .iter()
            .all(|z| z.weight > 0 && z.offset_minutes.abs() < 14 * 60));
        assert_eq!(cumulative([1, 2, 3]), [1, 3, 6]);
        assert_eq!(window_start_micros() % DAY_MICROS, 0);
    }
}
