//! A hand-written JSON writer for the hot path, byte-identical to `serde_json`'s compact
//! output (and so to `sluice_storage::view::canonical_json` when keys are written sorted):
//!
//! - strings: `"` and `\` escaped, control bytes as `\b \t \n \f \r` or `\u00xx` (lowercase
//!   hex), everything else (including `/`, DEL and non-ASCII) verbatim;
//! - integers: decimal; floats: `serde_json`'s own formatter, non-finite floats as `null`
//!   (what `serde_json::Value` holds for them);
//! - no whitespace.
//!
//! Plus [`top_level_span`], which finds the bytes of one top-level member's value without
//! parsing the rest (how reconciliation re-hashes a stored payload byte for byte).

use serde_json::ser::Formatter;

/// What each byte needs when it appears inside a string: 0 = nothing.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Append `s` as a JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append an unsigned integer in decimal.
///
/// The digits are written straight into the vector's spare capacity, last first: a
/// stack buffer copied with `extend_from_slice` cost a `memcpy` call per number, ~1.5%
/// of the gate's deciding thread (every envelope holds several numbers).
#[inline]
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let digits = v.checked_ilog10().map_or(1, |l| l as usize + 1);
    out.reserve(digits);
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..digits];
    for slot in spare.iter_mut().rev() {
        slot.write(b'0' + (v % 10) as u8);
        v /= 10;
    }
    // SAFETY: `reserve` made room for `digits` more bytes, and the loop above initialised
    // exactly the first `digits` bytes of the spare capacity.
    unsafe { out.set_len(start + digits) };
}

/// Append a signed integer in decimal.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Append a float as `serde_json` does; non-finite values become `null`.
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        // Writing into a Vec cannot fail.
        let _ = serde_json::ser::CompactFormatter.write_f64(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Append `true` or `false`.
#[inline]
pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// `"name":` with the name escaped, for precomputed keys.
pub fn key_bytes(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 3);
    write_str(&mut k, name);
    k.push(b':');
    k
}

/// Skip a JSON string starting at `i` (a `"`); returns the index after its closing quote.
/// Runs of plain bytes are skipped eight at a time (the envelopes' strings are mostly long
/// hex ids and pins).
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            if has_byte(w, b'"') | has_byte(w, b'\\') != 0 {
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Non-zero iff some byte of `w` equals `c` (the classic zero-byte test on `w ^ c…c`:
/// exact when no byte matches, which is all the caller relies on).
#[inline]
fn has_byte(w: u64, c: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Skip one JSON value starting at `i`; returns the index after it. Only the structure is
/// checked (strings, brackets), which is all a span needs.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\t' | b'\r') {
        i += 1;
    }
    i
}

/// The byte range of the value of top-level member `key` in the JSON object `b`
/// (`None` if `b` is not an object or has no such member). Keys are compared as raw bytes,
/// so `key` must not need escaping.
pub fn top_level_span(b: &[u8], key: &str) -> Option<std::ops::Range<usize>> {
    let [span] = top_level_spans(b, [key]);
    span
}

/// [`top_level_span`] of several keys in one pass over `b` (the first occurrence of each;
/// the scan stops once every key is found). A member that cannot be parsed ends the scan:
/// keys not found before it are `None`.
pub fn top_level_spans<const N: usize>(
    b: &[u8],
    keys: [&str; N],
) -> [Option<std::ops::Range<usize>>; N] {
    let mut found: [Option<std::ops::Range<usize>>; N] = std::array::from_fn(|_| None);
    let mut missing = N;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return found;
    }
    i = skip_ws(b, i + 1);
    while missing > 0 && b.get(i) == Some(&b'"') {
        let Some(key_end) = skip_string(b, i) else {
            break;
        };
        let name = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            break;
        }
        let vstart = skip_ws(b, i + 1);
        let Some(vend) = skip_value(b, vstart) else {
            break;
        };
        for (k, slot) in keys.iter().zip(found.iter_mut()) {
            if slot.is_none() && name == k.as_bytes() {
                *slot = Some(vstart..vend);
                missing -= 1;
            }
        }
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            _ => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_exactly_like_serde_json() {
        // Every byte value as a one-char string (non-ASCII as a UTF-8 char), plus mixes.
        let mut cases: Vec<String> = (0u32..=0x7f)
            .map(|c| char::from_u32(c).unwrap().to_string())
            .collect();
        cases.extend(
            [
                "",
                "plain",
                "a\"b\\c/d",
                "tab\there",
                "é€😀",
                "\u{7f}\u{1f}x",
            ]
            .map(String::from),
        );
        for s in cases {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn numbers_format_exactly_like_serde_json() {
        for v in [0i64, 1, -1, 42, i64::MAX, i64::MIN, 1_000_000_007] {
            let mut ours = Vec::new();
            write_i64(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap());
        }
        // Every digit count, at its edges, appended after existing bytes.
        let mut edges = vec![0u64, u64::MAX];
        for k in 0..20 {
            let p = 10u64.pow(k);
            edges.extend([p - 1, p, p + 1, p.saturating_mul(7)]);
        }
        for v in edges {
            let mut ours = b"x:".to_vec();
            write_u64(&mut ours, v);
            assert_eq!(ours, format!("x:{v}").into_bytes(), "{v}");
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            1.25,
            1e16,
            1e-7,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                floats.push(f);
            }
        }
        for v in floats {
            let mut ours = Vec::new();
            write_f64(&mut ours, v);
            assert_eq!(
                ours,
                serde_json::to_vec(&serde_json::Value::from(v)).unwrap(),
                "{v:e}"
            );
        }
        let mut n = Vec::new();
        write_f64(&mut n, f64::NAN);
        write_f64(&mut n, f64::INFINITY);
        assert_eq!(n, b"nullnull");
        assert_eq!(serde_json::Value::from(f64::NAN), serde_json::Value::Null);
    }

    #[test]
    fn spans_find_top_level_members_only() {
        let doc = br#"{"a":{"payload":1},"s":"x\"}","payload":{"k":[1,{"z":"}"}]},"z":true}"#;
        let span = top_level_span(doc, "payload").unwrap();
        assert_eq!(&doc[span], br#"{"k":[1,{"z":"}"}]}"#);
        assert_eq!(&doc[top_level_span(doc, "z").unwrap()], b"true");
        assert_eq!(top_level_span(doc, "missing"), None);
        assert_eq!(top_level_span(b"[1]", "a"), None);
        assert_eq!(top_level_span(b"{\"a\":", "a"), None);
    }

    #[test]
    fn spans_in_one_pass_equal_one_key_at_a_time() {
        let docs: [&[u8]; 6] = [
            br#"{"a":1,"b":{"a":2,"c":[1,"x"]},"c":"s\"q","a":3}"#,
            br#" { "c" : null , "b":true }"#,
            br#"{"a":1,"b":"#,
            br#"[1,2]"#,
            br#"{}"#,
            br#"{"b":{"x":1}, "a":"z"} trailing"#,
        ];
        for d in docs {
            let one: Vec<_> = ["a", "b", "c", "d"]
                .iter()
                .map(|k| top_level_span(d, k))
                .collect();
            let all = top_level_spans(d, ["a", "b", "c", "d"]);
            assert_eq!(one, all.to_vec(), "{}", String::from_utf8_lossy(d));
        }
        let d = br#"{"a":1,"b":{"a":2},"c":"v"}"#;
        let [c, a] = top_level_spans(d, ["c", "a"]);
        assert_eq!(c.map(|r| &d[r]), Some(&br#""v""#[..]));
        assert_eq!(a.map(|r| &d[r]), Some(&b"1"[..]));
    }

    #[test]
    fn strings_are_skipped_whatever_their_length_and_escapes() {
        // Escaped quotes, escaped backslashes and other escapes at every position relative
        // to the 8-byte steps; serde_json agrees that each is one string.
        for len in 0..40 {
            for at in 0..=len {
                for special in [&br#"\""#[..], &br#"\\"#[..], &br#"\n"#[..]] {
                    let mut body = vec![b'a'; len];
                    body.splice(at..at, special.iter().copied());
                    let mut doc = b"\"".to_vec();
                    doc.extend_from_slice(&body);
                    doc.push(b'"');
                    let string_end = doc.len();
                    doc.extend_from_slice(b",1");
                    assert_eq!(skip_string(&doc, 0), Some(string_end));
                    assert!(serde_json::from_slice::<String>(&doc[..string_end]).is_ok());
                }
            }
            let mut open = b"\"".to_vec();
            open.extend(std::iter::repeat_n(b'x', len));
            assert_eq!(skip_string(&open, 0), None, "unterminated, {len} bytes");
            open.extend_from_slice(br#"\""#);
            assert_eq!(skip_string(&open, 0), None, "ends in an escaped quote");
        }
    }
}
