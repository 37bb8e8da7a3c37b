//! One receipt as stored: a fixed 128-byte record, so receipt number `seq` lives at byte
//! `128 * (seq + 1)` of `receipts.log` and is read with one positioned read.
//!
//! ```text
//! 0    4  crc32c of bytes 4..128
//! 4    1  decision            1 ADMIT, 2 DUPLICATE, 3 QUARANTINE
//! 5    1  flags               1 event_id, 2 ts, 4 eb_ref, 8 quarantine record,
//!                             16 payload hash not stored (version 2; ADMIT only)
//! 6    2  reason mask         bit per ReasonCode (check order)
//! 8    4  context id          line of contexts.jsonl: event_type, class, topic, pins
//! 12   4  eb partition
//! 16   8  ts_utc              UTC micros
//! 24   8  eb offset
//! 32   8  quarantine position byte position of the record in quarantine.log
//! 40  16  receipt_id          first 16 bytes of sha256("DECISION:event_id"); zeros for
//!                             ADMIT (derived from event_id when rendered)
//! 56  32  event_id
//! 88  32  payload_hash        zeros with flag 16
//! 120  8  zeros (reserved)
//! ```
//!
//! An ADMIT receipt does not store its payload hash (flag 16): the bus record at its
//! `eb_ref` holds the payload, and the hash is a function of it (computed by whoever
//! renders the receipt, and by the recorder when a later event has the same dedupe key).
//! Computing it for every event was the largest of the gate's four sha256s. Version 1
//! logs never set flag 16 and read as before.
//!
//! The dedupe key is not stored: it is `sha256(platform_run_id:event_class:event_id)`,
//! recomputed from the context when a receipt is rendered. The topic of `eb_ref` is the
//! context's topic.

use crate::ids::Hash32;
use crate::reason::Decision;

/// Bytes per receipt record.
pub const RECORD: usize = 128;

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
    /// `None`: not stored, the bus record's (ADMIT receipts).
    pub payload_hash: Option<Hash32>,
    pub receipt_id: [u8; 16],
    pub eb: Option<EbPos>,
    pub quarantine: Option<u64>,
}

const F_EVENT_ID: u8 = 1;
const F_TS: u8 = 2;
const F_EB: u8 = 4;
const F_QUARANTINE: u8 = 8;
const F_HASH_ON_BUS: u8 = 16;

impl ReceiptRecord {
    /// Append the 128 bytes of this record.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + RECORD, 0);
        let b = &mut out[start..];
        b[4] = self.decision.to_byte();
        let mut flags = 0;
        if let Some(id) = &self.event_id {
            flags |= F_EVENT_ID;
            b[56..88].copy_from_slice(id);
        }
        if let Some(ts) = self.ts {
            flags |= F_TS;
            b[16..24].copy_from_slice(&ts.to_le_bytes());
        }
        if let Some(eb) = self.eb {
            flags |= F_EB;
            b[12..16].copy_from_slice(&eb.partition.to_le_bytes());
            b[24..32].copy_from_slice(&eb.offset.to_le_bytes());
        }
        if let Some(q) = self.quarantine {
            flags |= F_QUARANTINE;
            b[32..40].copy_from_slice(&q.to_le_bytes());
        }
        match &self.payload_hash {
            Some(h) => b[88..120].copy_from_slice(h),
            None => flags |= F_HASH_ON_BUS,
        }
        b[5] = flags;
        b[6..8].copy_from_slice(&self.reasons.to_le_bytes());
        b[8..12].copy_from_slice(&self.ctx.to_le_bytes());
        b[40..56].copy_from_slice(&self.receipt_id);
        let crc = crc32c::crc32c(&b[4..]);
        b[0..4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decode 128 bytes; `Err` names what is wrong (checksum, decision byte).
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
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(x)
        };
        let mut event_id = [0u8; 32];
        event_id.copy_from_slice(&b[56..88]);
        let mut payload_hash = [0u8; 32];
        payload_hash.copy_from_slice(&b[88..120]);
        let mut receipt_id = [0u8; 16];
        receipt_id.copy_from_slice(&b[40..56]);
        Ok(ReceiptRecord {
            decision,
            reasons: u16::from_le_bytes([b[6], b[7]]),
            ctx: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            ts: (flags & F_TS != 0).then(|| u64_at(16) as i64),
            event_id: (flags & F_EVENT_ID != 0).then_some(event_id),
            payload_hash: (flags & F_HASH_ON_BUS == 0).then_some(payload_hash),
            receipt_id,
            eb: (flags & F_EB != 0).then(|| EbPos {
                partition: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
                offset: u64_at(24),
            }),
            quarantine: (flags & F_QUARANTINE != 0).then(|| u64_at(32)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checksum() {
        let r = ReceiptRecord {
            decision: Decision::Duplicate,
            reasons: 0,
            ctx: 7,
            ts: Some(-5),
            event_id: Some([3; 32]),
            payload_hash: Some([4; 32]),
            receipt_id: [5; 16],
            eb: Some(EbPos {
                partition: 2,
                offset: 1 << 40,
            }),
            quarantine: None,
        };
        let mut b = Vec::new();
        r.encode(&mut b);
        assert_eq!(b.len(), RECORD);
        assert_eq!(ReceiptRecord::decode(&b), Ok(r));
        let q = ReceiptRecord {
            decision: Decision::Quarantine,
            reasons: 9,
            event_id: None,
            ts: None,
            eb: None,
            quarantine: Some(77),
            ..r
        };
        let a = ReceiptRecord {
            decision: Decision::Admit,
            payload_hash: None,
            ..r
        };
        let mut b3 = Vec::new();
        a.encode(&mut b3);
        assert_eq!(b3[5] & F_HASH_ON_BUS, F_HASH_ON_BUS);
        assert_eq!(&b3[88..120], &[0u8; 32]);
        assert_eq!(ReceiptRecord::decode(&b3), Ok(a));
        let mut b2 = Vec::new();
        q.encode(&mut b2);
        assert_eq!(ReceiptRecord::decode(&b2), Ok(q));
        b2[100] ^= 1;
        assert_eq!(ReceiptRecord::decode(&b2), Err("checksum mismatch"));
        assert!(ReceiptRecord::decode(&[0u8; RECORD]).is_err());
    }
}
