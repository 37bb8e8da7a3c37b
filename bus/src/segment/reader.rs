//! Reading frames out of a `.log` file.
//!
//! [`LogReader`] keeps one reused buffer over a window of the file and reads with `pread`,
//! so a sequential scan costs one syscall per few MiB, not per batch, and the file can grow
//! underneath (a writer appending) without reopening: a window that ended short at the end
//! of the file is simply read again.
//!
//! Classification of the bytes at a position ([`FrameAt`]):
//!
//! ```text
//!   nothing left            -> End
//!   < 16 bytes / short body -> Bad(Short)      torn or still being written
//!   wrong magic / length    -> Bad(BadMagic / BadLength)
//!   CRC mismatch            -> Bad(BadCrc)
//!   intact, newer version   -> Bad(UnsupportedVersion)
//!   intact, version 1       -> Good(header)
//! ```
//!
//! Since a `write` copies bytes into the page cache in order and a `pread` returns only
//! bytes already copied, a frame whose full length could be read is complete: a bad CRC on
//! it is damage, not a write in progress.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{BusError, Result};
use crate::format::batch::{self, BatchHeader};
use crate::format::{Fault, BATCH_MAGIC, FRAME_PREFIX_LEN};

/// Bytes read per refill.
const CHUNK: usize = 4 << 20;

/// What lies at a position of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameAt {
    /// A good batch of this build's version.
    Good(BatchHeader),
    /// The end of the file, exactly.
    End,
    /// Not a good batch.
    Bad(Fault),
}

/// A `.log` file opened for reading.
pub struct LogReader {
    file: File,
    path: PathBuf,
    /// Read buffer; only `buf[..filled]` holds file bytes (the rest is reused capacity,
    /// kept initialised so refills need no zeroing).
    buf: Vec<u8>,
    filled: usize,
    /// File position of `buf[0]`.
    buf_pos: u64,
}

impl LogReader {
    /// Open a segment log for reading.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| BusError::io(path, e))?;
        Ok(LogReader {
            file,
            path: path.to_path_buf(),
            buf: Vec::new(),
            filled: 0,
            buf_pos: 0,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current size.
    pub fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| BusError::io(&self.path, e))
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Forget buffered bytes (after the file was truncated underneath).
    pub fn invalidate(&mut self) {
        self.filled = 0;
        self.buf_pos = 0;
    }

    /// Up to `n` bytes at `pos` (fewer at the end of the file).
    pub fn window(&mut self, pos: u64, n: usize) -> Result<&[u8]> {
        let end = self.buf_pos + self.filled as u64;
        let covered = pos >= self.buf_pos && pos + n as u64 <= end;
        if !covered {
            self.refill(pos, n)?;
        }
        let start = (pos - self.buf_pos) as usize;
        let stop = (start + n).min(self.filled);
        Ok(&self.buf[start..stop])
    }

    /// Make the buffer start at `pos` and hold at least `n` bytes, or up to the file's end.
    fn refill(&mut self, pos: u64, n: usize) -> Result<()> {
        let end = self.buf_pos + self.filled as u64;
        let want = n.max(CHUNK);
        // Keep bytes already read from `pos` on; read only what follows them.
        let kept = if pos >= self.buf_pos && pos < end {
            let from = (pos - self.buf_pos) as usize;
            self.buf.copy_within(from..self.filled, 0);
            self.filled - from
        } else {
            0
        };
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.buf_pos = pos;
        self.filled = kept;
        while self.filled < want {
            match self
                .file
                .read_at(&mut self.buf[self.filled..want], pos + self.filled as u64)
            {
                Ok(0) => break,
                Ok(k) => self.filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.filled = 0;
                    return Err(BusError::io(&self.path, e));
                }
            }
        }
        Ok(())
    }

    /// Classify the bytes at `pos`.
    pub fn frame_at(&mut self, pos: u64) -> Result<FrameAt> {
        let prefix = self.window(pos, FRAME_PREFIX_LEN)?;
        if prefix.is_empty() {
            return Ok(FrameAt::End);
        }
        let len = match batch::frame_length(prefix) {
            Ok(len) => len,
            Err(f) => return Ok(FrameAt::Bad(f)),
        };
        let frame = self.window(pos, len)?;
        Ok(match batch::verify(frame) {
            Ok(h) => FrameAt::Good(h),
            Err(f) => FrameAt::Bad(f),
        })
    }

    /// The bytes of the good frame just classified at `pos` (valid until the next read).
    pub fn frame_bytes(&mut self, pos: u64, h: &BatchHeader) -> Result<&[u8]> {
        self.window(pos, h.batch_length as usize)
    }

    /// The position of the first intact batch (any version) that starts after `pos`, found
    /// by searching for the magic and checking the CRC of every candidate.
    pub fn find_intact_after(&mut self, pos: u64) -> Result<Option<u64>> {
        const STEP: usize = 1 << 20;
        let mut q = pos + 1;
        loop {
            let w = self.window(q, STEP)?;
            if w.len() < BATCH_MAGIC.len() {
                return Ok(None);
            }
            let found = w.windows(BATCH_MAGIC.len()).position(|s| s == BATCH_MAGIC);
            match found {
                Some(i) => {
                    let cand = q + i as u64;
                    match self.frame_at(cand)? {
                        FrameAt::Good(_) | FrameAt::Bad(Fault::UnsupportedVersion(_)) => {
                            return Ok(Some(cand))
                        }
                        _ => q = cand + 1,
                    }
                }
                None => q += (w.len() - (BATCH_MAGIC.len() - 1)) as u64,
            }
        }
    }
}
