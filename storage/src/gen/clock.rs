//! Time in the generated world: the scenario window, the merchants' time zones, the daily
//! traffic curve.
//!
//! Times are `i64` microseconds since the Unix epoch (UTC), quantised to [`TICK_MICROS`]
//! (10 ms) like the engine's, which is what makes exact ties across files common. Text is
//! produced by [`crate::timefmt::TsFormatter`].

use crate::timefmt::{days_from_civil, MICROS_PER_SEC};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_weights_are_sane() {
        assert!(ZONES
            .iter()
            .all(|z| z.weight > 0 && z.offset_minutes.abs() < 14 * 60));
        assert_eq!(cumulative([1, 2, 3]), [1, 3, 6]);
        assert_eq!(window_start_micros() % DAY_MICROS, 0);
    }
}
