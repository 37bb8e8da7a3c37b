//! RFC 3339 timestamps <-> microseconds since the Unix epoch (UTC).
//!
//! The hot path of the sort parses every `ts_utc` string, so this is a hand-written parser
//! over bytes (no allocation, no chrono). It accepts what DuckDB's `CAST(x AS TIMESTAMP)`
//! accepts for the platform's data: `YYYY-MM-DD[T| ]HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM|±HH]`,
//! with `T`/`Z` in either case; a missing zone means UTC. An offset is applied, so the
//! result is always the UTC instant. Fractions beyond microseconds are truncated.

mod cached;

pub use cached::{TsFormatter, LOCAL_LEN, UTC_LEN};

/// Microseconds per second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

/// Parse an RFC 3339 timestamp to UTC microseconds since the epoch. `None` if malformed.
#[inline]
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(b, 0, 4)? as i64;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        None => 0,
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (hh, mm) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = (hh * 3600 + mm * 60) as i64;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    Some(secs * MICROS_PER_SEC + micros)
}

/// Append `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the platform's normalised form) to `out`.
pub fn write_rfc3339_micros(out: &mut String, micros: i64) {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    use std::fmt::Write;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        y,
        m,
        d,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        frac
    );
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for an instant in microseconds.
pub fn format_rfc3339_micros(micros: i64) -> String {
    let mut s = String::with_capacity(27);
    write_rfc3339_micros(&mut s, micros);
    s
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

/// `YYYYMMDDTHHMMSSZ` (compact, second precision) for an instant in microseconds.
pub fn format_compact_seconds(micros: i64) -> String {
    // "2026-01-05T08:30:13.260000Z" -> "20260105T083013Z"
    let full = format_rfc3339_micros(micros);
    let pick = |r: std::ops::Range<usize>| &full[r];
    format!(
        "{}{}{}T{}{}{}Z",
        pick(0..4),
        pick(5..7),
        pick(8..10),
        pick(11..13),
        pick(14..16),
        pick(17..19)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_known_instant() {
        let t = parse_rfc3339_micros("2026-01-05T08:30:13.260000Z").unwrap();
        assert_eq!(format_rfc3339_micros(t), "2026-01-05T08:30:13.260000Z");
        assert_eq!(t, 1_767_601_813_260_000);
    }

    #[test]
    fn offsets_become_utc() {
        let z = parse_rfc3339_micros("2026-01-05T08:30:13Z").unwrap();
        assert_eq!(parse_rfc3339_micros("2026-01-05T10:30:13+02:00"), Some(z));
        assert_eq!(parse_rfc3339_micros("2026-01-05T03:30:13-0500"), Some(z));
        assert_eq!(parse_rfc3339_micros("2026-01-05 08:30:13"), Some(z));
        assert_eq!(parse_rfc3339_micros("2026-01-05t08:30:13z"), Some(z));
    }

    #[test]
    fn fractions_pad_and_truncate() {
        let base = parse_rfc3339_micros("2026-01-05T08:30:13Z").unwrap();
        assert_eq!(
            parse_rfc3339_micros("2026-01-05T08:30:13.5Z"),
            Some(base + 500_000)
        );
        assert_eq!(
            parse_rfc3339_micros("2026-01-05T08:30:13.123456789Z"),
            Some(base + 123_456)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "not a time",
            "2026-13-05T08:30:13Z",
            "2026-02-30T08:30:13Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T08:30:13.Z",
            "2026-01-05T08:30:13Zjunk",
            "2026-01-05T08:30:13+2:00",
        ] {
            assert_eq!(parse_rfc3339_micros(s), None, "{s:?} should be rejected");
        }
    }

    #[test]
    fn civil_roundtrip_over_centuries() {
        for z in (-800_000i64..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn pre_epoch_formatting() {
        let t = parse_rfc3339_micros("1969-12-31T23:59:59.999999Z").unwrap();
        assert_eq!(t, -1);
        assert_eq!(format_rfc3339_micros(t), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn compact_seconds() {
        let t = parse_rfc3339_micros("2026-11-27T02:30:01.5Z").unwrap();
        assert_eq!(format_compact_seconds(t), "20261127T023001Z");
    }
}
