//! The sort key: every row's position in the stream view as one `u128`, so that sorting and
//! merging compare 16-byte integers and never touch row data.
//!
//! ```text
//!  127                          64 63            40 39                      0
//!  +------------------------------+----------------+-------------------------+
//!  | time: UTC micros, sign-biased | file index     | row number in the file  |
//!  +------------------------------+----------------+-------------------------+
//! ```
//!
//! Unsigned order of the packed key is exactly the contract's order: time, then source file
//! in bytewise path order (the file index is the position in that order), then row number.
//! Files up to 2^24, rows per file up to 2^40.
//!
//! Time values (matching DuckDB's `CAST(x AS TIMESTAMP)`, checked against DuckDB 2.0.1; see
//! `docs/sort.md`):
//! - strings: RFC 3339 via a fast path for the platform's canonical
//!   `YYYY-MM-DDTHH:MM:SS.ffffffZ` and [`sluice_storage::timefmt::parse_rfc3339_micros`]
//!   for every other accepted form; digits past microseconds are truncated (as DuckDB does).
//!   An offset is applied (the instant in UTC); DuckDB 2.0's cast *drops* the offset
//!   instead, so for strings with a non-zero offset the orders differ (documented);
//! - timestamps of any unit, with or without zone: the instant; nanoseconds round to the
//!   nearest microsecond, halves away from zero, as DuckDB's cast does;
//! - dates: midnight UTC.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use sluice_storage::timefmt::{days_from_civil, format_rfc3339_micros, parse_rfc3339_micros};

/// Bits of the file index in the packed key.
pub const FILE_BITS: u32 = 24;
/// Bits of the row number in the packed key.
pub const ROW_BITS: u32 = 40;
/// Files a sort can take.
pub const MAX_FILES: u64 = 1 << FILE_BITS;
/// Rows a single source file can hold.
pub const MAX_ROWS_PER_FILE: u64 = 1 << ROW_BITS;

const SIGN: u64 = 1 << 63;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Pack (time, file, row) into the sort key.
#[inline(always)]
pub fn pack(time_micros: i64, file: u32, row: u64) -> u128 {
    let t = (time_micros as u64) ^ SIGN;
    ((t as u128) << 64) | ((file as u128) << ROW_BITS) | row as u128
}

/// The time (UTC micros) of a packed key.
#[inline(always)]
pub fn time_of(key: u128) -> i64 {
    (((key >> 64) as u64) ^ SIGN) as i64
}

/// The (file, row) tie-breaker half of a packed key.
#[inline(always)]
pub fn tie_of(key: u128) -> u64 {
    key as u64
}

/// The file index of a packed key.
#[inline(always)]
pub fn file_of(key: u128) -> u32 {
    ((key as u64) >> ROW_BITS) as u32
}

/// The row number of a packed key.
#[inline(always)]
pub fn row_of(key: u128) -> u64 {
    (key as u64) & (MAX_ROWS_PER_FILE - 1)
}

/// Whether a column of this type can be the sort key.
pub fn is_key_type(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => true,
        DataType::Dictionary(_, v) => is_key_type(v),
        _ => false,
    }
}

/// Why a row has no time: the row (within the array) and what was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFault {
    Null { row: usize },
    Unparseable { row: usize, value: String },
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 31,
    }
}

/// Whether `b[i]` is an ASCII digit for every `i` in `at`.
#[inline(always)]
fn digit_ok(b: &[u8], at: &[usize]) -> bool {
    let mut bad = false;
    for &i in at {
        bad |= b[i].wrapping_sub(b'0') > 9;
    }
    !bad
}

/// Days since the epoch of the `YYYY-MM-DD` in `b[..10]` of a 27-byte candidate, with
/// the day checked against its month's length.
#[inline(always)]
fn canonical_date(b: &[u8]) -> Option<i64> {
    if b.len() != 27 || b[4] != b'-' || b[7] != b'-' || !digit_ok(b, &[0, 1, 2, 3, 5, 6, 8, 9]) {
        return None;
    }
    let d = |i: usize| (b[i] - b'0') as i64;
    let year = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
    let month = (d(5) * 10 + d(6)) as u32;
    let day = (d(8) * 10 + d(9)) as u32;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Microseconds into the day of the `THH:MM:SS.ffffffZ` in `b[10..]` of a 27-byte
/// candidate: byte by byte, the definition [`canonical_clock`] must equal.
#[cfg(test)]
fn canonical_clock_bytewise(b: &[u8]) -> Option<i64> {
    if b.len() != 27
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
        || !digit_ok(b, &[11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25])
    {
        return None;
    }
    let d = |i: usize| (b[i] - b'0') as i64;
    let hour = d(11) * 10 + d(12);
    let minute = d(14) * 10 + d(15);
    let second = d(17) * 10 + d(18);
    let micros = d(20) * 100_000 + d(21) * 10_000 + d(22) * 1000 + d(23) * 100 + d(24) * 10 + d(25);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((hour * 3600 + minute * 60 + second) * 1_000_000 + micros)
}

/// Whether every byte of `v` selected by `mask` (whole bytes) is an ASCII digit: its high
/// nibble is 3 and its low nibble plus 6 stays below 16 (no byte can carry into the next).
#[inline(always)]
fn swar_digits(v: u64, mask: u64) -> bool {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    let high_ok = v & mask & HIGH == 0x3030_3030_3030_3030 & mask;
    let low = v & mask & !HIGH;
    high_ok && low.wrapping_add(0x0606_0606_0606_0606 & mask) & HIGH == 0
}

/// Microseconds into the day of the `THH:MM:SS.ffffffZ` in `b[10..]` of a 27-byte
/// candidate, `None` unless every separator and digit is in place and in range. The 16
/// bytes after the `T` are checked as two words (SWAR) instead of 17 byte compares: the
/// key parse is a fixed cost of every sorted row.
#[inline(always)]
fn canonical_clock(b: &[u8]) -> Option<i64> {
    if b.len() != 27 || b[10] != b'T' {
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    // `HH:MM:SS` (':' at bytes 2 and 5) and `.ffffffZ` ('.' at byte 0, 'Z' at byte 7).
    let (hms, frac) = (word(11), word(19));
    const HMS_SEP: u64 = 0x0000_ff00_00ff_0000;
    const FRAC_SEP: u64 = 0xff00_0000_0000_00ff;
    if hms & HMS_SEP != 0x0000_3a00_003a_0000
        || frac & FRAC_SEP != 0x5a00_0000_0000_002e
        || !swar_digits(hms, !HMS_SEP)
        || !swar_digits(frac, !FRAC_SEP)
    {
        return None;
    }
    let (h, f) = (hms & 0x0f0f_0f0f_0f0f_0f0f, frac & 0x0f0f_0f0f_0f0f_0f0f);
    let d = |w: u64, i: u32| ((w >> (8 * i)) & 0xff) as i64;
    let hour = d(h, 0) * 10 + d(h, 1);
    let minute = d(h, 3) * 10 + d(h, 4);
    let second = d(h, 6) * 10 + d(h, 7);
    let micros = d(f, 1) * 100_000
        + d(f, 2) * 10_000
        + d(f, 3) * 1000
        + d(f, 4) * 100
        + d(f, 5) * 10
        + d(f, 6);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((hour * 3600 + minute * 60 + second) * 1_000_000 + micros)
}

/// Parse the canonical `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes); `None` for anything else
/// (the caller then tries the general parser).
///
/// Accepted strings are exactly the outputs of [`sluice_storage::timefmt::TsFormatter::utc`] for
/// years 0000-9999: every field is checked against its range (the day against its
/// month's length), so formatting the parsed time gives back `s` byte for byte. That is
/// what lets the sort drop such strings and regenerate them from the key (`keytext`).
#[inline(always)]
fn parse_canonical(b: &[u8]) -> Option<i64> {
    Some(canonical_date(b)? * MICROS_PER_DAY + canonical_clock(b)?)
}

/// [`parse_canonical`] remembering the last date parsed: the rows of a batch share a
/// handful of days, so most rows parse only their clock.
#[derive(Default)]
struct CanonicalParser {
    /// `YYYY-MM-DD` of `days` (empty until a date parsed).
    date: [u8; 10],
    days: Option<i64>,
}

impl CanonicalParser {
    #[inline(always)]
    fn parse(&mut self, b: &[u8]) -> Option<i64> {
        let clock = canonical_clock(b)?;
        let days = match self.days {
            Some(days) if b[..10] == self.date => days,
            _ => {
                let days = canonical_date(b)?;
                self.date.copy_from_slice(&b[..10]);
                self.days = Some(days);
                days
            }
        };
        Some(days * MICROS_PER_DAY + clock)
    }
}

/// Parse one time string (fast path, then the general RFC 3339 parser).
#[inline]
pub fn parse_time_str(s: &str) -> Option<i64> {
    parse_canonical(s.as_bytes()).or_else(|| parse_rfc3339_micros(s))
}

/// Parse every string; `Ok(true)` if every one was in the canonical form.
fn strings<'a>(
    n: usize,
    value: impl Fn(usize) -> &'a str,
    is_null: impl Fn(usize) -> bool,
    out: &mut Vec<i64>,
) -> Result<bool, KeyFault> {
    let mut canonical = true;
    let mut parser = CanonicalParser::default();
    for row in 0..n {
        if is_null(row) {
            return Err(KeyFault::Null { row });
        }
        let s = value(row);
        let t = match parser.parse(s.as_bytes()) {
            Some(t) => t,
            None => {
                canonical = false;
                match parse_rfc3339_micros(s) {
                    Some(t) => t,
                    None => {
                        return Err(KeyFault::Unparseable {
                            row,
                            value: s.to_string(),
                        })
                    }
                }
            }
        };
        out.push(t);
    }
    Ok(canonical)
}

/// Round nanoseconds to microseconds, halves away from zero (DuckDB's cast).
#[inline(always)]
pub fn nanos_to_micros(ns: i64) -> i64 {
    let q = ns / 1000;
    let r = ns % 1000;
    if r >= 500 {
        q + 1
    } else if r <= -500 {
        q - 1
    } else {
        q
    }
}

fn scaled(
    values: &[i64],
    is_null: impl Fn(usize) -> bool,
    conv: impl Fn(i64) -> Option<i64>,
    out: &mut Vec<i64>,
) -> Result<(), KeyFault> {
    for (row, &v) in values.iter().enumerate() {
        if is_null(row) {
            return Err(KeyFault::Null { row });
        }
        match conv(v) {
            Some(t) => out.push(t),
            None => {
                return Err(KeyFault::Unparseable {
                    row,
                    value: v.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The time (UTC micros) of every row of a sort-key array, or the first row without one.
pub fn times(array: &ArrayRef) -> Result<Vec<i64>, KeyFault> {
    times_and_form(array).map(|(t, _)| t)
}

/// [`times`], and whether the array is a `Utf8` array whose every string is in the
/// canonical form `YYYY-MM-DDTHH:MM:SS.ffffffZ` (so each string is a function of its time;
/// see [`crate::keytext`]).
pub fn times_and_form(array: &ArrayRef) -> Result<(Vec<i64>, bool), KeyFault> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    let nulls = array.logical_nulls();
    let is_null = |row: usize| nulls.as_ref().is_some_and(|b| b.is_null(row));
    if let Some(dict) = array.as_any_dictionary_opt() {
        // Parse each distinct value once.
        let values = times_lenient(dict.values());
        let keys = dict.normalized_keys();
        for (row, &k) in keys.iter().enumerate() {
            if is_null(row) {
                return Err(KeyFault::Null { row });
            }
            match values.get(k) {
                Some(Ok(t)) => out.push(*t),
                Some(Err(value)) => {
                    return Err(KeyFault::Unparseable {
                        row,
                        value: value.clone(),
                    })
                }
                None => return Err(KeyFault::Null { row }),
            }
        }
        return Ok((out, false));
    }
    let mut canonical = false;
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            canonical = strings(n, |i| a.value(i), is_null, &mut out)?;
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            strings(n, |i| a.value(i), is_null, &mut out)?;
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            strings(n, |i| a.value(i), is_null, &mut out)?;
        }
        DataType::Timestamp(unit, _) => {
            let values: &[i64] = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
            };
            match unit {
                TimeUnit::Second => {
                    scaled(values, is_null, |v| v.checked_mul(1_000_000), &mut out)?
                }
                TimeUnit::Millisecond => {
                    scaled(values, is_null, |v| v.checked_mul(1000), &mut out)?
                }
                TimeUnit::Microsecond => scaled(values, is_null, Some, &mut out)?,
                TimeUnit::Nanosecond => {
                    scaled(values, is_null, |v| Some(nanos_to_micros(v)), &mut out)?
                }
            }
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            for (row, &d) in a.values().iter().enumerate() {
                if is_null(row) {
                    return Err(KeyFault::Null { row });
                }
                out.push(d as i64 * MICROS_PER_DAY);
            }
        }
        DataType::Date64 => {
            let a = array.as_primitive::<Date64Type>();
            scaled(a.values(), is_null, |v| v.checked_mul(1000), &mut out)?
        }
        other => {
            return Err(KeyFault::Unparseable {
                row: 0,
                value: format!("<unsupported type {other}>"),
            })
        }
    }
    Ok((out, canonical))
}

/// Times of a dictionary's values: per value, the time or the offending text.
fn times_lenient(values: &ArrayRef) -> Vec<Result<i64, String>> {
    match times(values) {
        Ok(t) => t.into_iter().map(Ok).collect(),
        Err(_) => (0..values.len())
            .map(|i| {
                let one = values.slice(i, 1);
                match times(&one) {
                    Ok(t) => Ok(t[0]),
                    Err(KeyFault::Unparseable { value, .. }) => Err(value),
                    Err(KeyFault::Null { .. }) => Err("<null>".to_string()),
                }
            })
            .collect(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of a key's time, for receipts.
pub fn format_time(micros: i64) -> String {
    format_rfc3339_micros(micros)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, StringArray, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn packed_order_is_time_then_file_then_row() {
        let mut keys = [
            pack(5, 0, 9),
            pack(-3, 2, 0),
            pack(5, 0, 2),
            pack(5, 1, 0),
            pack(i64::MIN, 7, 7),
            pack(i64::MAX, 0, 0),
        ];
        keys.sort_unstable();
        let decoded: Vec<(i64, u32, u64)> = keys
            .iter()
            .map(|&k| (time_of(k), file_of(k), row_of(k)))
            .collect();
        assert_eq!(
            decoded,
            vec![
                (i64::MIN, 7, 7),
                (-3, 2, 0),
                (5, 0, 2),
                (5, 0, 9),
                (5, 1, 0),
                (i64::MAX, 0, 0)
            ]
        );
    }

    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let mut s = 0x1234_5678u64;
        for _ in 0..20_000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Years 68..9575: the range the 4-digit format covers.
            let micros = ((s >> 4) % 300_000_000_000_000_000) as i64 - 60_000_000_000_000_000;
            let text = format_rfc3339_micros(micros);
            assert_eq!(
                parse_canonical(text.as_bytes()).or(Some(micros)),
                Some(micros)
            );
            assert_eq!(parse_time_str(&text), Some(micros), "{text}");
        }
        for text in [
            "2024-02-29T23:59:59.999999Z",
            "2023-02-29T00:00:00.000000Z",
            "2026-01-05T08:30:13.26000Z",
            "2026-01-05T08:30:13.260000+00:00",
            "2026-01-05X08:30:13.260000Z",
            "2026-01-05T08:3a:13.260000Z",
        ] {
            assert_eq!(parse_time_str(text), parse_rfc3339_micros(text), "{text}");
        }
    }

    #[test]
    fn word_clock_equals_the_bytewise_clock_on_every_single_byte_change() {
        // A canonical string, then every byte of its clock set to every value: each
        // separator, digit and range check must decide exactly as the bytewise parser.
        let base = *b"2026-01-05T08:30:13.260000Z";
        let mut texts = vec![base.to_vec(), b"2026-01-05T23:59:59.999999Z".to_vec()];
        for at in 10..27 {
            for v in 0..=255u8 {
                let mut t = base.to_vec();
                t[at] = v;
                texts.push(t);
            }
        }
        for (h, m, s) in [
            (24, 0, 0),
            (23, 60, 0),
            (23, 59, 60),
            (19, 99, 99),
            (0, 0, 0),
        ] {
            texts.push(format!("2026-01-05T{h:02}:{m:02}:{s:02}.000001Z").into_bytes());
        }
        texts.push(b"2026-01-05T08:30:13.260000".to_vec());
        for t in &texts {
            assert_eq!(
                canonical_clock(t),
                canonical_clock_bytewise(t),
                "{}",
                String::from_utf8_lossy(t)
            );
        }
    }

    #[test]
    fn batch_parsing_with_a_remembered_date_agrees_with_one_by_one() {
        // Runs of one date with valid and broken clocks, dates that share a prefix, and
        // the general parser's forms in between.
        let mut s = 99u64;
        let mut texts = Vec::new();
        for i in 0..4000u64 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let day =
                ["2024-02-28", "2024-02-29", "2023-02-29", "2024-12-31"][(i / 7 % 4) as usize];
            let clock = match (s >> 33) % 9 {
                0 => "T24:00:00.000000Z".to_string(),
                1 => "T08:30:13.26Z".to_string(),
                2 => " 08:30:13.260000".to_string(),
                3 => "T08:30:13.260000+02:00".to_string(),
                4 => "T23:60:00.000000Z".to_string(),
                _ => format!(
                    "T{:02}:{:02}:{:02}.{:06}Z",
                    (s >> 8) % 24,
                    (s >> 16) % 60,
                    (s >> 24) % 60,
                    (s >> 40) % 1_000_000
                ),
            };
            texts.push(format!("{day}{clock}"));
        }
        let mut parser = CanonicalParser::default();
        for t in &texts {
            assert_eq!(
                parser.parse(t.as_bytes()),
                parse_canonical(t.as_bytes()),
                "{t}"
            );
            let one: ArrayRef = Arc::new(StringArray::from(vec![t.as_str()]));
            let want = parse_time_str(t);
            assert_eq!(times(&one).ok().map(|v| v[0]), want, "{t}");
        }
    }

    #[test]
    fn nanos_round_half_away_from_zero_like_duckdb() {
        // Values measured with DuckDB 2.0.1: epoch_us(CAST(make_timestamp_ns(v) AS TIMESTAMP)).
        for (ns, us) in [
            (499, 0),
            (500, 1),
            (1499, 1),
            (1500, 2),
            (2500, 3),
            (-499, 0),
            (-500, -1),
            (-1500, -2),
            (-2500, -3),
        ] {
            assert_eq!(nanos_to_micros(ns), us, "{ns}");
        }
        let a: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1500, -1500]));
        assert_eq!(times(&a).unwrap(), vec![2, -2]);
    }

    #[test]
    fn faults_name_the_row_and_value() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2026-01-05T08:30:13.260000Z"),
            Some("yesterday"),
        ]));
        assert_eq!(
            times(&a),
            Err(KeyFault::Unparseable {
                row: 1,
                value: "yesterday".into()
            })
        );
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2026-01-05T08:30:13.260000Z"),
            None,
        ]));
        assert_eq!(times(&a), Err(KeyFault::Null { row: 1 }));
        let d: DictionaryArray<Int32Type> = vec![Some("2026-01-05T08:30:13Z"), None]
            .into_iter()
            .collect();
        let a: ArrayRef = Arc::new(d);
        assert_eq!(times(&a), Err(KeyFault::Null { row: 1 }));
        let d: DictionaryArray<Int32Type> = vec!["2026-01-05T08:30:13Z", "nope", "nope"]
            .into_iter()
            .collect();
        let a: ArrayRef = Arc::new(d);
        assert_eq!(
            times(&a),
            Err(KeyFault::Unparseable {
                row: 1,
                value: "nope".into()
            })
        );
    }

    #[test]
    fn offsets_give_the_utc_instant() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            "2026-01-05T10:30:13+02:00",
            "2026-01-05T08:30:13Z",
        ]));
        let t = times(&a).unwrap();
        assert_eq!(t[0], t[1]);
    }
}
