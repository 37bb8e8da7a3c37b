//! One receipt as stored: a fixed 64-byte record, so receipt number `seq` lives at byte
//! `128 + 64 * seq` of `receipts.log` (after its 128-byte header) and is read with one
//! positioned read.
//!
//! ```text
//! 0    4  crc32c of bytes 4..64
//! 4    1  decision            1 ADMIT, 2 DUPLICATE, 3 QUARANTINE
//! 5    1  flags               1 event_id, 2 ts, 4 eb_ref, 8 quarantine record
//! 6    2  reason mask         bit per ReasonCode (check order)
//! 8    4  context id          line of contexts.jsonl: event_type, class, topic, pins
//! 12   4  eb partition
//! 16   8  ts_utc              UTC micros
//! 24   8  eb offset, or (flag 8) the quarantine record's byte position in quarantine.log
//! 32  32  event_id; a QUARANTINE without one (flag 1 clear) has its receipt_id in 32..48
//! ```
//!
//! What is not stored is a function of what is (`docs/replay.md`, "Gate state"):
//!
//! - the dedupe key: `sha256(platform_run_id:event_class:event_id)`, from the context;
//! - the receipt id: the first 16 bytes of `sha256("DECISION:event_id")` (derived on
//!   decode for DUPLICATE and QUARANTINE, when rendered for ADMIT), except for a
//!   QUARANTINE without an event id, which stores it;
//! - the payload hash: an ADMIT's and a DUPLICATE's is the one of the bus record at
//!   `eb_ref` (the original's, for a DUPLICATE: equal by definition); a QUARANTINE's is in
//!   its quarantine record. Computing it for every event was the largest of the gate's
//!   four sha256s, and storing it half of a 128-byte record (receipts log version 2 and
//!   before).
//! - the topic of `eb_ref`: the context's.
//!
//! A QUARANTINE receipt has no `eb_ref` (the event is not on the bus; the original a
//! `PAYLOAD_HASH_MISMATCH` conflicts with is named in its quarantine record), so the eb
//! offset field holds the quarantine record's position.

use crate::ids::{hex32_string, receipt_id_bytes, Hash32};
use crate::reason::Decision;

/// Bytes per receipt record.
pub const RECORD: usize = 64;

/// A position on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct EbPos {
    pub partition: u32,
    pub offset: u64,
}

/// A receipt, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub decision: Decision,
    pub reasons: u16,
    pub ctx: u32,
    pub ts: Option<i64>,
    pub event_id: Option<Hash32>,
    /// Zeros for ADMIT (derived from the event id when rendered); for the others, derived
    /// from the event id on decode, or stored when there is none.
    pub receipt_id: [u8; 16],
    /// Never with `quarantine`.
    pub eb: Option<EbPos>,
    pub quarantine: Option<u64>,
}

const F_EVENT_ID: u8 = 1;
const F_TS: u8 = 2;
const F_EB: u8 = 4;
const F_QUARANTINE: u8 = 8;

impl ReceiptRecord {
    /// Append the 64 bytes of this record. A record with both `eb` and `quarantine` is a
    /// bug of the caller: only the quarantine position is kept.
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.eb.is_none() || self.quarantine.is_none());
        let start = out.len();
        out.resize(start + RECORD, 0);
        let b = &mut out[start..];
        b[4] = self.decision.to_byte();
        let mut flags = 0;
        match &self.event_id {
            Some(id) => {
                flags |= F_EVENT_ID;
                b[32..64].copy_from_slice(id);
            }
            None => b[32..48].copy_from_slice(&self.receipt_id),
        }
        if let Some(ts) = self.ts {
            flags |= F_TS;
            b[16..24].copy_from_slice(&ts.to_le_bytes());
        }
        if let Some(q) = self.quarantine {
            flags |= F_QUARANTINE;
            b[24..32].copy_from_slice(&q.to_le_bytes());
        } else if let Some(eb) = self.eb {
            flags |= F_EB;
            b[12..16].copy_from_slice(&eb.partition.to_le_bytes());
            b[24..32].copy_from_slice(&eb.offset.to_le_bytes());
        }
        b[5] = flags;
        b[6..8].copy_from_slice(&self.reasons.to_le_bytes());
        b[8..12].copy_from_slice(&self.ctx.to_le_bytes());
        let crc = crc32c::crc32c(&b[4..]);
        b[0..4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decode 64 bytes; `Err` names what is wrong (checksum, decision byte, flags).
    pub fn decode(b: &[u8]) -> Result<ReceiptRecord, &'static str> {
        if b.len() != RECORD {
            return Err("short record");
        }
        let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if crc32c::crc32c(&b[4..]) != stored {
            return Err("checksum mismatch");
        }
        let decision = Decision::from_byte(b[4]).ok_or("unknown decision byte")?;
        let flags = b[5];
        if flags & !(F_EVENT_ID | F_TS | F_EB | F_QUARANTINE) != 0
            || flags & (F_EB | F_QUARANTINE) == F_EB | F_QUARANTINE
        {
            return Err("unknown or conflicting flags");
        }
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(x)
        };
        let event_id = (flags & F_EVENT_ID != 0).then(|| {
            let mut id = [0u8; 32];
            id.copy_from_slice(&b[32..64]);
            id
        });
        let receipt_id = match (decision, &event_id) {
            (Decision::Admit, _) => [0; 16],
            (_, Some(id)) => receipt_id_bytes(decision, &hex32_string(id)),
            (_, None) => {
                let mut rid = [0u8; 16];
                rid.copy_from_slice(&b[32..48]);
                rid
            }
        };
        Ok(ReceiptRecord {
            decision,
            reasons: u16::from_le_bytes([b[6], b[7]]),
            ctx: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            ts: (flags & F_TS != 0).then(|| u64_at(16) as i64),
            event_id,
            receipt_id,
            eb: (flags & F_EB != 0).then(|| EbPos {
                partition: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
                offset: u64_at(24),
            }),
            quarantine: (flags & F_QUARANTINE != 0).then(|| u64_at(24)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_derived_receipt_ids_and_checksum() {
        let id = [3u8; 32];
        let d = ReceiptRecord {
            decision: Decision::Duplicate,
            reasons: 0,
            ctx: 7,
            ts: Some(-5),
            event_id: Some(id),
            receipt_id: receipt_id_bytes(Decision::Duplicate, &hex32_string(&id)),
            eb: Some(EbPos {
                partition: 2,
                offset: 1 << 40,
            }),
            quarantine: None,
        };
        let mut b = Vec::new();
        d.encode(&mut b);
        assert_eq!(b.len(), RECORD);
        assert_eq!(ReceiptRecord::decode(&b), Ok(d));
        let admit = ReceiptRecord {
            decision: Decision::Admit,
            receipt_id: [0; 16],
            ..d
        };
        let mut b1 = Vec::new();
        admit.encode(&mut b1);
        assert_eq!(ReceiptRecord::decode(&b1), Ok(admit));
        // A quarantine with an event id derives its receipt id; without one, stores it.
        let q = ReceiptRecord {
            decision: Decision::Quarantine,
            reasons: 9,
            receipt_id: receipt_id_bytes(Decision::Quarantine, &hex32_string(&id)),
            eb: None,
            quarantine: Some(77),
            ..d
        };
        let mut b2 = Vec::new();
        q.encode(&mut b2);
        assert_eq!(ReceiptRecord::decode(&b2), Ok(q));
        let q2 = ReceiptRecord {
            event_id: None,
            ts: None,
            receipt_id: [5; 16],
            ..q
        };
        let mut b3 = Vec::new();
        q2.encode(&mut b3);
        assert_eq!(ReceiptRecord::decode(&b3), Ok(q2));
        b3[40] ^= 1;
        assert_eq!(ReceiptRecord::decode(&b3), Err("checksum mismatch"));
        assert!(ReceiptRecord::decode(&[0u8; RECORD]).is_err());
        // eb_ref and a quarantine position share bytes 24..32: never both.
        let mut both = b2.clone();
        both[5] |= F_EB;
        let crc = crc32c::crc32c(&both[4..]);
        both[0..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            ReceiptRecord::decode(&both),
            Err("unknown or conflicting flags")
        );
    }
}
