//! The record-batch frame: the 48-byte header, its CRC-32C, and the checks that decide
//! whether some bytes are a good batch.
//!
//! ```text
//!  0      4    6     8     12       16           24      28       32        40       48
//!  | SBUS | ver| attr| crc | length | base_offset | count | rec_len | first_ts | max_ts | records...
//!
//!  crc = CRC-32C of records...  then of bytes [0, 8)  then of bytes [12, 48)
//!        (every byte of the batch except the crc field, the records section first)
//! ```
//!
//! The records section comes first in the CRC so that the expensive part runs outside the
//! partition lock: writers encode a batch with base offset 0 and keep [`body_crc`]; under
//! the lock, [`stamp`] writes the real base offset and finishes the CRC over the 44 header
//! bytes only.

use super::{
    Fault, BATCH_HEADER_LEN, BATCH_MAGIC, BATCH_VERSION, FRAME_PREFIX_LEN, MAX_BATCH_BYTES,
    MAX_RECORDS_BYTES, MIN_RECORD_LEN,
};

/// How a batch's records section is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Zstd,
}

impl Compression {
    fn bits(self) -> u16 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }

    /// Name as used in `topic.json` and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
        }
    }
}

/// The decoded header of a version-1 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub compression: Compression,
    pub crc: u32,
    pub batch_length: u32,
    pub base_offset: u64,
    pub record_count: u32,
    pub records_length: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
}

impl BatchHeader {
    /// The offset after the batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + self.record_count as u64
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> u64 {
        self.next_offset() - 1
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Write a version-1 header with base offset 0 and CRC 0 into `out[..48]`.
pub fn encode_header(out: &mut [u8], h: &BatchHeader) {
    out[0..4].copy_from_slice(&BATCH_MAGIC);
    out[4..6].copy_from_slice(&BATCH_VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&h.compression.bits().to_le_bytes());
    out[8..12].copy_from_slice(&0u32.to_le_bytes());
    out[12..16].copy_from_slice(&h.batch_length.to_le_bytes());
    out[16..24].copy_from_slice(&0u64.to_le_bytes());
    out[24..28].copy_from_slice(&h.record_count.to_le_bytes());
    out[28..32].copy_from_slice(&h.records_length.to_le_bytes());
    out[32..40].copy_from_slice(&h.first_timestamp.to_le_bytes());
    out[40..48].copy_from_slice(&h.max_timestamp.to_le_bytes());
}

/// CRC-32C of the records section (`[48, len)`), computed once per batch when encoding.
pub fn body_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[BATCH_HEADER_LEN..])
}

/// Finish the CRC from the body's CRC and the header bytes (all but the crc field).
fn finish_crc(body_crc: u32, batch: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(body_crc, &batch[0..8]);
    crc32c::crc32c_append(crc, &batch[12..BATCH_HEADER_LEN])
}

/// Write `base_offset` and the final CRC into an encoded batch, given its [`body_crc`].
pub fn stamp(batch: &mut [u8], base_offset: u64, body_crc: u32) {
    batch[16..24].copy_from_slice(&base_offset.to_le_bytes());
    let crc = finish_crc(body_crc, batch);
    batch[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// The CRC a batch should carry (`docs/format.md`): over `[48, len)`, then `[0, 8)`, then
/// `[12, 48)`. Frames shorter than a version-1 header are covered from byte 16 on, then
/// `[0, 8)` and `[12, 16)` (never valid in version 1, but checkable for any version).
pub fn compute_crc(batch: &[u8]) -> u32 {
    if batch.len() < BATCH_HEADER_LEN {
        let crc = crc32c::crc32c(&batch[FRAME_PREFIX_LEN..]);
        let crc = crc32c::crc32c_append(crc, &batch[0..8]);
        return crc32c::crc32c_append(crc, &batch[12..FRAME_PREFIX_LEN]);
    }
    finish_crc(body_crc(batch), batch)
}

/// From the first bytes of a frame (any version), the batch's total length.
///
/// `Short` if fewer than 16 bytes are given; `BadMagic`/`BadLength` if they cannot start a
/// batch. The length is capped here, before any caller allocates for it.
pub fn frame_length(prefix: &[u8]) -> Result<usize, Fault> {
    if prefix.len() < FRAME_PREFIX_LEN {
        return Err(Fault::Short {
            need: FRAME_PREFIX_LEN,
            have: prefix.len(),
        });
    }
    if prefix[0..4] != BATCH_MAGIC {
        return Err(Fault::BadMagic);
    }
    let len = u32_at(prefix, 12);
    // Every version's header is at least 16 bytes; version 1's length floor is checked in
    // `verify` once the version is known to be 1.
    if (len as usize) < FRAME_PREFIX_LEN || len as usize > MAX_BATCH_BYTES {
        return Err(Fault::BadLength(len));
    }
    Ok(len as usize)
}

/// Check a whole frame (`batch.len()` = its [`frame_length`]) and decode its header.
///
/// Order matters: the CRC is checked before the version, so a damaged byte in the version
/// field reads as damage, and an intact batch of a newer version as `UnsupportedVersion`.
pub fn verify(batch: &[u8]) -> Result<BatchHeader, Fault> {
    let len = frame_length(batch)?;
    if batch.len() < len {
        return Err(Fault::Short {
            need: len,
            have: batch.len(),
        });
    }
    let batch = &batch[..len];
    let stored = u32_at(batch, 8);
    let computed = compute_crc(batch);
    if stored != computed {
        return Err(Fault::BadCrc { stored, computed });
    }
    let version = u16_at(batch, 4);
    if version != BATCH_VERSION {
        return Err(Fault::UnsupportedVersion(version));
    }
    if len < BATCH_HEADER_LEN + MIN_RECORD_LEN {
        return Err(Fault::BadLength(len as u32));
    }
    let attributes = u16_at(batch, 6);
    let compression = match attributes {
        0 => Compression::None,
        1 => Compression::Zstd,
        // Unknown compression or reserved bits set in an intact batch: written by a newer
        // writer, so it is a version matter, not damage.
        _ => return Err(Fault::UnsupportedVersion(version)),
    };
    let h = BatchHeader {
        compression,
        crc: stored,
        batch_length: len as u32,
        base_offset: u64_at(batch, 16),
        record_count: u32_at(batch, 24),
        records_length: u32_at(batch, 28),
        first_timestamp: u64_at(batch, 32) as i64,
        max_timestamp: u64_at(batch, 40) as i64,
    };
    let body = len - BATCH_HEADER_LEN;
    if h.record_count == 0 {
        return Err(Fault::Invalid("record count 0".into()));
    }
    if h.records_length as usize > MAX_RECORDS_BYTES {
        return Err(Fault::Invalid(format!(
            "records length {} over the cap",
            h.records_length
        )));
    }
    if compression == Compression::None && h.records_length as usize != body {
        return Err(Fault::Invalid(format!(
            "records length {} but {body} bytes follow the header",
            h.records_length
        )));
    }
    if (h.record_count as u64) * (MIN_RECORD_LEN as u64) > h.records_length as u64 {
        return Err(Fault::Invalid(format!(
            "{} records cannot fit in {} bytes",
            h.record_count, h.records_length
        )));
    }
    if h.base_offset.checked_add(h.record_count as u64).is_none() {
        return Err(Fault::Invalid("offsets overflow u64".into()));
    }
    if h.max_timestamp < h.first_timestamp {
        return Err(Fault::Invalid("max timestamp below first timestamp".into()));
    }
    Ok(h)
}
