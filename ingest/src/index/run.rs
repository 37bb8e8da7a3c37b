//! Sorted runs: immutable files of `(key, receipt seq)` entries sorted by key, written once
//! (atomically) from a memtable or a merge, then only read.
//!
//! Layout (little-endian, version 1):
//!
//! ```text
//! header   64 bytes  "SIXR" | version u16 = 1 | entry_size u16 = 40 | entry_count u64
//!                    | fence_every u32 = 128 | zeros | crc32c of bytes 0..60 at 60..64
//! entries  40 bytes each, sorted by key: key [32] | seq u64
//! fences   8 bytes per block of 128 entries: the block's first key bytes 0..8, big-endian
//! footer   16 bytes  crc32c of entries + fences u32 | zeros u32 | "SIXREND\0"
//! ```
//!
//! A lookup binary-searches the fences (in memory, 64 KiB per million entries), reads the
//! one 5 KiB block that can hold the key with a single positioned read, and binary-searches
//! it. Sizes read from disk are checked against the file length before anything is
//! allocated; a file that does not add up is `IG_CORRUPT`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sluice_storage::publish::AtomicFile;

use crate::error::{IngestError, Result};
use crate::ids::Hash32;

const MAGIC: &[u8; 4] = b"SIXR";
const FOOTER_MAGIC: &[u8; 8] = b"SIXREND\0";
const VERSION: u16 = 1;
const HEADER: u64 = 64;
const FOOTER: u64 = 16;
/// Bytes per entry.
pub const ENTRY: u64 = 40;
/// Entries per fence block.
pub const FENCE_EVERY: u64 = 128;

fn prefix(key: &Hash32) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_be_bytes(b)
}

/// An open run.
#[derive(Debug)]
pub struct SortedRun {
    path: PathBuf,
    file: File,
    entries: u64,
    fences: Vec<u64>,
}

fn header_bytes(entries: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[0..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(ENTRY as u16).to_le_bytes());
    h[8..16].copy_from_slice(&entries.to_le_bytes());
    h[16..20].copy_from_slice(&(FENCE_EVERY as u32).to_le_bytes());
    let crc = crc32c::crc32c(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Write a run from entries sorted by key (strictly increasing) and publish it atomically.
pub fn write_run(
    path: &Path,
    sorted: impl IntoIterator<Item = (Hash32, u64)>,
) -> Result<SortedRun> {
    let io = |e: std::io::Error| IngestError::io(path, e);
    let mut af = AtomicFile::create(path)?;
    let mut fences = Vec::new();
    let mut crc = 0u32;
    let mut n = 0u64;
    {
        let mut w = BufWriter::with_capacity(1 << 20, af.file());
        w.write_all(&[0u8; HEADER as usize]).map_err(io)?;
        let mut buf = [0u8; ENTRY as usize];
        for (key, seq) in sorted {
            if n.is_multiple_of(FENCE_EVERY) {
                fences.push(prefix(&key));
            }
            buf[..32].copy_from_slice(&key);
            buf[32..].copy_from_slice(&seq.to_le_bytes());
            crc = crc32c::crc32c_append(crc, &buf);
            w.write_all(&buf).map_err(io)?;
            n += 1;
        }
        for f in &fences {
            let b = f.to_be_bytes();
            crc = crc32c::crc32c_append(crc, &b);
            w.write_all(&b).map_err(io)?;
        }
        let mut footer = [0u8; FOOTER as usize];
        footer[..4].copy_from_slice(&crc.to_le_bytes());
        footer[8..].copy_from_slice(FOOTER_MAGIC);
        w.write_all(&footer).map_err(io)?;
        w.flush().map_err(io)?;
    }
    let f = af.file();
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    f.write_all(&header_bytes(n)).map_err(io)?;
    af.commit()?;
    SortedRun::open(path)
}

impl SortedRun {
    /// Open a run: header, sizes and footer are checked, fences loaded.
    pub fn open(path: &Path) -> Result<SortedRun> {
        let io = |e: std::io::Error| IngestError::io(path, e);
        let bad = |pos: u64, why: &str| IngestError::corrupt(path, pos, why);
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER + FOOTER {
            return Err(bad(0, "shorter than a header and footer"));
        }
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0).map_err(io)?;
        if &h[0..4] != MAGIC {
            return Err(bad(0, "not a sorted run (bad magic)"));
        }
        let stored = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
        if crc32c::crc32c(&h[..60]) != stored {
            return Err(bad(0, "header checksum mismatch"));
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(IngestError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version.into(),
                supported: VERSION.into(),
            });
        }
        let entries = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let entry_size = u16::from_le_bytes([h[6], h[7]]);
        let fence_every = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
        if u64::from(entry_size) != ENTRY || u64::from(fence_every) != FENCE_EVERY {
            return Err(bad(0, "unexpected entry size or fence interval"));
        }
        // Check the sizes add up before allocating the fences.
        let max_entries = (len - HEADER - FOOTER) / ENTRY;
        if entries > max_entries {
            return Err(bad(8, "entry count larger than the file"));
        }
        let nfences = entries.div_ceil(FENCE_EVERY);
        if HEADER + entries * ENTRY + nfences * 8 + FOOTER != len {
            return Err(bad(8, "file length does not match the entry count"));
        }
        let mut footer = [0u8; FOOTER as usize];
        file.read_exact_at(&mut footer, len - FOOTER).map_err(io)?;
        if &footer[8..] != FOOTER_MAGIC {
            return Err(bad(len - FOOTER, "bad footer magic (torn write?)"));
        }
        let mut raw = vec![0u8; (nfences * 8) as usize];
        file.read_exact_at(&mut raw, HEADER + entries * ENTRY)
            .map_err(io)?;
        let fences = raw
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Ok(SortedRun {
            path: path.to_path_buf(),
            file,
            entries,
            fences,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Memory held by the fences.
    pub fn fence_bytes(&self) -> u64 {
        self.fences.len() as u64 * 8
    }

    /// The seq stored for `key`, if the run has it.
    pub fn get(&self, key: &Hash32) -> Result<Option<u64>> {
        if self.entries == 0 {
            return Ok(None);
        }
        let p = prefix(key);
        let lo = self.fences.partition_point(|&f| f < p).saturating_sub(1) as u64;
        let hi = (self.fences.partition_point(|&f| f <= p) as u64).max(lo + 1);
        let first = lo * FENCE_EVERY;
        let last = (hi * FENCE_EVERY).min(self.entries);
        let mut buf = vec![0u8; ((last - first) * ENTRY) as usize];
        self.file
            .read_exact_at(&mut buf, HEADER + first * ENTRY)
            .map_err(|e| IngestError::io(&self.path, e))?;
        let n = (last - first) as usize;
        let at = |i: usize| &buf[i * ENTRY as usize..i * ENTRY as usize + 32];
        let (mut a, mut b) = (0usize, n);
        while a < b {
            let m = (a + b) / 2;
            match at(m).cmp(&key[..]) {
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => b = m,
                std::cmp::Ordering::Equal => {
                    let off = m * ENTRY as usize + 32;
                    let seq = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap_or_default());
                    return Ok(Some(seq));
                }
            }
        }
        Ok(None)
    }

    /// Read every entry in key order, verifying the body checksum at the end.
    pub fn scan(&self) -> Result<RunScan> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| IngestError::io(&self.path, e))?;
        file.seek(SeekFrom::Start(HEADER))
            .map_err(|e| IngestError::io(&self.path, e))?;
        Ok(RunScan {
            path: self.path.clone(),
            file: self
                .file
                .try_clone()
                .map_err(|e| IngestError::io(&self.path, e))?,
            reader: BufReader::with_capacity(1 << 20, file),
            left: self.entries,
            crc: 0,
            nfences: self.fences.len() as u64,
            body_end: HEADER + self.entries * ENTRY + self.fences.len() as u64 * 8,
        })
    }
}

/// A sequential read of a run's entries.
pub struct RunScan {
    path: PathBuf,
    file: File,
    reader: BufReader<File>,
    left: u64,
    crc: u32,
    nfences: u64,
    body_end: u64,
}

impl RunScan {
    /// The next entry; after the last one, the checksum is verified.
    pub fn next_entry(&mut self) -> Result<Option<(Hash32, u64)>> {
        if self.left == 0 {
            if self.nfences != u64::MAX {
                self.verify()?;
            }
            return Ok(None);
        }
        let mut buf = [0u8; ENTRY as usize];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| IngestError::io(&self.path, e))?;
        self.crc = crc32c::crc32c_append(self.crc, &buf);
        self.left -= 1;
        let mut key = [0u8; 32];
        key.copy_from_slice(&buf[..32]);
        let seq = u64::from_le_bytes(buf[32..].try_into().unwrap_or_default());
        Ok(Some((key, seq)))
    }

    fn verify(&mut self) -> Result<()> {
        let mut fences = vec![0u8; (self.nfences * 8) as usize];
        self.reader
            .read_exact(&mut fences)
            .map_err(|e| IngestError::io(&self.path, e))?;
        let crc = crc32c::crc32c_append(self.crc, &fences);
        let mut stored = [0u8; 4];
        self.file
            .read_exact_at(&mut stored, self.body_end)
            .map_err(|e| IngestError::io(&self.path, e))?;
        self.nfences = u64::MAX;
        if u32::from_le_bytes(stored) != crc {
            return Err(IngestError::corrupt(
                &self.path,
                self.body_end,
                "body checksum mismatch",
            ));
        }
        Ok(())
    }
}

/// Merge runs (oldest first) into one at `path`; on equal keys the newest run's entry wins.
pub fn merge_runs(inputs: &[&SortedRun], path: &Path) -> Result<SortedRun> {
    let mut scans: Vec<RunScan> = inputs.iter().map(|r| r.scan()).collect::<Result<_>>()?;
    let mut heads: Vec<Option<(Hash32, u64)>> = scans
        .iter_mut()
        .map(|s| s.next_entry())
        .collect::<Result<_>>()?;
    let mut err = None;
    let merged = std::iter::from_fn(|| {
        // The smallest key; among equals, the newest input (highest index).
        let mut best: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            if let Some((k, _)) = h {
                best = match best {
                    Some(b) if heads[b].as_ref().is_some_and(|(bk, _)| bk < k) => Some(b),
                    _ => Some(i),
                };
            }
        }
        let b = best?;
        let (key, seq) = heads[b]?;
        // Advance every input sitting on this key (older duplicates are dropped).
        for (i, h) in heads.iter_mut().enumerate() {
            if h.as_ref().is_some_and(|(k, _)| *k == key) {
                match scans[i].next_entry() {
                    Ok(next) => *h = next,
                    Err(e) => {
                        err = Some(e);
                        return None;
                    }
                }
            }
        }
        Some((key, seq))
    });
    let out = write_run(path, merged)?;
    if let Some(e) = err {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    fn key(i: u64) -> Hash32 {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn get_finds_every_key_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        for n in [0u64, 1, 127, 128, 129, 1000] {
            let mut v: Vec<(Hash32, u64)> = (0..n).map(|i| (key(i), i * 3)).collect();
            v.sort();
            let p = d.path().join(format!("r{n}.six"));
            let run = write_run(&p, v.clone()).unwrap();
            assert_eq!(run.len(), n);
            for (k, s) in &v {
                assert_eq!(run.get(k).unwrap(), Some(*s));
            }
            for i in n..n + 200 {
                assert_eq!(run.get(&key(i)).unwrap(), None);
            }
            let reopened = SortedRun::open(&p).unwrap();
            let mut scan = reopened.scan().unwrap();
            let mut got = Vec::new();
            while let Some(e) = scan.next_entry().unwrap() {
                got.push(e);
            }
            assert_eq!(got, v);
        }
    }

    #[test]
    fn merge_keeps_the_newest_and_matches_a_btreemap() {
        let d = tempfile::tempdir().unwrap();
        let mut oracle = BTreeMap::new();
        let mut runs = Vec::new();
        for r in 0..4u64 {
            let mut m = BTreeMap::new();
            for i in (r * 50)..(r * 50 + 120) {
                m.insert(key(i), r * 1000 + i);
                oracle.insert(key(i), r * 1000 + i);
            }
            runs.push(write_run(&d.path().join(format!("in{r}")), m).unwrap());
        }
        let refs: Vec<&SortedRun> = runs.iter().collect();
        let merged = merge_runs(&refs, &d.path().join("out")).unwrap();
        let mut scan = merged.scan().unwrap();
        let mut got = Vec::new();
        while let Some(e) = scan.next_entry().unwrap() {
            got.push(e);
        }
        assert_eq!(got, oracle.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn damage_is_reported_with_its_place() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r");
        let mut v: Vec<(Hash32, u64)> = (0..300).map(|i| (key(i), i)).collect();
        v.sort();
        write_run(&p, v).unwrap();
        let clean = std::fs::read(&p).unwrap();
        // A flipped entry byte: open succeeds (fences intact), the scan's checksum fails.
        let mut bytes = clean.clone();
        bytes[HEADER as usize + 45] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let run = SortedRun::open(&p).unwrap();
        let mut scan = run.scan().unwrap();
        let e = loop {
            match scan.next_entry() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("damage not detected"),
                Err(e) => break e,
            }
        };
        assert_eq!(e.code(), "IG_CORRUPT");
        // A truncated file and a bad header are refused at open.
        std::fs::write(&p, &clean[..clean.len() - 3]).unwrap();
        assert_eq!(SortedRun::open(&p).unwrap_err().code(), "IG_CORRUPT");
        let mut bytes = clean.clone();
        bytes[9] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(SortedRun::open(&p).unwrap_err().code(), "IG_CORRUPT");
    }
}
