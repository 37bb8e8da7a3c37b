//! The bounded-memory meeting place of the bus parity check: every sighting of an event id
//! (a view row, a bus record, a receipt) becomes a fixed 32-byte [`Entry`], written to one
//! of `n` bucket files chosen by the id's first bytes. A bucket later fits in memory, is
//! sorted by id, and every id's sightings sit next to each other.
//!
//! ```text
//!  view rows ─┐                      bucket-000 ─► load, sort by id ─► groups ─► verdicts
//!  bus records├─► Entry (32 B) ─► … bucket-k   ─► (one bucket in memory at a time)
//!  receipts  ─┘   by id[0..8] % n    bucket-n-1
//! ```
//!
//! Entry layout (little-endian): `id[16] | kind u8 | slot u8 | 0u16 | part u32 | pos u64`.
//! Sixteen bytes of a sha256 are plenty to tell ids apart (2^-128 per pair). The files are
//! scratch, deleted with their directory, and never read by anyone else: no header, no
//! version.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;

use crate::error::{IngestError, Result};

/// Encoded size of an [`Entry`].
pub const ENTRY_BYTES: usize = 32;

/// What an entry is a sighting of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// A row of a view: `slot` output index, `part` part index, `pos` row in the part.
    View = 0,
    /// A bus record: `slot` topic index, `part` partition, `pos` offset.
    Bus = 1,
    /// An ADMIT receipt: `slot`/`part`/`pos` its `eb_ref`.
    Admit = 2,
    /// A DUPLICATE receipt: `slot`/`part`/`pos` the original it points at.
    Duplicate = 3,
    /// A QUARANTINE receipt: `pos` its receipt seq.
    Quarantine = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::View,
            1 => Kind::Bus,
            2 => Kind::Admit,
            3 => Kind::Duplicate,
            4 => Kind::Quarantine,
            _ => return None,
        })
    }
}

/// One sighting of an event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub id: [u8; 16],
    pub kind: Kind,
    pub slot: u8,
    pub part: u32,
    pub pos: u64,
}

impl Entry {
    /// An entry for the first 16 bytes of `event_id`.
    pub fn new(event_id: &[u8; 32], kind: Kind, slot: u8, part: u32, pos: u64) -> Entry {
        let mut id = [0u8; 16];
        id.copy_from_slice(&event_id[..16]);
        Entry {
            id,
            kind,
            slot,
            part,
            pos,
        }
    }

    fn encode(&self, out: &mut [u8; ENTRY_BYTES]) {
        out[..16].copy_from_slice(&self.id);
        out[16] = self.kind as u8;
        out[17] = self.slot;
        out[18..20].copy_from_slice(&[0, 0]);
        out[20..24].copy_from_slice(&self.part.to_le_bytes());
        out[24..32].copy_from_slice(&self.pos.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let mut id = [0u8; 16];
        id.copy_from_slice(b.get(..16)?);
        let mut part = [0u8; 4];
        part.copy_from_slice(b.get(20..24)?);
        let mut pos = [0u8; 8];
        pos.copy_from_slice(b.get(24..32)?);
        Some(Entry {
            id,
            kind: Kind::from_byte(*b.get(16)?)?,
            slot: *b.get(17)?,
            part: u32::from_le_bytes(part),
            pos: u64::from_le_bytes(pos),
        })
    }
}

/// `n` bucket files being written.
pub struct Buckets {
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
    entries: u64,
}

impl Buckets {
    /// Create `n` (>= 1) empty bucket files in `dir` (which must exist).
    pub fn create(dir: &Path, n: usize) -> Result<Buckets> {
        let n = n.max(1);
        let mut paths = Vec::with_capacity(n);
        let mut writers = Vec::with_capacity(n);
        for i in 0..n {
            let p = dir.join(format!("bucket-{i:04}.bin"));
            let f = File::create(&p).map_err(|e| IngestError::io(&p, e))?;
            writers.push(BufWriter::with_capacity(64 << 10, f));
            paths.push(p);
        }
        Ok(Buckets {
            paths,
            writers,
            entries: 0,
        })
    }

    /// Entries pushed so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Add one entry to its bucket.
    pub fn push(&mut self, e: &Entry) -> Result<()> {
        let mut first = [0u8; 8];
        first.copy_from_slice(&e.id[..8]);
        let b = (u64::from_le_bytes(first) % self.writers.len() as u64) as usize;
        let mut buf = [0u8; ENTRY_BYTES];
        e.encode(&mut buf);
        self.entries += 1;
        self.writers[b]
            .write_all(&buf)
            .map_err(|err| IngestError::io(&self.paths[b], err))
    }

    /// Flush every bucket; the paths to read back.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        for (w, p) in self.writers.into_iter().zip(&self.paths) {
            w.into_inner()
                .map_err(|e| IngestError::io(p, e.into_error()))?;
        }
        Ok(self.paths)
    }
}

/// Every entry of one bucket file, sorted (by id, then kind, then position).
pub fn load_sorted(path: &Path) -> Result<Vec<Entry>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| IngestError::io(path, e))?;
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for (i, chunk) in bytes.chunks(ENTRY_BYTES).enumerate() {
        let e = Entry::decode(chunk).ok_or_else(|| {
            IngestError::corrupt(path, (i * ENTRY_BYTES) as u64, "bad parity scratch entry")
        })?;
        out.push(e);
    }
    out.par_sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_group_by_id() {
        let d = tempfile::tempdir().unwrap();
        let mut b = Buckets::create(d.path(), 3).unwrap();
        let mut model = Vec::new();
        for i in 0..200u64 {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i % 50).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            let kind = if i % 2 == 0 { Kind::View } else { Kind::Bus };
            let e = Entry::new(&id, kind, (i % 5) as u8, i as u32, i * 7);
            b.push(&e).unwrap();
            model.push(e);
        }
        assert_eq!(b.entries(), 200);
        let mut got = Vec::new();
        for p in b.finish().unwrap() {
            let v = load_sorted(&p).unwrap();
            assert!(v.windows(2).all(|w| w[0] <= w[1]));
            got.extend(v);
        }
        got.sort();
        model.sort();
        assert_eq!(got, model);
    }
}
