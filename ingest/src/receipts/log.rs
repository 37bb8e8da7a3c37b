//! `ig/receipts.log`: the append-only log of every receipt, one fixed 64-byte
//! [`ReceiptRecord`] per decision, after a 128-byte header:
//!
//! ```text
//! header  "SIGR" | version u16 = 3 | record size u16 = 64 | zeros | crc32c of 0..124 at 124..128
//! record  seq 0 at byte 128, seq n at byte 128 + 64 * n
//! ```
//!
//! Versions 1 and 2 (128-byte records that stored the payload hash and receipt id) are
//! refused with `IG_UNSUPPORTED_VERSION`: a run written by a build before version 3 is
//! inspected and resumed with that build.
//!
//! It is also the write-ahead log of the gate's indexes: the memtables are rebuilt from the
//! records after the last flushed seq. Recovery on open (by the one writer):
//!
//! 1. a trailing partial record is a torn write: cut;
//! 2. from the first record not known durable, records are checked; at the first bad one,
//!    if no good record follows it is a torn tail (cut, with a warning), otherwise the log
//!    is damaged before its tail: `IG_CORRUPT` with the byte position, nothing modified.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sluice_bus::sync::{drop_cached, DropBehind};

use super::record::{ReceiptRecord, RECORD};
use crate::error::{IngestError, Result};

const MAGIC: &[u8; 4] = b"SIGR";
const VERSION: u16 = 3;
/// Header bytes (the first record starts here).
const HEADER: u64 = 128;

fn header() -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[0..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(RECORD as u16).to_le_bytes());
    let crc = crc32c::crc32c(&h[..124]);
    h[124..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_header(file: &File, path: &Path) -> Result<()> {
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)
        .map_err(|_| IngestError::corrupt(path, 0, "missing header"))?;
    if &h[0..4] != MAGIC {
        return Err(IngestError::corrupt(
            path,
            0,
            "not a receipt log (bad magic)",
        ));
    }
    if crc32c::crc32c(&h[..124]).to_le_bytes() != h[124..] {
        return Err(IngestError::corrupt(path, 0, "header checksum mismatch"));
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION || u16::from_le_bytes([h[6], h[7]]) as usize != RECORD {
        return Err(IngestError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version.into(),
            supported: VERSION.into(),
        });
    }
    Ok(())
}

/// What recovery cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogRecovery {
    pub bytes_cut: u64,
    pub records_cut: u64,
}

/// The writing end (one per gate, under the gate lock).
#[derive(Debug)]
pub struct ReceiptLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// Durable receipts leave the page cache behind a window (`sluice_bus::sync`): a
    /// replay writes 64 bytes per event and reads them back only for lookups. Shared
    /// with the log's [`ReceiptSync`] handles.
    drop_behind: Arc<Mutex<DropBehind>>,
}

/// A handle that fsyncs the receipt log from another thread (its own descriptor of the
/// same file): what [`ReceiptLog::sync`] does, for the receipts below a given seq.
#[derive(Debug)]
pub struct ReceiptSync {
    path: PathBuf,
    file: File,
    drop_behind: Arc<Mutex<DropBehind>>,
}

impl ReceiptSync {
    /// fsync the log; every receipt written before the call (at least those below
    /// `next_seq`) survives a power loss. Then the cache behind them is dropped.
    pub fn sync(&self, next_seq: u64) -> Result<()> {
        sync_and_drop(&self.file, &self.path, &self.drop_behind, next_seq)
    }
}

fn sync_and_drop(
    file: &File,
    path: &Path,
    drop_behind: &Mutex<DropBehind>,
    next_seq: u64,
) -> Result<()> {
    file.sync_data().map_err(|e| IngestError::io(path, e))?;
    let durable = HEADER + next_seq * RECORD as u64;
    let range = drop_behind
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .synced(path, durable);
    drop_cached(file, range);
    Ok(())
}

impl ReceiptLog {
    /// Open (creating if needed) and recover; records before `durable_seq` are trusted.
    pub fn open(path: &Path, durable_seq: u64) -> Result<(ReceiptLog, LogRecovery)> {
        let io = |e: std::io::Error| IngestError::io(path, e);
        let fresh = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if fresh {
            file.write_all_at(&header(), 0).map_err(io)?;
            file.sync_all().map_err(io)?;
            if let Some(dir) = path.parent() {
                sluice_storage::publish::fsync_dir(dir)?;
            }
        }
        check_header(&file, path)?;
        let len = file.metadata().map_err(io)?.len();
        let full = (len - HEADER) / RECORD as u64;
        let mut keep = full;
        if durable_seq > full {
            return Err(IngestError::corrupt(
                path,
                len,
                format!("the index covers {durable_seq} receipts but the log holds {full}"),
            ));
        }
        // Find the first bad record after the durable prefix, reading 1 MiB at a time.
        let chunk = 8192u64;
        let mut seq = durable_seq;
        let mut buf = vec![0u8; chunk as usize * RECORD];
        'scan: while seq < full {
            let n = chunk.min(full - seq);
            let bytes = &mut buf[..n as usize * RECORD];
            file.read_exact_at(bytes, HEADER + seq * RECORD as u64)
                .map_err(io)?;
            for (k, rec) in bytes.chunks_exact(RECORD).enumerate() {
                if ReceiptRecord::decode(rec).is_err() {
                    keep = seq + k as u64;
                    break 'scan;
                }
            }
            seq += n;
        }
        if keep < full {
            // Damage before the tail if any later record is intact.
            let mut rec = [0u8; RECORD];
            for later in keep + 1..full {
                file.read_exact_at(&mut rec, HEADER + later * RECORD as u64)
                    .map_err(io)?;
                if ReceiptRecord::decode(&rec).is_ok() {
                    return Err(IngestError::corrupt(
                        path,
                        HEADER + keep * RECORD as u64,
                        format!("receipt {keep} is damaged and receipt {later} after it is intact"),
                    ));
                }
            }
        }
        let new_len = HEADER + keep * RECORD as u64;
        let recovery = LogRecovery {
            bytes_cut: len - new_len,
            records_cut: full - keep,
        };
        if new_len != len {
            tracing::warn!(
                "receipt log {}: torn tail cut at byte {new_len} ({} bytes)",
                path.display(),
                recovery.bytes_cut
            );
            file.set_len(new_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok((
            ReceiptLog {
                path: path.to_path_buf(),
                file,
                next_seq: keep,
                drop_behind: Arc::new(Mutex::new(DropBehind::default())),
            },
            recovery,
        ))
    }

    /// The seq the next appended record gets (= records in the log).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Append encoded records (a multiple of 128 bytes); returns the first one's seq.
    pub fn append(&mut self, encoded: &[u8]) -> Result<u64> {
        debug_assert_eq!(encoded.len() % RECORD, 0);
        let first = self.next_seq;
        self.file
            .write_all_at(encoded, HEADER + first * RECORD as u64)
            .map_err(|e| IngestError::io(&self.path, e))?;
        self.next_seq += (encoded.len() / RECORD) as u64;
        Ok(first)
    }

    /// fsync the log (receipts written so far survive a power loss).
    pub fn sync(&self) -> Result<()> {
        sync_and_drop(&self.file, &self.path, &self.drop_behind, self.next_seq)
    }

    /// A handle that fsyncs this log from another thread.
    pub fn sync_handle(&self) -> Result<ReceiptSync> {
        Ok(ReceiptSync {
            path: self.path.clone(),
            file: self
                .file
                .try_clone()
                .map_err(|e| IngestError::io(&self.path, e))?,
            drop_behind: Arc::clone(&self.drop_behind),
        })
    }
}

/// A reading end: any number, in any thread, alongside the writer.
#[derive(Debug)]
pub struct ReceiptReader {
    path: PathBuf,
    file: File,
}

impl ReceiptReader {
    /// The log's path (for errors).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open(path: &Path) -> Result<ReceiptReader> {
        let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
        check_header(&file, path)?;
        Ok(ReceiptReader {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Complete records in the file now.
    pub fn len(&self) -> Result<u64> {
        let len = self
            .file
            .metadata()
            .map_err(|e| IngestError::io(&self.path, e))?
            .len();
        Ok(len.saturating_sub(HEADER) / RECORD as u64)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Receipt `seq`.
    pub fn read(&self, seq: u64) -> Result<ReceiptRecord> {
        let mut b = [0u8; RECORD];
        let pos = HEADER + seq * RECORD as u64;
        self.file
            .read_exact_at(&mut b, pos)
            .map_err(|e| IngestError::io(&self.path, e))?;
        ReceiptRecord::decode(&b).map_err(|why| IngestError::corrupt(&self.path, pos, why))
    }

    /// Visit receipts `from..to` in order, reading 1 MiB at a time.
    pub fn scan(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(u64, &ReceiptRecord) -> Result<()>,
    ) -> Result<()> {
        let chunk = 8192u64;
        let mut buf = vec![0u8; chunk as usize * RECORD];
        let mut seq = from;
        while seq < to {
            let n = chunk.min(to - seq);
            let bytes = &mut buf[..n as usize * RECORD];
            let pos = HEADER + seq * RECORD as u64;
            self.file
                .read_exact_at(bytes, pos)
                .map_err(|e| IngestError::io(&self.path, e))?;
            for (k, rec) in bytes.chunks_exact(RECORD).enumerate() {
                let at = seq + k as u64;
                let r = ReceiptRecord::decode(rec).map_err(|why| {
                    IngestError::corrupt(&self.path, HEADER + at * RECORD as u64, why)
                })?;
                visit(at, &r)?;
            }
            seq += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Decision;

    #[test]
    fn logs_of_older_versions_are_refused_by_readers_and_the_writer() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("receipts.log");
        for (version, size) in [(1u16, 128u16), (2, 128)] {
            let mut h = header();
            h[4..6].copy_from_slice(&version.to_le_bytes());
            h[6..8].copy_from_slice(&size.to_le_bytes());
            let crc = crc32c::crc32c(&h[..124]);
            h[124..].copy_from_slice(&crc.to_le_bytes());
            let mut bytes = h.to_vec();
            bytes.extend_from_slice(&[0u8; 128]);
            std::fs::write(&path, &bytes).unwrap();
            let err = ReceiptReader::open(&path).unwrap_err();
            assert_eq!(err.code(), "IG_UNSUPPORTED_VERSION", "{err:?}");
            let err = ReceiptLog::open(&path, 0).expect_err("refused");
            assert_eq!(err.code(), "IG_UNSUPPORTED_VERSION", "{err:?}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing modified");
        }
    }

    fn rec(i: u8) -> ReceiptRecord {
        ReceiptRecord {
            decision: Decision::Admit,
            reasons: 0,
            ctx: 0,
            ts: Some(i.into()),
            event_id: Some([i; 32]),
            receipt_id: [0; 16],
            eb: None,
            quarantine: None,
        }
    }

    fn encode(rs: &[ReceiptRecord]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rs {
            r.encode(&mut b);
        }
        b
    }

    #[test]
    fn append_read_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("receipts.log");
        let (mut log, rec0) = ReceiptLog::open(&p, 0).unwrap();
        assert_eq!(rec0, LogRecovery::default());
        assert_eq!(log.append(&encode(&[rec(1), rec(2)])).unwrap(), 0);
        assert_eq!(log.append(&encode(&[rec(3)])).unwrap(), 2);
        let r = ReceiptReader::open(&p).unwrap();
        assert_eq!(r.len().unwrap(), 3);
        assert_eq!(r.read(2).unwrap(), rec(3));
        drop(log);
        let (log, _) = ReceiptLog::open(&p, 3).unwrap();
        assert_eq!(log.next_seq(), 3);
    }

    #[test]
    fn torn_tails_are_cut_and_interior_damage_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("receipts.log");
        let (mut log, _) = ReceiptLog::open(&p, 0).unwrap();
        log.append(&encode(&[rec(1), rec(2), rec(3)])).unwrap();
        drop(log);
        let clean = std::fs::read(&p).unwrap();
        // Half a record at the end.
        std::fs::write(&p, &clean[..clean.len() - 50]).unwrap();
        let (log, r) = ReceiptLog::open(&p, 0).unwrap();
        assert_eq!((log.next_seq(), r.records_cut), (2, 0));
        assert_eq!(r.bytes_cut, RECORD as u64 - 50);
        // A damaged last record: cut.
        let mut bytes = clean.clone();
        let last = bytes.len() - 10;
        bytes[last] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let (log, r) = ReceiptLog::open(&p, 0).unwrap();
        assert_eq!((log.next_seq(), r.records_cut), (2, 1));
        // A damaged middle record with an intact one after it: refused, file untouched.
        let mut bytes = clean.clone();
        bytes[128 + RECORD + 30] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let e = ReceiptLog::open(&p, 0).unwrap_err();
        assert_eq!(e.code(), "IG_CORRUPT");
        assert!(e.to_string().contains("byte 192"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        // Damage inside the durable prefix is not re-checked on open, but reads report it.
        let (_, _) = ReceiptLog::open(&p, 3).unwrap();
        let r = ReceiptReader::open(&p).unwrap();
        assert_eq!(r.read(1).unwrap_err().code(), "IG_CORRUPT");
    }
}
