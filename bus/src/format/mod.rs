//! The bytes on disk, exactly as `docs/format.md` ("File bus format") specifies them.
//!
//! This module is pure: it turns records into batch bytes and bytes back into records, and
//! knows nothing about files, locks or partitions (that is `segment/`). Every decoder here
//! takes untrusted bytes and returns a [`Fault`] instead of panicking or over-allocating.
//!
//! - [`varint`]: LEB128 and zigzag integers.
//! - [`batch`]: the 48-byte batch header, the CRC, framing checks ([`batch::frame_length`],
//!   [`batch::verify`]).
//! - [`record`]: records in and out ([`Record`] to write, [`Batch`]/[`RecordView`] to read).
//! - [`index`]: the offset and time index file layouts.
//! - [`meta`]: the JSON metadata files (`bus.json`, `topic.json`, group offsets).

pub mod batch;
pub mod index;
pub mod meta;
pub mod record;
pub mod varint;

pub use batch::{BatchHeader, Compression};
pub use record::{Batch, Header, OwnedRecord, Record, RecordView};

/// Batch magic, "SBUS".
pub const BATCH_MAGIC: [u8; 4] = *b"SBUS";
/// The batch format version this build writes and reads.
pub const BATCH_VERSION: u16 = 1;
/// Bytes of a batch header (version 1).
pub const BATCH_HEADER_LEN: usize = 48;
/// Bytes every batch version starts with (magic, version, attributes, crc, length).
pub const FRAME_PREFIX_LEN: usize = 16;
/// Smallest record encoding: six one-byte fields.
pub const MIN_RECORD_LEN: usize = 6;
/// Cap on a batch's size on disk.
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// Cap on a batch's records section after decompression.
pub const MAX_RECORDS_BYTES: usize = 64 << 20;

/// Why some bytes are not a good batch. Pure data: callers add the file and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fewer bytes than the frame needs (`need` in total): at the end of a file this is a
    /// torn or still-being-written batch.
    Short { need: usize, have: usize },
    /// The first four bytes are not `SBUS`.
    BadMagic,
    /// `batch_length` below the minimum or above [`MAX_BATCH_BYTES`].
    BadLength(u32),
    /// The CRC does not match.
    BadCrc { stored: u32, computed: u32 },
    /// An intact batch (CRC good) of a version this build cannot decode.
    UnsupportedVersion(u16),
    /// The CRC is good but the content is inconsistent (writer bug or foreign file).
    Invalid(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Short { need, have } => {
                write!(f, "incomplete batch: {have} of {need} bytes present")
            }
            Fault::BadMagic => f.write_str("no batch magic (SBUS)"),
            Fault::BadLength(n) => write!(f, "impossible batch length {n}"),
            Fault::BadCrc { stored, computed } => write!(
                f,
                "CRC-32C mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Fault::UnsupportedVersion(v) => write!(f, "unsupported batch version {v}"),
            Fault::Invalid(why) => write!(f, "invalid batch content: {why}"),
        }
    }
}
