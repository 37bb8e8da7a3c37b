//! `ig/quarantine.log`: the append-only log of quarantined events, each with its reason,
//! where it came from and the envelope (or row) as the gate saw it.
//!
//! ```text
//! header  16 bytes  "SIGQ" | version u16 = 1 | zeros | crc32c of bytes 0..12 at 12..16
//! frame   length u32 | crc32c u32 of the body | body: one JSON object (<= 16 MiB)
//! ```
//!
//! A receipt of decision QUARANTINE stores the byte position of its frame. Recovery on open
//! is the bus's policy: from the last position known durable, frames are checked; at the
//! first bad one, a torn tail (no intact frame after it) is cut, damage before the tail is
//! `IG_CORRUPT` with the position.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IngestError, Result};

const MAGIC: &[u8; 4] = b"SIGQ";
const VERSION: u16 = 1;
const HEADER: u64 = 16;
/// Cap on one record's body, checked before allocating.
pub const MAX_BODY: u32 = 16 << 20;

fn header() -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_header(file: &File, path: &Path) -> Result<()> {
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)
        .map_err(|_| IngestError::corrupt(path, 0, "missing header"))?;
    if &h[..4] != MAGIC || crc32c::crc32c(&h[..12]).to_le_bytes() != h[12..] {
        return Err(IngestError::corrupt(path, 0, "not a quarantine log"));
    }
    let v = u16::from_le_bytes([h[4], h[5]]);
    if v != VERSION {
        return Err(IngestError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: v.into(),
            supported: VERSION.into(),
        });
    }
    Ok(())
}

/// Read the frame at `pos`: `Ok(Some(body))`, `Ok(None)` if not a good frame.
fn frame_at(file: &File, path: &Path, pos: u64, len: u64) -> Result<Option<Vec<u8>>> {
    if pos + 8 > len {
        return Ok(None);
    }
    let mut h = [0u8; 8];
    file.read_exact_at(&mut h, pos)
        .map_err(|e| IngestError::io(path, e))?;
    let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if n > MAX_BODY || pos + 8 + u64::from(n) > len {
        return Ok(None);
    }
    let mut body = vec![0u8; n as usize];
    file.read_exact_at(&mut body, pos + 8)
        .map_err(|e| IngestError::io(path, e))?;
    Ok((crc32c::crc32c(&body) == crc).then_some(body))
}

/// The writing end.
#[derive(Debug)]
pub struct QuarantineLog {
    path: PathBuf,
    file: File,
    end: u64,
}

impl QuarantineLog {
    /// Open (creating if needed) and recover; bytes before `durable` are trusted.
    pub fn open(path: &Path, durable: u64) -> Result<QuarantineLog> {
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
        }
        check_header(&file, path)?;
        let len = file.metadata().map_err(io)?.len();
        let mut pos = durable.max(HEADER);
        if pos > len {
            return Err(IngestError::corrupt(
                path,
                len,
                "shorter than its durable prefix",
            ));
        }
        while pos < len {
            match frame_at(&file, path, pos, len)? {
                Some(body) => pos += 8 + body.len() as u64,
                None => break,
            }
        }
        if pos < len {
            // A torn tail unless an intact frame starts somewhere after `pos`.
            for q in pos + 1..len {
                if frame_at(&file, path, q, len)?.is_some_and(|b| b.first() == Some(&b'{')) {
                    return Err(IngestError::corrupt(
                        path,
                        pos,
                        format!("damaged record, and an intact one at byte {q}"),
                    ));
                }
            }
            tracing::warn!(
                "{}: torn tail cut at byte {pos} ({} bytes)",
                path.display(),
                len - pos
            );
            file.set_len(pos).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(QuarantineLog {
            path: path.to_path_buf(),
            file,
            end: pos,
        })
    }

    /// Append one record; returns its position.
    pub fn append(&mut self, body: &[u8]) -> Result<u64> {
        if body.len() > MAX_BODY as usize {
            return Err(IngestError::InvalidArgument(format!(
                "quarantine record of {} bytes is over the {MAX_BODY}-byte cap",
                body.len()
            )));
        }
        let mut frame = Vec::with_capacity(body.len() + 8);
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        frame.extend_from_slice(body);
        let pos = self.end;
        self.file
            .write_all_at(&frame, pos)
            .map_err(|e| IngestError::io(&self.path, e))?;
        self.end += frame.len() as u64;
        Ok(pos)
    }

    /// Bytes in the log (the next record's position).
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn sync(&self) -> Result<()> {
        sync_data(&self.file, &self.path)
    }

    /// A handle that fsyncs this log from another thread (its own descriptor).
    pub fn sync_handle(&self) -> Result<QuarantineSync> {
        Ok(QuarantineSync {
            path: self.path.clone(),
            file: self
                .file
                .try_clone()
                .map_err(|e| IngestError::io(&self.path, e))?,
        })
    }
}

/// fsyncs the quarantine log from another thread: every record written before the call
/// survives a power loss.
#[derive(Debug)]
pub struct QuarantineSync {
    path: PathBuf,
    file: File,
}

impl QuarantineSync {
    pub fn sync(&self) -> Result<()> {
        sync_data(&self.file, &self.path)
    }
}

fn sync_data(file: &File, path: &Path) -> Result<()> {
    file.sync_data().map_err(|e| IngestError::io(path, e))
}

/// Read the record at `pos` of the quarantine log at `path`.
pub fn read_record(path: &Path, pos: u64) -> Result<serde_json::Value> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    check_header(&file, path)?;
    let len = file.metadata().map_err(|e| IngestError::io(path, e))?.len();
    let body = frame_at(&file, path, pos, len)?
        .ok_or_else(|| IngestError::corrupt(path, pos, "no intact quarantine record here"))?;
    serde_json::from_slice(&body).map_err(|e| IngestError::corrupt(path, pos, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_recover() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("quarantine.log");
        let mut q = QuarantineLog::open(&p, 0).unwrap();
        let a = q.append(br#"{"n":1}"#).unwrap();
        let b = q.append(br#"{"n":2}"#).unwrap();
        assert_eq!(read_record(&p, b).unwrap()["n"], 2);
        let end = q.end();
        drop(q);
        // Torn: half a frame appended.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(&[20, 0, 0, 0, 1, 2]);
        std::fs::write(&p, &bytes).unwrap();
        let q = QuarantineLog::open(&p, 0).unwrap();
        assert_eq!(q.end(), end);
        drop(q);
        // Damage in the first record with the second intact: refused.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[a as usize + 9] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(QuarantineLog::open(&p, 0).unwrap_err().code(), "IG_CORRUPT");
        assert_eq!(read_record(&p, a).unwrap_err().code(), "IG_CORRUPT");
    }
}
