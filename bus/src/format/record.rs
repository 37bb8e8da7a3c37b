//! Records in and out of the records section of a batch.
//!
//! Writing: [`BatchEncoder::encode`] turns a slice of borrowed [`Record`]s into one
//! contiguous buffer of finished batch frames (split at a target size), ready for a single
//! `write`; only the base offsets and CRCs are left to stamp under the partition lock.
//!
//! Reading: [`Batch::decode`] checks and indexes every record of a verified frame once
//! (decompressing into a reused buffer of exactly `records_length` bytes), after which
//! [`Batch::records`] hands out borrowed [`RecordView`]s without further checks or copies.

use super::batch::{self, BatchHeader, Compression};
use super::varint::{put_svarint, put_uvarint, uvarint_len, zigzag, Cursor};
use super::{Fault, BATCH_HEADER_LEN, MAX_BATCH_BYTES, MAX_RECORDS_BYTES};
use crate::error::{BusError, Result};

/// A record header: a UTF-8 key and a byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a str,
    pub value: &'a [u8],
}

/// A record to append. Borrowed, so producing needs no per-record allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Microseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    pub headers: &'a [Header<'a>],
}

impl<'a> Record<'a> {
    /// A record with a value and a timestamp, no key, no headers.
    pub fn new(value: &'a [u8], timestamp: i64) -> Self {
        Record {
            key: None,
            value: Some(value),
            timestamp,
            headers: &[],
        }
    }

    /// The same record with a key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Bytes of the record after its length prefix, in a batch starting at `first_ts`.
    fn body_len(&self, index: u32, first_ts: i64) -> usize {
        let opt_len = |b: Option<&[u8]>| match b {
            None => 1,
            Some(b) => uvarint_len(zigzag(b.len() as i64)) + b.len(),
        };
        let mut n = uvarint_len(index as u64)
            + uvarint_len(zigzag(self.timestamp.wrapping_sub(first_ts)))
            + opt_len(self.key)
            + opt_len(self.value)
            + uvarint_len(self.headers.len() as u64);
        for h in self.headers {
            n += uvarint_len(h.key.len() as u64) + h.key.len();
            n += uvarint_len(h.value.len() as u64) + h.value.len();
        }
        n
    }
}

/// An owned copy of a stored record (for callers that keep records around).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One encoded frame inside an [`EncodedBatches`] buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub start: usize,
    pub len: usize,
    pub record_count: u32,
    pub max_timestamp: i64,
    body_crc: u32,
}

/// Finished batch frames back to back, base offsets still unset.
#[derive(Debug, Default)]
pub struct EncodedBatches {
    pub bytes: Vec<u8>,
    pub frames: Vec<Frame>,
}

impl Frame {
    /// CRC-32C of the frame's records section (see [`batch::stamp`]).
    pub fn body_crc(&self) -> u32 {
        self.body_crc
    }
}

impl EncodedBatches {
    /// Records in all frames.
    pub fn record_count(&self) -> u64 {
        self.frames.iter().map(|f| f.record_count as u64).sum()
    }

    /// Give the frames consecutive base offsets from `base` and finish their CRCs.
    pub fn stamp(&mut self, base: u64) {
        let mut next = base;
        for f in &self.frames {
            batch::stamp(&mut self.bytes[f.start..f.start + f.len], next, f.body_crc);
            next += f.record_count as u64;
        }
    }
}

/// Encodes records into batch frames; keeps its scratch buffers and zstd context between
/// calls, so steady-state encoding does not allocate.
pub struct BatchEncoder {
    compression: Compression,
    target_bytes: usize,
    scratch: Vec<u8>,
    compressed: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    level: i32,
}

impl BatchEncoder {
    /// An encoder writing batches of about `target_bytes` of records each.
    pub fn new(compression: Compression, zstd_level: i32, target_bytes: usize) -> Self {
        BatchEncoder {
            compression,
            target_bytes: target_bytes.clamp(1, MAX_RECORDS_BYTES / 2),
            scratch: Vec::new(),
            compressed: Vec::new(),
            compressor: None,
            level: zstd_level,
        }
    }

    /// Encode `records` (at least one) into `out` (cleared first).
    pub fn encode(&mut self, records: &[Record<'_>], out: &mut EncodedBatches) -> Result<()> {
        out.bytes.clear();
        out.frames.clear();
        if records.is_empty() {
            return Err(BusError::InvalidArgument("empty batch".into()));
        }
        let mut i = 0;
        while i < records.len() {
            i += self.encode_one(&records[i..], out)?;
        }
        Ok(())
    }

    /// Encode a prefix of `records` as one frame; returns how many records it took.
    fn encode_one(&mut self, records: &[Record<'_>], out: &mut EncodedBatches) -> Result<usize> {
        let first_ts = records[0].timestamp;
        // 1. Choose the records: up to the target size, at least one.
        let mut section = 0usize;
        let mut count = 0usize;
        let mut max_ts = i64::MIN;
        for r in records {
            let body = r.body_len(count as u32, first_ts);
            let size = uvarint_len(body as u64) + body;
            if count > 0 && section + size > self.target_bytes {
                break;
            }
            if BATCH_HEADER_LEN + size > MAX_BATCH_BYTES {
                return Err(BusError::BatchTooLarge {
                    bytes: size as u64,
                    max: (MAX_BATCH_BYTES - BATCH_HEADER_LEN) as u64,
                });
            }
            section += size;
            count += 1;
            max_ts = max_ts.max(r.timestamp);
        }
        // 2. Write the records section, straight after the header when uncompressed.
        let start = out.bytes.len();
        let body: &mut Vec<u8> = match self.compression {
            Compression::None => {
                out.bytes.resize(start + BATCH_HEADER_LEN, 0);
                out.bytes.reserve(section);
                &mut out.bytes
            }
            Compression::Zstd => {
                self.scratch.clear();
                self.scratch.reserve(section);
                &mut self.scratch
            }
        };
        for (i, r) in records[..count].iter().enumerate() {
            put_record(body, r, i as u32, first_ts);
        }
        // 3. Compress if asked, into the frame after the header.
        if self.compression == Compression::Zstd {
            let level = self.level;
            let compressor = match &mut self.compressor {
                Some(c) => c,
                none => none.insert(new_compressor(level)?),
            };
            self.compressed.clear();
            self.compressed
                .reserve(zstd::zstd_safe::compress_bound(self.scratch.len()));
            compressor
                .compress_to_buffer(&self.scratch, &mut self.compressed)
                .map_err(|e| BusError::io("<zstd compressor>", e))?;
            out.bytes.resize(start + BATCH_HEADER_LEN, 0);
            out.bytes.extend_from_slice(&self.compressed);
        }
        let len = out.bytes.len() - start;
        if len > MAX_BATCH_BYTES {
            return Err(BusError::BatchTooLarge {
                bytes: len as u64,
                max: MAX_BATCH_BYTES as u64,
            });
        }
        let header = BatchHeader {
            compression: self.compression,
            crc: 0,
            batch_length: len as u32,
            base_offset: 0,
            record_count: count as u32,
            records_length: section as u32,
            first_timestamp: first_ts,
            max_timestamp: max_ts,
        };
        let frame = &mut out.bytes[start..];
        batch::encode_header(frame, &header);
        out.frames.push(Frame {
            start,
            len,
            record_count: count as u32,
            max_timestamp: max_ts,
            body_crc: batch::body_crc(frame),
        });
        Ok(count)
    }
}

/// Hash-table size (log2 entries) and shortest match of the fast levels (`level <= 1`).
///
/// A records section is a run of similar JSON envelopes: every match worth taking is long
/// (repeated keys, pins, run ids), so a 2K-entry table that stays in L1 and matches of at
/// least 7 bytes find nearly all of them. Measured on envelope batches of a 3M-event
/// replay (256 KiB blocks): level 1 is 1.35x faster at a 1% lower ratio (13.15 vs 13.32).
/// This only changes which bytes the encoder emits; every zstd frame decodes the same way.
const FAST_HASH_LOG: u32 = 11;
const FAST_MIN_MATCH: u32 = 7;

fn new_compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    let io = |e| BusError::io("<zstd compressor>", e);
    let mut c = zstd::bulk::Compressor::new(level).map_err(io)?;
    if level <= 1 {
        use zstd::zstd_safe::CParameter;
        c.set_parameter(CParameter::HashLog(FAST_HASH_LOG))
            .map_err(io)?;
        c.set_parameter(CParameter::MinMatch(FAST_MIN_MATCH))
            .map_err(io)?;
    }
    Ok(c)
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_svarint(out, -1),
        Some(b) => {
            put_svarint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

fn put_record(out: &mut Vec<u8>, r: &Record<'_>, index: u32, first_ts: i64) {
    put_uvarint(out, r.body_len(index, first_ts) as u64);
    put_uvarint(out, index as u64);
    put_svarint(out, r.timestamp.wrapping_sub(first_ts));
    put_opt_bytes(out, r.key);
    put_opt_bytes(out, r.value);
    put_uvarint(out, r.headers.len() as u64);
    for h in r.headers {
        put_uvarint(out, h.key.len() as u64);
        out.extend_from_slice(h.key.as_bytes());
        put_uvarint(out, h.value.len() as u64);
        out.extend_from_slice(h.value);
    }
}

/// Where one record's parts lie in [`Batch`]'s data (`NULL` length = absent).
#[derive(Debug, Clone, Copy)]
struct Span {
    timestamp: i64,
    key: (u32, u32),
    value: (u32, u32),
    headers: (u32, u32),
    header_count: u32,
}

const NULL: u32 = u32::MAX;

/// A decoded batch: its header, its records section (decompressed) and where each record
/// lies in it. Reused between batches by readers.
#[derive(Default)]
pub struct Batch {
    header: Option<BatchHeader>,
    data: Vec<u8>,
    spans: Vec<Span>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("header", &self.header)
            .field("records", &self.spans.len())
            .finish()
    }
}

impl Batch {
    /// Decode the verified frame `frame` (header `h`, from [`batch::verify`]).
    pub fn decode(&mut self, h: &BatchHeader, frame: &[u8]) -> Result<(), Fault> {
        self.header = None;
        self.spans.clear();
        let body = &frame[BATCH_HEADER_LEN..h.batch_length as usize];
        match h.compression {
            Compression::None => {
                self.data.clear();
                self.data.extend_from_slice(body);
            }
            Compression::Zstd => {
                let d = match &mut self.decompressor {
                    Some(d) => d,
                    none => none.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| Fault::Invalid(format!("zstd: {e}")))?,
                    ),
                };
                self.data.clear();
                // Capacity exactly records_length (capped by verify): a frame that claims
                // or produces more fails instead of allocating.
                self.data.reserve_exact(h.records_length as usize);
                let n = d
                    .decompress_to_buffer(body, &mut self.data)
                    .map_err(|e| Fault::Invalid(format!("zstd: {e}")))?;
                if n != h.records_length as usize {
                    return Err(Fault::Invalid(format!(
                        "zstd frame holds {n} bytes, header says {}",
                        h.records_length
                    )));
                }
            }
        }
        self.spans.reserve(h.record_count as usize);
        let mut c = Cursor::new(&self.data);
        for i in 0..h.record_count {
            let span = decode_record(&mut c, i, h.first_timestamp)
                .map_err(|why| Fault::Invalid(format!("record {i}: {why}")))?;
            self.spans.push(span);
        }
        if c.remaining() != 0 {
            return Err(Fault::Invalid(format!(
                "{} bytes after the last record",
                c.remaining()
            )));
        }
        self.header = Some(*h);
        Ok(())
    }

    /// The header of the decoded batch.
    pub fn header(&self) -> Option<&BatchHeader> {
        self.header.as_ref()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.map(|h| h.base_offset).unwrap_or(0)
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether nothing is decoded.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `i`-th record.
    pub fn get(&self, i: usize) -> Option<RecordView<'_>> {
        let s = self.spans.get(i)?;
        let part = |(start, len): (u32, u32)| {
            (len != NULL).then(|| &self.data[start as usize..(start + len) as usize])
        };
        Some(RecordView {
            offset: self.base_offset() + i as u64,
            timestamp: s.timestamp,
            key: part(s.key),
            value: part(s.value),
            headers: Headers {
                cursor: Cursor::new(&self.data[s.headers.0 as usize..s.headers.1 as usize]),
                left: s.header_count,
            },
        })
    }

    /// All records in offset order.
    pub fn records(&self) -> impl Iterator<Item = RecordView<'_>> + '_ {
        (0..self.spans.len()).filter_map(move |i| self.get(i))
    }
}

fn decode_record(c: &mut Cursor<'_>, index: u32, first_ts: i64) -> Result<Span, &'static str> {
    let len = c.uvarint()?;
    let start = c.pos;
    let rec = c.take(len)?;
    let mut r = Cursor::new(rec);
    if r.uvarint()? != index as u64 {
        return Err("offset delta is not the record's index");
    }
    let timestamp = first_ts.wrapping_add(r.svarint()?);
    let opt = |r: &mut Cursor<'_>| -> Result<(u32, u32), &'static str> {
        let n = r.svarint()?;
        if n == -1 {
            return Ok((0, NULL));
        }
        if n < 0 {
            return Err("negative length");
        }
        let at = r.pos;
        r.take(n as u64)?;
        Ok(((start + at) as u32, n as u32))
    };
    let key = opt(&mut r)?;
    let value = opt(&mut r)?;
    let header_count = r.uvarint()?;
    if header_count > r.remaining() as u64 / 2 {
        return Err("more headers than bytes");
    }
    let hstart = r.pos;
    for _ in 0..header_count {
        let k = r.uvarint()?;
        let kb = r.take(k)?;
        if std::str::from_utf8(kb).is_err() {
            return Err("header key is not UTF-8");
        }
        let v = r.uvarint()?;
        r.take(v)?;
    }
    if r.remaining() != 0 {
        return Err("record length does not match its fields");
    }
    Ok(Span {
        timestamp,
        key,
        value,
        headers: ((start + hstart) as u32, (start + r.pos) as u32),
        header_count: header_count as u32,
    })
}

/// A stored record, borrowed from its [`Batch`].
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

impl RecordView<'_> {
    /// Copy into an [`OwnedRecord`].
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers
                .clone()
                .map(|h| (h.key.to_string(), h.value.to_vec()))
                .collect(),
        }
    }
}

/// The headers of a record (already validated when the batch was decoded).
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    cursor: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let c = &mut self.cursor;
        let k = c.uvarint().ok()?;
        let key = std::str::from_utf8(c.take(k).ok()?).ok()?;
        let v = c.uvarint().ok()?;
        let value = c.take(v).ok()?;
        Some(Header { key, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(records: &[Record<'_>], compression: Compression, target: usize) {
        round_trip_at(records, compression, 3, target);
    }

    fn round_trip_at(records: &[Record<'_>], compression: Compression, level: i32, target: usize) {
        let mut enc = BatchEncoder::new(compression, level, target);
        let mut out = EncodedBatches::default();
        enc.encode(records, &mut out).unwrap();
        out.stamp(100);
        let mut got = Vec::new();
        let mut batch = Batch::default();
        for f in &out.frames {
            let frame = &out.bytes[f.start..f.start + f.len];
            let h = batch::verify(frame).unwrap();
            batch.decode(&h, frame).unwrap();
            got.extend(batch.records().map(|r| r.to_owned_record()));
        }
        assert_eq!(got.len(), records.len());
        for (i, (g, r)) in got.iter().zip(records).enumerate() {
            assert_eq!(g.offset, 100 + i as u64);
            assert_eq!(g.timestamp, r.timestamp);
            assert_eq!(g.key.as_deref(), r.key);
            assert_eq!(g.value.as_deref(), r.value);
            let hs: Vec<_> = r
                .headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.to_vec()))
                .collect();
            assert_eq!(g.headers, hs);
        }
    }

    #[test]
    fn encodes_and_decodes_all_fields() {
        let hs = [
            Header {
                key: "trace",
                value: b"abc",
            },
            Header {
                key: "",
                value: b"",
            },
        ];
        let records = [
            Record::new(b"{\"a\":1}", 1_000),
            Record {
                key: Some(b"k"),
                value: None,
                timestamp: 5,
                headers: &hs,
            },
            Record {
                key: Some(b""),
                value: Some(b""),
                timestamp: i64::MAX,
                headers: &[],
            },
            Record::new(b"x", i64::MIN),
        ];
        for c in [Compression::None, Compression::Zstd] {
            round_trip(&records, c, 1 << 20);
            round_trip(&records, c, 1);
        }
    }

    #[test]
    fn every_level_writes_frames_any_reader_decodes() {
        // Fast levels and the tuned level 1 change only the compressed bytes.
        let values: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                format!("{{\"event_id\":\"{i:064}\",\"payload\":{{\"flow_id\":{i}}}}}").into_bytes()
            })
            .collect();
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record::new(v, i as i64 * 7))
            .collect();
        for level in [-7, -3, -1, 1, 2, 3, 19] {
            round_trip_at(&records, Compression::Zstd, level, 1 << 20);
            round_trip_at(&records, Compression::Zstd, level, 4096);
        }
    }

    #[test]
    fn splits_at_the_target_size() {
        let v = [7u8; 100];
        let records: Vec<_> = (0..50).map(|i| Record::new(&v, i)).collect();
        let mut enc = BatchEncoder::new(Compression::None, 3, 1000);
        let mut out = EncodedBatches::default();
        enc.encode(&records, &mut out).unwrap();
        assert!(out.frames.len() >= 5, "{} frames", out.frames.len());
        assert_eq!(out.record_count(), 50);
        assert!(out.frames.iter().all(|f| f.len - BATCH_HEADER_LEN <= 1000));
    }

    #[test]
    fn empty_input_is_refused() {
        let mut enc = BatchEncoder::new(Compression::None, 3, 1000);
        let err = enc.encode(&[], &mut EncodedBatches::default()).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
    }
}
