//! The platform's identifiers, each one formula (`shared/CONTEXT.md`):
//!
//! | id | formula |
//! |---|---|
//! | `event_id` | hex sha256 of `output_id\|pk1\|pk2\|…\|manifest_fingerprint\|parameter_hash\|seed\|scenario_id` |
//! | dedupe key | hex sha256 of `platform_run_id:event_class:event_id` |
//! | payload hash | hex sha256 of canonical JSON `{"event_type":…,"payload":…,"schema_version":…}` |
//! | `receipt_id` | first 32 hex of sha256 of `DECISION:event_id` |
//! | partition | `u64::from_be_bytes(sha256(key)[0..8]) % partitions`, key = text of the first present partition-key field |
//!
//! Values enter the strings as decimal text (ints), their text (strings), `true`/`false`.
//! Hashes are kept as 32 raw bytes in memory and on disk and rendered as lowercase hex.

use sha2::{Digest, Sha256};

use crate::json;
use crate::reason::Decision;

/// 32 raw bytes of a sha256.
pub type Hash32 = [u8; 32];

/// The envelope's `schema_version`.
pub const SCHEMA_VERSION: &str = "v1";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of 32 bytes, without allocating.
pub fn hex32(h: &Hash32) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in h.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// Lowercase hex of 32 bytes as a `String`.
pub fn hex32_string(h: &Hash32) -> String {
    // hex32 only produces ASCII.
    String::from_utf8_lossy(&hex32(h)).into_owned()
}

/// Parse `2 * N` lowercase hex digits (the only form the platform writes).
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// Parse 64 lowercase hex digits.
pub fn parse_hex32(s: &str) -> Option<Hash32> {
    parse_hex::<32>(s)
}

/// `event_id` from its parts (the reference form; the envelope builder hashes the same
/// bytes, two events at a time: `crate::sha256x2`).
pub fn event_id(output_id: &str, primary_key: &[&str], pins: [&str; 4]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(output_id.as_bytes());
    for v in primary_key.iter().chain(pins.iter()) {
        h.update(b"|");
        h.update(v.as_bytes());
    }
    h.finalize().into()
}

/// The mask of an event class in the dedupe index's keys ([`index_key`]):
/// `sha256("sluice-dedupe-index-v2:" + event_class)`, computed once per known class.
pub fn class_mask(event_class: &str) -> Hash32 {
    fn compute(event_class: &str) -> Hash32 {
        let mut h = Sha256::new();
        h.update(b"sluice-dedupe-index-v2:");
        h.update(event_class.as_bytes());
        h.finalize().into()
    }
    static KNOWN: std::sync::OnceLock<Vec<(&'static str, Hash32)>> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        sluice_storage::outputs::OUTPUTS
            .iter()
            .map(|o| (o.event_class, compute(o.event_class)))
            .collect()
    });
    match known.iter().find(|(c, _)| *c == event_class) {
        Some((_, mask)) => *mask,
        None => compute(event_class),
    }
}

/// The key of an event in the gate's dedupe index: its event id XOR its class's mask.
///
/// The contract's dedupe key, `sha256(platform_run_id:event_class:event_id)` (rendered in
/// receipts, [`dedupe_key`]), costs two SHA-256 blocks per event; inside one gate (one
/// `platform_run_id`) this key identifies the same events: for one class the XOR is a
/// bijection, and two events of different classes get the same key only if their event
/// ids (sha256 outputs) differ by exactly the two masks' XOR, as likely as a sha256
/// collision, which the contract's key relies on too.
pub fn index_key(mask: &Hash32, event_id: &Hash32) -> Hash32 {
    std::array::from_fn(|i| event_id[i] ^ mask[i])
}

/// The dedupe key of an event (the contract's: rendered in receipts).
pub fn dedupe_key(platform_run_id: &str, event_class: &str, event_id: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(platform_run_id.as_bytes());
    h.update(b":");
    h.update(event_class.as_bytes());
    h.update(b":");
    h.update(hex32(event_id));
    h.finalize().into()
}

/// The payload hash, given the payload's canonical JSON bytes.
pub fn payload_hash(event_type: &str, canonical_payload: &[u8]) -> Hash32 {
    let mut prefix = Vec::with_capacity(event_type.len() + 32);
    prefix.extend_from_slice(b"{\"event_type\":");
    json::write_str(&mut prefix, event_type);
    prefix.extend_from_slice(b",\"payload\":");
    payload_hash_with_prefix(&prefix, canonical_payload)
}

/// The payload hash with the constant prefix `{"event_type":"…","payload":` precomputed.
pub fn payload_hash_with_prefix(prefix: &[u8], canonical_payload: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(canonical_payload);
    h.update(b",\"schema_version\":\"v1\"}");
    h.finalize().into()
}

/// The 16 bytes whose hex is the `receipt_id` of `decision` for an event id text.
pub fn receipt_id_bytes(decision: Decision, event_id_text: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(decision.as_str().as_bytes());
    h.update(b":");
    h.update(event_id_text.as_bytes());
    let full: Hash32 = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// `receipt_id` as 32 lowercase hex digits.
pub fn receipt_id(decision: Decision, event_id_text: &str) -> String {
    hex16(&receipt_id_bytes(decision, event_id_text))
}

/// Lowercase hex of 16 bytes.
pub fn hex16(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// Parse 32 lowercase hex digits.
pub fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    parse_hex::<16>(s)
}

/// The partition of a key text among `partitions` (> 0).
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    let d: Hash32 = Sha256::digest(key).into();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(first) % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::view::sha256_hex;

    #[test]
    fn event_id_is_sha256_of_the_documented_string() {
        let id = event_id(
            "s3_event_stream_with_fraud_6B",
            &["17", "2"],
            ["mf", "ph", "42", "baseline_v1"],
        );
        let expected = sha256_hex(b"s3_event_stream_with_fraud_6B|17|2|mf|ph|42|baseline_v1");
        assert_eq!(hex32_string(&id), expected);
    }

    #[test]
    fn dedupe_key_and_receipt_id_follow_the_contract() {
        let eid = parse_hex32(&"ab".repeat(32)).unwrap();
        let dk = dedupe_key("platform_20260101T000000Z", "traffic_fraud", &eid);
        let expected = sha256_hex(
            format!(
                "platform_20260101T000000Z:traffic_fraud:{}",
                "ab".repeat(32)
            )
            .as_bytes(),
        );
        assert_eq!(hex32_string(&dk), expected);
        let rid = receipt_id(Decision::Duplicate, &"ab".repeat(32));
        assert_eq!(
            rid,
            sha256_hex(format!("DUPLICATE:{}", "ab".repeat(32)).as_bytes())[..32]
        );
        assert_eq!(parse_hex16(&rid).map(|b| hex16(&b)), Some(rid));
    }

    #[test]
    fn payload_hash_matches_canonical_json() {
        let payload = br#"{"a":1,"b":"x"}"#;
        let v = serde_json::json!({
            "schema_version": "v1",
            "payload": {"b": "x", "a": 1},
            "event_type": "arrival_events_5B",
        });
        let canon = sluice_storage::view::canonical_json(&v);
        assert_eq!(
            hex32_string(&payload_hash("arrival_events_5B", payload)),
            sha256_hex(canon.as_bytes())
        );
    }

    #[test]
    fn hex_parsing_is_strict() {
        let h = [7u8; 32];
        assert_eq!(parse_hex32(&hex32_string(&h)), Some(h));
        assert_eq!(parse_hex32(&"AB".repeat(32)), None);
        assert_eq!(parse_hex32("abc"), None);
    }

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            let p = partition_for(i.to_string().as_bytes(), 4);
            counts[p as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 850), "{counts:?}");
        let d = Sha256::digest(b"17");
        let expected = u64::from_be_bytes(d[..8].try_into().unwrap()) % 7;
        assert_eq!(partition_for(b"17", 7) as u64, expected);
    }
}
