//! Byte layout of the sparse offset index (`.index`) and time index (`.timeindex`).
//!
//! ```text
//! header: magic(4) version(u16) entry_size(u16) base_offset(u64)     = 16 bytes
//! .index entries:     relative_offset(u32) position(u32)              =  8 bytes each
//! .timeindex entries: timestamp(i64) relative_offset(u32)             = 12 bytes each
//! ```
//!
//! Decoding only parses; whether the entries make sense for a log is `segment::index`.

/// Offset index magic.
pub const OFFSET_INDEX_MAGIC: [u8; 4] = *b"SBIX";
/// Time index magic.
pub const TIME_INDEX_MAGIC: [u8; 4] = *b"SBTX";
/// Index format version.
pub const INDEX_VERSION: u16 = 1;
/// Header bytes of either index.
pub const INDEX_HEADER_LEN: usize = 16;
/// Bytes of an offset-index entry.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes of a time-index entry.
pub const TIME_ENTRY_LEN: usize = 12;
/// Cap on an index file's size (a 2 GiB segment with 4 KiB intervals needs 4 MiB).
pub const MAX_INDEX_BYTES: u64 = 64 << 20;

/// Which of the two indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Offset,
    Time,
}

impl IndexKind {
    pub fn magic(self) -> [u8; 4] {
        match self {
            IndexKind::Offset => OFFSET_INDEX_MAGIC,
            IndexKind::Time => TIME_INDEX_MAGIC,
        }
    }

    pub fn entry_len(self) -> usize {
        match self {
            IndexKind::Offset => OFFSET_ENTRY_LEN,
            IndexKind::Time => TIME_ENTRY_LEN,
        }
    }

    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            IndexKind::Offset => "index",
            IndexKind::Time => "timeindex",
        }
    }
}

/// An offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// A time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// The 16-byte header.
pub fn encode_header(kind: IndexKind, base_offset: u64) -> [u8; INDEX_HEADER_LEN] {
    let mut h = [0u8; INDEX_HEADER_LEN];
    h[0..4].copy_from_slice(&kind.magic());
    h[4..6].copy_from_slice(&INDEX_VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(kind.entry_len() as u16).to_le_bytes());
    h[8..16].copy_from_slice(&base_offset.to_le_bytes());
    h
}

/// Append an offset entry's bytes.
pub fn put_offset_entry(out: &mut Vec<u8>, e: OffsetEntry) {
    out.extend_from_slice(&e.relative_offset.to_le_bytes());
    out.extend_from_slice(&e.position.to_le_bytes());
}

/// Append a time entry's bytes.
pub fn put_time_entry(out: &mut Vec<u8>, e: TimeEntry) {
    out.extend_from_slice(&e.timestamp.to_le_bytes());
    out.extend_from_slice(&e.relative_offset.to_le_bytes());
}

/// Why an index file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFault {
    Header(&'static str),
    Version(u16),
    PartialEntry,
}

impl std::fmt::Display for IndexFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexFault::Header(why) => write!(f, "bad header: {why}"),
            IndexFault::Version(v) => write!(f, "unknown index version {v}"),
            IndexFault::PartialEntry => f.write_str("ends in a partial entry"),
        }
    }
}

/// Check the header; return the entry bytes (whole entries only). With `allow_partial`, a
/// trailing partial entry (an append in progress) is ignored instead of refused.
pub fn entries_of(
    kind: IndexKind,
    base_offset: u64,
    bytes: &[u8],
    allow_partial: bool,
) -> Result<&[u8], IndexFault> {
    if bytes.len() < INDEX_HEADER_LEN {
        return Err(IndexFault::Header("shorter than the header"));
    }
    if bytes[0..4] != kind.magic() {
        return Err(IndexFault::Header("wrong magic"));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != INDEX_VERSION {
        return Err(IndexFault::Version(version));
    }
    if u16::from_le_bytes([bytes[6], bytes[7]]) as usize != kind.entry_len() {
        return Err(IndexFault::Header("wrong entry size"));
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[8..16]);
    if u64::from_le_bytes(b) != base_offset {
        return Err(IndexFault::Header("base offset differs from the file name"));
    }
    let body = &bytes[INDEX_HEADER_LEN..];
    let whole = body.len() - body.len() % kind.entry_len();
    if whole != body.len() && !allow_partial {
        return Err(IndexFault::PartialEntry);
    }
    Ok(&body[..whole])
}

/// Parse offset entries (whole entries only).
pub fn offset_entries(body: &[u8]) -> impl Iterator<Item = OffsetEntry> + '_ {
    body.chunks_exact(OFFSET_ENTRY_LEN).map(|c| OffsetEntry {
        relative_offset: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        position: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
    })
}

/// Parse time entries (whole entries only).
pub fn time_entries(body: &[u8]) -> impl Iterator<Item = TimeEntry> + '_ {
    body.chunks_exact(TIME_ENTRY_LEN).map(|c| {
        let mut t = [0u8; 8];
        t.copy_from_slice(&c[0..8]);
        TimeEntry {
            timestamp: i64::from_le_bytes(t),
            relative_offset: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
        }
    })
}
